"""etable, compare and summary_col with our fits and statsmodels' side by side.

The truth for every cell is the fit itself: the table must print
``res.params`` / ``res.bse`` / ``res.conf_int()`` formatted, the counts the
fit knows (N units, n labeled), effective n from the standard errors and
Hansen's J p-value from ``res.jtest()``.
"""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as sfa
from statsmodels.iolib.summary2 import summary_col

import synthinfer
import synthinfer.api as smf
from synthinfer.etable import DASH, ETable
from synthinfer.simulate import make_study

N_UNITS, N_LABELED = 600, 150


@pytest.fixture(scope="module")
def study():
    return make_study("logit", n_units=N_UNITS, n_labeled=N_LABELED, seed=5)


@pytest.fixture(scope="module")
def fits(study):
    kw = dict(real=study.real, model="logit")
    f = study.formula
    return {
        "Human only": smf.classical(f, **kw).fit(),
        "Naive": smf.naive(f, proxy=study.proxy, synth=study.synth, **kw).fit(),
        "PPI++": smf.ppi(f, proxy=study.proxy, **kw).fit(),
        "GMM-Proxy": smf.gmm_proxy(f, proxy=study.proxy, **kw).fit(),
        "GMM-Synth": smf.gmm_synth(f, proxy=study.proxy, synth=study.synth, **kw).fit(),
    }


@pytest.fixture(scope="module")
def sm_fits(study):
    """statsmodels' OLS (HC0), Logit and GLM (binomial) on the labeled rows."""
    return {
        "sm OLS": sfa.ols(study.formula, data=study.real).fit(cov_type="HC0"),
        "sm Logit": sfa.logit(study.formula, data=study.real).fit(disp=0),
        "sm GLM": sfa.glm(study.formula, data=study.real, family=sm.families.Binomial()).fit(),
    }


def stars(p: float, levels=(0.001, 0.01, 0.05)) -> str:
    return "*" * sum(p < level for level in levels)


def test_coefficient_cells_are_params_and_bse_formatted(fits, sm_fits) -> None:
    models = {**fits, **sm_fits}
    cells = synthinfer.etable(models, type="df", digits=4)
    assert list(cells.columns) == list(models)
    for name, res in models.items():
        for term in res.params.index:
            p = float(res.pvalues[term])
            assert cells.loc[(term, "b"), name] == f"{res.params[term]:.4f}{stars(p)}", (name, term)
            assert cells.loc[(term, "(se)"), name] == f"({res.bse[term]:.4f})", (name, term)


def test_statsmodels_columns_match_their_params_and_intervals(sm_fits) -> None:
    cells = synthinfer.etable(sm_fits, type="df", coef_fmt="b \n [ci_l, ci_u] \n t \n p",
                              digits=6, signif_code=None, alpha=0.1)
    for name, res in sm_fits.items():
        ci = res.conf_int(alpha=0.1)
        for term in res.params.index:
            values = [float(v) for v in re.findall(r"-?\d+\.\d+", " ".join(cells.loc[term, name]))]
            expected = [res.params[term], ci.loc[term, 0], ci.loc[term, 1], res.tvalues[term], res.pvalues[term]]
            np.testing.assert_allclose(values, expected, atol=5e-7, err_msg=f"{name} {term}")
    # three statsmodels estimators, one model: the same logit coefficients
    np.testing.assert_allclose(sm_fits["sm Logit"].params, sm_fits["sm GLM"].params, rtol=1e-6)


def test_counts_effective_n_and_j_rows(fits, sm_fits) -> None:
    cells = synthinfer.etable({**fits, **sm_fits}, type="df")
    units = cells.loc[("N units", "")]
    labeled = cells.loc[("n labeled", "")]
    assert units["Human only"] == labeled["Human only"] == f"{N_LABELED}"
    for name in ("Naive", "PPI++", "GMM-Proxy", "GMM-Synth"):
        # naive pooling's N is its units, not its pooled rows
        assert units[name] == f"{N_UNITS}" and labeled[name] == f"{N_LABELED}", name
    assert fits["Naive"].n_rows > N_UNITS
    for name, res in sm_fits.items():
        assert units[name] == labeled[name] == f"{int(res.nobs)}" == f"{N_LABELED}", name

    eff = cells.loc[("effective n", "")]
    human = fits["Human only"]
    assert eff["Human only"] == f"{N_LABELED}"
    for name in ("PPI++", "GMM-Proxy", "GMM-Synth"):
        expected = N_LABELED * (human.bse["x1"] / fits[name].bse["x1"]) ** 2
        assert eff[name] == f"{expected:,.0f}", name
    for name in ("Naive", *sm_fits):
        assert eff[name] == DASH, name

    j = cells.loc[("J p-value", "")]
    for name in ("GMM-Proxy", "GMM-Synth"):
        _, p, df = fits[name].jtest()
        assert df > 0 and j[name] == f"{p:.3f}", name
    assert fits["Human only"].jtest()[2] == 0
    for name in ("Human only", "Naive", "PPI++", *sm_fits):
        assert j[name] == DASH, name


