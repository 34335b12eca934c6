"""Generalized-linear-model scores: OLS, logit, probit, Poisson, fractional logit, mean.

Each is a single-index family. For OLS, logit, Poisson and the fractional
logit (canonical links) ``r = y - mu(x'b)`` and the slope is ``-mu'``; the
probit's maximum-likelihood score weights the residual by
``phi / (Phi (1 - Phi))``, so its slope depends on the outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import pandas as pd
import scipy.special

from ..exceptions import PerfectSeparationError, SpecificationError, describe_units
from .base import Solution
from .single_index import SingleIndexFamily

__all__ = ["GLMFamily", "OLS", "Logit", "FractionalLogit", "Probit", "Poisson", "Mean"]


class GLMFamily(SingleIndexFamily):
    """``r = y - mu(x'b)``: the estimating equation of a GLM with canonical link."""

    has_objective = True

    def mean(self, lin: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def mean_deriv(self, lin: np.ndarray) -> np.ndarray:
        """d mu / d lin."""
        raise NotImplementedError

    def mean_and_deriv(self, lin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """mu and d mu / d lin together (one transcendental evaluation)."""
        return self.mean(lin), self.mean_deriv(lin)

    def residual_and_weight(self, y: np.ndarray, lin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu, dmu = self.mean_and_deriv(lin)
        return y - mu, dmu


def _outcome_error(frame: str, family: str, rule: str, outcome: str, bad: np.ndarray, y: np.ndarray, index: pd.Index) -> SpecificationError:
    return SpecificationError(
        f"frame {frame!r}: a {family} outcome must be {rule}, but {outcome!r} takes other "
        f"values (e.g. {np.unique(y[bad])[:5].tolist()}) in {int(bad.sum())} unit(s) "
        f"{describe_units(index[bad])}"
    )


class OLS(GLMFamily):
    name = "ols"
    label = "OLS"
    constant_jacobian = True

    def mean(self, lin: np.ndarray) -> np.ndarray:
        return lin

    def mean_deriv(self, lin: np.ndarray) -> np.ndarray:
        return np.ones_like(lin)

    def residual_and_weight(self, y: np.ndarray, lin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return y - lin, np.ones(np.shape(lin))

    def index_objective(self, lin: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
        return 0.5 * float(w @ (y - lin) ** 2)

    def solve(self, X, y, weights, *, names, frame, start=None, maxiter=100, tol=1e-7, check_rank=True) -> Solution:
        """Least squares in closed form (the normal equations, or lstsq if ill-conditioned)."""
        from ..solvers import check_full_rank, solve_symmetric

        w = np.ones(len(y)) if weights is None else weights
        hessian = self.gram(X, np.zeros(X.shape[1]), w)
        if check_rank:
            check_full_rank(X, names, frame, gram=hessian)
        scale = np.sqrt(np.diag(hessian))
        if np.linalg.cond(hessian / np.outer(scale, scale)) < 1e8:
            params = solve_symmetric(hessian, X.T @ (w * y))
        else:
            sw = np.sqrt(w)  # ill-conditioned: least squares on the rows keeps the digits
            params = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)[0]
        return Solution(params, -hessian, self.evaluate(X, y, params))

    def leverage(self, X: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
        """``h_jj = w_j x_j' (X' W X)^-1 x_j``: the diagonal of the hat matrix of
        (weighted) least squares, statsmodels' ``WLS`` leverage (of ``sqrt(w) X``).

        It does not depend on the estimate. Taken from the left singular vectors
        of ``sqrt(w) X``: an ill-conditioned design keeps its digits, and a
        rank-deficient one (refused later by the fit, naming the columns) gives
        the projection on its column space instead of spurious values.
        """
        whitened = X if weights is None else X * np.sqrt(weights)[:, None]
        basis, singular, _ = np.linalg.svd(whitened, full_matrices=False)
        keep = singular > singular.max(initial=0.0) * max(whitened.shape) * np.finfo(float).eps
        basis = basis[:, keep]
        return np.einsum("ij,ij->i", basis, basis)


def expit(lin: np.ndarray) -> np.ndarray:
    """``1 / (1 + e^-lin)``, accurate to a few ulp in both tails.

    numpy's vectorised exp makes this about three times faster than
    ``scipy.special.expit``; e^-lin overflowing to inf gives the correct 0.
    """
    out = np.negative(lin)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)  # in place: a second temporary costs more than the exp
    out += 1.0
    return np.reciprocal(out, out=out)


class Logit(GLMFamily):
    """Logistic regression. The human label must be 0/1; an auxiliary source's
    outcome may be a probability in [0, 1] (an LLM's confidence), whose score
    is the Bernoulli quasi-likelihood score, still a valid estimating equation."""

    name = "logit"
    label = "Logit"
    #: outcomes the human (target) labels may take
    target_support: ClassVar[str] = "binary"

    def mean(self, lin: np.ndarray) -> np.ndarray:
        return expit(lin)

    def mean_deriv(self, lin: np.ndarray) -> np.ndarray:
        mu = expit(lin)
        return mu * (1.0 - mu)

    def mean_and_deriv(self, lin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu = expit(lin)
        return mu, mu * (1.0 - mu)

    def index_objective(self, lin: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
        # (quasi-)negative log-likelihood; log(1 + e^t) = max(t, 0) + log1p(e^-|t|)
        # stays finite for large |t| and is several times faster than np.logaddexp
        loss = np.log1p(np.exp(-np.abs(lin)))
        loss += np.maximum(lin, 0.0)
        loss -= y * lin
        return float(w @ loss)

    def check_outcome(self, y, index, frame, outcome, auxiliary=False) -> None:
        if auxiliary or self.target_support == "unit interval":
            bad = ~((y >= 0) & (y <= 1))
            if bad.any():
                raise _outcome_error(frame, self.name, "a probability in [0, 1]", outcome, bad, y, index)
            return
        bad = (y != 0) & (y != 1)
        if bad.any():
            rule = "0 or 1 (a probability in [0, 1] is allowed for auxiliary sources, or use model='fractional_logit')"
            raise _outcome_error(frame, self.name, rule, outcome, bad, y, index)

    def explain_nonexistence(self, X, params, displacement, names, frame) -> None:
        if np.max(np.abs(X @ params)) > 20:
            _raise_diverged(X, displacement, names, frame, self.label,
                            "the logit outcome is perfectly (or quasi-perfectly) separated")


class FractionalLogit(Logit):
    """Papke and Wooldridge's (1996) fractional logit: outcome in [0, 1], Bernoulli
    quasi-likelihood score ``x (y - expit(x'b))``; equals statsmodels' GLM Binomial
    point estimate on fractional outcomes, with robust (HC0) covariance."""

    name = "fractional_logit"
    label = "Fractional logit"
    target_support = "unit interval"


class Probit(SingleIndexFamily):
    """Probit maximum likelihood: ``r = q phi(q t) / Phi(q t)`` with ``q = 2y - 1``."""

    name = "probit"
    label = "Probit"
    has_objective = True
    weight_free_of_y = False

    def mean(self, lin: np.ndarray) -> np.ndarray:
        return scipy.special.ndtr(lin)

    def mean_deriv(self, lin: np.ndarray) -> np.ndarray:
        """d mu / d lin: the standard normal density."""
        return np.exp(-0.5 * lin * lin) / np.sqrt(2 * np.pi)

    def residual_and_weight(self, y: np.ndarray, lin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q = 2.0 * y - 1.0
        u = q * lin
        # the inverse Mills ratio phi(u) / Phi(u); ndtr keeps its relative accuracy
        # down to u = -30, and below (where it would underflow) the ratio is taken
        # in logs; log_ndtr everywhere would cost twice as much
        with np.errstate(divide="ignore", invalid="ignore"):
            mills = np.exp(-0.5 * u * u) / (np.sqrt(2 * np.pi) * scipy.special.ndtr(u))
        tail = u < -30.0
        if tail.any():
            ut = u[tail]
            mills[tail] = np.exp(-0.5 * ut * ut - 0.5 * np.log(2 * np.pi) - scipy.special.log_ndtr(ut))
        return q * mills, mills * (mills + u)

    def index_objective(self, lin: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
        return -float(w @ scipy.special.log_ndtr((2.0 * y - 1.0) * lin))

    def check_outcome(self, y, index, frame, outcome, auxiliary=False) -> None:
        bad = (y != 0) & (y != 1)
        if bad.any():
            raise _outcome_error(frame, self.name, "0 or 1", outcome, bad, y, index)

    def explain_nonexistence(self, X, params, displacement, names, frame) -> None:
        if np.max(np.abs(X @ params)) > 8:
            _raise_diverged(X, displacement, names, frame, self.label,
                            "the probit outcome is perfectly (or quasi-perfectly) separated")


class Poisson(GLMFamily):
    name = "poisson"
    label = "Poisson"

    def mean(self, lin: np.ndarray) -> np.ndarray:
        return np.exp(lin)

    def mean_deriv(self, lin: np.ndarray) -> np.ndarray:
        return np.exp(lin)

    def mean_and_deriv(self, lin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu = np.exp(lin)
        return mu, mu

    def index_objective(self, lin: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
        return float(w @ (np.exp(lin) - y * lin))

    def check_outcome(self, y, index, frame, outcome, auxiliary=False) -> None:
        bad = y < 0
        if bad.any():
            raise SpecificationError(
                f"frame {frame!r}: a poisson outcome must be a non-negative count, but "
                f"{outcome!r} is negative in {int(bad.sum())} unit(s) {describe_units(index[bad])}"
            )

    def explain_nonexistence(self, X, params, displacement, names, frame) -> None:
        if np.min(X @ params) < -20:
            _raise_diverged(X, displacement, names, frame, self.label,
                            "zero counts are perfectly predicted (a term's units have only zero counts)")


class Mean(OLS):
    """The mean of the outcome: ``psi = y - b`` (a formula ``y ~ 1``)."""

    name = "mean"
    label = "Mean"

    def check_design(self, columns: Sequence[str]) -> None:
        if list(columns) != ["Intercept"]:
            raise SpecificationError(
                f"model='mean' estimates the mean of the outcome: the formula must be 'y ~ 1', "
                f"but its design has columns {list(columns)} (use model='ols' for a regression)"
            )


def _raise_diverged(X: np.ndarray, displacement: np.ndarray, names: Sequence[str], frame: str, label: str, what: str) -> None:
    """The culprits are the terms that moved the linear predictor most on the way:
    each coefficient's displacement times its column's root mean square."""
    direction = np.abs(displacement) * np.sqrt((X**2).mean(axis=0))
    culprits = [names[int(j)] for j in np.flatnonzero(direction >= 0.1 * direction.max())]
    raise PerfectSeparationError(
        f"frame {frame!r}: {what}, so the {label} estimate does not exist; the "
        f"coefficients of {culprits} diverge. Drop or merge those terms, or label more units."
    )
