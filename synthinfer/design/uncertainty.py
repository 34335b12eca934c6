"""How far the human label is expected to be from the LLM's: ``e_i = E[(y_i - f_i)^2 | data]``.

The variance-optimal labeling probability of a unit is proportional to
``sqrt(e_i)`` times the size of its influence direction. ``e_i`` is modelled
from what is known before labeling:

- ``"pilot"``: what remains of the human residual once the LLM's residual
  has been used as a control variate, as the estimators that combine them do:
  on the pilot, ``r_i = (y_i - mu(x_i'theta)) - b (f_i - mu(x_i'eta))`` with
  theta the family fitted to the pilot's human labels, eta to the LLM's
  outcome on every unit and b the pilot's least-squares slope of the first
  residual on the second (b = 1 and theta = eta give the plain disagreement
  ``y - f``; a useless LLM gives b = 0 and the human residual, so the design
  falls back to the optimal design for the human-only fit). ``r_i^2`` is
  regressed log-linearly (quasi-Poisson) on the LLM's outcome, its
  confidence (and its square, and their interactions with a binary outcome),
  the formula's covariates and, with synthetic data, the unit's mean
  synthetic outcome and its distance to ``f``. Its ridge penalty is chosen
  by 5-fold cross-validation on the pilot (one-standard-error rule), and "no
  model" (every unit alike) competes: when the features do not clearly predict
  held-out pilot residuals better than their mean (a useless LLM, or a pilot too small to learn from), the
  design uses the influence directions alone instead of adding noise to the
  weights.
- ``"confidence"``: the documented default without a pilot, for a binary label
  with the LLM's confidence ``c_i`` in it: ``P(human != LLM) = 1 - c_i``, which
  is exact when the confidence is calibrated.
- ``"constant"``: ``e_i = 1``: the design follows the influence directions only
  (a covariate design; optimal when the LLM's errors are the same everywhere).
- an array or Series by unit id of ``e_i >= 0`` the user computed beforehand.

A floor of ``EFLOOR`` times the mean keeps a unit the model deems certain from
depending on the uniform mixture alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import DesignError, describe_units

__all__ = [
    "EFLOOR", "PENALTIES", "disagreement_features", "fit_disagreement", "pilot_residual", "user_uncertainty",
]

#: relative floor of the modelled squared disagreement
EFLOOR = 0.02
#: ridge penalties per pilot unit (standardized features) that cross-validation chooses from
PENALTIES = (1e-3, 1e-2, 1e-1, 1.0)


def disagreement_features(
    f: np.ndarray, X: np.ndarray, confidence: np.ndarray | None, synth_mean: np.ndarray | None,
    binary: bool,
) -> np.ndarray:
    """The design of the disagreement model for every unit (no constant column)."""
    columns = [X[:, j] for j in range(X.shape[1]) if np.ptp(X[:, j]) > 0]
    columns.append(f)
    if confidence is not None:
        columns += [confidence, confidence**2]
        if binary:
            columns += [f * confidence, f * confidence**2]
    if synth_mean is not None:
        columns += [synth_mean, np.abs(synth_mean - f)]
    return np.column_stack(columns)


def _ridge_glm(Z: np.ndarray, target: np.ndarray, link: str, penalty: float) -> np.ndarray:
    """Newton for a ridge-penalised logistic or log-linear regression; returns coefficients."""
    n, k = Z.shape
    beta = np.zeros(k)
    mean = target.mean()
    beta[0] = np.log(mean / (1 - mean)) if link == "logit" else np.log(mean)
    penal = np.full(k, penalty * n)
    penal[0] = 0.0
    for _ in range(100):
        lin = np.clip(Z @ beta, -30, 30)
        if link == "logit":
            mu = 1.0 / (1.0 + np.exp(-lin))
            w = mu * (1.0 - mu)
        else:
            mu = np.exp(lin)
            w = mu
        gradient = Z.T @ (target - mu) - penal * beta
        hessian = (Z * w[:, None]).T @ Z + np.diag(penal)
        step = np.linalg.solve(hessian + 1e-12 * np.eye(k), gradient)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-9 * (1 + np.max(np.abs(beta))):
            break
    return beta


def _poisson_deviance(target: np.ndarray, mean: np.ndarray) -> float:
    ratio = np.where(target > 0, target / mean, 1.0)
    return float(2 * np.sum(np.where(target > 0, target * np.log(ratio), 0.0) - (target - mean)))


def _cv_penalty(Z: np.ndarray, target: np.ndarray) -> float | None:
    """The ridge penalty (per pilot unit) with the least 5-fold cross-validated deviance.

    ``None`` (an infinite penalty: every unit alike) competes too, and the
    simplest candidate within one standard error of the best is taken (the
    one-standard-error rule), so a model that does not clearly predict
    held-out pilot units better than their mean is not used: a noisy
    disagreement model only adds variance to the weights.
    """
    n = len(target)
    if n < 10:
        return None
    folds = np.random.default_rng(0).permutation(n) % 5  # deterministic: same pilot, same design
    # from the simplest (no model) to the most flexible
    candidates: list[float | None] = [None, *sorted(PENALTIES, reverse=True)]
    per_fold = np.zeros((len(candidates), 5))
    for c, penalty in enumerate(candidates):
        for k in range(5):
            train, test = folds != k, folds == k
            if penalty is None or not np.any(target[train] > 0):
                mean = np.full(test.sum(), max(target[train].mean(), 1e-12))
            else:
                beta = _ridge_glm(Z[train], target[train], "log", penalty)
                mean = np.exp(np.clip(Z[test] @ beta, -30, 30))
            per_fold[c, k] = _poisson_deviance(target[test], mean)
    totals = per_fold.sum(axis=1)
    best = int(np.argmin(totals))
    # the one-standard-error rule: the simplest candidate within one standard error
    # of the best (the error of the best's total over the folds)
    se = float(np.sqrt(5 * per_fold[best].var(ddof=1)))
    chosen = next(c for c in range(len(candidates)) if totals[c] <= totals[best] + se)
    return candidates[chosen]


def fit_disagreement(features: np.ndarray, pilot_pos: np.ndarray, squared: np.ndarray) -> np.ndarray:
    """Fit the pilot's squared residuals on the features (log-linear); predict every unit's.

    The ridge penalty is chosen by 5-fold cross-validation on the pilot among
    `PENALTIES` and "no model" (every unit alike); see `_cv_penalty`.
    """
    if len(pilot_pos) < 2 or not np.any(squared > 0):
        # nothing to learn from (no residual observed): every unit alike
        return np.ones(len(features))
    center = features[pilot_pos].mean(axis=0)
    spread = features[pilot_pos].std(axis=0)
    keep = spread > 0
    Z = (features[:, keep] - center[keep]) / spread[keep]
    Z = np.column_stack([np.ones(len(Z)), Z])
    penalty = _cv_penalty(Z[pilot_pos], squared)
    if penalty is None:
        return np.ones(len(features))
    beta = _ridge_glm(Z[pilot_pos], squared, "log", penalty)
    return _floored(np.exp(np.clip(Z @ beta, -30, 30)))


def pilot_residual(y: np.ndarray, human_mean: np.ndarray, f: np.ndarray, llm_mean: np.ndarray) -> np.ndarray:
    """The human residual net of its least-squares prediction from the LLM's residual."""
    human, llm = y - human_mean, f - llm_mean
    denominator = float(llm @ llm)
    b = float(human @ llm) / denominator if denominator > 0 else 0.0
    return human - b * llm


