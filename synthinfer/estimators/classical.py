"""The human-only fit: the model family on the labeled units (GMM with no auxiliary source)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..families import Family
from ..formula import capture_namespace
from ..gmm import GMMSynth
from ..options import Engine

__all__ = ["Classical"]


class Classical(GMMSynth):
    """The human-only fit: the model family on the labeled units, HC0 or cluster covariance."""

    @classmethod
    def from_formula(  # type: ignore[override]
        cls,
        formula: str,
        real: pd.DataFrame,
        model: str | Family = "ols",
        *,
        engine: Engine | None = None,
        eval_env: int | Mapping[str, Any] = 0,
        labeling_prob: Any = None,
        weights: Any = None,
    ) -> Classical:
        """As ``GMMSynth.from_formula`` with the human-labeled frame only.

        With ``labeling_prob`` it is the inverse-probability-weighted estimate;
        with survey ``weights`` (a column of ``real``, a Series by unit id or an
        array in ``real``'s row order) it is statsmodels' ``WLS(weights=w)`` or
        ``GLM(var_weights=w)`` with HC0 covariance (``fit(correction=None)``).
        """
        namespace = eval_env if isinstance(eval_env, Mapping) else capture_namespace(eval_env + 1)
        return super().from_formula(
            formula, real, None, None, model, engine=engine, eval_env=namespace,
            labeling_prob=labeling_prob, weights=weights,
        )

    @property
    def estimator_label(self) -> str:
        return "Classical"
