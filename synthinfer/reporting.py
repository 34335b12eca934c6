"""What the report tables read from a fit, ours or statsmodels'.

``compare``, ``etable`` and ``summary_col_info`` accept synthinfer results and
statsmodels results (OLS, Logit, GLM, ...) side by side. This module holds the
one place that says how a fit's counts, its effective n and its J test are
read, so the tables agree with each other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "named_results",
    "is_ours",
    "n_units",
    "n_labeled",
    "reports_effective_n",
    "j_pvalue",
    "label",
    "summary_col_info",
    "human_only_reference",
    "has_sources",
]

_REQUIRED = ("params", "bse", "pvalues", "conf_int", "nobs")


def is_ours(res: Any) -> bool:
    """A synthinfer result: it knows its labeled units and its model data."""
    return hasattr(res, "n_labeled") and hasattr(getattr(res, "model", None), "model_data")


def label(res: Any) -> str:
    """A column name for a fit given without one: our estimator's label, or the
    statsmodels model's class name (OLS, Logit, GLM, ...)."""
    if is_ours(res):
        return str(res.estimator)
    return type(getattr(res, "model", res)).__name__


def named_results(models: Any, what: str = "compare") -> dict[str, Any]:
    """``models`` as a dict of display name to result.

    A dict keeps its names; a list or tuple, or a single result, is named by
    ``label`` with `` (2)``, `` (3)`` appended to repeated names.
    """
    if isinstance(models, Mapping):
        named = {str(k): v for k, v in models.items()}
    else:
        items = list(models) if isinstance(models, (list, tuple)) else [models]
        named = {}
        for res in items:
            base = label(res)
            name, k = base, 1
            while name in named:
                k += 1
                name = f"{base} ({k})"
            named[name] = res
    if not named:
        raise ValueError(f"{what} needs at least one result")
    bad = {k: type(v).__name__ for k, v in named.items() if not all(hasattr(v, a) for a in _REQUIRED)}
    if bad:
        raise TypeError(
            f"{what} takes fitted results (synthinfer's or statsmodels'), each with "
            f"{', '.join(_REQUIRED)}; these are not: {bad}"
        )
    return named


def n_units(res: Any) -> int:
    """N: every unit the fit uses (statsmodels: its rows)."""
    return int(res.nobs)


def n_labeled(res: Any) -> int:
    """n: the human-labeled units (statsmodels: its rows, all of which it takes as labeled)."""
    return int(res.n_labeled) if is_ours(res) else int(res.nobs)


def reports_effective_n(res: Any) -> bool:
    """Whether "the number of human labels this fit is worth" has a meaning.

    It does for a valid estimator of ours (human-only, PPI++, GMM-Proxy,
    GMM-Synth, DSL). It does not for naive pooling, whose standard error
    treats LLM rows as human labels and so measures no human-label
    equivalent, nor for a statsmodels fit, whose data the table cannot relate
    to the other fits' labeled units.
    """
    return is_ours(res) and bool(getattr(res.model, "reports_effective_n", True))


def has_sources(res: Any) -> bool:
    return is_ours(res) and bool(res.model.model_data.sources)


def j_pvalue(res: Any) -> float | None:
    """Hansen's J test p-value of an over-identified GMM fit; None where the
    test is not defined (a just-identified fit, a baseline, statsmodels)."""
    if not is_ours(res) or not hasattr(res, "jtest"):
        return None
    _, p, df = res.jtest()
    return float(p) if df > 0 and np.isfinite(p) else None


def _count(fn: Callable[[Any], int]) -> Callable[[Any], str]:
    return lambda res: f"{fn(res):,}"


def _j_text(res: Any) -> str:
    p = j_pvalue(res)
    return "" if p is None else f"{p:.3f}"


def summary_col_info(j_test: bool = False) -> dict[str, Callable[[Any], str]]:
    """An ``info_dict`` for statsmodels' ``summary_col`` that labels the counts.

    ``summary_col(results, info_dict=synthinfer.summary_col_info())`` adds the
    rows "N units" (every unit a fit uses) and "n labeled" (its human-labeled
    units) for our fits and statsmodels' alike; a statsmodels fit reports its
    rows as both, since it takes every row as labeled. Without an
    ``info_dict``, ``summary_col`` shows the same two rows for our fits (they
    carry it as ``default_model_infos``) and none for statsmodels'.

    Parameters
    ----------
    j_test : bool
        Add a "J p-value" row (Hansen's test; empty where it is not defined).

    Returns
    -------
    dict of str to callable
        Row label to a function of a result returning the cell text.
    """
    info: dict[str, Callable[[Any], str]] = {"N units": _count(n_units), "n labeled": _count(n_labeled)}
    if j_test:
        info["J p-value"] = _j_text
    return info



def human_only_reference(res: Any) -> Any:
    """The classical fit on the labeled units of ``res``'s model, with ``res``'s covariance
    type (a clustered fit is measured against a clustered human-only fit, as in
    ``res.diagnostics()``)."""
    from .estimators import Classical

    data = res.model.model_data
    human = Classical(data.__class__(**{**data.__dict__, "sources": ()}), res.model.family)
    cov_type = getattr(res, "cov_type", "HC0")
    if cov_type == "cluster":
        return human.fit(cov_type="cluster", cov_kwds=res.cov_kwds)
    return human.fit()
