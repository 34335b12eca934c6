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
    s = max(0, 1 - c d / T),                 d = the mean of T when the sources
                                              do not predict the human moments,
                                              c = STEIN_MULTIPLE = 2

When the target's and the auxiliary moments are independent, ``T`` is about
chi-square with ``q x (auxiliary labeled moments)`` degrees of freedom, and
that is ``d``. But uninformative sources are uncorrelated with the human
moments, not independent of them: both are products with the same covariates,
and with a skewed covariate and heavy-tailed errors the sampling variance of
``S_ta`` is larger than the product of the two variances, so ``T`` overshoots
its chi-square reference and ``s`` is positive too often (a 4-12% MSE cost in
the study's heavy-tailed pure-noise cells). ``d`` is therefore the plug-in
mean of ``T`` under zero correlation,

    d = n sum_g l_t,g l_a,g,       l_t,g = h_t,g' S_tt^-1 h_t,g / N  (and l_a alike),

over the independent groups g (units or clusters) with centered moment sums
``h_g``: the fourth-moment generalisation of ``q x (auxiliary moments)``, to
which it reduces when the two are independent (`null_degrees_of_freedom`).
With informative sources ``T`` grows like n while ``d`` stays bounded, so
``s`` tends to 1 and the correction vanishes as n grows. The reported covariance is the GMM sandwich
with the unshrunk ``S`` (the estimator is consistent for any fixed ``s``).

Why ``c = 2`` and not 1: with a known signal the MSE-optimal factor is
``1 - d / E[T]``, but ``T`` is itself noisy, and under no information the
positive part of ``1 - d / T`` is above zero about half the time, a cost
that a skewed covariate with heavy-tailed errors made 3-6% of the x1 MSE at
n = 100-200. Requiring T to exceed twice its null mean (James and Stein's
rule dominates for any multiple of its constant up to two) brought that
cost to 0.6-1.7% while keeping 95-98% of the informative sources' MSE
reduction at n = 200 (`benchmarks/stein_multiple.py`, docs/small-samples.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .covariance import MomentCovariance
from .layout import MomentLayout
from .moments import MomentBlocks

__all__ = [
    "ShrunkWeight", "stein_factor", "stein_factors", "stein_rule", "STEIN_MULTIPLE", "canonical_statistics", "null_mean", "shrink", "SHRINKAGES",
]

#: the names ``fit(shrinkage=...)`` takes
SHRINKAGES = ("stein", "none")

#: the sources get weight only where T exceeds this multiple of its null mean
STEIN_MULTIPLE = 2.0


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
    """The null mean of T when the target's moments are independent of the
    auxiliary ones: target moments times auxiliary labeled moments (the
    labeled and all-units blocks span the labeled moments' directions once)."""
    return layout.q * layout.q * layout.n_sources


def null_mean(
    s: np.ndarray, layout: MomentLayout, rows: np.ndarray, n_rest: int, target_mean: np.ndarray,
    n_independent: int, n_units: int,
) -> float:
    """The plug-in mean of T's noise part (its mean under zero correlation).

    Parameters
    ----------
    s : ndarray
        S, (K, K), ``(1/N) sum_g h_g h_g'``.
    layout : MomentLayout
        Where the target and auxiliary moments sit.
    rows : ndarray
        ``h_g`` of the groups that hold labeled units, (m, K).
    n_rest : int
        Groups that hold no labeled unit; their target part is ``-target_mean``
        per unit (zero at the step-1 root, where the weight matrix is built;
        a cluster's size is not counted there).
    target_mean : ndarray
        The target moments' mean over the N units (zero at the step-1 root).
    n_independent, n_units : int
        n (labeled units or clusters) and N.

    Returns
    -------
    float
        ``n sum_g l_t,g l_a,g`` with ``l_a,g = h_a,g' S_aa^+ h_a,g / N`` and
        ``l_t,g = e_g' S_tt^+ e_g / N``, where ``e_g`` is the target's part not
        predicted by the sources: ``h_t,g - s0 S_ta S_aa^+ h_a,g`` with ``s0``
        the Stein factor of the unadjusted mean (``e_g = h_t,g``). T's noise is
        that of the coefficient ``S_ta S_aa^+``, which the residual drives;
        ``h_t`` itself would count informative sources' signal as noise, and
        the full in-sample residual (``s0 = 1``) would count the noise as
        signal when there is none. The leverages ``l_a`` of all groups sum to
        the rank of ``S_aa``, which gives the groups without labeled units
        their share without their rows.
    """
    q = layout.q
    inv_tt, inv_aa = np.linalg.pinv(s[:q, :q]), np.linalg.pinv(s[q:, q:])
    h_t, h_a = rows[:, :q], rows[:, q:]
    lev_a = np.einsum("ij,jk,ik->i", h_a, inv_aa, h_a) / n_units
    rest_share = 0.0
    if n_rest:
        rank_a = float(np.trace(inv_aa @ s[q:, q:]))
        rest_share = float(target_mean @ inv_tt @ target_mean) / n_units * max(rank_a - float(lev_a.sum()), 0.0)

    def mean_for(resid: np.ndarray) -> float:
        lev_t = np.einsum("ij,jk,ik->i", resid, inv_tt, resid) / n_units
        return n_independent * (float(lev_t @ lev_a) + rest_share)

    unadjusted = mean_for(h_t)
    statistic = float(canonical_statistics(s[None], layout, np.array([float(n_independent)]))[0])
    # s0 estimates the sources' share of T (multiple 1, its expected-value form), not
    # the default's more cautious factor: it decides what counts as the noise part
    s0 = float(stein_factors(np.array([statistic]), unadjusted)[0])
    if s0 == 0.0:
        return unadjusted
    return mean_for(h_t - s0 * h_a @ (inv_aa @ s[q:, :q]))


def canonical_statistic(s: np.ndarray, layout: MomentLayout, n_independent: int) -> tuple[float, int]:
    """``(T, d)`` for one S, see `canonical_statistics`."""
    return float(canonical_statistics(s[None], layout, np.array([n_independent]))[0]), null_degrees_of_freedom(layout)


def stein_factors(statistic: np.ndarray, d: float) -> np.ndarray:
    """Positive-part Stein factors ``max(0, 1 - d / T)`` (0 where T is not finite)."""
    statistic = np.asarray(statistic, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(statistic) & (statistic > d), 1.0 - d / statistic, 0.0)


def stein_factor(statistic: float, d: float) -> float:
    """Positive-part Stein factor ``max(0, 1 - d / T)``."""
    return float(stein_factors(np.array([statistic]), d)[0])


def stein_rule(statistic: np.ndarray, d: float) -> np.ndarray:
    """The default's factors ``max(0, 1 - c d / T)``, c = `STEIN_MULTIPLE`."""
    return stein_factors(statistic, STEIN_MULTIPLE * d)


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
    statistic, d : float
        The canonical statistic T and its null mean (see `null_mean`); the
        factor is ``max(0, 1 - c d / T)`` with c = `STEIN_MULTIPLE`.
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
        self.d: float = float(null_degrees_of_freedom(layout))

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
        self.statistic, _ = canonical_statistic(s, self.layout, self.n_independent)
        self.d = self._null_mean(s, moments)
        self.factor = float(stein_rule(np.array([self.statistic]), self.d)[0]) if self._fixed is None else self._fixed
        return shrink(s[None], self.layout, np.array([self.factor]))[0]

    def _null_mean(self, s: np.ndarray, moments: MomentBlocks) -> float:
        """d for this S: the plug-in null mean of T, or the independence value
        where the base estimator does not expose its independent rows."""
        try:
            rows, n_rest = self.base.independent_rows(moments)
        except NotImplementedError:
            return float(null_degrees_of_freedom(self.layout))
        return null_mean(
            s, self.layout, rows, n_rest, moments.mean()[: self.layout.q], self.n_independent, moments.n_units,
        )

    def ds_times_v(self, ds_times: Any, v: np.ndarray) -> np.ndarray:
        """``(dS_shrunk/dbeta_j) v`` from the base's ``ds_times([v, ...])``, which gives
        ``(dS/dbeta_j) v`` for each vector (in one pass for Dask sources), the factor held fixed."""
        q = self.layout.q
        v_t, v_a = v.copy(), v.copy()
        v_t[q:] = 0.0
        v_a[:q] = 0.0
        on_t, on_a = ds_times([v_t, v_a])
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
            f"positive-part Stein factor s = {factor} (T = {self.statistic:.3g}, null mean d = {self.d:.3g}, "
            f"s = max(0, 1 - {STEIN_MULTIPLE:g} d / T); "
            f"s = 0 is the human-only estimate, s = 1 the efficient two-step one)"
        )
