"""The formula learned once for every partition: the levels of every source, streamed.

In memory the formula is learned on the union of the frames (`FormulaSpec`).
Here the union's levels are gathered in one pass over the partitions (the
distinct values of each categorical formula variable, a small set), and
the spec is learned on ``real`` plus one small frame per source holding
those levels. For formulas without stateful transforms this is the
in-memory spec exactly: the same columns, the same levels in the same
order. Stateful transforms (``center``, ``standardize``, splines) would
need their statistics over every row and are refused for now.

Workers rebuild the spec from this recipe (patsy's specs cannot be
pickled), once per process.
"""

from __future__ import annotations

import re
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import SpecificationError
from ..formula import FormulaSpec, _formula_names, is_text
from .reduction import PASSES, tree_sum

__all__ = ["DesignRecipe", "learn_design"]

_STATEFUL = re.compile(r"\b(center|standardize|scale|bs|cr|cc|te|poly)\s*\(")
#: specs rebuilt per process, by recipe token (a few models at a time)
_SPECS: OrderedDict[str, FormulaSpec] = OrderedDict()
_KEEP = 8


@dataclass(frozen=True, eq=False)
class DesignRecipe:
    """What a worker needs to rebuild the learned formula: formula, engine, the
    namespace names it uses, and the small learning frames (real, levels)."""

    formula: str
    engine: str | None
    namespace: dict[str, Any]
    learning: dict[str, pd.DataFrame] = field(repr=False)
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    def spec(self) -> FormulaSpec:
        spec = _SPECS.get(self.token)
        if spec is None:
            spec = FormulaSpec(self.formula, self.learning, engine=self.engine, namespace=self.namespace)
            _SPECS[self.token] = spec
            while len(_SPECS) > _KEEP:
                _SPECS.popitem(last=False)
        return spec


@dataclass(frozen=True, eq=False)
class _Levels:
    """Distinct values per source and column; adding two unites them."""

    values: list[list[pd.Series]]

    def __add__(self, other: _Levels) -> _Levels:
        return _Levels([
            [pd.concat([a, b]).drop_duplicates() for a, b in zip(mine, theirs)]
            for mine, theirs in zip(self.values, other.values)
        ])


def _distinct(columns: list[list[str]], *frames: pd.DataFrame) -> _Levels:
    return _Levels([
        [frame[column].dropna().drop_duplicates() for column in names]
        for names, frame in zip(columns, frames)
    ])


def _categorical(formula: str, column: str, dtype: Any) -> bool:
    declared = re.search(rf"C\(\s*{re.escape(column)}\b", formula)
    numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    return bool(declared) or not numeric or is_text(dtype)


def _levels_frame(meta: pd.DataFrame, variables: list[str], levels: Mapping[str, pd.Series]) -> pd.DataFrame:
    """A frame with the meta's dtypes whose categorical columns take every level once."""
    rows = max([len(values) for values in levels.values()] + [1])
    columns = {}
    for column in variables:
        dtype = meta[column].dtype
        if column in levels and len(levels[column]):
            values = levels[column].to_numpy()
            columns[column] = pd.Series(np.resize(values, rows)).astype(dtype)
        else:
            columns[column] = pd.Series(np.zeros(rows)).astype(dtype)
    return pd.DataFrame(columns)


def learn_design(
    formula: str,
    real: pd.DataFrame,
    sources: Mapping[str, Any],
    engine: str | None,
    namespace: Mapping[str, Any] | None,
) -> DesignRecipe:
    """Learn the formula on ``real`` and the levels of every Dask source (one pass)."""
    import dask

    if not isinstance(formula, str) or "~" not in formula:
        raise SpecificationError(f"formula must be a string 'outcome ~ terms', got {formula!r}")
    stateful = _STATEFUL.search(formula)
    if stateful:
        raise SpecificationError(
            f"the formula {formula!r} uses the stateful transform {stateful.group(1)}(), whose "
            f"statistics would have to be learned over every row of the Dask sources; this is "
            f"not supported yet: compute the transformed column first (e.g. with "
            f"ddf.assign(...)) or fit in memory"
        )
    names = _formula_names(formula)
    wanted: dict[str, list[str]] = {}
    lazy: dict[str, list[str]] = {}
    for name, frame in sources.items():
        meta = frame._meta
        variables = [c for c in dict.fromkeys(meta.columns) if isinstance(c, str) and c in names]
        wanted[name] = variables
        for column in variables:
            dtype = meta[column].dtype
            if not _categorical(formula, column, dtype):
                continue
            if isinstance(dtype, pd.CategoricalDtype) and dtype.categories is not None and (
                "__UNKNOWN_CATEGORIES__" not in list(dtype.categories)
            ):
                continue  # known categories: the dtype carries the levels
            lazy.setdefault(name, []).append(column)
    computed: dict[tuple[str, str], Any] = {}
    if lazy:
        # one pass: every partition's distinct values, united up a tree
        named = list(lazy)
        parts = [sources[name].to_delayed() for name in named]
        found = [
            dask.delayed(_distinct, pure=True)([lazy[name] for name in named], *row)
            for row in zip(*parts)
        ]
        levels = dask.compute(tree_sum(found))[0]
        PASSES["count"] += 1
        for name, per_source in zip(named, levels.values):
            for column, values in zip(lazy[name], per_source):
                computed[(name, column)] = values
    learning: dict[str, pd.DataFrame] = {"real": real}
    for name, frame in sources.items():
        meta = frame._meta
        levels = {column: pd.Series(values) for (source, column), values in computed.items() if source == name}
        learning[name] = _levels_frame(meta, wanted[name], levels)
    used = {key: value for key, value in dict(namespace or {}).items() if key in names}
    recipe = DesignRecipe(formula, engine, used, learning)
    recipe.spec()  # learned (and its errors raised) on the client first
    return recipe
