"""One partition of every source as validated design matrices (a chunk).

A chunk holds the units of one partition (the first proxy's ids, else the
first synthetic source's) and, per source, its design, outcome, each row's
unit and weight 1/k. It is built where the partition lives, with the
in-memory path's checks (missing ids, duplicate ids, sources that disagree
on the units, missing values, outcomes outside the support): an error names
the frame and the units, as in memory, and the partition it was found in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..data import _check_ids, _check_unique, check_synthetic_units
from ..exceptions import SpecificationError, describe_units
from .alignment import ALIGNMENT_HINT
from .design import DesignRecipe

__all__ = ["Design", "Chunk", "ChunkSummary", "build_chunk", "summarize"]


@dataclass(frozen=True, eq=False)
class Design:
    """One source's rows in one partition."""

    X: np.ndarray
    y: np.ndarray
    #: each row's unit, as a position among the chunk's units
    codes: np.ndarray
    #: 1 / k for each row (k = its unit's rows in this source)
    weight: np.ndarray
    #: the rows' unit ids (for the labeled rows and for messages)
    ids: pd.Index = field(repr=False)
    #: one row per unit, in the chunk's unit order (codes are 0..units-1)
    in_order: bool = False


@dataclass(frozen=True, eq=False)
class Chunk:
    number: int
    units: pd.Index
    designs: tuple[Design, ...]


def _in_partition(exc: SpecificationError, number: int) -> SpecificationError:
    return type(exc)(f"{exc} (found in partition {number} of the Dask sources)")


def build_chunk(
    recipe: DesignRecipe, family: Any, names: tuple[str, ...], kinds: tuple[str, ...],
    number: int, bounds: tuple[Any, Any, bool], *frames: pd.DataFrame,
) -> Chunk:
    """Validate one partition of every source and build its designs.

    ``bounds`` are the partition's divisions ``(low, high, last)``: its ids must
    lie in ``[low, high)`` (``[low, high]`` for the last one), or a unit's rows
    could sit in two partitions.
    """
    try:
        for name, frame in zip(names, frames):
            _check_bounds(frame, name, bounds)
        return _build(recipe, family, names, kinds, number, frames)
    except SpecificationError as exc:
        raise _in_partition(exc, number) from None


def _check_bounds(frame: pd.DataFrame, name: str, bounds: tuple[Any, Any, bool]) -> None:
    low, high, last = bounds
    index = frame.index
    inside = (index >= low) & ((index <= high) if last else (index < high))
    inside = np.asarray(inside, dtype=bool) | np.asarray(index.isna())  # missing ids: _check_ids
    if not inside.all():
        raise SpecificationError(
            f"Dask source {name!r}: unit id(s) {describe_units(index[~inside].unique())} lie outside "
            f"their partition's divisions [{low!r}, {high!r}{']' if last else ')'}: the frame's "
            f"divisions do not describe its index, so a unit's rows could sit in two partitions; "
            f"{ALIGNMENT_HINT}"
        )


def _build(recipe, family, names, kinds, number, frames) -> Chunk:
    for name, frame in zip(names, frames):
        _check_ids(frame, name)
    proxies = [(n, f) for n, f, k in zip(names, frames, kinds) if k == "proxy"]
    for name, frame in proxies:
        _check_unique(frame, name)
    if proxies:
        first_name, first = proxies[0]
        units = first.index
        for other_name, other in proxies[1:]:
            missing, extra = units.difference(other.index), other.index.difference(units)
            if len(missing) or len(extra):
                raise SpecificationError(
                    f"proxy frames {first_name!r} and {other_name!r} must hold the same units; "
                    f"{other_name!r} lacks {describe_units(missing)} and has extra "
                    f"{describe_units(extra)}"
                )
    else:
        first = frames[0]
        units = pd.Index(pd.unique(first.index), name=first.index.name)
    spec = recipe.spec()
    outcome = recipe.formula.split("~", 1)[0].strip()
    for name, frame in zip(names, frames):
        spec._check_values(name, frame, outcome)
    designs = []
    for name, kind, frame in zip(names, kinds, frames):
        if kind == "proxy":
            if not frame.index.equals(units):
                frame = frame.iloc[frame.index.get_indexer(units)]
            codes, in_order = np.arange(len(units)), True
        else:
            check_synthetic_units(name, frame.index, units)
            # one sample per unit, listed as the units are: the codes need no lookup
            in_order = frame.index.equals(units)
            codes = np.arange(len(units)) if in_order else units.get_indexer(frame.index)
        y, X = spec.apply(frame, name, plain=True)
        family.check_outcome(y, frame.index, name, spec.outcome_name, auxiliary=True)
        counts = np.bincount(codes, minlength=len(units))
        designs.append(Design(X, y, codes, 1.0 / counts[codes], frame.index, in_order))
    return Chunk(number, units, tuple(designs))


@dataclass(eq=False)
class ChunkSummary:
    """What the client learns about the data in the first pass: counts, the
    outcomes' range per source, and the labeled units' rows (n units)."""

    n_units: int
    n_rows: np.ndarray
    y_min: np.ndarray
    y_max: np.ndarray
    max_rows_per_unit: np.ndarray
    #: per source, the labeled rows: (unit ids, X, y)
    labeled: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]]

    def __add__(self, other: ChunkSummary) -> ChunkSummary:
        return ChunkSummary(
            self.n_units + other.n_units,
            self.n_rows + other.n_rows,
            np.fmin(self.y_min, other.y_min),
            np.fmax(self.y_max, other.y_max),
            np.maximum(self.max_rows_per_unit, other.max_rows_per_unit),
            [a + b for a, b in zip(self.labeled, other.labeled)],
        )


def summarize(chunk: Chunk, real_ids: pd.Index) -> ChunkSummary:
    labeled_units = chunk.units.isin(real_ids)
    n_rows, y_min, y_max, most, labeled = [], [], [], [], []
    for design in chunk.designs:
        n_rows.append(len(design.y))
        y_min.append(design.y.min() if len(design.y) else np.nan)
        y_max.append(design.y.max() if len(design.y) else np.nan)
        most.append(np.bincount(design.codes).max() if len(design.codes) else 0)
        rows = np.flatnonzero(labeled_units[design.codes])
        labeled.append([(np.asarray(design.ids[rows]), design.X[rows], design.y[rows])])
    return ChunkSummary(
        len(chunk.units), np.array(n_rows), np.array(y_min, dtype=float), np.array(y_max, dtype=float),
        np.array(most), labeled,
    )
