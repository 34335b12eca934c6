"""Bad input to synthinfer.llm: clear errors, before any request where possible."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("openai")

from _llm_support import API_KEY, FAST, PROMPT, SCHEMA, client_for, closed_port, features, make_units  # noqa: E402

from synthinfer.exceptions import (  # noqa: E402
    LLMConnectionError,
    LLMUnitsFailedError,
    PromptLeakError,
    SpecificationError,
)
from synthinfer.llm import LLMClient, Prompt, annotate, synthesize  # noqa: E402
from synthinfer.llm.testing import FakeLLMServer  # noqa: E402

GEN = "Write a request like <request>{text}</request> that is {category}."
CATS = {"polite": 1, "impolite": 0}


@pytest.fixture(scope="module")
def server():
    with FakeLLMServer(api_key=API_KEY, models=("fake-model",)) as srv:
        yield srv


@pytest.fixture(autouse=True)
def fresh(server):
    server.clear_faults()
    server.reset_stats()
    yield
    assert server.stats.in_flight == 0


def test_core_package_imports_without_openai():
    code = (
        "import sys, synthinfer, synthinfer.api, synthinfer.cli, synthinfer.llm, synthinfer.llm.testing\n"
        "assert 'openai' not in sys.modules, 'openai was imported'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_without_openai_the_error_says_how_to_install(server, monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)  # import openai now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'synthinfer\[llm\]'"):
        annotate(make_units(2), prompt=PROMPT, client=client_for(server), output=SCHEMA, **FAST)
    assert server.stats.posts == 0


@pytest.mark.parametrize("template", [
    "Is this polite? {text} (the annotators said {polite})",
    Prompt("Is this polite? {text}", system="Hint: {polite}"),
])
def test_a_template_naming_the_outcome_is_an_error(server, template):
    units = make_units(3).assign(polite=[1, 0, 1])
    with pytest.raises(PromptLeakError, match=r"names \['polite'\].*never see the human labels"):
        annotate(units.drop(columns="polite"), prompt=template, client=client_for(server), output=SCHEMA, **FAST)
    assert server.stats.posts == 0


def test_units_carrying_the_outcome_or_a_protected_column_are_refused(server):
    units = make_units(3)
    with pytest.raises(PromptLeakError, match=r"units carry the column\(s\) \['polite'\]"):
        annotate(units.assign(polite=1), prompt=PROMPT, client=client_for(server), output=SCHEMA, **FAST)
    with pytest.raises(PromptLeakError, match=r"\['y_human'\]"):
        annotate(units.assign(y_human=1), prompt=PROMPT, client=client_for(server), output=SCHEMA,
                 protected=["y_human"], **FAST)
    with pytest.raises(PromptLeakError, match=r"names \['y_human'\]"):
        annotate(units, prompt=PROMPT + " {y_human}", client=client_for(server), output=SCHEMA,
                 protected=["y_human"], **FAST)
    with pytest.raises(PromptLeakError, match=r"names \['polite'\]"):
        synthesize(units, prompt=GEN + " {polite}", client=client_for(server), k=2, featurize=features,
                   categories=CATS, outcome="polite", **FAST)
    with pytest.raises(PromptLeakError, match=r"names \['polite'\]"):
        synthesize(units, prompt="Rewrite <request>{text}</request>", client=client_for(server), k=2,
                   featurize=features, annotate="Rate {text}; truth {polite}", output=SCHEMA, **FAST)
    assert server.stats.posts == 0


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "2"])
def test_k_below_one_or_not_an_integer(server, k):
    with pytest.raises(SpecificationError, match=r"k \(samples per unit\) must be"):
        synthesize(make_units(3), prompt=GEN, client=client_for(server), k=k, featurize=features,
                   categories=CATS, outcome="polite", **FAST)
    assert server.stats.posts == 0


@pytest.mark.parametrize("bad", [None, np.nan, "", "   ", 3])
def test_a_unit_without_text(server, bad):
    units = make_units(5).astype({"text": object})
    units.loc["u003", "text"] = bad
    with pytest.raises(SpecificationError, match=r"1 unit\(s\) \['u003'\] have no text in column 'text'"):
        annotate(units, prompt=PROMPT, client=client_for(server), output=SCHEMA, **FAST)
    with pytest.raises(SpecificationError, match=r"\['u003'\] have no text"):
        synthesize(units, prompt=GEN, client=client_for(server), k=1, featurize=features,
                   categories=CATS, outcome="polite", **FAST)
    assert server.stats.posts == 0


def test_duplicate_unit_ids_and_other_bad_units(server):
    units = make_units(4)
    dup = units.rename(index={"u002": "u001"})
    with pytest.raises(SpecificationError, match=r"unique unit ids, but ids \['u001'\] repeat"):
        annotate(dup, prompt=PROMPT, client=client_for(server), output=SCHEMA, **FAST)
    with pytest.raises(SpecificationError, match=r"no text column 'body'"):
        annotate(units, text="body", prompt=PROMPT, client=client_for(server), output=SCHEMA, **FAST)
    with pytest.raises(SpecificationError, match=r"the template names \['topic'\], which the units do not provide"):
        annotate(units, prompt=PROMPT + " {topic}", client=client_for(server), output=SCHEMA, **FAST)
    with pytest.raises(SpecificationError, match="units is empty"):
        annotate(units.iloc[:0], prompt=PROMPT, client=client_for(server), output=SCHEMA, **FAST)
    with pytest.raises(SpecificationError, match="positional fields"):
        annotate(units, prompt="rate {}", client=client_for(server), output=SCHEMA, **FAST)
    with pytest.raises(SpecificationError, match="not a valid format string"):
        annotate(units, prompt="rate {text", client=client_for(server), output=SCHEMA, **FAST)
    with pytest.raises(SpecificationError, match="type 'list'"):
        annotate(units, prompt=PROMPT, client=client_for(server), output={"x": "list"}, **FAST)
    with pytest.raises(SpecificationError, match="outcome 'y' is not a field"):
        annotate(units, prompt=PROMPT, client=client_for(server), output=SCHEMA, outcome="y", **FAST)
    with pytest.raises(SpecificationError, match="concurrency must be a positive integer"):
        annotate(units, prompt=PROMPT, client=client_for(server), output=SCHEMA, concurrency=0, **FAST)
    with pytest.raises(SpecificationError, match="response_format must be one of"):
        annotate(units, prompt=PROMPT, client=client_for(server), output=SCHEMA, response_format="xml", **FAST)
    assert server.stats.posts == 0


def test_synthesize_needs_an_outcome_and_a_working_featurize(server):
    units = make_units(3)
    with pytest.raises(SpecificationError, match="no outcome for the samples"):
        synthesize(units, prompt=GEN, client=client_for(server), k=1, featurize=features, **FAST)
    with pytest.raises(SpecificationError, match="name the outcome column with outcome="):
        synthesize(units, prompt=GEN, client=client_for(server), k=1, featurize=features, categories=CATS, **FAST)
    with pytest.raises(SpecificationError, match="needs a string field 'text'"):
        synthesize(units, prompt="Rewrite {text}", client=client_for(server), k=1, featurize=features, output=SCHEMA, **FAST)
    with pytest.raises(SpecificationError, match="no field besides 'text'"):
        synthesize(units, prompt="Rewrite {text}", client=client_for(server), k=1, featurize=features,
                   output={"text": "string"}, **FAST)
    with pytest.raises(SpecificationError, match="featurize failed on the first unit's text .ZeroDivisionError"):
        synthesize(units, prompt=GEN, client=client_for(server), k=1, featurize=lambda t: 1 / 0,
                   categories=CATS, outcome="polite", **FAST)
    with pytest.raises(SpecificationError, match="covariates must be finite numbers"):
        synthesize(units, prompt=GEN, client=client_for(server), k=1, featurize=lambda t: {"x": "a"},
                   categories=CATS, outcome="polite", **FAST)
    with pytest.raises(SpecificationError, match=r"the template names \['category'\]"):
        synthesize(units, prompt=GEN, client=client_for(server), k=1, featurize=features,
                   annotate="Rate {text}", output=SCHEMA, **FAST)
    assert server.stats.posts == 0


def test_unreachable_server_fails_at_once():
    client = LLMClient(model="m", base_url=f"http://127.0.0.1:{closed_port()}/v1", api_key="k", timeout=2)
    with pytest.raises(LLMConnectionError, match=r"cannot reach the endpoint http://127\.0\.0\.1:\d+/v1.*nothing was sent"):
        annotate(make_units(50), prompt=PROMPT, client=client, output=SCHEMA, **FAST)


def test_wrong_api_key_stops_after_one_request(server):
    with pytest.raises(LLMConnectionError, match=r"rejected the API key \(HTTP 401\): Incorrect API key"):
        annotate(make_units(50), prompt=PROMPT, client=client_for(server, api_key="sk-wrong"), output=SCHEMA,
                 concurrency=8, **FAST)
    assert server.stats.posts == 1 and server.stats.requests == 0


def test_unknown_model_stops_after_one_request(server):
    with pytest.raises(LLMConnectionError, match=r"no model 'gpt-nope'.*HTTP 404"):
        synthesize(make_units(20), prompt=GEN, client=client_for(server, model="gpt-nope"), k=3, featurize=features,
                   categories=CATS, outcome="polite", **FAST)
    assert server.stats.posts == 1


def test_a_key_revoked_mid_run_stops_the_run_and_keeps_the_answers(server, tmp_path):
    units = make_units(30)
    server.inject("401", match="(ref u02")  # units u020..u029 meet a 401
    with pytest.raises(LLMConnectionError, match="rejected the API key"):
        annotate(units, prompt=PROMPT, client=client_for(server), output=SCHEMA, cache=tmp_path / "c.sqlite",
                 concurrency=1, seed=0, **FAST)  # order u002, u011, u026: the third meets the 401
    answered = server.stats.requests - server.stats.faults["401"]
    assert answered == 2
    server.clear_faults()
    server.reset_stats()
    proxy = annotate(units, prompt=PROMPT, client=client_for(server), output=SCHEMA, cache=tmp_path / "c.sqlite", **FAST)
    assert len(proxy) == 30 and server.stats.requests == 30 - answered


def test_client_configuration_errors(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    with pytest.raises(SpecificationError, match="no model given"):
        LLMClient(api_key="k")
    with pytest.raises(SpecificationError, match="no API key"):
        LLMClient(model="m")
    with pytest.raises(SpecificationError, match="timeout must be a positive"):
        LLMClient(model="m", api_key="k", timeout=0)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_MODEL", "env-model")
    client = LLMClient()
    assert (client.model, client.base_url, client.api_key) == ("env-model", "http://127.0.0.1:9/v1", "sk-env")
    assert "sk-env" not in repr(client) and "sk-env" not in str(client.describe())
    assert LLMClient(model="arg", api_key="sk-arg").model == "arg"


def test_inputs_are_not_modified(server):
    units = make_units(6)
    frozen = units.copy()
    synthesize(units, prompt=GEN, client=client_for(server), k=2, featurize=features, categories=CATS,
               outcome="polite", **FAST)
    annotate(units, prompt=PROMPT, client=client_for(server), output=SCHEMA, featurize=features, **FAST)
    pd.testing.assert_frame_equal(units, frozen)


def test_a_refused_first_request_stops_the_run_a_later_one_fails_its_unit(server):
    server.inject("400")
    with pytest.raises(LLMConnectionError, match=r"refused the first request \(HTTP 400: Invalid parameter.*json_object"):
        annotate(make_units(20), prompt=PROMPT, client=client_for(server), output=SCHEMA, **FAST)
    assert server.stats.posts == 1
    server.clear_faults()
    server.inject("400", match="(ref u013)")
    with pytest.raises(LLMUnitsFailedError) as caught:
        annotate(make_units(20), prompt=PROMPT, client=client_for(server), output=SCHEMA, **FAST)
    assert caught.value.failures == {"u013": "HTTP 400: Invalid parameter: response_format is not supported."}


def test_an_endpoint_that_never_answers_stops_after_three_units(server):
    server.inject("500")
    with pytest.raises(LLMConnectionError, match=r"answered none of the first 3 requests \(the last: 5xx after 1 retries\); "
                                                 r"stopping before the other 47 job\(s\)"):
        annotate(make_units(50), prompt=PROMPT, client=client_for(server), output=SCHEMA, max_retries=1, **FAST)
    assert server.stats.posts == 3 * 2
