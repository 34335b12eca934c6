"""PPI++ with cross-fitted lambda (tuning="crossfit") and the oracle PPI++ of synthinfer.experiments.

Truths: the fixed-lambda PPI++ (itself tested against ppi-python in
test_baselines.py), a numpy hand computation of ppi-python's power-tuning rule
(``_calc_lam_glm`` on ``_ols_get_stats`` / ``_logistic_get_stats``, written out:
ppi-python's logistic statistics take minutes on a busy machine) on each fold's
training units, and a brute-force loop over the oracle's grid.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import synthinfer
import synthinfer.api as smf
from synthinfer import experiments
from synthinfer.estimators.ppi import PPI
from synthinfer.exceptions import SpecificationError
from synthinfer.simulate import make_study


def _arrays(study):
    """Labeled (X, Y, Yhat) in real's row order and the unlabeled (X, Yhat)."""
    real, proxy = study.real, study.proxy
    unlabeled = proxy[~proxy.index.isin(real.index)]

    def design(frame):
        return np.column_stack([np.ones(len(frame)), frame["x1"], frame["x2"]])

    return (design(real), real["y"].to_numpy(), proxy.loc[real.index, "y"].to_numpy(),
            design(unlabeled), unlabeled["y"].to_numpy())


# -- with every fold's lambda equal it is PPI++ at that lambda ---------------------------------


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("model", ["ols", "logit"])
def test_crossfit_with_equal_fold_lambdas_is_ppi_at_that_lambda(monkeypatch, model, weighted) -> None:
    study = make_study(model, n_units=1000, n_labeled=200, aux="useful", seed=5)
    kwds: dict = {}
    if weighted:  # survey weights combine with the cross-fitted lambda
        kwds["weights"] = pd.Series(np.random.default_rng(5).uniform(0.3, 3.0, 1000), index=study.proxy.index)
    fixed = smf.ppi(study.formula, real=study.real, proxy=study.proxy, model=model, lam=0.37, **kwds)
    reference = fixed.fit(correction=None)
    # every fold's tuning returns 0.37: the cross-fitted equation and covariance must be PPI++'s at 0.37
    monkeypatch.setattr(PPI, "_tuned_lambda", lambda self, use=None: (0.37, None))
    crossfit = smf.ppi(study.formula, real=study.real, proxy=study.proxy, model=model, tuning="crossfit", **kwds)
    res = crossfit.fit(correction=None)
    assert res.tuning == "crossfit" and np.all(res.fold_lam == 0.37) and res.lam == 0.37
    np.testing.assert_allclose(res.params, reference.params, rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.cov_params(), reference.cov_params(), rtol=0, atol=1e-10)
    # and the per-unit path itself (one lambda per labeled unit, all equal)
    per_unit = crossfit._point_estimate(np.full(study.real.shape[0], 0.37))
    np.testing.assert_allclose(per_unit, reference.params, rtol=0, atol=1e-10)


# -- the fold lambdas are ppi-python's rule on each fold's training units -----------------------


def _ols(X, y, w=None):
    w = np.ones(len(y)) if w is None else w
    return np.linalg.solve((X * w[:, None]).T @ X, (X * w[:, None]).T @ y)


def _hand_lambda_ols(X, Y, Yhat, Xu, Yhat_u, w=None, wu=None):
    """ppi-python's ppi_ols_ci tuning, written out: tuned at the lambda = 1 estimate,
    re-tuned at the tuned estimate; lambda = num / denom of _calc_lam_glm, clipped.
    Weights w (labeled), wu (unlabeled) are normalised to mean 1, as ppi-python does."""
    n, N = len(Y), len(Yhat_u)
    w = np.ones(n) if w is None else w / w.mean()
    wu = np.ones(N) if wu is None else wu / wu.mean()

    def estimate(lam):  # ppi_ols_pointestimate: WLS(lam Yhat_u on Xu) - WLS(lam Yhat - Y on X)
        return _ols(Xu, lam * Yhat_u, wu) - _ols(X, lam * Yhat - Y, w)

    def tune(theta):
        inv_h = np.linalg.inv(((X * w[:, None]).T @ X + (Xu * wu[:, None]).T @ Xu) / (n + N))
        return _lambda_rule(X * (w * (X @ theta - Y))[:, None], X * (w * (X @ theta - Yhat))[:, None],
                            Xu * (wu * (Xu @ theta - Yhat_u))[:, None], inv_h)

    return tune(estimate(tune(estimate(1.0))))


