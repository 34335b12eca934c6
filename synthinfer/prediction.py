"""Predictions of the target coefficients through the learned formula (statsmodels' ``predict``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .exceptions import SpecificationError

__all__ = ["predict", "fittedvalues", "resid"]


def _target_params(results: Any) -> np.ndarray:
    p = len(results.model.model_data.param_names)
    return np.asarray(results.params, dtype=float)[:p]


def _labeled_design(results: Any) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    data = results.model.model_data
    return data.X, data.y, data.unit_ids[data.labeled_pos]


def predict(results: Any, exog: pd.DataFrame | None = None, transform: bool = True, which: str = "mean") -> pd.Series:
    """Predicted mean (or linear index) of the target model.

    Parameters
    ----------
    results : results object
        A fitted synthinfer results object.
    exog : DataFrame, optional
        New data holding the formula's right-hand-side variables; it goes
        through the formula learned at fit time (categories, spline knots).
        None: the labeled units, so ``predict()`` equals ``fittedvalues``.
    transform : bool
        Accepted as in statsmodels; a DataFrame always goes through the formula.
    which : {"mean", "linear"}
        The mean ``mu(x'b)`` or the linear index ``x'b``.

    Returns
    -------
    Series
        Indexed as ``exog`` (or by labeled unit).
    """
    if which not in ("mean", "linear"):
        raise ValueError(f"which must be 'mean' or 'linear', got {which!r}")
    family = results.model.family
    if exog is None:
        X, _, index = _labeled_design(results)
    else:
        if not isinstance(exog, pd.DataFrame):
            raise SpecificationError("predict: exog must be a DataFrame with the formula's variables")
        X = _design(results, exog)
        index = exog.index
    lin = X @ _target_params(results)
    if which == "linear":
        return pd.Series(lin, index=index)
    if not hasattr(family, "mean"):
        raise SpecificationError(f"predict: the {type(family).__name__} family has no mean function; use which='linear'")
    return pd.Series(family.mean(lin), index=index)


def _design(results: Any, exog: pd.DataFrame) -> np.ndarray:
    spec = results.model.model_data.spec
    outcome = spec.outcome_name
    frame = exog if outcome in exog.columns else exog.assign(**{outcome: 0.0})
    return spec.apply(frame, "exog")[1]


def fittedvalues(results: Any) -> pd.Series:
    """Predicted means on the labeled units, indexed by unit."""
    return predict(results)


def resid(results: Any) -> pd.Series:
    """Outcome minus fitted mean on the labeled units, indexed by unit."""
    _, y, index = _labeled_design(results)
    return pd.Series(y, index=index) - fittedvalues(results)
