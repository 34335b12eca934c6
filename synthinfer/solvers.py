"""Solvers shared by every estimator: the rank check, damped Newton for a root
and Gauss-Newton for the GMM objective.

Step 1 of the GMM estimator and the baselines solve estimating equations
``sum_j w_j psi_j(b) = 0`` one design at a time with ``newton_root``
(families with a closed form, such as OLS, override ``solve``); step 2
minimises ``gbar' W gbar`` with ``gauss_newton`` (``gauss_newton_step`` for
scores that are step functions), given the moments and their Jacobian.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.linalg

from .exceptions import ConvergenceError, SingularDesignError

if TYPE_CHECKING:
    from .families.base import EstimatingFunction, Solution

__all__ = [
    "check_full_rank", "check_gram_rank", "damped_update", "newton_root", "solve_symmetric", "QR_RANK_CHECK_MAX_ROWS",
    "SolverInfo", "gauss_newton", "gauss_newton_step",
]


# Above this many rows the rank check works on the p x p Gram matrix instead of a
# QR decomposition of the rows: exact collinearity still shows as a zero
# eigenvalue, at a cost independent of the number of rows (a QR of 100,000 x 20
# takes ~35 ms, as long as the rest of a fit at that size).
QR_RANK_CHECK_MAX_ROWS = 20_000
GRAM_RANK_TOL = 1e-12


def check_full_rank(
    X: np.ndarray, names: Sequence[str], frame: str, gram: np.ndarray | None = None
) -> None:
    """Raise `SingularDesignError` naming the columns that are linear combinations.

    ``gram`` may be any ``X' diag(w) X`` with positive weights (same null space);
    it is used instead of the rows when the frame is large.
    """
    n, p = X.shape
    if gram is not None and n > QR_RANK_CHECK_MAX_ROWS:
        check_gram_rank(gram, n, names, frame)
        return
    _check_row_count(n, p, frame)
    scale = np.sqrt((X**2).sum(axis=0))
    _check_zero_columns(scale, names, frame)
    _, r, pivots = scipy.linalg.qr(X / scale, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int((diag > diag[0] * max(n, p) * np.finfo(float).eps * 10).sum())
    _check_rank(rank, p, pivots, names, frame)


def check_gram_rank(gram: np.ndarray, n_rows: int, names: Sequence[str], frame: str) -> None:
    """`check_full_rank` from a Gram ``X' diag(w) X`` of ``n_rows`` rows alone
    (large frames, and rows that are not in memory)."""
    p = gram.shape[0]
    _check_row_count(n_rows, p, frame)
    scale = np.sqrt(np.clip(np.diag(gram), 0.0, None))
    _check_zero_columns(scale, names, frame)
    # B'B = the scaled Gram, so B has X's column dependencies
    eigval, eigvec = np.linalg.eigh(gram / np.outer(scale, scale))
    B = np.sqrt(np.clip(eigval, 0.0, None))[:, None] * eigvec.T
    _, r, pivots = scipy.linalg.qr(B, pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int((diag**2 > diag[0] ** 2 * GRAM_RANK_TOL).sum())
    _check_rank(rank, p, pivots, names, frame)


def _check_row_count(n: int, p: int, frame: str) -> None:
    if n < p:
        raise SingularDesignError(
            f"frame {frame!r} has {n} rows for {p} parameters; at least {p} are needed"
        )


def _check_zero_columns(scale: np.ndarray, names: Sequence[str], frame: str) -> None:
    zero = np.flatnonzero(scale == 0)
    if zero.size:
        raise SingularDesignError(
            f"frame {frame!r}: design column(s) {[names[int(j)] for j in zero]} are zero in every "
            f"row, so their coefficients are not identified"
        )


def _check_rank(rank: int, p: int, pivots: np.ndarray, names: Sequence[str], frame: str) -> None:
    if rank < p:
        dependent = [names[int(j)] for j in pivots[rank:]]
        raise SingularDesignError(
            f"frame {frame!r}: the design matrix has rank {rank} < {p}; column(s) "
            f"{dependent} are linear combinations of the others (collinear or constant "
            f"within this frame)"
        )


def solve_symmetric(matrix: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve with a positive definite matrix (Cholesky)."""
    return scipy.linalg.cho_solve(scipy.linalg.cho_factor(matrix), rhs)


def newton_direction(minus_jacobian: np.ndarray, gradient: np.ndarray, symmetric: bool) -> np.ndarray | None:
    """The Newton step ``(-J)^-1 gradient``, or None where there is none (a singular
    or non-finite Jacobian): the in-memory and the partitioned solver stop there alike."""
    try:
        if symmetric:
            step = solve_symmetric(minus_jacobian, gradient)
        else:
            step = scipy.linalg.solve(minus_jacobian, gradient)
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgError, ValueError):
        return None
    return step if np.all(np.isfinite(step)) else None


