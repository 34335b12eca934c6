"""synthinfer.llm.annotate through the real openai client against a fake server on 127.0.0.1."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("openai")

from _llm_support import API_KEY, FAST, PROMPT, SCHEMA, client_for, features, make_units, ref  # noqa: E402

from synthinfer.exceptions import LLMUnitsFailedError  # noqa: E402
from synthinfer.llm import Prompt, ResponseCache, annotate, provenance_path, save_frame  # noqa: E402
from synthinfer.llm.cache import request_key  # noqa: E402
from synthinfer.llm.testing import FakeLLMServer, request_identity  # noqa: E402


@pytest.fixture
def server():
    with FakeLLMServer(api_key=API_KEY) as srv:
        yield srv


def first_prompts(server) -> list[str]:
    return [p for p in server.stats.order]


def test_every_unit_annotated_exactly_once(server, tmp_path):
    units = make_units(40)
    before = units.copy()
    proxy = annotate(units, prompt=PROMPT, client=client_for(server), output=SCHEMA, cache=tmp_path / "c.sqlite", **FAST)
    pd.testing.assert_frame_equal(units, before)  # the input is not modified
    assert list(proxy.index) == list(units.index) and proxy.index.name == "unit"
    assert list(proxy.columns) == ["polite", "confidence"]
    assert proxy["polite"].dtype == np.int64 and set(proxy["polite"]) <= {0, 1}
    assert proxy["confidence"].between(0, 1).all()
    # the server answered 40 distinct requests, each once, one per unit text
    assert server.stats.requests == 40 and len(server.stats.answered) == 40
    assert set(server.stats.answered.values()) == {1}
    asked = sorted(p for p in server.stats.order)
    assert asked == sorted(PROMPT.format(text=t) for t in units["text"])
    counts = proxy.attrs["provenance"]["counts"]
    assert counts["requests"] == 40 and counts["cache_hits"] == 0 and counts["failures"] == 0
    # a re-run is answered from the cache: no request at all, the same frame
    again = annotate(units, prompt=PROMPT, client=client_for(server), output=SCHEMA, cache=tmp_path / "c.sqlite", **FAST)
    assert server.stats.requests == 40
    pd.testing.assert_frame_equal(again, proxy)
    assert again.attrs["provenance"]["counts"]["cache_hits"] == 40


def test_answers_are_the_servers_deterministic_answers(server):
    """What the frame holds is what the server said for that unit's own prompt (no mix-up of units)."""
    units = make_units(12)
    seen = {}

    def respond(request):
        answer = {"polite": int("please" in request.prompt), "confidence": round(len(request.prompt) / 1000, 3)}
        seen[request.prompt] = answer
        return json.dumps(answer)

    server.respond = respond
    proxy = annotate(units, prompt=PROMPT, client=client_for(server), output=SCHEMA, concurrency=4, **FAST)
    for unit, row in units.iterrows():
        expected = seen[PROMPT.format(text=row["text"])]
        assert proxy.loc[unit, "polite"] == expected["polite"]
        assert proxy.loc[unit, "confidence"] == pytest.approx(expected["confidence"])


def test_concurrency_limit_is_respected_server_side(server):
    server.latency = 0.05
    units = make_units(16)
    annotate(units, prompt=PROMPT, client=client_for(server), output=SCHEMA, concurrency=3, **FAST)
    assert server.stats.max_in_flight == 3  # never more than 3 at once, and 3 were used
    server.reset_stats()
    annotate(units.iloc[:5].assign(length=1), prompt=PROMPT + " {length}", client=client_for(server),
             output=SCHEMA, concurrency=1, **FAST)
    assert server.stats.max_in_flight == 1


def test_rate_limit_spaces_requests(server):
    units = make_units(9)
    start = time.perf_counter()
    annotate(units, prompt=PROMPT, client=client_for(server), output=SCHEMA, rate_limit=20.0, concurrency=4, **FAST)
    assert time.perf_counter() - start >= 8 / 20  # 9 starts at most 20 per second: 8 gaps of 50 ms


