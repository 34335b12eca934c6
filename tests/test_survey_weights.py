"""Survey (sampling) weights ``weights=``: w_i on every moment block of unit i.

The truths: statsmodels' WLS(weights=w) and GLM(var_weights=w) with HC0 for
the human-only fit (and for naive pooling and PPI++ at lambda = 0, which are
that fit when no auxiliary row enters), invariance to rescaling the weights,
and the fast bootstrap's identity replicate reproducing the weighted fit.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import synthinfer.api as smf
from synthinfer.exceptions import SpecificationError
from synthinfer.inference.replicate import KStepBootstrap, ReplicateBootstrap
from synthinfer.simulate import make_study

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "survey_weights_coverage.py"
FAMILIES = {"logit": sm.families.Binomial(), "poisson": sm.families.Poisson()}


def _reference(model: str, real: pd.DataFrame, w: np.ndarray, kind: str = "var_weights"):
    X = sm.add_constant(real[["x1", "x2"]])
    if model == "ols":
        return sm.WLS(real["y"], X, weights=w).fit(cov_type="HC0")
    return sm.GLM(real["y"], X, family=FAMILIES[model], **{kind: w}).fit(cov_type="HC0")


def _close(res, ref, rtol: float = 1e-6) -> None:
    np.testing.assert_allclose(np.asarray(res.params), np.asarray(ref.params), rtol=rtol)
    np.testing.assert_allclose(np.asarray(res.bse), np.asarray(ref.bse), rtol=rtol)


@pytest.mark.parametrize("model", ["ols", "logit", "poisson"])
def test_weighted_human_only_fit_is_statsmodels_with_var_weights_and_hc0(model) -> None:
    study = make_study(model, n_units=1000, n_labeled=300, seed=21)
    w = np.random.default_rng(21).uniform(0.2, 5.0, 300)
    real = study.real.assign(sw=w)
    res = smf.classical(study.formula, real=real, model=model, weights="sw").fit(correction=None)
    _close(res, _reference(model, real, w))
    if model != "ols":
        # freq_weights give the same params but an HC0 meat of sum w e^2 x x'
        # (replicated rows), not the survey sandwich's sum w^2 e^2 x x'
        freq = _reference(model, real, w, "freq_weights")
        np.testing.assert_allclose(res.params, freq.params, rtol=1e-6)
        assert np.max(np.abs(res.bse / freq.bse - 1)) > 0.1
    assert "weighted by w (WLS / GLM var_weights)" in str(res.summary())


def test_weights_as_column_series_or_array_agree_and_frames_are_untouched() -> None:
    study = make_study("logit", n_units=500, n_labeled=120, seed=22)
    w = pd.Series(np.random.default_rng(22).uniform(0.5, 3.0, 500), index=study.proxy.index)
    proxy = study.proxy.assign(sw=w)
    real, synth = study.real.copy(), study.synth.copy()
    before = [f.copy(deep=True) for f in (real, proxy, synth)]
    kwds = dict(real=real, synth=synth, model="logit")
    by_column = smf.gmm_synth(study.formula, proxy=proxy, weights="sw", **kwds).fit()
    by_series = smf.gmm_synth(study.formula, proxy=proxy, weights=w.sample(frac=1.0, random_state=3), **kwds).fit()
    by_array = smf.gmm_synth(study.formula, proxy=proxy, weights=w.to_numpy(), **kwds).fit()
    for other in (by_series, by_array):
        np.testing.assert_allclose(other.params, by_column.params, rtol=1e-10)
        np.testing.assert_allclose(other.bse, by_column.bse, rtol=1e-10)
    for frame, copy in zip((real, proxy, synth), before):
        pd.testing.assert_frame_equal(frame, copy)
    plain = smf.gmm_synth(study.formula, proxy=proxy, **kwds).fit()
    assert np.max(np.abs(plain.params - by_column.params) / plain.bse) > 0.05


@pytest.mark.parametrize("estimator", ["gmm_synth", "gmm_proxy", "naive", "ppi"])
def test_rescaled_or_constant_weights_change_nothing(estimator) -> None:
    study = make_study("ols", n_units=600, n_labeled=150, seed=23)
    w = pd.Series(np.random.default_rng(23).uniform(0.2, 5.0, 600), index=study.proxy.index)
    fit = getattr(smf, estimator)
    kwds = dict(real=study.real, proxy=study.proxy)
    if estimator in ("gmm_synth", "naive"):
        kwds["synth"] = study.synth
    weighted = fit(study.formula, weights=w, **kwds).fit()
    rescaled = fit(study.formula, weights=7.3 * w, **kwds).fit()
    np.testing.assert_allclose(rescaled.params, weighted.params, rtol=1e-9)
    np.testing.assert_allclose(rescaled.bse, weighted.bse, rtol=1e-9)
    if hasattr(weighted, "jtest"):
        np.testing.assert_allclose(rescaled.jtest()[0], weighted.jtest()[0], rtol=1e-7)
    constant = fit(study.formula, weights=np.full(600, 2.5), **kwds).fit()
    plain = fit(study.formula, **kwds).fit()
    np.testing.assert_allclose(constant.params, plain.params, rtol=1e-9)
    np.testing.assert_allclose(constant.bse, plain.bse, rtol=1e-9)
    assert np.max(np.abs(weighted.params - plain.params) / plain.bse) > 0.05


def test_naive_and_ppi_at_lambda_zero_without_auxiliary_rows_are_weighted_least_squares() -> None:
    study = make_study("ols", n_units=800, n_labeled=200, seed=24)
    w = pd.Series(np.random.default_rng(24).uniform(0.2, 5.0, 800), index=study.proxy.index)
    reference = _reference("ols", study.real, w[study.real.index].to_numpy())
    naive = smf.naive(study.formula, real=study.real.assign(sw=w[study.real.index]), weights="sw").fit()
    _close(naive, reference)
    ppi = smf.ppi(study.formula, real=study.real, proxy=study.proxy, weights=w, lam=0).fit(correction=None)
    _close(ppi, reference)


def test_survey_weights_and_labeling_probabilities_multiply() -> None:
    study = make_study("poisson", n_units=900, n_labeled=250, seed=25)
    rng = np.random.default_rng(25)
    w = rng.uniform(0.5, 4.0, 250)
    pi = rng.uniform(0.1, 0.9, 250)
    res = smf.classical(study.formula, real=study.real, model="poisson", weights=w, labeling_prob=pi).fit(
        correction=None
    )
    _close(res, _reference("poisson", study.real, w / pi))
    assert "weighted by w/pi" in str(res.summary())


@pytest.mark.parametrize("weights_of_pi", [False, True])
def test_fast_bootstrap_identity_replicate_reproduces_the_weighted_fit(weights_of_pi) -> None:
    study = make_study("logit", n_units=600, n_labeled=150, seed=26)
    rng = np.random.default_rng(26)
    w = pd.Series(rng.uniform(0.2, 5.0, 600), index=study.proxy.index)
    pi = pd.Series(rng.uniform(0.2, 0.6, 150), index=study.real.index) if weights_of_pi else None
    res = smf.gmm_synth(
        study.formula, real=study.real, proxy=study.proxy, synth=study.synth, model="logit",
        weights=w, labeling_prob=pi,
    ).fit(correction=None, shrinkage=None)
    exact = ReplicateBootstrap(res)
    theta, se = exact.replicate(exact.identity_draw())
    fast = KStepBootstrap(res)
    center, se_fast, _, _ = fast.run([fast.identity_draw()])
    bse = res.bse.to_numpy()
    # the replicate's Gauss-Newton stops at 1e-4 SE; measured 1.6e-4 to 3.7e-4
    assert np.max(np.abs(theta - res.params.to_numpy()) / bse) < 2e-3
    assert np.max(np.abs(center[0] - res.params.to_numpy()) / bse) < 2e-3
    np.testing.assert_allclose(se, bse, rtol=1e-3)
    np.testing.assert_allclose(se_fast[0], bse, rtol=1e-3)


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        (lambda p: np.r_[-1.0, np.ones(len(p) - 1)], r"finite numbers > 0.*\['unit"),
        (lambda p: np.r_[0.0, np.ones(len(p) - 1)], r"finite numbers > 0.*weight 0 is a dropped unit"),
        (lambda p: pd.Series(np.r_[np.nan, np.ones(len(p) - 1)], index=p.index), r"finite numbers > 0.*\['unit"),
        (lambda p: np.r_[np.inf, np.ones(len(p) - 1)], r"finite numbers > 0"),
        (lambda p: np.ones(len(p) - 1), r"one value per unit \(200\).*got length 199"),
        (lambda p: pd.Series(1.0, index=p.index[1:]), r"missing for units \['unit"),
        (lambda p: "no_such_column", r"'no_such_column' was not found"),
        (lambda p: "label", r"survey weights 'label' must be numbers.*unit\(s\) \['unit"),
        (lambda p: "flag", r"survey weights 'flag' must be numbers"),
        (lambda p: "gap", r"survey weights 'gap' is missing for unit\(s\) \['unit"),
    ],
)
def test_bad_weights_are_errors_naming_the_column_and_units(weights, match) -> None:
    study = make_study("ols", n_units=200, n_labeled=40, seed=27)
    proxy = study.proxy.assign(
        label="a", flag=True, gap=np.r_[np.nan, np.ones(199)],
    )
    with pytest.raises(SpecificationError, match=match):
        smf.gmm_proxy(study.formula, real=study.real, proxy=proxy, weights=weights(proxy))


def test_a_weight_column_must_agree_across_a_units_synthetic_rows() -> None:
    study = make_study("ols", n_units=200, n_labeled=40, seed=28, k_synth=2)
    synth = study.synth.assign(sw=np.arange(len(study.synth), dtype=float) + 1)
    with pytest.raises(SpecificationError, match=r"'sw' of frame 'synth' differs between rows"):
        smf.gmm_synth(study.formula, real=study.real, synth=synth, weights="sw")


def test_weighted_gmm_proxy_covers_a_survey_population_coefficient() -> None:
    """A small seeded version of benchmarks/survey_weights_coverage.py."""
    spec = importlib.util.spec_from_file_location("survey_weights_coverage", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    truth = bench.population_truth()
    reps = 60
    trials = [bench.trial(seed, truth, 1000, 200, estimators=("weighted",)) for seed in range(reps)]
    coverage = np.mean([t["weighted"] for t in trials], axis=0)
    # 60 studies: binomial SE 0.028 at 0.95; three SE either side is [0.866, 1]
    assert np.all(coverage >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / reps)), coverage
    # the unweighted line misses the population slope (measured coverage 0.02
    # over 100 studies): without the weights this check could not fail
    unweighted = [bench.trial(seed, truth, 1000, 200, estimators=("unweighted",)) for seed in range(10)]
    assert np.mean([t["unweighted"][1] for t in unweighted]) < 0.5
