"""A source whose rows live in partitions, and its evaluations at a parameter vector.

`PartitionedSource` answers the engine as an in-memory `Source` does
(``evaluate``, ``solve``, ``labeled_rows``, ``row_weight``), with the
difference that its N-row arrays never exist on the client: its labeled
units' rows are kept in memory (an in-memory `Source` over those n units,
``labeled``), and every sum over all its rows is a pass over the chunks.

`PartitionedEvaluation` is the `Evaluation` the engine receives: sums and
Jacobians over the labeled rows (``rows=`` given, always the labeled rows)
come from the in-memory evaluation of those rows; over all rows (``rows``
None, with the source's own weights 1/k) from one pass that computes both.
Its per-unit values are a `PartitionedBlock`, an all-units moment block
that the partitioned moment blocks (blocks.py) sum over the chunks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data import Source
from ..exceptions import SpecificationError
from ..moments import group_sums
from .chunks import Chunk
from .reduction import map_reduce

__all__ = ["PartitionedSource", "PartitionedEvaluation", "PartitionedBlock", "unit_values", "to_units"]


def _weight(chunk: Chunk, m: int, weighted: bool) -> np.ndarray | None:
    return chunk.designs[m].weight if weighted else None


def unit_values(chunk: Chunk, m: int, evaluation: Any, weighted: bool) -> np.ndarray:
    """Source m's per-unit moments (the mean over each unit's rows) in one chunk, (units, q)."""
    return to_units(chunk, m, evaluation.values(), weighted)


def to_units(chunk: Chunk, m: int, row_values: np.ndarray, weighted: bool) -> np.ndarray:
    """Row values of source m as per-unit values in the chunk's unit order: the
    weighted sums over each unit's rows, or (one row per unit) the rows moved."""
    design = chunk.designs[m]
    if weighted:
        return group_sums(design.codes, len(chunk.units), row_values * design.weight[:, None])
    if design.in_order:
        # the rows are the units (a proxy): a plain copy instead of a scatter; C order
        # as the scatter's, so the products taken from it round the same way
        return np.ascontiguousarray(row_values, dtype=float)
    out = np.empty((len(chunk.units), row_values.shape[1]))
    out[design.codes] = row_values
    return out


def _totals(
    chunk: Chunk, m: int, family: Any, params: np.ndarray, weighted: bool, objective: bool,
) -> tuple[np.ndarray, ...]:
    design = chunk.designs[m]
    evaluation = family.evaluate(design.X, design.y, params)
    w = _weight(chunk, m, weighted)
    sums, jacobian = evaluation.sums(w), evaluation.jacobian(w)
    if objective:
        # what the objective's own pass (_objective) would sum, in the same tree
        return sums, jacobian, _objective(chunk, m, family, params, weighted)
    return sums, jacobian


def _many_totals(chunk: Chunk, specs: list[tuple[int, Any, np.ndarray, bool, bool]]) -> list:
    return [_totals(chunk, *spec) for spec in specs]


class PassBatch:
    """Evaluations created since the last pass, shared by the sources of one model.

    An evaluation's totals are computed when first asked for, together with
    those of every other evaluation created since: the engine evaluates every
    source at its parameters before it sums any, so M sources cost one pass.
    """

    def __init__(self) -> None:
        self.pending: list[PartitionedEvaluation] = []

    def run(self, chunks: list) -> None:
        batch = [e for e in self.pending if e._totals is None]
        self.pending = []
        if not batch:
            return
        specs = [(e.source.index, e.family, e.params, e.source.weighted, e.with_objective) for e in batch]
        for evaluation, totals in zip(batch, map_reduce(chunks, _many_totals, specs)):
            evaluation._totals = totals[0], totals[1]
            if evaluation.with_objective:
                evaluation._objective = _objective_value(totals[2])


def _cross_product(chunk: Chunk, m: int) -> np.ndarray:
    X = chunk.designs[m].X
    return X.T @ X


def _objective(chunk: Chunk, m: int, family: Any, params: np.ndarray, weighted: bool) -> np.ndarray:
    design = chunk.designs[m]
    w = design.weight if weighted else np.ones(len(design.y))
    value = family.objective(design.X, design.y, params, w)
    return np.array([np.nan if value is None else value])


def _objective_value(total: np.ndarray) -> float | None:
    value = float(total[0])
    return None if np.isnan(value) else value


