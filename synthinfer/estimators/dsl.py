"""DSL: design-based supervised learning (Egami, Hinck, Stewart and Wei, 2023).

Follows the moment of the R package ``dsl`` (``lm_dsl_moment_base``):
``m_i = m_pred_i + R_i / pi_i (m_orig_i - m_pred_i)`` with the covariates
observed for every unit, which is the regression of the doubly robust
pseudo-outcome ``Ytilde = Yhat + R / pi (Y - Yhat)`` on the covariates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..data import FrameArg, ModelData
from ..exceptions import SpecificationError
from ..families import OLS, Family
from ..formula import capture_namespace
from ..options import Engine
from .base import BaselineModel, BaselineResultsWrapper, sandwich
from .ppi import _unit_labeling_prob

__all__ = ["DSL"]


class DSL(BaselineModel):
    """DSL for OLS with one proxy row per unit and known labeling probabilities.

    Parameters
    ----------
    folds : int
        Cross-fitting folds over all units; the outcome model (a linear
        regression of the human outcome on the covariates and the LLM's
        annotation) is fitted on the labeled units outside each fold.
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
        if not isinstance(self.family, OLS):
            raise SpecificationError(f"dsl is implemented for model='ols' only, got {self.family.name!r}")
        if len(data.sources) != 1 or data.sources[0].kind != "proxy" or not data.sources[0].one_row_per_unit:
            raise SpecificationError("dsl takes exactly one proxy= frame with one row per unit")
        if not (isinstance(folds, int) and folds >= 2):
            raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
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

    def fit(self) -> BaselineResultsWrapper:
        """DSL estimate with the sandwich covariance of its moment (normal inference)."""
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
        pseudo = y_hat + weight * (y - y_hat)
        N = len(y)
        bread = X.T @ X / N
        params = np.linalg.solve(bread, X.T @ pseudo / N)
        moments = X * (pseudo - X @ params)[:, None]
        cov = sandwich(bread, moments.T @ moments / N) / N
        return self._results(params, cov, folds=self.folds, pseudo_outcome=pseudo, fold=fold)

    def summary_notes(self, results: Any) -> list[str]:
        return [
            f"DSL: regression of Yhat + R/pi (Y - Yhat) on the covariates; Yhat cross-fitted "
            f"in {self.folds} folds from the covariates and {self.source.name!r}'s annotation."
        ]
