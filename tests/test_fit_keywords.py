"""statsmodels fit() keywords carried over: accepted (ignored or honoured) on every estimator, never a TypeError for disp=0."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

import synthinfer.api as smf
from synthinfer.simulate import make_study

ESTIMATORS = ("gmm_synth", "gmm_proxy", "classical", "naive", "ppi", "reppi", "dsl")


def _model(name: str, study, ols):
    if name == "classical":
        return smf.classical(study.formula, real=study.real, model="logit")
    if name == "gmm_synth":
        return smf.gmm_synth(study.formula, real=study.real, proxy=study.proxy, synth=study.synth, model="logit")
    if name == "dsl":  # DSL is OLS (with uniform labeling probabilities here)
        return smf.dsl(ols.formula, real=ols.real, proxy=ols.proxy.assign(pi=0.25), labeling_prob="pi")
    return getattr(smf, name)(study.formula, real=study.real, proxy=study.proxy, model="logit")


@pytest.fixture(scope="module")
def study():
    return make_study("logit", n_units=600, n_labeled=150, seed=3)


@pytest.fixture(scope="module")
def ols():
    return make_study("ols", n_units=400, n_labeled=100, seed=3)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_statsmodels_output_keywords_are_accepted_and_change_nothing(name, study, ols, capsys) -> None:
    plain = _model(name, study, ols).fit()
    carried = _model(name, study, ols).fit(disp=0, maxiter=50, full_output=True, callback=None, retall=False, method="newton")
    assert capsys.readouterr().out == ""  # nothing is printed, disp or not
    np.testing.assert_array_equal(carried.params, plain.params)
    np.testing.assert_array_equal(carried.bse, plain.bse)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_unavailable_optimiser_and_unknown_keyword_are_errors(name, study, ols) -> None:
    with pytest.raises(ValueError, match="method='bfgs'"):
        _model(name, study, ols).fit(method="bfgs")
    with pytest.raises(TypeError, match="not_a_keyword"):
        _model(name, study, ols).fit(not_a_keyword=1)
    with pytest.raises(ValueError, match="use_t"):
        _model(name, study, ols).fit(use_t="yes")


@pytest.mark.parametrize("name", ESTIMATORS)
def test_use_t_chooses_the_reference_distribution_and_keeps_the_covariance(name, study, ols) -> None:
    default = _model(name, study, ols).fit()
    normal = _model(name, study, ols).fit(use_t=False)
    t = _model(name, study, ols).fit(use_t=True)
    np.testing.assert_array_equal(normal.bse, default.bse)  # only the reference changes
    np.testing.assert_array_equal(t.bse, default.bse)
    assert not normal.use_t and np.isinf(normal.df_resid)
    np.testing.assert_allclose(normal.pvalues, 2 * scipy.stats.norm.sf(np.abs(normal.tvalues)), rtol=1e-12)
    assert t.use_t and np.isfinite(t.df_resid)
    if default.use_t:  # a small-sample t reference is kept as it is
        assert t.df_resid == default.df_resid
    else:  # statsmodels' t(n - p): n the labeled units, the pooled rows for naive pooling
        rows = 150 + 450 if name == "naive" else (100 if name == "dsl" else 150)
        assert t.df_resid == rows - len(t.params)
    np.testing.assert_allclose(t.pvalues, 2 * scipy.stats.t.sf(np.abs(t.tvalues), t.df_resid), rtol=1e-12)
    q = scipy.stats.t.ppf(0.975, t.df_resid)
    np.testing.assert_allclose(np.asarray(t.conf_int())[:, 1], np.asarray(t.params) + q * np.asarray(t.bse), rtol=1e-12)
    assert ("t(" in str(t.summary())) or ("P>|t|" in str(t.summary()))
