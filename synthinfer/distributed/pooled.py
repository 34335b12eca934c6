"""The naive estimator's pooled rows when the auxiliary rows live in partitions.

Naive pooling treats the human rows, the proxy rows of the units that are not
labeled and every synthetic row as one data set (`synthinfer.estimators.Naive`).
Here the human rows are in memory and the others in the chunks; every sum the
fit needs (scores, Jacobian, the scores' Gram for the HC0 meat, the objective
for a line search) is the human rows' part plus one pass over the chunks. It
answers the step-1 solver (solve.py) as a partitioned source does, with weight 1
on every row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .reduction import map_reduce

__all__ = ["PooledRows", "PooledEvaluation"]


def _pooled_rows(chunk: Any, kinds: tuple[str, ...], real_ids: pd.Index) -> list[np.ndarray | slice]:
    labeled = chunk.units.isin(real_ids)
    return [
        np.flatnonzero(~labeled[design.codes]) if kind == "proxy" else slice(None)
        for design, kind in zip(chunk.designs, kinds)
    ]


def _pooled_pass(chunk: Any, kinds: tuple[str, ...], real_ids: pd.Index, family: Any, params: Any, what: str) -> Any:
    out = None
    for design, rows in zip(chunk.designs, _pooled_rows(chunk, kinds, real_ids)):
        X, y = design.X[rows], design.y[rows]
        part: Any  # an array, or the (sums, jacobian) pair of "totals"
        if what == "count":
            part = np.array([len(y)])
        elif what == "cross":
            part = X.T @ X
        elif what == "objective":
            value = family.objective(X, y, params, np.ones(len(y)))
            part = np.array([np.nan if value is None else value])
        else:
            evaluation = family.evaluate(X, y, params)
            if what == "totals":
                part = (evaluation.sums(), evaluation.jacobian())
            else:
                values = evaluation.values()
                part = values.T @ values
        out = part if out is None else (
            (out[0] + part[0], out[1] + part[1]) if isinstance(part, tuple) else out + part
        )
    return out


class PooledRows:
    """The pooled rows of a model on Dask sources: the human rows in memory, the rest in chunks."""

    weighted = False

    def __init__(self, data: Any) -> None:
        self.X, self.y = data.X, data.y
        first = data.sources[0]
        self.chunks = first.chunks
        self.kinds = tuple(source.kind for source in data.sources)
        self.real_ids = data.real_index
        self.n_rows = len(self.y) + int(self._pass(None, None, "count")[0])

    def _pass(self, family: Any, params: Any, what: str) -> Any:
        return map_reduce(self.chunks, _pooled_pass, self.kinds, self.real_ids, family, params, what)

    def evaluate(self, family: Any, params: np.ndarray) -> PooledEvaluation:
        return PooledEvaluation(self, family, np.array(params, dtype=float))

    def cross_product(self) -> np.ndarray:
        return self.X.T @ self.X + self._pass(None, None, "cross")

    def objective(self, family: Any, params: np.ndarray) -> float | None:
        human = family.objective(self.X, self.y, params, np.ones(len(self.y)))
        rest = float(self._pass(family, params, "objective")[0])
        return None if human is None or np.isnan(rest) else human + rest

    def solve(self, family: Any, weights: Any = None, **options: Any) -> Any:
        from .solve import solve_partitioned

        return solve_partitioned(self, family, **options)


class PooledEvaluation:
    """Sums over the pooled rows at one parameter vector (human part + one pass)."""

    def __init__(self, rows: PooledRows, family: Any, params: np.ndarray) -> None:
        self.rows, self.family, self.params = rows, family, params
        self.human = family.evaluate(rows.X, rows.y, params)
        self._totals: tuple[np.ndarray, np.ndarray] | None = None

    def totals(self) -> tuple[np.ndarray, np.ndarray]:
        if self._totals is None:
            sums, jacobian = self.rows._pass(self.family, self.params, "totals")
            self._totals = (self.human.sums() + sums, self.human.jacobian() + jacobian)
        return self._totals

    def sums(self) -> np.ndarray:
        return self.totals()[0]

    def jacobian(self) -> np.ndarray:
        return self.totals()[1]

    def score_gram(self) -> np.ndarray:
        """``sum_j psi_j psi_j'`` over the pooled rows (the HC0 meat)."""
        values = self.human.values()
        return values.T @ values + self.rows._pass(self.family, self.params, "gram")
