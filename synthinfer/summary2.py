"""statsmodels' ``summary2`` layout for every synthinfer results object.

statsmodels' own ``summary2`` reads attributes a GMM fit does not have
(log-likelihood, R-squared) and would call the model ``GMMSynth`` without
saying how many units are labeled; this builds the same
`statsmodels.iolib.summary2.Summary` (a model-information table, the
coefficient table, notes) from the fields our ``summary()`` shows.
"""

from __future__ import annotations

import datetime
from typing import Any

import numpy as np
from statsmodels.iolib import summary2 as sm_summary2

__all__ = ["summary2"]


def _value(values: Any) -> str | None:
    """A header cell of ``summary()`` (a one-element list, or None for date and time)."""
    if values is None:
        return None
    value = values[0] if isinstance(values, (list, tuple)) else values
    return str(value).strip()


def _df(value: float) -> str:
    return "inf" if not np.isfinite(value) else (f"{int(value)}" if float(value).is_integer() else f"{value:.4g}")


def summary2(
    results: Any, yname: str | None = None, xname: list[str] | None = None, title: str | None = None,
    alpha: float = 0.05, float_format: str = "%.4f",
) -> sm_summary2.Summary:
    """The summary in statsmodels' ``summary2`` layout.

    Parameters
    ----------
    results : results object
        Any synthinfer results object (GMM-Synth, GMM-Proxy, the human-only fit, the baselines).
    yname : str, optional
        Name of the outcome; the formula's by default.
    xname : list of str, optional
        Names of the coefficients; the design's by default.
    title : str, optional
        The table's title.
    alpha : float
        The coefficient table's interval is ``1 - alpha``.
    float_format : str
        Format of the coefficient table's numbers.

    Returns
    -------
    statsmodels.iolib.summary2.Summary
        With ``as_text()``, ``as_latex()``, ``as_html()``.
    """
    model = results.model
    use_t = bool(getattr(results, "use_t", False))
    info: dict[str, str] = {
        "Model:": model.family.label,
        "Estimator:": results.estimator,
        "Dependent Variable:": yname or model.endog_names,
        "Date:": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "No. Units (N):": f"{model.nobs}",
        "No. Labeled (n):": f"{results.n_labeled}",
        "Df Model:": _df(results.df_model),
        "Df Residuals:": _df(float(getattr(results, "df_resid", np.inf))),
        "Inference:": "t" if use_t else "z",
    }
    _, right = results._summary_top()
    for label, values in right:
        value = _value(values)
        if value is not None and label not in info:
            info[label] = value
    params = sm_summary2.summary_params(
        results, yname=yname, xname=xname or list(model.exog_names), alpha=alpha, use_t=use_t,
        float_format=float_format,
    )
    smry = sm_summary2.Summary()
    smry.add_title(title or f"{results.estimator} {model.family.label} Regression Results")
    smry.add_dict(info)
    smry.add_df(params, float_format=float_format)
    for i, note in enumerate(results._summary_notes(), 1):
        smry.add_text(f"[{i}] {note}")
    return smry
