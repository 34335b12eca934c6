"""Step 1's root for a partitioned source: the in-memory solvers, step for step.

The in-memory solvers (`synthinfer.solvers.newton_root`, OLS's normal
equations) touch the rows only through sums: the scores, the Jacobian and,
for a line search, the objective. Here each is a pass over the partitions,
and the iteration (start, steps, step halving, stopping rule) is the same,
so the root agrees with the in-memory one to rounding.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Sequence
from typing import Any, TypeGuard

import numpy as np

from ..exceptions import ConvergenceError, UnsupportedFamilyError
from ..families.base import EstimatingFunction, Solution
from ..families.glm import OLS
from ..solvers import check_gram_rank, damped_update, newton_direction, solve_symmetric

__all__ = ["solve_partitioned", "solve_together", "check_gram_rank"]

#: a solver that yields where it needs sums it has asked for (see `solve_together`)
Steps = Generator[None, None, Solution]


def solve_partitioned(
    source: Any, family: EstimatingFunction, *, names: Sequence[str], frame: str,
    start: np.ndarray | None = None, maxiter: int = 100, tol: float = 1e-7, check_rank: bool = True,
) -> Solution:
    """Solve ``sum_j w_j psi_j(b) = 0`` over a partitioned source's rows."""
    return solve_together([source], family, [dict(
        names=names, frame=frame, start=start, maxiter=maxiter, tol=tol, check_rank=check_rank,
    )])[0]


def solve_together(sources: Sequence[Any], family: EstimatingFunction, options: Sequence[dict]) -> list[Solution]:
    """Each source's root (`solve_partitioned`), the sources' iterations sharing passes.

    The solvers run in lockstep: each advances until it needs sums it has
    asked for, then one pass over the partitions computes every source's
    (the evaluations of one model share a `PassBatch`). Every source takes
    the same steps as when solved alone, so the roots are the same; M
    sources cost the passes of the slowest one instead of their sum. An
    error is the one solving the sources in order would raise first: that
    of the first source (in order) that fails.
    """
    running = {m: _steps(source, family, **opts) for m, (source, opts) in enumerate(zip(sources, options))}
    quiet = {m: not _least_squares_family(family) for m in running}
    solutions: dict[int, Solution] = {}
    failed: dict[int, BaseException] = {}
    while running:
        for m in sorted(running):
            if m not in running:
                continue
            try:
                # Newton's trial steps may overflow (the line search rejects them)
                with np.errstate(over="ignore", invalid="ignore") if quiet[m] else contextlib.nullcontext():
                    next(running[m])
            except StopIteration as stop:
                solutions[m] = stop.value
                del running[m]
            except Exception as exc:
                failed[m] = exc
                # solved in order, a later source would never have been reached
                for later in [k for k in running if k >= m]:
                    running.pop(later).close()
    if failed:
        raise failed[min(failed)]
    return [solutions[m] for m in range(len(sources))]


def _least_squares_family(family: EstimatingFunction) -> TypeGuard[OLS]:
    return isinstance(family, OLS) and type(family).solve is OLS.solve


def _steps(
    source: Any, family: EstimatingFunction, *, names: Sequence[str], frame: str,
    start: np.ndarray | None = None, maxiter: int = 100, tol: float = 1e-7, check_rank: bool = True,
) -> Steps:
    if _least_squares_family(family):
        return (yield from _least_squares(source, family, names, frame, check_rank))
    if type(family).solve is not EstimatingFunction.solve:
        raise UnsupportedFamilyError(
            f"model {family.name!r} solves its equation with its own algorithm, which is not "
            f"available for Dask sources yet; fit in memory"
        )
    return (yield from _newton(source, family, names, frame, start, maxiter, tol, check_rank))


def _least_squares(source: Any, family: OLS, names: Sequence[str], frame: str, check_rank: bool) -> Steps:
    p = len(names)
    zero = np.zeros(p)
    evaluation = source.evaluate(family, zero)
    yield
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


def _newton(source, family, names, frame, start, maxiter, tol, check_rank) -> Steps:
    p = len(names)
    params = np.zeros(family.n_params(p)) if start is None else np.array(start, dtype=float)
    has_objective = family.has_objective
    # where the source can, the objective comes in the same pass as the sums: the line
    # search's loss at the current point and at the full step then costs no pass of its own
    fused = has_objective and getattr(source, "fuses_objective", False)

    def evaluate(at: np.ndarray) -> Any:
        return source.evaluate(family, at, objective=True) if fused else source.evaluate(family, at)

    evaluation = evaluate(params)
    yield
    gradient, jacobian = evaluation.totals()
    for iteration in range(maxiter):
        jacobian = evaluation.totals()[1]
        if iteration == 0 and check_rank and family.rank_checks_design:
            square = has_objective and jacobian.shape[0] == p
            check_gram_rank(-jacobian if square else source.cross_product(), source.n_rows, names, frame)
        step = newton_direction(-jacobian, gradient, has_objective)
        if step is None:
            break

        def along(scale: float, at: np.ndarray = params, step: np.ndarray = step) -> tuple[Any, np.ndarray]:
            evaluated = evaluate(at + scale * step)
            return evaluated, evaluated.totals()[0]

        full = evaluate(params + 1.0 * step)
        yield
        candidate, new_gradient = full, full.totals()[0]

        def loss(
            scale: float, at: np.ndarray = params, step: np.ndarray = step, here: Any = evaluation,
            full: Any = full,
        ) -> float | None:
            if fused and scale == 0.0:
                return here.objective()
            if fused and scale == 1.0:
                return full.objective()
            return source.objective(family, at + scale * step)

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