class PartitionedSource:
    """One auxiliary Dask source, aligned to the N units (see the module docstring).

    Attributes
    ----------
    name, kind : str
        As `Source`.
    labeled : Source
        The source's rows of the n labeled units, in memory; its unit
        positions are positions in ``real`` (the labeled units' order).
    chunks : list
        The persisted chunks (every source's partitions); this source is ``index``.
    n_rows, n_units : int
        Rows of the source and N.
    one_row_per_unit : bool
        Every unit has one row (a proxy): per-unit moments are the rows.
    """

    #: ``evaluate(..., objective=True)`` sums the objective in the totals' pass (solve.py)
    fuses_objective = True

    def __init__(
        self, name: str, kind: str, labeled: Source, chunks: list, index: int, n_rows: int,
        n_units: int, one_row_per_unit: bool, labeled_ids: Any,
    ) -> None:
        self.name, self.kind, self.labeled = name, kind, labeled
        #: the labeled units' ids, in the order of ``real`` (labeled's unit positions)
        self.labeled_ids = labeled_ids
        self.chunks, self.index = chunks, index
        self.n_rows, self.n_units = int(n_rows), int(n_units)
        self.one_row_per_unit = bool(one_row_per_unit)
        # the engine indexes these with labeled_rows only: the labeled rows' own
        #: shared by the model's sources (set when they are built together)
        self.batch = PassBatch()
        self.labeled_rows = np.arange(labeled.n_rows)
        self.row_weight = labeled.row_weight
        self.unit_pos = labeled.unit_pos

    @property
    def weighted(self) -> bool:
        return not self.one_row_per_unit

    @property
    def X(self) -> np.ndarray:
        # code that reads every row in memory (ppi, the bootstrap) lands here
        raise SpecificationError(
            f"source {self.name!r} is a Dask frame: its rows live in its partitions and are not "
            f"collected to memory, so this estimator or method is not available for it yet "
            f"(see docs/dask.md for what is); only its labeled rows are in memory (.labeled)"
        )

    y = X

    def unit_sums(self, values: Any) -> Any:
        """Per-unit sums of row values: a partitioned evaluation's values already are."""
        if isinstance(values, (PartitionedBlock, LabeledUnitValues)):
            return values
        raise TypeError("row values of a Dask source exist only in its partitions")

    def evaluate(self, family: Any, params: np.ndarray, objective: bool = False) -> PartitionedEvaluation:
        """The evaluation at ``params``; ``objective=True`` also sums the objective in its pass."""
        return PartitionedEvaluation(self, family, np.array(params, dtype=float), objective)

    def solve(self, family: Any, weights: np.ndarray | None, **options: Any) -> Any:
        from .solve import solve_partitioned

        return solve_partitioned(self, family, **options)

    # -- passes over the partitions -------------------------------------------------
    def cross_product(self) -> np.ndarray:
        """``X'X`` over every row (the rank check of a family without a log-likelihood)."""
        return map_reduce(self.chunks, _cross_product, self.index)

    def objective(self, family: Any, params: np.ndarray) -> float | None:
        return _objective_value(map_reduce(self.chunks, _objective, self.index, family, params, self.weighted))


class PartitionedEvaluation:
    """The `Evaluation` of a `PartitionedSource` at one parameter vector (module docstring)."""

    def __init__(self, source: PartitionedSource, family: Any, params: np.ndarray, objective: bool = False) -> None:
        self.source, self.family, self.params = source, family, params
        self.labeled = family.evaluate(source.labeled.X, source.labeled.y, params)
        self.n_rows = source.n_rows
        self.n_moments, self.n_params = self.labeled.n_moments, self.labeled.n_params
        self._totals: tuple[np.ndarray, np.ndarray] | None = None
        #: the objective is summed in the totals' pass
        self.with_objective = bool(objective)
        self._objective: float | None = None
        source.batch.pending.append(self)

    def objective(self) -> float | None:
        """The objective over every row at ``params`` (None for a family without one)."""
        if not self.with_objective:
            return self.source.objective(self.family, self.params)
        self.totals()
        return self._objective

    def totals(self) -> tuple[np.ndarray, np.ndarray]:
        """Sums and Jacobian over every row, in one pass with the other pending evaluations."""
        if self._totals is None:
            if self not in self.source.batch.pending:
                self.source.batch.pending.append(self)
            self.source.batch.run(self.source.chunks)
        assert self._totals is not None
        return self._totals

    def _check_own_weights(self, weights: Any) -> None:
        if weights is not None and weights is not self.source.row_weight:
            raise NotImplementedError(
                f"Dask source {self.source.name!r}: sums over all rows take the source's own "
                f"row weights (1/k) only"
            )

    def sums(self, weights: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        if rows is not None:
            return self.labeled.sums(weights, rows)
        self._check_own_weights(weights)
        return self.totals()[0]

    def jacobian(self, weights: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        if rows is not None:
            return self.labeled.jacobian(weights, rows)
        self._check_own_weights(weights)
        return self.totals()[1]

    def information(self, weights: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        return -self.jacobian(weights, rows)

    def values(self, rows: np.ndarray | None = None) -> Any:
        if rows is not None:
            return self.labeled.values(rows)
        return PartitionedBlock(self)

    def scores(self) -> PartitionedBlock:
        return PartitionedBlock(self)

    def vjp(self, v: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        if rows is None:
            raise NotImplementedError("per-row products of a Dask source exist only in its partitions")
        return self.labeled.vjp(v, rows)

    def residual(self) -> LabeledUnitValues | None:
        """The scalar residual's per-unit means, available on the labeled units only."""
        if self.labeled.residual() is None:
            return None
        labeled = self.source.labeled
        return LabeledUnitValues(lambda: labeled.unit_sums(self.labeled.residual()))


class LabeledUnitValues:
    """Per-unit values of a Dask source that exist on the client for the labeled units
    only: indexing with the labeled positions (``0..n-1``) gives them."""

    def __init__(self, compute: Any) -> None:
        self._compute = compute

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        return self._compute()[rows]


class PartitionedBlock:
    """An all-units moment block of a Dask source: its per-unit values live in the
    partitions; on the labeled units they are in memory (``labeled_values``)."""

    def __init__(self, evaluation: PartitionedEvaluation) -> None:
        from .blocks import PartitionedMomentBlocks

        self.evaluation = evaluation
        self.moment_blocks_type = PartitionedMomentBlocks
        self.shape = (evaluation.source.n_units, evaluation.n_moments)

    @property
    def labeled_values(self) -> np.ndarray:
        """(n, q): the block on the labeled units, in the order of ``real``."""
        labeled = self.evaluation.source.labeled
        return labeled.unit_sums(self.evaluation.labeled.values())

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        # the engine asks for the block on the labeled units (labeled_pos, in real's order)
        return self.labeled_values[rows]

    def __len__(self) -> int:
        return self.shape[0]
