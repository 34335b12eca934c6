"""The stacked moment vector, kept as blocks.

Per unit ``i`` the moment is ``g_i = [R_i psi_0 ; R_i psi_1 ; psi_1 ; ...]``: a
target block on the labeled units and, per source, a labeled block and an
all-units block. Nothing ever needs the (N, K) matrix: blocks that live on the
labeled units only are stored as (n, p) arrays, and every cross product is
taken over the units both blocks live on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse

__all__ = ["MomentBlocks"]


@dataclass(frozen=True, eq=False)
class MomentBlocks:
    """Per-unit moment blocks evaluated at one parameter vector.

    Attributes
    ----------
    values : tuple of ndarray
        Block values: (n, p) for a block that is zero off the labeled units, in
        the order of ``labeled_pos``, else (N, p).
    labeled_only : tuple of bool
        Which blocks live on the labeled units only.
    labeled_pos : ndarray of int
        Positions of the labeled units among the N units.
    n_units : int
        N: every mean is over all N units.
    all_units : ndarray, optional
        The (N, F) matrix whose consecutive column blocks are the blocks that
        live on all units, in order; their cross products then take one
        symmetric product instead of one general product per pair.
    """

    values: tuple[np.ndarray, ...]
    labeled_only: tuple[bool, ...]
    labeled_pos: np.ndarray
    n_units: int
    all_units: np.ndarray | None = None

    @property
    def k_moms(self) -> int:
        return sum(v.shape[1] for v in self.values)

    def mean(self) -> np.ndarray:
        """gbar = (1/N) sum_i g_i."""
        # a matrix-vector product sums the rows an order of magnitude faster than .sum(axis=0)
        return np.concatenate([np.ones(len(v)) @ v for v in self.values]) / self.n_units

    def second_moment(self) -> np.ndarray:
        """(1/N) sum_i g_i g_i', block by block over the units both blocks live on."""
        k = self.k_moms
        out = np.empty((k, k))
        starts = np.cumsum([0] + [v.shape[1] for v in self.values])
        blocks = list(zip(self.values, self.labeled_only))
        stacked = self.all_units is not None
        if stacked:
            full = [a for a, (_, la) in enumerate(blocks) if not la]
            product = self.all_units.T @ self.all_units
            offsets = np.cumsum([0] + [blocks[a][0].shape[1] for a in full])
            for i, a in enumerate(full):
                for j, b in enumerate(full):
                    out[starts[a] : starts[a + 1], starts[b] : starts[b + 1]] = product[
                        offsets[i] : offsets[i + 1], offsets[j] : offsets[j + 1]
                    ]
        for a, (va, la) in enumerate(blocks):
            rows = slice(starts[a], starts[a + 1])
            for b in range(a, len(blocks)):
                vb, lb = blocks[b]
                if stacked and not la and not lb:
                    continue
                cols = slice(starts[b], starts[b + 1])
                # a block that is zero off the labeled units restricts the product to them
                left = va[self.labeled_pos] if lb and not la else va
                right = vb[self.labeled_pos] if la and not lb else vb
                out[rows, cols] = left.T @ right
                out[cols, rows] = out[rows, cols].T
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
        columns = []
        for values, labeled_only in zip(self.values, self.labeled_only):
            unit_codes = codes[self.labeled_pos] if labeled_only else codes
            indicator = scipy.sparse.csr_matrix(
                (np.ones(len(unit_codes)), (unit_codes, np.arange(len(unit_codes)))),
                shape=(n_clusters, len(unit_codes)),
            )
            columns.append(np.asarray(indicator @ values))
        return np.hstack(columns)
