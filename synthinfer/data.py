"""From the user's frames to aligned, validated design matrices.

Data layout (the package's contract):

- ``real``: the human-labeled units only; index = unit id (unique).
- ``proxy``: one row per unit, labeled or not; index = unit id (unique); it
  must contain every real unit. Several proxy frames must hold the same units.
- ``synth``: synthetic samples; index = the id of the unit each sample was
  generated from (repeats allowed). Its rows cover exactly the N units: a unit's
  moment is the mean over its samples. Without a proxy, the units it names
  are the N units.

A ``Source`` is one auxiliary frame reduced to what the moment blocks
need: its design matrix and outcome, the unit of each row, and each row's
weight ``1/k`` (k = that unit's number of rows). Proxy and synthetic data are
the same thing to the estimator; only ``kind`` differs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd
import scipy.sparse

from .exceptions import SpecificationError, describe_units
from .families import Family
from .formula import FormulaSpec
from .singular import exact_fit

__all__ = ["Source", "ModelData", "build_model_data"]

SourceKind = Literal["proxy", "synthetic"]
#: what ``proxy=`` and ``synth=`` take: one frame, named frames, or nothing
FrameArg: TypeAlias = "pd.DataFrame | Mapping[str, pd.DataFrame] | None"


@dataclass(frozen=True, eq=False)
class Source:
    """One auxiliary data source aligned to the N units.

    Attributes
    ----------
    name, kind : str
        The source's name (dict key, or "proxy" / "synth") and its kind.
    y, X : ndarray
        Outcome (rows,) and design (rows, p) of the source's rows.
    unit_pos : ndarray of int
        Position in ``0..N-1`` of each row's unit.
    row_weight : ndarray
        ``1 / k`` of each row's unit, so unit moments are means over samples.
    labeled_rows : ndarray of int
        Rows whose unit is human-labeled.
    """

    name: str
    kind: SourceKind
    y: np.ndarray
    X: np.ndarray
    unit_pos: np.ndarray
    row_weight: np.ndarray
    labeled_rows: np.ndarray
    n_units: int
    _aggregator: Any = field(default=None, repr=False)

    @property
    def n_rows(self) -> int:
        return len(self.y)

    @property
    def one_row_per_unit(self) -> bool:
        """Rows are the units in unit order (a proxy): aggregation is the identity."""
        return self._aggregator is None

    def unit_sums(self, values: np.ndarray) -> np.ndarray:
        """Per-unit weighted sums ``sum_{j in i} w_j v_j`` of row values, (N, ...)."""
        if self._aggregator is None:
            return values
        return np.asarray(self._aggregator @ values)

    def samples_per_unit(self) -> np.ndarray:
        return np.bincount(self.unit_pos, minlength=self.n_units)

    def evaluate(self, family: Family, params: np.ndarray) -> Any:
        """The family's scores at ``params`` on this source's rows (an ``Evaluation``).

        The engine asks the source rather than the family, so a source whose rows
        are not in memory (a Dask frame, `synthinfer.distributed`) can answer with
        sums over its partitions.
        """
        return family.evaluate(self.X, self.y, params)

    def solve(self, family: Family, weights: np.ndarray | None, **options: Any) -> Any:
        """``family.solve`` on this source's rows (step 1's root for its eta)."""
        return family.solve(self.X, self.y, weights, **options)


@dataclass(frozen=True, eq=False)
class ModelData:
    """Everything the GMM engine needs, in numpy, plus the names to report."""

    unit_ids: pd.Index
    labeled_pos: np.ndarray
    y: np.ndarray
    X: np.ndarray
    sources: tuple[Source, ...]
    spec: FormulaSpec
    real_index: pd.Index
    frames: Mapping[str, pd.DataFrame] = field(repr=False)
    #: the weight of each labeled unit's labeled-block moments (in the order of
    #: ``real``): its survey weight w_i times 1 / pi_i, or None when both are 1;
    #: see ``with_labeling_prob`` and ``with_weights``
    labeled_weight: np.ndarray | None = None
    #: survey (sampling) weights w_i of all N units (in ``unit_ids`` order), or
    #: None; they multiply every block of a unit's moments, see ``with_weights``
    unit_weight: np.ndarray | None = None

    @property
    def n_units(self) -> int:
        return len(self.unit_ids)

    @property
    def n_labeled(self) -> int:
        return len(self.labeled_pos)

    def solve_sources(self, family: Family, weights: Sequence[np.ndarray | None], **options: Any) -> list[Any]:
        """Each source's step-1 root (`Source.solve` with ``frame=`` its name), in order."""
        return [
            source.solve(family, weight, frame=source.name, **options)
            for source, weight in zip(self.sources, weights)
        ]

    @property
    def param_names(self) -> list[str]:
        return self.spec.param_names

    @property
    def weighted_by_pi(self) -> bool:
        """Whether the labeled blocks carry 1/pi_i beyond the survey weights."""
        if self.labeled_weight is None:
            return False
        if self.unit_weight is None:
            return True
        return not np.array_equal(self.labeled_weight, self.unit_weight[self.labeled_pos])

    def with_labeling_prob(self, prob: Any) -> ModelData:
        """The same data with known labeling probabilities pi_i of the labeled units.

        ``prob`` is a column name (of ``real``, or of a frame covering every
        unit), a Series indexed by unit id, or an array in the order of ``real``'s
        rows. Each pi_i must be known by design and lie in (0, 1].
        """
        what = "labeling probabilities"
        if isinstance(prob, str) and prob in self.frames["real"].columns:
            values = self.frames["real"][prob]
        elif isinstance(prob, str):
            values = pd.Series(self.unit_values(prob, what), index=self.unit_ids)
        else:
            values = prob
        values = _aligned(values, self.real_index, what, "labeled unit", "real's rows")
        prob_values = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(prob_values) | (prob_values <= 0) | (prob_values > 1)
        if bad.any():
            raise SpecificationError(
                f"{what} must be known numbers in (0, 1], but are not for labeled unit(s) "
                f"{describe_units(self.real_index[bad])}"
            )
        weight = 1.0 / prob_values
        if self.unit_weight is not None:
            weight = weight * self.unit_weight[self.labeled_pos]
        return replace(self, labeled_weight=weight)

    def with_weights(self, weights: Any) -> ModelData:
        """The same data with survey (sampling) weights w_i of the units.

        ``weights`` is a column name (of a frame covering every unit: ``real``
        when there is no auxiliary source, else a proxy frame, or a synthetic
        frame whose rows of one unit agree), a Series indexed by unit id, or an
        array in ``unit_ids`` order (``real``'s row order without sources). A
        unit's moments, in every block, are multiplied by w_i; its labeled
        blocks keep their 1/pi_i on top. Each w_i must be a finite number > 0.
        """
        if self.unit_weight is not None:
            raise SpecificationError("survey weights are already set on this model's data")
        what = f"survey weights {weights!r}" if isinstance(weights, str) else "survey weights"
        if isinstance(weights, str):
            values = pd.Series(self.unit_values(weights, what), index=self.unit_ids)
        else:
            values = _aligned(weights, self.unit_ids, what, "unit", "model.unit_ids")
        if pd.api.types.is_bool_dtype(values.dtype) or not pd.api.types.is_numeric_dtype(values.dtype):
            # strings or booleans are not recoded into numbers: say which units hold them
            kind = np.array([isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)) for v in values])
            raise SpecificationError(
                f"{what} must be numbers (dtype {values.dtype}); unit(s) "
                f"{describe_units(values.index[kind] if kind.any() else values.index)} hold "
                f"non-numeric values such as {values[kind].iloc[0] if kind.any() else values.iloc[0]!r}"
            )
        w = values.to_numpy(dtype=float)
        bad = ~np.isfinite(w) | (w <= 0)
        if bad.any():
            raise SpecificationError(
                f"{what} must be finite numbers > 0, but are not for {int(bad.sum())} unit(s) "
                f"{describe_units(self.unit_ids[bad])} (e.g. {w[bad][0]!r}); a unit of weight 0 "
                f"is a dropped unit: drop it from the frames instead"
            )
        labeled = w[self.labeled_pos]
        if self.labeled_weight is not None:
            labeled = labeled * self.labeled_weight
        return replace(self, unit_weight=w, labeled_weight=labeled)

    def unit_values(self, values: Any, what: str) -> np.ndarray:
        """Align a per-unit column name, Series or array to the model's units."""
        if isinstance(values, str):
            return self._unit_column(values, what)
        aligned = _aligned(values, self.unit_ids, what, "unit", "model.unit_ids")
        if aligned.isna().any():
            raise SpecificationError(
                f"{what} is missing for unit(s) {describe_units(aligned.index[aligned.isna()])}"
            )
        return aligned.to_numpy()

    def _unit_column(self, column: str, what: str) -> np.ndarray:
        # The first frame holding the column and every unit defines it; every other
        # frame holding it must agree, unit by unit.
        found: dict[str, pd.Series] = {}
        for name, frame in self.frames.items():
            if column not in frame.columns:
                continue
            if (frame.columns == column).sum() > 1:
                raise SpecificationError(
                    f"{what}: frame {name!r} has several columns named {column!r}; rename or "
                    f"drop the duplicates"
                )
            values = frame[column]
            per_unit = values.groupby(level=0, sort=False).nunique(dropna=False)
            varying = per_unit.index[per_unit.to_numpy() > 1]
            if len(varying):
                raise SpecificationError(
                    f"{what} column {column!r} of frame {name!r} differs between rows of the "
                    f"same unit(s) {describe_units(varying)}"
                )
            found[name] = values[~values.index.duplicated()]
        defining = next(
            (name for name, first in found.items() if self.unit_ids.difference(first.index).empty),
            None,
        )
        if defining is not None:
            reference = found[defining]
            for name, other in found.items():
                mine = reference.reindex(other.index)
                same = (mine.to_numpy() == other.to_numpy()) | (mine.isna() & other.isna()).to_numpy()
                if not same.all():
                    units = other.index[~same]
                    raise SpecificationError(
                        f"{what} column {column!r} disagrees between frames {defining!r} and "
                        f"{name!r} for {len(units)} unit(s) {describe_units(units)} (e.g. "
                        f"{mine[units[0]]!r} against {other[units[0]]!r}); a unit has one value"
                    )
            return self.unit_values(reference, what)
        raise SpecificationError(
            f"{what} column {column!r} was not found in a frame that covers all "
            f"{self.n_units} units (frames searched: {list(self.frames)})"
        )


