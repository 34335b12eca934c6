"""res.diagnostics(): checked against refits, hand computations and simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

import synthinfer
import synthinfer.api as smf
from synthinfer.simulate import make_study, simulate_study


@pytest.fixture(scope="module")
def fitted():
    study = make_study("logit", n_units=2000, n_labeled=250, seed=21)
    kwds = dict(real=study.real, model="logit")
    res = smf.gmm_synth(study.formula, proxy=study.proxy, synth=study.synth, **kwds).fit()
    return study, res, res.diagnostics()


def test_effective_n_and_variance_reduction_match_refits(fitted) -> None:
    study, res, diag = fitted
    human = smf.classical(study.formula, real=study.real, model="logit").fit()
    ratio = (human.bse / res.bse) ** 2
    pd.testing.assert_series_equal(diag.effective_n, 250 * ratio, check_names=False, rtol=1e-8)
    table = synthinfer.compare({"human": human, "gmm": res})
    for term in res.params.index:
        assert table.loc[(term, "effective n"), "gmm"] == pytest.approx(diag.effective_n[term])
    np.testing.assert_allclose(diag.variance_reduction["all"], 1 - 1 / ratio, rtol=1e-8)
    for name, frame in (("proxy", study.proxy), ("synth", study.synth)):
        kwds = {"proxy" if name == "proxy" else "synth": frame}
        alone = smf.gmm_synth(study.formula, real=study.real, model="logit", **kwds).fit()
        np.testing.assert_allclose(
            diag.variance_reduction[name], 1 - (alone.bse / human.bse) ** 2, rtol=1e-6
        )
    assert (diag.variance_reduction["all"] > 0.3).all()


def test_residual_correlation_by_hand(fitted) -> None:
    study, res, diag = fitted
    design = lambda frame: np.column_stack([np.ones(len(frame)), frame["x1"], frame["x2"]])  # noqa: E731
    eta = res.nuisance_params
    human = study.real["y"] - expit(design(study.real) @ res.params.to_numpy())
    proxy = (study.proxy["y"] - expit(design(study.proxy) @ eta["proxy"].to_numpy()))[study.real.index]
    synth_rows = study.synth["y"] - expit(design(study.synth) @ eta["synth"].to_numpy())
    synth = synth_rows.groupby(level=0).mean()[study.real.index]
    assert diag.residual_correlation["proxy"] == pytest.approx(np.corrcoef(human, proxy)[0, 1], rel=1e-9)
    assert diag.residual_correlation["synth"] == pytest.approx(np.corrcoef(human, synth)[0, 1], rel=1e-9)
    assert "Effective number of human labels" in str(res.summary())
    assert "residual" in str(diag) and "<pre>" in diag._repr_html_()


def test_j_reading_flags_a_design_violation() -> None:
    for scenario, rejected in (("differential", True), ("useful", False)):
        study = simulate_study("ols", 5000, 500, synth=scenario, seed=101)
        res = smf.gmm_synth(study.formula, real=study.real, proxy=study.proxy, synth=study.synth).fit()
        reading = res.diagnostics(per_source=False).j_reading
        assert reading.split("; ")[1].startswith("rejected" if rejected else "not rejected"), reading


def test_few_labeled_units_per_moment_is_warned() -> None:
    study = make_study("ols", n_units=500, n_labeled=40, seed=3)
    res = smf.gmm_synth(study.formula, real=study.real, proxy=study.proxy, synth=study.synth).fit()
    diag = res.diagnostics(per_source=False)
    assert any("labeled units per moment" in w for w in diag.warnings)
    assert list(diag.variance_reduction.columns) == ["all"]
    big = make_study("ols", n_units=2000, n_labeled=400, seed=3)
    fine = smf.gmm_synth(big.formula, real=big.real, proxy=big.proxy).fit()
    assert fine.diagnostics(per_source=False).warnings == []


def test_effective_n_agrees_with_the_realised_variance_ratio() -> None:
    reps, n = 300, 250
    gmm, human, effective = [], [], []
    for seed in range(reps):
        study = make_study("ols", n_units=2000, n_labeled=n, seed=seed)
        res = smf.gmm_proxy(study.formula, real=study.real, proxy=study.proxy).fit()
        gmm.append(res.params["x1"])
        human.append(smf.classical(study.formula, real=study.real).fit().params["x1"])
        effective.append(res.diagnostics(per_source=False).effective_n["x1"])
    realised = n * np.var(human) / np.var(gmm)
    # a variance ratio from 300 draws has a relative standard error of about 8%
    assert np.mean(effective) == pytest.approx(realised, rel=0.2)


def test_residual_correlation_averages_each_units_samples() -> None:
    study = make_study("logit", n_units=1500, n_labeled=300, k_synth=3, seed=4)
    synth = study.synth.iloc[np.r_[0:1500, 1500:3000:2, 3000:4500:3]]  # 1, 2 or 3 samples per unit
    res = smf.gmm_synth(study.formula, real=study.real, synth=synth, model="logit").fit()
    design = lambda frame: np.column_stack([np.ones(len(frame)), frame["x1"], frame["x2"]])  # noqa: E731
    human = study.real["y"] - expit(design(study.real) @ res.params.to_numpy())
    rows = synth["y"] - expit(design(synth) @ res.nuisance_params["synth"].to_numpy())
    by_unit = rows.groupby(level=0).mean()[study.real.index]
    observed = res.diagnostics(per_source=False).residual_correlation["synth"]
    assert observed == pytest.approx(np.corrcoef(human, by_unit)[0, 1], rel=1e-9)
