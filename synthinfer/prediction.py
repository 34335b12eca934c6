"""Predictions of the target coefficients through the learned formula (statsmodels' ``predict``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from .data import as_pandas
from .exceptions import SpecificationError

__all__ = ["predict", "fittedvalues", "resid", "design_matrix", "index_coefficients", "mean_functions"]


def _check_index_family(results: Any) -> int:
    """p, the design's width, for a family whose first p parameters are the
    design's coefficients (a single linear index); anything else raises."""
    data = results.model.model_data
    columns = list(data.param_names)
    family = results.model.family
    if list(family.param_names(columns))[: len(columns)] != columns:
        raise SpecificationError(
            f"predictions and marginal effects need a single linear index x'b, but the {family.label} model's "
            f"parameters {list(family.param_names(columns))[:4]}... are not one coefficient "
            f"per design column {columns}"
        )
    return len(columns)


def index_coefficients(results: Any) -> np.ndarray:
    """The coefficients b of the linear index ``x'b``: the first p target parameters."""
    p = _check_index_family(results)
    return np.asarray(results.params, dtype=float)[:p]


def mean_functions(results: Any) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    """The family's mean ``mu(lin)`` and its slope ``d mu / d lin``, or a
    SpecificationError for a family without a mean function (quantile, user moments)."""
    family = results.model.family
    mean, slope = getattr(family, "mean", None), getattr(family, "mean_deriv", None)
    if mean is None or slope is None:
        raise SpecificationError(
            f"the {family.label} model has no mean function mu(x'b); use which='linear'"
        )
    return mean, slope


def _labeled_design(results: Any) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    data = results.model.model_data
    return data.X, data.y, data.unit_ids[data.labeled_pos]


def design_matrix(results: Any, exog: Any = None, transform: bool = True) -> tuple[np.ndarray, pd.Index]:
    """The design rows to predict at and their labels.

    Parameters
    ----------
    results : results object
        A fitted synthinfer results object.
    exog : DataFrame, mapping, array or None
        None: the labeled units' design. ``transform=True``: a frame (pandas,
        polars or a mapping of columns) with the formula's right-hand-side
        variables, which goes through the formula learned at fit time.
        ``transform=False``: the design matrix itself, one column per design
        column (a DataFrame with the design's column names, or an array in the
        design's column order; a 1-d array is one row).
    transform : bool
        As statsmodels' ``transform``.

    Returns
    -------
    (ndarray, Index)
        The (rows, p) design and the row labels (the frame's index, the
        labeled units, or 0..rows-1 for an array).
    """
    p = _check_index_family(results)
    if exog is None:
        X, _, index = _labeled_design(results)
        return X, index
    names = list(results.model.model_data.param_names)
    if not transform:
        if isinstance(exog, pd.DataFrame):
            missing = [c for c in names if c not in exog.columns]
            if missing or len(exog.columns) != len(names):
                raise SpecificationError(
                    f"transform=False takes the design matrix: its columns must be the design's "
                    f"{names}, got {list(exog.columns)} (an array is read in the design's column order)"
                )
            return exog[names].to_numpy(dtype=float), exog.index
        X = np.asarray(exog, dtype=float)
        X = X[None, :] if X.ndim == 1 else X
        if X.ndim != 2 or X.shape[1] != p:
            raise SpecificationError(
                f"transform=False takes the design matrix with {p} columns {names}, got shape {np.shape(exog)}"
            )
        return X, pd.RangeIndex(len(X))
    if type(exog).__module__.split(".")[0] == "polars":
        exog = _polars_rows(exog)
    if isinstance(exog, Mapping):
        exog = pd.DataFrame(dict(exog))
    if not isinstance(exog, pd.DataFrame):
        raise SpecificationError(
            f"exog must be a DataFrame (or mapping of columns) with the formula's variables "
            f"(or transform=False with a design matrix), got {type(exog).__name__}"
        )
    return _formula_design(results, exog), exog.index


def _polars_rows(frame: Any) -> pd.DataFrame:
    """New data as polars: its ``unit`` column (if any) labels the rows, as at fit time."""
    from .data import POLARS_UNIT_COLUMN

    columns = frame.collect_schema().names() if hasattr(frame, "collect_schema") else frame.columns
    if POLARS_UNIT_COLUMN in columns:
        return as_pandas(frame, "exog")
    return (frame.collect() if hasattr(frame, "collect") else frame).to_pandas()


def _formula_design(results: Any, exog: pd.DataFrame) -> np.ndarray:
    spec = results.model.model_data.spec
    outcome = spec.outcome_name
    frame = exog if outcome in exog.columns else exog.assign(**{outcome: 0.0})
    return spec.apply(frame, "exog")[1]


def predict(results: Any, exog: Any = None, transform: bool = True, which: str = "mean") -> pd.Series:
    """Predicted mean (or linear index) of the target model.

    Parameters
    ----------
    results : results object
        A fitted synthinfer results object.
    exog : DataFrame, optional
        With ``transform=True`` (default), new data holding the formula's
        right-hand-side variables; it goes through the formula learned at fit
        time (categories, spline knots). With ``transform=False``, the design
        matrix itself (see `synthinfer.prediction.design_matrix`). None: the
        labeled units, so ``predict()`` equals ``fittedvalues``.
    transform : bool
        As statsmodels: whether ``exog`` goes through the formula.
    which : {"mean", "linear"}
        The mean ``mu(x'b)`` or the linear index ``x'b``.

    Returns
    -------
    Series
        Indexed as ``exog`` (or by labeled unit).
    """
    if which not in ("mean", "linear"):
        raise ValueError(f"which must be 'mean' or 'linear', got {which!r}")
    X, index = design_matrix(results, exog, transform)
    lin = X @ index_coefficients(results)
    if which == "linear":
        return pd.Series(lin, index=index)
    mean, _ = mean_functions(results)
    return pd.Series(mean(lin), index=index)


def fittedvalues(results: Any) -> pd.Series:
    """Predicted means on the labeled units, indexed by unit."""
    return predict(results)


def resid(results: Any) -> pd.Series:
    """Outcome minus fitted mean on the labeled units, indexed by unit."""
    _, y, index = _labeled_design(results)
    return pd.Series(y, index=index) - fittedvalues(results)