def _floored(e: np.ndarray) -> np.ndarray:
    return np.maximum(e, EFLOOR * e.mean())


def confidence_uncertainty(confidence: np.ndarray) -> np.ndarray:
    """``1 - c``: the probability of a wrong binary label at calibrated confidence c."""
    return _floored(np.clip(1.0 - confidence, 0.0, 1.0))


def user_uncertainty(values: Any, units: pd.Index) -> np.ndarray:
    """A user's ``e_i`` (array in unit order, or Series by unit id), validated."""
    if isinstance(values, pd.Series):
        missing = units.difference(values.index)
        if len(missing) or not values.index.is_unique:
            raise DesignError(
                f"uncertainty must have one value per unit (a unique index covering every "
                f"unit); missing for units {describe_units(missing)}"
            )
        values = values.reindex(units).to_numpy()
    e = np.asarray(values, dtype=float).ravel()
    if len(e) != len(units):
        raise DesignError(
            f"uncertainty as an array must have one value per unit ({len(units)}), got {len(e)}"
        )
    bad = ~np.isfinite(e) | (e < 0)
    if bad.any():
        raise DesignError(
            f"uncertainty (expected squared disagreement) must be finite and >= 0, but is not "
            f"for unit(s) {describe_units(units[bad])}"
        )
    return e
