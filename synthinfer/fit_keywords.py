"""statsmodels ``fit()`` keywords users carry over: honoured where they mean something, else ignored."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = ["IGNORED", "check_fit_keywords", "apply_use_t", "carry_statsmodels_keywords"]

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


def apply_use_t(results: Any, use_t: bool | None, df_resid: float) -> None:
    """Set a baseline result's reference distribution as ``fit(use_t=...)`` asks.

    None leaves the estimator's own choice (t with its small-sample correction,
    else normal); False is normal inference (``df_resid`` infinite) with the
    covariance unchanged; True keeps a small-sample t reference, else uses t
    with ``df_resid`` (statsmodels' ``n - p``). As ``GMMSynth.fit(use_t=...)``.
    """
    if use_t not in (None, True, False):
        raise ValueError(f"use_t must be True, False or None, got {use_t!r}")
    if use_t is False:
        results.use_t, results.df_resid = False, np.inf
    elif use_t is True and not getattr(results, "use_t", False):
        results.use_t, results.df_resid = True, float(df_resid)


def carry_statsmodels_keywords(fit: Callable[..., Any]) -> Callable[..., Any]:
    """Give a baseline estimator's ``fit`` statsmodels' keywords.

    ``use_t`` is honoured (`apply_use_t`, with the model's
    ``inference_rows() - p`` degrees of freedom); ``maxiter`` is accepted and
    ignored, the baselines' Newton solves keeping their own limit (they
    converge or raise ConvergenceError); ``method`` and the ``IGNORED``
    keywords are checked as `check_fit_keywords` does, here when ``fit`` does
    not take them itself. Anything else is a TypeError, as before.
    """
    parameters = inspect.signature(fit).parameters
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())

    @functools.wraps(fit)
    def wrapper(self: Any, *args: Any, use_t: bool | None = None, maxiter: int | None = None, **kwargs: Any) -> Any:
        if use_t not in (None, True, False):
            raise ValueError(f"use_t must be True, False or None, got {use_t!r}")
        if not takes_kwargs:
            carried = {k: kwargs.pop(k) for k in list(kwargs) if k not in parameters}
            method = carried.pop("method", None)
            check_fit_keywords(type(self).__name__, method, carried)
        results = fit(self, *args, **kwargs)
        if use_t is not None:  # counting the rows may touch every row (naive pooling): only when asked
            inner = getattr(results, "_results", results)
            apply_use_t(inner, use_t, self.inference_rows() - len(inner.params) if use_t else np.inf)
        return results

    return wrapper