def damped_update(
    step: np.ndarray,
    gradient: np.ndarray,
    candidate: Any,
    new_gradient: np.ndarray,
    along: Callable[[float], tuple[Any, np.ndarray]],
    loss: Callable[[float], float | None] | None,
) -> tuple[float, Any, np.ndarray]:
    """How far to go along a Newton step: ``(scale, evaluation, summed scores)`` there.

    ``along(s)`` evaluates the estimating function at ``params + s step`` (the
    full step's is given as ``candidate`` and ``new_gradient``); ``loss(s)`` is
    the objective there, or None for a family without one. With an objective,
    the step is halved until the loss falls; otherwise until the norm of the
    summed scores falls. One rule for the in-memory and the partitioned solver.
    """
    scale = 1.0
    # The loss is convex along the step: if its slope at the full step is
    # still downhill (or Newton is in its quadratic region), the loss fell.
    if loss is not None and step @ gradient >= 1.0 and not new_gradient @ step >= 0.0:
        value = loss(0.0)
        assert value is not None
        while scale >= 1e-8:
            trial = loss(scale)
            if trial is not None and trial <= value + 1e-12 * abs(value):
                break
            scale *= 0.5
    elif loss is None:
        norm = gradient @ gradient
        while scale >= 1e-8 and not (new_gradient @ new_gradient <= norm * (1 + 1e-12)):
            scale *= 0.5
            candidate, new_gradient = along(scale)
    if scale != 1.0 and loss is not None:
        candidate, new_gradient = along(scale)
    return scale, candidate, new_gradient


def newton_root(
    family: EstimatingFunction,
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None,
    *,
    names: Sequence[str],
    frame: str,
    start: np.ndarray | None = None,
    maxiter: int = 100,
    tol: float = 1e-7,
    check_rank: bool = True,
) -> Solution:
    """Solve ``sum_j w_j psi_j(b) = 0`` by damped Newton.

    Newton converges quadratically near the solution, so it stops once a step
    is below ``tol`` relative to the parameters: the error left after that
    step is of order ``tol**2`` (1e-14 by default). Where the family has an
    objective (a log-likelihood), steps are halved until it falls; otherwise
    until the norm of the summed scores falls. ``check_rank=False`` skips the
    design's rank check, for a caller that has checked this X before.

    Raises
    ------
    SingularDesignError
        The design is rank deficient.
    PerfectSeparationError
        The root does not exist (the family says why, e.g. separation).
    ConvergenceError
        Newton did not converge for another reason.
    """
    from .families.base import Solution

    w = None if weights is None or bool(np.all(weights == 1.0)) else weights
    w_objective = np.ones(len(y)) if w is None else w
    params = family.start_params(X, y, w) if start is None else np.array(start, dtype=float)
    initial = params.copy()
    has_objective = family.has_objective
    with np.errstate(over="ignore", invalid="ignore"):
        evaluation = family.evaluate(X, y, params)
        gradient = evaluation.sums(w)
        for iteration in range(maxiter):
            jacobian = evaluation.jacobian(w)
            if iteration == 0 and check_rank and family.rank_checks_design:
                # a log-likelihood's -J over the design's coefficients is X' diag(positive) X:
                # X's null space, without another pass over the rows
                square = has_objective and jacobian.shape[0] == X.shape[1]
                check_full_rank(X, names, frame, gram=-jacobian if square else X.T @ X)
            step = newton_direction(-jacobian, gradient, has_objective)
            if step is None:
                break

            def along(scale: float, at: np.ndarray = params, step: np.ndarray = step) -> tuple[Any, np.ndarray]:
                evaluated = family.evaluate(X, y, at + scale * step)
                return evaluated, evaluated.sums(w)

            def loss(scale: float, at: np.ndarray = params, step: np.ndarray = step) -> float | None:
                return family.objective(X, y, at + scale * step, w_objective)

            candidate, new_gradient = along(1.0)
            scale, candidate, new_gradient = damped_update(
                step, gradient, candidate, new_gradient, along, loss if has_objective else None
            )
            params = params + scale * step
            evaluation, gradient = candidate, new_gradient
            if np.max(np.abs(scale * step)) <= tol * (1.0 + np.max(np.abs(params))):
                return Solution(params, jacobian, evaluation)
    family.explain_nonexistence(X, params, params - initial, names, frame)
    raise ConvergenceError(
        f"frame {frame!r}: the {family.label} estimating equation did not converge in "
        f"{maxiter} Newton iterations"
    )


# -- step 2: Gauss-Newton for gbar' W gbar -------------------------------------------------

@dataclass(frozen=True)
class SolverInfo:
    """How the step-2 Gauss-Newton iteration ended."""

    converged: bool
    iterations: int
    max_step_in_se: float


