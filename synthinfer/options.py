"""The named options of the estimators as ``Literal`` types.

Signatures annotate with these and the command line takes its ``choices``
from them (`choices`), so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

__all__ = ["Engine", "Correction", "Shrinkage", "Leverage", "OutputFormat", "choices"]

#: the formula engines
Engine = Literal["patsy", "formulaic"]
#: ``fit(correction=)``: the covariance correction; "none" is the same as None
Correction = Literal["small-sample", "windmeijer", "none"]
#: ``fit(shrinkage=)``: how the weight matrix is built; "none" is the same as None
Shrinkage = Literal["stein", "none"]
#: ``fit(leverage=)``: the small-sample correction's leverage adjustment; "none" is the same as None
Leverage = Literal["HC3", "HC2", "none"]
#: what the command line's ``fit`` prints
OutputFormat = Literal["text", "json", "csv"]


def choices(option: Any) -> list[str]:
    """The values of a ``Literal`` option type, in their declared order."""
    return list(get_args(option))
