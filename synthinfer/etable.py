"""A regression table of several fits (ours and statsmodels'), for papers.

Rendered by hand to Markdown, LaTeX and HTML, so no jinja2 is needed.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["etable", "ETable"]

_STARS = ((0.01, "***"), (0.05, "**"), (0.1, "*"))


def _stars(p: float) -> str:
    for level, mark in _STARS:
        if p < level:
            return mark
    return ""


def _is_ours(res: Any) -> bool:
    return hasattr(res, "n_labeled")


def _is_naive(res: Any) -> bool:
    # Naive pooling treats LLM rows as labels: an "effective n" would be meaningless.
    return type(getattr(res, "model", None)).__name__ == "Naive"


def _has_sources(res: Any) -> bool:
    return bool(res.model.model_data.sources)


class ETable:
    """Cells (strings) of a multi-model table; ``to_markdown``, ``to_latex``, ``to_html``.

    Attributes
    ----------
    cells : DataFrame
        Rows: per term the coefficient then its standard error (or interval)
        in parentheses, then N units, n labeled, effective n and J p-value.
    """

    def __init__(self, cells: pd.DataFrame, note: str) -> None:
        self.cells = cells
        self.note = note

    def _rows(self) -> list[tuple[str, list[str]]]:
        return [(str(label), list(row)) for label, row in zip(self.cells.index, self.cells.values)]

    def to_markdown(self) -> str:
        """A GitHub-flavoured Markdown table."""
        head = "| | " + " | ".join(map(str, self.cells.columns)) + " |"
        rule = "|---|" + "---:|" * len(self.cells.columns)
        body = ["| " + label + " | " + " | ".join(values) + " |" for label, values in self._rows()]
        return "\n".join([head, rule, *body, "", self.note]) + "\n"

    def to_latex(self) -> str:
        """A booktabs ``tabular``."""
        def esc(text: str) -> str:
            for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"),
                         ("#", r"\#"), ("$", r"\$")):
                text = text.replace(a, b)
            return text.replace("***", "$^{***}$") if "$^" not in text else text

        def cell(text: str) -> str:
            for mark in ("***", "**", "*"):
                if text.endswith(mark):
                    return esc(text[: -len(mark)]) + "$^{" + mark + "}$"
            return esc(text)

        cols = "l" + "r" * len(self.cells.columns)
        lines = [rf"\begin{{tabular}}{{{cols}}}", r"\toprule",
                 " & " + " & ".join(esc(str(c)) for c in self.cells.columns) + r" \\", r"\midrule"]
        lines += [esc(label) + " & " + " & ".join(cell(v) for v in values) + r" \\"
                  for label, values in self._rows()]
        lines += [r"\bottomrule", r"\end{tabular}", "% " + self.note]
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        """An HTML ``<table>``."""
        e = html.escape
        head = "<tr><th></th>" + "".join(f"<th>{e(str(c))}</th>" for c in self.cells.columns) + "</tr>"
        body = "".join("<tr><th>" + e(label) + "</th>" + "".join(f"<td>{e(v)}</td>" for v in values)
                       + "</tr>" for label, values in self._rows())
        return (f"<table class=\"etable\"><thead>{head}</thead><tbody>{body}</tbody>"
                f"<caption>{e(self.note)}</caption></table>")

    _repr_html_ = to_html

    def __str__(self) -> str:
        return self.cells.to_string() + "\n" + self.note

    __repr__ = __str__


def etable(
    results: Mapping[str, Any],
    *,
    ci: bool = False,
    alpha: float = 0.05,
    digits: int = 3,
) -> ETable:
    """A paper table of several fits side by side.

    Parameters
    ----------
    results : dict of str to results
        Fits by column name: ``synthinfer.api`` results and statsmodels results
        (anything with ``params``, ``bse``, ``pvalues`` and ``conf_int``).
    ci : bool
        Show the (1 - alpha) confidence interval under each coefficient instead
        of its standard error.
    alpha : float
        Level of the intervals.
    digits : int
        Decimals of coefficients and standard errors.

    Returns
    -------
    ETable
        Stars mark p < 0.1, 0.05, 0.01. "N units" is every unit the fit uses
        (``nobs``), "n labeled" the human-labeled ones (ours only). "effective n"
        (the number of human labels the estimator's standard error of the first
        slope is worth, against the first human-only fit of ours in the table)
        is left blank for naive pooling and statsmodels fits, where it has no
        meaning. "J p-value" is Hansen's over-identification test (GMM only).
    """
    if not results:
        raise ValueError("etable needs at least one result")
    terms = list(dict.fromkeys(t for r in results.values() for t in r.params.index))
    human = [r for r in results.values() if _is_ours(r) and not _is_naive(r) and not _has_sources(r)]
    ref = human[0] if human else None
    slope = next((t for t in terms if t != "Intercept"), terms[0])
    f = f"{{:.{digits}f}}"
    rows: dict[str, dict[str, str]] = {}
    for name, res in results.items():
        params, bse = res.params, res.bse
        pvalues = pd.Series(np.asarray(res.pvalues), index=params.index)
        interval = pd.DataFrame(np.asarray(res.conf_int(alpha=alpha)), index=params.index)
        col: dict[str, str] = {}
        for t in terms:
            if t in params.index:
                col[t] = f.format(params[t]) + _stars(float(pvalues[t]))
                col[f"{t} "] = (f"[{f.format(interval.loc[t, 0])}, {f.format(interval.loc[t, 1])}]"
                                if ci else f"({f.format(bse[t])})")
            else:
                col[t] = col[f"{t} "] = ""
        col["N units"] = f"{int(res.nobs):,}"
        col["n labeled"] = f"{int(res.n_labeled):,}" if _is_ours(res) else ""
        eff = ""
        if ref is not None and _is_ours(res) and not _is_naive(res) and slope in bse.index:
            eff = f"{ref.n_labeled * (ref.bse[slope] / bse[slope]) ** 2:,.0f}"
        col["effective n"] = eff
        jp = ""
        if hasattr(res, "jtest"):
            _, p, df = res.jtest()
            jp = f"{p:.3f}" if df > 0 and np.isfinite(p) else ""
        col["J p-value"] = jp
        rows[name] = col
    cells = pd.DataFrame(rows)
    what = f"{100 * (1 - alpha):g}% confidence intervals" if ci else "standard errors"
    note = (f"{what.capitalize()} in brackets; * p<0.1, ** p<0.05, *** p<0.01. "
            f"Effective n: human labels the {slope} standard error is worth.")
    return ETable(cells, note)
