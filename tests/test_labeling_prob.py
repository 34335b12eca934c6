"""Known labeling probabilities: R_i / pi_i in the labeled moment blocks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import synthinfer.api as smf
from synthinfer.exceptions import SpecificationError
from synthinfer.simulate import make_study


def _same(a, b, rtol=1e-8) -> None:
    np.testing.assert_allclose(a.params, b.params, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(a.bse, b.bse, rtol=rtol)
    np.testing.assert_allclose(a.jtest()[0], b.jtest()[0], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("model", ["ols", "logit", "poisson"])
@pytest.mark.parametrize("prob", ["n/N", 0.37])
def test_equal_probabilities_give_the_unweighted_fit(model, prob) -> None:
    study = make_study(model, n_units=800, n_labeled=160, seed=5)
    value = 160 / 800 if prob == "n/N" else prob
    kwds = dict(real=study.real, proxy=study.proxy, synth=study.synth, model=model)
    plain = smf.gmm_synth(study.formula, **kwds).fit()
    weighted = smf.gmm_synth(study.formula, labeling_prob=np.full(160, value), **kwds).fit()
    _same(weighted, plain)
    assert "known labeling probabilities" in str(weighted.summary())
    assert "known labeling probabilities" not in str(plain.summary())


def test_weighted_classical_is_statsmodels_wls_with_hc0() -> None:
    study = make_study("ols", n_units=1000, n_labeled=300, seed=6)
    prob = pd.Series(np.random.default_rng(6).uniform(0.05, 0.9, 300), index=study.real.index)
    res = smf.classical(study.formula, real=study.real, labeling_prob=prob).fit(correction=None)
    X = sm.add_constant(study.real[["x1", "x2"]])
    ref = sm.WLS(study.real["y"], X, weights=1 / prob).fit(cov_type="HC0")
    np.testing.assert_allclose(res.params.to_numpy(), ref.params.to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(res.bse.to_numpy(), ref.bse.to_numpy(), rtol=1e-8)


def test_probability_given_as_column_series_or_array_agree() -> None:
    study = make_study("logit", n_units=600, n_labeled=150, seed=7)
    prob = np.random.default_rng(7).uniform(0.1, 0.5, 150)
    real = study.real.assign(pi=prob)
    kwds = dict(proxy=study.proxy, model="logit")
    by_column = smf.gmm_proxy(study.formula, real=real, labeling_prob="pi", **kwds).fit()
    by_array = smf.gmm_proxy(study.formula, real=real, labeling_prob=prob, **kwds).fit()
    shuffled = pd.Series(prob, index=real.index).sample(frac=1.0, random_state=1)
    by_series = smf.gmm_proxy(study.formula, real=real, labeling_prob=shuffled, **kwds).fit()
    _same(by_array, by_column)
    _same(by_series, by_column)
    plain = smf.gmm_proxy(study.formula, real=real, **kwds).fit()
    assert not np.allclose(plain.params, by_column.params)


@pytest.mark.parametrize(
    ("prob", "match"),
    [
        (lambda real: np.r_[0.0, np.full(len(real) - 1, 0.5)], r"in \(0, 1\].*'unit"),
        (lambda real: np.r_[1.5, np.full(len(real) - 1, 0.5)], r"in \(0, 1\]"),
        (lambda real: np.r_[np.nan, np.full(len(real) - 1, 0.5)], r"in \(0, 1\]"),
        (lambda real: np.full(len(real) - 1, 0.5), r"one value per labeled unit \(40"),
        (lambda real: pd.Series(0.5, index=real.index[1:]), r"missing for units \['unit"),
        (lambda real: "no_such_column", r"'no_such_column' was not found"),
    ],
)
def test_bad_probabilities_are_errors(prob, match) -> None:
    study = make_study("ols", n_units=200, n_labeled=40, seed=8)
    with pytest.raises(SpecificationError, match=match):
        smf.gmm_synth(study.formula, real=study.real, proxy=study.proxy, labeling_prob=prob(study.real))


def _outcome_dependent_trial(seed: int):
    """Label five times more often where the LLM says the outcome is high."""
    study = make_study("ols", n_units=3000, n_labeled=300, aux="useful", seed=seed)
    rng = np.random.default_rng(10_000 + seed)
    proxy = study.proxy
    prob = pd.Series(np.where(proxy["y"] > proxy["y"].median(), 0.2, 0.04), index=proxy.index)
    real = study.full[rng.random(len(proxy)) < prob.to_numpy()]
    kwds = dict(real=real, proxy=proxy, synth=study.synth)
    fits = {
        "weighted": smf.gmm_synth(study.formula, labeling_prob=prob[real.index], **kwds).fit(),
        "unweighted": smf.gmm_synth(study.formula, **kwds).fit(),
        # PPI++ needs pi for every unit: the unlabeled units get 1/(1 - pi)
        "ppi weighted": smf.ppi(study.formula, real=real, proxy=proxy, labeling_prob=prob).fit(),
        "ppi unweighted": smf.ppi(study.formula, real=real, proxy=proxy).fit(),
    }
    return {
        name: (
            ((res.conf_int()[0] <= study.truth) & (study.truth <= res.conf_int()[1])).to_numpy(),
            res.jtest()[1] < 0.05 if hasattr(res, "jtest") else None,
        )
        for name, res in fits.items()
    }


def test_outcome_dependent_labeling_weighted_covers_unweighted_is_biased() -> None:
    reps = 300
    trials = [_outcome_dependent_trial(seed) for seed in range(reps)]
    coverage = {k: np.mean([t[k][0] for t in trials], axis=0) for k in trials[0]}
    rejection = {k: np.mean([t[k][1] for t in trials]) for k in ("weighted", "unweighted")}
    se = np.sqrt(0.95 * 0.05 / reps)
    # Two-step GMM with 15 moments and inverse-probability weights under-covers by
    # about two points at this effective n (measured 0.925-0.928 over 400 studies);
    # the bound allows that and Monte Carlo error (3.5 SE), and no more.
    assert np.all(coverage["weighted"] >= 0.95 - 0.02 - 3.5 * se), coverage
    assert np.all(coverage["weighted"] <= 0.95 + 3.5 * se), coverage
    assert coverage["unweighted"][0] < 0.6, coverage  # the intercept is biased
    # PPI++ with 1/pi and 1/(1 - pi) weights covers; without them its intercept is biased
    assert np.all(np.abs(coverage["ppi weighted"] - 0.95) <= 3.5 * se), coverage
    assert coverage["ppi unweighted"][0] < 0.8, coverage  # measured 0.63
    # the J test sees that the labeled units are not a simple random sample
    assert rejection["unweighted"] > 0.9 and rejection["weighted"] < 0.05 + 3.5 * np.sqrt(0.05 * 0.95 / reps)
