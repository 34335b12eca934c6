"""Unit-level (or cluster-level) bootstrap of a GMM-Synth fit.

Units are drawn with replacement, labeled and unlabeled together, each with all
its rows (its human row if labeled, its proxy row, its synthetic samples), and
the whole two-step estimator is refitted on every draw. This keeps the
labeled share random, as it is under simple random labeling, and needs no
asymptotic formula for the two-step weight matrix, which is where small
labeled samples hurt the plain intervals.

A fit with ``cov_type="cluster"`` is resampled by cluster: whole clusters are
drawn with replacement, each drawn copy is a new cluster, and the refit uses
the clustered weight matrix, as the original fit did.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse
from scipy import stats

from ..data import ModelData, Source
from ..exceptions import ConvergenceError, SpecificationError, SynthInferWarning
from .protocol import MomentModel

__all__ = ["BootstrapResults", "resample_units", "bootstrap"]


class _GroupMembers:
    """The members of each group (rows of a unit, units of a cluster), to gather
    the members of groups drawn with repeats."""

    def __init__(self, codes: np.ndarray, n_groups: int) -> None:
        self._order = np.argsort(codes, kind="stable")
        self._sizes = np.bincount(codes, minlength=n_groups)
        self._first = np.concatenate([[0], np.cumsum(self._sizes)[:-1]])

    def of(self, draw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the members of the groups in ``draw``, group by group in
        the order of ``draw``, and the size of each drawn group."""
        counts = self._sizes[draw]
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return self._order[np.repeat(self._first[draw], counts) + offsets], counts


def resample_units(data: ModelData, draw: np.ndarray) -> ModelData:
    """The data of the units at positions ``draw`` (with repeats), as new distinct units."""
    n_units = len(draw)
    labeled = np.full(data.n_units, -1)
    labeled[data.labeled_pos] = np.arange(data.n_labeled)
    new_labeled_pos = np.flatnonzero(labeled[draw] >= 0)
    real_rows = labeled[draw[new_labeled_pos]]
    sources = []
    for source in data.sources:
        if source.one_row_per_unit:
            rows, unit_pos = draw, np.arange(n_units)
        else:
            rows, counts = _GroupMembers(source.unit_pos, source.n_units).of(draw)
            unit_pos = np.repeat(np.arange(n_units), counts)
        row_weight = source.row_weight[rows]
        is_labeled_row = labeled[draw[unit_pos]] >= 0
        aggregator = None
        if not source.one_row_per_unit:
            aggregator = scipy.sparse.csr_matrix(
                (row_weight, (unit_pos, np.arange(len(rows)))), shape=(n_units, len(rows))
            )
        sources.append(
            Source(
                name=source.name, kind=source.kind, y=source.y[rows], X=source.X[rows],
                unit_pos=unit_pos, row_weight=row_weight,
                labeled_rows=np.flatnonzero(is_labeled_row), n_units=n_units, _aggregator=aggregator,
            )
        )
    return replace(
        data,
        unit_ids=pd.RangeIndex(n_units),
        labeled_pos=new_labeled_pos,
        y=data.y[real_rows],
        X=data.X[real_rows],
        sources=tuple(sources),
        real_index=pd.RangeIndex(len(real_rows)),
        frames={},
        labeled_weight=None if data.labeled_weight is None else data.labeled_weight[real_rows],
    )


@dataclass(frozen=True)
class BootstrapResults:
    """Bootstrap distribution of the target coefficients.

    Attributes
    ----------
    params : Series
        The original estimate.
    draws : DataFrame
        One row per successful bootstrap refit.
    n_failed : int
        Refits that failed (e.g. perfect separation in a resample); they are
        counted here and warned about, not silently dropped.
    """

    params: pd.Series
    draws: pd.DataFrame
    n_failed: int
    seed: Any

    @property
    def bse(self) -> pd.Series:
        """Bootstrap standard errors (standard deviation of the draws)."""
        return self.draws.std(ddof=1)

    def cov_params(self) -> pd.DataFrame:
        return self.draws.cov(ddof=1)

    def conf_int(self, alpha: float = 0.05, method: str = "percentile") -> pd.DataFrame:
        """Intervals: ``"percentile"`` (quantiles of the draws) or ``"normal"`` (estimate +- z bse)."""
        if method == "percentile":
            lower = self.draws.quantile(alpha / 2)
            upper = self.draws.quantile(1 - alpha / 2)
        elif method == "normal":
            z = stats.norm.ppf(1 - alpha / 2)
            lower, upper = self.params - z * self.bse, self.params + z * self.bse
        else:
            raise ValueError(f"method must be 'percentile' or 'normal', got {method!r}")
        return pd.DataFrame({0: lower, 1: upper})

    def __repr__(self) -> str:
        return f"<BootstrapResults: {len(self.draws)} draws, {self.n_failed} failed>"


