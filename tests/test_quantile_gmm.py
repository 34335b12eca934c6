"""Quantile GMM step 2 against independent truths.

With auxiliary sources the target's coefficients are the exact root of its
estimating equation shifted to the target moments that one Gauss-Newton step
prescribes (`Quantile.solve_shifted`, ``GMMSynth._one_step``). The root is
checked through the optimality (KKT) conditions of the shifted check loss,
written here from scratch: the rows not interpolated keep their step score,
the p interpolated rows' scores can be any value in [q - 1, q] and must make
the sum exact. The unshifted root is statsmodels' QuantReg estimate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.regression.quantile_regression import QuantReg

import synthinfer.api as smf
from synthinfer.families import Quantile


def _design(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.binomial(1, 0.4, n)])
    y = X @ np.array([0.3, 0.8, -0.6]) + rng.standard_t(5, size=n)
    return X, y


def _kkt(X: np.ndarray, y: np.ndarray, w: np.ndarray, q: float, b: np.ndarray, score_sum: np.ndarray):
    """The interpolated rows, their score values that make ``sum w x r = score_sum``
    and what is left of the sum after them (zero at an exact root)."""
    e = y - X @ b
    vertex = np.abs(e) <= 1e-8 * (1.0 + np.abs(y).max())
    r = q - (e < 0)
    rest = score_sum - X[~vertex].T @ (w[~vertex] * r[~vertex])
    wx = (X[vertex] * w[vertex, None]).T
    values = np.linalg.lstsq(wx, rest, rcond=None)[0]
    return vertex, values, rest - wx @ values


@pytest.mark.parametrize("weighted", [False, True])
def test_shifted_root_meets_the_shifted_check_loss_optimality_conditions(weighted: bool) -> None:
    X, y = _design(300)
    q = 0.9
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(y)) if weighted else np.ones(len(y))
    score_sum = np.array([3.0, -2.0, 1.5])  # about one standard deviation of the score sum
    b = Quantile(q).solve_shifted(X, y, w if weighted else None, score_sum, names=["a", "b", "c"], frame="real").params
    vertex, values, left = _kkt(X, y, w, q, b, score_sum)
    assert vertex.sum() == X.shape[1]
    np.testing.assert_allclose(left, 0.0, atol=1e-8)
    assert np.all(values >= q - 1 - 1e-9) and np.all(values <= q + 1e-9)
    # and it is not the unshifted root
    b0 = Quantile(q).solve_shifted(X, y, w if weighted else None, np.zeros(3), names=["a", "b", "c"], frame="real").params
    assert np.max(np.abs(b - b0)) > 1e-3


def test_unshifted_root_is_quantreg() -> None:
    X, y = _design(300)
    ours = Quantile(0.9).solve_shifted(X, y, None, np.zeros(3), names=["a", "b", "c"], frame="real").params
    theirs = QuantReg(y, X).fit(q=0.9, p_tol=1e-12, max_iter=5000).params
    # QuantReg's IRLS stops about 1e-7 from the vertex the LP finds exactly
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_shifted_irls_reaches_the_linear_programs_root() -> None:
    """Above EXACT_MAX_ROWS the shifted loss is minimised by IRLS: its step
    ``X'AX b = X'Ay - c`` reaches the LP's minimum (same rows, solved both ways)."""
    X, y = _design(3000, seed=2)
    family = Quantile(0.9)
    score_sum = np.array([20.0, -15.0, 8.0])
    exact = family.solve(X, y, None, names=["a", "b", "c"], frame="real", score_sum=score_sum).params
    irls = family._irls(X, y, None, None, tol=1e-10, maxiter=5000, tilt=score_sum)
    loss = lambda b: family.check_loss(y - X @ b) + score_sum @ b  # noqa: E731
    assert loss(irls) == pytest.approx(loss(exact), rel=1e-7)
    np.testing.assert_allclose(irls, exact, atol=2e-3)


def _frames(n_units: int = 1200, n_labeled: int = 250, seed: int = 3):
    rng = np.random.default_rng(seed)
    ids = pd.Index([f"u{i:05d}" for i in range(n_units)], name="unit")
    x1, x2 = rng.normal(size=n_units), rng.normal(size=n_units)
    y = 0.3 + 0.8 * x1 - 0.6 * x2 + rng.standard_t(5, n_units)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "y": y}, index=ids)
    real = frame.iloc[np.sort(rng.choice(n_units, n_labeled, replace=False))]
    proxy = frame.assign(y=y + rng.normal(0, 0.5, n_units))
    synth = pd.concat([frame.assign(y=y + rng.normal(0, 1.0, n_units)) for _ in range(2)]).sort_index(kind="stable")
    return real, proxy, synth


def test_gmm_step_two_solves_the_target_moments_one_gauss_newton_step_prescribes() -> None:
    real, proxy, synth = _frames()
    model = smf.gmm_synth("y ~ x1 + x2", real=real, proxy=proxy, synth=synth, model=Quantile(0.9))
    res = model.fit()._results
    layout, nobs, q = model.layout, model.nobs, 0.9
    t = layout.param_block(0)
    # one Gauss-Newton step from step 1, written out: the blocks step 1 solved count as zero
    start = res.start_params
    G1 = model.jacobian(start)
    gbar = model.momcond_mean(start)
    gbar[layout.moment_block(0)] = 0.0
    for m in range(layout.n_sources):
        gbar[layout.all_units_block(m)] = 0.0
    GW = G1.T @ res.weights
    step = -np.linalg.solve(GW @ G1, GW @ gbar)
    # the nuisance parameters take the step; the target solves its equation at the step's moments
    np.testing.assert_allclose(res.params_full[t.stop:], start[t.stop:] + step[t.stop:], rtol=1e-10, atol=1e-12)
    X, y = model.model_data.X, model.model_data.y
    score_sum = nobs * (G1[layout.moment_block(0), t] @ step[t])
    vertex, values, left = _kkt(X, y, np.ones(len(y)), q, res.params_full[t], score_sum)
    assert vertex.sum() == 3
    np.testing.assert_allclose(left, 0.0, atol=1e-8)
    assert np.all(values >= q - 1 - 1e-9) and np.all(values <= q + 1e-9)
    # G: the target block at the estimate (a vertex again), the sources' blocks at step 1
    G2 = model.jacobian(np.concatenate([res.params_full[t], start[t.stop:]]))
    np.testing.assert_allclose(res.jacobian, G2, rtol=1e-12)
    target = layout.moment_block(0), t
    assert not np.allclose(res.jacobian[target], G1[target])


def test_human_only_quantile_fit_is_unchanged_step_one() -> None:
    real, _, _ = _frames()
    res = smf.classical("y ~ x1 + x2", real=real, model=Quantile(0.9)).fit()
    theirs = QuantReg(real["y"].to_numpy(), np.column_stack([np.ones(len(real)), real[["x1", "x2"]]])).fit(
        q=0.9, p_tol=1e-12, max_iter=5000
    )
    np.testing.assert_allclose(res.params.to_numpy(), theirs.params, atol=1e-5)
