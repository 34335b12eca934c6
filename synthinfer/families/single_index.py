"""Single-index estimating functions: ``psi = x r(y, x'b)``.

OLS, logit, probit, Poisson, the fractional logit and the quantile score all
have this shape: the score is the design row times a scalar ``r`` of the
outcome and the linear index, and its Jacobian is ``-x x' d`` with a scalar
weight ``d = -dr / d(x'b)`` (or, for a non-differentiable ``r``, a smoothed
substitute). Every product the estimators need is then a weighted cross
product of the design: ``X' diag(w d) X``, ``X' (w r)``, with no (rows, q)
array, which keeps a fit at a million rows near the cost of one statsmodels fit.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..rowblocks import weighted_gram
from .base import EstimatingFunction, Evaluation, Factors, _select

__all__ = ["SingleIndexEvaluation", "SingleIndexFamily", "signed_gram"]


def signed_gram(X: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``X' diag(a) X``; a symmetric rank-k update when ``a`` has one sign."""
    if a.size == 0 or np.all(a >= 0):
        return weighted_gram(X, a)
    if np.all(a <= 0):
        return -weighted_gram(X, -a)
    return X.T @ (X * a[:, None])


class SingleIndexEvaluation(Evaluation):
    """``psi_j = x_j r_j``, ``d psi_j / d b = -x_j x_j' d_j``.

    ``nonnegative``: every ``w d`` is known to be >= 0 (a concave
    log-likelihood), so ``X' diag(w d) X`` is a symmetric rank-k update.
    """

    def __init__(self, X: np.ndarray, r: np.ndarray, d: np.ndarray, nonnegative: bool = False) -> None:
        self.X, self.r, self.d = X, r, d
        self.nonnegative = nonnegative
        self.n_rows, self.n_moments = X.shape
        self.n_params = self.n_moments

    def scores(self) -> Factors:
        return self.X, self.r

    def information(self, weights: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        """``X' diag(w d) X`` over ``rows``: minus the Jacobian."""
        d = _select(self.d, rows)
        if weights is not None:
            d = weights * d
        X = _select(self.X, rows)
        return weighted_gram(X, d) if self.nonnegative and (weights is None or np.all(weights >= 0)) else signed_gram(X, d)

    def jacobian(self, weights: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        return -self.information(weights, rows)

    def vjp(self, v: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        X = _select(self.X, rows)
        return X * (-_select(self.d, rows) * (X @ v))[:, None]

    def residual(self) -> np.ndarray:
        return self.r

    def row_block(self, rows: slice | np.ndarray) -> SingleIndexEvaluation:
        # the rows' weights d as computed for the whole (a quantile's density uses its bandwidth)
        return SingleIndexEvaluation(self.X[rows], self.r[rows], self.d[rows], self.nonnegative)


class SingleIndexFamily(EstimatingFunction):
    """An estimating function ``x r(y, x'b)``: subclasses give ``r`` and its slope."""

    #: the weight d does not depend on y (GLMs with canonical link)
    weight_free_of_y: ClassVar[bool] = True
    #: d >= 0 on every row (a concave log-likelihood, or a kernel density)
    nonnegative_weight: ClassVar[bool] = True

    def residual_and_weight(self, y: np.ndarray, lin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``r(y, lin)`` and ``d = -dr/dlin`` per row."""
        raise NotImplementedError

    def evaluate(self, X: np.ndarray, y: np.ndarray, params: np.ndarray) -> SingleIndexEvaluation:
        with np.errstate(over="ignore", invalid="ignore"):
            r, d = self.residual_and_weight(y, X @ params)
        return SingleIndexEvaluation(X, r, d, self.nonnegative_weight)

    def objective(self, X: np.ndarray, y: np.ndarray, params: np.ndarray, w: np.ndarray) -> float | None:
        return self.index_objective(X @ params, y, w)

    def batch_terms(
        self, X: np.ndarray, y: np.ndarray, params: np.ndarray, weights: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """As the base class, with the linear index of every replicate in one product."""
        lin = params @ X.T
        with np.errstate(over="ignore", invalid="ignore"):
            r, d = self.residual_and_weight(y, lin)
        d = np.broadcast_to(d, lin.shape)
        values = X[None] * r[:, :, None]
        # sum_j w_bj d_bj x_j x_j' for every b in one product with the rows' outer
        # products (rows, k^2): no (B, rows, k) weighted copy of X
        k = X.shape[1]
        outer = (X[:, :, None] * X[:, None, :]).reshape(len(X), k * k)
        return values, -((weights * d) @ outer).reshape(len(lin), k, k)

    def index_objective(self, lin: np.ndarray, y: np.ndarray, w: np.ndarray) -> float | None:
        """The line-search objective as a function of the linear index (None: none)."""
        return None

    # -- the scalar pieces, for code that works on the index directly --------------
    def residual(self, X: np.ndarray, y: np.ndarray, params: np.ndarray) -> np.ndarray:
        return self.residual_and_weight(y, X @ params)[0]

    def scores(self, X: np.ndarray, y: np.ndarray, params: np.ndarray) -> np.ndarray:
        """Row-wise scores ``x r``, (rows, p)."""
        return X * self.residual(X, y, params)[:, None]

    def gram(self, X: np.ndarray, params: np.ndarray, weights: np.ndarray | None = None, y: np.ndarray | None = None) -> np.ndarray:
        """``X' diag(w d) X``: minus the Jacobian of the summed scores."""
        if y is None:
            if not self.weight_free_of_y:
                raise ValueError(f"the {self.label} Jacobian depends on the outcome: pass y")
            y = np.zeros(len(X))
        return self.evaluate(X, y, params).information(weights)
