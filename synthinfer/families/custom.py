"""User-defined moments: any estimating function ``psi(params, design)``.

The user gives per-row scores as a function of the parameters and a
`Design` (the outcome and the formula's design columns of one frame's rows,
addressable by column name), and optionally their per-row Jacobian. Every
estimator of the package then applies: each source gets its own parameters,
the two moment blocks, the optimal weight matrix, the covariance, the J test,
Windmeijer's correction and the bootstrap. Without an analytic Jacobian it is
taken by central differences, and the summary says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..exceptions import SpecificationError
from .base import EstimatingFunction, Evaluation, _select

__all__ = ["Design", "EstimatingEquation", "NonFiniteScoresError"]


class NonFiniteScoresError(SpecificationError):
    """A user estimating function returned NaN or infinity on some rows."""

    def __init__(self, message: str, rows: np.ndarray) -> None:
        super().__init__(message)
        self.rows = rows


class Design:
    """One frame's rows as the estimating function sees them.

    Attributes
    ----------
    y : ndarray
        The outcome, (rows,).
    X : ndarray
        The design matrix, (rows, p), columns named by ``columns``.
    columns : list of str
        The design columns' names; ``design["d"]`` is column ``d`` of X.
    """

    def __init__(self, y: np.ndarray, X: np.ndarray, columns: Sequence[str]) -> None:
        self.y, self.X, self.columns = y, X, list(columns)
        self._position = {name: j for j, name in enumerate(self.columns)}

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.X[:, self._position[name]]
        except KeyError:
            raise KeyError(f"no design column {name!r}; the columns are {self.columns}") from None

    def __len__(self) -> int:
        return len(self.y)

    def take(self, rows: np.ndarray | None) -> Design:
        if rows is None:
            return self
        return Design(self.y[rows], self.X[rows], self.columns)


class _DenseEvaluation(Evaluation):
    def __init__(self, family: EstimatingEquation, design: Design, params: np.ndarray, values: np.ndarray) -> None:
        self.family, self.design, self.params, self._values = family, design, params, values
        self.n_rows, self.n_moments = values.shape
        self.n_params = len(params)
        self._row_jacobian: np.ndarray | None = None

    def scores(self) -> np.ndarray:
        return self._values

    def _per_row_jacobian(self) -> np.ndarray | None:
        if self.family.jacobian_function is None:
            return None
        if self._row_jacobian is None:
            J = np.asarray(self.family.jacobian_function(self.params, self.design), dtype=float)
            expected = (self.n_rows, self.n_moments, self.n_params)
            if J.shape != expected:
                raise SpecificationError(
                    f"the user jacobian must return an array of shape (rows, q, k) = {expected}, "
                    f"got {J.shape}"
                )
            self._row_jacobian = J
        return self._row_jacobian

    def _shifted(self, rows: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """Central differences: psi at params +- h e_k on ``rows``, per parameter k."""
        design = self.design.take(rows)
        out = []
        for k in range(self.n_params):
            h = self.family.step * (1.0 + abs(self.params[k]))
            up, down = self.params.copy(), self.params.copy()
            up[k] += h
            down[k] -= h
            out.append((self.family.call(up, design), self.family.call(down, design), 2.0 * h))
        return out

    def jacobian(self, weights: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        J = self._per_row_jacobian()
        if J is not None:
            J = _select(J, rows)
            return np.einsum("r,rqk->qk", np.ones(len(J)) if weights is None else weights, J)
        columns = []
        for up, down, width in self._shifted(rows):
            w = np.ones(len(up)) if weights is None else weights
            columns.append(w @ (up - down) / width)
        return np.column_stack(columns)

    def vjp(self, v: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        J = self._per_row_jacobian()
        if J is not None:
            return np.einsum("rqk,q->rk", _select(J, rows), v)
        return np.column_stack([(up - down) @ v / width for up, down, width in self._shifted(rows)])


class EstimatingEquation(EstimatingFunction):
    """An estimating function given by the user.

    Parameters
    ----------
    psi : callable
        ``psi(params, design) -> (rows, q)`` array of per-row scores whose mean
        is zero at the true parameters; ``design`` is a `Design` (``design.y``,
        ``design.X``, ``design["column"]``). It must be vectorised over rows.
    param_names : sequence of str
        The k parameters' names (k = q: each source is just identified).
    jacobian : callable, optional
        ``jacobian(params, design) -> (rows, q, k)``: ``d psi_j / d params`` per
        row. Without it the Jacobian is taken by central differences.
    start : array, optional
        Where Newton starts for every design (default zeros).
    label : str
        The name shown in summaries.
    step : float
        Relative step of the central differences.

    Examples
    --------
    A logit written by hand:

    >>> def psi(b, d):
    ...     return d.X * (d.y - 1 / (1 + np.exp(-d.X @ b)))[:, None]
    >>> model = EstimatingEquation(psi, ["Intercept", "x1"])
    """

    name = "custom"
    has_objective = False
    # the design's columns need not map to the parameters
    rank_checks_design = False

    def __init__(
        self,
        psi: Callable[[np.ndarray, Design], Any],
        param_names: Sequence[str],
        jacobian: Callable[[np.ndarray, Design], Any] | None = None,
        *,
        start: Sequence[float] | None = None,
        label: str = "User moments",
        step: float = 1e-6,
    ) -> None:
        if not callable(psi):
            raise SpecificationError(f"psi must be a function psi(params, design), got {type(psi).__name__}")
        names = [str(n) for n in param_names]
        if not names or len(set(names)) != len(names):
            raise SpecificationError(f"param_names must be non-empty and unique, got {list(param_names)}")
        self.psi, self.jacobian_function = psi, jacobian
        self._names = names
        self._start = None if start is None else np.asarray(start, dtype=float)
        if self._start is not None and self._start.shape != (len(names),):
            raise SpecificationError(f"start must have {len(names)} values, got shape {self._start.shape}")
        self._label, self.step = label, float(step)
        self.columns: list[str] = []

    @property
    def label(self) -> str:  # type: ignore[override]
        return self._label

    @property
    def jacobian_kind(self) -> str:
        return "analytic (user)" if self.jacobian_function is not None else "numerical (central differences)"

    @property
    def jacobian_note(self) -> str:
        return f"User-defined moments ({self._label}); Jacobian: {self.jacobian_kind}."

    def n_params(self, n_columns: int) -> int:
        return len(self._names)

    def param_names(self, columns: Sequence[str]) -> list[str]:
        return list(self._names)

    def check_design(self, columns: Sequence[str]) -> None:
        self.columns = list(columns)

    def start_params(self, X: np.ndarray, y: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
        return np.zeros(len(self._names)) if self._start is None else self._start.copy()

    def call(self, params: np.ndarray, design: Design) -> np.ndarray:
        """psi at ``params``, checked: shape (rows, k) and finite."""
        values = np.asarray(self.psi(params, design), dtype=float)
        if values.ndim == 1 and len(self._names) == 1:
            values = values[:, None]
        expected = (len(design), len(self._names))
        if values.shape != expected:
            raise SpecificationError(
                f"the user psi must return an array of shape (rows, k) = {expected} (one column "
                f"per parameter {self._names}), got shape {values.shape}"
            )
        bad = ~np.isfinite(values).all(axis=1)
        if bad.any():
            rows = np.flatnonzero(bad)
            raise NonFiniteScoresError(
                f"the user psi returned NaN or infinite scores on {len(rows)} row(s) "
                f"(positions {rows[:5].tolist()}) at params {params.tolist()}", rows,
            )
        return values

    def evaluate(self, X: np.ndarray, y: np.ndarray, params: np.ndarray) -> _DenseEvaluation:
        design = Design(y, X, self.columns or [f"x{j}" for j in range(X.shape[1])])
        return _DenseEvaluation(self, design, np.asarray(params, dtype=float), self.call(params, design))

    def __repr__(self) -> str:
        return f"EstimatingEquation({self._names}, jacobian={self.jacobian_kind})"
