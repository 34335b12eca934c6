"""The bad-input table: what a user passes and what synthinfer answers.

Each case builds a small study, breaks one thing and runs the API or the
command line. ``tests/test_bad_input.py`` runs every case and checks the
exception (or warning) type, that the message names every word listed, and
that the frames and files passed are untouched; it also checks that
``docs/bad-input.md`` is exactly :func:`render` of this table. After editing
the cases, regenerate the page with::

    python tests/bad_input_cases.py > docs/bad-input.md
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

import synthinfer.api as smf
from synthinfer import cli, experiments
from synthinfer.exceptions import (
    ConvergenceError,
    FewLabeledWarning,
    OutputDirectoryError,
    SingularMomentsError,
    SpecificationError,
)
from synthinfer.simulate import make_study

FORMULA = "y ~ x1 + x2"


class Context:
    """What a case uses: fresh study frames, files in a scratch directory, and a record of
    both so the test can check that nothing passed in was changed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.frames: list[tuple[pd.DataFrame, pd.DataFrame]] = []
        self.files: dict[Path, bytes] = {}

    def study(self, model: str = "ols", n_units: int = 120, n_labeled: int = 40):
        st = make_study(model, n_units=n_units, n_labeled=n_labeled, seed=5)
        return st.real.copy(), st.proxy.copy(), st.synth.copy()

    def keep(self, *frames: pd.DataFrame) -> None:
        """Record frames about to be passed: they must come back unchanged."""
        self.frames += [(frame, copy.deepcopy(frame)) for frame in frames]

    def csv(self, name: str, text: str) -> str:
        path = self.root / name
        path.write_text(text)
        self.files[path] = path.read_bytes()
        return str(path)

    def frame_csv(self, name: str, frame: pd.DataFrame) -> str:
        return self.csv(name, frame.to_csv())


@dataclass(frozen=True)
class Case:
    """One row of the table.

    ``passed`` and ``answer`` are the table's two columns (Markdown); ``error``
    is the exception or warning class, ``words`` what its message must name.
    """

    id: str
    interface: str
    passed: str
    answer: str
    error: type[BaseException]
    words: tuple[str, ...]
    run: Callable[[Context], object] = field(repr=False)


def _fit(ctx: Context, formula: str = FORMULA, real=None, proxy=None, synth=None, **fit_kwds):
    ctx.keep(*[f for f in (real, proxy, synth) if isinstance(f, pd.DataFrame)])
    for frames in (proxy, synth):
        if isinstance(frames, dict):
            ctx.keep(*frames.values())
    model_kwds = {k: fit_kwds.pop(k) for k in ("model", "engine", "labeling_prob") if k in fit_kwds}
    return smf.gmm_synth(formula, real=real, proxy=proxy, synth=synth, **model_kwds).fit(**fit_kwds)


def _cli(*argv: str) -> int:
    return cli.main(["--traceback", *argv])


# -- the cases ----------------------------------------------------------------------------


def _text_numbers(ctx):
    real, proxy, _ = ctx.study()
    real["x1"] = real["x1"].round(3).astype(str)
    proxy["x1"] = proxy["x1"].round(3).astype(str)
    _fit(ctx, real=real, proxy=proxy)


def _pyarrow_text_numbers(ctx):
    real, proxy, _ = ctx.study()
    real["x1"] = real["x1"].round(3).astype(str).astype("string[pyarrow]")
    proxy["x1"] = proxy["x1"].round(3).astype(str).astype("string[pyarrow]")
    _fit(ctx, real=real, proxy=proxy)


def _stray_marker(ctx):
    real, proxy, _ = ctx.study()
    for frame in (real, proxy):
        frame["x1"] = frame["x1"].round(3).astype(str)
        frame.iloc[2, frame.columns.get_loc("x1")] = "n.a."
    _fit(ctx, real=real, proxy=proxy)


def _cli_stray_marker(ctx):
    real, proxy, _ = ctx.study()
    real["x1"] = real["x1"].round(3).astype(object)
    real.iloc[4, real.columns.get_loc("x1")] = "n.a."
    _cli("fit", FORMULA, "--real", ctx.frame_csv("real.csv", real), "--proxy", ctx.frame_csv("proxy.csv", proxy))


def _decimal_commas(ctx):
    real, proxy, _ = ctx.study()
    for frame in (real, proxy):
        frame["x1"] = frame["x1"].round(3).astype(str).str.replace(".", ",", regex=False)
    _fit(ctx, real=real, proxy=proxy)


