"""Inference after a fit: Windmeijer's correction, the bootstrap, diagnostics, the label planner.

Every module here reads a fit through `protocol` (moments, Jacobian and scores
at any parameters; a refit on other data) and never imports the engine.
"""

from .bootstrap import BootstrapResults, bootstrap, resample_units
from .diagnostics import Diagnostics, diagnose
from .power import LabelBudget, plan_labels
from .protocol import FittedMoments, MomentModel, ScoresAt, SourceScores
from .windmeijer import step_one_sensitivity, windmeijer_covariance

__all__ = [
    "BootstrapResults", "bootstrap", "resample_units", "Diagnostics", "diagnose",
    "LabelBudget", "plan_labels", "FittedMoments", "MomentModel", "ScoresAt", "SourceScores",
    "step_one_sensitivity", "windmeijer_covariance",
]
