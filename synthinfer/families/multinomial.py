"""Multinomial logit: K classes, one coefficient vector per non-reference class.

With classes ``0..K-1`` (0 the reference) and ``p_j = exp(x'b_j) / (1 + sum_l
exp(x'b_l))``, the score of class j's coefficients is ``x (1{y = j} - p_j)``
and its Jacobian ``-x x' p_j (delta_jl - p_l)``. Parameters are stacked class
by class, named ``"class:column"``. The outcome is the class label (text, a
categorical, or numbers); the family encodes it to codes before the formula
sees it, with the same classes in every frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import SpecificationError, describe_units
from ..rowblocks import weighted_gram
from .base import EstimatingFunction, Evaluation, _select

__all__ = ["MNLogit"]


def _row_sums(a: np.ndarray) -> np.ndarray:
    """``a.sum(axis=1, keepdims=True)`` for a few columns: a matrix-vector product, 3x faster."""
    return (a @ np.ones(a.shape[1]))[:, None]


def _row_max_with_reference(lin: np.ndarray) -> np.ndarray:
    """Each row's largest index among the reference class's (0) and ``lin``'s columns."""
    # column by column: a reduction along a short row axis is ten times slower
    top = np.zeros(len(lin))
    for column in lin.T:
        np.maximum(top, column, out=top)
    return top


def _probabilities(lin: np.ndarray) -> np.ndarray:
    """Softmax with the reference class's index fixed at 0, (rows, K-1)."""
    top = _row_max_with_reference(lin)
    e = np.exp(lin - top[:, None])
    return e / (np.exp(-top)[:, None] + _row_sums(e))