def _refit(model: MomentModel, data: ModelData, draw: np.ndarray, fit_kwds: dict[str, Any]) -> np.ndarray | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = model.refit(resample_units(data, draw), **fit_kwds)
        return np.asarray(res.params, dtype=float)
    except (ValueError, RuntimeError, np.linalg.LinAlgError):
        return None


def _cluster_draws(
    codes: np.ndarray, n_clusters: int, n_boot: int, rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per draw: the units of n_clusters clusters drawn with replacement, and each
    unit's new cluster (the position of its cluster's draw)."""
    members = _GroupMembers(codes, n_clusters)
    draws = []
    for _ in range(n_boot):
        units, counts = members.of(rng.integers(0, n_clusters, size=n_clusters))
        draws.append((units, np.repeat(np.arange(n_clusters), counts)))
    return draws


def bootstrap(results: Any, n_boot: int = 999, seed: Any = None, jobs: int = 1, progress: bool = False) -> BootstrapResults:
    """Resample units (or clusters) and refit; see :meth:`GMMSynthResults.bootstrap`."""
    if n_boot < 2:
        raise ValueError(f"n_boot must be at least 2, got {n_boot}")
    model = results.model
    data = model.model_data
    rng = np.random.default_rng(seed)
    # the covariance estimator says what is independent, and so what is drawn
    covariance, weighting = results.covariance, results.weighting
    groups = covariance.resampling_groups()
    if weighting is not covariance and weighting.groups is not None and (
        groups is None or not np.array_equal(weighting.groups[0], groups[0])
    ):
        raise SpecificationError(
            f"the bootstrap draws what the covariance ({covariance.description}) treats as "
            f"independent, but the weight matrix ({weighting.description}) groups the units "
            f"differently; use the same groups for both"
        )
    draws: list[tuple[np.ndarray, np.ndarray | None]]
    if groups is not None:
        draws = _cluster_draws(groups[0], groups[1], n_boot, rng)
    else:
        draws = [(rng.integers(0, data.n_units, size=data.n_units), None) for _ in range(n_boot)]

    def fit_kwds(new_groups: np.ndarray | None) -> dict[str, Any]:
        cov_type, cov_kwds = covariance.for_resample(new_groups)
        weight_type, weight_kwds = weighting.for_resample(new_groups)
        return {"cov_type": cov_type, "cov_kwds": cov_kwds, "weight_type": weight_type, "weight_kwds": weight_kwds}

    iterator: Any = draws
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(draws, desc="bootstrap", unit="refit")
    if jobs == 1:
        fits = [_refit(model, data, draw, fit_kwds(new)) for draw, new in iterator]
    else:
        from joblib import Parallel, delayed

        fits = Parallel(n_jobs=jobs)(delayed(_refit)(model, data, draw, fit_kwds(new)) for draw, new in iterator)
    names = list(model.exog_names)
    good = [f for f in fits if f is not None]
    n_failed = len(fits) - len(good)
    cause = "e.g. separation in a resample"
    if n_failed and weighting.groups is not None:
        # copies of a cluster add no rank to a clustered S: a resample with at most
        # K distinct clusters cannot be refitted, whatever the data
        codes, n_groups = weighting.groups
        k_moms = model.nmoms
        distinct = [len(np.unique(codes[units])) for (units, _), fit in zip(draws, fits) if fit is None]
        too_few = sum(d - 1 < k_moms for d in distinct)
        if too_few:
            cause = (
                f"{too_few} of them drew at most {k_moms} distinct clusters: the fit has only "
                f"{n_groups} clusters for {k_moms} moment conditions, and a clustered S from a "
                f"resample needs more than {k_moms} distinct clusters. Use more clusters, fewer "
                f"terms or sources, or weight_type='HC0' and cov_type='HC0' if units are "
                f"independent"
            )
    if n_failed:
        warnings.warn(
            f"{n_failed} of {n_boot} bootstrap refits failed ({cause}) "
            f"and are left out of the bootstrap distribution",
            SynthInferWarning,
            stacklevel=3,
        )
    if len(good) < 2:
        raise ConvergenceError(f"fewer than two bootstrap refits succeeded ({cause})")
    return BootstrapResults(
        params=pd.Series(np.asarray(results.params, dtype=float), index=names),
        draws=pd.DataFrame(np.vstack(good), columns=names),
        n_failed=n_failed,
        seed=seed,
    )
