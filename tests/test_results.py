"""The results object behaves like a statsmodels results object."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.stats

import synthinfer.api as smf
from synthinfer.simulate import make_study


@pytest.fixture(scope="module")
def res():
    study = make_study("logit", n_units=1200, n_labeled=250, seed=8)
    rng = np.random.default_rng(8)
    group = pd.Series(rng.choice(["a", "b", "c"], size=1200), index=study.proxy.index)
    real = study.real.assign(group=group[study.real.index])
    proxy = study.proxy.assign(group=group)
    synth = study.synth.assign(group=group[study.synth.index].to_numpy())
    return smf.gmm_synth(
        "y ~ x1 + x2 + C(group)", real=real, proxy={"gpt4o": proxy}, synth={"cond": synth}, model="logit"
    ).fit()


NAMES = ["Intercept", "C(group)[T.b]", "C(group)[T.c]", "x1", "x2"]


def test_pandas_outputs_named_by_design_column(res) -> None:
    assert list(res.params.index) == NAMES
    for attr in ("params", "bse", "tvalues", "pvalues"):
        assert isinstance(getattr(res, attr), pd.Series)
        assert list(getattr(res, attr).index) == NAMES
    assert list(res.cov_params().index) == NAMES and list(res.cov_params().columns) == NAMES
    ci = res.conf_int(alpha=0.1)
    assert list(ci.index) == NAMES
    # the default's small-sample correction: t with n - p - s d_aux degrees of freedom
    df = res.df_resid
    assert res.use_t and 250 - 5 - 2 * 5 < df < 250 - 5
    t = scipy.stats.t.ppf(0.95, df)
    np.testing.assert_allclose(ci[1] - ci[0], 2 * t * res.bse, rtol=1e-10)
    np.testing.assert_allclose(res.tvalues, res.params / res.bse, rtol=1e-12)
    np.testing.assert_allclose(res.pvalues, 2 * scipy.stats.t.sf(np.abs(res.tvalues), df), rtol=1e-10)
    assert res.nobs == 1200 and res.n_labeled == 250
    # the plain two-step: normal inference
    plain = res.model.fit(correction=None)
    assert not plain.use_t
    np.testing.assert_allclose(
        plain.conf_int(alpha=0.1)[1] - plain.conf_int(alpha=0.1)[0], 2 * scipy.stats.norm.ppf(0.95) * plain.bse, rtol=1e-10
    )
    np.testing.assert_allclose(plain.pvalues, 2 * scipy.stats.norm.sf(np.abs(plain.tvalues)), rtol=1e-10)
    np.testing.assert_allclose(plain.params, res.params, rtol=1e-12)


def test_hypothesis_tests_with_string_constraints(res) -> None:
    cov = res.cov_params()
    wald = res.wald_test("x1 = 0, C(group)[T.b] = 0", scalar=True)
    sub = ["x1", "C(group)[T.b]"]
    expected = res.params[sub] @ np.linalg.solve(cov.loc[sub, sub], res.params[sub])
    # with t inference the Wald test is an F test on (2, df) degrees of freedom
    np.testing.assert_allclose(wald.statistic, expected / 2, rtol=1e-8)
    np.testing.assert_allclose(wald.pvalue, scipy.stats.f.sf(expected / 2, 2, res.df_resid), rtol=1e-8)
    plain = res.model.fit(correction=None)
    chi2 = plain.wald_test("x1 = 0, C(group)[T.b] = 0", scalar=True)
    plain_cov = plain.cov_params().loc[sub, sub]
    np.testing.assert_allclose(chi2.statistic, plain.params[sub] @ np.linalg.solve(plain_cov, plain.params[sub]), rtol=1e-8)
    np.testing.assert_allclose(chi2.pvalue, scipy.stats.chi2.sf(chi2.statistic, 2), rtol=1e-8)
    t = res.t_test("x1 - x2 = 0")
    diff = res.params["x1"] - res.params["x2"]
    se = np.sqrt(cov.loc["x1", "x1"] + cov.loc["x2", "x2"] - 2 * cov.loc["x1", "x2"])
    np.testing.assert_allclose(t.effect, diff, rtol=1e-10)
    np.testing.assert_allclose(t.sd, se, rtol=1e-10)
    f = res.f_test("x1 = 0, x2 = 0")
    np.testing.assert_allclose(f.fvalue, res.wald_test("x1 = 0, x2 = 0", scalar=True).statistic, rtol=1e-8)


def test_jtest_and_nuisance(res) -> None:
    jval, pval, df = res.jtest()
    assert df == 2 * 5 and 0 < pval < 1 and jval > 0
    nuisance = res.nuisance_params
    assert list(nuisance.columns) == ["gpt4o", "cond"] and list(nuisance.index) == NAMES
    np.testing.assert_allclose(nuisance.to_numpy().T.ravel(), res.params_full[5:], rtol=1e-12)
    full = res.cov_params_full()
    assert full.shape == (15, 15) and "eta[gpt4o]:x1" in full.index
    np.testing.assert_allclose(full.iloc[:5, :5], res.cov_params(), rtol=1e-12)
    assert (res.nuisance_bse > 0).all().all()


def test_summary_states_the_design(res) -> None:
    text = str(res.summary())
    for needle in ("GMM-Synth", "Logit", "No. Units (N):", "1200", "No. Labeled (n):", "250",
                   "gpt4o", "cond", "2400", "HC0", "Hansen J", "Prob (J)", "C(group)[T.b]"):
        assert needle in text, needle
    html = res._repr_html_()
    assert "<table" in html and "GMM-Synth" in html
    assert "GMM-Synth" in repr(res)
    assert "[0.05 " in str(res.summary(alpha=0.1))


def test_pickle_roundtrip(res) -> None:
    clone = pickle.loads(pickle.dumps(res))
    pd.testing.assert_series_equal(clone.params, res.params)
    pd.testing.assert_series_equal(clone.bse, res.bse)


def test_nothing_is_printed(capsys) -> None:
    study = make_study("poisson", n_units=500, n_labeled=100, seed=3)
    smf.gmm_synth(study.formula, real=study.real, proxy=study.proxy, synth=study.synth, model="poisson").fit()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
