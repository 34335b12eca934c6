"""Estimators of S, the covariance of the per-unit moments, as strategies.

S serves twice, and each use picks its estimator by name: the step-2 weight
matrix is ``S_w^-1`` (``fit(weight_type=...)``), and the reported covariance
uses ``S_c`` recomputed at the estimate (``fit(cov_type=...)``). Every
estimator centers each moment column by its mean over the N units, as the
spec requires (statsmodels' ``calc_weightmatrix`` subtracts one grand mean).

An estimator owns everything that depends on the dependence it assumes: its
S, the groups of units its S treats as independent (which Windmeijer's
derivative of S and the bootstrap's resampling follow), and how a refit on a
resample recreates it. One that cannot support Windmeijer's correction or the
bootstrap says so (`supports_windmeijer`, `resampling_groups`) instead of
silently borrowing another's formula. The registry `COVARIANCES` maps the
names ``cov_type`` / ``weight_type`` take to the classes; a new estimator is
a class here with its ``cov_type`` added to the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .data import ModelData
from .exceptions import SpecificationError
from .moments import MomentBlocks

__all__ = [
    "MomentCovariance", "HeteroskedasticCovariance", "ClusteredCovariance", "COVARIANCES", "get_covariance",
]


class MomentCovariance:
    """Base class: ``s(moments)`` returns S; ``scale`` multiplies the reported covariance."""

    cov_type: str = ""
    #: Windmeijer's correction knows this estimator's derivative dS/dbeta
    supports_windmeijer: bool = False

    def s(self, moments: MomentBlocks) -> np.ndarray:
        raise NotImplementedError

    @classmethod
    def from_options(cls, kwds: dict[str, Any], data: ModelData) -> MomentCovariance:
        """The estimator for ``cov_kwds`` (consumed from ``kwds``) and the model's data."""
        return cls()

    @property
    def groups(self) -> tuple[np.ndarray, int] | None:
        """The groups of units S treats as independent: (each unit's group code,
        number of groups), or None when the units themselves are independent."""
        return None

    def resampling_groups(self) -> tuple[np.ndarray, int] | None:
        """What the bootstrap draws with replacement: None for units, else groups."""
        raise SpecificationError(
            f"the bootstrap does not know how to resample under cov_type={self.cov_type!r}"
        )

    def for_resample(self, groups: np.ndarray | None) -> tuple[str, dict[str, Any]]:
        """``(cov_type, cov_kwds)`` recreating this estimator on a resample whose
        units carry the new ``groups`` (one code per drawn group copy)."""
        raise SpecificationError(
            f"the bootstrap does not know how to refit under cov_type={self.cov_type!r}"
        )

    def independent_rows(self, moments: MomentBlocks) -> tuple[np.ndarray, int]:
        """The centered moment sums of the independent groups that hold labeled
        units, ``h_g`` with ``S = (1/N) sum_g h_g h_g'`` (a (m, K) array), and
        how many further groups (units) hold no labeled unit, each with target
        part ``-gbar_t``. The Stein rule's null mean is read off these rows."""
        raise NotImplementedError(f"cov_type={self.cov_type!r} does not expose its independent rows")

    def same_as(self, other: MomentCovariance) -> bool:
        """Whether ``other`` is the same estimator (same type and options)."""
        return type(self) is type(other) and self.config == other.config

    @property
    def scale(self) -> float:
        return 1.0

    @property
    def config(self) -> dict[str, Any]:
        return {}

    @property
    def description(self) -> str:
        raise NotImplementedError


class HeteroskedasticCovariance(MomentCovariance):
    """Units are independent: ``S = (1/N) sum_i (g_i - gbar)(g_i - gbar)'`` (HC0)."""

    cov_type = "HC0"
    supports_windmeijer = True

    def s(self, moments: MomentBlocks) -> np.ndarray:
        gbar = moments.mean()
        return moments.second_moment() - np.outer(gbar, gbar)

    def independent_rows(self, moments: MomentBlocks) -> tuple[np.ndarray, int]:
        rows = moments.labeled_rows() - moments.mean()
        return rows, moments.n_units - len(moments.labeled_pos)

    def resampling_groups(self) -> None:
        return None

    def for_resample(self, groups: np.ndarray | None) -> tuple[str, dict[str, Any]]:
        return "HC0", {}

    def same_as(self, other: MomentCovariance) -> bool:
        return other.same_as(self) if isinstance(other, ClusteredCovariance) else isinstance(other, HeteroskedasticCovariance)

    @property
    def description(self) -> str:
        return "robust to heteroskedasticity (HC0)"


