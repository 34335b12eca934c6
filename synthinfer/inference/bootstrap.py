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
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse
from scipy import stats

from ..data import ModelData, Source
from ..exceptions import BootstrapFailureError, SpecificationError, SynthInferWarning
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
        unit_weight=None if data.unit_weight is None else data.unit_weight[draw],
    )


#: above this share of failed replicates the bootstrap intervals are refused
MAX_FAILED_SHARE = 0.05


@dataclass(frozen=True)
class BootstrapResults:
    """Bootstrap distribution of the target coefficients.

    Attributes
    ----------
    params : Series
        The original estimate.
    draws : DataFrame
        One row per successful replicate.
    n_failed : int
        Replicates whose estimate does not exist (e.g. perfect separation in a
        resample). They are not part of ``draws``: leaving them out biases the
        intervals when many fail (the resamples that fail are not a random
        subset), so above `MAX_FAILED_SHARE` of ``n_boot`` the intervals are
        refused (`BootstrapFailureError`) and below it a warning gives the
        count; ``summary`` reports it.
    n_boot : int
        Replicates asked for.
    method : str
        ``"replicate"`` (the fast bootstrap) or ``"refit"``.
    studentized : DataFrame or None
        Per successful replicate, ``(estimate - params) / se`` with the
        replicate's own plain two-step standard errors (bootstrap-t).
    studentizing_se : Series or None
        The same standard errors at the original data.
    failures : tuple of str
        Why each failed replicate failed (the first few distinct reasons are in
        the warning and the error).
    j_draws : ndarray or None
        Per successful replicate, the J statistic of its moments recentered on
        the original ones (the fast bootstrap; see `jtest`).
    j_observed : tuple or None
        The fit's own ``jtest()``: (J, its p-value, df).
    """

    params: pd.Series
    draws: pd.DataFrame
    n_failed: int
    seed: Any
    n_boot: int = 0
    method: str = "refit"
    studentized: pd.DataFrame | None = None
    studentizing_se: pd.Series | None = None
    failures: tuple[str, ...] = ()
    j_draws: np.ndarray | None = None
    j_observed: tuple[float, float, int] | None = None

    @classmethod
    def collect(
        cls, results: Any, names: list[str], estimates: list[np.ndarray], errors: list[np.ndarray] | None,
        failures: list[str], n_boot: int, seed: Any, method: str,
        studentizing_se: np.ndarray | None = None, replicate_of_estimate: np.ndarray | None = None,
        j_draws: list[float] | None = None,
    ) -> BootstrapResults:
        """Assemble the results; warn about failures, refuse when every replicate failed."""
        n_failed = len(failures)
        reasons = "; ".join(sorted(set(failures))[:3])
        if len(estimates) < 2:
            raise BootstrapFailureError(
                f"{n_failed} of {n_boot} bootstrap replicates failed, fewer than two succeeded "
                f"({reasons}); the bootstrap cannot be computed for this fit"
            )
        if n_failed:
            refused = n_failed > MAX_FAILED_SHARE * n_boot
            warnings.warn(
                f"{n_failed} of {n_boot} bootstrap replicates failed ({reasons}) and are not "
                f"in the bootstrap distribution"
                + (f"; above {MAX_FAILED_SHARE:.0%} the intervals are refused" if refused else ""),
                SynthInferWarning,
                stacklevel=3,
            )
        params = pd.Series(np.asarray(results.params, dtype=float), index=names)
        draws = pd.DataFrame(np.vstack(estimates), columns=names)
        studentized = se = None
        if errors is not None and studentizing_se is not None:
            center = params.to_numpy() if replicate_of_estimate is None else replicate_of_estimate
            with np.errstate(divide="ignore", invalid="ignore"):
                studentized = pd.DataFrame((np.vstack(estimates) - center) / np.vstack(errors), columns=names)
            se = pd.Series(studentizing_se, index=names)
        j_observed = None
        if j_draws is not None and hasattr(results, "jtest"):
            j_observed = results.jtest()
        return cls(
            params=params, draws=draws, n_failed=n_failed, seed=seed, n_boot=n_boot, method=method,
            studentized=studentized, studentizing_se=se, failures=tuple(failures),
            j_draws=None if j_draws is None else np.asarray(j_draws, dtype=float), j_observed=j_observed,
        )

    @property
    def bse(self) -> pd.Series:
        """Bootstrap standard errors (standard deviation of the draws)."""
        return self.draws.std(ddof=1)

    def cov_params(self) -> pd.DataFrame:
        return self.draws.cov(ddof=1)

    def conf_int(self, alpha: float = 0.05, method: str | None = None) -> pd.DataFrame:
        """Intervals: ``"t"`` (bootstrap-t: the estimate minus the quantiles of the
        studentized draws times the estimate's standard error; the default when
        the draws carry their own standard errors, i.e. the fast and replicate
        bootstraps), ``"percentile"`` (quantiles of the draws; the default of the
        refit bootstrap) or ``"normal"`` (estimate +- z bse). In the small-sample
        study (docs/small-samples.md) bootstrap-t covered 0.953 on average over
        every cell and size, percentile 0.931.

        Raises `BootstrapFailureError` when more than `MAX_FAILED_SHARE` of the
        replicates failed.
        """
        self._refuse_if_too_many_failed()
        if method is None:
            method = "t" if self.studentized is not None else "percentile"
        if method == "percentile":
            lower = self.draws.quantile(alpha / 2)
            upper = self.draws.quantile(1 - alpha / 2)
        elif method == "normal":
            z = stats.norm.ppf(1 - alpha / 2)
            lower, upper = self.params - z * self.bse, self.params + z * self.bse
        elif method == "t":
            if self.studentized is None or self.studentizing_se is None:
                raise ValueError("bootstrap-t needs the fast bootstrap: res.bootstrap(method='replicate')")
            t = self.studentized.replace([np.inf, -np.inf], np.nan)
            lower = self.params - t.quantile(1 - alpha / 2) * self.studentizing_se
            upper = self.params - t.quantile(alpha / 2) * self.studentizing_se
        else:
            raise ValueError(f"method must be 'percentile', 't' or 'normal', got {method!r}")
        return pd.DataFrame({0: lower, 1: upper})

    def jtest(self) -> tuple[float, float, int]:
        """Hansen's J of the fit with its bootstrap p-value: (J, p-value, df).

        The p-value is ``(1 + #{J_b >= J}) / (1 + B)`` over the successful
        replicates' J of their recentered moments (the fast bootstrap's
        ``j_draws``; Hall and Horowitz 1996). Each replicate's J uses its own
        weight matrix and S, the small-sample effect that the chi-square (and,
        with clusters, the Hotelling F) reference of ``res.jtest()`` leaves
        out: at n = 100-200 with informative sources the chi-square rejected
        valid designs up to 8.7% of the time at 5%, this p-value 1.3-6.5%
        (conservative: a resample's S varies more than the data's;
        docs/small-samples.md).

        Raises ValueError for the refit and replicate bootstraps (no J draws)
        and `BootstrapFailureError` when more than `MAX_FAILED_SHARE` of the
        replicates failed.
        """
        if self.j_draws is None or self.j_observed is None:
            raise ValueError("the bootstrap J needs the fast bootstrap: res.bootstrap(B) (method='fast')")
        self._refuse_if_too_many_failed()
        jval, _, df = self.j_observed
        if df == 0:
            return jval, np.nan, 0
        draws = self.j_draws[np.isfinite(self.j_draws)]
        return jval, float((1 + np.sum(draws >= jval)) / (1 + len(draws))), df

    def _refuse_if_too_many_failed(self) -> None:
        n_boot = self.n_boot or (len(self.draws) + self.n_failed)
        if self.n_failed > MAX_FAILED_SHARE * n_boot:
            raise BootstrapFailureError(
                f"{self.n_failed} of {n_boot} bootstrap replicates failed "
                f"({'; '.join(sorted(set(self.failures))[:3]) or 'see the warning'}): more than "
                f"{MAX_FAILED_SHARE:.0%}, so an interval or p-value from the rest would be biased (the "
                f"resamples that fail are not a random subset). Simplify the model (a rare "
                f"level or covariate is the usual cause) or label more units"
            )

    def summary(self, alpha: float = 0.05, method: str | None = None) -> pd.DataFrame:
        """Estimate, bootstrap SE and interval per term, with the replicate counts in ``attrs``."""
        ci = self.conf_int(alpha, method)
        table = pd.DataFrame({"estimate": self.params, "bootstrap_se": self.bse, "conf_low": ci[0], "conf_high": ci[1]})
        interval = method or ("t" if self.studentized is not None else "percentile")
        table.attrs.update(n_boot=self.n_boot, n_failed=self.n_failed, method=self.method, interval=interval)
        return table

    def __repr__(self) -> str:
        return f"<BootstrapResults ({self.method}): {len(self.draws)} draws, {self.n_failed} of {self.n_boot or len(self.draws) + self.n_failed} failed>"


