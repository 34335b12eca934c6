"""Quantile regression: ``psi = x (q - 1{y < x'b})``.

The score is a step function of b, so its Jacobian ``-E[x x' f(0 | x)]`` (f
the density of the residual) is estimated by a kernel: each row's slope is
``-K(e / h) / h`` with the Epanechnikov kernel and statsmodels' ``QuantReg``
bandwidth: Hall-Sheather's on the probability scale, turned into the units of
the residuals by ``min(sd(y), IQR(e) / 1.34)``. The resulting sandwich is
Powell's (1991) kernel estimator of the covariance. The p rows a check-loss
fit interpolates (its vertex: exact zero residuals) are left out of the
kernel sum, the other rows' weights scaled by ``m / (m - p)``: each would add
``K(0) / h``, a density too large by ``p K(0) / (m h f)``, 11% at q = 0.9 with
200 rows and t(5) errors (R's quantreg leaves them out of its sparsity
estimate too). For ``y ~ 1`` the sandwich is QuantReg's ``vcov="robust"``
with that one row left out of its density; with covariates QuantReg uses one
density value for every row, Powell's sandwich a density per row.

Step 1 minimises the check loss exactly as a linear program (up to
`EXACT_MAX_ROWS` rows; above, by warm-started iteratively reweighted least
squares, statsmodels' algorithm, to a relative step of 1e-6); with
auxiliary sources, step 2 is one Gauss-Newton step from step 1 (the GMM
objective of step scores is piecewise constant, so it is not iterated), with
G at the step-1 fits, where each block's vertex rows are exact zeros. The
step fixes the target moments the efficient combination asks for; the
target's coefficients are then the exact root of its estimating equation
shifted to them (`Quantile.solve_shifted`: the check loss plus a linear term,
the same linear program), not the step's extrapolation by the kernel slope,
whose relative error (about 20% at q = 0.9, n = 200) would scale the
auxiliary correction and add variance no standard error allows for (see
``GMMSynth._one_step``). Asymptotically both are the efficient two-step
estimator. The covariance takes the target block of G at that root, again a
vertex.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.optimize
import scipy.sparse
from scipy import stats

from ..exceptions import ConvergenceError, SpecificationError
from .base import Solution
from .single_index import SingleIndexEvaluation, SingleIndexFamily

__all__ = ["Quantile", "hall_sheather", "EXACT_MAX_ROWS"]

#: up to this many rows the check loss is minimised exactly (a linear program);
#: above, by iteratively reweighted least squares (an LP of a million rows takes minutes)
EXACT_MAX_ROWS = 5_000
#: IRLS stops at this largest step relative to the parameters (QuantReg's p_tol)
IRLS_TOL = 1e-6
#: a residual this small relative to the outcome's scale is a row the fit interpolates
VERTEX_TOL = 1e-9


def hall_sheather(n: int, q: float, alpha: float = 0.05) -> float:
    """Hall and Sheather's (1988) bandwidth on the probability scale."""
    z = stats.norm.ppf(q)
    num = 1.5 * stats.norm.pdf(z) ** 2
    den = 2.0 * z**2 + 1.0
    return float(n ** (-1.0 / 3) * stats.norm.ppf(1.0 - alpha / 2.0) ** (2.0 / 3) * (num / den) ** (1.0 / 3))


