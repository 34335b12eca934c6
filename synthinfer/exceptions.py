"""Named errors and warnings.

Every data problem is a ``SpecificationError`` (a ``ValueError``) whose
message names the frame, the columns and the units involved.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "BootstrapFailureError",
    "ConvergenceError",
    "DesignError",
    "UnsupportedFamilyError",
    "PerfectSeparationError",
    "SingularDesignError",
    "SpecificationError",
    "SingularMomentsError",
    "SynthInferWarning",
    "SparseCovariateWarning",
    "NearSingularWeightWarning",
    "FewLabeledWarning",
    "OutputDirectoryError",
    "PromptLeakError",
    "LLMError",
    "LLMConnectionError",
    "LLMUnitsFailedError",
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


class SingularMomentsError(SpecificationError):
    """The moment covariance S is singular; the message says which cause makes it so."""


class ConvergenceError(RuntimeError):
    """An estimating equation could not be solved."""


class BootstrapFailureError(ConvergenceError):
    """Too many bootstrap replicates failed for an interval from the rest to be valid."""


class OutputDirectoryError(FileExistsError):
    """An output directory holds files that are not a previous run of the same study."""


class SynthInferWarning(UserWarning):
    """Base class of the package's warnings."""


class SparseCovariateWarning(SynthInferWarning):
    """A coefficient is identified by very few labeled units (a rare binary covariate)."""


class NearSingularWeightWarning(SynthInferWarning):
    """The moment covariance S is close to singular; the weight matrix is unstable."""


class PromptLeakError(SpecificationError):
    """A prompt template or the units given to an LLM function carry the human label (outcome)."""


class LLMError(RuntimeError):
    """Base class of the failures of the LLM step (``synthinfer.llm``)."""


class LLMConnectionError(LLMError):
    """The endpoint cannot be used at all: unreachable, wrong API key, unknown model.

    Raised as soon as it is known (the first requests of a run are sent one at a
    time), so that nothing else is sent.
    """


class LLMUnitsFailedError(LLMError):
    """Some units still failed after every retry and re-ask.

    Everything else was answered and is in the cache, so a re-run with the same
    cache sends only the failed units' requests again.

    Attributes
    ----------
    failures : dict
        Unit id -> the reason its last attempt failed (for ``synthesize``, the
        key is ``(unit id, sample index)``).
    partial : DataFrame or None
        The frame of every unit (or sample) that did succeed, with its provenance.
    """

    def __init__(self, message: str, failures: dict, partial: object = None) -> None:
        super().__init__(message)
        self.failures = dict(failures)
        self.partial = partial


class FewLabeledWarning(SynthInferWarning):
    """Few labeled units per moment condition: the estimated weight matrix is noisy."""


def describe_units(units: Iterable[object], limit: int = 10) -> str:
    """Render unit ids for an error message: the first ``limit`` and a count."""
    units = list(units)
    shown = ", ".join(repr(u) for u in units[:limit])
    if len(units) > limit:
        shown += f", ... ({len(units)} units in all)"
    return "[" + shown + "]"
