"""The moment blocks over partitions: the sums S, the Stein rule and Windmeijer need.

`PartitionedMomentBlocks` is a `MomentBlocks` whose all-units blocks are
`PartitionedBlock`s. It keeps the interface (``mean``, ``second_moment``,
``labeled_rows``, ``n_units``, ``labeled_pos``), so the covariance
estimators, the Stein rule and the J test read it unchanged:

- the blocks that live on the labeled units, and every product with them,
  are taken in memory over the n labeled units (as in memory);
- the all-units blocks' sums and their joint Gram ``sum_i u_i u_i'`` (every
  source's block of unit i side by side: the cross-source terms of S) are one
  pass over the chunks, each chunk holding all rows of its units in every
  source (alignment.py).

``labeled_pos`` is ``0..n-1``: the labeled units' positions in an order
that lists them first (no N-row index exists on the client). Per-unit
arrays (``values``, ``full``, ``cluster_sums``) would be N rows and are
refused with a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from ..exceptions import SpecificationError
from ..moments import MomentBlocks, group_sums
from .reduction import map_reduce
from .source import PartitionedBlock, to_units, unit_values

__all__ = ["PartitionedMomentBlocks", "joint_sums"]


def _joint(chunk: Any, specs: list[tuple[int, Any, np.ndarray, bool]]) -> tuple[np.ndarray, np.ndarray]:
    """Sums and Gram of the chunk's per-unit all-units blocks, stacked side by side."""
    parts = []
    for m, family, params, weighted in specs:
        design = chunk.designs[m]
        parts.append(unit_values(chunk, m, family.evaluate(design.X, design.y, params), weighted))
    Z = np.hstack(parts)
    return np.ones(len(Z)) @ Z, Z.T @ Z


