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
a class here with its ``cov_type`` added to the registry. ``from_options``
receives the model's data and its family (the estimating function): an
estimator that needs more than the moments, as HC2/HC3 need the hat matrix of
the labeled design, asks the family for it (`EstimatingFunction.leverage`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

import numpy as np
import pandas as pd

from .data import ModelData
from .exceptions import SpecificationError, describe_units
from .moments import MomentBlocks

if TYPE_CHECKING:
    from .families import EstimatingFunction

__all__ = [
    "MomentCovariance", "HeteroskedasticCovariance", "ClusteredCovariance", "HC1Covariance",
    "HC2Covariance", "HC3Covariance", "TwoWayClusteredCovariance", "LeverageAdjustedCovariance",
    "leverage_adjusted", "LEVERAGES", "COVARIANCES", "get_covariance", "CovType", "COV_TYPES",
]


class MomentCovariance:
    """Base class: ``s(moments)`` returns S; ``scale`` multiplies the reported covariance."""

    cov_type: str = ""
    #: Windmeijer's correction knows this estimator's derivative dS/dbeta
    supports_windmeijer: bool = False
    #: S already allows for the fitted parameters (HC2/HC3's leverage): the default
    #: small-sample correction then keeps its t reference but not its n/(n - p) factor
    adjusts_for_fitted_params: ClassVar[bool] = False

    def on_columns(self, columns: np.ndarray) -> MomentCovariance:
        """The same estimator for moments whose labeled-only columns are ``columns``
        (the target block alone, for the human-only comparison): itself, unless the
        estimator treats those columns apart."""
        return self

    def s(self, moments: MomentBlocks) -> np.ndarray:
        raise NotImplementedError

    @classmethod
    def from_options(
        cls, kwds: dict[str, Any], data: ModelData, family: EstimatingFunction
    ) -> MomentCovariance:
        """The estimator for ``cov_kwds`` (consumed from ``kwds``), the model's data
        and its family."""
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
        covariance. On by default through ``cov_kwds`` (statsmodels' default);
        ``cov_kwds={"use_correction": False}`` turns it off.
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
    def from_options(
        cls, kwds: dict[str, Any], data: ModelData, family: EstimatingFunction
    ) -> ClusteredCovariance:
        if "groups" not in kwds:
            raise TypeError(
                "cov_type='cluster' needs cov_kwds={'groups': column name or per-unit values}"
            )
        groups = data.unit_values(kwds.pop("groups"), "cluster groups")
        # statsmodels' default: the corrected covariance unless the user opts out
        use_correction = kwds.pop("use_correction", True)
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
        # the clusters without labeled units carry no target moment, as the
        # unlabeled units do under HC0: with one-unit clusters the two agree
        holding = np.zeros(self.n_clusters, dtype=bool)
        holding[self.codes[moments.labeled_pos]] = True
        return self._centered_sums(moments)[holding], int((~holding).sum())

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


class HC1Covariance(HeteroskedasticCovariance):
    """HC0's S with the reported covariance scaled by ``n / (n - p)``.

    statsmodels' HC1 factor, with n the labeled (human) units and p the target
    parameters: auxiliary units and auxiliary coefficients do not count, so
    with no auxiliary source this is statsmodels' OLS HC1. The weight matrix
    is HC0's (a scalar factor does not change the step-2 estimate).
    """

    cov_type = "HC1"

    def __init__(self, n_labeled: int, k_params: int) -> None:
        if n_labeled <= k_params:
            raise SpecificationError(
                f"cov_type='HC1' needs more labeled units ({n_labeled}) than parameters ({k_params})"
            )
        self._n_labeled, self._k_params = n_labeled, k_params

    @classmethod
    def from_options(cls, kwds: dict[str, Any], data: ModelData, family: EstimatingFunction) -> HC1Covariance:
        return cls(data.n_labeled, len(data.param_names))

    def for_resample(self, groups: np.ndarray | None) -> tuple[str, dict[str, Any]]:
        return "HC1", {}

    def same_as(self, other: MomentCovariance) -> bool:
        # S is HC0's; only the reported scale differs
        return isinstance(other, HeteroskedasticCovariance) and not isinstance(other, ClusteredCovariance)

    @property
    def scale(self) -> float:
        return self._n_labeled / (self._n_labeled - self._k_params)

    @property
    def config(self) -> dict[str, Any]:
        return {"n": self._n_labeled, "k": self._k_params}

    @property
    def description(self) -> str:
        return "robust to heteroskedasticity (HC1)"


#: a leverage this close to 1 is 1: the unit's residual is zero by construction
#: and HC2/HC3 divide zero by zero
LEVERAGE_ONE = 1.0 - 1e-10


class _LeverageCovariance(MomentCovariance):
    """HC2/HC3: each unit's squared residual divided by ``(1 - h_ii)^power``.

    ``S = (1/n) sum_i (g_i - gbar)(g_i - gbar)' / (1 - h_ii)^power`` with
    ``h_ii`` the diagonal of the hat matrix of the labeled design (weighted
    by ``w_i / pi_i`` when the fit is), ``power`` 1 (HC2) or 2 (HC3). With no
    auxiliary source and ``model="ols"`` (or ``"mean"``) this is statsmodels'
    ``OLS`` / ``WLS(weights=w / pi)`` HC2 / HC3.

    Defined only there. With auxiliary sources a unit's moments span the
    target and the auxiliary coefficients jointly and have no single
    hat-matrix diagonal; for other families statsmodels has no HC2/HC3 either
    (its GLM and discrete models report HC0 under these names). Both are
    refused rather than defined ad hoc.

    The leverage adjustment is these estimators' small-sample correction, so
    the default ``correction="small-sample"`` keeps only its t reference with
    ``n - p`` degrees of freedom (statsmodels' ``use_t=True``), not its
    ``n / (n - p)`` factor; ``correction=None`` is statsmodels' default (normal
    reference).
    """

    power: ClassVar[int]
    adjusts_for_fitted_params = True

    def __init__(self, leverage: np.ndarray) -> None:
        self.leverage = np.asarray(leverage, dtype=float)
        self._divisor = (1.0 - self.leverage) ** (self.power / 2.0)

    @classmethod
    def from_options(
        cls, kwds: dict[str, Any], data: ModelData, family: EstimatingFunction
    ) -> MomentCovariance:
        name = cls.cov_type
        if data.sources:
            raise SpecificationError(
                f"cov_type={name!r} is not available with auxiliary sources "
                f"({', '.join(repr(s.name) for s in data.sources)}): its leverage correction needs "
                f"the diagonal of a least-squares hat matrix, and a unit's GMM moments span the "
                f"target and the auxiliary coefficients jointly, with no such diagonal. Use cov_type='HC1' "
                f"(statsmodels' n/(n - p) factor) or the default cov_type='HC0' with the default "
                f"correction='small-sample' (Windmeijer, a degrees-of-freedom factor and t "
                f"inference; for least squares also its leverage adjustment, fit(leverage='HC3' or "
                f"'HC2'), which divides each labeled unit's labeled moments by its leverage in the "
                f"target fit); {name} is available for the human-only least-squares fit"
            )
        leverage = family.leverage(data.X, data.labeled_weight)
        if leverage is None:
            raise SpecificationError(
                f"cov_type={name!r} is available for least squares only (model='ols' or 'mean'), "
                f"not model={getattr(family, 'name', type(family).__name__)!r}: its leverage is the "
                f"diagonal of a least-squares hat matrix (statsmodels' GLM and discrete models "
                f"report HC0 under this name). Use 'HC0' or 'HC1'"
            )
        at_one = leverage > LEVERAGE_ONE
        if at_one.any():
            raise SpecificationError(
                f"cov_type={name!r} is not defined here: {int(at_one.sum())} labeled unit(s) "
                f"{describe_units(data.real_index[at_one])} have leverage 1 (the fit reproduces "
                f"their outcome exactly, as for the only unit of a factor level), so their "
                f"residual is zero by construction and the leverage correction divides zero by "
                f"zero. Merge the level or use 'HC1'"
            )
        return cls(leverage)

    def s(self, moments: MomentBlocks) -> np.ndarray:
        # from_options refused auxiliary sources: the N units are the labeled ones
        rows = (moments.labeled_rows() - moments.mean()) / self._divisor[:, None]
        return rows.T @ rows / moments.n_units

    def resampling_groups(self) -> None:
        return None

    def for_resample(self, groups: np.ndarray | None) -> tuple[str, dict[str, Any]]:
        # a refit's estimate does not depend on its covariance: the refits skip
        # the leverage (an SVD of the design each)
        return "HC0", {}

    @property
    def description(self) -> str:
        return f"robust to heteroskedasticity, leverage-adjusted ({self.cov_type})"


class HC2Covariance(_LeverageCovariance):
    """HC2: squared residuals divided by ``1 - h_ii``."""

    cov_type = "HC2"
    power = 1


class HC3Covariance(_LeverageCovariance):
    """HC3: squared residuals divided by ``(1 - h_ii)^2``."""

    cov_type = "HC3"
    power = 2


#: the names ``fit(leverage=...)`` takes (None: no leverage adjustment)
LEVERAGES = ("HC3", "HC2", None)


class LeverageAdjustedCovariance(MomentCovariance):
    """S with each labeled unit's labeled moments divided by ``(1 - h_i)^(power/2)``.

    The default small-sample correction's leverage adjustment (``fit(leverage=...)``),
    for the parameters' covariance only: ``h_i`` is labeled unit i's leverage in
    the target regression (`EstimatingFunction.leverage`, weighted by ``w / pi``
    when the fit is), ``power`` 2 (HC3-type) or 1 (HC2-type). A fitted residual
    is shrunk toward zero by the fit itself, by ``1 - h_i`` to first order; a
    unit whose covariate value few labeled units share (a rare binary covariate
    on five units has ``h_i`` of about 1/5) is shrunk most, and it alone carries
    its coefficient's variance, which HC0 (and HC1's uniform ``n / (n - p)``)
    then understates (MacKinnon and White 1985; Long and Ervin 2000).

    With auxiliary sources the residual that carries the target's variance is
    the control-variate combination ``psi_i - Gamma a_i`` of the target moment
    and the unit's labeled auxiliary moments (its all-units moments enter the
    auxiliary parameters, estimated from all N units, with leverage of order
    1/N). The fit of theta shrinks that combination by ``1 - h_i``, so the unit's
    whole labeled part is divided: the target block and every labeled auxiliary
    block, after centering; the all-units blocks and the unlabeled units are
    left alone. With no source it is exactly `HC2Covariance` / `HC3Covariance`
    (statsmodels' ``OLS`` HC2 / HC3).

    Parameters
    ----------
    base : MomentCovariance
        The unit-level S being adjusted (HC0 or HC1).
    leverage : ndarray
        ``h_i`` per labeled unit, in ``labeled_pos`` order, each below 1.
    power : {1, 2}
        HC2-type (1) or HC3-type (2).
    columns : ndarray of int
        The labeled-only moment columns (the target block and the labeled
        auxiliary blocks).
    """

    supports_windmeijer = True
    adjusts_for_fitted_params = True

    def __init__(self, base: MomentCovariance, leverage: np.ndarray, power: int, columns: np.ndarray) -> None:
        self.base, self.power = base, int(power)
        self.leverage = np.asarray(leverage, dtype=float)
        self.columns = np.asarray(columns, dtype=int)
        self._inflation = (1.0 - self.leverage) ** (-self.power / 2.0)

    @property
    def cov_type(self) -> str:  # type: ignore[override]
        return self.base.cov_type

    def on_columns(self, columns: np.ndarray) -> LeverageAdjustedCovariance:
        """The same adjustment for moments whose labeled-only columns are ``columns``
        (the target block alone, for the human-only comparison)."""
        return LeverageAdjustedCovariance(self.base, self.leverage, self.power, columns)

    def s(self, moments: MomentBlocks) -> np.ndarray:
        s = self.base.s(moments)
        rows = moments.labeled_rows() - moments.mean()
        part = rows[:, self.columns]
        adjusted = part * self._inflation[:, None]
        # only the labeled units' rows change: S + (1/N) sum_i (r~_i r~_i' - r_i r_i')
        delta_rows = np.zeros_like(rows)
        delta_rows[:, self.columns] = adjusted - part
        cross = rows.T @ delta_rows
        return s + (cross + cross.T + delta_rows.T @ delta_rows) / moments.n_units

    @property
    def groups(self) -> None:
        return None

    def resampling_groups(self) -> tuple[np.ndarray, int] | None:
        return self.base.resampling_groups()

    def for_resample(self, groups: np.ndarray | None) -> tuple[str, dict[str, Any]]:
        return self.base.for_resample(groups)

    def same_as(self, other: MomentCovariance) -> bool:
        return (
            isinstance(other, LeverageAdjustedCovariance) and self.power == other.power
            and self.base.same_as(other.base) and np.array_equal(self.leverage, other.leverage)
        )

    @property
    def scale(self) -> float:
        return self.base.scale

    @property
    def kind(self) -> str:
        return "HC3" if self.power == 2 else "HC2"

    @property
    def config(self) -> dict[str, Any]:
        return {"base": self.base.config, "power": self.power}

    @property
    def description(self) -> str:
        return (
            f"{self.base.description}, each labeled unit's moments divided by "
            f"{'1 - h' if self.power == 2 else 'sqrt(1 - h)'} ({self.kind}-type leverage adjustment, "
            f"h its leverage in the target fit; max h = {self.leverage.max(initial=0.0):.3g})"
        )


def leverage_adjusted(
    covariance: MomentCovariance, data: ModelData, family: EstimatingFunction, kind: str | None,
    layout: Any,
) -> MomentCovariance:
    """``covariance`` with the leverage adjustment ``kind`` ("HC3", "HC2"), where it is defined.

    Defined for the unit-level estimators (HC0, HC1) of a family that provides
    its leverage (`EstimatingFunction.leverage`: least squares, ``"ols"`` and
    ``"mean"``); every other case returns ``covariance`` unchanged: clustered
    covariance (its leverage is a cluster block of the hat matrix, CR2/CR3,
    not implemented), HC2/HC3 already adjusted, and families without a hat
    matrix (logit, Poisson, ...: no leverage is defined for them here). A
    labeled unit with leverage 1 (the fit reproduces it exactly) leaves the
    covariance unadjusted, with a `SparseCovariateWarning`.
    """
    if kind is None:
        return covariance
    if kind not in LEVERAGES:
        raise ValueError(f"leverage must be one of {LEVERAGES}, got {kind!r}")
    if type(covariance) not in (HeteroskedasticCovariance, HC1Covariance):
        return covariance
    leverage = family.leverage(data.X, data.labeled_weight)
    if leverage is None:
        return covariance
    at_one = leverage > LEVERAGE_ONE
    if at_one.any():
        import warnings

        from .exceptions import SparseCovariateWarning

        warnings.warn(
            f"{int(at_one.sum())} labeled unit(s) {describe_units(data.real_index[at_one])} have "
            f"leverage 1 in the target fit (it reproduces their outcome exactly, as for the only "
            f"unit of a factor level): the {kind}-type leverage adjustment is not defined, and "
            f"the covariance uses the n/(n - p) factor instead; those coefficients' standard "
            f"errors are not reliable",
            SparseCovariateWarning,
            stacklevel=4,
        )
        return covariance
    columns = np.concatenate([np.arange(layout.q), layout.labeled_auxiliary()]).astype(int)
    return LeverageAdjustedCovariance(covariance, leverage, 2 if kind == "HC3" else 1, columns)


def _two_way_columns(groups: Any) -> list[Any] | None:
    """The two per-unit group columns of a two-way ``groups``, else None."""
    if isinstance(groups, (list, tuple)) and len(groups) == 2:
        return list(groups)
    if isinstance(groups, pd.DataFrame) and groups.shape[1] == 2:
        return [groups.iloc[:, 0], groups.iloc[:, 1]]
    if isinstance(groups, np.ndarray) and groups.ndim == 2 and groups.shape[1] == 2:
        return [groups[:, 0], groups[:, 1]]
    return None


class TwoWayClusteredCovariance(MomentCovariance):
    """Cameron-Gelbach-Miller two-way clustering: ``S = S_1 + S_2 - S_12``.

    ``S_1`` and ``S_2`` are the one-way cluster S of each dimension and
    ``S_12`` that of their intersection. With ``use_correction`` (default, as
    statsmodels) each term carries its own ``G/(G-1) (n-1)/(n-p)`` factor, so
    the factors live in S itself and ``scale`` is 1: with no auxiliary source
    the covariance is statsmodels' ``cov_cluster_2groups``. The difference can
    have negative eigenvalues; they are clipped to zero (S is symmetrized and
    rebuilt from its eigenvectors) so the weight matrix and the covariance are
    positive semi-definite. Windmeijer's derivative and the bootstrap do not
    know this estimator and refuse it.
    """

    cov_type = "cluster"
    supports_windmeijer = False

    def __init__(
        self, first: np.ndarray, second: np.ndarray, use_correction: bool = True,
        n_labeled: int = 0, k_params: int = 0,
    ) -> None:
        def one_way(groups: np.ndarray) -> ClusteredCovariance:
            return ClusteredCovariance(groups, use_correction, n_labeled, k_params)

        intersection = pd.factorize(pd.MultiIndex.from_arrays([pd.factorize(first)[0], pd.factorize(second)[0]]))[0]
        self.parts = [one_way(first), one_way(second)]
        self.intersection = one_way(intersection) if len(np.unique(intersection)) > 1 else None
        self.use_correction = bool(use_correction)
        #: negative eigenvalues clipped in the last S (0 when S was PSD)
        self.clipped = 0

    @classmethod
    def from_options(
        cls, kwds: dict[str, Any], data: ModelData, family: EstimatingFunction
    ) -> TwoWayClusteredCovariance:
        columns = _two_way_columns(kwds.pop("groups"))
        if columns is None:
            raise SpecificationError("two-way clustering needs groups of two per-unit columns")
        first, second = (data.unit_values(c, f"cluster groups ({i})") for i, c in enumerate(columns, 1))
        return cls(first, second, kwds.pop("use_correction", True), data.n_labeled, len(data.param_names))

    def s(self, moments: MomentBlocks) -> np.ndarray:
        first, second = self.parts
        s = first.s(moments) * first.scale + second.s(moments) * second.scale
        if self.intersection is not None:
            s = s - self.intersection.s(moments) * self.intersection.scale
        s = (s + s.T) / 2
        eigenvalues, eigenvectors = np.linalg.eigh(s)
        negative = eigenvalues < 0
        self.clipped = int(negative.sum())
        if self.clipped:
            s = (eigenvectors * np.clip(eigenvalues, 0, None)) @ eigenvectors.T
        return s

    @property
    def groups(self) -> tuple[np.ndarray, int]:
        # the dimension with fewer clusters bounds the independent information
        # (statsmodels' degrees of freedom use min(G_1, G_2))
        return min((part.groups for part in self.parts), key=lambda g: g[1])

    def same_as(self, other: MomentCovariance) -> bool:
        return (
            isinstance(other, TwoWayClusteredCovariance) and self.use_correction == other.use_correction
            and all(a.same_as(b) for a, b in zip(self.parts, other.parts))
        )

    @property
    def config(self) -> dict[str, Any]:
        return {"n_clusters": tuple(p.n_clusters for p in self.parts), "use_correction": self.use_correction}

    @property
    def description(self) -> str:
        g1, g2 = (p.n_clusters for p in self.parts)
        return f"two-way cluster-robust, {g1} x {g2} clusters"


#: the estimators ``cov_type`` and ``weight_type`` name (aliases map to them)
COVARIANCES: dict[str, type[MomentCovariance]] = {
    "HC0": HeteroskedasticCovariance,
    "cluster": ClusteredCovariance,
    "HC1": HC1Covariance,
    "HC2": HC2Covariance,
    "HC3": HC3Covariance,
}
#: the names ``cov_type`` / ``weight_type`` take, as a type; the keys of
#: `COVARIANCES` and the command line's ``--cov`` / ``--weight`` choices are these
#: (tests/test_cli.py checks all three agree)
CovType = Literal["HC0", "cluster", "HC1", "HC2", "HC3"]
COV_TYPES: tuple[str, ...] = get_args(CovType)
_ALIASES = {"hc0": "HC0", "robust": "HC0", "cluster": "cluster", "hc1": "HC1", "hc2": "HC2", "hc3": "HC3"}


def get_covariance(
    cov_type: str, cov_kwds: Mapping[str, Any] | None, data: ModelData, family: EstimatingFunction
) -> MomentCovariance:
    """The S estimator named by ``cov_type`` (a key of `COVARIANCES`) for the model's
    data and family."""
    kwds = dict(cov_kwds or {})
    name = _ALIASES.get(cov_type.lower(), cov_type) if isinstance(cov_type, str) else None
    if name not in COVARIANCES:
        raise ValueError(f"cov_type must be one of {sorted(COVARIANCES)}, got {cov_type!r}")
    cls = COVARIANCES[name]
    if name == "cluster" and _two_way_columns(kwds.get("groups")) is not None:
        cls = TwoWayClusteredCovariance
    estimator = cls.from_options(kwds, data, family)
    if kwds:
        raise TypeError(f"unknown cov_kwds for cov_type={name!r}: {sorted(kwds)}")
    return estimator