def _cli_decimal_commas(ctx):
    real, proxy, _ = ctx.study()
    text = real.assign(x1=real["x1"].round(3).astype(str).str.replace(".", ",", regex=False))
    _cli("fit", FORMULA, "--real", ctx.frame_csv("real.csv", text), "--proxy", ctx.frame_csv("proxy.csv", proxy))


def _default_range_index(ctx):
    real, proxy, _ = ctx.study()
    _fit(ctx, real=real.reset_index(drop=True), proxy=proxy.reset_index(drop=True))


def _range_index_text_ids(ctx):
    real, proxy, _ = ctx.study()
    _fit(ctx, real=real.reset_index(drop=True), proxy=proxy)


def _clusters_disagree(ctx):
    real, proxy, _ = ctx.study()
    proxy["g"] = [f"g{i % 10}" for i in range(len(proxy))]
    real["g"] = proxy.loc[real.index, "g"]
    real.loc[real.index[3], "g"] = "g_other"
    _fit(ctx, real=real, proxy=proxy, cov_type="cluster", cov_kwds={"groups": "g"})


def _nan_unit_id(ctx):
    real, proxy, _ = ctx.study()
    proxy = proxy.rename(index={proxy.index[-1]: np.nan})
    _fit(ctx, real=real, proxy=proxy)


def _cli_repeated_header(ctx):
    real, proxy, _ = ctx.study()
    text = real.to_csv().splitlines()
    text[0] = text[0].replace("x2", "x1")
    _cli("fit", "y ~ x1", "--real", ctx.csv("real.csv", "\n".join(text) + "\n"),
         "--proxy", ctx.frame_csv("proxy.csv", proxy))


def _cli_ambiguous_proxy(ctx):
    real, proxy, _ = ctx.study()
    real_path = ctx.frame_csv("real.csv", real)
    ctx.frame_csv("run=1.csv", proxy)
    ctx.frame_csv("1.csv", proxy)
    cwd = os.getcwd()
    os.chdir(ctx.root)
    try:
        _cli("fit", FORMULA, "--real", real_path, "--proxy", "run=1.csv")
    finally:
        os.chdir(cwd)


def _cli_single_column(ctx):
    real, _, _ = ctx.study()
    path = ctx.csv("real.csv", real.to_csv(sep=":"))
    _cli("fit", FORMULA, "--real", path)


def _duplicate_columns(ctx):
    real, proxy, _ = ctx.study()
    real = pd.concat([real, real[["x1"]]], axis=1)
    _fit(ctx, real=real, proxy=proxy)


def _outcome_on_both_sides(ctx):
    real, proxy, _ = ctx.study()
    _fit(ctx, "y ~ y + x1", real=real, proxy=proxy)


def _outcome_fitted_exactly(ctx):
    real, proxy, _ = ctx.study()
    real["y"] = 1 + 2 * real["x1"] - real["x2"]
    _fit(ctx, real=real, proxy=proxy)


def _numeric_and_text(ctx):
    real, proxy, _ = ctx.study()
    proxy["x2"] = np.where(proxy["x2"] > 0, "high", "low")
    _fit(ctx, real=real, proxy=proxy)


def _level_1_and_text_1(ctx):
    real, proxy, _ = ctx.study()
    proxy["g"] = np.arange(len(proxy)) % 3
    real["g"] = proxy.loc[real.index, "g"].astype(str)
    _fit(ctx, "y ~ x1 + C(g)", real=real, proxy=proxy)


def _unknown_wald_term(ctx):
    real, proxy, _ = ctx.study()
    res = _fit(ctx, real=real, proxy=proxy)
    res.wald_test("x3 = 0", scalar=True)


def _few_labeled_for_moments(ctx):
    real, proxy, synth = ctx.study()
    _fit(ctx, real=real.iloc[:8], proxy=proxy, synth=synth)


def _every_unit_labeled(ctx):
    _, proxy, _ = ctx.study()
    real = proxy.assign(y=proxy["y"] + 0.5)
    _fit(ctx, real=real, proxy=proxy)


def _constant_proxy(ctx):
    real, proxy, _ = ctx.study()
    _fit(ctx, real=real, proxy=proxy.assign(y=0.0))


def _constant_poisson_proxy(ctx):
    real, proxy, _ = ctx.study("poisson")
    _fit(ctx, real=real, proxy=proxy.assign(y=2.0), model="poisson")


def _near_collinear(ctx):
    real, proxy, _ = ctx.study()
    real["x3"] = real["x1"] + 1e-9 * real["x2"]
    proxy["x3"] = proxy["x1"] + 1e-9 * proxy["x2"]
    _fit(ctx, "y ~ x1 + x3", real=real, proxy=proxy)


