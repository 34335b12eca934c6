"""Negative binomial (NB2) regression: counts with overdispersion, alpha estimated.

``Var(y | x) = mu + alpha mu^2`` with ``mu = exp(x'b)``. The parameters are
``(b, alpha)``: the maximum-likelihood scores are

    s_b = x (y - mu) / (1 + alpha mu),
    s_alpha = -(1/alpha^2) [digamma(y + 1/alpha) - digamma(1/alpha)
              + log(1/alpha) - log(1/alpha + mu) + (mu - y) / (1/alpha + mu)],

the likelihood statsmodels' ``NegativeBinomial(loglike_method="nb2")`` maximises.
Each auxiliary source gets its own ``(b, alpha)``. A quasi-Poisson score
(``model="poisson"``) needs no dispersion parameter and stays consistent for
the mean under any variance; NB2 is more efficient when its variance holds.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import scipy.linalg
import scipy.special

from ..exceptions import ConvergenceError, SpecificationError, describe_units
from .base import EstimatingFunction, Evaluation, Solution, _select

__all__ = ["NegativeBinomial"]


def _counts_as_index(y: np.ndarray) -> np.ndarray | None:
    """``y`` as integer indices when it holds non-negative integer counts of moderate
    size (every outcome of this family), else None."""
    if not y.size:
        return None
    top, bottom = y.max(), y.min()
    if not (np.isfinite(top) and bottom >= 0 and top <= 1_000_000):
        return None
    index = y.astype(np.intp)
    return index if np.array_equal(index, y) else None


def _at_counts(function, y: np.ndarray, index: np.ndarray | None, theta: float) -> np.ndarray:
    """``function(y + theta)``: with integer counts from a table over 0..max(y), the
    same values at the same arguments, without a special function per row (they
    dominated the fit: a few dozen distinct counts in a million rows)."""
    if index is None:
        return function(y + theta)
    return function(np.arange(int(index.max()) + 1, dtype=float) + theta)[index]


class _NBEvaluation(Evaluation):
    def __init__(self, X: np.ndarray, y: np.ndarray, params: np.ndarray) -> None:
        self.X, self.y = X, y
        b, alpha = params[:-1], float(params[-1])
        self.alpha = alpha
        self.n_rows, p = X.shape
        self.n_moments = self.n_params = p + 1
        mu = np.exp(X @ b)
        theta = 1.0 / alpha
        self._mu, self._theta = mu, theta
        self._counts = _counts_as_index(y)
        one = 1.0 + alpha * mu
        self._one = one
        self.r_b = (y - mu) / one
        self._bracket = (
            _at_counts(scipy.special.digamma, y, self._counts, theta) - scipy.special.digamma(theta)
            + np.log(theta) - np.log(theta + mu) + (mu - y) / (theta + mu)
        )
        self.s_alpha = -self._bracket / alpha**2

    # second derivatives per row, computed when a Jacobian is asked for (the
    # scores alone need no trigamma): d s_b / d eta (times x x'), the cross
    # term, d s_alpha / d alpha
    @functools.cached_property
    def h_bb(self) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # as in evaluate
            return -self._mu * (1.0 + self.alpha * self.y) / self._one**2

    @functools.cached_property
    def h_ab(self) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return -self._mu * (self.y - self._mu) / self._one**2

    @functools.cached_property
    def h_aa(self) -> np.ndarray:
        theta, mu, y, alpha = self._theta, self._mu, self.y, self.alpha
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            d_bracket = (
                _at_counts(lambda t: scipy.special.polygamma(1, t), y, self._counts, theta)
                - scipy.special.polygamma(1, theta)
                + 1.0 / theta - 1.0 / (theta + mu) - (mu - y) / (theta + mu) ** 2
            )
            return 2.0 * self._bracket / alpha**3 + d_bracket / alpha**4

    def scores(self) -> np.ndarray:
        return np.column_stack([self.X * self.r_b[:, None], self.s_alpha])

    def jacobian(self, weights: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        X = _select(self.X, rows)
        w = np.ones(len(X)) if weights is None else weights
        p = X.shape[1]
        out = np.empty((p + 1, p + 1))
        out[:p, :p] = X.T @ (X * (w * _select(self.h_bb, rows))[:, None])
        cross = X.T @ (w * _select(self.h_ab, rows))
        out[:p, p] = out[p, :p] = cross
        out[p, p] = w @ _select(self.h_aa, rows)
        return out

    def vjp(self, v: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        X = _select(self.X, rows)
        xv = X @ v[:-1]
        h_ab = _select(self.h_ab, rows)
        row_b = xv * _select(self.h_bb, rows) + v[-1] * h_ab
        row_a = xv * h_ab + v[-1] * _select(self.h_aa, rows)
        return np.column_stack([X * row_b[:, None], row_a])


class NegativeBinomial(EstimatingFunction):
    """NB2 regression; parameters are the design's coefficients and ``alpha``."""

    name = "negbin"
    label = "NegativeBinomial"
    has_objective = False

    def n_params(self, n_columns: int) -> int:
        return n_columns + 1

    def param_names(self, columns: Sequence[str]) -> list[str]:
        return list(columns) + ["alpha"]

    def check_outcome(self, y, index, frame, outcome, auxiliary=False) -> None:
        bad = (y < 0) | (y != np.round(y))
        if bad.any():
            raise SpecificationError(
                f"frame {frame!r}: a negbin outcome must be a non-negative integer count, but "
                f"{outcome!r} is not in {int(bad.sum())} unit(s) {describe_units(index[bad])}"
            )

    def mean(self, lin: np.ndarray) -> np.ndarray:
        """The mean ``exp(x'b)`` of the linear index (alpha does not enter it)."""
        return np.exp(lin)

    def mean_deriv(self, lin: np.ndarray) -> np.ndarray:
        return np.exp(lin)

    def evaluate(self, X: np.ndarray, y: np.ndarray, params: np.ndarray) -> _NBEvaluation:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return _NBEvaluation(X, y, np.asarray(params, dtype=float))

    def loglike(self, X: np.ndarray, y: np.ndarray, params: np.ndarray, w: np.ndarray) -> float:
        b, alpha = params[:-1], params[-1]
        if alpha <= 0:
            return -np.inf
        mu = np.exp(X @ b)
        theta = 1.0 / alpha
        ll = (
            scipy.special.gammaln(y + theta) - scipy.special.gammaln(theta) - scipy.special.gammaln(y + 1)
            + theta * np.log(theta / (theta + mu)) + y * np.log(mu / (theta + mu))
        )
        return float(w @ ll)

    def solve(
        self, X: np.ndarray, y: np.ndarray, weights: np.ndarray | None, *, names: Sequence[str], frame: str,
        start: np.ndarray | None = None, maxiter: int = 200, tol: float = 1e-7, check_rank: bool = True,
    ) -> Solution:
        """Newton on the log-likelihood from the Poisson fit, with step halving
        that keeps alpha positive and the likelihood rising."""
        from ..solvers import check_full_rank
        from .glm import Poisson

        if check_rank:
            check_full_rank(X, names, frame, gram=X.T @ X)
        w = np.ones(len(y)) if weights is None else weights
        if start is None or len(start) != X.shape[1] + 1:
            b = Poisson().solve(X, y, weights, names=names, frame=frame, check_rank=False).params
            mu = np.exp(X @ b)
            # the method-of-moments alpha from the Poisson residuals
            alpha = max(float(w @ ((y - mu) ** 2 - mu)) / float(w @ mu**2), 1e-3)
            params = np.append(b, alpha)
        else:
            params = np.array(start, dtype=float)
        value = self.loglike(X, y, params, w)
        for _ in range(maxiter):
            evaluation = self.evaluate(X, y, params)
            gradient, jacobian = evaluation.sums(w), evaluation.jacobian(w)
            try:
                step = -scipy.linalg.solve(jacobian, gradient)
            except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
                break
            scale = 1.0
            while scale > 1e-10:
                candidate = params + scale * step
                new_value = self.loglike(X, y, candidate, w)
                if candidate[-1] > 0 and np.isfinite(new_value) and new_value >= value - 1e-12 * abs(value):
                    break
                scale *= 0.5
            else:
                break
            params, value = candidate, new_value
            if np.max(np.abs(scale * step)) <= tol * (1.0 + np.max(np.abs(params))):
                evaluation = self.evaluate(X, y, params)
                return Solution(params, evaluation.jacobian(weights), evaluation)
        raise ConvergenceError(
            f"frame {frame!r}: the negative binomial likelihood did not converge (alpha = "
            f"{params[-1]:.3g}); with little overdispersion use model='poisson'"
        )