def _aligned(values: Any, index: pd.Index, what: str, per: str, order: str) -> pd.Series:
    """``values`` (a Series by id, or an array in ``order``) as one value per id of ``index``."""
    if isinstance(values, pd.Series):
        missing = index.difference(values.index)
        if len(missing) or not values.index.is_unique:
            raise SpecificationError(
                f"{what} must have exactly one value per {per} (a unique index covering "
                f"every {per}); missing for units {describe_units(missing)}"
            )
        return values.reindex(index)
    aligned = pd.Series(np.asarray(values).ravel(), copy=False)
    if np.ndim(values) != 1 or len(aligned) != len(index):
        raise SpecificationError(
            f"{what} as an array must have one value per {per} ({len(index)}), in the order "
            f"of {order}; got length {len(aligned)}"
        )
    aligned.index = index
    return aligned


def _type_name(obj: Any) -> str:
    # A bare "DataFrame" in "must be a DataFrame, got DataFrame" hides that the
    # frame is a Dask (or polars) one, so the message names the module too.
    kind = type(obj)
    module = kind.__module__.split(".")[0]
    return kind.__name__ if module == "builtins" else f"{module} {kind.__name__}"


def _not_a_frame(what: str, obj: Any) -> SpecificationError:
    hint = ""
    if _is_dask(obj):
        # only the auxiliary frames may be Dask ones (docs/dask.md); say so
        # instead of letting pandas code collect or fail obscurely
        hint = (
            "; a Dask DataFrame is accepted for proxy and synth only (real, the n labeled "
            "units, stays a pandas frame: call .compute() on it)"
        )
    return SpecificationError(f"{what}, got {_type_name(obj)}{hint}")


