"""synthinfer.llm.synthesize through the real openai client, and the frames feeding gmm_synth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("openai")

from _llm_support import API_KEY, FAST, SCHEMA, client_for, features, make_units, ref  # noqa: E402

import synthinfer.api as smf  # noqa: E402
from synthinfer.exceptions import LLMUnitsFailedError  # noqa: E402
from synthinfer.llm import annotate, residual_preview, save_frame, synthesize  # noqa: E402
from synthinfer.llm.testing import FakeLLMServer, politeness_responder  # noqa: E402

GEN = "Here is a request: <request>{text}</request> Write a new request on the same topic that is {category}."
CATS = {"polite": 1, "impolite": 0}


@pytest.fixture
def server():
    with FakeLLMServer(api_key=API_KEY) as srv:
        yield srv


def test_k_samples_per_unit_each_requested_once(server, tmp_path):
    units = make_units(12)
    synth = synthesize(units, prompt=GEN, client=client_for(server), k=3, featurize=features, categories=CATS,
                       outcome="polite", cache=tmp_path / "c.sqlite", **FAST)
    assert synth.index.name == "unit"
    assert list(synth.index) == [u for u in units.index for _ in range(3)]
    assert list(synth["sample"]) == [0, 1, 2] * 12
    # sample j asks for the j-th category (cycling), the same for every unit, whatever the unit
    assert list(synth["category"]) == ["polite", "impolite", "polite"] * 12
    assert list(synth["polite"]) == [1, 0, 1] * 12
    assert list(synth.columns) == ["sample", "category", "text", "polite", "n_words", "please", "hedging"]
    # 36 distinct requests, each answered once; sample j carries seed j
    assert server.stats.requests == 36 and set(server.stats.answered.values()) == {1}
    for _, row in synth.iterrows():
        assert row["n_words"] == len(row["text"].split())  # covariates from the generated text
    prov = synth.attrs["provenance"]
    assert prov["k"] == 3 and prov["task"] == "synthesize" and prov["counts"]["requests"] == 36
    assert prov["parameters"] == {"temperature": 1.0, "seed": "0 + sample index"}
    again = synthesize(units, prompt=GEN, client=client_for(server), k=3, featurize=features, categories=CATS,
                       outcome="polite", cache=tmp_path / "c.sqlite", **FAST)
    assert server.stats.requests == 36
    pd.testing.assert_frame_equal(again, synth)
    # one more sample per unit costs one request per unit: samples 0..2 come from the cache
    more = synthesize(units, prompt=GEN, client=client_for(server), k=4, featurize=features, categories=CATS,
                      outcome="polite", cache=tmp_path / "c.sqlite", **FAST)
    assert server.stats.requests == 36 + 12
    pd.testing.assert_frame_equal(more[more["sample"] < 3], synth)


def test_unit_samples_are_processed_in_a_seeded_random_order(server):
    units = make_units(6)
    synthesize(units, prompt=GEN, client=client_for(server), k=2, featurize=features, categories=CATS,
               outcome="polite", concurrency=1, seed=4, **FAST)
    jobs = [(u, j) for u in units.index for j in range(2)]
    expected = [jobs[i] for i in np.random.default_rng(4).permutation(len(jobs))]
    seen = [(next(u for u in units.index if ref(u) in p), "impolite" in p) for p in server.stats.order]
    assert seen == [(u, j == 1) for u, j in expected]


def test_samples_differ_by_seed_and_are_conditioned_on_their_unit(server):
    units = make_units(4)
    synth = synthesize(units, prompt="Rewrite <request>{text}</request>", client=client_for(server), k=3,
                       featurize=features, annotate="Rate <request>{text}</request>", output=SCHEMA, **FAST)
    for unit, group in synth.groupby(level=0):
        assert group["text"].nunique() == 3  # different seeds, different samples
        # the default responder echoes the prompt's words: every sample carries its unit's ref
        assert all(ref(unit)[5:-1] in t for t in group["text"])
    # outcome from the annotation of each generated text: 12 generations + 12 annotations
    assert server.stats.requests == 24
    assert list(synth.columns) == ["sample", "text", "polite", "confidence", "n_words", "please", "hedging"]
    assert synth["polite"].dtype == np.int64


def test_generation_itself_can_carry_the_outcome(server):
    units = make_units(5)
    output = {"text": {"type": "string"}, "polite": {"type": "integer", "enum": [0, 1]}}
    synth = synthesize(units, prompt="Write a request like <request>{text}</request>; say if it is polite.",
                       client=client_for(server), k=2, featurize=features, output=output, **FAST)
    assert list(synth.columns) == ["sample", "text", "polite", "n_words", "please", "hedging"]
    assert server.stats.requests == 10 and len(synth) == 10


def test_failed_samples_are_named_and_the_rest_kept(server, tmp_path):
    units = make_units(6)
    server.inject("refusal", match=ref("u002"))
    with pytest.raises(LLMUnitsFailedError) as caught:
        synthesize(units, prompt=GEN, client=client_for(server), k=2, featurize=features, categories=CATS,
                   outcome="polite", cache=tmp_path / "c.sqlite", max_reasks=1, **FAST)
    err = caught.value
    assert list(err.failures) == [("u002", 0), ("u002", 1)]
    assert "2 sample(s) of 1 unit(s) ['u002']" in str(err)
    assert len(err.partial) == 10 and "u002" not in err.partial.index
    server.clear_faults()
    server.reset_stats()
    synth = synthesize(units, prompt=GEN, client=client_for(server), k=2, featurize=features, categories=CATS,
                       outcome="polite", cache=tmp_path / "c.sqlite", max_reasks=2, **FAST)
    assert len(synth) == 12 and server.stats.requests == 2  # only u002's second re-ask of each sample


def test_a_featurize_error_on_a_generated_text_names_the_sample(server):
    units = make_units(4)

    def picky(text: str) -> dict:
        if "impolite" in text or "Fix" in text and "now" in text:
            raise ValueError("cannot read this text")
        return features(text)

    server.respond = lambda req: "Fix it now" if "(ref u001)" in req.prompt else "Could you please help"
    with pytest.raises(LLMUnitsFailedError) as caught:
        synthesize(units, prompt=GEN, client=client_for(server), k=2, featurize=picky, categories=CATS,
                   outcome="polite", **FAST)
    assert set(caught.value.failures) == {("u001", 0), ("u001", 1)}
    assert "featurize failed on the generated text (ValueError: cannot read this text)" in caught.value.failures[("u001", 0)]


@pytest.fixture(scope="module")
def politeness_frames(tmp_path_factory):
    """Real, proxy and synthetic frames from 240 politeness texts via the fake server."""
    from synthinfer.datasets import load_politeness

    data = load_politeness()
    frame = data.frame.iloc[:240]
    units = frame[["text"]]
    rng = np.random.default_rng(3)
    labeled = np.sort(rng.choice(len(units), 120, replace=False))
    covariates = pd.DataFrame([features(t) for t in units["text"]], index=units.index)
    real = covariates.iloc[labeled].assign(polite=frame["polite_human"].iloc[labeled].astype(float))
    with FakeLLMServer(api_key=API_KEY, respond=politeness_responder) as srv:
        client = client_for(srv)
        proxy = annotate(units, prompt="Is this request polite? <request>{text}</request>", client=client,
                         output=SCHEMA, featurize=features, concurrency=8, **FAST)
        synth = synthesize(units, prompt=GEN, client=client, k=2, featurize=features, categories=CATS,
                           outcome="polite", concurrency=8, **FAST)
    return real, proxy, synth, tmp_path_factory.mktemp("frames")


def test_the_frames_feed_gmm_synth_unchanged(politeness_frames):
    real, proxy, synth, root = politeness_frames
    kept = (proxy.copy(), synth.copy())
    formula = "polite ~ please + hedging"
    res = smf.gmm_synth(formula, real=real, proxy=proxy, synth=synth).fit()
    pd.testing.assert_frame_equal(proxy, kept[0])
    pd.testing.assert_frame_equal(synth, kept[1])
    assert np.all(np.isfinite(res.params)) and np.all(np.isfinite(res.bse))
    assert res.nobs == 240 and res.n_labeled == 120
    # the same fit from the files written by save_frame (the CLI's route), and without attrs
    for name, f in (("proxy.csv", proxy), ("synth.parquet", synth)):
        save_frame(f, root / name)
    proxy_back = pd.read_csv(root / "proxy.csv", index_col="unit")
    synth_back = pd.read_parquet(root / "synth.parquet")
    again = smf.gmm_synth(formula, real=real, proxy=proxy_back, synth=synth_back).fit()
    np.testing.assert_allclose(again.params, res.params, rtol=1e-10)
    np.testing.assert_allclose(again.bse, res.bse, rtol=1e-10)
    bare = smf.gmm_synth(formula, real=real, proxy=proxy.copy().pipe(_no_attrs), synth=synth.copy().pipe(_no_attrs)).fit()
    np.testing.assert_allclose(bare.params, res.params, rtol=1e-12)


def _no_attrs(frame: pd.DataFrame) -> pd.DataFrame:
    frame.attrs = {}
    return frame


def test_residual_preview_is_the_fits_diagnostics(politeness_frames):
    real, proxy, synth, _ = politeness_frames
    formula = "polite ~ please + hedging"
    preview = residual_preview(formula, real, proxy={"llm": proxy}, synth={"rewrite": synth})
    diag = smf.gmm_synth(formula, real=real, proxy={"llm": proxy}, synth={"rewrite": synth}).fit().diagnostics()
    assert list(preview.index) == ["llm", "rewrite", "all"]
    np.testing.assert_allclose(preview.loc[["llm", "rewrite"], "residual_correlation"],
                               diag.residual_correlation[["llm", "rewrite"]])
    np.testing.assert_allclose(preview.loc["all", "variance_reduction:please"], diag.variance_reduction.loc["please", "all"])
    # the keyword stand-in's labels track the human ones a little: positive residual correlation
    assert preview.loc["llm", "residual_correlation"] > 0
