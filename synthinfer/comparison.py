"""Side-by-side comparison of several fits: a table and a forest plot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

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
                return ""
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

    def _repr_html_(self) -> str:  # type: ignore[override]
        return self.formatted().to_html()


def _human_only_reference(res: Any) -> Any:
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


def compare(
    results: Mapping[str, Any],
    reference: str | None = None,
    alpha: float = 0.05,
    terms: Sequence[str] | None = None,
) -> ComparisonTable:
    """Compare fits side by side.

    Parameters
    ----------
    results : dict of str to results
        Fitted results of ``synthinfer.api`` models, by display name.
    reference : str, optional
        The human-only fit to measure standard errors against. Defaults to the
        first result without auxiliary data; if there is none, the classical fit
        on the first result's labeled units is computed.
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
    """
    if not results:
        raise ValueError("compare needs at least one result")
    if reference is not None:
        if reference not in results:
            raise KeyError(f"reference {reference!r} is not among {list(results)}")
        ref = results[reference]
    else:
        human = [r for r in results.values() if not r.model.model_data.sources]
        ref = human[0] if human else _human_only_reference(next(iter(results.values())))
    names = list(terms) if terms is not None else list(ref.params.index)
    missing = {k: [t for t in names if t not in r.params.index] for k, r in results.items()}
    missing = {k: v for k, v in missing.items() if v}
    if missing:
        raise KeyError(f"terms missing from some results: {missing}")

    rows = pd.MultiIndex.from_tuples(
        [(t, s) for t in names for s in _STATISTICS] + [("n labeled", ""), ("N", "")],
        names=["term", "statistic"],
    )
    table = ComparisonTable(index=rows, columns=list(results), dtype=float)
    ref_bse = ref.bse[names]
    for key, res in results.items():
        ci = res.conf_int(alpha=alpha).loc[names]
        bse = res.bse[names]
        column = {
            "coef": res.params[names],
            "std err": bse,
            "ci lower": ci.iloc[:, 0],
            "ci upper": ci.iloc[:, 1],
            "se ratio": bse / ref_bse,
            "effective n": ref.n_labeled * (ref_bse / bse) ** 2,
        }
        for stat, values in column.items():
            for term in names:
                table.loc[(term, stat), key] = float(values[term])
        table.loc[("n labeled", ""), key] = res.n_labeled
        table.loc[("N", ""), key] = res.nobs
    table.alpha = alpha
    table.reference = reference
    return table


def plot_coefficients(
    results: Mapping[str, Any],
    terms: Sequence[str] | None = None,
    alpha: float = 0.05,
    truth: Mapping[str, float] | pd.Series | None = None,
    ax: Any = None,
) -> tuple[Any, Any]:
    """Forest plot: each estimator's estimate and confidence interval per term.

    Parameters
    ----------
    results : dict of str to results
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
    if not results:
        raise ValueError("plot_coefficients needs at least one result")
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
