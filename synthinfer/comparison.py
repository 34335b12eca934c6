"""Side-by-side comparison of several fits: a table and a forest plot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .reporting import (
    has_sources,
    human_only_reference,
    is_ours,
    n_labeled,
    n_units,
    named_results,
    reports_effective_n,
)

__all__ = ["compare", "ComparisonTable", "plot_coefficients"]

_STATISTICS = ["coef", "std err", "ci lower", "ci upper", "se ratio", "effective n"]


class ComparisonTable(pd.DataFrame):
    """A numeric DataFrame (rows: term x statistic, then n and N; columns: estimators).

    It prints and renders in HTML with readable number formats; the numbers
    themselves stay floats for further use (``table.loc[("x1", "coef")]``).
    """

    _metadata = ["alpha", "reference"]

    @property
    def _constructor(self) -> type[ComparisonTable]:
        return ComparisonTable

    def formatted(self) -> pd.DataFrame:
        """The table as strings: coefficients to 4 decimals, counts as integers."""
        def fmt(stat: str, value: float) -> str:
            if pd.isna(value):
                return "\u2013" if stat == "effective n" else ""
            if stat in ("effective n", "") or stat.startswith("n"):
                return f"{value:,.0f}"
            if stat == "se ratio":
                return f"{value:.3f}"
            return f"{value:.4f}"

        out = pd.DataFrame(index=self.index, columns=self.columns, dtype=object)
        for term, stat in self.index:
            out.loc[(term, stat)] = [fmt(stat, v) for v in self.loc[(term, stat)]]
        return out

    def __repr__(self) -> str:
        return self.formatted().to_string()

    def __str__(self) -> str:
        return self.__repr__()

    def _repr_html_(self) -> str:
        return self.formatted().to_html()


def compare(
    results: Any,
    reference: str | None = None,
    alpha: float = 0.05,
    terms: Sequence[str] | None = None,
) -> ComparisonTable:
    """Compare fits side by side.

    Parameters
    ----------
    results : dict of str to results, list of results, or one result
        Fitted results of ``synthinfer.api`` models and of statsmodels models
        (OLS, Logit, GLM, ...), by display name; a list or a single result is
        named by estimator (ours) or model class (statsmodels).
    reference : str, optional
        The human-only fit to measure standard errors against. Defaults to the
        first of our results without auxiliary data; if there is none, the
        classical fit on the labeled units of the first of our results is
        computed (with no result of ours, the first result).
    alpha : float
        Level of the confidence intervals.
    terms : list of str, optional
        Terms to show; all by default.

    Returns
    -------
    ComparisonTable
        Rows ``(term, statistic)`` with statistics coef, std err, ci lower,
        ci upper, se ratio (se / se of the reference) and effective n
        (``n_reference (se_reference / se)^2``: the number of human labels the
        estimator is worth), then ``("n labeled", "")`` and ``("N", "")``.
        Effective n is NaN (shown as a dash) for naive pooling, whose standard
        error counts LLM rows as human labels, and for statsmodels fits, whose
        rows the table cannot relate to the reference's labeled units. A
        statsmodels fit reports its ``nobs`` as both n labeled and N.
    """
    results = named_results(results, "compare")
    if reference is not None:
        if reference not in results:
            raise KeyError(f"reference {reference!r} is not among {list(results)}")
        ref = results[reference]
    else:
        ours = [r for r in results.values() if is_ours(r)]
        human = [r for r in ours if reports_effective_n(r) and not has_sources(r)]
        if human:
            ref = human[0]
        elif ours:
            ref = human_only_reference(ours[0])
        else:
            ref = next(iter(results.values()))
    names = list(terms) if terms is not None else [str(t) for t in ref.params.index]
    missing = {k: [t for t in names if t not in r.params.index] for k, r in results.items()}
    missing = {k: v for k, v in missing.items() if v}
    if missing:
        raise KeyError(f"terms missing from some results: {missing}")

    rows = pd.MultiIndex.from_tuples(
        [(t, s) for t in names for s in _STATISTICS] + [("n labeled", ""), ("N", "")],
        names=["term", "statistic"],
    )
    table = ComparisonTable(index=rows, columns=list(results), dtype=float)
    ref_bse = _coefficients(ref, alpha)["std_error"][names]
    for key, res in results.items():
        coefficients = _coefficients(res, alpha).loc[names]
        bse = coefficients["std_error"]
        effective = n_labeled(ref) * (ref_bse / bse) ** 2
        column = {
            "coef": coefficients["estimate"],
            "std err": bse,
            "ci lower": coefficients["conf_low"],
            "ci upper": coefficients["conf_high"],
            "se ratio": bse / ref_bse,
            "effective n": effective if reports_effective_n(res) else effective * np.nan,
        }
        for stat, values in column.items():
            for term in names:
                table.loc[(term, stat), key] = float(values[term])
        table.loc[("n labeled", ""), key] = n_labeled(res)
        table.loc[("N", ""), key] = n_units(res)
    table.alpha = alpha
    table.reference = reference
    return table


def _coefficients(res: Any, alpha: float) -> pd.DataFrame:
    """The fit's ``tidy()`` table; a statsmodels fit's equivalent from its estimates."""
    if is_ours(res):
        return res.tidy(alpha)
    params = _series(res.params, res)
    return pd.DataFrame({
        "estimate": params,
        "std_error": _series(res.bse, res),
        **dict(zip(("conf_low", "conf_high"), np.asarray(res.conf_int(alpha=alpha), dtype=float).T)),
    }, index=params.index)


def _series(values: Any, res: Any) -> pd.Series:
    """params or bse as a float Series by term (a statsmodels fit on arrays has bare arrays)."""
    if isinstance(values, pd.Series):
        return values.astype(float)
    names = getattr(res.model, "exog_names", None) or [f"x{i}" for i in range(len(values))]
    return pd.Series(np.asarray(values, dtype=float), index=names)


def plot_coefficients(
    results: Any,
    terms: Sequence[str] | None = None,
    alpha: float = 0.05,
    truth: Mapping[str, float] | pd.Series | None = None,
    ax: Any = None,
) -> tuple[Any, Any]:
    """Forest plot: each estimator's estimate and confidence interval per term.

    Parameters
    ----------
    results : dict of str to results, list of results, or one result
        As for `compare`: ours and statsmodels' fits.
    terms : list of str, optional
        Terms to plot; all but ``Intercept`` by default.
    alpha : float
        Level of the intervals.
    truth : mapping of term to value, optional
        Reference values drawn as dashed lines (e.g. the full-data fit).
    ax : matplotlib Axes, optional

    Returns
    -------
    (Figure, Axes)
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plot_coefficients needs matplotlib: pip install matplotlib") from exc
    results = named_results(results, "plot_coefficients")
    first = next(iter(results.values()))
    names = list(terms) if terms is not None else [t for t in first.params.index if t != "Intercept"]
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 0.6 + 0.45 * len(names) * len(results)))
    else:
        fig = ax.figure
    k = len(results)
    # the first estimator on top, as in the legend
    offsets = ((k - 1) / 2 - np.arange(k)) * (0.7 / max(k, 1))
    for (label, res), offset in zip(results.items(), offsets):
        ci = res.conf_int(alpha=alpha).loc[names]
        y = np.arange(len(names))[::-1] + offset
        est = res.params[names].to_numpy()
        ax.errorbar(
            est, y, xerr=[est - ci.iloc[:, 0].to_numpy(), ci.iloc[:, 1].to_numpy() - est],
            fmt="o", capsize=3, label=label,
        )
    if truth is not None:
        for i, term in enumerate(names):
            if term in truth:
                pos = len(names) - 1 - i
                ax.plot([truth[term]] * 2, [pos - 0.45, pos + 0.45], "k--", lw=1)
    ax.set_yticks(np.arange(len(names))[::-1], labels=names)
    ax.axvline(0.0, color="grey", lw=0.5)
    ax.set_xlabel(f"estimate with {100 * (1 - alpha):.0f}% interval")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return fig, ax