def _lambda_rule(grads, grads_hat, grads_hat_u, inv_h):
    """ppi-python's _calc_lam_glm (optim_mode="overall", clip=True), written out."""
    n, N = len(grads), len(grads_hat_u)
    gc, hc = grads - grads.mean(0), grads_hat - grads_hat.mean(0)
    cov = (gc.T @ hc + hc.T @ gc) / n
    var = np.cov(np.concatenate([grads_hat, grads_hat_u]).T)
    lam = np.trace(inv_h @ cov @ inv_h) / (2 * (1 + n / N) * np.trace(inv_h @ var @ inv_h))
    return float(np.clip(lam, 0, 1))


def test_crossfit_fold_lambdas_and_estimate_by_hand_ols() -> None:
    study = make_study("ols", n_units=1000, n_labeled=200, aux="useful", seed=8)
    X, Y, Yhat, Xu, Yhat_u = _arrays(study)
    n, N, K = len(Y), len(Yhat_u), 4
    res = smf.ppi(study.formula, real=study.real, proxy=study.proxy, tuning="crossfit", folds=K, seed=3).fit(
        correction=None)
    fold = np.random.default_rng(3).permutation(np.arange(n) % K)  # balanced folds, seeded
    np.testing.assert_array_equal(res.fold, fold)
    hand = np.array([_hand_lambda_ols(X[fold != k], Y[fold != k], Yhat[fold != k], Xu, Yhat_u) for k in range(K)])
    assert np.ptp(hand) > 1e-3 and 0 < hand.min() and hand.max() < 1  # folds differ, not clipped
    np.testing.assert_allclose(res.fold_lam, hand, rtol=0, atol=1e-10)
    # the estimate: ppi-python's OLS closed form, the imputed fit on the unlabeled units times
    # the mean lambda minus the rectifier regression of lam_k(i) yhat_i - y_i on the labeled units
    lam_i = hand[fold]
    lam_bar = lam_i.mean()
    b = lam_bar * _ols(Xu, Yhat_u) - _ols(X, lam_i * Yhat - Y)
    np.testing.assert_allclose(res.params, b, rtol=0, atol=1e-10)
    assert res.lam == pytest.approx(lam_bar, abs=1e-12)
    # covariance: H^-1 (pooled)  [n/N lam_bar^2 Var_U(psi^m) + Var_L(psi - lam_i psi^m)] H^-1 / n (ddof = 0)
    g, h, hu = X * (X @ b - Y)[:, None], X * (X @ b - Yhat)[:, None], Xu * (Xu @ b - Yhat_u)[:, None]
    d = (g - g.mean(0)) - lam_i[:, None] * (h - h.mean(0))
    hu_c = hu - hu.mean(0)
    inv_h = np.linalg.inv((X.T @ X + Xu.T @ Xu) / (n + N))  # ppi-python's pooled Hessian
    V = inv_h @ (n / N * lam_bar**2 * hu_c.T @ hu_c / N + d.T @ d / n) @ inv_h / n
    np.testing.assert_allclose(res.cov_params(), V, rtol=1e-9)


def test_crossfit_fold_lambdas_with_survey_weights_by_hand_ols() -> None:
    """Each fold's training units get their survey weights renormalised to mean 1 (ppi-python's w)."""
    study = make_study("ols", n_units=1000, n_labeled=200, aux="useful", seed=18)
    X, Y, Yhat, Xu, Yhat_u = _arrays(study)
    sw = pd.Series(np.random.default_rng(18).uniform(0.2, 5.0, 1000), index=study.proxy.index)
    w, wu = sw[study.real.index].to_numpy(), sw[study.proxy.index[~study.proxy.index.isin(study.real.index)]].to_numpy()
    res = smf.ppi(study.formula, real=study.real, proxy=study.proxy, weights=sw, tuning="crossfit", folds=4).fit()
    fold = res.fold
    hand = np.array([_hand_lambda_ols(X[fold != k], Y[fold != k], Yhat[fold != k], Xu, Yhat_u, w[fold != k], wu)
                     for k in range(4)])
    np.testing.assert_allclose(res.fold_lam, hand, rtol=0, atol=1e-10)
    # the unlabeled term's lambda is the weighted mean of the units' lambdas
    assert res.lam == pytest.approx(np.average(hand[fold], weights=w), abs=1e-12)
    unweighted = smf.ppi(study.formula, real=study.real, proxy=study.proxy, tuning="crossfit", folds=4).fit()
    assert np.max(np.abs(unweighted.fold_lam - hand)) > 1e-3  # the weights matter