class ClusteredCovariance(MomentCovariance):
    """Clusters of units are independent: unit sums in S become cluster sums.

    ``S = (1/N) sum_c (sum_{i in c} (g_i - gbar)) (sum_{i in c} (g_i - gbar))'``.
    With one unit per cluster this is exactly the HC0 estimator.

    Parameters
    ----------
    groups : ndarray
        Each unit's cluster label, in the model's unit order.
    use_correction : bool
        Scale the reported covariance by ``G/(G-1) (n-1)/(n-p)`` (n labeled
        units, p target parameters), statsmodels' default small-sample factor;
        with no auxiliary source this reproduces statsmodels' default cluster
        covariance. Off by default, as in the spec.
    n_labeled, k_params : int
        n and p for the correction.
    """

    cov_type = "cluster"
    supports_windmeijer = True

    def __init__(
        self, groups: np.ndarray, use_correction: bool = False, n_labeled: int = 0, k_params: int = 0
    ) -> None:
        self.codes, labels = pd.factorize(groups)
        self.n_clusters = len(labels)
        if self.n_clusters < 2:
            raise SpecificationError("cluster-robust covariance needs at least 2 clusters")
        self.use_correction = bool(use_correction)
        self._n_labeled, self._k_params = n_labeled, k_params

    @classmethod
    def from_options(cls, kwds: dict[str, Any], data: ModelData) -> ClusteredCovariance:
        if "groups" not in kwds:
            raise TypeError(
                "cov_type='cluster' needs cov_kwds={'groups': column name or per-unit values}"
            )
        groups = data.unit_values(kwds.pop("groups"), "cluster groups")
        use_correction = kwds.pop("use_correction", False)
        return cls(groups, use_correction, n_labeled=data.n_labeled, k_params=len(data.param_names))

    @property
    def groups(self) -> tuple[np.ndarray, int]:
        return self.codes, self.n_clusters

    def resampling_groups(self) -> tuple[np.ndarray, int]:
        return self.codes, self.n_clusters

    @property
    def singletons(self) -> bool:
        """One unit per cluster and no correction: exactly the HC0 estimator."""
        return self.n_clusters == len(self.codes) and not self.use_correction

    def same_as(self, other: MomentCovariance) -> bool:
        if isinstance(other, HeteroskedasticCovariance):
            return self.singletons
        return (
            isinstance(other, ClusteredCovariance) and self.use_correction == other.use_correction
            and np.array_equal(self.codes, other.codes)
        )

    def for_resample(self, groups: np.ndarray | None) -> tuple[str, dict[str, Any]]:
        return "cluster", {"groups": groups, "use_correction": self.use_correction}

    def _centered_sums(self, moments: MomentBlocks) -> np.ndarray:
        sizes = np.bincount(self.codes, minlength=self.n_clusters).astype(float)
        centered = moments.cluster_sums(self.codes, self.n_clusters)
        centered -= np.outer(sizes, moments.mean())
        return centered

    def s(self, moments: MomentBlocks) -> np.ndarray:
        centered = self._centered_sums(moments)
        return centered.T @ centered / moments.n_units

    def independent_rows(self, moments: MomentBlocks) -> tuple[np.ndarray, int]:
        # every cluster, labeled or not: G is small and the rows are exact
        return self._centered_sums(moments), 0

    @property
    def scale(self) -> float:
        if not self.use_correction:
            return 1.0
        g, n, p = self.n_clusters, self._n_labeled, self._k_params
        return g / (g - 1.0) * (n - 1.0) / (n - p)

    @property
    def config(self) -> dict[str, Any]:
        return {"n_clusters": self.n_clusters, "use_correction": self.use_correction}

    @property
    def description(self) -> str:
        return f"cluster-robust, {self.n_clusters} clusters"


#: the estimators ``cov_type`` and ``weight_type`` name (aliases map to them)
COVARIANCES: dict[str, type[MomentCovariance]] = {
    "HC0": HeteroskedasticCovariance,
    "cluster": ClusteredCovariance,
}
_ALIASES = {"hc0": "HC0", "robust": "HC0", "cluster": "cluster"}


def get_covariance(
    cov_type: str, cov_kwds: Mapping[str, Any] | None, data: ModelData
) -> MomentCovariance:
    """The S estimator named by ``cov_type`` (a key of `COVARIANCES`)."""
    kwds = dict(cov_kwds or {})
    name = _ALIASES.get(cov_type.lower(), cov_type) if isinstance(cov_type, str) else None
    if name not in COVARIANCES:
        raise ValueError(f"cov_type must be one of {sorted(COVARIANCES)}, got {cov_type!r}")
    estimator = COVARIANCES[name].from_options(kwds, data)
    if kwds:
        raise TypeError(f"unknown cov_kwds for cov_type={name!r}: {sorted(kwds)}")
    return estimator