class _QuantileEvaluation(SingleIndexEvaluation):
    """A subset of rows (a source's labeled units) gets the bandwidth of its own
    size: the density at the quantile is estimated from those rows, not with the
    narrower bandwidth chosen for all of them."""

    def __init__(self, family: Quantile, X: np.ndarray, y: np.ndarray, e: np.ndarray) -> None:
        n_params = X.shape[1]
        super().__init__(X, family.q - (e < 0), family.density_weights(y, e, n_params), nonnegative=True)
        self.family, self.y, self.e = family, y, e

    def _subset(self, rows: np.ndarray | None) -> SingleIndexEvaluation:
        if rows is None:
            return self
        y, e = self.y[rows], self.e[rows]
        d = self.family.density_weights(y, e, self.X.shape[1])
        return SingleIndexEvaluation(self.X[rows], self.r[rows], d, True)

    def information(self, weights: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        if rows is None:
            return super().information(weights)
        return self._subset(rows).information(weights)

    def vjp(self, v: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        if rows is None:
            return super().vjp(v)
        return self._subset(rows).vjp(v)


class Quantile(SingleIndexFamily):
    """The q-th conditional quantile (``y ~ 1``: the plain quantile).

    Parameters
    ----------
    q : float
        The quantile, in (0, 1); 0.5 is the median.
    """

    name = "quantile"
    smooth = False
    weight_free_of_y = False

    def __init__(self, q: float = 0.5) -> None:
        if not isinstance(q, (int, float)) or not 0.0 < float(q) < 1.0:
            raise SpecificationError(f"the quantile q must be a number in (0, 1), got {q!r}")
        self.q = float(q)

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"Quantile (q={self.q:g})"

    @property
    def jacobian_note(self) -> str:
        return (
            "Quantile scores are step functions: their Jacobian is a kernel estimate of the "
            "residual density (Epanechnikov, QuantReg's Hall-Sheather bandwidth; Powell's sandwich, "
            "the rows each fit interpolates left out). With auxiliary sources step 2 is one "
            "Gauss-Newton step from step 1 whose target moments the target's coefficients then "
            "solve exactly; G's target block at that solution, the sources' at step 1."
        )

    def bandwidth(self, y: np.ndarray, e: np.ndarray) -> float:
        """The kernel bandwidth for outcomes ``y`` with residuals ``e`` (statsmodels' QuantReg rule).

        The spread is the residuals' interquartile range (over 1.34), capped by
        the outcome's standard deviation: the density is the residuals', and the
        outcome's own spread, which includes what the covariates explain, would
        oversmooth it (and overstate the density in a tail quantile).
        """
        n = len(y)
        h = hall_sheather(n, self.q)
        h = min(h, 0.999 * min(self.q, 1.0 - self.q))  # keep q +- h inside (0, 1)
        iqr = float(np.subtract(*np.percentile(e, [75, 25])))
        spread = min(float(np.std(y)), iqr / 1.34) if iqr > 0 else float(np.std(y))
        return spread * float(stats.norm.ppf(self.q + h) - stats.norm.ppf(self.q - h))

    def residual_and_weight(self, y: np.ndarray, lin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e = y - lin
        return self.q - (e < 0), self.density_weights(y, e)

    def density_weights(self, y: np.ndarray, e: np.ndarray, n_params: int | None = None) -> np.ndarray:
        """``K(e / h) / h`` per row, with the bandwidth for these rows' number.

        With ``n_params`` given, rows whose residual is exactly zero, at most
        ``n_params`` of them, are left out and the others' weights scaled by
        ``m / (m - zeros)`` (m rows): a check-loss minimum interpolates p rows,
        which are not draws from the residual density at the quantile but the
        fit's vertex. Each would add ``K(0) / h`` to the kernel sum: ``p K(0) /
        (m h f)`` of the density ``f`` (11% at q = 0.9, p = 3, m = 200 with t(5)
        errors), a density too large and an interval too short, most of all in
        a tail. R's quantreg leaves the same rows out of its sparsity estimate
        (``summary.rq``, ``se = "iid"``). More zeros than ``n_params`` are ties
        of the outcome, not a vertex, and are kept.
        """
        h = self.bandwidth(y, e)
        u = e / h
        weights = np.where(np.abs(u) <= 1.0, 0.75 * (1.0 - u * u), 0.0) / h
        if n_params is None or len(e) <= n_params:
            return weights
        vertex = np.abs(e) <= VERTEX_TOL * (1.0 + float(np.max(np.abs(y), initial=0.0)))
        zeros = int(vertex.sum())
        if 0 < zeros <= n_params:
            weights = np.where(vertex, 0.0, weights) * (len(e) / (len(e) - zeros))
        return weights

    def evaluate(self, X: np.ndarray, y: np.ndarray, params: np.ndarray) -> _QuantileEvaluation:
        e = y - X @ params
        return _QuantileEvaluation(self, X, y, e)

    def check_loss(self, e: np.ndarray, w: np.ndarray | None = None) -> float:
        loss = e * (self.q - (e < 0))
        return float(loss.sum() if w is None else w @ loss)

    def solve(
        self, X: np.ndarray, y: np.ndarray, weights: np.ndarray | None, *, names: Sequence[str], frame: str,
        start: np.ndarray | None = None, maxiter: int = 100, tol: float = 1e-7, check_rank: bool = True,
        score_sum: np.ndarray | None = None,
    ) -> Solution:
        """Minimise ``sum w rho_q(y - x'b) + c'b`` exactly, as a linear program (HiGHS).

        ``c`` is ``score_sum`` (default zero, the quantile regression): the
        minimum is where the weighted scores sum to it, ``sum w x (q - 1{y <
        x'b}) = c`` (up to the rows the fit interpolates, whose scores take
        the values in between that make it exact), the root of the shifted
        estimating equation (GMM's step 2, `solve_shifted`).
        """
        from ..solvers import check_full_rank

        n, p = X.shape
        if check_rank:
            check_full_rank(X, names, frame, gram=X.T @ X)
        tilt = np.zeros(p) if score_sum is None else np.asarray(score_sum, dtype=float)
        if n > EXACT_MAX_ROWS:
            # IRLS converges linearly: statsmodels' tolerance, whatever Newton's callers ask
            params = self._irls(X, y, weights, start, tol=IRLS_TOL, maxiter=maxiter * 10, tilt=tilt)
            evaluation = self.evaluate(X, y, params)
            return Solution(params, evaluation.jacobian(weights), evaluation)
        w = np.ones(n) if weights is None else weights
        # variables (b, u, v): X b + u - v = y, u, v >= 0; cost c'b + q w'u + (1 - q) w'v
        cost = np.concatenate([tilt, self.q * w, (1.0 - self.q) * w])
        identity = scipy.sparse.identity(n, format="csr")
        equality = scipy.sparse.hstack([scipy.sparse.csr_matrix(X), identity, -identity], format="csr")
        bounds = [(None, None)] * p + [(0, None)] * (2 * n)
        lp = scipy.optimize.linprog(cost, A_eq=equality, b_eq=y, bounds=bounds, method="highs")
        if lp.status != 0:
            raise ConvergenceError(f"frame {frame!r}: the quantile regression LP failed: {lp.message}")
        params = lp.x[:p]
        evaluation = self.evaluate(X, y, params)
        return Solution(params, evaluation.jacobian(weights), evaluation)

    def solve_shifted(
        self, X: np.ndarray, y: np.ndarray, weights: np.ndarray | None, score_sum: np.ndarray, *,
        names: Sequence[str], frame: str, start: np.ndarray | None = None,
    ) -> Solution:
        """The b where ``sum w x (q - 1{y < x'b})`` is ``score_sum``: the check loss
        plus ``score_sum' b``, minimised exactly (`solve`), with the Jacobian there."""
        return self.solve(
            X, y, weights, names=names, frame=frame, start=start, check_rank=False, score_sum=score_sum,
        )

    def _irls(self, X: np.ndarray, y: np.ndarray, weights: np.ndarray | None, start: np.ndarray | None,
              tol: float, maxiter: int, tilt: np.ndarray | None = None) -> np.ndarray:
        """Iteratively reweighted least squares for the check loss (statsmodels'
        QuantReg algorithm, warm-started): weights ``w c / |e|`` with ``c = q`` above
        the fit and ``1 - q`` below, until the largest step is below ``tol``
        relative to the parameters. With ``tilt`` (c), the loss plus ``c'b``:
        each weighted least-squares step solves ``X' A X b = X' A y - c``, the
        check loss being ``sum (A_j / 2) e_j^2`` near the current fit."""
        from ..rowblocks import weighted_gram
        from ..solvers import solve_symmetric

        w = np.ones(len(y)) if weights is None else weights
        if start is None:
            params = solve_symmetric(weighted_gram(X, w), X.T @ (w * y))
        else:
            params = np.array(start, dtype=float)
        for _ in range(maxiter):
            e = y - X @ params
            scale = np.where(e < 0, 1.0 - self.q, self.q) * w / np.maximum(np.abs(e), 1e-6)
            rhs = X.T @ (scale * y)
            new = solve_symmetric(weighted_gram(X, scale), rhs if tilt is None else rhs - tilt)
            step = np.max(np.abs(new - params))
            params = new
            if step <= tol * (1.0 + np.max(np.abs(params))):
                break
        return params

    def __repr__(self) -> str:
        return f"Quantile(q={self.q:g})"
