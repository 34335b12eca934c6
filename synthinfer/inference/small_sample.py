"""The default small-sample correction of the two-step GMM intervals.

With few human labels the plain two-step covariance ``(G' S^-1 G)^-1 / N`` is
too small for three reasons, each corrected here (the study behind the
choice is in docs/small-samples.md):

1. the weight matrix is estimated at the step-1 values: Windmeijer's (2005)
   correction (`synthinfer.inference.windmeijer`);
2. the labeled moments' covariance is estimated from n units after fitting p
   target parameters and regressing the target's moments on the ``d_aux``
   auxiliary labeled moments (the control-variate coefficients): the target's
   covariance is scaled by ``n / (n - p - s d_aux)``, as HC1 does for p, with
   ``s`` the Stein shrinkage factor of the weight matrix (1 without
   shrinkage, so a source shrunk away costs no degrees of freedom);
3. the reference distribution is Student's t with ``n - p - s d_aux`` degrees
   of freedom instead of the normal.

With clustered covariance the counts are clusters: the factor is
``G / (G - 1) (n - 1) / (n - p - s d_aux)`` (statsmodels' cluster factor with
the auxiliary coefficients counted) and the t has ``G - 1`` degrees of
freedom, G the clusters that hold labeled units. With no auxiliary source
this is exactly HC1 (or statsmodels' corrected cluster covariance) with t
inference. All three vanish as n grows.

A covariance that already allows for the fitted parameters (HC2/HC3, whose
leverage adjustment is their small-sample correction) keeps the t reference
with ``n - p - s d_aux`` degrees of freedom and a factor that counts only the
auxiliary coefficients, ``n / (n - s d_aux)`` (1 with no auxiliary source:
statsmodels' HC2/HC3 with ``use_t=True``). By default (``fit(leverage="HC3")``)
the correction itself applies that leverage adjustment where the family has a
hat matrix (least squares) and the covariance is unit-level (HC0/HC1): each
labeled unit's labeled moments are divided by ``1 - h_i``
(`synthinfer.covariance.LeverageAdjustedCovariance`); clustered covariance
and the other families keep the ``n / (n - p - s d_aux)`` factor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..exceptions import SpecificationError

__all__ = ["SmallSampleCorrection", "CORRECTIONS"]

#: the names ``fit(correction=...)`` takes; None is the plain two-step covariance
CORRECTIONS = ("small-sample", "windmeijer", None)


@dataclass(frozen=True)
class SmallSampleCorrection:
    """Degrees of freedom and covariance factor of the small-sample correction.

    Attributes
    ----------
    n_labeled : int
        Labeled units.
    n_clusters : int or None
        Clusters holding labeled units (clustered covariance), else None.
    n_params : int
        Target parameters p.
    auxiliary_coefficients : float
        ``s d_aux``: auxiliary labeled moments, times the shrinkage factor.
    df : float
        Degrees of freedom of the t reference distribution.
    factor : float
        Multiplier of the target's covariance.
    rescaled : bool
        Whether the factor is applied; False (factor 1) for a covariance that
        allows for the fitted parameters itself (HC2/HC3's leverage).
    """

    n_labeled: int
    n_clusters: int | None
    n_params: int
    auxiliary_coefficients: float
    df: float
    factor: float
    rescaled: bool = True

    @classmethod
    def of(
        cls, n_labeled: int, n_clusters: int | None, n_params: int, auxiliary_coefficients: float,
        rescale: bool = True,
    ) -> SmallSampleCorrection:
        residual = n_labeled - n_params - auxiliary_coefficients
        if residual < 1:
            raise SpecificationError(
                f"the small-sample correction needs more labeled units than estimated "
                f"coefficients: n = {n_labeled} labeled units, p = {n_params} target "
                f"parameters and {auxiliary_coefficients:.3g} auxiliary coefficients; label more "
                f"units, drop sources, or fit(correction=None) for the plain two-step covariance"
            )
        if n_clusters is None:
            if not rescale:
                # the leverage allows for the p target parameters; the auxiliary
                # coefficients are still counted (1 with no source)
                factor = n_labeled / (n_labeled - auxiliary_coefficients)
                return cls(n_labeled, None, n_params, auxiliary_coefficients, residual, factor, False)
            return cls(n_labeled, None, n_params, auxiliary_coefficients, residual, n_labeled / residual)
        if n_clusters < 2:
            raise SpecificationError("the small-sample correction needs at least 2 clusters with labeled units")
        factor = n_clusters / (n_clusters - 1.0) * (n_labeled - 1.0) / residual
        return cls(n_labeled, n_clusters, n_params, auxiliary_coefficients, float(n_clusters - 1), factor)

    @classmethod
    def for_fit(cls, results: Any) -> SmallSampleCorrection:
        """The correction for a fit: its counts, its covariance's groups and its weight matrix's shrinkage."""
        model = results.model
        data = model.model_data
        layout = model.layout
        factor = getattr(results.weighting, "factor", None)
        shrink = 1.0 if factor is None else float(factor)
        # each target moment is regressed on the q M auxiliary labeled moments
        auxiliary = shrink * layout.q * layout.n_sources
        groups = results.covariance.groups
        n_clusters = None
        if groups is not None:
            n_clusters = len(np.unique(groups[0][data.labeled_pos]))
        rescale = not results.parameter_covariance.adjusts_for_fitted_params
        return cls.of(data.n_labeled, n_clusters, layout.q, auxiliary, rescale=rescale)

    def scale(self, cov: np.ndarray, n_target: int) -> np.ndarray:
        """``cov`` with the target's rows and columns scaled by ``factor`` (the
        nuisance parameters, estimated from all N units, are left alone)."""
        d = np.ones(len(cov))
        d[:n_target] = np.sqrt(self.factor)
        return cov * np.outer(d, d)

    @property
    def description(self) -> str:
        counted = f"{self.n_params}"
        if self.auxiliary_coefficients:
            counted += f" - {self.auxiliary_coefficients:.3g} (s x auxiliary labeled moments)"
        if not self.rescaled:
            if self.auxiliary_coefficients:
                aux = f"{self.auxiliary_coefficients:.3g}"
                return (
                    f"small-sample correction: covariance x n/(n - {aux}) = {self.factor:.3f} (the "
                    f"leverage adjustment allows for the {self.n_params} target parameters) and a "
                    f"t({self.df:.4g}) reference, df = n - {counted}"
                )
            return (
                f"small-sample correction: a t({self.df:.4g}) reference, df = n - {counted} (the "
                f"leverage adjustment takes the place of the n/(n - {counted}) factor)"
            )
        if self.n_clusters is None:
            return (
                f"small-sample correction: covariance x n/(n - {counted}) = {self.factor:.3f} and "
                f"a t({self.df:.4g}) reference"
            )
        return (
            f"small-sample correction: covariance x G/(G-1) (n-1)/(n - {counted}) = "
            f"{self.factor:.3f} with G = {self.n_clusters} clusters and a t({self.df:.4g}) reference"
        )
