"""The default small-sample correction's leverage adjustment (``fit(leverage=...)``).

Truths: statsmodels' OLS / WLS HC3 and HC2 with ``use_t=True`` for the
human-only fit and for the GMM fit whose Stein factor is 0 (its estimate is
then the human-only one and its covariance must be too); S rebuilt from the
(N, K) moment matrix and statsmodels' hat-matrix diagonal otherwise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import statsmodels.api as sm

import synthinfer.api as smf
from synthinfer.covariance import LeverageAdjustedCovariance, get_covariance, leverage_adjusted
from synthinfer.exceptions import SparseCovariateWarning
from synthinfer.inference.windmeijer import sandwich_correction, step_one_sensitivity
from synthinfer.simulate import make_study


def _design(real: pd.DataFrame) -> pd.DataFrame:
    return sm.add_constant(real[["x1", "x2"]]).rename(columns={"const": "Intercept"})


@pytest.mark.parametrize("kind", ["HC3", "HC2"])
def test_human_only_ols_default_is_statsmodels_hc3_with_t(kind: str) -> None:
    study = make_study("ols", n_units=60, n_labeled=60, seed=4)
    real = study.real
    model = smf.classical(study.formula, real=real)
    res = model.fit() if kind == "HC3" else model.fit(leverage="HC2")
    ref = sm.OLS(real["y"], _design(real)).fit(cov_type=kind, use_t=True)
    names = ref.params.index
    np.testing.assert_allclose(res.bse[names], ref.bse, rtol=1e-9)
    np.testing.assert_allclose(res.conf_int().loc[names], ref.conf_int(), rtol=1e-9)
    assert res.df_resid == ref.df_resid == 57
    assert res.leverage == kind
    assert f"{kind} covariance and t inference" in str(res.summary())
    # the same as asking for the covariance by name; off: HC1 with t
    named = model.fit(cov_type=kind)
    np.testing.assert_allclose(named.bse, res.bse, rtol=1e-12)
    off = model.fit(leverage=None)
    np.testing.assert_allclose(off.bse[names], sm.OLS(real["y"], _design(real)).fit(cov_type="HC1").bse, rtol=1e-9)
    assert off.leverage is None
    np.testing.assert_allclose(off.params, res.params, rtol=0, atol=0)


def test_human_only_weighted_is_statsmodels_wls_hc3() -> None:
    study = make_study("ols", n_units=80, n_labeled=80, seed=7)
    real = study.real.assign(w=np.random.default_rng(1).uniform(0.5, 2.0, size=80))
    res = smf.classical(study.formula, real=real, weights="w").fit()
    ref = sm.WLS(real["y"], _design(real), weights=real["w"]).fit(cov_type="HC3", use_t=True)
    np.testing.assert_allclose(res.bse[ref.params.index], ref.bse, rtol=1e-9)


def test_gmm_with_stein_factor_zero_is_statsmodels_hc3() -> None:
    # pure-noise sources: the Stein factor is 0, the estimate is the human-only one,
    # and so must be its covariance: statsmodels' HC3 with t(n - p)
    study = make_study("ols", n_units=600, n_labeled=60, aux="noise", seed=2)
    res = smf.gmm_synth(study.formula, real=study.real, proxy=study.proxy, synth=study.synth).fit()
    assert res.weighting.factor == 0.0
    ref = sm.OLS(study.real["y"], _design(study.real)).fit(cov_type="HC3", use_t=True)
    names = ref.params.index
    np.testing.assert_allclose(res.params[names], ref.params, rtol=1e-8)
    np.testing.assert_allclose(res.bse[names], ref.bse, rtol=1e-8)
    assert res.df_resid == pytest.approx(57)
    np.testing.assert_allclose(res.conf_int().loc[names], ref.conf_int(), rtol=1e-8)


def test_gmm_leverage_adjusted_s_from_the_moment_matrix() -> None:
    study = make_study("ols", n_units=500, n_labeled=50, seed=3)
    model = smf.gmm_synth(study.formula, real=study.real, proxy=study.proxy, synth=study.synth)
    res = model.fit()
    estimator = res.parameter_covariance
    assert isinstance(estimator, LeverageAdjustedCovariance) and res.leverage == "HC3"
    beta = res.params_full
    # from scratch: the (N, K) moments, centered, each labeled unit's target and
    # labeled auxiliary columns divided by 1 - h (statsmodels' hat diagonal)
    moments = model.momcond(beta)
    centered = moments - moments.mean(axis=0)
    h = sm.OLS(study.real["y"], _design(study.real)).fit().get_influence().hat_matrix_diag
    layout = model.layout
    labeled_cols = np.r_[np.arange(layout.q), layout.labeled_auxiliary()]
    pos = model.model_data.labeled_pos
    centered[np.ix_(pos, labeled_cols)] /= (1.0 - h)[:, None]
    expected = centered.T @ centered / len(centered)
    np.testing.assert_allclose(estimator.s(model.moment_blocks(beta)), expected, rtol=1e-10, atol=1e-14)
    # the reported covariance: Windmeijer's sandwich with that S, times n / (n - s q M)
    D = step_one_sensitivity(res)
    G1_inv = np.linalg.inv(model.jacobian(res.start_params)[layout.just_identified()])
    cov = sandwich_correction(res, D, G1_inv, expected)[:3, :3]
    factor = 50 / (50 - res.weighting.factor * 6)
    assert res.small_sample.factor == pytest.approx(factor)
    np.testing.assert_allclose(res.cov_params().values, cov * factor, rtol=1e-9)
    assert res.df_resid == pytest.approx(50 - 3 - res.weighting.factor * 6)
    t = scipy.stats.t.ppf(0.975, res.df_resid)
    np.testing.assert_allclose(res.conf_int()[1] - res.params, t * res.bse, rtol=1e-10)
    # the estimate, the weight matrix and J do not depend on it; the SEs grow
    off = model.fit(leverage=None)
    np.testing.assert_allclose(off.params, res.params, rtol=0, atol=0)
    assert off.jtest()[0] == res.jtest()[0]
    np.testing.assert_allclose(off.moment_covariance, res.moment_covariance, rtol=0, atol=0)
    assert (res.bse.values > 0.97 * off.bse.values).all()
    assert "HC3-type leverage adjustment" in str(res.summary())


@pytest.mark.parametrize("model", ["logit", "poisson"])
def test_families_without_a_hat_matrix_are_unchanged(model: str) -> None:
    study = make_study(model, n_units=500, n_labeled=80, seed=5)
    fitted = smf.gmm_synth(study.formula, real=study.real, proxy=study.proxy, synth=study.synth, model=model)
    res, off = fitted.fit(), fitted.fit(leverage=None)
    assert res.leverage is None
    np.testing.assert_allclose(res.bse, off.bse, rtol=0, atol=0)


def test_clustered_and_other_corrections_are_unchanged() -> None:
    study = make_study("ols", n_units=500, n_labeled=80, seed=6)
    model = smf.gmm_synth(study.formula, real=study.real, proxy=study.proxy, synth=study.synth)
    groups = pd.Series(np.arange(500) % 25, index=study.proxy.index)
    options = {"cov_type": "cluster", "cov_kwds": {"groups": groups}}
    np.testing.assert_allclose(model.fit(**options).bse, model.fit(**options, leverage=None).bse, rtol=0, atol=0)
    for correction in ("windmeijer", None):
        np.testing.assert_allclose(model.fit(correction=correction).bse, model.fit(correction=correction, leverage=None).bse, rtol=0, atol=0)
        assert model.fit(correction=correction).leverage is None


def test_leverage_one_falls_back_to_the_factor_with_a_warning() -> None:
    # with least squares a leverage of 1 makes S singular, so the fit stops before;
    # a family reporting one anyway gets the n/(n - p) factor and a warning
    study = make_study("ols", n_units=40, n_labeled=40, seed=8)
    model = smf.classical(study.formula, real=study.real)
    data, layout = model.model_data, model.layout

    class AtOne:
        def leverage(self, X, weights):
            h = np.full(len(X), 0.1)
            h[3] = 1.0
            return h

    base = get_covariance("HC0", None, data, model.family)
    with pytest.warns(SparseCovariateWarning, match="leverage 1"):
        assert leverage_adjusted(base, data, AtOne(), "HC3", layout) is base
    assert isinstance(leverage_adjusted(base, data, model.family, "HC3", layout), LeverageAdjustedCovariance)
    assert leverage_adjusted(base, data, model.family, None, layout) is base


def test_bad_leverage_name() -> None:
    study = make_study("ols", n_units=40, n_labeled=40, seed=8)
    model = smf.classical(study.formula, real=study.real)
    with pytest.raises(ValueError, match="leverage must be one of"):
        model.fit(leverage="HC4")
    assert model.fit(leverage="none").leverage is None
