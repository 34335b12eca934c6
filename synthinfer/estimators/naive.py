"""Naive pooling: auxiliary rows treated as human data (biased; shown for contrast)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..data import FrameArg
from ..exceptions import SpecificationError
from ..families import Family
from ..fit_keywords import check_fit_keywords
from ..formula import capture_namespace
from ..options import Engine
from .base import BaselineModel, BaselineResults, BaselineResultsWrapper, sandwich

__all__ = ["Naive"]


class Naive(BaselineModel):
    """Pool the auxiliary rows with the human rows as if all were human data.

    Rows: every human-labeled row; for a proxy source, the rows of the units
    that are not labeled (a labeled unit keeps its human label); for a
    synthetic source, every synthetic row. Each row is an observation with
    weight 1 and the covariance is HC0 over rows. This is the biased practice
    the other estimators correct, shown for contrast.
    """

    estimator_label = "Naive pooling"
    # its standard error counts LLM rows as human labels: no human-label equivalent
    reports_effective_n = False

    @classmethod
    def from_formula(
        cls,
        formula: str,
        real: pd.DataFrame,
        proxy: FrameArg = None,
        synth: FrameArg = None,
        model: str | Family = "ols",
        *,
        engine: Engine | None = None,
        eval_env: int | Mapping[str, Any] = 0,
        weights: Any = None,
    ) -> Naive:
        """Create the model; ``weights`` are survey weights, as in ``GMMSynth.from_formula``.

        A pooled row's weight is its unit's survey weight w_i (every synthetic
        row of a unit included).
        """
        namespace = eval_env if isinstance(eval_env, Mapping) else capture_namespace(eval_env + 1)
        return cls._from_frames(formula, real, proxy, synth, model, engine, namespace, weights=weights)

    def pooled_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The stacked (X, y) the naive fit treats as human data."""
        X, y, _ = self._pooled()
        return X, y

    def _pooled(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The pooled (X, y) and each row's survey weight (None without weights)."""
        data = self.model_data
        labeled = np.zeros(data.n_units, dtype=bool)
        labeled[data.labeled_pos] = True
        Xs, ys = [data.X], [data.y]
        unit_weight = data.unit_weight
        ws = [] if unit_weight is None else [unit_weight[data.labeled_pos]]
        for source in data.sources:
            rows = ~labeled[source.unit_pos] if source.kind == "proxy" else slice(None)
            Xs.append(source.X[rows])
            ys.append(source.y[rows])
            if unit_weight is not None:
                ws.append(unit_weight[source.unit_pos[rows]])
        return np.vstack(Xs), np.concatenate(ys), None if unit_weight is None else np.concatenate(ws)

    def fit(self, method: str | None = None, **kwargs: Any) -> BaselineResultsWrapper:
        """Fit on the pooled rows; HC0 covariance over rows.

        Parameters
        ----------
        method : {None, "newton", "gauss-newton"}
            statsmodels' optimiser keyword, accepted for drop-in use; any other
            name raises ValueError.
        **kwargs
            statsmodels' ``disp``, ``full_output``, ``callback``, ``retall`` and
            ``skip_hessian`` are accepted and ignored; anything else raises TypeError.
        """
        check_fit_keywords(type(self).__name__, method, kwargs)
        pooled = getattr(self.model_data, "pooled_rows", None)
        if pooled is not None:
            # auxiliary rows in partitions (Dask sources): the same sums, taken there
            if getattr(self.model_data, "unit_weight", None) is not None:
                raise SpecificationError("weights= is not supported with Dask sources yet")
            rows = pooled()
            params = rows.solve(self.family, names=self.model_data.param_names, frame="pooled rows").params
            evaluation = rows.evaluate(self.family, params)
            cov = sandwich(-evaluation.jacobian(), evaluation.score_gram())
            return self._results(params, cov, n_rows=rows.n_rows)
        X, y, w = self._pooled()
        params = self.family.solve(X, y, w, names=self.model_data.param_names, frame="pooled rows").params
        evaluation = self.family.evaluate(X, y, params)
        scores = evaluation.values() if w is None else evaluation.values() * w[:, None]
        cov = sandwich(-evaluation.jacobian(w), scores.T @ scores)
        return self._results(params, cov, n_rows=len(y))

    def inference_rows(self) -> int:
        """The pooled rows: the naive fit treats each as an independent observation."""
        pooled = getattr(self.model_data, "pooled_rows", None)
        if pooled is not None:  # rows in partitions (Dask sources)
            return int(pooled().n_rows)
        return len(self._pooled()[1])

    def summary_rows(self, results: BaselineResults) -> list:
        return [("Pooled rows:", [f"{results.n_rows}"])]

    def summary_notes(self, results: BaselineResults) -> list[str]:
        return [
            "Naive pooling treats LLM-generated rows as human data. It is biased "
            "whenever the LLM errs and its intervals are not valid; shown for contrast."
        ]