class _MultinomialEvaluation(Evaluation):
    def __init__(self, X: np.ndarray, y: np.ndarray, B: np.ndarray) -> None:
        self.X = X
        self.prob = _probabilities(X @ B)  # (rows, K-1)
        codes = y.astype(int)
        self.residual_matrix = -self.prob
        rows = np.flatnonzero(codes > 0)
        self.residual_matrix[rows, codes[rows] - 1] += 1.0
        self.n_rows, p = X.shape
        self.n_classes = B.shape[1]
        self.n_moments = self.n_params = p * self.n_classes

    def scores(self) -> np.ndarray:
        X, R = self.X, self.residual_matrix
        return np.hstack([X * R[:, [j]] for j in range(self.n_classes)])

    def sums(self, weights: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        # X' R in one product, class by class as the scores' columns: no (rows, p (K-1)) copy
        X, R = _select(self.X, rows), _select(self.residual_matrix, rows)
        if weights is not None:
            R = R * weights[:, None]
        return (X.T @ R).T.ravel()

    def jacobian(self, weights: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        X, P = _select(self.X, rows), _select(self.prob, rows)
        w = np.ones(len(X)) if weights is None else weights
        p, K1 = X.shape[1], self.n_classes
        out = np.empty((p * K1, p * K1))
        nonnegative = weights is None or bool(np.all(weights >= 0))
        for j in range(K1):
            for l in range(j, K1):
                a = w * P[:, j] * ((1.0 if j == l else 0.0) - P[:, l])
                block = -(weighted_gram(X, a) if nonnegative and j == l else X.T @ (X * a[:, None]))
                out[j * p:(j + 1) * p, l * p:(l + 1) * p] = block
                out[l * p:(l + 1) * p, j * p:(j + 1) * p] = block.T
        return out

    def vjp(self, v: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        X, P = _select(self.X, rows), _select(self.prob, rows)
        p, K1 = X.shape[1], self.n_classes
        xv = X @ v.reshape(K1, p).T  # (rows, K-1): x' v_j
        # sum_j (x'v_j) d r_j / d eta_l = -p_l (x'v_l - sum_j p_j x'v_j)
        c = -P * (xv - _row_sums(P * xv))
        return np.hstack([X * c[:, [l]] for l in range(K1)])


class MNLogit(EstimatingFunction):
    """Multinomial logit for an outcome with K classes.

    Parameters
    ----------
    classes : sequence, optional
        Every class, in order; the default is the sorted union of the values in
        all frames. Declaring them guards against a class no frame shows.
    reference : optional
        The reference class (default: the first class); its coefficients are 0.
    """

    name = "mnlogit"
    label = "MNLogit"
    has_objective = True

    def __init__(self, classes: Sequence[Any] | None = None, reference: Any = None) -> None:
        self._declared = None if classes is None else list(classes)
        if self._declared is not None and len(set(map(str, self._declared))) != len(self._declared):
            raise SpecificationError(f"mnlogit classes must be distinct, got {self._declared}")
        self._reference = reference
        self.classes: list[Any] = []
        self._columns: list[str] = []

    # -- the outcome ------------------------------------------------------------------
    def prepare_frames(self, frames: Mapping[str, pd.DataFrame], outcome: str) -> dict[str, pd.DataFrame]:
        """Each frame with its outcome replaced by class codes (copies; the inputs are untouched)."""
        present = {name: frame for name, frame in frames.items() if outcome in frame.columns}
        if not present:
            return dict(frames)
        observed: list[Any] = []
        for frame in present.values():
            observed += [v for v in pd.unique(frame[outcome].dropna()) if v not in observed]
        classes = list(self._declared) if self._declared is not None else sorted(observed, key=str)
        if len(classes) < 3 and self._declared is None:
            raise SpecificationError(
                f"mnlogit needs at least 3 outcome classes, but {outcome!r} takes {classes}; "
                f"use model='logit' for two"
            )
        reference = classes[0] if self._reference is None else self._reference
        if reference not in classes:
            raise SpecificationError(f"the mnlogit reference class {reference!r} is not among the classes {classes}")
        self.classes = [reference] + [c for c in classes if c != reference]
        codes = {c: i for i, c in enumerate(self.classes)}
        out = dict(frames)
        for name, frame in present.items():
            values = frame[outcome]
            mapped = values.map(codes)
            unknown = values.notna() & mapped.isna()
            if unknown.any():
                raise SpecificationError(
                    f"frame {name!r}: outcome {outcome!r} takes value(s) "
                    f"{pd.unique(values[unknown])[:5].tolist()} that are not among the declared classes "
                    f"{self.classes}, in unit(s) {describe_units(frame.index[unknown.to_numpy()])}"
                )
            out[name] = frame.assign(**{outcome: mapped.astype(float)})
        real = present.get("real")
        if real is not None:
            seen = set(out["real"][outcome].dropna().astype(int))
            absent = [self.classes[i] for i in range(len(self.classes)) if i not in seen]
            if absent:
                raise SpecificationError(
                    f"the labeled (real) data has no unit of class(es) {absent} of the "
                    f"{len(self.classes)} classes {self.classes}: their coefficients are not "
                    f"identified from the human labels; label units of every class or drop it"
                )
        return out

    # -- the parameters -----------------------------------------------------------------
    @property
    def n_equations(self) -> int:
        if not self.classes:
            raise SpecificationError("mnlogit: the outcome classes are not known yet (no frames seen)")
        return len(self.classes) - 1

    def n_params(self, n_columns: int) -> int:
        return n_columns * self.n_equations

    def param_names(self, columns: Sequence[str]) -> list[str]:
        return [f"{c}:{name}" for c in self.classes[1:] for name in columns]

    def equations(self, columns: Sequence[str]) -> list[tuple[str, slice]]:
        """One equation per non-reference class, as statsmodels' MNLogit summary."""
        p = len(columns)
        return [(str(c), slice(j * p, (j + 1) * p)) for j, c in enumerate(self.classes[1:])]

    def check_outcome(self, y, index, frame, outcome, auxiliary=False) -> None:
        bad = ~np.isin(y, np.arange(len(self.classes)))
        if bad.any():
            raise SpecificationError(
                f"frame {frame!r}: the mnlogit outcome {outcome!r} is not a class in {int(bad.sum())} "
                f"unit(s) {describe_units(index[bad])}"
            )

    def evaluate(self, X: np.ndarray, y: np.ndarray, params: np.ndarray) -> _MultinomialEvaluation:
        B = np.asarray(params, dtype=float).reshape(self.n_equations, X.shape[1]).T
        with np.errstate(over="ignore", invalid="ignore"):
            return _MultinomialEvaluation(X, y, B)

    def objective(self, X: np.ndarray, y: np.ndarray, params: np.ndarray, w: np.ndarray) -> float:
        B = np.asarray(params, dtype=float).reshape(self.n_equations, X.shape[1]).T
        lin = np.hstack([np.zeros((len(X), 1)), X @ B])
        top = _row_max_with_reference(lin[:, 1:])
        log_norm = top + np.log(_row_sums(np.exp(lin - top[:, None]))[:, 0])
        chosen = lin[np.arange(len(X)), y.astype(int)]
        return float(w @ (log_norm - chosen))

    def explain_nonexistence(self, X, params, displacement, names, frame) -> None:
        from ..exceptions import PerfectSeparationError

        if np.max(np.abs(params)) > 15:
            raise PerfectSeparationError(
                f"frame {frame!r}: some outcome class is perfectly (or quasi-perfectly) separated, "
                f"so the MNLogit estimate does not exist; label more units or merge classes"
            )

    def __repr__(self) -> str:
        return f"MNLogit(classes={self.classes or self._declared}, reference={self._reference!r})"
