"""statsmodels ``fit()`` keywords users carry over: honoured where they mean something, else ignored."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["IGNORED", "check_fit_keywords"]

# Output and optimiser-bookkeeping switches of statsmodels' LikelihoodModel.fit:
# the estimators print nothing and keep no optimiser history, so these have no effect.
IGNORED = ("disp", "full_output", "callback", "retall", "skip_hessian")

# Every synthinfer estimator solves its moment conditions by Newton / Gauss-Newton steps.
_METHODS = (None, "newton", "gauss-newton")


def check_fit_keywords(estimator: str, method: str | None, extra: Mapping[str, Any]) -> None:
    """Accept statsmodels' output keywords and reject what cannot be honoured.

    Parameters
    ----------
    estimator : str
        The estimator's name, for the error message.
    method : str or None
        statsmodels' optimiser name. None, "newton" and "gauss-newton" are
        accepted (the solver is always Newton / Gauss-Newton); any other
        optimiser raises, since silently using a different one would mislead.
    extra : mapping
        The remaining keywords. Those in ``IGNORED`` are accepted and have no
        effect (nothing is printed either way); any other raises TypeError
        naming it, as an unknown keyword does in Python.

    Raises
    ------
    ValueError
        For an optimiser other than Newton / Gauss-Newton.
    TypeError
        For a keyword that is neither a parameter nor in ``IGNORED``.
    """
    if method is not None and str(method).lower() not in _METHODS:
        raise ValueError(
            f"{estimator}.fit: method={method!r} is not available; the estimate is solved by "
            f"Newton / Gauss-Newton steps (method=None, 'newton' or 'gauss-newton')"
        )
    unknown = sorted(set(extra) - set(IGNORED))
    if unknown:
        raise TypeError(
            f"{estimator}.fit() got unexpected keyword argument(s) {unknown}; statsmodels' "
            f"{list(IGNORED)} are accepted and ignored"
        )
