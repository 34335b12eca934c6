"""Diagnostics of a GMM-Synth fit: what the auxiliary data bought, and whether it fits the design."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import SynthInferWarning
from ..moments import MomentBlocks
from ..singular import MIN_LABELED_PER_MOMENT
from .small_sample import SmallSampleCorrection

__all__ = ["Diagnostics", "diagnose"]


@dataclass(frozen=True)
class Diagnostics:
    """What ``GMMSynthResults.diagnostics`` reports.

    Attributes
    ----------
    effective_n : Series
        Per term, ``n var_human / var``: the number of human labels the fit is
        worth (n when the auxiliary data does not help).
    variance_reduction : DataFrame
        Per term (rows) and source (columns), ``1 - var(with that source alone) /
        var_human``; the column ``"all"`` uses every source together.
    residual_correlation : Series
        Per source, the correlation on the labeled units between the human
        residuals ``y - mu(x'theta)`` and the source's residuals at its own
        estimate (a unit's synthetic samples averaged): the closer to +-1, the
        more the source can help.
    jtest : tuple
        Hansen's J, its p-value and degrees of freedom.
    j_reading : str
        The J test in plain words.
    warnings : list of str
        Conditions that make the fit fragile.
    """

    effective_n: pd.Series
    variance_reduction: pd.DataFrame
    residual_correlation: pd.Series
    jtest: tuple[float, float, int]
    j_reading: str
    warnings: list[str]

    def __str__(self) -> str:
        parts = [
            "Effective number of human labels",
            self.effective_n.round(1).to_string(),
            "",
            "Variance reduction against the human-only fit",
            self.variance_reduction.round(3).to_string(),
            "",
            "Correlation of human and source residuals (labeled units)",
            self.residual_correlation.round(3).to_string(),
            "",
            f"J test: {self.j_reading}",
        ]
        parts += [f"Warning: {w}" for w in self.warnings]
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        return "<pre>" + str(self) + "</pre>"


def _j_reading(jval: float, pval: float, df: int) -> str:
    if df == 0:
        return "no overidentifying restrictions (no auxiliary source): nothing to test."
    verdict = (
        "rejected at the 5% level: the auxiliary data behaves differently on the labeled "
        "units than on all units. Either it was not generated the same way for labeled and "
        "unlabeled units, or the labeled units are not the random sample (with the labeling "
        "probabilities) the method assumes. Check the design before trusting the fit."
        if pval < 0.05
        else "not rejected at the 5% level: no evidence that the auxiliary data behaves "
        "differently on the labeled units than on all units."
    )
    return f"J = {jval:.3g} on {df} df, p = {pval:.3g}; {verdict}"


def _refit(results: Any, sources: tuple) -> Any:
    """The same model (labeling probabilities included) with only ``sources``."""
    model = results.model
    data = replace(model.model_data, sources=sources)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SynthInferWarning)
        return model.refit(
            data, cov_type=results.cov_type, cov_kwds=results.cov_kwds,
            weight_type=results.weight_type, weight_kwds=results.weight_kwds,
            correction=results.correction, shrinkage=results.shrinkage,
        )


def _human_only_variance(results: Any) -> np.ndarray:
    """Variances of the human-only fit on the same model, from the fit's own quantities.

    The human-only estimate is step 1's theta (``start_params``): it is just
    identified, so whatever its weight matrix its covariance is
    ``(G' S_c^-1 G)^-1 / N`` with the target block's G and S there and the fit's
    covariance estimator; no second fit.
    """
    model, data = results.model, results.model.model_data
    theta = np.asarray(results.start_params)[: model.layout.k]
    evaluation = model.family.evaluate(data.X, data.y, theta)
    weight = data.labeled_weight
    values = evaluation.values()
    if weight is not None:
        values = values * weight[:, None]
    # the parameters' S estimator (leverage-adjusted under the default correction),
    # on the target block alone
    estimator = getattr(results, "parameter_covariance", results.covariance).on_columns(np.arange(values.shape[1]))
    s = estimator.s(MomentBlocks((values,), (True,), data.labeled_pos, data.n_units))
    G = evaluation.jacobian(weight) / data.n_units
    information = G.T @ np.linalg.solve(s, G)
    variance = np.diag(np.linalg.inv(information)) / data.n_units
    correction = getattr(results, "small_sample", None)
    if correction is not None:
        # the human-only fit's own small-sample factor (no auxiliary coefficients)
        human = SmallSampleCorrection.of(
            correction.n_labeled, correction.n_clusters, correction.n_params, 0.0, rescale=correction.rescaled,
        )
        return variance * human.factor
    return variance * results.covariance.scale


def diagnose(results: Any, per_source: bool = True) -> Diagnostics:
    """Compute ``Diagnostics`` for a fitted GMM-Synth result.

    ``per_source=False`` skips the refits with one source at a time (the
    variance reduction then has the ``"all"`` column only).
    """
    model = results.model
    data = model.model_data
    names = list(model.exog_names)
    var_human = _human_only_variance(results)
    var = np.diag(np.asarray(results.cov_params()))
    effective_n = pd.Series(data.n_labeled * var_human / var, index=names, name="effective n")

    reduction = {}
    for source in data.sources if per_source else ():
        alone = results if len(data.sources) == 1 else _refit(results, (source,))
        reduction[source.name] = 1 - np.diag(np.asarray(alone.cov_params())) / var_human
    reduction["all"] = 1 - var / var_human
    variance_reduction = pd.DataFrame(reduction, index=names)

    scores = model.scores_at(results.params_full)
    human = scores.target
    correlation = {}
    for source_scores in scores.sources:
        source, evaluation = source_scores.source, source_scores.evaluation
        if human.residual() is not None and evaluation.residual() is not None:
            # the mean over a unit's samples
            unit_residual = source.unit_sums(evaluation.residual())[data.labeled_pos]
            correlation[source.name] = float(np.corrcoef(human.residual(), unit_residual)[0, 1])
        else:
            # no scalar residual: the mean correlation of the paired score columns
            human_scores = human.values()
            unit_scores = source.unit_sums(evaluation.values())[data.labeled_pos]
            correlation[source.name] = float(np.nanmean([
                np.corrcoef(human_scores[:, j], unit_scores[:, j])[0, 1] for j in range(human_scores.shape[1])
            ]))
    residual_correlation = pd.Series(correlation, name="residual correlation", dtype=float)

    jval, pval, df = results.jtest()
    notes = []
    per_moment = data.n_labeled / model.nmoms
    if per_moment < MIN_LABELED_PER_MOMENT:
        notes.append(
            f"only {per_moment:.1f} labeled units per moment condition ({data.n_labeled} for "
            f"{model.nmoms}); the estimated weight matrix is noisy and intervals may under-cover. "
            f"Use fewer sources or terms, or label more units."
        )
    s = results.moment_covariance
    scale = np.sqrt(np.clip(np.diag(s), np.finfo(float).tiny, None))
    condition = np.linalg.cond(s / np.outer(scale, scale))
    if condition > 1e10:
        notes.append(
            f"the moment covariance S is nearly singular (condition number {condition:.3g}): "
            f"some sources carry almost the same information; the weight matrix is unstable."
        )
    return Diagnostics(
        effective_n=effective_n,
        variance_reduction=variance_reduction,
        residual_correlation=residual_correlation,
        jtest=(jval, pval, df),
        j_reading=_j_reading(jval, pval, df),
        warnings=notes,
    )
