"""The stacked moment vector, kept as blocks.

Per unit ``i`` the moment is ``g_i = [R_i psi_0 ; R_i psi_1 ; psi_1 ; ...]``: a
target block on the labeled units and, per source, a labeled block and an
all-units block. Nothing ever needs the (N, K) matrix: blocks that live on the
labeled units only are stored as (n, p) arrays, and every cross product is
taken over the units both blocks live on.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .rowblocks import scaled_rows_gram

__all__ = ["MomentBlocks", "assemble_blocks", "group_sums"]


#: An all-units block given as factors ``(X, r)``: its value is ``X * r[:, None]``.
Factors = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True, eq=False)
class MomentBlocks:
    """Per-unit moment blocks evaluated at one parameter vector.

    Attributes
    ----------
    blocks : tuple
        Per block, its values: (n, p) for a block that is zero off the labeled
        units, in the order of ``labeled_pos``, else (N, p). An all-units block
        may instead be given as factors ``(X, r)`` with value ``X * r[:, None]``
        (an auxiliary source's scores, one row per unit): S then takes its
        products a block of rows at a time and the (N, p) values are built only
        if something asks for ``values``.
    labeled_only : tuple of bool
        Which blocks live on the labeled units only.
    labeled_pos : ndarray of int
        Positions of the labeled units among the N units.
    n_units : int
        N: every mean is over all N units.
    """

    blocks: tuple[np.ndarray | Factors, ...]
    labeled_only: tuple[bool, ...]
    labeled_pos: np.ndarray
    n_units: int

    @cached_property
    def values(self) -> tuple[np.ndarray, ...]:
        """Every block's values as an array ((n, p) or (N, p))."""
        return tuple(
            block[0] * block[1][:, None] if isinstance(block, tuple) else block
            for block in self.blocks
        )

    @property
    def k_moms(self) -> int:
        return sum(_width(b) for b in self.blocks)

    def mean(self) -> np.ndarray:
        """gbar = (1/N) sum_i g_i."""
        # a matrix-vector product sums the rows an order of magnitude faster than .sum(axis=0)
        return np.concatenate([self._block_sum(a) for a in range(len(self.blocks))]) / self.n_units

    def _block_sum(self, a: int) -> np.ndarray:
        """Block a's sum over the units it lives on."""
        b = self.blocks[a]
        return b[1] @ b[0] if isinstance(b, tuple) else np.ones(len(b)) @ b

    def _all_units_gram(self, full: list[int]) -> np.ndarray:
        """``sum_i u_i u_i'`` of the all-units blocks ``full``, stacked: one pass over the N units."""
        parts = [b if isinstance(b, tuple) else (b, None) for b in (self.blocks[a] for a in full)]
        return scaled_rows_gram(parts)

    @property
    def spans(self) -> list[slice]:
        """Each block's columns among the K moments."""
        starts = np.cumsum([0] + [_width(b) for b in self.blocks])
        return [slice(int(starts[a]), int(starts[a + 1])) for a in range(len(self.blocks))]

    def values_on(self, a: int, units: slice | np.ndarray) -> np.ndarray:
        """Block a's values on ``units`` (a slice or positions of the units it lives
        on), from its array or, for factors ``(X, r)``, only for those rows."""
        block = self.blocks[a]
        if isinstance(block, tuple):
            X, r = block
            return X[units] * r[units, None]
        return block[units]

    def _on_labeled(self, a: int) -> np.ndarray:
        """Block a's values on the labeled units."""
        if self.labeled_only[a]:
            return self.blocks[a]  # type: ignore[return-value]
        return self.values_on(a, self.labeled_pos)

    def labeled_rows(self) -> np.ndarray:
        """(n, K): every block's values on the labeled units, in ``labeled_pos`` order."""
        return np.hstack([self._on_labeled(a) for a in range(len(self.blocks))])

    def second_moment(self) -> np.ndarray:
        """(1/N) sum_i g_i g_i', block by block over the units both blocks live on."""
        k = self.k_moms
        out = np.empty((k, k))
        span = self.spans
        full = [a for a, only in enumerate(self.labeled_only) if not only]
        if full:
            index = np.concatenate([np.arange(span[a].start, span[a].stop) for a in full])
            out[np.ix_(index, index)] = self._all_units_gram(full)
        labeled = [a for a, only in enumerate(self.labeled_only) if only]
        on_labeled = {a: self._on_labeled(a) for a in range(len(self.blocks))} if labeled else {}
        # a block that is zero off the labeled units restricts the product to them
        for a in labeled:
            for b in range(len(self.blocks)):
                if self.labeled_only[b] and b < a:
                    continue  # already taken as the pair (b, a)
                out[span[a], span[b]] = on_labeled[a].T @ on_labeled[b]
                out[span[b], span[a]] = out[span[a], span[b]].T
        return out / self.n_units

    def full(self) -> np.ndarray:
        """The (N, K) moment matrix; for checks and statsmodels' generic methods."""
        columns = []
        for values, labeled_only in zip(self.values, self.labeled_only):
            if labeled_only:
                block = np.zeros((self.n_units, values.shape[1]))
                block[self.labeled_pos] = values
                columns.append(block)
            else:
                columns.append(values)
        return np.hstack(columns)

    def cluster_sums(self, codes: np.ndarray, n_clusters: int) -> np.ndarray:
        """(G, K) sums of g_i within each cluster; ``codes`` gives each unit's cluster."""
        return np.hstack([
            group_sums(codes[self.labeled_pos] if labeled_only else codes, n_clusters, values)
            for values, labeled_only in zip(self.values, self.labeled_only)
        ])


def assemble_blocks(
    blocks: tuple, labeled_only: tuple[bool, ...], labeled_pos: np.ndarray, n_units: int
) -> MomentBlocks:
    """The moment blocks of one evaluation, of the kind their all-units blocks need.

    An all-units block whose units live in partitions (a Dask source, see
    `synthinfer.distributed`) names the `MomentBlocks` subclass that sums
    over them (``moment_blocks_type``); in-memory blocks give `MomentBlocks`.
    Everything downstream (S, the Stein rule, the J test) reads only the
    interface: ``mean``, ``second_moment``, ``labeled_rows``, ``n_units``.
    """
    for block in blocks:
        kind = getattr(block, "moment_blocks_type", None)
        if kind is not None:
            return kind(blocks, labeled_only, labeled_pos, n_units)
    return MomentBlocks(blocks, labeled_only, labeled_pos, n_units)


def group_sums(codes: np.ndarray, n_groups: int, values: np.ndarray) -> np.ndarray:
    """(n_groups, k) sums of the rows of ``values`` by group code."""
    # one bincount per column: np.add.at is tens of times slower on many rows
    return np.column_stack([
        np.bincount(codes, weights=values[:, j], minlength=n_groups) for j in range(values.shape[1])
    ]).reshape(n_groups, values.shape[1])


def _width(block: np.ndarray | Factors) -> int:
    return block[0].shape[1] if isinstance(block, tuple) else block.shape[1]
