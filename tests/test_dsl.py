"""DSL (Egami et al. 2023) against a hand computation of the R package dsl's moment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.special
import scipy.stats
import statsmodels.api as sm

import synthinfer.api as smf


def _study(rng, N=1000, beta=(1.0, 2.0)):
    """Units with covariate x, an LLM annotation with bias depending on x, and
    unequal known labeling probabilities pi(x); returns real, proxy frames."""
    x = rng.normal(size=N)
    y = beta[0] + beta[1] * x + rng.normal(size=N)
    annotation = y + 0.5 * x + 0.7 * rng.normal(size=N) + 0.3
    pi = np.where(x > 0, 0.3, 0.1)
    labeled = rng.uniform(size=N) < pi
    ids = pd.Index(np.arange(N), name="unit")
    proxy = pd.DataFrame({"y": annotation, "x": x, "pi": pi}, index=ids)
    real = pd.DataFrame({"y": y[labeled], "x": x[labeled]}, index=ids[labeled])
    return real, proxy


def test_dsl_matches_hand_computation_of_r_moment():
    real, proxy = _study(np.random.default_rng(3))
    res = smf.dsl("y ~ x", real=real, proxy=proxy, labeling_prob="pi", folds=5, seed=1).fit()
    # the R package's lm_dsl_moment_base with X_pred = X_orig, solved by hand
    fold = res.fold
    N = len(proxy)
    R = proxy.index.isin(real.index)
    Y = np.zeros(N)
    Y[R] = real["y"].reindex(proxy.index[R]).to_numpy()
    X = np.column_stack([np.ones(N), proxy["x"]])
    F = np.column_stack([X, proxy["y"]])
    y_hat = np.empty(N)
    for k in range(5):
        train = R & (fold != k)
        y_hat[fold == k] = F[fold == k] @ np.linalg.lstsq(F[train], Y[train], rcond=None)[0]
    pi = proxy["pi"].to_numpy()
    pseudo = y_hat + R / pi * (Y - y_hat)
    ref = sm.OLS(pseudo, X).fit(cov_type="HC0")  # the sandwich J^-1 M J^-1 / N of that moment
    np.testing.assert_allclose(res.params, ref.params, rtol=0, atol=1e-8)
    np.testing.assert_allclose(res.bse, ref.bse, rtol=1e-8)
    assert np.isfinite(res.pvalues).all()
    assert "DSL" in str(res.summary())


def test_dsl_coverage_unequal_labeling_probabilities():
    rng = np.random.default_rng(11)
    reps, hits = 100, 0
    for r in range(reps):
        real, proxy = _study(rng, N=800)
        res = smf.dsl("y ~ x", real=real, proxy=proxy, labeling_prob="pi", seed=r).fit()
        lo, hi = np.asarray(res.conf_int(0.05))[1]
        hits += lo <= 2.0 <= hi
    # 95% nominal; fail only below the binomial 0.1% quantile of 100 draws
    assert hits >= scipy.stats.binom.ppf(0.001, reps, 0.95)


def test_dsl_in_compare_and_bad_input():
    import pytest

    from synthinfer.comparison import compare
    from synthinfer.exceptions import SpecificationError

    real, proxy = _study(np.random.default_rng(5))
    res = smf.dsl("y ~ x", real=real, proxy=proxy, labeling_prob="pi").fit()
    weighted = smf.classical("y ~ x", real=real.assign(pi=proxy.loc[real.index, "pi"]), labeling_prob="pi").fit()
    table = compare({"DSL": res, "IPW": weighted})
    assert table.loc[("x", "coef"), "DSL"] == pytest.approx(res.params["x"])
    with pytest.raises(SpecificationError, match="implemented for model='ols' and model='logit'"):
        smf.dsl("y ~ x", real=real.assign(y=(real["y"] > 1).astype(int)), proxy=proxy.assign(y=(proxy["y"] > 1).astype(int)), model="poisson")
    with pytest.raises(SpecificationError, match="proxy="):
        smf.dsl("y ~ x", real=real)


# -- logit -----------------------------------------------------------------------------------


def _logit_study(rng, N=1000, beta=(-0.5, 1.0)):
    """Binary outcomes; an LLM annotation that flips the label more often for x < 0;
    unequal known labeling probabilities pi(x)."""
    x = rng.normal(size=N)
    y = (rng.uniform(size=N) < scipy.special.expit(beta[0] + beta[1] * x)).astype(float)
    annotation = np.where(rng.uniform(size=N) < np.where(x > 0, 0.9, 0.75), y, 1.0 - y)
    pi = np.where(x > 0, 0.3, 0.1)
    labeled = rng.uniform(size=N) < pi
    ids = pd.Index(np.arange(N), name="unit")
    proxy = pd.DataFrame({"y": annotation, "x": x, "pi": pi}, index=ids)
    real = pd.DataFrame({"y": y[labeled], "x": x[labeled]}, index=ids[labeled])
    return real, proxy


def test_dsl_logit_matches_hand_computation_of_r_moment():
    real, proxy = _logit_study(np.random.default_rng(4))
    res = smf.dsl("y ~ x", real=real, proxy=proxy, model="logit", labeling_prob="pi", folds=5, seed=2).fit()
    # the R package's logit_dsl_moment_base with X_pred = X_orig:
    # m = X (Yhat - expit(Xb)) + R/pi X ((Y - expit(Xb)) - (Yhat - expit(Xb))), solved by hand
    fold = res.fold
    N = len(proxy)
    R = proxy.index.isin(real.index)
    Y = np.zeros(N)
    Y[R] = real["y"].reindex(proxy.index[R]).to_numpy()
    X = np.column_stack([np.ones(N), proxy["x"]])
    F = np.column_stack([X, proxy["y"]])
    y_hat = np.empty(N)
    for k in range(5):
        train = R & (fold != k)
        y_hat[fold == k] = F[fold == k] @ np.linalg.lstsq(F[train], Y[train], rcond=None)[0]
    pi = proxy["pi"].to_numpy()

    def moments(b):
        mu = scipy.special.expit(X @ b)
        m_orig = X * (Y - mu)[:, None]
        m_orig[~R] = 0.0
        m_pred = X * (y_hat - mu)[:, None]
        return m_pred + (m_orig - m_pred) * (R / pi)[:, None]

    b = np.zeros(2)
    for _ in range(50):  # Newton on the mean moment, its Jacobian as in logit_dsl_Jacobian
        mu = scipy.special.expit(X @ b)
        J = (X * (mu * (1 - mu))[:, None]).T @ X / N
        step = np.linalg.solve(J, moments(b).mean(axis=0))
        b = b + step
        if np.max(np.abs(step)) < 1e-14:
            break
    mu = scipy.special.expit(X @ b)
    J = (X * (mu * (1 - mu))[:, None]).T @ X / N
    m = moments(b)
    V = np.linalg.inv(J) @ (m.T @ m / N) @ np.linalg.inv(J) / N  # the R package's vcov0 (unscaled X)
    np.testing.assert_allclose(res.params, b, rtol=0, atol=1e-8)
    np.testing.assert_allclose(res.bse, np.sqrt(np.diag(V)), rtol=1e-8)
    np.testing.assert_allclose(res.pseudo_outcome, y_hat + R / pi * (Y - y_hat), rtol=0, atol=1e-12)
    assert np.abs(moments(res.params).mean(axis=0)).max() < 1e-10
    text = str(res.summary())
    assert "DSL" in text and "Logit" in text


def test_dsl_logit_coverage_unequal_labeling_probabilities():
    # small here (formula parsing dominates the time); the committed simulation study
    # (docs/baselines.md) has the long run
    rng = np.random.default_rng(12)
    reps, hits = 60, 0
    for r in range(reps):
        real, proxy = _logit_study(rng, N=800)
        res = smf.dsl("y ~ x", real=real, proxy=proxy, model="logit", labeling_prob="pi", seed=r).fit()
        lo, hi = np.asarray(res.conf_int(0.05))[1]
        hits += lo <= 1.0 <= hi
    # 95% nominal; fail only outside the binomial 0.1% and 99.9% quantiles
    assert scipy.stats.binom.ppf(0.001, reps, 0.95) <= hits <= scipy.stats.binom.ppf(0.999, reps, 0.95)


def test_dsl_logit_bad_input():
    import pytest

    from synthinfer.exceptions import SpecificationError

    real, proxy = _logit_study(np.random.default_rng(6), N=400)
    kw = dict(model="logit", labeling_prob="pi")
    with pytest.raises(SpecificationError, match="logit outcome must be 0 or 1"):
        smf.dsl("y ~ x", real=real.assign(y=real["y"] * 2), proxy=proxy, **kw).fit()
    with pytest.raises(SpecificationError, match="folds must be an integer >= 2, got 1"):
        smf.dsl("y ~ x", real=real, proxy=proxy, folds=1, **kw)
    # too few labeled units outside a fold for the outcome model's 3 features
    few = real.iloc[:5]
    with pytest.raises(SpecificationError, match="labeled training units for 3 outcome-model features"):
        smf.dsl("y ~ x", real=few, proxy=proxy, folds=5, **kw).fit()
    pi0 = proxy.assign(pi=np.where(proxy.index.isin(real.index), 0.0, proxy["pi"]))
    with pytest.raises(SpecificationError, match="labeling probabilities of labeled units"):
        smf.dsl("y ~ x", real=real, proxy=pi0, **kw)