def _is_dask(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] in ("dask", "dask_expr")


def _any_dask(arg: Any) -> bool:
    """Whether ``proxy=`` / ``synth=`` holds a Dask DataFrame (alone or in a dict)."""
    if isinstance(arg, Mapping):
        return any(_is_dask(frame) for frame in arg.values())
    return _is_dask(arg)


def is_path(value: Any) -> bool:
    """Whether a frame argument is a path or glob (of Parquet files) rather than a frame."""
    return isinstance(value, (str, os.PathLike))


def _any_path(arg: Any) -> bool:
    """Whether ``proxy=`` / ``synth=`` names Parquet files (a path or glob, alone or in a dict)."""
    if isinstance(arg, Mapping):
        return any(is_path(value) for value in arg.values())
    return is_path(arg)


#: The column of a polars frame that holds the unit ids (pandas frames use the index).
POLARS_UNIT_COLUMN = "unit"


def as_pandas(frame: Any, name: str) -> Any:
    """A polars frame as pandas, its ``unit`` column becoming the index; anything else unchanged.

    polars has no index, so the unit id is the column named ``unit``
    (``POLARS_UNIT_COLUMN``); rows keep their order. polars is only imported
    when such a frame is passed (it is an optional extra).
    """
    if type(frame).__module__.split(".")[0] != "polars":
        return frame
    import polars as pl

    if isinstance(frame, pl.LazyFrame):
        frame = frame.collect()
    if not isinstance(frame, pl.DataFrame):
        return frame
    if POLARS_UNIT_COLUMN not in frame.columns:
        raise SpecificationError(
            f"{name}: a polars frame needs its unit ids in a column named "
            f"{POLARS_UNIT_COLUMN!r}; columns are {frame.columns}"
        )
    return frame.to_pandas().set_index(POLARS_UNIT_COLUMN)