def _gauss_newton_direction(
    G: np.ndarray, weights: np.ndarray, gbar: np.ndarray, nobs: int
) -> tuple[np.ndarray, float]:
    """The Gauss-Newton step and its largest size in standard errors."""
    GW = G.T @ weights
    hessian = GW @ G
    step = -scipy.linalg.solve(hessian, GW @ gbar, assume_a="sym")
    se = np.sqrt(np.clip(np.diag(np.linalg.inv(hessian)), 0, None) / nobs)
    return step, float(np.max(np.abs(step) / np.where(se > 0, se, 1.0)))


def gauss_newton(
    start: np.ndarray,
    weights: np.ndarray,
    moments: Callable[[np.ndarray], np.ndarray],
    jacobian: Callable[[np.ndarray, list[np.ndarray] | None], np.ndarray],
    all_units_blocks: Callable[[np.ndarray], list[np.ndarray]],
    *,
    nobs: int,
    constant_jacobian: bool,
    maxiter: int = 100,
    tol: float = 1e-8,
    reused_blocks: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, SolverInfo, np.ndarray]:
    """Minimise ``gbar' W gbar`` by Gauss-Newton with step halving.

    ``moments(b)`` is gbar, ``jacobian(b, blocks)`` its Jacobian G with the
    given all-units blocks (None: computed at b) and ``all_units_blocks(b)``
    those blocks, each source's summed Jacobian over all its rows: the costly
    part of G. They barely move after step 1 (eta is estimated from all N
    units), so they are reused (``reused_blocks``, e.g. step 1's Newton
    Hessians) while the cheap target and labeled blocks are recomputed at every
    iterate. Once the steps fall below ``tol`` the iteration switches to the
    exact G at every iterate, and convergence is declared only for a step
    computed with the exact G that is below ``tol`` standard errors, so the
    estimate satisfies the exact first-order condition. Returns the estimate,
    how the iteration ended and that G.
    """
    params = start.copy()
    gbar = moments(params)
    value = gbar @ weights @ gbar
    exact = reused_blocks is None or constant_jacobian
    blocks = all_units_blocks(params) if reused_blocks is None else reused_blocks
    # once set (near the estimate, or when a reused G stops descending), G is
    # recomputed exactly at every iterate
    endgame = False
    step_in_se = np.inf
    for iteration in range(1, maxiter + 1):
        if endgame and not exact:
            blocks, exact = all_units_blocks(params), True
        G = jacobian(params, blocks)
        step, step_in_se = _gauss_newton_direction(G, weights, gbar, nobs)
        if not exact and step_in_se < 0.5:
            # close enough for Gauss-Newton with the exact G to finish in a
            # step or two; the reused blocks alone would stall ~1e-5 SE away
            endgame = True
        if step_in_se < tol:
            if exact:
                return params, SolverInfo(True, iteration, step_in_se), G
            endgame = True
            continue
        # Step halving guards the first, large steps; near the optimum the
        # objective is flat to rounding and Gauss-Newton steps are trusted.
        scale = 1.0
        while True:
            candidate = params + scale * step
            candidate_gbar = moments(candidate)
            candidate_value = candidate_gbar @ weights @ candidate_gbar
            if step_in_se < 1e-3 or candidate_value <= value * (1 + 1e-12) or scale < 1e-6:
                break
            if not exact:
                break  # a reused Jacobian that does not descend: refresh it first
            scale *= 0.5
        if not exact and step_in_se >= 1e-3 and candidate_value > value * (1 + 1e-12):
            endgame = True
            continue
        params, gbar, value = candidate, candidate_gbar, candidate_value
        exact = constant_jacobian
    return params, SolverInfo(False, maxiter, step_in_se), jacobian(params, None)


def gauss_newton_step(
    start: np.ndarray,
    weights: np.ndarray,
    gbar: np.ndarray,
    jacobian: Callable[[np.ndarray, list[np.ndarray] | None], np.ndarray],
    *,
    nobs: int,
) -> tuple[np.ndarray, SolverInfo, np.ndarray]:
    """One Gauss-Newton step from ``start`` with moments ``gbar`` there, for
    scores that are step functions of the parameters (quantiles): their GMM
    objective is piecewise constant, so it is not iterated; the one-step
    estimator is asymptotically the two-step one. Returns the estimate, the
    step's size and G at ``start``, the step-1 fits: G is a smoothed estimate
    (the scores have no derivative), consistent at either point, and at the
    fits the rows each one interpolates are known (exact zeros, which the
    quantile's kernel leaves out; one step later they are near zero and
    would count as density)."""
    G = jacobian(start, None)
    step, step_in_se = _gauss_newton_direction(G, weights, gbar, nobs)
    params = start + step
    return params, SolverInfo(True, 1, step_in_se), G
