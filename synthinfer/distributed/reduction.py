"""Map a function over the partitions and tree-reduce its sums.

Every pass of the estimator is ``sum_p f(chunk_p)`` for small arrays (p, p x
p, q x q): a map over the persisted chunks and a tree of additions with a
fixed fan-in, so the client receives one result and no node more than a
few. The pass runs on whatever scheduler dask would use (a
``dask.distributed`` client if one is active, else the threaded one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["add", "tree_sum", "map_reduce", "FAN_IN", "PASSES"]

#: partial sums combined per node of the reduction tree
FAN_IN = 8
#: passes over the partitions run in this process (for benchmarks and tests)
PASSES = {"count": 0}


def add(a: Any, b: Any) -> Any:
    """Element-wise sum of nested tuples / lists of arrays (None counts as absent)."""
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, (tuple, list)):
        return type(a)(add(x, y) for x, y in zip(a, b))
    return a + b


def _add_many(*parts: Any) -> Any:
    total = parts[0]
    for part in parts[1:]:
        total = add(total, part)
    return total


def tree_sum(parts: Sequence[Any]) -> Any:
    """A delayed sum of delayed parts, ``FAN_IN`` at a time."""
    import dask

    parts = list(parts)
    while len(parts) > 1:
        parts = [
            dask.delayed(_add_many, pure=True)(*parts[i : i + FAN_IN])
            for i in range(0, len(parts), FAN_IN)
        ]
    return parts[0]


def map_reduce(chunks: Sequence[Any], func: Callable[..., Any], *args: Any) -> Any:
    """``sum_p func(chunk_p, *args)``, computed (one pass over the partitions)."""
    import dask

    if not chunks:
        raise ValueError("no partitions")
    shared = [dask.delayed(a) if isinstance(a, (np.ndarray, list, tuple, dict)) else a for a in args]
    parts = [dask.delayed(func, pure=True)(chunk, *shared) for chunk in chunks]
    PASSES["count"] += 1
    return dask.compute(tree_sum(parts))[0]