def _named_frames(arg: FrameArg, default: str, role: str) -> dict[str, pd.DataFrame]:
    if arg is None:
        return {}
    arg = as_pandas(arg, role)
    if isinstance(arg, pd.DataFrame):
        return {default: arg}
    if isinstance(arg, Mapping):
        frames = {name: as_pandas(frame, f"{role} source {name!r}") for name, frame in arg.items()}
        for name, frame in frames.items():
            if not isinstance(frame, pd.DataFrame):
                raise _not_a_frame(f"{role} source {name!r} must be a pandas DataFrame", frame)
        return {str(name): frame for name, frame in frames.items()}
    raise _not_a_frame(f"{role} must be a DataFrame or a dict of DataFrames", arg)


def _check_ids(frame: pd.DataFrame, name: str) -> None:
    """Unit ids must be known: a missing id (NaN, None, NaT) would be matched as an ordinary id."""
    missing = np.asarray(frame.index.isna())
    if missing.any():
        rows = np.flatnonzero(missing)
        raise SpecificationError(
            f"frame {name!r}: {int(missing.sum())} row(s) have a missing unit id (index value "
            f"{frame.index[rows[0]]!r}; row position(s) {rows[:10].tolist()}); every row must "
            f"name its unit"
        )


def _check_default_index(real: pd.DataFrame, aux: dict[str, pd.DataFrame]) -> None:
    """``real`` with pandas' default RangeIndex is almost surely a forgotten ``set_index``.

    Its rows would be matched to the auxiliary units 0..n-1 as if those were
    their ids: a silent mismatch. A named index (``real.index.name = "unit"``)
    says the integers are meant as ids.
    """
    index = real.index
    if not (isinstance(index, pd.RangeIndex) and index.name is None and index.start == 0 and index.step == 1):
        return
    name, first = next(iter(aux.items()))
    matched = first.index[first.index.isin(index)].unique()
    consequence = (
        f"its rows would be matched by these position-like ids to units "
        f"{describe_units(matched, 5)} of frame {name!r}" if len(matched)
        else f"none of them is a unit id of frame {name!r}"
    )
    raise SpecificationError(
        f"real has pandas' default RangeIndex 0..{len(index) - 1} (row positions, not unit "
        f"ids): {consequence}. You probably forgot real.set_index(<unit id column>). If "
        f"these integers really are the unit ids, name the index (real.index.name = 'unit')"
    )


