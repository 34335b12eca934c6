"""Provenance: how a frame was made (model, prompts and their hashes, parameters, dates, counts).

It travels with the frame in ``frame.attrs["provenance"]`` (a JSON-ready
dict) and is written as JSON next to an output file
(``out.csv`` -> ``out.csv.provenance.json``) by `save_frame`.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from ..exceptions import SpecificationError

__all__ = ["ATTRS_KEY", "provenance_path", "save_frame", "now_utc", "build_provenance", "versions", "function_name"]

ATTRS_KEY = "provenance"
_PARQUET = (".parquet", ".pq")


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def function_name(function: Any) -> str | None:
    """``module.qualname`` of a user function (e.g. ``featurize``), for provenance."""
    if function is None:
        return None
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', repr(function))}"


def versions() -> dict[str, str | None]:
    from .. import __version__

    openai = sys.modules.get("openai")
    return {
        "synthinfer": __version__,
        "openai": getattr(openai, "__version__", None),
        "python": sys.version.split()[0],
    }


def build_provenance(**entries: Any) -> dict[str, Any]:
    """A JSON-ready provenance record; fails loudly if something cannot be written as JSON."""
    record = {**entries, "versions": versions()}
    try:
        json.dumps(record, allow_nan=False)
    except (TypeError, ValueError) as exc:  # a bug, not bad input: provenance must be writable
        raise TypeError(f"provenance is not JSON-serialisable: {exc}") from exc
    return record


def provenance_path(path: str | Path) -> Path:
    """Where the provenance of the frame written at ``path`` goes."""
    path = Path(path)
    return path.with_name(path.name + ".provenance.json")


def save_frame(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` (index included) as CSV or Parquet by extension, and its provenance next to it.

    Returns
    -------
    Path
        The provenance file written (``<path>.provenance.json``).
    """
    path = Path(path)
    name = path.name.lower()
    record = frame.attrs.get(ATTRS_KEY)
    if record is None:
        raise SpecificationError(f"the frame for {path} carries no provenance (frame.attrs[{ATTRS_KEY!r}])")
    if name.endswith(_PARQUET):
        frame.to_parquet(path)
    elif ".csv" in name:
        frame.to_csv(path)
    else:
        raise SpecificationError(f"cannot write {path}: use a .csv (.csv.gz, ...) or .parquet file name")
    target = provenance_path(path)
    target.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return target
