"""Estimators of S, the covariance of the per-unit moments.

S serves twice: its inverse is the step-2 weight matrix, and the reported
covariance is ``(G' S^-1 G)^-1 / N`` with S recomputed at the estimate. Both
estimators center each moment column by its mean over the N units, as the
spec requires (statsmodels' ``calc_weightmatrix`` subtracts one grand mean).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .data import ModelData
from .exceptions import SpecificationError
from .moments import MomentBlocks

__all__ = ["MomentCovariance", "HeteroskedasticCovariance", "ClusteredCovariance", "get_covariance"]


class MomentCovariance:
    """Base class: ``s(moments)`` returns S; ``scale`` multiplies the reported covariance."""

    cov_type: str = ""

    def s(self, moments: MomentBlocks) -> np.ndarray:
        raise NotImplementedError

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

    def s(self, moments: MomentBlocks) -> np.ndarray:
        gbar = moments.mean()
        return moments.second_moment() - np.outer(gbar, gbar)

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

    def __init__(
        self, groups: np.ndarray, use_correction: bool = False, n_labeled: int = 0, k_params: int = 0
    ) -> None:
        self.codes, labels = pd.factorize(groups)
        self.n_clusters = len(labels)
        if self.n_clusters < 2:
            raise SpecificationError("cluster-robust covariance needs at least 2 clusters")
        self.use_correction = bool(use_correction)
        self._n_labeled, self._k_params = n_labeled, k_params

    def s(self, moments: MomentBlocks) -> np.ndarray:
        sizes = np.bincount(self.codes, minlength=self.n_clusters).astype(float)
        centered = moments.cluster_sums(self.codes, self.n_clusters)
        centered -= np.outer(sizes, moments.mean())
        return centered.T @ centered / moments.n_units

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


def get_covariance(
    cov_type: str, cov_kwds: Mapping[str, Any] | None, data: ModelData
) -> MomentCovariance:
    """The S estimator named by ``cov_type`` ("HC0" or "cluster")."""
    kwds = dict(cov_kwds or {})
    if not isinstance(cov_type, str):
        raise ValueError(f"cov_type must be 'HC0' or 'cluster', got {cov_type!r}")
    if cov_type.upper() in ("HC0", "ROBUST"):
        if kwds:
            raise TypeError(f"cov_type='HC0' takes no cov_kwds, got {sorted(kwds)}")
        return HeteroskedasticCovariance()
    if cov_type.lower() == "cluster":
        if "groups" not in kwds:
            raise TypeError(
                "cov_type='cluster' needs cov_kwds={'groups': column name or per-unit values}"
            )
        groups = data.unit_values(kwds.pop("groups"), "cluster groups")
        use_correction = kwds.pop("use_correction", False)
        if kwds:
            raise TypeError(f"unknown cov_kwds for cov_type='cluster': {sorted(kwds)}")
        return ClusteredCovariance(
            groups, use_correction, n_labeled=data.n_labeled, k_params=len(data.param_names)
        )
    raise ValueError(f"cov_type must be 'HC0' or 'cluster', got {cov_type!r}")
