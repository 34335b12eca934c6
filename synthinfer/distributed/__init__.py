"""Fitting on Dask DataFrames: every quantity of the estimator as a sum over partitions.

The moment means, the Jacobian blocks, S and Windmeijer's derivative of S
are sums over units, so auxiliary frames too large for one process's memory
are read a partition at a time and reduced as p x p (or q x q) arrays; only
the labeled units' rows (n of them) reach the client. One concept per file:

- ``alignment.py``: the frames must be indexed by unit id with known, equal divisions;
- ``design.py``: the formula learned once (levels streamed from every partition);
- ``chunks.py``: one partition of every source as validated design matrices;
- ``reduction.py``: map over partitions, tree-reduce the sums;
- ``source.py``: a source whose rows live in partitions, and its evaluations;
- ``solve.py``: step 1's root for a partitioned source (the in-memory solvers' steps);
- ``blocks.py``: the moment blocks over partitions (S, the Stein rule, Windmeijer);
- ``data.py``: ``build_partitioned_model_data``, the entry point ``build_model_data`` calls;
- ``parquet.py``: a path or glob of Parquet files in place of a frame, read lazily.

Nothing here is imported by the core unless a Dask frame is passed, so the
package imports without dask (the ``dask`` extra). See docs/dask.md.
"""

from __future__ import annotations

__all__ = ["require_dask"]

#: what to install for Dask frames
EXTRA = "synthinfer[dask]"


def require_dask() -> object:
    """``dask.dataframe``, or an ImportError naming the extra to install."""
    try:
        import dask
        import dask.dataframe as dd
    except ImportError as exc:  # pragma: no cover - the extra is installed in CI
        raise ImportError(
            f"fitting on Dask DataFrames needs dask[dataframe] (and distributed for a "
            f"cluster): pip install '{EXTRA}'"
        ) from exc
    del dask
    return dd