def _logit_rectified(X, Y, Yhat, Xu, Yhat_u, lam_i, lam_bar):
    """Newton on lam_bar/N sum_U x(mu - yhat) - 1/n sum_L lam_i x(mu - yhat) + 1/n sum_L x(mu - y) = 0."""
    from scipy.special import expit

    n, N = len(Y), len(Yhat_u)
    b = np.zeros(X.shape[1])
    for _ in range(100):
        mu, mu_u = expit(X @ b), expit(Xu @ b)
        g = lam_bar / N * Xu.T @ (mu_u - Yhat_u) - X.T @ (lam_i * (mu - Yhat)) / n + X.T @ (mu - Y) / n
        d, d_u = mu * (1 - mu), mu_u * (1 - mu_u)
        J = lam_bar / N * (Xu * d_u[:, None]).T @ Xu + (X * ((1 - lam_i) * d)[:, None]).T @ X / n
        step = np.linalg.solve(J, g)
        b = b - step
        if np.max(np.abs(step)) < 1e-13:
            break
    return b


def test_crossfit_fold_lambdas_logit_by_hand() -> None:
    from scipy.special import expit

    study = make_study("logit", n_units=1000, n_labeled=200, aux="useful", seed=9)
    X, Y, Yhat, Xu, Yhat_u = _arrays(study)
    n, K = len(Y), 5
    res = smf.ppi(study.formula, real=study.real, proxy=study.proxy, model="logit", tuning="crossfit").fit()
    fold = np.random.default_rng(0).permutation(np.arange(n) % K)
    np.testing.assert_array_equal(res.fold, fold)
    hand = []
    for k in range(K):
        t = fold != k
        args = (X[t], Y[t], Yhat[t], Xu, Yhat_u)

        def lam_at(lam):
            # the fold's PPI++ estimate at lam, then ppi-python's logistic statistics
            # (_logistic_get_stats: scores and the pooled Hessian) and lambda rule there
            theta = _logit_rectified(*args, np.full(t.sum(), lam), lam)
            mu, mu_u = expit(X[t] @ theta), expit(Xu @ theta)
            hessian = ((X[t] * (mu * (1 - mu))[:, None]).T @ X[t] + (Xu * (mu_u * (1 - mu_u))[:, None]).T @ Xu)
            inv_h = np.linalg.inv(hessian / (t.sum() + len(Yhat_u)))
            return _lambda_rule(X[t] * (mu - Y[t])[:, None], X[t] * (mu - Yhat[t])[:, None],
                                Xu * (mu_u - Yhat_u)[:, None], inv_h)

        hand.append(lam_at(lam_at(1.0)))
    hand = np.array(hand)
    assert np.ptp(hand) > 1e-3
    np.testing.assert_allclose(res.fold_lam, hand, rtol=0, atol=1e-8)
    lam_i = hand[fold]
    b = _logit_rectified(X, Y, Yhat, Xu, Yhat_u, lam_i, lam_i.mean())
    np.testing.assert_allclose(res.params, b, rtol=0, atol=1e-8)


@pytest.mark.parametrize("model", ["ols", "logit"])
def test_fit_crossfit_runs_and_summary_says_the_tuning(model) -> None:
    study = make_study(model, n_units=800, n_labeled=150, aux="useful", seed=2)
    res = smf.ppi(study.formula, real=study.real, proxy=study.proxy, model=model, tuning="crossfit", folds=3).fit()
    text = str(res.summary())
    assert "cross-fitted (3 folds)" in text and "lambda cross-fitted in 3 random folds" in text
    assert len(res.fold_lam) == 3 and np.all((0 <= res.fold_lam) & (res.fold_lam <= 1))
    assert np.isfinite(res.bse).all() and res.df_resid == 150 - 3 - 1
    in_sample = smf.ppi(study.formula, real=study.real, proxy=study.proxy, model=model).fit()
    assert "power-tuned" in str(in_sample.summary()) and in_sample.tuning == "in-sample"


