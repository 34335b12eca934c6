"""The alignment every Dask source must have: indexed by unit id, with known, equal divisions.

S pairs a unit's moments of every source (its cross-source terms), and a
synthetic source's unit moment is the mean over that unit's k rows. Both
need all rows of a unit, of every source, in one partition. The package
does not shuffle the data behind the user's back; it requires the layout
that makes this true and checks it:

- every auxiliary frame is a Dask DataFrame whose index is the unit id,
- with known divisions (a sorted index: ``set_index("unit")``, or
  ``dd.from_pandas(frame.sort_index(), npartitions=...)``, or Parquet
  written with its index and read with ``calculate_divisions=True``),
- and the same divisions in every frame (``other.repartition(divisions=proxy.divisions)``).

Then partition i of every source holds the ids in ``[d_i, d_{i+1})`` (the
last one closed), so a unit's rows are in the same partition everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..exceptions import SpecificationError

__all__ = ["check_alignment", "ALIGNMENT_HINT"]

ALIGNMENT_HINT = (
    "every Dask source must be indexed by unit id with known divisions, the same in every "
    "source (e.g. frame.set_index('unit') or dd.from_pandas(frame.sort_index(), npartitions=16), "
    "then other.repartition(divisions=first.divisions)); see docs/dask.md"
)


def check_alignment(frames: Mapping[str, Any]) -> tuple:
    """The common divisions of the Dask sources; a `SpecificationError` naming the frame otherwise."""
    dd = __import__("dask.dataframe", fromlist=["DataFrame"])
    reference: tuple | None = None
    first = ""
    for name, frame in frames.items():
        if not isinstance(frame, dd.DataFrame):
            kind = type(frame)
            raise SpecificationError(
                f"source {name!r} is a {kind.__module__.split('.')[0]} {kind.__name__}, but another "
                f"source is a Dask DataFrame: when one auxiliary source is a Dask DataFrame every "
                f"one must be (dd.from_pandas(frame.sort_index(), npartitions=...) with the same "
                f"divisions)"
            )
        if not frame.known_divisions:
            raise SpecificationError(
                f"Dask source {name!r} has unknown divisions, so the rows of one unit cannot be "
                f"known to sit in one partition; {ALIGNMENT_HINT}"
            )
        divisions = tuple(frame.divisions)
        if reference is None:
            reference, first = divisions, name
        elif divisions != reference:
            raise SpecificationError(
                f"Dask sources {first!r} and {name!r} have different divisions ({len(reference) - 1} "
                f"partitions from {reference[0]!r} to {reference[-1]!r} against {len(divisions) - 1} "
                f"from {divisions[0]!r} to {divisions[-1]!r}), so a unit's rows would sit in "
                f"different partitions; {ALIGNMENT_HINT}"
            )
    assert reference is not None
    return reference
