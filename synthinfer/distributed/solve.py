"""Step 1's root for a partitioned source: the in-memory solvers, step for step.

The in-memory solvers (`synthinfer.solvers.newton_root`, OLS's normal
equations) touch the rows only through sums: the scores, the Jacobian and,
for a line search, the objective. Here each is a pass over the partitions,
and the iteration (start, steps, step halving, stopping rule) is the same,
so the root agrees with the in-memory one to rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.linalg

from ..exceptions import ConvergenceError, UnsupportedFamilyError
from ..families.base import EstimatingFunction, Solution
from ..families.glm import OLS
from ..solvers import _newton_step, check_gram_rank, damped_update, solve_symmetric

__all__ = ["solve_partitioned", "check_gram_rank"]


def solve_partitioned(
    source: Any, family: EstimatingFunction, *, names: Sequence[str], frame: str,
    start: np.ndarray | None = None, maxiter: int = 100, tol: float = 1e-7, check_rank: bool = True,
) -> Solution:
    """Solve ``sum_j w_j psi_j(b) = 0`` over a partitioned source's rows."""
    solver = type(family).solve
    if isinstance(family, OLS) and solver is OLS.solve:
        return _least_squares(source, family, names, frame, check_rank)
    if solver is not EstimatingFunction.solve:
        raise UnsupportedFamilyError(
            f"model {family.name!r} solves its equation with its own algorithm, which is not "
            f"available for Dask sources yet; fit in memory"
        )
    return _newton(source, family, names, frame, start, maxiter, tol, check_rank)


def _least_squares(source: Any, family: OLS, names: Sequence[str], frame: str, check_rank: bool) -> Solution:
    p = len(names)
    zero = np.zeros(p)
    evaluation = source.evaluate(family, zero)
    # at b = 0 the residual is y: the totals are X'(w y) and -X' diag(w) X
    xy, jacobian = evaluation.totals()
    hessian = -jacobian
    if check_rank:
        check_gram_rank(hessian, source.n_rows, names, frame)
    scale = np.sqrt(np.diag(hessian))
    if np.linalg.cond(hessian / np.outer(scale, scale)) < 1e8:
        params = solve_symmetric(hessian, xy)
    else:
        # the in-memory path solves least squares on the rows here; on the Gram the
        # digits lost to the conditioning are lost
        params = np.linalg.lstsq(hessian, xy, rcond=None)[0]
    return Solution(params, -hessian, source.evaluate(family, params))


def _newton(source, family, names, frame, start, maxiter, tol, check_rank) -> Solution:
    p = len(names)
    params = np.zeros(family.n_params(p)) if start is None else np.array(start, dtype=float)
    has_objective = family.has_objective
    with np.errstate(over="ignore", invalid="ignore"):
        evaluation = source.evaluate(family, params)
        gradient, jacobian = evaluation.totals()
        for iteration in range(maxiter):
            jacobian = evaluation.totals()[1]
            if iteration == 0 and check_rank and family.rank_checks_design:
                square = has_objective and jacobian.shape[0] == p
                check_gram_rank(-jacobian if square else source.cross_product(), source.n_rows, names, frame)
            try:
                step = _newton_step(-jacobian, gradient, has_objective)
            except (np.linalg.LinAlgError, scipy.linalg.LinAlgError, ValueError):
                break
            if not np.all(np.isfinite(step)):
                break
            def along(scale: float, at: np.ndarray = params, step: np.ndarray = step) -> tuple[Any, np.ndarray]:
                evaluated = source.evaluate(family, at + scale * step)
                return evaluated, evaluated.totals()[0]

            def loss(scale: float, at: np.ndarray = params, step: np.ndarray = step) -> float | None:
                return source.objective(family, at + scale * step)

            candidate, new_gradient = along(1.0)
            scale, candidate, new_gradient = damped_update(
                step, gradient, candidate, new_gradient, along, loss if has_objective else None
            )
            params = params + scale * step
            evaluation, gradient = candidate, new_gradient
            if np.max(np.abs(scale * step)) <= tol * (1.0 + np.max(np.abs(params))):
                return Solution(params, jacobian, evaluation)
    raise ConvergenceError(
        f"frame {frame!r}: the {family.label} estimating equation did not converge in "
        f"{maxiter} Newton iterations (a Dask source: separation is not diagnosed here; "
        f"fit a sample in memory to see which columns separate the outcome)"
    )
