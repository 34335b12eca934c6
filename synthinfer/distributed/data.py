"""``build_model_data`` for Dask sources: validated chunks, the labeled rows, the counts.

The passes, in order:

1. the levels of every categorical formula variable (design.py);
2. every partition of every source becomes a validated chunk, kept in the
   cluster's memory (``persist``), and in the same pass its counts, the
   outcome's range and the labeled units' rows come back to the client.
   With ``dask.config.set({"synthinfer.persist": False})`` the chunks are not
   kept: every pass reads the partitions again (out of core, slower).

Every later quantity is a sum over the chunks (source.py, blocks.py). The
result is a `PartitionedModelData`: a `ModelData` whose sources are
`PartitionedSource`s and whose N is a count, with no N-row index.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd
import scipy.sparse

from ..data import (
    FrameArg, ModelData, Source, SourceKind, _check_default_index, _check_ids, _check_unique, _not_a_frame, as_pandas,
)
from ..exceptions import SpecificationError, describe_units
from ..families.base import EstimatingFunction
from ..singular import exact_fit
from . import require_dask
from .alignment import check_alignment
from .chunks import build_chunk, summarize
from .design import learn_design
from .reduction import map_reduce
from .source import PartitionedSource

__all__ = ["PartitionedModelData", "build_partitioned_model_data"]


@dataclass(frozen=True, eq=False)
class PartitionedModelData(ModelData):
    """`ModelData` over Dask sources: N is counted, ``unit_ids`` is None and
    ``labeled_pos`` is ``0..n-1`` (the labeled units listed first)."""

    n_total: int = 0
    #: the auxiliary rows live in partitions (code that needs them in memory refuses)
    partitioned = True

    @property
    def n_units(self) -> int:
        return self.n_total

    def solve_sources(self, family: Any, weights: Any, **options: Any) -> list[Any]:
        """Each source's step-1 root, the sources' Newton iterations sharing passes
        over the partitions (`solve.solve_together`: the same roots as one by one)."""
        from .solve import solve_together

        return solve_together(self.sources, family, [dict(options, frame=s.name) for s in self.sources])

    def unit_values(self, values: Any, what: str) -> np.ndarray:
        raise SpecificationError(
            f"{what}: per-unit values for all N units are not available for a fit on Dask "
            f"sources (cluster groups and labeling probabilities are not supported there yet)"
        )

    def pooled_rows(self) -> Any:
        """The naive estimator's pooled rows (human rows in memory, the rest in partitions)."""
        from .pooled import PooledRows

        return PooledRows(self)

    def with_weights(self, weights: Any) -> ModelData:
        # every estimator's weights= arrives here (ModelBase._from_frames, GMMSynth.from_formula)
        raise SpecificationError(
            "survey weights (weights=) are not supported for a fit on Dask sources yet: each "
            "unit's weight would have to travel with its rows into the partitions; fit in memory "
            "or without weights"
        )

    def with_labeling_prob(self, prob: Any) -> ModelData:
        raise SpecificationError(
            "labeling_prob is not supported for a fit on Dask sources yet; fit in memory"
        )


def _frames(arg: FrameArg, default: str) -> dict[str, Any]:
    if arg is None:
        return {}
    if isinstance(arg, Mapping):
        return {str(name): frame for name, frame in arg.items()}
    return {default: arg}


def _labeled_source(
    name: str, kind: SourceKind, rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]], real_index: pd.Index,
    n_params: int, one_row_per_unit: bool,
) -> Source:
    """The source's rows of the labeled units, in memory, ordered as ``real``."""
    ids = np.concatenate([r[0] for r in rows]) if rows else np.array([])
    X = np.vstack([r[1] for r in rows]) if rows else np.zeros((0, n_params))
    y = np.concatenate([r[2] for r in rows]) if rows else np.zeros(0)
    position = real_index.get_indexer(ids)
    order = np.argsort(position, kind="stable")
    unit_pos, X, y = position[order], np.asfortranarray(X[order]), y[order]
    n = len(real_index)
    counts = np.bincount(unit_pos, minlength=n)
    row_weight = 1.0 / counts[unit_pos]
    aggregator = None
    if not one_row_per_unit:
        aggregator = scipy.sparse.csr_matrix((row_weight, (unit_pos, np.arange(len(y)))), shape=(n, len(y)))
    return Source(
        name=name, kind=kind, y=y, X=X, unit_pos=unit_pos, row_weight=row_weight,
        labeled_rows=np.arange(len(y)), n_units=n, _aggregator=aggregator,
    )


def _partition_chunk(
    shared: tuple[Any, Any], *frames: pd.DataFrame, names: tuple[str, ...], kinds: tuple[str, ...],
    divisions: tuple, partition_info: dict | None = None,
) -> Any:
    """Partition ``partition_info["number"]`` of every source as a chunk (`build_chunk`)."""
    recipe, family = shared
    assert partition_info is not None  # dask passes it to a function that takes it
    number = partition_info["number"]
    bounds = (divisions[number], divisions[number + 1], number == len(divisions) - 2)
    return build_chunk(recipe, family, names, kinds, number, bounds, *frames)


