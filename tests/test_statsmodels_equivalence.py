"""With no auxiliary source, GMM-Synth is the classical fit: statsmodels is the truth."""

from __future__ import annotations

import numpy as np
import scipy.stats
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as sm_formula

import synthinfer.api as smf
from synthinfer.simulate import make_study

STATSMODELS = {"ols": sm.OLS, "logit": sm.Logit, "poisson": sm.Poisson}


def _labeled_frame(model: str, seed: int = 3) -> pd.DataFrame:
    study = make_study(model, n_units=1500, n_labeled=400, seed=seed)
    rng = np.random.default_rng(seed)
    real = study.real.copy()
    real["group"] = rng.choice(["a", "b", "c"], size=len(real))
    real["cluster"] = rng.integers(0, 40, size=len(real))
    return real


def _statsmodels_fit(model: str, real: pd.DataFrame, **fit_kwds):
    X = sm.add_constant(real[["x1", "x2"]])
    X["C(group)[T.b]"] = (real["group"] == "b").astype(float)
    X["C(group)[T.c]"] = (real["group"] == "c").astype(float)
    X = X.rename(columns={"const": "Intercept"})
    kwds = {"disp": 0} if model != "ols" else {}
    return STATSMODELS[model](real["y"], X).fit(**kwds, **fit_kwds)


@pytest.mark.parametrize("engine", ["patsy", "formulaic"])
@pytest.mark.parametrize("model", ["ols", "logit", "poisson"])
def test_human_only_equals_statsmodels_hc0(model: str, engine: str) -> None:
    real = _labeled_frame(model)
    res = smf.gmm_synth("y ~ x1 + x2 + C(group)", real=real, model=model, engine=engine).fit(correction=None)
    ref = _statsmodels_fit(model, real, cov_type="HC0")
    assert res.nobs == res.n_labeled == len(real)
    params, bse = res.params, res.bse
    # engines order columns differently; compare by name
    np.testing.assert_allclose(params[ref.params.index], ref.params, rtol=1e-6)
    np.testing.assert_allclose(bse[ref.params.index], ref.bse, rtol=1e-6)
    cov = res.cov_params().loc[ref.params.index, ref.params.index]
    np.testing.assert_allclose(cov, ref.cov_params(), rtol=1e-6, atol=1e-14)
    np.testing.assert_allclose(res.conf_int().loc[ref.params.index], ref.conf_int(), rtol=1e-6)
    np.testing.assert_allclose(res.pvalues[ref.params.index], ref.pvalues, rtol=1e-6, atol=1e-300)
    assert "Human only" in str(res.summary())


@pytest.mark.parametrize("model", ["ols", "logit", "poisson"])
def test_human_only_default_is_statsmodels_hc1_with_t(model: str) -> None:
    real = _labeled_frame(model)
    # least squares' default is HC3 with t (test_human_only_ols_default_is_statsmodels_hc3_with_t);
    # leverage=None is HC1 with t, the default of the families without a hat matrix
    res = smf.gmm_synth("y ~ x1 + x2 + C(group)", real=real, model=model).fit(leverage=None)
    # statsmodels' "HC1" is HC0 for its nonlinear models (no factor): the factor
    # n / (n - p) is applied here by hand, and checked against HC1 for OLS
    ref = _statsmodels_fit(model, real, cov_type="HC0", use_t=True)
    names = ref.params.index
    n, p = len(real), len(names)
    bse = ref.bse * np.sqrt(n / (n - p))
    np.testing.assert_allclose(res.bse[names], bse, rtol=1e-6)
    if model == "ols":
        np.testing.assert_allclose(bse, _statsmodels_fit(model, real, cov_type="HC1").bse, rtol=1e-10)
    t = scipy.stats.t.ppf(0.975, n - p)
    np.testing.assert_allclose(res.conf_int().loc[names, 0], ref.params - t * bse, rtol=1e-6)
    np.testing.assert_allclose(res.pvalues[names], 2 * scipy.stats.t.sf(np.abs(ref.params / bse), n - p), rtol=1e-6, atol=1e-300)
    assert res.df_resid == ref.df_resid == n - p
    assert "HC1 covariance and t inference" in str(res.summary())
    # clustered: statsmodels' corrected cluster covariance with t(G - 1), and the
    # cluster option's own factor is not applied twice
    groups = real["cluster"]
    ref = _statsmodels_fit(model, real, cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)
    for use_correction in (False, True):
        res = smf.gmm_synth("y ~ x1 + x2 + C(group)", real=real, model=model).fit(
            cov_type="cluster", cov_kwds={"groups": "cluster", "use_correction": use_correction}
        )
        np.testing.assert_allclose(res.bse[names], ref.bse, rtol=1e-6)
        np.testing.assert_allclose(res.conf_int().loc[names], ref.conf_int(), rtol=1e-6)
        assert res.df_resid == groups.nunique() - 1


