"""Cross products over many rows, computed a block of rows at a time.

Every costly quantity of the estimators is a cross product ``Z'Z`` of a tall
matrix whose rows are scaled design rows (``x sqrt(w)`` for a Jacobian,
``x r`` for S). Building Z whole costs a write and a re-read of a matrix the
size of the design; building it one block of rows at a time keeps the block in
cache between its computation and its product (about a fifth faster at a
million rows) and needs no temporary the size of the data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["ROWS_PER_BLOCK", "weighted_gram", "scaled_rows_gram"]

#: rows per block: a (16384, 20) float block is 2.6 MB, near a typical L2/L3 slice
ROWS_PER_BLOCK = 16_384


def weighted_gram(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``X' diag(w) X`` for non-negative w, as ``Z'Z`` with ``Z = X sqrt(w)`` (a syrk)."""
    return scaled_rows_gram([(X, np.sqrt(w))])


def scaled_rows_gram(parts: Sequence[tuple[np.ndarray, np.ndarray | None]]) -> np.ndarray:
    """``Z'Z`` for ``Z = [A_1 diag(s_1) | A_2 diag(s_2) | ...]`` (rows scaled, columns stacked).

    Each part is ``(A, s)``: an (n, p_j) matrix and a per-row scale (None for
    no scaling). All parts have the same n rows.
    """
    n = parts[0][0].shape[0]
    widths = [a.shape[1] for a, _ in parts]
    offsets = np.cumsum([0] + widths)
    total = int(offsets[-1])
    if n <= 2 * ROWS_PER_BLOCK:
        scaled = [a if s is None else a * s[:, None] for a, s in parts]
        Z = scaled[0] if len(scaled) == 1 else np.hstack(scaled)
        return Z.T @ Z
    out = np.zeros((total, total))
    block = np.empty((ROWS_PER_BLOCK, total), order="F")
    for start in range(0, n, ROWS_PER_BLOCK):
        stop = min(start + ROWS_PER_BLOCK, n)
        Z = block if stop - start == ROWS_PER_BLOCK else np.empty((stop - start, total), order="F")
        for (a, s), lo, hi in zip(parts, offsets[:-1], offsets[1:]):
            if s is None:
                Z[:, lo:hi] = a[start:stop]
            else:
                np.multiply(a[start:stop], s[start:stop, None], out=Z[:, lo:hi])
        out += Z.T @ Z
    return out