def _few_clusters(ctx):
    real, proxy, _ = ctx.study()
    proxy["g"] = np.arange(len(proxy)) % 4
    _fit(ctx, real=real, proxy=proxy, cov_type="cluster", cov_kwds={"groups": "g"}, weight_type="cluster")


def _labeled_in_few_clusters(ctx):
    real, proxy, _ = ctx.study()
    proxy["g"] = [f"c{i % 30}" for i in range(len(proxy))]
    labeled = proxy.index[proxy["g"].isin(["c0", "c1", "c2", "c3"])]
    real = proxy.loc[labeled].assign(y=lambda f: f["y"] + 0.3).drop(columns="g")
    _fit(ctx, real=real, proxy=proxy, cov_type="cluster", cov_kwds={"groups": "g"}, weight_type="cluster")


def _few_units_for_synthetic(ctx):
    real, _, synth = ctx.study()
    units = real.index[:6]
    _fit(ctx, real=real.loc[units[:5]], synth=synth.loc[synth.index.isin(units)])


def _extreme_labeling_prob(ctx):
    real, proxy, _ = ctx.study()
    prob = pd.Series(0.3, index=real.index)
    prob.iloc[0] = 1e-9
    _fit(ctx, real=real, proxy=proxy, labeling_prob=prob)


def _repeated_source(ctx):
    real, proxy, _ = ctx.study()
    _fit(ctx, real=real, proxy={"gpt": proxy, "copy": proxy.copy()})


def _bootstrap_few_clusters(ctx):
    real, proxy, _ = ctx.study(n_units=240, n_labeled=120)
    proxy["g"] = np.arange(len(proxy)) % 12
    res = _fit(ctx, real=real, proxy=proxy, cov_type="cluster", cov_kwds={"groups": "g"}, weight_type="cluster")
    res.bootstrap(n_boot=20, seed=1).conf_int()


def _few_labeled_warning(ctx):
    real, proxy, synth = ctx.study()
    noisy = proxy.assign(y=proxy["y"] + np.random.default_rng(0).normal(size=len(proxy)))
    _fit(ctx, real=real.iloc[:14], proxy={"a": proxy, "b": noisy}, synth=synth)


def _simulate_foreign_dir(ctx):
    ctx.csv("summary.csv", "my,own,results\n1,2,3\n")
    _cli("simulate", "--output", str(ctx.root), "--n-labeled", "50", "--n-units", "200",
         "--models", "ols", "--scenarios", "proxy", "--trials", "1", "--no-progress")


def _simulate_symlink(ctx):
    target = ctx.root / "elsewhere.csv"
    target.write_text("precious\n")
    ctx.files[target] = target.read_bytes()
    out = ctx.root / "run"
    out.mkdir()
    (out / "trials.csv").symlink_to(target)
    experiments.run_simulation(out, n_labeled=[50], n_units=200, models=["ols"], scenarios=["proxy"],
                               trials=1, progress=False)


