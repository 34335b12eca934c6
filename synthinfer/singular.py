"""Why the moment covariance S is singular, in words and numbers.

S is singular for many unrelated reasons, and each needs a different remedy:
too few labeled units for the moments on them, every unit labeled, an outcome
that is constant or fitted exactly, nearly collinear covariates, too few
clusters or units for the number of moments, one unit's labeling probability
dominating the labeled moments, or a source repeating another. `explain_singular`
checks each of them on the model data and returns the ones that apply.

The few-labeled warning lives here too: it is the mild form of the first cause.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from .exceptions import FewLabeledWarning

if TYPE_CHECKING:  # data.py uses exact_fit: no import cycle at run time
    from .data import ModelData

__all__ = ["explain_singular", "warn_if_few_labeled", "exact_fit", "MIN_LABELED_PER_MOMENT", "FEW_LABELED_PER_MOMENT"]

# Below this many labeled units per moment condition the summary notes that the
# weight matrix is noisy (diagnostics.py uses the same bar).
MIN_LABELED_PER_MOMENT = 5
# Below this many, fit() also warns: fewer labeled units than moment conditions,
# where the labeled blocks of S rest on less than one unit per moment (the
# summary's note starts earlier, at MIN_LABELED_PER_MOMENT).
FEW_LABELED_PER_MOMENT = 1

# a design whose columns, scaled to unit length, have a condition number above
# this is numerically collinear for the purposes of S
_COLLINEAR_CONDITION = 1e7
# one unit with more than this share of the squared weights makes the weighted
# labeled moments essentially one unit's
_DOMINANT_WEIGHT_SHARE = 0.5


def warn_if_few_labeled(data: ModelData, k_moms: int, stacklevel: int = 3) -> None:
    """Warn (`FewLabeledWarning`) when n / K is below `FEW_LABELED_PER_MOMENT`.

    Only fits with auxiliary sources are concerned: a human-only fit is just
    identified and has no estimated weight matrix.
    """
    if not data.sources:
        return
    per_moment = data.n_labeled / k_moms
    if per_moment < FEW_LABELED_PER_MOMENT:
        q = k_moms // (1 + 2 * len(data.sources))
        warnings.warn(
            f"only {per_moment:.2f} labeled units per moment condition ({data.n_labeled} labeled "
            f"units for {k_moms} moments: {q} per block x (1 + 2 x {len(data.sources)} "
            f"sources)); the estimated weight matrix is noisy and the intervals may "
            f"under-cover. Use fewer sources or terms, or label more units",
            FewLabeledWarning,
            stacklevel=stacklevel,
        )


def warn_if_few_clusters(data: ModelData, covariance: Any, k_moms: int, stacklevel: int = 3) -> None:
    """Warn (`FewLabeledWarning`) when the clusters holding labeled units are no
    more than the moment conditions: the clustered S of the covariance then has
    rank below K, so the sandwich and the generalized J rest on directions S
    cannot estimate."""
    groups = covariance.groups
    if groups is None or not data.sources:
        return
    n_clusters = len(np.unique(groups[0][data.labeled_pos]))
    if n_clusters <= k_moms:
        warnings.warn(
            f"only {n_clusters} clusters hold labeled units, for {k_moms} moment conditions: the "
            f"clustered S has rank at most {n_clusters}, no more than the {k_moms} moments, so its standard errors and "
            f"J test are not reliable. Use fewer sources or terms, more clusters, or cov_type='HC0' "
            f"if the units are independent",
            FewLabeledWarning,
            stacklevel=stacklevel,
        )


def _frames(data: ModelData) -> list[tuple[str, np.ndarray, np.ndarray]]:
    return [("real", data.y, data.X)] + [(s.name, s.y, s.X) for s in data.sources]


def _collinear_columns(X: np.ndarray, names: list[str]) -> tuple[float, list[str]]:
    """Condition number of X with unit-length columns, and the columns of its weakest direction."""
    norms = np.linalg.norm(X, axis=0)
    scaled = X / np.where(norms > 0, norms, 1.0)
    singular_values, vt = np.linalg.svd(scaled, full_matrices=False)[1:]
    smallest = singular_values[-1]
    condition = singular_values[0] / smallest if smallest > 0 else np.inf
    loadings = np.abs(vt[-1])
    involved = [name for name, load in zip(names, loadings) if load >= 0.1 * loadings.max()]
    return float(condition), involved


def exact_fit(y: np.ndarray, X: np.ndarray) -> bool:
    """Whether the least-squares residuals of y on X vanish (to rounding)."""
    coef = np.linalg.lstsq(X, y, rcond=None)[0]
    residual = y - X @ coef
    return bool(np.linalg.norm(residual) <= 1e-10 * max(np.linalg.norm(y), np.finfo(float).tiny))


def explain_singular(data: ModelData, covariance: Any, s: np.ndarray) -> str:
    """The causes that make S (the moment covariance of ``data``) singular, with numbers.

    Parameters
    ----------
    data : ModelData
        The model's validated data.
    covariance : MomentCovariance
        The S estimator S came from (the weight matrix's, ``weight_type``); its
        ``groups`` are the units or clusters it treats as independent.
    s : ndarray
        S itself (K x K).

    Returns
    -------
    str
        One sentence per cause that applies, most fundamental first, each with
        its remedy; empty if none of the known causes is found.
    """
    n_sources = len(data.sources)
    n, N, k_moms = data.n_labeled, data.n_units, s.shape[0]
    # q moments per block: the target's, and each source's labeled and all-units blocks
    q = k_moms // (1 + 2 * n_sources)
    labeled_moms = (1 + n_sources) * q
    causes: list[str] = []

    if n_sources and n <= labeled_moms:
        causes.append(
            f"only {n} labeled units for the {labeled_moms} moments that live on the labeled "
            f"units ({q} per block x (1 target + {n_sources} source(s))): their covariance has rank "
            f"at most {n}, so more than {labeled_moms} labeled units are needed. Label more "
            f"units, or use fewer terms or sources"
        )
    if n_sources and n == N:
        causes.append(
            f"every unit is labeled (n = N = {N}): each source's labeled-units moments equal "
            f"its all-units moments, so the auxiliary data has nothing to add. Fit the "
            f"human-only model (synthinfer.api.classical) instead"
        )
    if N - 1 < k_moms:
        causes.append(
            f"only {N} units for {k_moms} moment conditions: S, an average over {N} centered "
            f"units, has rank at most {N - 1}. Give the auxiliary data more units (a "
            f"synthetic source needs samples for more units than there are moments), or use "
            f"fewer terms or sources"
        )
    if n_sources and data.X.ndim == 2 and data.X.shape[1] == q:
        # a column nonzero on few labeled units: its labeled moments in every
        # block (target and sources) are spanned by those units' residuals alone
        for j, name in enumerate(data.param_names[:q]):
            nonzero = int(np.count_nonzero(data.X[:, j]))
            if 0 < nonzero < 1 + n_sources:
                causes.append(
                    f"design column {name!r} is nonzero on only {nonzero} of the {n} labeled "
                    f"units: its labeled moments in the {1 + n_sources} blocks (the target and "
                    f"{n_sources} source(s)) rest on those {nonzero} units alone, so their "
                    f"covariance is singular. Label more units with {name!r} nonzero, merge the "
                    f"level, or fit the human-only model (synthinfer.api.classical), whose "
                    f"coefficient for {name!r} rests on the same {nonzero} units"
                )
    groups = covariance.groups
    n_clusters = None if groups is None else groups[1]
    if n_clusters is not None and n_clusters - 1 < k_moms:
        causes.append(
            f"only {n_clusters} clusters for {k_moms} moment conditions: a cluster-robust S "
            f"has rank at most {n_clusters - 1}. Use weight_type='HC0' and cov_type='HC0' if "
            f"units are independent, coarser models (fewer terms or sources), or more clusters"
        )
    if groups is not None and n_clusters is not None and n_sources:
        labeled_clusters = len(np.unique(groups[0][data.labeled_pos]))
        if labeled_clusters <= labeled_moms and n_clusters - 1 >= k_moms:
            causes.append(
                f"the labeled units lie in only {labeled_clusters} clusters, for the "
                f"{labeled_moms} moments that live on the labeled units: their clustered "
                f"covariance has rank at most {labeled_clusters}. Label units in more clusters"
            )
    for name, y, X in _frames(data):
        frame = f"frame {name!r}" if name == "real" else f"source {name!r}"
        if np.ptp(y) == 0:
            causes.append(
                f"the outcome of {frame} is constant (every value {y[0]:g}): its residuals "
                f"are exactly zero, so its moments have no variance and carry no information"
                + (
                    "; an LLM that always gives the same answer cannot help. Drop the source "
                    "(without it the fit is the human-only fit: no gain is lost)"
                    if name != "real" else "; there is nothing to regress"
                )
            )
        elif exact_fit(y, X):
            causes.append(
                f"the outcome of {frame} is fitted exactly by its terms (all residuals zero), "
                f"e.g. the outcome or a copy of it is among the terms; its moments have no "
                f"variance. Remove the term that reproduces the outcome"
            )
        condition, involved = _collinear_columns(X, list(data.param_names))
        if condition > _COLLINEAR_CONDITION:
            causes.append(
                f"the design of {frame} is nearly collinear (condition number {condition:.3g} "
                f"with columns scaled to unit length; columns involved: {involved}). Drop or "
                f"combine those terms"
            )
    if data.labeled_weight is not None:
        w = data.labeled_weight
        share = float(np.max(w**2) / np.sum(w**2))
        if share > _DOMINANT_WEIGHT_SHARE:
            where = int(np.argmax(w))
            if data.unit_weight is not None:
                causes.append(
                    f"an extreme weight: labeled unit {data.real_index[where]!r} has weight "
                    f"(survey weight{' / pi' if data.weighted_by_pi else ''}) {w[where]:.3g}, "
                    f"against a median {np.median(w):.3g}, and carries {share:.0%} of the squared "
                    f"weights, so the weighted labeled moments are essentially that one unit's. "
                    f"Check the weights"
                )
            else:
                causes.append(
                    f"an extreme labeling probability: labeled unit {data.real_index[where]!r} has "
                    f"pi = {1 / w[where]:.3g} (weight 1/pi = {w[where]:.3g}, against a median "
                    f"{np.median(w):.3g}) and carries {share:.0%} of the squared weights, so the "
                    f"weighted labeled moments are essentially that one unit's. Check the labeling "
                    f"probabilities"
                )
    for a in range(n_sources):
        for b in range(a + 1, n_sources):
            first, second = data.sources[a], data.sources[b]
            if first.X.shape != second.X.shape or not np.array_equal(first.unit_pos, second.unit_pos):
                continue
            if not np.allclose(first.X, second.X, rtol=1e-12, atol=0):
                continue
            if np.ptp(first.y) > 0 and np.ptp(second.y) > 0:
                correlation = np.corrcoef(first.y, second.y)[0, 1]
                if abs(correlation) > 1 - 1e-12:
                    causes.append(
                        f"source {second.name!r} repeats source {first.name!r} (the same "
                        f"covariates and an outcome that is an exact linear recoding of its "
                        f"outcome, correlation {correlation:+.3g}). Drop the duplicate source"
                    )
    return "; ".join(causes)
