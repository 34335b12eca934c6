"""DSL: design-based supervised learning (Egami, Hinck, Stewart and Wei, 2023).

Follows the moments of the R package ``dsl`` (``lm_dsl_moment_base`` and
``logit_dsl_moment_base``): ``m_i = m_pred_i + R_i / pi_i (m_orig_i - m_pred_i)``
with the covariates observed for every unit, which is the model's score with
the doubly robust pseudo-outcome ``Ytilde = Yhat + R / pi (Y - Yhat)`` in place
of the outcome: for OLS ``x (Ytilde - x'b)``, for the logit ``x (Ytilde - expit(x'b))``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..data import FrameArg, ModelData
from ..exceptions import SpecificationError
from ..families import Family
from ..families.glm import GLMFamily
from ..formula import capture_namespace
from ..options import Engine
from .base import BaselineModel, BaselineResultsWrapper, sandwich
from .ppi import _unit_labeling_prob

__all__ = ["DSL", "DSL_MODELS"]

#: The models of ``smf.dsl`` (the R package's "lm" and "logit").
DSL_MODELS = ("ols", "logit")


class DSL(BaselineModel):
    """DSL for OLS or logit with one proxy row per unit and known labeling probabilities.

    The estimate solves ``1/N sum_i x_i (Ytilde_i - mu(x_i'b)) = 0`` over all N
    units (mu the identity for OLS, expit for the logit), the R package's
    moment ``m_pred + R/pi (m_orig - m_pred)`` with the same covariates in both.
    For the logit ``Ytilde`` may leave [0, 1]; the equation is the Bernoulli
    quasi-score, still strictly concave, as in the R package. Its covariance is
    the sandwich ``J^-1 M J^-1 / N`` with ``J = X' diag(mu') X / N`` and
    ``M = sum_i m_i m_i' / N`` (uncentred), the R package's, with normal inference.

    Parameters
    ----------
    folds : int
        Cross-fitting folds over all units; the outcome model (a linear
        regression of the human outcome on the covariates and the LLM's
        annotation; for the logit a linear probability model, as the R
        package's default learner is a regression forest, not a classifier)
        is fitted on the labeled units outside each fold.
    seed : int
        Seed of the random fold assignment.
    """

    estimator_label = "DSL"

    def __init__(
        self,
        data: ModelData,
        model: str | Family = "ols",
        formula: str | None = None,
        labeling_prob: Any = None,
        folds: int = 5,
        seed: int = 0,
    ):
        super().__init__(data, model, formula)
        if self.family.name not in DSL_MODELS:
            raise SpecificationError(
                f"dsl is implemented for model='ols' and model='logit' (the R package's lm and "
                f"logit), got {self.family.name!r}"
            )
        if len(data.sources) != 1 or data.sources[0].kind != "proxy" or not data.sources[0].one_row_per_unit:
            raise SpecificationError("dsl takes exactly one proxy= frame with one row per unit")
        if not (isinstance(folds, int) and folds >= 2):
            raise SpecificationError(f"dsl: folds must be an integer >= 2, got {folds!r}")
        self.source = data.sources[0]
        self.folds, self.seed = folds, seed
        labeled = np.zeros(data.n_units, dtype=bool)
        labeled[data.labeled_pos] = True
        self._labeled = labeled
        if labeling_prob is None:
            self.labeling_prob = np.full(data.n_units, data.n_labeled / data.n_units)
        else:
            self.labeling_prob = _unit_labeling_prob(data, labeling_prob, labeled)
            if (self.labeling_prob[labeled] <= 0).any():
                raise SpecificationError("dsl needs labeling probabilities > 0 on labeled units")

    @classmethod
    def from_formula(
        cls,
        formula: str,
        real: pd.DataFrame,
        proxy: FrameArg = None,
        model: str | Family = "ols",
        *,
        labeling_prob: Any = None,
        folds: int = 5,
        seed: int = 0,
        engine: Engine | None = None,
        eval_env: int | Mapping[str, Any] = 0,
    ) -> DSL:
        """Create the model from a formula, the real frame and the proxy frame (all units)."""
        namespace = eval_env if isinstance(eval_env, Mapping) else capture_namespace(eval_env + 1)
        if proxy is None:
            raise SpecificationError("dsl needs proxy=: the LLM's annotation of every unit")
        return cls._from_frames(
            formula, real, proxy, None, model, engine, namespace,
            labeling_prob=labeling_prob, folds=folds, seed=seed,
        )

    def design(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per unit: covariates X, annotation, human outcome (0 where unlabeled), fold."""
        data, source = self.model_data, self.source
        X = np.empty_like(source.X)
        X[source.unit_pos] = source.X
        annotation = np.empty(data.n_units)
        annotation[source.unit_pos] = source.y
        y = np.zeros(data.n_units)
        y[data.labeled_pos] = data.y
        rng = np.random.default_rng(self.seed)
        fold = rng.permutation(np.arange(data.n_units) % self.folds)
        return X, annotation, y, fold

    def pseudo_outcome(self) -> tuple[np.ndarray, np.ndarray]:
        """``Ytilde = Yhat + R/pi (Y - Yhat)`` per unit, with ``Yhat`` cross-fitted; and the folds."""
        X, annotation, y, fold = self.design()
        labeled, pi = self._labeled, self.labeling_prob
        features = np.column_stack([X, annotation])
        y_hat = np.empty(len(y))
        for k in range(self.folds):
            train = labeled & (fold != k)
            if train.sum() <= features.shape[1]:
                raise SpecificationError(
                    f"dsl fold {k} has {int(train.sum())} labeled training units for "
                    f"{features.shape[1]} outcome-model features: use fewer folds"
                )
            coef = np.linalg.lstsq(features[train], y[train], rcond=None)[0]
            y_hat[fold == k] = features[fold == k] @ coef
        weight = np.where(labeled, 1.0 / np.where(labeled, pi, 1.0), 0.0)
        return y_hat + weight * (y - y_hat), fold

    def fit(self) -> BaselineResultsWrapper:
        """DSL estimate with the sandwich covariance of its moment (normal inference)."""
        pseudo, fold = self.pseudo_outcome()
        X = self.design()[0]
        N = len(pseudo)
        if self.family.name == "ols":
            bread = X.T @ X / N
            params = np.linalg.solve(bread, X.T @ pseudo / N)
            residual = pseudo - X @ params
        else:
            # the model's own Newton solver on the pseudo-outcome: Ytilde enters the score
            # linearly, so the quasi-likelihood stays concave even where Ytilde leaves [0, 1]
            names = self.model_data.param_names
            solution = self.family.solve(X, pseudo, None, names=names, frame="dsl pseudo-outcome", tol=1e-10)
            params = solution.params
            evaluation = self.family.evaluate(X, pseudo, params)
            bread = -evaluation.jacobian() / N
            family = self.family
            if not isinstance(family, GLMFamily):  # from_formula admits ols and logit only
                raise SpecificationError(f"dsl has no mean function for model {family.name!r}")
            residual = pseudo - family.mean(X @ params)
        moments = X * residual[:, None]
        cov = sandwich(bread, moments.T @ moments / N) / N
        return self._results(params, cov, folds=self.folds, pseudo_outcome=pseudo, fold=fold)

    def summary_notes(self, results: Any) -> list[str]:
        return [
            f"DSL: {self.family.label} score with the pseudo-outcome Yhat + R/pi (Y - Yhat); Yhat "
            f"cross-fitted in {self.folds} folds by a linear regression on the covariates and "
            f"{self.source.name!r}'s annotation."
        ]
