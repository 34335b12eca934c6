"""What every synthinfer model shares: the validated data, the family and the names.

statsmodels' machinery (results wrappers, ``t_test`` / ``wald_test`` with
string constraints) reads names from ``model.data``; every synthinfer model
therefore hands statsmodels the human-labeled outcome and design, named by
design column, while the estimator itself works on ``ModelData``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pandas as pd

from .data import FrameArg, ModelData, build_model_data
from .families import Family, get_family
from .layout import MomentLayout

__all__ = ["ModelBase"]


class ModelBase:
    """Mixin for statsmodels ``Model`` subclasses built on ``ModelData``."""

    def _set_data(self, data: ModelData, model: str | Family, formula: str | None) -> tuple[pd.Series, pd.DataFrame]:
        """Store the data and names; return the (endog, exog) statsmodels' Model wants."""
        self.family = get_family(model)
        self.family.check_design(data.param_names)
        self.model_data = data
        self.formula = formula
        p = len(data.param_names)
        self.layout = MomentLayout.of(
            self.family.param_names(data.param_names), [s.name for s in data.sources],
            q=self.family.n_moments(p),
        )
        endog = pd.Series(data.y, index=data.real_index, name=data.spec.outcome_name)
        exog = pd.DataFrame(data.X, index=data.real_index, columns=data.param_names)
        return endog, exog

    def _set_counts(self) -> None:
        """N, n and the names; after statsmodels' ``__init__``, which sets ``nobs`` to n."""
        data = self.model_data
        self.nobs = data.n_units
        self.n_labeled = data.n_labeled
        self.k_target = self.layout.k
        if list(self.layout.target_names) != list(data.param_names):
            # the parameters are not the design columns (user moments): name them
            self.data.param_names = list(self.layout.target_names)  # type: ignore[attr-defined]
        self.unit_ids = data.unit_ids
        self.source_names = [s.name for s in data.sources]

    @property
    def exog_names(self) -> list[str]:
        """The target parameters' names (the design columns, unless the family names its own)."""
        return list(self.layout.target_names)

    @classmethod
    def _from_frames(
        cls,
        formula: str,
        real: pd.DataFrame,
        proxy: FrameArg,
        synth: FrameArg,
        model: str | Family,
        engine: str | None,
        namespace: Mapping[str, Any],
        **kwds: Any,
    ) -> Any:
        # a copy: a family may learn from the frames (mnlogit's classes)
        family = copy.copy(get_family(model))
        data = build_model_data(formula, real, proxy, synth, family, engine, namespace)
        # survey weights belong to the data, whatever the estimator: every model
        # reads them from ``ModelData.unit_weight`` / ``labeled_weight``
        weights = kwds.pop("weights", None)
        if weights is not None:
            data = data.with_weights(weights)
        return cls(data, family, formula=formula, **kwds)  # type: ignore[call-arg]
