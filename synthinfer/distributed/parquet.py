"""A path or glob of Parquet files in place of a proxy or synthetic frame, read lazily.

``proxy="corpus/proxy/*.parquet"`` is ``dd.read_parquet(path,
calculate_divisions=True)``: the files must hold the unit id as their pandas
index (``frame.to_parquet(...)`` of a frame indexed by unit id writes it so)
and be sorted by it across files, so that the divisions are known from the
files' statistics; `synthinfer.distributed.alignment` then checks that every
source has the same divisions, as for any Dask source.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping
from typing import Any

from ..data import is_path
from ..exceptions import SpecificationError
from . import require_dask

__all__ = ["read_parquet_sources"]


def _read(path: Any, role: str) -> Any:
    dd: Any = require_dask()
    text = os.fspath(path)
    # reading is lazy: a local path or glob that names no file would only fail later
    if "://" not in text and not glob.glob(text):
        raise SpecificationError(f"{role}: could not read Parquet files from {text!r}: no such file or directory")
    try:
        frame = dd.read_parquet(text, calculate_divisions=True)
    except (OSError, ValueError) as error:
        raise SpecificationError(f"{role}: could not read Parquet files from {text!r}: {error}") from error
    if not frame.known_divisions:
        raise SpecificationError(
            f"{role}: the Parquet files at {text!r} have no known divisions: write them from a frame "
            f"indexed by unit id and sorted by it across files (frame.sort_index().to_parquet(...)), "
            f"or read them yourself with dd.read_parquet(..., index='unit', calculate_divisions=True)"
        )
    return frame


def read_parquet_sources(arg: Any, role: str) -> Any:
    """``arg`` with every path or glob replaced by its lazily read Dask frame."""
    if isinstance(arg, Mapping):
        return {name: _read(value, f"{role} source {name!r}") if is_path(value) else value
                for name, value in arg.items()}
    return _read(arg, role) if is_path(arg) else arg
