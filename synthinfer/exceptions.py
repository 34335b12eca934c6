"""Named errors and warnings.

Every data problem is a :class:`SpecificationError` (a ``ValueError``) whose
message names the frame, the columns and the units involved.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ConvergenceError",
    "DesignError",
    "UnsupportedFamilyError",
    "PerfectSeparationError",
    "SingularDesignError",
    "SpecificationError",
    "SynthInferWarning",
    "NearSingularWeightWarning",
    "describe_units",
]


class SpecificationError(ValueError):
    """The data or formula cannot define the model as given."""


class SingularDesignError(SpecificationError):
    """The design matrix of one frame does not have full column rank."""


class PerfectSeparationError(SpecificationError):
    """A logit outcome is perfectly predicted: the estimate does not exist."""


class DesignError(SpecificationError):
    """A labeling design cannot be built or drawn as asked (budget, pilot, pool, probabilities)."""


class UnsupportedFamilyError(DesignError):
    """The model family has no influence function the labeling design can use."""


class ConvergenceError(RuntimeError):
    """An estimating equation could not be solved."""


class SynthInferWarning(UserWarning):
    """Base class of the package's warnings."""


class NearSingularWeightWarning(SynthInferWarning):
    """The moment covariance S is close to singular; the weight matrix is unstable."""


def describe_units(units: Iterable[object], limit: int = 10) -> str:
    """Render unit ids for an error message: the first ``limit`` and a count."""
    units = list(units)
    shown = ", ".join(repr(u) for u in units[:limit])
    if len(units) > limit:
        shown += f", ... ({len(units)} units in all)"
    return "[" + shown + "]"