def build_partitioned_model_data(
    formula: str,
    real: pd.DataFrame,
    proxy: FrameArg,
    synth: FrameArg,
    family: EstimatingFunction,
    engine: str | None = None,
    namespace: Mapping[str, Any] | None = None,
) -> PartitionedModelData:
    """Validate Dask sources, learn the formula and persist the designs as chunks."""
    require_dask()
    import dask

    real = as_pandas(real, "real")
    if not isinstance(real, pd.DataFrame):
        raise _not_a_frame("real must be a pandas DataFrame", real)
    proxies, synths = _frames(proxy, "proxy"), _frames(synth, "synth")
    clash = set(proxies) & set(synths)
    if clash or "real" in proxies or "real" in synths:
        raise SpecificationError(
            f"source names must be unique and not 'real'; clashing names {sorted(clash) or ['real']}"
        )
    sources = {**proxies, **synths}
    divisions = check_alignment(sources)
    if type(family).prepare_frames is not EstimatingFunction.prepare_frames:
        raise SpecificationError(
            f"model {family.name!r} prepares its frames before the formula (e.g. class labels "
            f"as codes), which is not available for Dask sources yet; fit in memory"
        )
    _check_ids(real, "real")
    _check_unique(real, "real")
    if not len(real):
        raise SpecificationError("real has no rows: at least one labeled unit is needed")

    recipe = learn_design(formula, real, sources, engine, namespace)
    spec = recipe.spec()
    p = len(spec.param_names)
    if len(real) < p:
        raise SpecificationError(
            f"{len(real)} labeled units are fewer than the {p} parameters {spec.param_names}; "
            f"label more units or simplify the formula"
        )

    names = tuple(sources)
    kinds: tuple[SourceKind, ...] = tuple("proxy" if m < len(proxies) else "synthetic" for m in range(len(names)))
    # one task per partition that reads every source's partition and builds the chunk
    # (dask fuses the reads into it): out of core, where every pass reads again, no
    # source's partition travels to the worker that read another's
    dd: Any = require_dask()
    # the recipe (it holds real) and the family: one node the tasks share, not a copy in each
    shared = dask.delayed((recipe, family), name=f"design-recipe-{recipe.token}", traverse=False)
    built_chunks = dd.map_partitions(
        _partition_chunk, shared, *sources.values(), names=names, kinds=kinds, divisions=divisions,
        meta=pd.Series([], dtype=object), align_dataframes=False, enforce_metadata=False,
    )
    chunks = built_chunks.to_delayed()
    if dask.config.get("synthinfer.persist", True):
        # designs kept in the workers' memory: later passes skip reading and the formula
        chunks = list(dask.persist(*chunks))
    summary = map_reduce(chunks, summarize, real.index)

    found = np.unique(np.concatenate([r[0] for r in summary.labeled[0]]))
    missing = real.index.difference(pd.Index(found), sort=False)
    if len(missing):
        role = f"proxy frame {names[0]!r}" if proxies else f"synthetic frame {names[0]!r} (the units it names)"
        raise SpecificationError(
            f"{len(missing)} real (labeled) unit(s) {describe_units(missing)} are not in the "
            f"{role}; the auxiliary data must cover every labeled unit"
        )
    labeled_first = pd.DataFrame(index=pd.Index(found))
    _check_default_index(real, {names[0]: labeled_first})

    y, X = spec.apply(real, "real")
    family.check_outcome(y, real.index, "real", spec.outcome_name)
    if family.name == "ols" and exact_fit(y, X):
        raise SpecificationError(
            f"frame 'real': the outcome {spec.outcome_name!r} is fitted exactly by the terms "
            f"{spec.param_names} (every residual is zero, e.g. a term reproduces the outcome "
            f"or the outcome is constant); the target then has no sampling variance and the "
            f"auxiliary moments cannot be weighted against it. Remove the term that reproduces "
            f"the outcome"
        )
    built = []
    for m, (name, kind) in enumerate(zip(names, kinds)):
        if family.rank_checks_design and summary.n_rows[m] and summary.y_min[m] == summary.y_max[m]:
            raise SpecificationError(
                f"{kind} source {name!r}: the outcome {spec.outcome_name!r} is constant (every "
                f"value {summary.y_min[m]:g}), so the source carries no information about the human labels "
                f"and its moments cannot be weighted. Drop the source; without it the fit is the "
                f"human-only fit, which is all a constant source could give"
            )
        one_row = kind == "proxy" or int(summary.max_rows_per_unit[m]) == 1
        labeled = _labeled_source(name, kind, summary.labeled[m], real.index, p, one_row)
        built.append(PartitionedSource(
            name, kind, labeled, chunks, m, summary.n_rows[m], summary.n_units, one_row, real.index,
        ))
    batch = built[0].batch
    for source in built:
        source.batch = batch  # their sums over all rows share passes
    return PartitionedModelData(
        unit_ids=None,
        labeled_pos=np.arange(len(real)),
        y=y,
        X=X,
        # a PartitionedSource is not a Source subclass but answers the engine's calls on one
        # (evaluate, solve, unit sums), so the model data holds it where a Source would be
        sources=cast("tuple[Source, ...]", tuple(built)),
        spec=spec,
        real_index=real.index,
        frames={"real": real, **sources},
        n_total=int(summary.n_units),
    )