def test_retries_on_429_500_and_timeouts_are_counted(server):
    server.timeout_delay = 1.5
    server.inject("429", times=3)
    server.inject("500", times=2)
    server.inject("timeout", times=2)
    units = make_units(10)
    # the first request goes alone (the probe) and meets all seven faults in turn
    proxy = annotate(units, prompt=PROMPT, client=client_for(server, timeout=0.6), output=SCHEMA, concurrency=2,
                     max_retries=7, **FAST)
    counts = proxy.attrs["provenance"]["counts"]
    assert counts["retries"] == {"429": 3, "5xx": 2, "timeout": 2} and counts["retries_total"] == 7
    assert server.stats.faults == {"429": 3, "500": 2, "timeout": 2}
    assert len(proxy) == 10 and counts["failures"] == 0
    assert counts["requests"] == 10


def test_backoff_grows_exponentially_and_honours_retry_after(server):
    units = make_units(1)
    server.inject("500", times=3)
    start = time.perf_counter()
    annotate(units, prompt=PROMPT, client=client_for(server), output=SCHEMA, backoff=0.1, max_backoff=10, progress=False)
    # waits of 0.1, 0.2 and 0.4 s, each times a jitter factor in [0.5, 1]
    assert 0.35 <= time.perf_counter() - start < 0.7 + 1.0
    server.retry_after = 0.5
    server.inject("429", times=1)
    start = time.perf_counter()
    annotate(units, prompt=PROMPT + " ", client=client_for(server), output=SCHEMA, backoff=0.001, progress=False)
    assert time.perf_counter() - start >= 0.5  # the server's Retry-After, not the 1 ms backoff
    server.inject("429", times=1)
    start = time.perf_counter()
    annotate(units, prompt=PROMPT + "  ", client=client_for(server), output=SCHEMA, backoff=0.001, max_backoff=0.05,
             progress=False)
    assert time.perf_counter() - start < 0.5  # ... capped at max_backoff


def test_malformed_answers_fall_back_to_regex_or_are_asked_again(server):
    server.inject("malformed", times=3)  # "Sure! polite: 1, confidence: 0.4 (my best guess)"
    server.inject("garbage", times=2)  # "Hmm, hard to say." -> asked again
    server.inject("refusal", times=1)  # refused -> asked again
    units = make_units(15)
    # one at a time, the faults meet units in turn: three read by regex, then one unit answers
    # garbage, garbage again, refuses, and only its third re-ask succeeds
    proxy = annotate(units, prompt=PROMPT, client=client_for(server), output=SCHEMA, concurrency=1,
                     max_reasks=3, **FAST)
    counts = proxy.attrs["provenance"]["counts"]
    assert counts["parsed_regex"] == 3 and counts["parsed_json"] == 12
    assert counts["reasks"] == 3 and counts["refusals"] == 1
    assert counts["requests"] == 18 and len(proxy) == 15


