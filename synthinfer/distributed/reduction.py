"""Map a function over the partitions and tree-reduce its sums.

Every pass of the estimator is ``sum_p f(chunk_p)`` for small arrays (p, p x
p, q x q): a map over the persisted chunks and a tree of additions with a
fixed fan-in, so the client receives one result and no node more than a
few. The pass runs on whatever scheduler dask would use (a
``dask.distributed`` client if one is active, else the threaded one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import uuid
from typing import Any

__all__ = ["add", "tree_sum", "map_reduce", "FAN_IN", "PASSES"]

#: partial sums combined per node of the reduction tree
FAN_IN = 8
#: passes over the partitions run in this process, the levels pass (design.py)
#: included (for benchmarks and tests)
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
            dask.delayed(_add_many, pure=False)(*parts[i : i + FAN_IN])
            for i in range(0, len(parts), FAN_IN)
        ]
    return parts[0]


def map_reduce(chunks: Sequence[Any], func: Callable[..., Any], *args: Any) -> Any:
    """``sum_p func(chunk_p, *args)``, computed (one pass over the partitions).

    A pass's graph is used once, so its keys are random (``pure=False``) rather
    than hashes of the arguments: hashing (pickling) every argument of every
    partition's task was most of a pass's cost on the client. Each argument
    that is not a plain scalar becomes one node that the tasks share, so it
    is shipped to a cluster once per pass, not once per partition.
    """
    import dask

    if not chunks:
        raise ValueError("no partitions")
    token = uuid.uuid4().hex
    shared = [
        a if a is None or isinstance(a, (bool, int, float, str))
        else dask.delayed(a, name=f"shared-{i}-{token}", traverse=False)
        for i, a in enumerate(args)
    ]
    parts = [dask.delayed(func, pure=False)(chunk, *shared) for chunk in chunks]
    PASSES["count"] += 1
    return dask.compute(tree_sum(parts))[0]