def test_without_a_human_only_column_the_reference_is_computed(fits) -> None:
    table = synthinfer.etable({k: fits[k] for k in ("PPI++", "GMM-Synth")}, effective_n_term="x2", type="df")
    compared = synthinfer.compare({k: fits[k] for k in ("PPI++", "GMM-Synth")})
    for name in ("PPI++", "GMM-Synth"):
        assert table.loc[("effective n", ""), name] == f"{compared.loc[('x2', 'effective n'), name]:,.0f}"


def test_latex_renders_without_jinja2(fits, sm_fits, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "jinja2", None)
    with pytest.raises(ImportError):
        import jinja2  # noqa: F401
    # the guard bites: pandas' own LaTeX writer needs jinja2
    with pytest.raises((ImportError, AttributeError), match="jinja2"):
        pd.DataFrame({"a": [1]}).style.to_latex()
    models = {**fits, "sm Logit": sm_fits["sm Logit"]}
    table = synthinfer.etable(models, labels={"x1": "x_1 & 50%"})
    tex = table.to_latex()
    assert tex == synthinfer.etable(models, labels={"x1": "x_1 & 50%"}, type="tex")
    lines = tex.splitlines()
    assert lines[0] == r"\begin{tabular}{l" + "c" * len(models) + "}"
    assert [ln for ln in lines if ln in (r"\toprule", r"\midrule", r"\bottomrule")] == [
        r"\toprule", r"\midrule", r"\midrule", r"\bottomrule"]
    rows = [ln for ln in lines if ln.endswith(r"\\")]
    assert len(rows) == 1 + len(table.labels)
    for row in rows:
        # every row has one cell per column; the escaped & of the label does not count
        assert len(re.findall(r"(?<!\\)&", row)) == len(models), row
        assert row.count("$") % 2 == 0, row
    assert r"x\_1 \& 50\%" in tex
    x2 = next(r for r in rows if r.startswith("x2 &"))
    p = float(fits["GMM-Synth"].pvalues["x2"])
    assert f"$-${-fits['GMM-Synth'].params['x2']:.3f}$^{{{stars(p)}}}$" in x2
    assert "--" in tex and DASH not in tex
    assert tex.count("{") == tex.count("}")
    wrapped = table.to_latex(caption="Five estimators", label="tab:five")
    assert wrapped.startswith("\\begin{table}") and "\\caption{Five estimators}" in wrapped
    assert "\\label{tab:five}" in wrapped and wrapped.rstrip().endswith("\\end{table}")


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_markdown_and_html_hold_the_cells(fits, sm_fits) -> None:
    models = {**fits, "sm OLS": sm_fits["sm OLS"]}
    table = synthinfer.etable(models)
    assert isinstance(table, ETable)
    expected = [[lab, *row] for lab, row in zip(table.labels, table.cells.to_numpy().tolist())]

    md = table.to_markdown()
    assert md == synthinfer.etable(models, type="md")
    md_rows = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert md_rows[0] == "| | " + " | ".join(models) + " |"
    parsed = [[c.strip() for c in ln.strip("|").split(" | ")] for ln in md_rows[2:]]
    assert parsed == [[c.strip() for c in r] for r in expected]
    assert table.note in md

    page = table.to_html()
    assert table._repr_html_() == page == synthinfer.etable(models, type="html")
    parser = _Cells()
    parser.feed(page)
    assert parser.rows[0] == ["", *models]
    assert parser.rows[1:-1] == expected
    assert parser.rows[-1] == [table.note]
    assert table.note in str(table)