CASES: list[Case] = [
    Case("text-numbers", "API", "a covariate of numbers stored as text (pandas 3 `str` dtype: '1.5', '2.25')",
         "`SpecificationError` naming the frame and column: numbers stored as text would be fitted "
         "as a categorical; convert with `pd.to_numeric`", SpecificationError,
         ("frame 'real'", "'x1'", "numbers stored as text", "pd.to_numeric"), _text_numbers),
    Case("pyarrow-text-numbers", "API", "the same with a `string[pyarrow]` column",
         "the same `SpecificationError`", SpecificationError,
         ("frame 'real'", "'x1'", "numbers stored as text"), _pyarrow_text_numbers),
    Case("stray-marker", "API", "numbers as text with a stray marker ('1.5', 'n.a.', '2.25')",
         "`SpecificationError`: mostly numbers stored as text, with the values that are not numbers",
         SpecificationError, ("frame 'real'", "'x1'", "mostly numbers", "'n.a.'"), _stray_marker),
    Case("cli-stray-marker", "CLI", "a CSV column of numbers with one 'n.a.' (not one of pandas' NA markers)",
         "pandas reads the column as text: the same `SpecificationError` for frame 'real', naming 'n.a.'",
         SpecificationError, ("frame 'real'", "'x1'", "mostly numbers", "'n.a.'"), _cli_stray_marker),
    Case("decimal-commas", "API", "numbers with decimal commas ('0,5') as text",
         "`SpecificationError`: numbers with decimal commas stored as text, with an example value",
         SpecificationError, ("frame 'real'", "'x1'", "decimal commas"), _decimal_commas),
    Case("cli-decimal-commas", "CLI", "a comma-separated file with quoted decimal commas (\"0,5\")",
         "the same error for frame 'real'", SpecificationError,
         ("frame 'real'", "'x1'", "decimal commas"), _cli_decimal_commas),
    Case("default-range-index", "API", "`real` (and `proxy`) with pandas' default RangeIndex: `set_index` forgotten",
         "`SpecificationError` naming the units 0, 1, 2, ... it would have matched; a named index "
         "says the integers are ids", SpecificationError,
         ("RangeIndex", "set_index", "[0, 1, 2", "frame 'proxy'"), _default_range_index),
    Case("default-range-index-text-ids", "API", "`real` with the default RangeIndex, `proxy` indexed by text ids",
         "the same `SpecificationError` (not a list of missing units)", SpecificationError,
         ("RangeIndex", "set_index", "none of them is a unit id of frame 'proxy'"), _range_index_text_ids),
    Case("clusters-disagree", "API", "a cluster column whose value for a unit differs between `real` and `proxy`",
         "`SpecificationError` naming the frames, the units and both values", SpecificationError,
         ("cluster groups", "'g'", "'proxy'", "'real'", "'g_other'"), _clusters_disagree),
    Case("nan-unit-id", "API", "a missing (NaN) unit id",
         "`SpecificationError` naming the frame and the row", SpecificationError,
         ("frame 'proxy'", "missing unit id"), _nan_unit_id),
    Case("cli-repeated-header", "CLI", "a CSV header naming a column twice (`unit,y,x1,x1`)",
         "`CLIError` naming the file and the column (pandas would silently rename the copy `x1.1`)",
         cli.CLIError, ("real file", "real.csv", "['x1']", "x1.1"), _cli_repeated_header),
    Case("cli-ambiguous-proxy", "CLI", "`--proxy run=1.csv` when files `run=1.csv` and `1.csv` both exist",
         "`CLIError`: ambiguous, with both ways to say which is meant (an existing `run=1.csv` "
         "alone is read as that file)", cli.CLIError, ("ambiguous", "'run=1.csv'", "'1.csv'"),
         _cli_ambiguous_proxy),
    Case("cli-single-column", "CLI", "a file with an unrecognised delimiter (':')",
         "`CLIError`: a single column, probably another delimiter (';' and tabs are detected)",
         cli.CLIError, ("real file", "single column", "delimiter"), _cli_single_column),
    Case("duplicate-columns", "API", "a frame with two columns named `x1`",
         "`SpecificationError` naming the frame and the column", SpecificationError,
         ("frame 'real'", "several columns named ['x1']"), _duplicate_columns),
    Case("outcome-on-both-sides", "API", "`y ~ y + x1`",
         "`SpecificationError`: the outcome is also on the right-hand side", SpecificationError,
         ("'y'", "right-hand side"), _outcome_on_both_sides),
    Case("outcome-fitted-exactly", "API", "an OLS outcome that is an exact function of the terms, with a proxy",
         "`SpecificationError`: fitted exactly, no sampling variance", SpecificationError,
         ("frame 'real'", "fitted exactly", "'y'"), _outcome_fitted_exactly),
    Case("numeric-and-text", "API", "a column numeric in `real` and text in `proxy`",
         "`SpecificationError` naming the column, the frames and their dtypes", SpecificationError,
         ("'x2'", "numeric in frame(s) 'real'", "text in frame(s) 'proxy'"), _numeric_and_text),
    Case("level-1-and-text-1", "API", "a level coded 1 in `proxy` and '1' in `real` (`C(g)`)",
         "the same `SpecificationError`: 1 and '1' would not be the same level", SpecificationError,
         ("'g'", "numeric in frame(s) 'proxy'", "text in frame(s) 'real'"), _level_1_and_text_1),
    Case("unknown-wald-term", "API", "`res.wald_test('x3 = 0')` with no term x3",
         "`SpecificationError` listing the valid terms", SpecificationError,
         ("'x3 = 0'", "['Intercept', 'x1', 'x2']"), _unknown_wald_term),
    Case("singular-few-labeled", "API", "8 labeled units, a proxy and a synthetic source (9 labeled moments)",
         "`SingularMomentsError`: 8 labeled units for 9 labeled moments", SingularMomentsError,
         ("only 8 labeled units", "9 moments"), _few_labeled_for_moments),
    Case("singular-all-labeled", "API", "every unit labeled (n = N) with a proxy",
         "`SingularMomentsError`: every unit is labeled, use the human-only fit", SingularMomentsError,
         ("every unit is labeled", "n = N = 120"), _every_unit_labeled),
    Case("constant-proxy", "API", "a proxy whose outcome is always 0 (OLS, logit or Poisson)",
         "`SpecificationError`: the source's outcome is constant, so it is refused (no information; "
         "for OLS S would be singular, for logit and Poisson its estimate does not exist); without "
         "it the fit is the human-only fit", SpecificationError,
         ("proxy source 'proxy'", "constant", "every value 0", "human-only"), _constant_proxy),
    Case("constant-proxy-poisson", "API", "a Poisson proxy whose outcome is always 2",
         "the same `SpecificationError` (it was numpy's `LinAlgError`)", SpecificationError,
         ("proxy source 'proxy'", "constant", "every value 2"), _constant_poisson_proxy),
    Case("singular-collinear", "API", "two covariates equal up to 1e-9",
         "`SingularMomentsError`: the design is nearly collinear, with the condition number and the columns",
         SingularMomentsError, ("nearly collinear", "['x1', 'x3']"), _near_collinear),
    Case("singular-few-clusters", "API", "`weight_type='cluster'` (a clustered weight matrix) with 4 clusters for 9 moments",
         "`SingularMomentsError`: 4 clusters for 9 moment conditions", SingularMomentsError,
         ("only 4 clusters", "9 moment conditions"), _few_clusters),
    Case("singular-labeled-in-few-clusters", "API", "`weight_type='cluster'` with 30 clusters, but the labeled units all in 4 of them",
         "`SingularMomentsError`: the labeled units lie in only 4 clusters for 6 labeled moments",
         SingularMomentsError, ("only 4 clusters", "6 moments"), _labeled_in_few_clusters),
    Case("singular-few-units", "API", "a synthetic source naming 6 units (5 labeled) for 9 moments",
         "`SingularMomentsError`: 6 units for 9 moment conditions (and 5 labeled units for 6 labeled moments)",
         SingularMomentsError, ("only 6 units", "9 moment conditions", "only 5 labeled units"),
         _few_units_for_synthetic),
    Case("singular-extreme-pi", "API", "one labeling probability 1e-9 among 0.3s",
         "`SingularMomentsError` naming the unit and its weight", SingularMomentsError,
         ("extreme labeling probability", "pi = 1e-09"), _extreme_labeling_prob),
    Case("singular-repeated-source", "API", "the same proxy twice under two names",
         "`SingularMomentsError`: one source repeats the other", SingularMomentsError,
         ("source 'copy' repeats source 'gpt'", "Drop the duplicate source"), _repeated_source),
    Case("bootstrap-few-clusters", "API", "`res.bootstrap()` of a fit with `weight_type='cluster'` and 12 clusters for 9 moments",
         "`BootstrapFailureError` (a `ConvergenceError`, after a warning) saying the resamples hold "
         "too few distinct clusters, not separation", ConvergenceError, ("distinct clusters", "12 clusters for 9 moment conditions"),
         _bootstrap_few_clusters),
    Case("few-labeled-warning", "API", "14 labeled units for 21 moment conditions (3 sources)",
         "`FewLabeledWarning` (and a note in `summary()`); the fit goes on", FewLabeledWarning,
         ("labeled units per moment condition", "14 labeled units for 21 moments"), _few_labeled_warning),
    Case("simulate-foreign-dir", "CLI", "`synthinfer simulate --output DIR` with DIR holding someone's `summary.csv`",
         "`OutputDirectoryError`: not a previous run of this study; nothing is written", OutputDirectoryError,
         ("not empty", "['summary.csv']"), _simulate_foreign_dir),
    Case("simulate-symlink", "API", "an output directory whose `trials.csv` is a symbolic link",
         "`OutputDirectoryError`; the link's target is untouched", OutputDirectoryError,
         ("symbolic link", "['trials.csv']"), _simulate_symlink),
]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(cases: list[Case] = CASES) -> str:
    """The docs page: the table as Markdown."""
    lines = [
        "# Bad input: what you pass, what you get",
        "",
        "Every row is a test (`tests/test_bad_input.py`, cases in `tests/bad_input_cases.py`): it",
        "checks the exception or warning type, that the message names what the row says, and that",
        "the frames and files passed are left untouched. The page is generated from those cases",
        "(`python tests/bad_input_cases.py > docs/bad-input.md`) and a test checks that it is",
        "current. Errors come from `synthinfer.exceptions` (the command line's own `CLIError`",
        "aside); the command line prints them as one line `synthinfer: error: ...` with exit code 2.",
        "",
        "| Case | Where | What you pass | What you get |",
        "| --- | --- | --- | --- |",
    ]
    for case in cases:
        lines.append(f"| `{case.id}` | {case.interface} | {_cell(case.passed)} | {_cell(case.answer)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
