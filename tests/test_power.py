"""Label-budget planning from a pilot, checked against the pilot's own fit and simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import synthinfer.api as smf
from synthinfer.simulate import make_study


def _pilot(model: str):
    study = make_study(model, n_units=5000, n_labeled=200, seed=1)
    kwds = dict(real=study.real, proxy=study.proxy, synth=study.synth, model=model)
    # the planner predicts the two-step asymptotic standard errors
    return study, smf.gmm_synth(study.formula, **kwds).fit(correction=None, shrinkage=None)


@pytest.mark.parametrize("model", ["ols", "logit"])
def test_predictions_at_the_pilot_size_match_the_pilot(model) -> None:
    study, res = _pilot(model)
    budget = res.label_budget()
    np.testing.assert_allclose(budget.se(200), res.bse, rtol=0.05)
    human = smf.classical(study.formula, real=study.real, model=model).fit()
    np.testing.assert_allclose(budget.se(200, sources="none"), human.bse, rtol=0.1)
    for n in (200, 800):
        every, none = budget.se(n), budget.se(n, "none")
        for source in ("proxy", "synth"):
            one = budget.se(n, source)
            assert (every <= one + 1e-12).all() and (one <= none + 1e-12).all()
    assert (budget.se(800) < budget.se(200)).all()
    table = budget.table([200, 800])
    assert list(table.columns) == ["human only", "proxy", "synth", "all sources"]
    assert table.loc[(800, "x1"), "all sources"] == pytest.approx(budget.se(800)["x1"])


def test_labels_for_a_target_standard_error_or_power() -> None:
    _, res = _pilot("logit")
    budget = res.label_budget()
    target = 0.08
    for sources in ("all", "none", "proxy"):
        n = budget.labels_for_se(target, "x1", sources=sources)
        assert budget.se(n, sources)["x1"] <= target < budget.se(n - 1, sources)["x1"]
    assert budget.labels_for_se(target, "x1") < budget.labels_for_se(target, "x1", "none")
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.9)
    assert budget.labels_for_power(0.3, "x1", power=0.9) == budget.labels_for_se(0.3 / z, "x1")
    with pytest.raises(ValueError, match="out of reach"):
        budget.labels_for_se(1e-4, "x1")
    with pytest.raises(KeyError, match="unknown source"):
        budget.se(100, "gpt5")


def test_a_weighted_pilot_is_refused() -> None:
    study = make_study("ols", n_units=500, n_labeled=100, seed=2)
    res = smf.gmm_proxy(study.formula, real=study.real, proxy=study.proxy, labeling_prob=np.full(100, 0.2)).fit()
    with pytest.raises(NotImplementedError, match="simple random sample"):
        res.label_budget()


@pytest.mark.parametrize("model", ["ols", "logit"])
def test_predictions_agree_with_realised_standard_errors(model) -> None:
    # A pilot's variance estimate carries its own sampling error (about 6-10% with 500
    # labels), so the planning formula is judged on the mean prediction of three pilots.
    predicted = {"gmm": [], "human": []}
    for seed in (1, 2, 3):
        study = make_study(model, n_units=5000, n_labeled=500, seed=seed)
        pilot = smf.gmm_synth(study.formula, real=study.real, proxy=study.proxy, synth=study.synth, model=model).fit()
        budget = pilot.label_budget()
        predicted["gmm"].append(budget.se(1000))
        predicted["human"].append(budget.se(1000, "none"))
    estimates = {"gmm": [], "human": []}
    reported = {"gmm": [], "human": []}
    for seed in range(1000, 1200):
        study = make_study(model, n_units=5000, n_labeled=1000, seed=seed)
        fits = {
            "gmm": smf.gmm_synth(study.formula, real=study.real, proxy=study.proxy, synth=study.synth, model=model).fit(),
            "human": smf.classical(study.formula, real=study.real, model=model).fit(),
        }
        for key, res in fits.items():
            estimates[key].append(res.params.to_numpy())
            reported[key].append(res.bse.to_numpy())
    for key in ("gmm", "human"):
        prediction = np.mean(predicted[key], axis=0)
        # within 10% of the standard errors the fits report at n = 1000 ...
        np.testing.assert_allclose(prediction, np.mean(reported[key], axis=0), rtol=0.10)
        # ... and of the Monte Carlo spread, whose own relative error is ~5% (200 draws)
        np.testing.assert_allclose(prediction, np.std(estimates[key], axis=0, ddof=1), rtol=0.15)