@pytest.mark.parametrize("model", ["ols", "logit", "poisson"])
def test_cluster_equals_statsmodels_cluster(model: str) -> None:
    real = _labeled_frame(model)
    formula = "y ~ x1 + x2 + C(group)"
    ref = _statsmodels_fit(
        model, real, cov_type="cluster", cov_kwds={"groups": real["cluster"], "use_correction": False}
    )
    res = smf.gmm_synth(formula, real=real, model=model).fit(
        cov_type="cluster", cov_kwds={"groups": "cluster", "use_correction": False}, correction=None
    )
    np.testing.assert_allclose(res.bse[ref.params.index], ref.bse, rtol=1e-6)
    # statsmodels' default small-sample factor, on request
    ref_corrected = _statsmodels_fit(
        model, real, cov_type="cluster", cov_kwds={"groups": real["cluster"]}
    )
    corrected = smf.gmm_synth(formula, real=real, model=model).fit(
        cov_type="cluster", cov_kwds={"groups": real["cluster"], "use_correction": True}, correction=None
    )
    np.testing.assert_allclose(corrected.bse[ref.params.index], ref_corrected.bse, rtol=1e-6)
    assert corrected.cov_type == "cluster"


@pytest.mark.parametrize("model", ["ols", "logit"])
def test_cluster_with_singleton_clusters_equals_hc0(model: str) -> None:
    study = make_study(model, n_units=800, n_labeled=150, seed=11)
    kwds = dict(real=study.real, proxy=study.proxy, synth=study.synth, model=model)
    # clustered covariance has no leverage adjustment (CR2/CR3 are not implemented):
    # singleton clusters equal HC0 without it
    hc0 = smf.gmm_synth(study.formula, **kwds).fit(leverage=None)
    units = pd.Series(np.arange(len(study.proxy)), index=study.proxy.index)
    clustered = smf.gmm_synth(study.formula, **kwds).fit(
        cov_type="cluster", cov_kwds={"groups": units, "use_correction": False}
    )
    np.testing.assert_allclose(clustered.params, hc0.params, rtol=1e-10)
    np.testing.assert_allclose(clustered.cov_params(), hc0.cov_params(), rtol=1e-8)
    np.testing.assert_allclose(clustered.jtest()[0], hc0.jtest()[0], rtol=1e-8)


def test_clusters_change_the_answer_when_units_share_clusters() -> None:
    study = make_study("ols", n_units=800, n_labeled=150, seed=12)
    kwds = dict(real=study.real, proxy=study.proxy, synth=study.synth)
    groups = pd.Series(np.arange(len(study.proxy)) // 8, index=study.proxy.index)
    hc0 = smf.gmm_synth(study.formula, **kwds).fit()
    clustered = smf.gmm_synth(study.formula, **kwds).fit(cov_type="cluster", cov_kwds={"groups": groups})
    assert not np.allclose(clustered.bse, hc0.bse, rtol=1e-3)


def test_formula_api_default_engine_is_honoured() -> None:
    import statsmodels.formula

    real = _labeled_frame("ols")
    previous = statsmodels.formula.options.formula_engine
    try:
        statsmodels.formula.options.formula_engine = "formulaic"
        via_option = smf.gmm_synth("y ~ x1 + x2 + C(group)", real=real).fit()
        assert via_option.model.model_data.spec.engine == "formulaic"
    finally:
        statsmodels.formula.options.formula_engine = previous
    via_patsy = smf.gmm_synth("y ~ x1 + x2 + C(group)", real=real).fit()
    assert via_patsy.model.model_data.spec.engine == previous
    ref = sm_formula.ols("y ~ x1 + x2 + C(group)", data=real).fit(cov_type="HC0")
    np.testing.assert_allclose(via_option.params[ref.params.index], ref.params, rtol=1e-8)
    np.testing.assert_allclose(via_patsy.params[ref.params.index], ref.params, rtol=1e-8)


@pytest.mark.parametrize("model", ["ols", "logit", "poisson"])
def test_engines_agree_with_auxiliary_data(model: str) -> None:
    study = make_study(model, n_units=1000, n_labeled=200, seed=5)
    rng = np.random.default_rng(5)
    group = pd.Series(rng.choice(["a", "b"], size=len(study.proxy)), index=study.proxy.index)
    real = study.real.assign(group=group[study.real.index])
    proxy = study.proxy.assign(group=group)
    synth = study.synth.assign(group=group[study.synth.index].to_numpy())
    fits = {
        engine: smf.gmm_synth(
            "y ~ x1 + np.log(np.abs(x2) + 1) + C(group)", real=real, proxy=proxy, synth=synth,
            model=model, engine=engine,
        ).fit()
        for engine in ("patsy", "formulaic")
    }
    patsy_fit, formulaic_fit = fits["patsy"], fits["formulaic"]
    assert sorted(patsy_fit.params.index) == sorted(formulaic_fit.params.index)
    names = patsy_fit.params.index
    np.testing.assert_allclose(formulaic_fit.params[names], patsy_fit.params, rtol=1e-8)
    np.testing.assert_allclose(formulaic_fit.bse[names], patsy_fit.bse, rtol=1e-8)
    np.testing.assert_allclose(formulaic_fit.jtest()[0], patsy_fit.jtest()[0], rtol=1e-8)