@pytest.mark.parametrize(
    ("kwds", "match"),
    [
        ({"tuning": "crossfit", "folds": 40}, "folds=40 exceeds the 30 labeled units"),
        ({"tuning": "crossfit", "folds": 1}, "folds must be an integer >= 2"),
        ({"tuning": "crossfit", "folds": 2.5}, "folds must be an integer >= 2"),
        ({"tuning": "crossfit", "seed": -1}, "seed must be a non-negative integer"),
        ({"tuning": "crossfit", "lam": 0.5}, "lam=0.5 fixes it"),
        ({"folds": 5}, "tuning='in-sample' .* has none"),
        ({"tuning": "cross"}, "tuning must be one of"),
    ],
)
def test_crossfit_bad_input(kwds, match) -> None:
    study = make_study("ols", n_units=300, n_labeled=30, aux="useful", seed=1)
    with pytest.raises(SpecificationError, match=match):
        smf.ppi(study.formula, real=study.real, proxy=study.proxy, **kwds)


def test_crossfit_needs_more_training_labels_than_coefficients() -> None:
    study = make_study("ols", n_units=300, n_labeled=6, aux="useful", seed=1)
    with pytest.raises(SpecificationError, match="folds=2 on 6 labeled units leaves 3 labeled units .* exceed the 3"):
        smf.ppi(study.formula, real=study.real, proxy=study.proxy, tuning="crossfit", folds=2)


def test_crossfit_refuses_the_plain_quantile() -> None:
    study = make_study("ols", n_units=300, n_labeled=60, aux="useful", seed=1)
    with pytest.raises(SpecificationError, match="not available for a plain quantile"):
        smf.ppi("y ~ 1", real=study.real, proxy=study.proxy, model="quantile", tuning="crossfit")


# -- the oracle PPI++ ----------------------------------------------------------------------------


def test_oracle_is_not_in_the_formula_api() -> None:
    for module in (smf, synthinfer):
        assert not [name for name in dir(module) if "oracle" in name.lower()]
        assert not [name for name in getattr(module, "__all__", []) if "oracle" in name.lower()]
    assert "oracle_ppi" in experiments.__all__


@pytest.mark.parametrize(("model", "source"), [("ols", "proxy"), ("logit", "synth")])
def test_oracle_picks_the_grid_lambda_closest_to_the_truth(model, source) -> None:
    study = make_study(model, n_units=600, n_labeled=100, aux="useful", seed=4)
    frames = {source: getattr(study, source)}
    grid = (0.0, 0.3, 0.6, 1.0)
    res = experiments.oracle_ppi(study.formula, study.real, **frames, truth=study.truth, model=model,
                                 targets=["x1"], grid=grid)
    distance = [abs(smf.ppi(study.formula, real=study.real, model=model, lam=lam, **frames).fit().params["x1"]
                    - study.truth["x1"]) for lam in grid]
    best = grid[int(np.argmin(distance))]
    assert res.oracle_lam == best and res.infeasible
    np.testing.assert_allclose(res.oracle_distance, distance, rtol=0, atol=1e-9)
    reference = smf.ppi(study.formula, real=study.real, model=model, lam=best, **frames).fit()
    np.testing.assert_allclose(res.params, reference.params, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.bse, reference.bse, rtol=0, atol=1e-12)


def test_oracle_bad_input() -> None:
    study = make_study("ols", n_units=300, n_labeled=60, aux="useful", seed=1)
    with pytest.raises(SpecificationError, match="grid must be a non-empty"):
        experiments.oracle_ppi(study.formula, study.real, proxy=study.proxy, truth=study.truth, grid=[])
    with pytest.raises(SpecificationError, match="oracle targets"):
        experiments.oracle_ppi(study.formula, study.real, proxy=study.proxy, truth=study.truth, targets=["x9"])