def test_a_unit_that_keeps_failing_is_named_and_nothing_else_is_lost(server, tmp_path):
    units = make_units(20)
    server.inject("garbage", match=ref("u004"))  # unparseable on every try
    server.inject("refusal", match=ref("u011"))  # refuses on every try
    server.inject("500", match=ref("u007"))  # a 500 on every try
    cache = tmp_path / "c.sqlite"
    with pytest.raises(LLMUnitsFailedError) as caught:
        annotate(units, prompt=PROMPT, client=client_for(server), output=SCHEMA, cache=cache, max_reasks=2,
                 max_retries=2, **FAST)
    err = caught.value
    assert list(err.failures) == ["u004", "u007", "u011"]
    assert all(u in str(err) for u in err.failures)
    assert err.failures["u007"] == "5xx after 2 retries"
    assert "no usable answer after 2 re-ask(s)" in err.failures["u004"]
    assert "refused" in err.failures["u011"]
    assert list(err.partial.index) == [u for u in units.index if u not in err.failures]
    assert err.partial.attrs["provenance"]["counts"]["failures"] == 3
    assert err.partial.attrs["provenance"]["failed_units"].keys() == {"u004", "u007", "u011"}
    # Every answer is in the cache, the unusable ones too (they were paid for): a re-run with one
    # more re-ask replays the three cached answers of u004 and u011 and sends only their third
    # re-ask, plus u007's request, which never got an answer.
    server.clear_faults()
    server.reset_stats()
    proxy = annotate(units, prompt=PROMPT, client=client_for(server), output=SCHEMA, cache=cache, max_reasks=3, **FAST)
    assert len(proxy) == 20
    assert server.stats.requests == 3
    assert sorted(r for r in map(ref, units.index) for text in server.stats.log if r in text) == [
        ref("u004"), ref("u007"), ref("u011")]
    assert proxy.attrs["provenance"]["counts"]["reasks"] == 2 * 3
    pd.testing.assert_frame_equal(proxy.loc[err.partial.index], err.partial)


def test_processing_order_is_random_and_seeded(server):
    units = make_units(30)
    annotate(units, prompt=PROMPT, client=client_for(server), output=SCHEMA, concurrency=1, seed=5, **FAST)
    order = [p for p in server.stats.order]
    expected = [PROMPT.format(text=units["text"].iloc[i]) for i in np.random.default_rng(5).permutation(30)]
    assert order == expected
    assert order != [PROMPT.format(text=t) for t in units["text"]]


def test_provenance_travels_and_is_written_next_to_the_file(server, tmp_path):
    units = make_units(6)
    prompt = Prompt(PROMPT, system="You are a careful annotator.")
    proxy = annotate(units, prompt=prompt, client=client_for(server), output=SCHEMA, params={"temperature": 0.0, "max_tokens": 40},
                     featurize=features, price=(2.5, 10.0), **FAST)
    prov = proxy.attrs["provenance"]
    assert prov["task"] == "annotate" and prov["client"]["model"] == "fake-model"
    assert prov["prompt"]["user"] == PROMPT and prov["prompt"]["system"] == "You are a careful annotator."
    assert len(prov["prompt"]["sha256"]) == 64 and prov["prompt"]["sha256"] == prompt.sha256
    assert prov["parameters"]["max_tokens"] == 40 and prov["parameters"]["response_format"]["type"] == "json_schema"
    assert prov["started"] <= prov["finished"] and prov["versions"]["openai"]
    assert API_KEY not in json.dumps(prov)  # the key is never written
    counts = prov["counts"]
    assert counts["prompt_tokens"] > 0 and counts["completion_tokens"] > 0
    assert counts["cost"] == pytest.approx((counts["prompt_tokens"] * 2.5 + counts["completion_tokens"] * 10.0) / 1e6)
    assert list(proxy.columns) == ["polite", "confidence", "n_words", "please", "hedging"]
    assert proxy.loc["u000", "please"] == 1.0
    for name in ("proxy.csv", "proxy.parquet"):
        written = save_frame(proxy, tmp_path / name)
        assert written == provenance_path(tmp_path / name) and written.name == name + ".provenance.json"
        assert json.loads(written.read_text()) == prov
    back = pd.read_csv(tmp_path / "proxy.csv", index_col="unit")
    pd.testing.assert_frame_equal(back, proxy, check_dtype=False)


def test_cache_keys_cover_model_messages_parameters_and_sample(tmp_path):
    messages = [{"role": "user", "content": "hi"}]
    base = request_key("m", messages, {"temperature": 0}, 0)
    assert base == request_key("m", [dict(messages[0])], {"temperature": 0}, 0)
    assert len({base, request_key("m2", messages, {"temperature": 0}, 0),
                request_key("m", [{"role": "user", "content": "hi!"}], {"temperature": 0}, 0),
                request_key("m", messages, {"temperature": 1}, 0),
                request_key("m", messages, {"temperature": 0}, 1)}) == 5
    with ResponseCache(tmp_path / "x" / "c.sqlite") as cache:
        assert len(cache) == 0