def _check_unique(frame: pd.DataFrame, name: str) -> None:
    duplicated = frame.index[frame.index.duplicated()].unique()
    if len(duplicated):
        raise SpecificationError(
            f"frame {name!r}: the index must hold unique unit ids, but ids "
            f"{describe_units(duplicated)} repeat"
        )


def _unit_ids(
    real: pd.DataFrame, proxies: dict[str, pd.DataFrame], synths: dict[str, pd.DataFrame]
) -> pd.Index:
    if proxies:
        name, first = next(iter(proxies.items()))
        units = first.index
        for other_name, other in proxies.items():
            missing, extra = units.difference(other.index), other.index.difference(units)
            if len(missing) or len(extra):
                raise SpecificationError(
                    f"proxy frames {name!r} and {other_name!r} must hold the same units; "
                    f"{other_name!r} lacks {describe_units(missing)} and has extra "
                    f"{describe_units(extra)}"
                )
        role = f"proxy frame {name!r}"
    elif synths:
        name, first = next(iter(synths.items()))
        units = pd.Index(pd.unique(first.index), name=first.index.name)
        role = f"synthetic frame {name!r} (the units it names)"
    else:
        return real.index
    missing = real.index.difference(units, sort=False)
    if len(missing):
        raise SpecificationError(
            f"{len(missing)} real (labeled) unit(s) {describe_units(missing)} are not in the "
            f"{role}; the auxiliary data must cover every labeled unit"
        )
    return units


def build_model_data(
    formula: str,
    real: pd.DataFrame,
    proxy: FrameArg,
    synth: FrameArg,
    family: Family,
    engine: str | None = None,
    namespace: Mapping[str, Any] | None = None,
) -> ModelData:
    """Validate the frames, learn the formula and build every design matrix."""
    if _any_path(proxy) or _any_path(synth):
        # a path or glob of Parquet files: read lazily as a Dask frame (the dask extra)
        from .distributed.parquet import read_parquet_sources

        proxy, synth = read_parquet_sources(proxy, "proxy"), read_parquet_sources(synth, "synth")
    if _any_dask(proxy) or _any_dask(synth):
        # auxiliary frames in partitions: sums over partitions, see synthinfer/distributed
        from .distributed.data import build_partitioned_model_data

        return build_partitioned_model_data(formula, real, proxy, synth, family, engine, namespace)
    real = as_pandas(real, "real")
    if not isinstance(real, pd.DataFrame):
        raise _not_a_frame("real must be a pandas DataFrame", real)
    proxies = _named_frames(proxy, "proxy", "proxy")
    synths = _named_frames(synth, "synth", "synth")
    clash = set(proxies) & set(synths)
    if clash or "real" in proxies or "real" in synths:
        raise SpecificationError(
            f"source names must be unique and not 'real'; clashing names {sorted(clash) or ['real']}"
        )
    for name, frame in {"real": real, **proxies, **synths}.items():
        _check_ids(frame, name)
    _check_unique(real, "real")
    for name, frame in proxies.items():
        _check_unique(frame, name)
    if proxies or synths:
        _check_default_index(real, {**proxies, **synths})
    units = _unit_ids(real, proxies, synths)
    if not len(real):
        raise SpecificationError("real has no rows: at least one labeled unit is needed")

    frames: dict[str, pd.DataFrame] = {"real": real, **proxies, **synths}
    # the family's view of the outcome (class labels as codes); copies, inputs untouched
    frames = family.prepare_frames(frames, formula.split("~", 1)[0].strip())
    real = frames["real"]
    proxies = {name: frames[name] for name in proxies}
    synths = {name: frames[name] for name in synths}
    spec = FormulaSpec(formula, frames, engine=engine, namespace=namespace)
    p = len(spec.param_names)
    if len(real) < p:
        raise SpecificationError(
            f"{len(real)} labeled units are fewer than the {p} parameters {spec.param_names}; "
            f"label more units or simplify the formula"
        )

    y, X = spec.apply(real, "real")
    family.check_outcome(y, real.index, "real", spec.outcome_name)
    if (proxies or synths) and family.name == "ols" and exact_fit(y, X):
        raise SpecificationError(
            f"frame 'real': the outcome {spec.outcome_name!r} is fitted exactly by the terms "
            f"{spec.param_names} (every residual is zero, e.g. a term reproduces the outcome "
            f"or the outcome is constant); the target then has no sampling variance and the "
            f"auxiliary moments cannot be weighted against it. Remove the term that reproduces "
            f"the outcome"
        )
    labeled_pos = units.get_indexer(real.index)
    is_labeled = np.zeros(len(units), dtype=bool)
    is_labeled[labeled_pos] = True

    sources = []
    for name, frame in proxies.items():
        sources.append(_make_source(name, "proxy", frame, units, is_labeled, spec, family))
    for name, frame in synths.items():
        check_synthetic_units(name, frame.index, units)
        sources.append(_make_source(name, "synthetic", frame, units, is_labeled, spec, family))

    return ModelData(
        unit_ids=units,
        labeled_pos=labeled_pos,
        y=y,
        X=X,
        sources=tuple(sources),
        spec=spec,
        real_index=real.index,
        frames=frames,
    )


