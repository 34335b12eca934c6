"""The estimating-function abstraction every estimator consumes.

An estimating function maps a design (outcome ``y``, design matrix ``X``) and
parameters ``b`` to per-row scores ``psi_j(b)`` of dimension q whose weighted
sum is zero at the estimate. Everything the estimators need is an operation
on its ``Evaluation`` at one parameter vector:

- ``scores()``: the per-row scores, dense ``(rows, q)`` or as factors
  ``(X, r)`` meaning ``X * r[:, None]`` (single-index families keep them so:
  S and the sums are then taken without an (N, q) array);
- ``sums(weights, rows)``: ``sum_j w_j psi_j``;
- ``jacobian(weights, rows)``: ``sum_j w_j d psi_j / d b``, (q, k);
- ``vjp(v, rows)``: per row, ``v' d psi_j / d b``, (rows, k) (Windmeijer's
  correction differentiates S through it).

The GMM engine, the step-1 solver, S, G, Windmeijer, the bootstrap, the
diagnostics and PPI++ use only these, so a new family is one file.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd

__all__ = ["Factors", "Evaluation", "EstimatingFunction", "Solution"]

#: Per-row scores given as factors ``(X, r)``: their value is ``X * r[:, None]``.
Factors = tuple[np.ndarray, np.ndarray]


def _select(a: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    return a if rows is None else a[rows]


class Evaluation(ABC):
    """An estimating function evaluated at one parameter vector on one design's rows."""

    n_rows: int
    n_moments: int
    n_params: int

    @abstractmethod
    def scores(self) -> np.ndarray | Factors:
        """Per-row scores: an (rows, q) array or factors ``(X, r)``."""

    def values(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Per-row scores as an array, (rows, q)."""
        scores = self.scores()
        if isinstance(scores, tuple):
            X, r = scores
            return _select(X, rows) * _select(r, rows)[:, None]
        return _select(scores, rows)

    def sums(self, weights: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        """``sum_j w_j psi_j`` over ``rows`` (all rows by default), (q,)."""
        scores = self.scores()
        if isinstance(scores, tuple):
            X, r = scores
            r = _select(r, rows)
            return _select(X, rows).T @ (r if weights is None else weights * r)
        values = _select(scores, rows)
        # a matrix-vector product sums rows an order of magnitude faster than .sum(axis=0)
        return (np.ones(len(values)) if weights is None else weights) @ values

    @abstractmethod
    def jacobian(self, weights: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        """``sum_j w_j d psi_j / d b`` over ``rows``, (q, k)."""

    @abstractmethod
    def vjp(self, v: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Per row, ``v' d psi_j / d b``: (rows, k)."""

    def residual(self) -> np.ndarray | None:
        """A scalar residual per row, where the family has one (for diagnostics)."""
        return None

    def row_block(self, rows: slice | np.ndarray) -> Evaluation:
        """Rows ``rows`` (a slice or positions) as a part of this evaluation, for sums
        taken a block of rows at a time.

        A ``rows`` argument of the other methods may make its rows a sample of
        their own (a quantile's labeled rows get their own kernel bandwidth);
        a row block keeps every row's terms as they are in the whole, so the
        blocks' sums add up to the whole's.
        """
        return _RowBlock(self, rows)


class _RowBlock(Evaluation):
    """`Evaluation.row_block` for evaluations whose ``rows`` arguments only select rows."""

    def __init__(self, whole: Evaluation, rows: slice | np.ndarray) -> None:
        self.whole = whole
        self.rows: Any = rows  # the other methods' ``rows`` take positions; numpy indexing takes both
        self.n_rows = len(range(whole.n_rows)[rows]) if isinstance(rows, slice) else len(rows)
        self.n_moments, self.n_params = whole.n_moments, whole.n_params

    def scores(self) -> np.ndarray | Factors:
        return self.whole.values(self.rows)

    def jacobian(self, weights: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        return self.whole.jacobian(weights, rows=self._within(rows))

    def vjp(self, v: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        return self.whole.vjp(v, rows=self._within(rows))

    def _within(self, rows: np.ndarray | None) -> Any:
        if rows is None:
            return self.rows
        return (np.arange(self.whole.n_rows)[self.rows] if isinstance(self.rows, slice) else self.rows)[rows]


class Solution(NamedTuple):
    """A solved estimating equation and what the solver computed at its end."""

    params: np.ndarray
    #: the weighted Jacobian ``sum_j w_j d psi_j / d b`` at (or one step before) ``params``
    jacobian: np.ndarray
    #: the evaluation at ``params``
    evaluation: Evaluation


class EstimatingFunction(ABC):
    """Per-row scores ``psi(y, x; b)`` and how to solve ``sum_j w_j psi_j(b) = 0``.

    Subclasses set ``name`` (the ``model=`` string) and ``label`` (for
    summaries) and implement ``evaluate``; the rest has defaults.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    #: the Jacobian does not depend on the parameters (linear scores)
    constant_jacobian: ClassVar[bool] = False
    #: the scores are differentiable in b; otherwise the Jacobian is a smoothed
    #: estimate and step 2 is one Gauss-Newton step from step 1, whose target moments
    #: the target's coefficients then solve exactly where the family can (`solve_shifted`; gmm.py)
    smooth: ClassVar[bool] = True
    #: ``objective`` exists (a log-likelihood whose -Jacobian is positive definite)
    has_objective: ClassVar[bool] = False
    #: the parameters are coefficients of the design's columns, so a rank-deficient
    #: design leaves some unidentified (False for user moments, which read columns freely)
    rank_checks_design: ClassVar[bool] = True

    def n_params(self, n_columns: int) -> int:
        """k, the parameters per source, for a design with ``n_columns`` columns."""
        return n_columns

    def n_moments(self, n_columns: int) -> int:
        """q, the scores per row (equal to k: each source is just identified)."""
        return self.n_params(n_columns)

    def param_names(self, columns: Sequence[str]) -> list[str]:
        """The names of the k parameters, from the design's column names."""
        return list(columns)

    def equations(self, columns: Sequence[str]) -> list[tuple[str, slice]]:
        """A multi-equation model's equations: each one's label and its slice of
        the k parameters, for a summary with one coefficient block per
        equation. Empty (the default) for a model with one equation."""
        return []

    def check_outcome(
        self, y: np.ndarray, index: pd.Index, frame: str, outcome: str, auxiliary: bool = False
    ) -> None:
        """Raise if ``y`` is outside the family's support, naming the units.

        ``auxiliary`` is True for an auxiliary source's outcome, which may be
        allowed a wider support (an LLM's probability for a binary label).
        """

    def prepare_frames(self, frames: Mapping[str, pd.DataFrame], outcome: str) -> dict[str, pd.DataFrame]:
        """The frames as the formula should see them (e.g. class labels as codes).

        Called once per model, before the formula is learned; returns copies
        where it changes anything. The default changes nothing.
        """
        return dict(frames)

    def check_design(self, columns: Sequence[str]) -> None:
        """Raise if the design does not suit the family (e.g. a mean needs ``y ~ 1``)."""

    @abstractmethod
    def evaluate(self, X: np.ndarray, y: np.ndarray, params: np.ndarray) -> Evaluation:
        """The scores at ``params`` on the rows ``(X, y)``."""

    def objective(self, X: np.ndarray, y: np.ndarray, params: np.ndarray, w: np.ndarray) -> float | None:
        """A function whose gradient in b is ``-sum w psi``, for line search; None if there is none."""
        return None

    def batch_terms(
        self, X: np.ndarray, y: np.ndarray, params: np.ndarray, weights: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The scores at many parameter vectors at once.

        Parameters
        ----------
        X, y : ndarray
            The rows, (rows, columns) and (rows,).
        params : ndarray
            One parameter vector per replicate, (B, k).
        weights : ndarray
            One weight per replicate and row, (B, rows).

        Returns
        -------
        values : ndarray
            Per replicate and row, the scores, (B, rows, q).
        jacobians : ndarray
            Per replicate, ``sum_j w_bj d psi_j / d b``, (B, q, k).

        Notes
        -----
        The bootstrap evaluates all its replicates through this. The default
        evaluates one vector at a time; families whose scores vectorise
        override it.
        """
        values, jacobians = [], []
        for b, w in zip(params, weights):
            evaluation = self.evaluate(X, y, b)
            values.append(evaluation.values())
            jacobians.append(evaluation.jacobian(w))
        k = self.n_params(X.shape[1])
        if not values:
            return np.zeros((0, len(y), self.n_moments(X.shape[1]))), np.zeros((0, self.n_moments(X.shape[1]), k))
        return np.stack(values), np.stack(jacobians)

    def start_params(self, X: np.ndarray, y: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
        return np.zeros(self.n_params(X.shape[1]))

    def solve(
        self,
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
        """Solve ``sum_j w_j psi_j(b) = 0`` (damped Newton by default; see solvers.py)."""
        from ..solvers import newton_root

        return newton_root(
            self, X, y, weights, names=names, frame=frame, start=start, maxiter=maxiter,
            tol=tol, check_rank=check_rank,
        )

    def solve_shifted(
        self, X: np.ndarray, y: np.ndarray, weights: np.ndarray | None, score_sum: np.ndarray, *,
        names: Sequence[str], frame: str, start: np.ndarray | None = None,
    ) -> Solution | None:
        """The root of ``sum_j w_j psi_j(b) = score_sum`` with its Jacobian there, or
        None (not solved).

        For scores that are step functions (``smooth = False``), step 2 of GMM
        solves the target's equation at the value its Gauss-Newton step
        predicts instead of taking the step's kernel-slope extrapolation (see
        gmm.py); a family that cannot solve a shifted equation returns None and
        the linear step stands.
        """
        return None

    def explain_nonexistence(
        self, X: np.ndarray, params: np.ndarray, displacement: np.ndarray, names: Sequence[str], frame: str
    ) -> None:
        """Raise a specific error when the solver ran off because no root exists."""

    def leverage(self, X: np.ndarray, weights: np.ndarray | None) -> np.ndarray | None:
        """Each row's leverage ``h_jj``, the diagonal of the fit's hat matrix, or None.

        HC2 and HC3 (``fit(cov_type="HC2" | "HC3")``) divide each squared
        residual by ``(1 - h_jj)`` or its square. statsmodels defines them for
        least squares only (its GLM and discrete models return HC0 under these
        names), so the default is None: the family has no hat matrix, and the
        covariance refuses those names.

        Parameters
        ----------
        X : ndarray
            The design of the rows, (rows, columns).
        weights : ndarray or None
            The rows' weights in the fit (None: all 1).
        """
        return None

    @property
    def jacobian_note(self) -> str | None:
        """What the summary says about how the Jacobian was obtained, if not analytic."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
