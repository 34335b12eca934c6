"""Estimating functions of the model families: OLS, Logit, Poisson.

Each family's estimating function is ``psi(x, y; b) = x (y - mu(x'b))`` with a
family-specific mean function ``mu``. Its Jacobian is
``-x x' mu'(x'b)``, so every derivative the GMM engine needs is a weighted
cross product ``X' diag(w mu') X``. The module also solves one family's
(weighted) estimating equation, which gives the step-1 values of every block.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, NamedTuple

import numpy as np
import pandas as pd
import scipy.linalg

from .exceptions import (
    ConvergenceError,
    PerfectSeparationError,
    SingularDesignError,
    SpecificationError,
    describe_units,
)
from .rowblocks import weighted_gram

__all__ = [
    "Family", "OLS", "Logit", "Poisson", "get_family",
    "NewtonFit", "check_full_rank", "fit_estimating_equation",
    "weighted_gram",
]


class Family:
    """The mean function of an estimating equation ``sum w x (y - mu(x'b)) = 0``."""

    name: ClassVar[str]
    label: ClassVar[str]
    #: mu is linear, so the moments' Jacobian does not depend on the parameters
    constant_jacobian: ClassVar[bool] = False

    def mean(self, lin: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def mean_deriv(self, lin: np.ndarray) -> np.ndarray:
        """d mu / d lin."""
        raise NotImplementedError

    def mean_and_deriv(self, lin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """mu and d mu / d lin together (one transcendental evaluation)."""
        return self.mean(lin), self.mean_deriv(lin)

    def objective(self, lin: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
        """A function whose gradient in ``b`` is ``-sum w x (y - mu)``: for line search."""
        raise NotImplementedError

    def check_outcome(self, y: np.ndarray, index: pd.Index, frame: str, outcome: str) -> None:
        """Raise if ``y`` is outside the family's support, naming the units."""

    def residual(self, X: np.ndarray, y: np.ndarray, params: np.ndarray) -> np.ndarray:
        return y - self.mean(X @ params)

    def scores(self, X: np.ndarray, y: np.ndarray, params: np.ndarray) -> np.ndarray:
        """Row-wise estimating functions psi = x (y - mu(x'b)), (rows, p)."""
        return X * self.residual(X, y, params)[:, None]

    def gram(self, X: np.ndarray, params: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """``X' diag(w mu'(X b)) X``: minus the Jacobian of the summed scores.

        Weights are non-negative, so this is ``Z'Z`` with ``Z = X sqrt(w mu')``,
        which numpy computes as a symmetric rank-k update (half a general product).
        """
        w = self.mean_deriv(X @ params)
        return weighted_gram(X, w if weights is None else w * weights)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class OLS(Family):
    name = "ols"
    label = "OLS"
    constant_jacobian = True

    def mean(self, lin: np.ndarray) -> np.ndarray:
        return lin

    def mean_deriv(self, lin: np.ndarray) -> np.ndarray:
        return np.ones_like(lin)

    def objective(self, lin: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
        return 0.5 * float(w @ (y - lin) ** 2)


def _expit(lin: np.ndarray) -> np.ndarray:
    """``1 / (1 + e^-lin)``, accurate to a few ulp in both tails.

    numpy's vectorised exp makes this about three times faster than
    ``scipy.special.expit``; e^-lin overflowing to inf gives the correct 0.
    """
    out = np.negative(lin)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)  # in place: a second temporary costs more than the exp
    out += 1.0
    return np.reciprocal(out, out=out)


class Logit(Family):
    name = "logit"
    label = "Logit"

    def mean(self, lin: np.ndarray) -> np.ndarray:
        return _expit(lin)

    def mean_deriv(self, lin: np.ndarray) -> np.ndarray:
        mu = _expit(lin)
        return mu * (1.0 - mu)

    def mean_and_deriv(self, lin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu = _expit(lin)
        return mu, mu * (1.0 - mu)

    def objective(self, lin: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
        # negative log-likelihood; log(1 + e^t) = max(t, 0) + log1p(e^-|t|) stays
        # finite for large |t| and is several times faster than np.logaddexp
        loss = np.log1p(np.exp(-np.abs(lin)))
        loss += np.maximum(lin, 0.0)
        loss -= y * lin
        return float(w @ loss)

    def check_outcome(self, y: np.ndarray, index: pd.Index, frame: str, outcome: str) -> None:
        bad = (y != 0) & (y != 1)
        if bad.any():
            raise SpecificationError(
                f"frame {frame!r}: a logit outcome must be 0 or 1, but {outcome!r} takes "
                f"other values (e.g. {np.unique(y[bad])[:5].tolist()}) in {int(bad.sum())} "
                f"unit(s) {describe_units(index[bad])}"
            )


class Poisson(Family):
    name = "poisson"
    label = "Poisson"

    def mean(self, lin: np.ndarray) -> np.ndarray:
        return np.exp(lin)

    def mean_deriv(self, lin: np.ndarray) -> np.ndarray:
        return np.exp(lin)

    def mean_and_deriv(self, lin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu = np.exp(lin)
        return mu, mu

    def objective(self, lin: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
        return float(w @ (np.exp(lin) - y * lin))

    def check_outcome(self, y: np.ndarray, index: pd.Index, frame: str, outcome: str) -> None:
        bad = y < 0
        if bad.any():
            raise SpecificationError(
                f"frame {frame!r}: a poisson outcome must be a non-negative count, but "
                f"{outcome!r} is negative in {int(bad.sum())} unit(s) {describe_units(index[bad])}"
            )


_FAMILIES: dict[str, type[Family]] = {f.name: f for f in (OLS, Logit, Poisson)}


def get_family(model: str | Family) -> Family:
    """The family named by ``model`` ("ols", "logit" or "poisson")."""
    if isinstance(model, Family):
        return model
    try:
        return _FAMILIES[str(model).lower()]()
    except KeyError:
        raise ValueError(f"model must be one of {sorted(_FAMILIES)}, got {model!r}") from None


# Above this many rows the rank check works on the p x p Gram matrix instead of a
# QR decomposition of the rows: exact collinearity still shows as a zero
# eigenvalue, at a cost independent of the number of rows (a QR of 100,000 x 20
# takes ~35 ms, as long as the rest of a fit at that size).
QR_RANK_CHECK_MAX_ROWS = 20_000
GRAM_RANK_TOL = 1e-12


def check_full_rank(
    X: np.ndarray, names: Sequence[str], frame: str, gram: np.ndarray | None = None
) -> None:
    """Raise :class:`SingularDesignError` naming the columns that are linear combinations.

    ``gram`` may be any ``X' diag(w) X`` with positive weights (same null space);
    it is used instead of the rows when the frame is large.
    """
    n, p = X.shape
    if n < p:
        raise SingularDesignError(
            f"frame {frame!r} has {n} rows for {p} parameters; at least {p} are needed"
        )
    if gram is None or n <= QR_RANK_CHECK_MAX_ROWS:
        scale = np.sqrt((X**2).sum(axis=0))
    else:
        scale = np.sqrt(np.clip(np.diag(gram), 0.0, None))
    zero = np.flatnonzero(scale == 0)
    if zero.size:
        raise SingularDesignError(
            f"frame {frame!r}: design column(s) {[names[j] for j in zero]} are zero in every "
            f"row, so their coefficients are not identified"
        )
    if gram is None or n <= QR_RANK_CHECK_MAX_ROWS:
        _, r, pivots = scipy.linalg.qr(X / scale, mode="economic", pivoting=True)
        diag = np.abs(np.diag(r))
        rank = int((diag > diag[0] * max(n, p) * np.finfo(float).eps * 10).sum())
    else:
        # B'B = the scaled Gram, so B has X's column dependencies
        eigval, eigvec = np.linalg.eigh(gram / np.outer(scale, scale))
        B = np.sqrt(np.clip(eigval, 0.0, None))[:, None] * eigvec.T
        _, r, pivots = scipy.linalg.qr(B, pivoting=True)
        diag = np.abs(np.diag(r))
        rank = int((diag**2 > diag[0] ** 2 * GRAM_RANK_TOL).sum())
    if rank < p:
        dependent = [names[j] for j in pivots[rank:]]
        raise SingularDesignError(
            f"frame {frame!r}: the design matrix has rank {rank} < {p}; column(s) "
            f"{dependent} are linear combinations of the others (collinear or constant "
            f"within this frame)"
        )


class NewtonFit(NamedTuple):
    """A solved estimating equation and what Newton computed at its end."""

    params: np.ndarray
    #: ``X' diag(w mu') X`` at the last Newton iterate (the solution for OLS)
    hessian: np.ndarray
    #: mu at ``params``, per row
    mean: np.ndarray
    #: ``w mu'`` at ``params``, per row
    weighted_mean_deriv: np.ndarray


def _solve_symmetric(hessian: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    return scipy.linalg.cho_solve(scipy.linalg.cho_factor(hessian), rhs)


def fit_estimating_equation(
    family: Family,
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
) -> NewtonFit:
    """Solve ``sum_j w_j x_j (y_j - mu(x_j'b)) = 0`` by damped Newton.

    Newton converges quadratically near the solution, so it stops once a step
    is below ``tol`` relative to the parameters: the error left after that
    step is of order ``tol**2`` (1e-14 by default). ``check_rank=False`` skips
    the design's rank check, for a caller that has checked this X before.

    Returns
    -------
    NewtonFit

    Raises
    ------
    SingularDesignError
        The design is rank deficient.
    PerfectSeparationError
        The solution does not exist because the outcome is perfectly predicted
        (logit) or zero counts are (poisson).
    ConvergenceError
        Newton did not converge for another reason.
    """
    unit_weights = weights is None or bool(np.all(weights == 1.0))
    w = np.ones(len(y)) if weights is None else weights
    params = np.zeros(X.shape[1]) if start is None else np.array(start, dtype=float)
    lin = X @ params
    if isinstance(family, OLS):
        hessian = weighted_gram(X, w)
        if check_rank:
            check_full_rank(X, names, frame, gram=hessian)
        scale = np.sqrt(np.diag(hessian))
        scaled = hessian / np.outer(scale, scale)
        if np.linalg.cond(scaled) < 1e8:
            params = _solve_symmetric(hessian, X.T @ (w * y))
        else:
            sw = np.sqrt(w)  # ill-conditioned: least squares on the rows keeps the digits
            params = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)[0]
        return NewtonFit(params, hessian, X @ params, w)

    initial = params.copy()

    def gradient_at(lin: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        mu, dmu = family.mean_and_deriv(lin)
        if unit_weights:
            return X.T @ (y - mu), mu, dmu
        return X.T @ (w * (y - mu)), mu, w * dmu

    with np.errstate(over="ignore", invalid="ignore"):
        gradient, mu, dmu = gradient_at(lin)
        for iteration in range(maxiter):
            hessian = weighted_gram(X, dmu)
            if iteration == 0 and check_rank:
                check_full_rank(X, names, frame, gram=hessian)
            try:
                step = _solve_symmetric(hessian, gradient)
            except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
                break
            direction = X @ step
            candidate = lin + direction
            new_gradient, new_mu, new_dmu = gradient_at(candidate)
            # The loss is convex along the step: if its slope at the full step is
            # still downhill (or Newton is in its quadratic region), the loss fell.
            scale = 1.0
            if step @ gradient >= 1.0 and not new_gradient @ step >= 0.0:
                value = family.objective(lin, y, w)
                while scale >= 1e-8:
                    if family.objective(lin + scale * direction, y, w) <= value + 1e-12 * abs(value):
                        break
                    scale *= 0.5
                candidate = lin + scale * direction
                new_gradient, new_mu, new_dmu = gradient_at(candidate)
            params, lin = params + scale * step, candidate
            gradient, mu, dmu = new_gradient, new_mu, new_dmu
            if np.max(np.abs(scale * step)) <= tol * (1.0 + np.max(np.abs(params))):
                return NewtonFit(params, hessian, mu, dmu)
    _raise_nonexistence(family, X, lin, params - initial, names, frame)
    raise ConvergenceError(
        f"frame {frame!r}: the {family.label} estimating equation did not converge in "
        f"{maxiter} Newton iterations"
    )


def _raise_nonexistence(
    family: Family, X: np.ndarray, lin: np.ndarray, displacement: np.ndarray,
    names: Sequence[str], frame: str,
) -> None:
    """Raise PerfectSeparationError when Newton ran off to infinity.

    The culprits are the terms that moved the linear predictor most on the way:
    each coefficient's displacement times its column's root mean square.
    """
    if isinstance(family, Logit) and np.max(np.abs(lin)) > 20:
        what = "the logit outcome is perfectly (or quasi-perfectly) separated"
    elif isinstance(family, Poisson) and np.min(lin) < -20:
        what = "zero counts are perfectly predicted (a term's units have only zero counts)"
    else:
        return
    direction = np.abs(displacement) * np.sqrt((X**2).mean(axis=0))
    culprits = [names[j] for j in np.flatnonzero(direction >= 0.1 * direction.max())]
    raise PerfectSeparationError(
        f"frame {frame!r}: {what}, so the {family.label} estimate does not exist; the "
        f"coefficients of {culprits} diverge. Drop or merge those terms, or label more units."
    )
