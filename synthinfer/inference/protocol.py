"""What post-estimation code may ask of a fitted moment model.

Windmeijer's correction, the bootstrap, the diagnostics and the label planner
read a fit only through these protocols: the model's moments, Jacobian and
per-source scores at any parameter vector, and a way to refit it on other
data. They never touch a model's private attributes, and this package does
not import the engine (`synthinfer.gmm`), so the dependency runs one way:
engine -> results -> inference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..covariance import MomentCovariance
from ..data import ModelData, Source
from ..families.base import EstimatingFunction, Evaluation
from ..layout import MomentLayout
from ..moments import MomentBlocks

__all__ = ["SourceScores", "ScoresAt", "MomentModel", "FittedMoments"]


@dataclass(frozen=True)
class SourceScores:
    """One auxiliary source's scores at its parameters, with its row weights.

    Attributes
    ----------
    source : Source
        The source's rows.
    evaluation : Evaluation
        Its estimating function at its own parameters eta.
    row_weight : ndarray or None
        Each row's weight in its unit's moment (1/k), None for one row per unit.
    labeled_row_weight : ndarray or None
        The weights of its labeled rows (``row_weight`` times 1/pi), in the
        order of ``source.labeled_rows``; None for weight 1.
    """

    source: Source
    evaluation: Evaluation
    row_weight: np.ndarray | None
    labeled_row_weight: np.ndarray | None


@dataclass(frozen=True)
class ScoresAt:
    """Every block's scores at one parameter vector.

    Attributes
    ----------
    target : Evaluation
        The target's estimating function at theta on the labeled rows.
    target_weight : ndarray or None
        1/pi per labeled unit, None for a simple random sample.
    sources : tuple of SourceScores
        One per auxiliary source, in the model's order.
    """

    target: Evaluation
    target_weight: np.ndarray | None
    sources: tuple[SourceScores, ...]


class MomentModel(Protocol):
    """A GMM model over the real units and its auxiliary sources."""

    model_data: ModelData
    layout: MomentLayout
    family: EstimatingFunction
    nobs: int
    nmoms: int
    k_params: int

    def moment_blocks(self, params: np.ndarray) -> MomentBlocks: ...

    def momcond_mean(self, params: np.ndarray) -> np.ndarray: ...

    def jacobian(self, params: np.ndarray) -> np.ndarray: ...

    def scores_at(self, params: np.ndarray) -> ScoresAt: ...

    def refit(self, data: ModelData, **fit_kwds: Any) -> Any:
        """Fit the same estimator (family) on other data, with ``fit``'s options."""
        ...


class FittedMoments(Protocol):
    """A two-step GMM fit, as post-estimation code reads it."""

    model: MomentModel
    params_full: np.ndarray
    start_params: np.ndarray
    weights: np.ndarray
    jacobian: np.ndarray
    covariance: MomentCovariance
    weighting: MomentCovariance
    cov_type: str
    cov_kwds: dict[str, Any]
    weight_type: str
    weight_kwds: dict[str, Any]
