"""A regression table of several fits (ours and statsmodels'), for papers.

``etable`` follows pyfixest's ``etable`` conventions (``type``,
``signif_code``, ``coef_fmt``, ``keep``, ``drop``, ``labels``, ``digits``,
``notes``). The table is rendered by hand to Markdown, LaTeX and HTML: a
regression table is a grid of short strings, and writing it takes fewer lines
than adapting a renderer, while pandas' ``Styler.to_latex`` needs jinja2 and
great_tables a further dependency. So the core renders every format with the
standard library alone.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .reporting import (
    has_sources,
    human_only_reference,
    is_ours,
    j_pvalue,
    n_labeled,
    n_units,
    named_results,
    reports_effective_n,
)

__all__ = ["etable", "ETable", "MODEL_STATS"]

#: The rows below the coefficients, in their default order.
MODEL_STATS = ("N units", "n labeled", "effective n", "J p-value")
#: What a cell shows where a statistic does not apply to a fit.
DASH = "\u2013"
_TOKENS = ("ci_l", "ci_u", "se", "b", "t", "p")
_PIECE = re.compile(r"ci_l|ci_u|se|b|t|p|[ ()\[\],;:/|]+|.")
_TYPES = (None, "obj", "md", "tex", "html", "df")


class ETable:
    """A multi-model table: cells as strings, rendered to Markdown, LaTeX and HTML.

    Attributes
    ----------
    cells : DataFrame
        The table as strings. Rows are a MultiIndex ``(term, statistic)``:
        per term one row per line of ``coef_fmt`` (statistic "b", "(se)", ...),
        then the model statistics (``("N units", "")``, ...). Columns are the
        fits' names.
    labels : list of str
        The row labels shown: a term's (relabeled) name on its first line,
        empty on the lines below it, the statistic's name on the rows below.
    note : str
        The note printed under the table.
    """

    def __init__(self, cells: pd.DataFrame, labels: list[str], n_coef_rows: int, note: str) -> None:
        self.cells = cells
        self.labels = labels
        self.n_coef_rows = n_coef_rows
        self.note = note

    def _rows(self) -> list[tuple[str, list[str]]]:
        return [(lab, [str(v) for v in row]) for lab, row in zip(self.labels, self.cells.to_numpy())]

    def to_frame(self) -> pd.DataFrame:
        """The cells as a DataFrame of strings (a copy)."""
        return self.cells.copy()

    def to_markdown(self) -> str:
        """A GitHub-flavoured Markdown table, the note below it."""
        def md(text: str) -> str:
            return text.replace("|", r"\|")

        head = "| | " + " | ".join(md(str(c)) for c in self.cells.columns) + " |"
        rule = "|:---|" + "---:|" * len(self.cells.columns)
        body = ["| " + md(lab) + " | " + " | ".join(md(v) for v in values) + " |" for lab, values in self._rows()]
        return "\n".join([head, rule, *body, "", md(self.note)]) + "\n"

    def to_latex(self, caption: str | None = None, label: str | None = None) -> str:
        """A booktabs ``tabular`` with the note as a paragraph below it; wrapped in
        a ``table`` float when a caption or label is given.

        Needs the LaTeX package booktabs; stars are superscripts in math mode
        and minus signs are math minus signs. No jinja2 is needed.
        """
        ncol = len(self.cells.columns)
        lines = [rf"\begin{{tabular}}{{l{'c' * ncol}}}", r"\toprule",
                 " & " + " & ".join(_tex(str(c)) for c in self.cells.columns) + r" \\", r"\midrule"]
        for i, (lab, values) in enumerate(self._rows()):
            if i == self.n_coef_rows:
                lines.append(r"\midrule")
            lines.append(_tex(lab) + " & " + " & ".join(_tex_cell(v) for v in values) + r" \\")
        # the note as a paragraph under the tabular: the width of the page, not of the table
        lines += [r"\bottomrule", r"\end{tabular}", "", rf"{{\footnotesize {_tex(self.note)}\par}}"]
        if caption is None and label is None:
            return "\n".join(lines) + "\n"
        wrapped = [r"\begin{table}[htbp]", r"\centering"]
        if caption is not None:
            wrapped.append(rf"\caption{{{_tex(caption)}}}")
        if label is not None:
            wrapped.append(rf"\label{{{label}}}")
        return "\n".join([*wrapped, *lines, r"\end{table}"]) + "\n"

    def to_html(self) -> str:
        """An HTML ``<table class="etable">``, the note in its footer."""
        e = html.escape
        ncol = len(self.cells.columns)
        head = "<tr><th></th>" + "".join(f"<th>{e(str(c))}</th>" for c in self.cells.columns) + "</tr>"
        rows = []
        for i, (lab, values) in enumerate(self._rows()):
            style = ' style="border-top: 1px solid"' if i == self.n_coef_rows else ""
            rows.append(f"<tr{style}><th style=\"text-align: left\">{e(lab)}</th>"
                        + "".join(f"<td style=\"text-align: center\">{e(v)}</td>" for v in values) + "</tr>")
        foot = f"<tr><td colspan=\"{ncol + 1}\"><small>{e(self.note)}</small></td></tr>"
        return (f"<table class=\"etable\"><thead>{head}</thead><tbody>{''.join(rows)}</tbody>"
                f"<tfoot>{foot}</tfoot></table>")

    def _repr_html_(self) -> str:
        return self.to_html()

    def __str__(self) -> str:
        frame = pd.DataFrame(self.cells.to_numpy(), index=self.labels, columns=self.cells.columns)
        return frame.to_string() + "\n" + self.note

    def __repr__(self) -> str:
        return self.__str__()


def _tex(text: str) -> str:
    out = []
    for ch in text:
        out.append({"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                    "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                    "^": r"\textasciicircum{}", DASH: "--", "<": "$<$", ">": "$>$"}.get(ch, ch))
    return "".join(out)


def _tex_cell(text: str) -> str:
    stars = re.compile(r"(\*+)")
    parts = []
    for piece in stars.split(text):
        if piece and set(piece) == {"*"}:
            parts.append("$^{" + piece + "}$")
        else:
            parts.append(re.sub(r"(?<![\w.])-(?=\d)", "$-$", _tex(piece)))
    return "".join(parts)


def _parse_coef_fmt(coef_fmt: str) -> list[list[str]]:
    """The lines of ``coef_fmt``, each a list of tokens and literal pieces."""
    lines = []
    for line in coef_fmt.split("\n"):
        pieces = _PIECE.findall(line.strip())
        odd = [p for p in pieces if p not in _TOKENS and not re.fullmatch(r"[ ()\[\],;:/|]+", p)]
        if odd:
            raise ValueError(
                f"coef_fmt {coef_fmt!r} has {''.join(odd)!r}: it may hold the statistics "
                f"{', '.join(_TOKENS)}, spaces, brackets, parentheses, commas and newlines"
            )
        if pieces:
            lines.append(pieces)
    if not any(p in _TOKENS for line in lines for p in line):
        raise ValueError(f"coef_fmt {coef_fmt!r} names no statistic ({', '.join(_TOKENS)})")
    return lines


def _check_signif_code(signif_code: Sequence[float] | None) -> list[float]:
    if signif_code is None:
        return []
    levels = [float(x) for x in signif_code]
    if not 1 <= len(levels) <= 3 or not all(0 < x < 1 for x in levels) or levels != sorted(set(levels)):
        raise ValueError(
            f"signif_code must be up to three increasing levels in (0, 1), e.g. [0.001, 0.01, 0.05], "
            f"or None for no stars; got {signif_code!r}"
        )
    return levels


def _stars(p: float, levels: list[float]) -> str:
    for i, level in enumerate(levels):
        if p < level:
            return "*" * (len(levels) - i)
    return ""


def _select_terms(terms: list[str], keep: Any, drop: Any, exact_match: bool) -> list[str]:
    def patterns(arg: Any) -> list[str]:
        return [] if arg is None else [arg] if isinstance(arg, str) else list(arg)

    def hit(pattern: str, term: str) -> bool:
        return term == pattern if exact_match else re.search(pattern, term) is not None

    keep_p, drop_p = patterns(keep), patterns(drop)
    chosen = terms
    if keep_p:
        # in the order of the keep patterns, as pyfixest
        chosen = list(dict.fromkeys(t for p in keep_p for t in terms if hit(p, t)))
    chosen = [t for t in chosen if not any(hit(p, t) for p in drop_p)]
    if not chosen:
        raise ValueError(f"keep={keep!r} and drop={drop!r} leave none of the terms {terms}")
    return chosen


def _reference(named: Mapping[str, Any], reference: str | None) -> tuple[Any, str] | tuple[None, str]:
    """The human-only fit effective n is measured against, and how to describe it."""
    if reference is not None:
        if reference not in named:
            raise KeyError(f"reference {reference!r} is not among {list(named)}")
        return named[reference], f"the {reference!r} column"
    for name, res in named.items():
        if reports_effective_n(res) and not has_sources(res):
            return res, f"the {name!r} column"
    valid = [r for r in named.values() if reports_effective_n(r)]
    if valid:
        return human_only_reference(valid[0]), "the human-only fit on the labeled units"
    return None, ""


def etable(
    models: Any,
    type: str | None = None,
    signif_code: Sequence[float] | None = (0.001, 0.01, 0.05),
    coef_fmt: str = "b \n (se)",
    keep: str | Sequence[str] | None = None,
    drop: str | Sequence[str] | None = None,
    exact_match: bool = False,
    labels: Mapping[str, str] | None = None,
    digits: int = 3,
    alpha: float = 0.05,
    model_stats: Sequence[str] = MODEL_STATS,
    reference: str | None = None,
    effective_n_term: str | None = None,
    notes: str | None = None,
) -> ETable | pd.DataFrame | str:
    """A paper table of several fits side by side (pyfixest's ``etable`` conventions).

    Parameters
    ----------
    models : dict of str to results, list of results, or one result
        synthinfer results and statsmodels results (OLS, Logit, GLM, ...: anything
        with ``params``, ``bse``, ``pvalues``, ``conf_int`` and ``nobs``). A dict
        names the columns; a list is named by estimator (ours) or model class
        (statsmodels), repeats numbered.
    type : {None, "md", "tex", "html", "df"}
        None returns the `ETable` (it renders as HTML in a notebook and has
        ``to_markdown``, ``to_latex``, ``to_html`` and ``to_frame``); "md",
        "tex" and "html" return that string, "df" the DataFrame of cells.
    signif_code : list of float or None
        Increasing p-value levels for ``***``, ``**``, ``*`` (pyfixest's default
        [0.001, 0.01, 0.05]; statsmodels' summary_col uses [0.01, 0.05, 0.1]).
        None prints no stars.
    coef_fmt : str
        The coefficient cell: ``b`` (estimate, with its stars), ``se``, ``t``
        (z or t statistic), ``p``, ``ci_l`` and ``ci_u`` (the ``1 - alpha``
        interval), with spaces, parentheses, brackets and commas; each
        ``\\n`` starts a new row. ``"b \\n [ci_l, ci_u]"`` shows intervals.
    keep, drop : str or list of str, optional
        Regular expressions (or exact names with ``exact_match=True``) of the
        terms to show (in the order of the ``keep`` patterns) or to leave out.
    exact_match : bool
    labels : dict of str to str, optional
        Display names for terms and statistic rows.
    digits : int
        Decimals of every number but the counts.
    alpha : float
        Level of ``ci_l`` and ``ci_u``.
    model_stats : list of str
        Rows under the coefficients, from "N units", "n labeled",
        "effective n" and "J p-value".
    reference : str, optional
        The column effective n is measured against (default: the first
        human-only fit of ours; if there is none, the classical fit on the
        labeled units of the first of our valid fits).
    effective_n_term : str, optional
        The term whose standard error effective n reads (default: the
        reference's first term other than the intercept).
    notes : str, optional
        Replaces the note under the table.

    Returns
    -------
    ETable, str or DataFrame
        By ``type``. The rows below the coefficients:

        - "N units": every unit the fit uses (``nobs``; for naive pooling the
          real units, not its pooled rows);
        - "n labeled": the human-labeled units. A statsmodels fit takes each
          of its rows as labeled, so it shows ``nobs`` in both rows;
        - "effective n": ``n_ref (se_ref / se)^2`` for one term, the number of
          human labels the fit's precision is worth. A dash for naive
          pooling (its standard error counts LLM rows as human labels, so it
          has no human-label equivalent) and for statsmodels fits (the table
          cannot tell how their rows relate to the reference's labeled units);
        - "J p-value": Hansen's over-identification test; a dash where it is
          not defined (a just-identified fit, the baselines, statsmodels).
    """
    if type not in _TYPES:
        raise ValueError(f"type must be one of {_TYPES}, got {type!r}")
    named = named_results(models, "etable")
    unknown = [s for s in model_stats if s not in MODEL_STATS]
    if unknown:
        raise ValueError(f"model_stats {unknown} are not among {list(MODEL_STATS)}")
    levels = _check_signif_code(signif_code)
    lines = _parse_coef_fmt(coef_fmt)
    labels = dict(labels or {})
    num = f"{{:.{int(digits)}f}}"

    all_terms = list(dict.fromkeys(str(t) for r in named.values() for t in r.params.index))
    terms = _select_terms(all_terms, keep, drop, exact_match)

    ref, ref_text = (None, "")
    if "effective n" in model_stats:
        ref, ref_text = _reference(named, reference)
    eff_term = effective_n_term
    if ref is not None and eff_term is None:
        names = [str(t) for t in ref.params.index]
        eff_term = next((t for t in names if t != "Intercept"), names[0])
    if ref is not None and eff_term not in ref.bse.index:
        raise KeyError(f"effective_n_term {eff_term!r} is not a term of the reference fit: {list(ref.bse.index)}")

    index = [(t, "".join(line)) for t in terms for line in lines] + [(s, "") for s in model_stats]
    shown = [labels.get(t, t) if i == 0 else "" for t in terms for i in range(len(lines))]
    shown += [labels.get(s, s) for s in model_stats]
    columns: dict[str, list[str]] = {}
    for name, res in named.items():
        params = pd.Series(np.asarray(res.params, dtype=float), index=[str(t) for t in res.params.index])
        stats = pd.DataFrame({
            "b": params,
            "se": np.asarray(res.bse, dtype=float),
            "t": np.asarray(res.tvalues, dtype=float),
            "p": np.asarray(res.pvalues, dtype=float),
        }, index=params.index)
        ci = np.asarray(res.conf_int(alpha=alpha), dtype=float)
        stats["ci_l"], stats["ci_u"] = ci[:, 0], ci[:, 1]
        col: list[str] = []
        for term in terms:
            for line in lines:
                if term not in stats.index:
                    col.append("")
                    continue
                row = stats.loc[term]
                text = ""
                for piece in line:
                    if piece in _TOKENS:
                        text += num.format(row[piece])
                        if piece == "b":
                            text += _stars(float(row["p"]), levels)
                    else:
                        text += piece
                col.append(text)
        for stat in model_stats:
            col.append(_model_stat(stat, res, ref, eff_term))
        columns[name] = col
    cells = pd.DataFrame(columns, index=pd.MultiIndex.from_tuples(index, names=["term", "statistic"]))
    note = notes if notes is not None else _note(lines, levels, alpha, model_stats, eff_term, ref_text)
    table = ETable(cells, shown, len(terms) * len(lines), note)
    if type == "md":
        return table.to_markdown()
    if type == "tex":
        return table.to_latex()
    if type == "html":
        return table.to_html()
    if type == "df":
        return table.to_frame()
    return table


def _model_stat(stat: str, res: Any, ref: Any, term: str | None) -> str:
    if stat == "N units":
        return f"{n_units(res):,}"
    if stat == "n labeled":
        return f"{n_labeled(res):,}"
    if stat == "effective n":
        if ref is None or not reports_effective_n(res) or term not in res.bse.index:
            return DASH
        return f"{n_labeled(ref) * (float(ref.bse[term]) / float(res.bse[term])) ** 2:,.0f}"
    p = j_pvalue(res)
    return DASH if p is None else f"{p:.3f}"


def _note(lines: list[list[str]], levels: list[float], alpha: float, model_stats: Sequence[str],
          eff_term: str | None, ref_text: str) -> str:
    fmt = " ".join("".join(line) for line in lines)
    tokens = {p for line in lines for p in line if p in _TOKENS} - {"b"}
    level = f"{100 * (1 - alpha):g}%"
    if tokens == {"se"} and "(se)" in fmt.replace(" ", ""):
        parts = ["Standard errors in parentheses."]
    elif tokens == {"ci_l", "ci_u"} and "[ci_l,ci_u]" in fmt.replace(" ", ""):
        parts = [f"{level} confidence intervals in brackets."]
    elif tokens:
        words = {"b": "estimate", "se": "standard error", "t": "z or t statistic", "p": "p-value",
                 "ci_l": f"{level} CI lower", "ci_u": f"{level} CI upper"}
        parts = ["Cells: " + " / ".join("".join(words.get(p, p) for p in line) for line in lines) + "."]
    else:
        parts = []
    if levels:
        parts.append(", ".join(f"{'*' * (len(levels) - i)} p<{lv:g}" for i, lv in enumerate(levels)) + ".")
    if "effective n" in model_stats and eff_term is not None:
        parts.append(f"Effective n: human labels the {eff_term} standard error is worth, against {ref_text}; "
                     f"{DASH} for naive pooling and statsmodels fits, where it has no meaning.")
    if "J p-value" in model_stats:
        parts.append(f"J: Hansen's over-identification test ({DASH} where not defined).")
    return " ".join(parts)