def joint_sums(evaluations: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Over all N units, the sum and the Gram ``sum_i u_i u_i'`` of the per-unit
    moments of the sources' `PartitionedEvaluation`s, side by side in their
    order: one pass over the partitions."""
    specs = [(e.source.index, e.family, e.params, e.source.weighted) for e in evaluations]
    return map_reduce(evaluations[0].source.chunks, _joint, specs)


def _ds_pass(
    chunk: Any, specs: list[tuple[int, Any, np.ndarray, bool]],
    per_vector: list[tuple[list[np.ndarray], float, np.ndarray]], extra_ids: Any,
) -> list[tuple[list[np.ndarray], np.ndarray, np.ndarray]]:
    """Windmeijer's all-units sums in one chunk (see `PartitionedMomentBlocks.ds_times_many`),
    for each vector ``(v_all, gbar_v, extra)``: the sources evaluated once for all."""
    evaluations, U = [], []
    for m, family, params, weighted in specs:
        design = chunk.designs[m]
        evaluation = family.evaluate(design.X, design.y, params)
        evaluations.append(evaluation)
        U.append(unit_values(chunk, m, evaluation, weighted))
    where = chunk.units.get_indexer(extra_ids)
    found = where >= 0
    out = []
    for v_all, gbar_v, extra in per_vector:
        c = np.full(len(chunk.units), -gbar_v)
        for values, vb in zip(U, v_all):
            c += values @ vb
        c[where[found]] += extra[found]
        jacobians, E = [], []
        for (m, _, _, weighted), evaluation, vb in zip(specs, evaluations, v_all):
            design = chunk.designs[m]
            c_rows = c[design.codes]
            jacobians.append(evaluation.jacobian(c_rows * design.weight if weighted else c_rows))
            E.append(to_units(chunk, m, evaluation.vjp(vb), weighted))
        Z, E_all = np.hstack(U), np.hstack(E)
        out.append((jacobians, Z.T @ E_all, np.ones(len(E_all)) @ E_all))
    return out


@dataclass(frozen=True, eq=False)
class PartitionedMomentBlocks(MomentBlocks):
    """Moment blocks whose all-units blocks live in partitions (module docstring)."""

    @property
    def _partitioned(self) -> list[int]:
        return [a for a, b in enumerate(self.blocks) if isinstance(b, PartitionedBlock)]

    def _specs(self, indices: list[int]) -> list[tuple[int, Any, np.ndarray, bool]]:
        specs = []
        for a in indices:
            evaluation = self.blocks[a].evaluation  # type: ignore[union-attr]
            source = evaluation.source
            specs.append((source.index, evaluation.family, evaluation.params, source.weighted))
        return specs

    @property
    def _chunks(self) -> list:
        return self.blocks[self._partitioned[0]].evaluation.source.chunks  # type: ignore[union-attr]

    @cached_property
    def _all_units(self) -> tuple[np.ndarray, np.ndarray]:
        """The all-units blocks' sums and joint Gram: one pass over the partitions."""
        indices = self._partitioned
        if any(not isinstance(self.blocks[a], PartitionedBlock) for a, only in enumerate(self.labeled_only) if not only):
            raise SpecificationError("an all-units block is in memory while another is partitioned")
        return joint_sums([self.blocks[a].evaluation for a in indices])  # type: ignore[union-attr]

    def _offsets(self) -> dict[int, slice]:
        out, start = {}, 0
        for a in self._partitioned:
            width = self.blocks[a].shape[1]  # type: ignore[union-attr]
            out[a] = slice(start, start + width)
            start += width
        return out

    def _block_sum(self, a: int) -> np.ndarray:
        if isinstance(self.blocks[a], PartitionedBlock):
            return self._all_units[0][self._offsets()[a]]
        return super()._block_sum(a)

    def _all_units_gram(self, full: list[int]) -> np.ndarray:
        offsets = self._offsets()
        index = np.concatenate([np.arange(offsets[a].start, offsets[a].stop) for a in full])
        return self._all_units[1][np.ix_(index, index)]

    def _on_labeled(self, a: int) -> np.ndarray:
        block = self.blocks[a]
        if isinstance(block, PartitionedBlock):
            return block.labeled_values
        return super()._on_labeled(a)

    def _refuse(self, what: str) -> SpecificationError:
        return SpecificationError(
            f"{what} needs the per-unit moments of all N units, which for Dask sources exist only "
            f"in their partitions; it is not available for a fit on Dask frames"
        )

    @property
    def values(self) -> tuple[np.ndarray, ...]:
        raise self._refuse("the per-unit moment values")

    def full(self) -> np.ndarray:
        raise self._refuse("the (N, K) moment matrix")

    def cluster_sums(self, codes: np.ndarray, n_clusters: int) -> np.ndarray:
        raise self._refuse("cluster sums (cov_type='cluster')")

    # -- Windmeijer ---------------------------------------------------------------------
    def ds_times_many(self, scores: Any, vs: list[np.ndarray], covariance: Any = None) -> list[np.ndarray]:
        """``(dS/dbeta_j) v`` for every j and each vector v, (K, P) each:
        `synthinfer.inference.windmeijer`'s sums, with the all-units parts summed
        over the partitions (every vector in one pass) and the labeled parts in memory.

        With ``c_i = (g_i - gbar)' v`` and ``e_i = (dg_i/dbeta)' v`` it is
        ``(1/N) [sum_i c_i dg_i/dbeta + sum_i (g_i - gbar) e_i']``. ``c_i`` is the
        all-units blocks' part (in the partitions) plus, for a labeled unit, the
        labeled blocks' part (shipped to the partitions as n numbers); ``e_i``
        splits the same way, and each product is taken where its factors are.
        """
        if covariance is not None and covariance.groups is not None:
            raise self._refuse("Windmeijer's correction under clustered S")
        prepared = [self._ds_labeled(scores, v) for v in vs]
        # the labeled units' ids in real's order, for the partitions to find them
        labeled_ids = scores.sources[0].source.labeled_ids
        sums = map_reduce(
            self._chunks, _ds_pass, self._specs(self._partitioned), [args for args, _ in prepared], labeled_ids,
        )
        return [finish(total) for (_, finish), total in zip(prepared, sums)]

    def _ds_labeled(self, scores: Any, v: np.ndarray) -> tuple[tuple, Any]:
        """One vector's labeled parts (in memory): the pass's arguments, and what
        turns the pass's sums into ``(dS/dbeta_j) v``."""
        n_blocks = len(self.blocks)
        widths = [self._width(a) for a in range(n_blocks)]
        starts = np.cumsum([0] + widths)
        span = [slice(starts[a], starts[a + 1]) for a in range(n_blocks)]
        v_blocks = [v[span[a]] for a in range(n_blocks)]
        gbar = self.mean()
        gbar_v = float(gbar @ v)
        n = len(self.labeled_pos)
        on_labeled = [self._on_labeled(a) for a in range(n_blocks)]
        # c on the labeled units, and its part from the labeled-only blocks
        extra = np.zeros(n)
        for a in range(n_blocks):
            if self.labeled_only[a]:
                extra += on_labeled[a] @ v_blocks[a]
        c_lab = extra - gbar_v
        for a in self._partitioned:
            c_lab = c_lab + on_labeled[a] @ v_blocks[a]
        p = scores.target.n_params
        K, P = int(starts[-1]), p * (1 + len(scores.sources))
        cols = [slice(0, p)] + [slice(p * (1 + m), p * (2 + m)) for m in range(len(scores.sources))]
        term1 = np.zeros((K, P))
        E_lab = np.zeros((n, P))  # e_i's labeled-only part (theta, and the labeled blocks)
        E_all_lab = np.zeros((n, P))  # e_i's all-units part, on the labeled units
        weight = scores.target_weight
        term1[span[0], cols[0]] = scores.target.jacobian(c_lab if weight is None else c_lab * weight)
        e_target = scores.target.vjp(v_blocks[0])
        E_lab[:, cols[0]] = e_target if weight is None else e_target * weight[:, None]
        for m, source_scores in enumerate(scores.sources):
            source = source_scores.source
            labeled_source = source.labeled
            evaluation = source_scores.evaluation.labeled
            row_weight, labeled_weight = source_scores.row_weight, source_scores.labeled_row_weight
            lab_block, all_block = 1 + 2 * m, 2 + 2 * m
            c_rows = c_lab[labeled_source.unit_pos]
            term1[span[lab_block], cols[1 + m]] = evaluation.jacobian(
                c_rows if labeled_weight is None else c_rows * labeled_weight
            )
            row_e = evaluation.vjp(v_blocks[all_block])
            if row_weight is not None:
                row_e = row_e * row_weight[:, None]
            E_all_lab[:, cols[1 + m]] = _unit_totals(labeled_source, row_e)
            lab_e = evaluation.vjp(v_blocks[lab_block])
            if labeled_weight is not None:
                lab_e = lab_e * labeled_weight[:, None]
            E_lab[:, cols[1 + m]] += _unit_totals(labeled_source, lab_e)
        partitioned = self._partitioned

        def finish(total: tuple[list[np.ndarray], np.ndarray, np.ndarray]) -> np.ndarray:
            jacobians, UE, e_all_sum = total
            eta_cols = slice(p, P)
            for m, a in enumerate(partitioned):
                term1[span[a], cols[1 + m]] = jacobians[m]
            e_total = E_lab.sum(axis=0)
            e_total[eta_cols] += e_all_sum
            E_lab_total = E_lab + E_all_lab
            term2 = np.zeros((K, P))
            offsets = self._offsets()
            for a in range(n_blocks):
                if self.labeled_only[a]:
                    term2[span[a]] = on_labeled[a].T @ E_lab_total
                else:
                    term2[span[a]] = on_labeled[a].T @ E_lab
                    term2[span[a], eta_cols] += UE[offsets[a]]
                term2[span[a]] -= np.outer(gbar[span[a]], e_total)
            return (term1 + term2) / self.n_units

        return ([v_blocks[a] for a in partitioned], gbar_v, extra), finish

    def _width(self, a: int) -> int:
        block = self.blocks[a]
        return block[0].shape[1] if isinstance(block, tuple) else block.shape[1]


def _unit_totals(source: Any, row_values: np.ndarray) -> np.ndarray:
    if source.one_row_per_unit:
        return row_values
    return group_sums(source.unit_pos, source.n_units, row_values)
