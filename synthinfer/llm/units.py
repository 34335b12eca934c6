"""Checking the units handed to the LLM functions, before anything is sent."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import PromptLeakError, SpecificationError, describe_units

__all__ = ["checked_units", "check_featurize", "featurize_one", "as_cache"]


def checked_units(units: Any, text: str, forbidden: Iterable[str | None], where: str) -> pd.DataFrame:
    """The units frame, checked: unique ids, a non-empty text for each, no human-label column.

    A Series of texts is accepted as a frame with one column named ``text``.
    The input is never modified.
    """
    if isinstance(units, pd.Series):
        units = units.to_frame(text)
    if not isinstance(units, pd.DataFrame):
        raise SpecificationError(f"{where}: units must be a DataFrame indexed by unit id, got {type(units).__name__}")
    if len(units) == 0:
        raise SpecificationError(f"{where}: units is empty")
    if units.columns.duplicated().any():
        raise SpecificationError(f"{where}: units has duplicate column names {sorted(set(units.columns[units.columns.duplicated()]))}")
    index = units.index
    if index.hasnans:
        raise SpecificationError(f"{where}: {int(pd.isna(index).sum())} unit id(s) in the index are missing")
    if not index.is_unique:
        repeated = list(dict.fromkeys(index[index.duplicated()]))
        raise SpecificationError(f"{where}: the index must hold unique unit ids, but ids {describe_units(repeated)} repeat")
    leaked = [c for c in dict.fromkeys(f for f in forbidden if f is not None) if c in units.columns]
    if leaked:
        raise PromptLeakError(
            f"{where}: units carry the column(s) {leaked}, the outcome / human labels; the LLM functions "
            f"must never receive the human labels, so pass the units without them (e.g. units[[{text!r}]])"
        )
    if text not in units.columns:
        raise SpecificationError(f"{where}: units have no text column {text!r} (columns: {list(units.columns)}); name it with text=")
    values = units[text]
    bad = [u for u, v in zip(index, values) if not isinstance(v, str) or not v.strip()]
    if bad:
        raise SpecificationError(
            f"{where}: {len(bad)} unit(s) {describe_units(bad)} have no text in column {text!r} "
            f"(missing, empty or not a string); nothing is dropped silently, so remove or fill them"
        )
    return units


def featurize_one(featurize: Callable[[str], Any], value: str, where: str) -> dict[str, float]:
    """Call the user's feature function on one text; check it returns named numbers."""
    out = featurize(value)
    if isinstance(out, pd.Series):
        out = out.to_dict()
    if not isinstance(out, Mapping) or not out:
        raise SpecificationError(f"{where}: featurize must return a non-empty dict (or Series) of covariates, got {type(out).__name__}")
    clean = {}
    for name, v in out.items():
        if not isinstance(name, str):
            raise SpecificationError(f"{where}: featurize returned a non-string column name {name!r}")
        if isinstance(v, (bool, np.bool_)):
            v = int(v)
        if not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
            raise SpecificationError(f"{where}: featurize returned {name}={v!r}; covariates must be finite numbers")
        clean[name] = v.item() if isinstance(v, np.generic) else v
    return clean


def check_featurize(featurize: Any, sample_text: str, taken: Iterable[str], where: str) -> list[str]:
    """Try ``featurize`` on one real text before anything is sent; return its column names."""
    if not callable(featurize):
        raise SpecificationError(f"{where}: featurize must be a function of a text, got {type(featurize).__name__}")
    try:
        names = list(featurize_one(featurize, sample_text, where))
    except SpecificationError:
        raise
    except Exception as exc:
        raise SpecificationError(f"{where}: featurize failed on the first unit's text ({type(exc).__name__}: {exc})") from exc
    clash = [n for n in names if n in set(taken)]
    if clash:
        raise SpecificationError(f"{where}: featurize returns column(s) {clash} that the output already has")
    return names


def as_cache(cache: Any) -> tuple[Any, bool]:
    """A `ResponseCache` from a path, a cache or None (in memory); and whether we opened it."""
    from .cache import ResponseCache

    if isinstance(cache, ResponseCache):
        return cache, False
    return ResponseCache(cache), True