def test_options(fits) -> None:
    res = fits["GMM-Synth"]
    # a single result, no stars, one coefficient kept by exact name
    cells = synthinfer.etable(res, type="df", signif_code=None, keep="x1", exact_match=True)
    assert list(cells.columns) == ["GMM-Synth"]
    assert cells.loc[("x1", "b"), "GMM-Synth"] == f"{res.params['x1']:.3f}"
    assert "Intercept" not in cells.index.get_level_values(0)
    # regex drop, custom levels, a list named by estimator
    cells = synthinfer.etable([fits["Human only"], res, res], type="df", drop="^Interc",
                              signif_code=[0.5], model_stats=["n labeled"])
    assert list(cells.columns) == ["Classical", "GMM-Synth", "GMM-Synth (2)"]
    assert list(cells.index) == [("x1", "b"), ("x1", "(se)"), ("x2", "b"), ("x2", "(se)"), ("n labeled", "")]
    assert cells.loc[("x1", "b"), "GMM-Synth"].endswith("*") and not cells.loc[("x1", "b"), "GMM-Synth"].endswith("**")
    with pytest.raises(ValueError, match="coef_fmt"):
        synthinfer.etable(res, coef_fmt="beta (se)")
    with pytest.raises(ValueError, match="signif_code"):
        synthinfer.etable(res, signif_code=[0.05, 0.01])
    with pytest.raises(ValueError, match="type"):
        synthinfer.etable(res, type="gt")
    with pytest.raises(ValueError, match="leave none"):
        synthinfer.etable(res, keep="nothing")
    with pytest.raises(TypeError, match="'bad': 'str'"):
        synthinfer.etable({"ok": res, "bad": "not a fit"})
    assert synthinfer.api.etable is synthinfer.etable


def test_compare_accepts_lists_single_results_and_statsmodels(fits, sm_fits) -> None:
    single = synthinfer.compare(fits["GMM-Proxy"])
    assert list(single.columns) == ["GMM-Proxy"]
    listed = synthinfer.compare([fits["Human only"], fits["Naive"], sm_fits["sm OLS"]])
    assert list(listed.columns) == ["Classical", "Naive pooling", "OLS"]

    table = synthinfer.compare({**fits, **sm_fits})
    human = fits["Human only"]
    for name, res in sm_fits.items():
        for term in res.params.index:
            assert table.loc[(term, "coef"), name] == pytest.approx(res.params[term], rel=1e-12)
            assert table.loc[(term, "std err"), name] == pytest.approx(res.bse[term], rel=1e-12)
            assert table.loc[(term, "se ratio"), name] == pytest.approx(res.bse[term] / human.bse[term])
            assert np.isnan(table.loc[(term, "effective n"), name])
        assert table.loc[("n labeled", ""), name] == table.loc[("N", ""), name] == N_LABELED
    assert table.loc[("x1", "effective n"), "Naive"] != table.loc[("x1", "effective n"), "Naive"]  # NaN
    assert table.loc[("x1", "effective n"), "GMM-Synth"] == pytest.approx(
        N_LABELED * (human.bse["x1"] / fits["GMM-Synth"].bse["x1"]) ** 2)
    assert table.formatted().loc[("x1", "effective n"), "Naive"] == DASH
    # only statsmodels fits: measured against the first
    only_sm = synthinfer.compare(sm_fits)
    assert only_sm.loc[("x1", "se ratio"), "sm OLS"] == 1.0
    with pytest.raises(TypeError, match="fitted results"):
        synthinfer.compare([fits["PPI++"], 3])


def _summary_frame(summary) -> pd.DataFrame:
    return summary.tables[0]


def test_summary_col_labels_units_and_labeled(fits, sm_fits) -> None:
    results = [fits["Human only"], fits["GMM-Synth"], sm_fits["sm Logit"]]
    names = ["Human only", "GMM-Synth", "sm Logit"]
    default = _summary_frame(summary_col(results, model_names=names))
    assert default.loc["N units"].tolist() == [f"{N_LABELED}", f"{N_UNITS}", ""]
    assert default.loc["n labeled"].tolist() == [f"{N_LABELED}", f"{N_LABELED}", ""]

    info = synthinfer.summary_col_info(j_test=True)
    full = _summary_frame(summary_col(results, model_names=names, info_dict=info))
    assert full.loc["N units"].tolist() == [f"{N_LABELED}", f"{N_UNITS}", f"{N_LABELED}"]
    assert full.loc["n labeled"].tolist() == [f"{N_LABELED}"] * 3
    assert full.loc["J p-value"].tolist() == ["", f"{fits['GMM-Synth'].jtest()[1]:.3f}", ""]
    # the coefficients summary_col prints are the fits' own
    assert full.loc["x1"].tolist() == [f"{r.params['x1']:.4f}" for r in results]
