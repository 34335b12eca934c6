"""predict / fittedvalues / resid against statsmodels on a human-only fit, and through the formula on new data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import synthinfer.api as smf
from synthinfer.simulate import make_study

FAMILIES = {"ols": sm.OLS, "logit": sm.Logit, "poisson": sm.Poisson}


@pytest.mark.parametrize("model", sorted(FAMILIES))
def test_predict_equals_statsmodels_on_a_human_only_fit(model) -> None:
    study = make_study(model, n_units=600, n_labeled=200, seed=5)
    res = smf.classical(study.formula, real=study.real, model=model).fit()
    X = sm.add_constant(study.real[["x1", "x2"]])
    ref = FAMILIES[model](study.real["y"], X).fit(**({} if model == "ols" else {"disp": 0}))
    new = study.proxy.drop(columns="y").iloc[:25]
    np.testing.assert_allclose(res.predict(new), ref.predict(sm.add_constant(new[["x1", "x2"]])), rtol=1e-6)
    np.testing.assert_allclose(
        res.predict(new, which="linear"), sm.add_constant(new[["x1", "x2"]]).to_numpy() @ ref.params.to_numpy(), rtol=1e-6
    )
    assert res.predict(new).index.equals(new.index)
    # on the labeled units predict() is fittedvalues (the mean) and resid is y minus it
    pd.testing.assert_series_equal(res.predict(), res.fittedvalues)
    np.testing.assert_allclose(res.fittedvalues, ref.predict(X), rtol=1e-6)
    np.testing.assert_allclose(res.resid, study.real["y"] - ref.predict(X), rtol=1e-6, atol=1e-9)
    assert res.resid.index.equals(study.real.index)


def test_predict_with_a_source_uses_the_target_coefficients_and_learned_categories() -> None:
    study = make_study("logit", n_units=600, n_labeled=200, seed=6)
    real = study.real.assign(g=np.where(study.real["x1"] > 0, "a", "b"))
    proxy = study.proxy.assign(g=np.where(study.proxy["x1"] > 0, "a", "b"))
    res = smf.gmm_proxy("y ~ x1 + x2 + C(g)", real=real, proxy=proxy, model="logit").fit()
    new = proxy.drop(columns="y").iloc[:3]  # may hold one category only: the learned levels apply
    X = np.column_stack([np.ones(3), (new["g"] == "b").to_numpy(float), new["x1"], new["x2"]])
    lin = X @ res.params.to_numpy()
    np.testing.assert_allclose(res.predict(new, which="linear"), lin, rtol=1e-12)
    np.testing.assert_allclose(res.predict(new), 1 / (1 + np.exp(-lin)), rtol=1e-12)
    with pytest.raises(ValueError, match="which"):
        res.predict(new, which="prob")


@pytest.mark.parametrize("model", ["logit", "poisson"])
def test_f_test_p_value_is_finite_and_equals_statsmodels_on_a_human_only_fit(model) -> None:
    study = make_study(model, n_units=400, n_labeled=200, seed=3)
    res = smf.classical(study.formula, real=study.real, model=model).fit(correction=None)
    X = sm.add_constant(study.real[["x1", "x2"]]).rename(columns={"const": "Intercept"})
    ref = FAMILIES[model](study.real["y"], X).fit(disp=0, cov_type="HC0")
    ours, theirs = res.f_test("x1 = 0, x2 = 0"), ref.f_test("x1 = 0, x2 = 0")
    assert np.isfinite(ours.pvalue) and ours.df_denom == theirs.df_denom == 197
    np.testing.assert_allclose([float(ours.fvalue), float(ours.pvalue)], [float(theirs.fvalue), float(theirs.pvalue)], rtol=1e-6)
    assert np.isinf(res.df_resid)  # the fit's own normal inference is untouched
    with_source = smf.gmm_proxy(study.formula, real=study.real, proxy=study.proxy, model=model).fit(correction=None)
    assert np.isfinite(with_source.f_test("x1 = 0").pvalue)


def test_t_test_pairwise_agrees_with_statsmodels_on_a_human_only_fit() -> None:
    import statsmodels.formula.api as smf_sm

    study = make_study("logit", n_units=400, n_labeled=240, seed=8)
    real = study.real.assign(g=np.array(["a", "b", "c"])[np.arange(240) % 3])
    res = smf.classical("y ~ C(g) + x2", real=real, model="logit").fit(correction=None)
    ref = smf_sm.logit("y ~ C(g) + x2", data=real).fit(disp=0, cov_type="HC0")
    ours, theirs = res.t_test_pairwise("C(g)").result_frame, ref.t_test_pairwise("C(g)").result_frame
    assert list(ours.index) == list(theirs.index) == ["b-a", "c-a", "c-b"]
    np.testing.assert_allclose(ours[["coef", "std err", "z", "P>|z|"]], theirs[["coef", "std err", "z", "P>|z|"]], rtol=1e-6)
