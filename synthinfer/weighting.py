"""Step-2 weight matrices that are not plain ``S^-1``: shrinkage toward the human-only fit.

With ``W = S^-1`` the target moves away from the human-only estimate by
``S_ta S_aa^-1`` times the auxiliary moments (control variates), where
``S_ta`` is the covariance of the target's moments with the auxiliary ones.
That cross-covariance is estimated from the n labeled units only; when the
sources carry no information its estimate is pure noise, and using it costs
variance of order (number of auxiliary labeled moments) / n, the "harm" a
useless source does in small samples.

`ShrunkWeight` multiplies ``S_ta`` (both off-diagonal blocks) by a factor
``s`` in [0, 1] before inverting. Because theta enters the target block only,
the auxiliary parameters eta do not depend on ``s`` and theta(s) is, to first
order, ``(1 - s) theta_human + s theta_GMM``: ``s = 0`` gives the human-only
estimate exactly, ``s = 1`` the efficient two-step estimate. The factor is a
positive-part Stein rule on the evidence that the sources predict the human
moments:

    T = n tr(S_tt^-1 S_ta S_aa^-1 S_at)      (n times the summed squared
                                              canonical correlations)
    s = max(0, 1 - d / T),                   d = q x (auxiliary labeled moments)

With uninformative sources ``T`` is about chi-square with ``d`` degrees of
freedom, so ``s`` is zero about half the time and small otherwise; with
informative sources ``T`` grows like n and ``s`` tends to 1, so the
correction vanishes as n grows. The reported covariance is the GMM sandwich
with the unshrunk ``S`` (the estimator is consistent for any fixed ``s``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .covariance import MomentCovariance
from .layout import MomentLayout
from .moments import MomentBlocks

__all__ = ["ShrunkWeight", "stein_factor", "stein_factors", "canonical_statistics", "shrink", "SHRINKAGES"]

#: the names ``fit(shrinkage=...)`` takes
SHRINKAGES = ("stein", "none")


def canonical_statistics(s: np.ndarray, layout: MomentLayout, n_independent: np.ndarray) -> np.ndarray:
    """T per S in a stack (B, K, K): n times the summed squared canonical
    correlations of the target's moments with the auxiliary moments. A
    pseudo-inverse keeps one singular S from failing the others."""
    q = layout.q
    s_tt, s_ta, s_aa = s[:, :q, :q], s[:, :q, q:], s[:, q:, q:]
    explained = np.matmul(s_ta, np.matmul(np.linalg.pinv(s_aa), np.swapaxes(s_ta, 1, 2)))
    r2 = np.matmul(np.linalg.pinv(s_tt), explained)
    return np.asarray(n_independent, dtype=float) * np.trace(r2, axis1=1, axis2=2)


def null_degrees_of_freedom(layout: MomentLayout) -> int:
    """d: target moments times auxiliary labeled moments (the labeled and
    all-units blocks span the labeled moments' directions once)."""
    return layout.q * layout.q * layout.n_sources


def canonical_statistic(s: np.ndarray, layout: MomentLayout, n_independent: int) -> tuple[float, int]:
    """``(T, d)`` for one S, see `canonical_statistics`."""
    return float(canonical_statistics(s[None], layout, np.array([n_independent]))[0]), null_degrees_of_freedom(layout)


def stein_factors(statistic: np.ndarray, d: int) -> np.ndarray:
    """Positive-part Stein factors ``max(0, 1 - d / T)`` (0 where T is not finite)."""
    statistic = np.asarray(statistic, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(statistic) & (statistic > d), 1.0 - d / statistic, 0.0)


def stein_factor(statistic: float, d: int) -> float:
    """Positive-part Stein factor ``max(0, 1 - d / T)``."""
    return float(stein_factors(np.array([statistic]), d)[0])


def shrink(s: np.ndarray, layout: MomentLayout, factor: np.ndarray) -> np.ndarray:
    """A stack of S (B, K, K) with each target-auxiliary block times its factor."""
    q = layout.q
    out = s.copy()
    out[:, :q, q:] *= factor[:, None, None]
    out[:, q:, :q] *= factor[:, None, None]
    return out


class ShrunkWeight(MomentCovariance):
    """S with its target-auxiliary cross-covariance shrunk by a Stein factor.

    Parameters
    ----------
    base : MomentCovariance
        The estimator of S (HC0 or clustered).
    layout : MomentLayout
        Where the target and auxiliary moments sit.
    n_independent : int
        Independent labeled observations behind the cross-covariance: the
        labeled units, or the clusters that hold labeled units.
    factor : float, optional
        A fixed factor instead of the Stein rule (``1`` = no shrinkage).

    Attributes
    ----------
    factor : float or None
        The factor used by the last call of ``s`` (the step-2 weight matrix).
    statistic, d : float, int
        The canonical statistic T and its null degrees of freedom.
    """

    @property
    def cov_type(self) -> str:  # type: ignore[override]
        """The base estimator's name (what a refit asks for, with ``shrinkage``)."""
        return self.base.cov_type

    def __init__(
        self, base: MomentCovariance, layout: MomentLayout, n_independent: int, factor: float | None = None,
    ) -> None:
        self.base, self.layout, self.n_independent = base, layout, int(n_independent)
        self._fixed = factor
        self.factor: float | None = factor
        self.statistic: float = np.nan
        self.d: int = null_degrees_of_freedom(layout)

    @property
    def supports_windmeijer(self) -> bool:  # type: ignore[override]
        return self.base.supports_windmeijer

    @property
    def groups(self) -> tuple[np.ndarray, int] | None:
        return self.base.groups

    def s(self, moments: MomentBlocks) -> np.ndarray:
        s = self.base.s(moments)
        #: the unshrunk S of the last call (the engine checks it for singularity)
        self.base_s = s
        self.statistic, self.d = canonical_statistic(s, self.layout, self.n_independent)
        self.factor = stein_factor(self.statistic, self.d) if self._fixed is None else self._fixed
        return shrink(s[None], self.layout, np.array([self.factor]))[0]

    def ds_times_v(self, ds_times: Any, v: np.ndarray) -> np.ndarray:
        """``(dS_shrunk/dbeta_j) v`` from the base's ``ds_times(v)`` (the factor held fixed)."""
        q = self.layout.q
        v_t, v_a = v.copy(), v.copy()
        v_t[q:] = 0.0
        v_a[:q] = 0.0
        on_t, on_a = ds_times(v_t), ds_times(v_a)
        factor = 0.0 if self.factor is None else self.factor
        out = on_t + on_a
        out[:q] += (factor - 1.0) * on_a[:q]
        out[q:] += (factor - 1.0) * on_t[q:]
        return out

    def same_as(self, other: MomentCovariance) -> bool:
        return False

    def resampling_groups(self) -> tuple[np.ndarray, int] | None:
        return self.base.resampling_groups()

    def for_resample(self, groups: np.ndarray | None) -> tuple[str, dict[str, Any]]:
        return self.base.for_resample(groups)

    @property
    def config(self) -> dict[str, Any]:
        return {"base": self.base.config, "factor": self._fixed}

    @property
    def description(self) -> str:
        factor = "not computed" if self.factor is None else f"{self.factor:.3f}"
        return (
            f"{self.base.description}, target-auxiliary covariance shrunk by the "
            f"positive-part Stein factor s = {factor} (T = {self.statistic:.3g}, d = {self.d}; "
            f"s = 0 is the human-only estimate, s = 1 the efficient two-step one)"
        )