def check_synthetic_units(name: str, index: pd.Index, units: pd.Index) -> None:
    """Raise unless the synthetic rows ``index`` name known units and cover every one."""
    unknown = index.difference(units, sort=False).unique()
    if len(unknown):
        raise SpecificationError(
            f"synthetic frame {name!r}: {len(unknown)} unit id(s) {describe_units(unknown)} "
            f"name no unit of the model; every synthetic row must name the unit it was "
            f"generated from"
        )
    uncovered = units.difference(index, sort=False)
    if len(uncovered):
        raise SpecificationError(
            f"synthetic frame {name!r} has no sample for {len(uncovered)} unit(s) "
            f"{describe_units(uncovered)}; it must cover the same units as the proxy data"
        )


def _make_source(
    name: str,
    kind: SourceKind,
    frame: pd.DataFrame,
    units: pd.Index,
    is_labeled: np.ndarray,
    spec: FormulaSpec,
    family: Family,
) -> Source:
    unit_pos = units.get_indexer(frame.index)
    counts = np.bincount(unit_pos, minlength=len(units))
    one_row_per_unit = bool((counts == 1).all())
    if one_row_per_unit:
        # Rows in unit order make a source's unit moments its rows: no aggregation.
        frame = frame.iloc[frame.index.get_indexer(units)]
        unit_pos = np.arange(len(units))
    y, X = spec.apply(frame, name)
    if family.rank_checks_design and len(y) and np.ptp(y) == 0:
        # an LLM that always gives the same answer: for OLS its residuals vanish
        # (S is singular), for logit and Poisson its estimate does not exist
        # (user moments read the columns freely and are left to the engine)
        raise SpecificationError(
            f"{kind} source {name!r}: the outcome {spec.outcome_name!r} is constant (every "
            f"value {y[0]:g}), so the source carries no information about the human labels "
            f"and its moments cannot be weighted. Drop the source; without it the fit is the "
            f"human-only fit, which is all a constant source could give"
        )
    family.check_outcome(y, frame.index, name, spec.outcome_name, auxiliary=True)
    row_weight = 1.0 / counts[unit_pos]
    aggregator = None
    if not one_row_per_unit:
        aggregator = scipy.sparse.csr_matrix(
            (row_weight, (unit_pos, np.arange(len(frame)))), shape=(len(units), len(frame))
        )
    return Source(
        name=name,
        kind=kind,
        y=y,
        X=X,
        unit_pos=unit_pos,
        row_weight=row_weight,
        labeled_rows=np.flatnonzero(is_labeled[unit_pos]),
        n_units=len(units),
        _aggregator=aggregator,
    )
