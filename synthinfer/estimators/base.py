"""What the baselines share: a model on `ModelData` that computes params and a
sandwich covariance directly, and its results (normal inference, summary)."""

from __future__ import annotations

from typing import Any

import numpy as np
from statsmodels.base import wrapper as wrap
from statsmodels.base.model import LikelihoodModelResults, Model

from ..data import ModelData
from ..families import Family
from ..fit_keywords import carry_statsmodels_keywords
from ..model import ModelBase
from ..results import ReportingMixin, ResultsWrapper

__all__ = ["BaselineModel", "BaselineResults", "BaselineResultsWrapper", "sandwich"]


class BaselineModel(ModelBase, Model):
    """A model on ``ModelData`` whose ``fit`` computes params and a covariance directly.

    Every subclass's ``fit`` takes statsmodels' ``use_t`` (honoured), ``maxiter``,
    ``method``, ``disp`` and the other output keywords, see
    `synthinfer.fit_keywords.carry_statsmodels_keywords`.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # one place gives every baseline statsmodels' fit keywords, whatever its own fit takes
        if "fit" in cls.__dict__:
            cls.fit = carry_statsmodels_keywords(cls.__dict__["fit"])

    def inference_rows(self) -> int:
        """The independent observations behind the fit; ``fit(use_t=True)`` uses t(rows - p)."""
        return int(self.model_data.n_labeled)

    def __init__(self, data: ModelData, model: str | Family = "ols", formula: str | None = None):
        endog, exog = self._set_data(data, model, formula)
        super().__init__(endog, exog)
        self._set_counts()

    def _results(self, params: np.ndarray, cov: np.ndarray, **attrs: Any) -> BaselineResultsWrapper:
        results = BaselineResults(self, params, cov, **attrs)
        return BaselineResultsWrapper(results)

    def summary_rows(self, results: BaselineResults) -> list:
        """Rows this estimator adds to the summary's right header column."""
        return []

    def summary_notes(self, results: BaselineResults) -> list[str]:
        """Notes this estimator adds below the summary's table."""
        return []


def sandwich(bread: np.ndarray, meat: np.ndarray) -> np.ndarray:
    """``bread^-1 meat bread^-T``."""
    inverse = np.linalg.inv(bread)
    return inverse @ meat @ inverse.T


class BaselineResults(ReportingMixin, LikelihoodModelResults):
    """Results of a baseline: ``params`` and a sandwich covariance, normal inference."""

    def __init__(self, model: BaselineModel, params: np.ndarray, cov: np.ndarray, **attrs: Any) -> None:
        super().__init__(model, params, normalized_cov_params=cov, scale=1.0)
        self.nobs = model.nobs
        self.n_labeled = model.n_labeled
        self.df_resid = np.inf
        self.use_t = False
        self.cov_type = "HC0"
        self.cov_kwds: dict[str, Any] = {}
        self.small_sample_df: float | None = None
        # setattr, not __dict__.update: statsmodels' use_t is a property
        for name, value in attrs.items():
            setattr(self, name, value)

    def _summary_top(self) -> tuple[list, list]:
        right: list = [("Covariance Type:", [self.cov_type])]
        return [], right + self.model.summary_rows(self)

    def _summary_notes(self) -> list[str]:
        if self.small_sample_df is not None and not self.use_t:
            notes = [
                f"Standard errors are robust (sandwich) with the small-sample covariance factor "
                f"{self.small_sample_factor:.3f}; inference is normal (z), as fit(use_t=False) asks."
            ]
        elif self.use_t and self.small_sample_df is None:
            notes = [
                f"Standard errors are robust (sandwich); inference uses t({self.df_resid:.4g}), "
                f"as fit(use_t=True) asks."
            ]
        elif self.small_sample_df is not None:
            notes = [
                f"Standard errors are robust (sandwich) with the small-sample correction: "
                f"covariance x {getattr(self, 'small_sample_label', 'n/(n - p - tuned lambda)')} = "
                f"{self.small_sample_factor:.3f} and a "
                f"t({self.small_sample_df:.4g}) reference; fit(correction=None) gives normal inference."
            ]
        else:
            notes = ["Standard errors are robust (sandwich); inference is normal (z)."]
        if self.model.family.jacobian_note:
            notes.append(self.model.family.jacobian_note)
        return notes + self.model.summary_notes(self)


class BaselineResultsWrapper(ResultsWrapper):
    pass


wrap.populate_wrapper(BaselineResultsWrapper, BaselineResults)