def test_server_identity_matches_what_the_cache_stored(server, tmp_path):
    """The crash test maps cache entries to server requests; check the mapping on a clean run."""
    units = make_units(5)
    annotate(units, prompt=PROMPT, client=client_for(server), output=SCHEMA, cache=tmp_path / "c.sqlite", **FAST)
    import sqlite3

    rows = sqlite3.connect(tmp_path / "c.sqlite").execute("SELECT model, request FROM answers").fetchall()
    ids = {request_identity(m, json.loads(r)["messages"], json.loads(r)["params"].get("seed")) for m, r in rows}
    assert ids == set(server.stats.answered)


def test_units_with_the_same_text_share_one_request(server):
    units = make_units(6)
    units.loc["u004", "text"] = units.loc["u001", "text"]
    units.loc["u005", "text"] = units.loc["u001", "text"]
    proxy = annotate(units, prompt=PROMPT, client=client_for(server), output=SCHEMA, concurrency=6, **FAST)
    assert server.stats.requests == 4
    assert proxy.attrs["provenance"]["counts"]["cache_hits"] == 2
    pd.testing.assert_series_equal(proxy.loc["u004"], proxy.loc["u001"], check_names=False)
    pd.testing.assert_series_equal(proxy.loc["u005"], proxy.loc["u001"], check_names=False)


def test_progress_bar_only_when_asked(server, capsys):
    units = make_units(5)
    annotate(units, prompt=PROMPT, client=client_for(server), output=SCHEMA, backoff=0.001, progress=None)
    assert capsys.readouterr().err == ""  # stderr is not a terminal under pytest: no bar
    annotate(units, prompt=PROMPT + " ", client=client_for(server), output=SCHEMA, backoff=0.001, progress=True)
    assert "annotate: 100%" in capsys.readouterr().err


def test_price_table_by_model(server):
    units = make_units(4)
    proxy = annotate(units, prompt=PROMPT, client=client_for(server), output=SCHEMA,
                     price={"fake-model": (1.0, 3.0), "other": (100.0, 100.0)}, **FAST)
    counts = proxy.attrs["provenance"]["counts"]
    assert counts["cost"] == pytest.approx((counts["prompt_tokens"] * 1.0 + counts["completion_tokens"] * 3.0) / 1e6)
    assert (counts["prompt_tokens"], counts["completion_tokens"]) == (server.stats.prompt_tokens,
                                                                      server.stats.completion_tokens)
    again = annotate(units, prompt=PROMPT, client=client_for(server), output=SCHEMA, price={"other": (1, 1)}, **FAST)
    assert again.attrs["provenance"]["counts"]["cost"] is None  # no price for this model


@pytest.mark.parametrize("mode", ["json_object", "text"])
def test_other_response_formats(server, mode):
    """Endpoints without JSON-schema support: JSON mode, or nothing asked of the endpoint."""
    units = make_units(5)
    proxy = annotate(units, prompt=PROMPT, client=client_for(server), output=SCHEMA, response_format=mode, **FAST)
    assert len(proxy) == 5 and list(proxy.columns) == ["polite", "confidence"]
    sent = proxy.attrs["provenance"]["parameters"]
    assert sent.get("response_format") == ({"type": "json_object"} if mode == "json_object" else None)


def test_a_series_of_texts_is_accepted(server):
    texts = make_units(4)["text"]
    proxy = annotate(texts, prompt=PROMPT, client=client_for(server), output=SCHEMA, **FAST)
    assert list(proxy.index) == list(texts.index) and server.stats.requests == 4