def _refit(model: MomentModel, data: ModelData, draw: np.ndarray, fit_kwds: dict[str, Any]) -> np.ndarray | str:
    """The refit's target estimate, or why it failed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = model.refit(resample_units(data, draw), **fit_kwds)
        return np.asarray(res.params, dtype=float)
    except (ValueError, RuntimeError, np.linalg.LinAlgError) as error:
        return f"{type(error).__name__}: {str(error)[:120]}"


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


def _check_groups(results: Any) -> tuple[np.ndarray, int] | None:
    """What the bootstrap draws: the covariance estimator says what is independent."""
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
    return groups


def bootstrap(
    results: Any, n_boot: int = 999, seed: Any = None, jobs: int = 1, progress: bool = False,
    method: str = "fast",
) -> BootstrapResults:
    """Resample units (or clusters) and refit; see `GMMSynthResults.bootstrap`."""
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise ValueError(f"n_boot must be an integer of at least 2, got {n_boot!r}")
    if getattr(results.model.model_data, "partitioned", False) and method == "refit":
        # the fast and replicate bootstraps read the unlabeled units through sums over the partitions
        raise SpecificationError(
            f"the bootstrap with method={method!r} resamples every unit's rows in memory, which a "
            f"fit on Dask sources does not support; use method='fast' (docs/dask.md), or "
            f"compute() a sample of the units and bootstrap in memory"
        )
    if method in ("fast", "replicate"):
        from .replicate import fast_bootstrap, replicate_bootstrap

        _check_groups(results)
        run = fast_bootstrap if method == "fast" else replicate_bootstrap
        return run(results, n_boot=int(n_boot), seed=seed, progress=progress)
    if method != "refit":
        raise ValueError(f"method must be 'fast', 'replicate' or 'refit', got {method!r}")
    model = results.model
    data = model.model_data
    rng = np.random.default_rng(seed)
    covariance, weighting = results.covariance, results.weighting
    groups = _check_groups(results)
    draws: Sequence[tuple[np.ndarray, np.ndarray | None]]
    if groups is not None:
        draws = _cluster_draws(groups[0], groups[1], n_boot, rng)
    else:
        draws = [(rng.integers(0, data.n_units, size=data.n_units), None) for _ in range(n_boot)]

    def fit_kwds(new_groups: np.ndarray | None) -> dict[str, Any]:
        cov_type, cov_kwds = covariance.for_resample(new_groups)
        weight_type, weight_kwds = weighting.for_resample(new_groups)
        # the estimator itself (its shrinkage) is refitted; the covariance correction
        # does not move the estimate, so the refits skip it
        return {
            "cov_type": cov_type, "cov_kwds": cov_kwds, "weight_type": weight_type,
            "weight_kwds": weight_kwds, "shrinkage": getattr(results, "shrinkage", None), "correction": None,
        }

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
    estimates = [f for f in fits if not isinstance(f, str)]
    failures = [f for f in fits if isinstance(f, str)]
    if failures and weighting.groups is not None:
        # copies of a cluster add no rank to a clustered S: a resample with at most
        # K distinct clusters cannot be refitted, whatever the data
        codes, n_groups = weighting.groups
        k_moms = model.nmoms
        failed_draws = [units for (units, _), fit in zip(draws, fits) if isinstance(fit, str)]
        too_few = [len(np.unique(codes[units])) - 1 < k_moms for units in failed_draws]
        if any(too_few):
            cause = (
                f"{sum(too_few)} of them drew at most {k_moms} distinct clusters: the fit has only "
                f"{n_groups} clusters for {k_moms} moment conditions, and a clustered S from a "
                f"resample needs more than {k_moms} distinct clusters. Use more clusters, fewer "
                f"terms or sources, or weight_type='HC0' and cov_type='HC0' if units are "
                f"independent"
            )
            failures = [cause if few else reason for few, reason in zip(too_few, failures)]
    return BootstrapResults.collect(results, names, estimates, None, failures, n_boot, seed, "refit")
