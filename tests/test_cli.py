"""The ``synthinfer`` command line: every option, and bad input ending in one line and exit code 2."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import sysconfig
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import synthinfer
import synthinfer.api as smf
from synthinfer import cli
from synthinfer.cli import main
from synthinfer.datasets import load_politeness
from synthinfer.simulate import make_study

FORMULA = "y ~ x1 + x2"


@pytest.fixture(scope="module")
def study():
    return make_study("logit", n_units=600, n_labeled=150, seed=17)


@pytest.fixture(scope="module")
def files(tmp_path_factory, study) -> dict[str, Path]:
    """The study as files: index written as the first column ("unit")."""
    root = tmp_path_factory.mktemp("cli")
    groups = pd.Series([f"g{i % 40:02d}" for i in range(600)], index=study.proxy.index, name="g")
    rng = np.random.default_rng(0)
    flip = rng.random(600) < 0.2
    paths = {
        "real": study.real,
        "proxy": study.proxy,
        "proxy2": study.proxy.assign(y=np.where(flip, 1 - study.proxy["y"], study.proxy["y"])),
        "synth": study.synth,
        "synth2": study.synth.assign(x1=study.synth["x1"] + rng.normal(scale=0.3, size=1200)),
        "realg": study.real.join(groups),
        "proxyg": study.proxy.join(groups),
    }
    out = {}
    for name, frame in paths.items():
        out[name] = root / f"{name}.csv"
        frame.to_csv(out[name])
    for name in ("real", "proxy", "synth"):
        out[f"{name}_parquet"] = root / f"{name}.parquet"
        getattr(study, name).to_parquet(out[f"{name}_parquet"])
    out["root"] = root
    return out


def run(capsys, *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def fit_json(capsys, *argv: object) -> dict:
    code, out, err = run(capsys, "fit", FORMULA, *argv, "--output", "json")
    assert code == 0, err
    return json.loads(out)


def assert_matches(result: dict, res) -> None:
    """A JSON result equals a library fit."""
    ci = res.conf_int()
    for term in res.params.index:
        assert result["params"][term] == pytest.approx(res.params[term], rel=1e-10, abs=1e-12)
        assert result["bse"][term] == pytest.approx(res.bse[term], rel=1e-10)
        assert result["pvalues"][term] == pytest.approx(res.pvalues[term], rel=1e-8, abs=1e-300)
        assert result["conf_int"][term] == pytest.approx(list(ci.loc[term]), rel=1e-10, abs=1e-12)
    assert result["nobs"] == res.nobs and result["n_labeled"] == res.n_labeled


# -- no command, help, version ---------------------------------------------------------


def test_no_command_prints_help(capsys) -> None:
    code, out, err = run(capsys)
    assert code == 0 and err == ""
    assert out.startswith("usage: synthinfer") and "demo" in out and "fit" in out


@pytest.mark.parametrize("argv", [["--help"], ["fit", "--help"], ["demo", "--help"]])
def test_help(capsys, argv) -> None:
    code, out, _ = run(capsys, *argv)
    assert code == 0 and "usage: synthinfer" in out


def test_version(capsys) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"synthinfer {synthinfer.__version__}"


# -- demo --------------------------------------------------------------------------------


def _demo_expected(n_labeled: int, seed: int) -> tuple[str, pd.Series]:
    data = load_politeness()
    real, proxy = data.sample(n_labeled, seed=seed)
    fits = {
        "Human only": smf.classical(data.formula, real=real, model="logit").fit(),
        "PPI++": smf.ppi(data.formula, real=real, proxy=proxy, model="logit").fit(),
        "GMM-Proxy": smf.gmm_proxy(data.formula, real=real, proxy=proxy, model="logit").fit(),
    }
    truth = smf.classical(data.formula, real=data.human, model="logit").fit()
    return str(synthinfer.compare(fits)), truth.params


def test_demo_prints_the_comparison_and_the_truth(capsys) -> None:
    code, out, err = run(capsys, "demo")
    assert code == 0 and err == ""
    table, truth = _demo_expected(300, 0)
    assert table in out
    assert "effective n" in out
    assert "a random 300 (seed 0)" in out
    assert "Full-data truth (human labels of all 5,480 requests)" in out
    assert f"hedging              {truth['hedging']:.4f}" in out
    assert "Stanford Politeness Corpus" in out and "Kristina Gligoric" in out


def test_demo_options(capsys) -> None:
    code, out, _ = run(capsys, "demo", "--n-labeled", 500, "--seed", 3)
    assert code == 0
    table, _ = _demo_expected(500, 3)
    assert table in out and "a random 500 (seed 3)" in out
    default_table, _ = _demo_expected(300, 0)
    assert default_table not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--n-labeled", "0"], "n_labeled must be between 1 and 5480"),
        (["--n-labeled", "6000"], "n_labeled must be between 1 and 5480"),
        (["--n-labeled", "many"], "argument --n-labeled: expected an integer, got 'many'"),
        (["--seed", "-1"], "synthinfer: error:"),
    ],
)
def test_demo_bad_options(capsys, argv, message) -> None:
    code, out, err = run(capsys, "demo", *argv)
    assert code == 2 and out == ""
    assert err.splitlines()[-1].startswith("synthinfer: error:")
    assert message in err and "Traceback" not in err


# -- fit: outputs --------------------------------------------------------------------------


def test_fit_text_prints_the_summary(capsys, files, study) -> None:
    code, out, err = run(
        capsys, "fit", FORMULA, "--real", files["real"], "--proxy", files["proxy"],
        "--synth", files["synth"], "--model", "logit",
    )
    assert code == 0 and err == ""
    res = smf.gmm_synth(FORMULA, real=study.real, proxy=study.proxy, synth=study.synth, model="logit").fit()
    assert "GMM-Synth Logit Regression Results" in out
    assert "No. Labeled (n):                  150" in out
    assert f"{res.params['x1']:.4f}" in out and f"{res.bse['x1']:.3f}" in out


def test_fit_json_matches_the_library(capsys, files, study) -> None:
    result = fit_json(
        capsys, "--real", files["real"], "--proxy", files["proxy"], "--synth", files["synth"], "--model", "logit"
    )
    res = smf.gmm_synth(FORMULA, real=study.real, proxy=study.proxy, synth=study.synth, model="logit").fit()
    assert set(result) >= {
        "params", "bse", "conf_int", "pvalues", "nobs", "n_labeled", "jtest", "estimator", "model"
    }
    assert_matches(result, res)
    jval, jpval, jdf = res.jtest()
    assert result["jtest"] == {"statistic": pytest.approx(jval), "pvalue": pytest.approx(jpval), "df": jdf}
    assert result["estimator"] == "GMM-Synth" and result["model"] == "logit"
    assert [s["name"] for s in result["sources"]] == ["proxy", "synth"]
    assert result["sources"][1] == {"name": "synth", "kind": "synthetic", "rows": 1200, "units": 600}


def test_fit_json_human_only_has_null_j_pvalue(capsys, files) -> None:
    result = fit_json(capsys, "--real", files["real"], "--model", "logit")
    assert result["estimator"] == "Human only"
    assert result["jtest"] == {"statistic": 0.0, "pvalue": None, "df": 0}


def test_fit_csv_table(capsys, files, study) -> None:
    code, out, _ = run(
        capsys, "fit", FORMULA, "--real", files["real"], "--proxy", files["proxy"], "--model", "logit",
        "--output", "csv",
    )
    assert code == 0
    table = pd.read_csv(io.StringIO(out), index_col="term")
    # the default's t inference names its statistic t
    assert list(table.columns) == ["coef", "std_err", "t", "p_value", "ci_lower", "ci_upper"]
    res = smf.gmm_proxy(FORMULA, real=study.real, proxy=study.proxy, model="logit").fit()
    np.testing.assert_allclose(table["coef"], res.params, rtol=1e-12)
    np.testing.assert_allclose(table["std_err"], res.bse, rtol=1e-12)
    np.testing.assert_allclose(table["t"], res.tvalues, rtol=1e-12)
    np.testing.assert_allclose(table[["ci_lower", "ci_upper"]], res.conf_int(), rtol=1e-12)
    # the table is the results' tidy() (columns renamed), the one coefficient table
    np.testing.assert_allclose(table.to_numpy(), res.tidy().to_numpy(), rtol=1e-12)
    assert list(table.index) == list(res.tidy().index)
    # the plain two-step by name: z
    code, out, _ = run(
        capsys, "fit", FORMULA, "--real", files["real"], "--proxy", files["proxy"], "--model", "logit",
        "--output", "csv", "--correction", "none", "--shrinkage", "none",
    )
    plain = smf.gmm_proxy(FORMULA, real=study.real, proxy=study.proxy, model="logit").fit(correction=None, shrinkage=None)
    table = pd.read_csv(io.StringIO(out), index_col="term")
    np.testing.assert_allclose(table["z"], plain.tvalues, rtol=1e-12)
    np.testing.assert_allclose(table[["ci_lower", "ci_upper"]], plain.conf_int(), rtol=1e-12)


# -- fit: options ---------------------------------------------------------------------------


def test_named_and_numbered_sources(capsys, files, study) -> None:
    named = fit_json(
        capsys, "--real", files["real"], "--proxy", f"gpt={files['proxy']}", "--proxy", f"claude={files['proxy2']}",
        "--synth", f"gen={files['synth']}", "--model", "logit",
    )
    assert [s["name"] for s in named["sources"]] == ["gpt", "claude", "gen"]
    numbered = fit_json(
        capsys, "--real", files["real"], "--proxy", files["proxy"], "--proxy", files["proxy2"],
        "--synth", files["synth"], "--synth", files["synth2"], "--model", "logit",
    )
    assert [s["name"] for s in numbered["sources"]] == ["proxy1", "proxy2", "synth1", "synth2"]
    proxy2 = pd.read_csv(files["proxy2"], index_col="unit")
    res = smf.gmm_synth(
        FORMULA, real=study.real, proxy={"gpt": study.proxy, "claude": proxy2},
        synth={"gen": study.synth}, model="logit",
    ).fit()
    assert_matches(named, res)


def test_a_path_with_an_equals_sign_is_a_path(capsys, files) -> None:
    odd = files["root"] / "dir=1"
    odd.mkdir(exist_ok=True)
    shutil.copy(files["proxy"], odd / "proxy.csv")
    result = fit_json(capsys, "--real", files["real"], "--proxy", odd / "proxy.csv", "--model", "logit")
    assert [s["name"] for s in result["sources"]] == ["proxy"]


@pytest.mark.parametrize("model", ["ols", "logit", "poisson"])
def test_model_option(capsys, tmp_path, model) -> None:
    s = make_study(model, n_units=400, n_labeled=100, seed=2)
    s.real.to_csv(tmp_path / "r.csv")
    s.proxy.to_csv(tmp_path / "p.csv")
    result = fit_json(capsys, "--real", tmp_path / "r.csv", "--proxy", tmp_path / "p.csv", "--model", model)
    assert result["model"] == model
    assert_matches(result, smf.gmm_proxy(FORMULA, real=s.real, proxy=s.proxy, model=model).fit())


def test_default_model_is_ols(capsys, files, study) -> None:
    result = fit_json(capsys, "--real", files["real"])
    assert result["model"] == "ols"
    assert_matches(result, smf.classical(FORMULA, real=study.real, model="ols").fit())


def test_unit_col_option(capsys, tmp_path, study) -> None:
    # the id column is not first: --unit-col names it
    for name, frame in (("r", study.real), ("p", study.proxy)):
        frame.reset_index()[["y", "x1", "unit", "x2"]].rename(columns={"unit": "id"}).to_csv(
            tmp_path / f"{name}.csv", index=False
        )
    result = fit_json(capsys, "--real", tmp_path / "r.csv", "--proxy", tmp_path / "p.csv", "--model", "logit",
                      "--unit-col", "id")
    assert_matches(result, smf.gmm_proxy(FORMULA, real=study.real, proxy=study.proxy, model="logit").fit())
    # without it the first column (y) would be the id: not unique, a clear error
    code, _, err = run(capsys, "fit", FORMULA, "--real", tmp_path / "r.csv", "--model", "logit")
    assert code == 2 and "unique" in err


def test_unit_ids_are_read_as_text(capsys, tmp_path) -> None:
    # ids with leading zeros in CSV stay distinct from numbers; Parquet integer ids match CSV ids
    s = make_study("ols", n_units=300, n_labeled=80, seed=4)
    ids = pd.Index([f"{i:04d}" for i in range(300)], name="unit")
    proxy = s.proxy.set_axis(ids)
    real = proxy.loc[ids[s.proxy.index.isin(s.real.index)]].assign(y=s.real["y"].to_numpy())
    real.to_csv(tmp_path / "r.csv")
    proxy.to_csv(tmp_path / "p.csv")
    result = fit_json(capsys, "--real", tmp_path / "r.csv", "--proxy", tmp_path / "p.csv")
    assert result["nobs"] == 300 and result["n_labeled"] == 80
    numeric = proxy.set_axis(pd.Index(range(300), name="unit"))
    numeric.to_parquet(tmp_path / "p.parquet")
    real.set_axis(pd.Index([int(u) for u in real.index], name="unit")).to_csv(tmp_path / "r2.csv")
    mixed = fit_json(capsys, "--real", tmp_path / "r2.csv", "--proxy", tmp_path / "p.parquet")
    assert mixed["params"] == pytest.approx(result["params"])


def test_cluster_covariance(capsys, files, study) -> None:
    result = fit_json(
        capsys, "--real", files["realg"], "--proxy", files["proxyg"], "--model", "logit",
        "--cov", "cluster", "--groups", "g",
    )
    real = study.real.assign(g=[f"g{int(u[4:]) % 40:02d}" for u in study.real.index])
    proxy = study.proxy.assign(g=[f"g{i % 40:02d}" for i in range(600)])
    res = smf.gmm_proxy(FORMULA, real=real, proxy=proxy, model="logit").fit(
        cov_type="cluster", cov_kwds={"groups": "g"}
    )
    assert result["cov_type"] == "cluster"
    assert_matches(result, res)
    hc0 = fit_json(capsys, "--real", files["realg"], "--proxy", files["proxyg"], "--model", "logit", "--cov", "HC0")
    assert hc0["cov_type"] == "HC0" and hc0["bse"] != result["bse"]


def test_soft_llm_labels_as_a_logit_proxy(capsys, files, study, tmp_path) -> None:
    """An LLM's probabilities (not 0/1) as the logit proxy's outcome: the command line fits them as the library does."""
    soft = study.proxy.assign(y=np.clip(0.15 + 0.7 * study.proxy["y"] + 0.1 * np.tanh(study.proxy["x1"]), 0, 1))
    soft.to_csv(tmp_path / "soft.csv")
    result = fit_json(capsys, "--real", files["real"], "--proxy", tmp_path / "soft.csv", "--model", "logit")
    res = smf.gmm_proxy(FORMULA, real=study.real, proxy=soft, model="logit").fit()
    assert_matches(result, res)
    assert soft["y"].between(0, 1).all() and not soft["y"].isin([0, 1]).all()


def test_cov_choices_are_the_covariance_names(capsys, files, study) -> None:
    from typing import get_args

    from synthinfer.cli import build_parser
    from synthinfer.covariance import COVARIANCES, CovType

    fit = build_parser()._subparsers._group_actions[0].choices["fit"]
    choices = {a.dest: a.choices for a in fit._actions if a.dest in ("cov", "weight")}
    assert tuple(choices["cov"]) == tuple(choices["weight"]) == get_args(CovType)
    assert set(get_args(CovType)) == set(COVARIANCES)  # the type and the registry name the same estimators
    result = fit_json(capsys, "--real", files["real"], "--proxy", files["proxy"], "--model", "logit", "--cov-type", "HC1")
    res = smf.gmm_proxy(FORMULA, real=study.real, proxy=study.proxy, model="logit").fit(cov_type="HC1")
    assert result["cov_type"] == "HC1"
    assert_matches(result, res)
    # HC3 where it is defined: the human-only OLS fit (statsmodels' HC3 with use_t=True)
    result = fit_json(capsys, "--real", files["real"], "--cov-type", "HC3")
    res = smf.classical(FORMULA, real=study.real).fit(cov_type="HC3")
    assert result["cov_type"] == "HC3"
    assert_matches(result, res)
    ref = sm.OLS(study.real["y"], sm.add_constant(study.real[["x1", "x2"]])).fit(cov_type="HC3", use_t=True)
    assert [result["bse"][t] for t in ("Intercept", "x1", "x2")] == pytest.approx(list(ref.bse), rel=1e-6)


@pytest.mark.parametrize("engine", ["patsy", "formulaic"])
def test_engine_option(capsys, files, study, engine) -> None:
    result = fit_json(capsys, "--real", files["real"], "--proxy", files["proxy"], "--model", "logit",
                      "--engine", engine)
    res = smf.gmm_proxy(FORMULA, real=study.real, proxy=study.proxy, model="logit", engine=engine).fit()
    assert_matches(result, res)


def test_formula_may_use_numpy(capsys, files, study) -> None:
    code, out, err = run(capsys, "fit", "y ~ x1 + np.exp(x2)", "--real", files["real"], "--model", "logit",
                         "--output", "json")
    assert code == 0, err
    assert "np.exp(x2)" in json.loads(out)["params"]


def test_parquet_files(capsys, files, study) -> None:
    from_parquet = fit_json(
        capsys, "--real", files["real_parquet"], "--proxy", files["proxy_parquet"],
        "--synth", files["synth_parquet"], "--model", "logit",
    )
    from_csv = fit_json(
        capsys, "--real", files["real"], "--proxy", files["proxy"], "--synth", files["synth"], "--model", "logit"
    )
    assert from_parquet["params"] == pytest.approx(from_csv["params"], rel=1e-12)
    assert from_parquet["bse"] == pytest.approx(from_csv["bse"], rel=1e-12)


def test_parquet_without_pyarrow_is_a_clear_error(capsys, monkeypatch, files) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    code, out, err = run(capsys, "fit", FORMULA, "--real", files["real_parquet"])
    assert code == 2 and out == ""
    assert err == (
        f"synthinfer: error: cannot read real file '{files['real_parquet']}': reading Parquet "
        f"files needs pyarrow (python -m pip install pyarrow)\n"
    )


def test_compressed_csv(capsys, files, study, tmp_path) -> None:
    study.real.to_csv(tmp_path / "real.csv.gz")
    result = fit_json(capsys, "--real", tmp_path / "real.csv.gz", "--model", "logit")
    assert_matches(result, smf.classical(FORMULA, real=study.real, model="logit").fit())


# -- fit: bad input ------------------------------------------------------------------------


def _bad_files(root: Path, study) -> dict[str, Path]:
    bad = {}
    bad["empty"] = root / "empty.csv"
    bad["empty"].write_text("")
    bad["text"] = root / "notes.txt"
    bad["text"].write_text("unit,y\n")
    bad["corrupt_gz"] = root / "corrupt.csv.gz"
    bad["corrupt_gz"].write_text("unit,y\nu1,1\n")  # not gzip
    bad["corrupt_parquet"] = root / "corrupt.parquet"
    bad["corrupt_parquet"].write_bytes(b"this is not parquet")
    bad["text_outcome"] = root / "text_outcome.csv"
    study.real.assign(y=np.where(study.real["y"] > 0, "polite", "rude")).to_csv(bad["text_outcome"])
    bad["no_x2"] = root / "no_x2.csv"
    study.proxy.drop(columns="x2").to_csv(bad["no_x2"])
    bad["outcome_2"] = root / "outcome_2.csv"
    study.real.assign(y=study.real["y"] * 2).to_csv(bad["outcome_2"])
    bad["dup_ids"] = root / "dup_ids.csv"
    pd.concat([study.real, study.real.iloc[:2]]).to_csv(bad["dup_ids"])
    bad["blank_id"] = root / "blank_id.csv"
    study.real.reset_index().assign(unit=lambda f: f["unit"].where(f.index != 3)).to_csv(bad["blank_id"], index=False)
    return bad


BAD_INPUT = [
    # (argv after "fit", words the message must contain)
    ([FORMULA, "--real", "{root}/missing.csv"], ["real file", "missing.csv", "does not exist"]),
    ([FORMULA, "--real", "{real}", "--proxy", "{root}/nope.parquet"], ["proxy file", "nope.parquet", "does not exist"]),
    ([FORMULA, "--real", "{root}"], ["is a directory"]),
    ([FORMULA, "--real", "{text}"], ["unknown file type", ".csv", ".parquet"]),
    ([FORMULA, "--real", "{empty}"], ["cannot read real file", "empty.csv"]),
    ([FORMULA, "--real", "{corrupt_gz}"], ["cannot read real file", "corrupt.csv.gz"]),
    ([FORMULA, "--real", "{real}", "--synth", "{corrupt_parquet}"], ["cannot read synth file", "corrupt.parquet"]),
    ([FORMULA, "--real", "{real}", "--proxy", "{no_x2}"], ["missing formula variable", "x2"]),
    ([FORMULA, "--real", "{real}", "--unit-col", "id"], ["no unit id column 'id'", "--unit-col"]),
    ([FORMULA, "--real", "{blank_id}"], ["unit id column 'unit' is empty", "[4]"]),
    ([FORMULA, "--real", "{dup_ids}"], ["unique unit ids"]),
    (["y ~ x1 +", "--real", "{real}"], ["formula 'y ~ x1 +'", "could not be evaluated"]),
    (["y ~ x1 +", "--real", "{real}", "--engine", "formulaic"], ["formula 'y ~ x1 +'", "could not be evaluated"]),
    (["y ~ x1 + nosuch", "--real", "{real}"], ["nosuch"]),
    (["y x1", "--real", "{real}"], ["formula must be a string 'outcome ~ terms'"]),
    ([FORMULA, "--real", "{text_outcome}"], ["outcome 'y' must be numeric"]),
    ([FORMULA, "--real", "{outcome_2}", "--model", "logit"], ["logit outcome must be 0 or 1"]),
    ([FORMULA, "--real", "{real}", "--proxy", "a={proxy}", "--proxy", "a={proxy}"], ["two --proxy sources are named 'a'"]),
    ([FORMULA, "--real", "{real}", "--proxy", "real={proxy}"], ["source names must be unique and not 'real'"]),
    ([FORMULA, "--real", "{real}", "--cov", "cluster"], ["--cov cluster needs --groups"]),
    ([FORMULA, "--real", "{real}", "--groups", "g"], ["--groups is only used with --cov cluster"]),
    ([FORMULA, "--real", "{realg}", "--proxy", "{proxy}", "--cov", "cluster", "--groups", "nosuch"], ["nosuch"]),
    ([FORMULA, "--real", "{real}", "--model", "tobit"], ["argument --model: invalid choice: 'tobit'"]),
    ([FORMULA, "--real", "{real}", "--cov", "HC4"], ["argument --cov/--cov-type: invalid choice"]),
    ([FORMULA, "--real", "{real}", "--proxy", "{proxy}", "--cov", "HC3"],
     ["cov_type='HC3' is not available with auxiliary sources", "'HC1'"]),
    ([FORMULA, "--real", "{real}", "--model", "logit", "--cov", "HC2"], ["cov_type='HC2' is available for least squares only"]),
    ([FORMULA, "--real", "{real}", "--engine", "R"], ["argument --engine: invalid choice"]),
    ([FORMULA, "--real", "{real}", "--output", "xml"], ["argument --output: invalid choice"]),
    ([FORMULA], ["the following arguments are required: --real"]),
    (["--real", "{real}"], ["the following arguments are required: FORMULA"]),
]


@pytest.mark.parametrize(("argv", "words"), BAD_INPUT, ids=[" ".join(a)[:60] for a, _ in BAD_INPUT])
def test_bad_input_is_one_line_and_exit_code_2(capsys, files, study, argv, words) -> None:
    bad = _bad_files(files["root"], study)
    paths = {k: str(v) for k, v in {**files, **bad}.items()}
    code, out, err = run(capsys, "fit", *[a.format(**paths) for a in argv])
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    last = err.rstrip("\n").splitlines()[-1]
    assert last.startswith("synthinfer: error: ")
    for word in words:
        assert word in last, last
    # our own messages are exactly one line; argparse's are preceded by the usage
    lines = err.rstrip("\n").splitlines()
    assert len(lines) == 1 or lines[0].startswith("usage: synthinfer fit")


@pytest.mark.parametrize("where", ["before", "after"])
def test_traceback_option_reraises(capsys, files, where) -> None:
    rest = ["fit", FORMULA, "--real", str(files["root"] / "missing.csv")]
    argv = ["--traceback", *rest] if where == "before" else [*rest, "--traceback"]
    with pytest.raises(cli.CLIError, match="does not exist"):
        main(argv)


def test_traceback_option_before_subcommand_survives_subcommand_parsing() -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["--traceback", "demo"]).traceback is True
    assert parser.parse_args(["demo", "--traceback"]).traceback is True
    assert parser.parse_args(["demo"]).traceback is False


def test_unexpected_errors_are_one_line_with_exit_code_1(capsys, monkeypatch, files) -> None:
    def broken(*args, **kwargs):
        raise TypeError("something inside broke")

    monkeypatch.setattr(cli.smf, "gmm_synth", broken)
    code, out, err = run(capsys, "fit", FORMULA, "--real", files["real"])
    assert code == 1 and out == ""
    assert err == (
        "synthinfer: error: internal error (TypeError: something inside broke); "
        "rerun with --traceback and report it\n"
    )


@pytest.mark.filterwarnings("default::synthinfer.exceptions.SynthInferWarning")
def test_warnings_are_one_line_on_stderr(capsys, monkeypatch, files) -> None:
    original = cli.smf.gmm_synth

    def warning(*args, **kwargs):
        warnings.warn("the moment covariance S is close to singular\nsecond line",
                      synthinfer.exceptions.NearSingularWeightWarning)
        return original(*args, **kwargs)

    monkeypatch.setattr(cli.smf, "gmm_synth", warning)
    code, out, err = run(capsys, "fit", FORMULA, "--real", files["real"], "--output", "csv")
    assert code == 0 and out.startswith("term,coef")
    assert err == "synthinfer: warning: the moment covariance S is close to singular second line\n"


def test_input_frames_on_disk_are_untouched(capsys, files) -> None:
    before = files["real"].read_bytes()
    run(capsys, "fit", FORMULA, "--real", files["real"], "--proxy", files["proxy"])
    assert files["real"].read_bytes() == before


# -- installed entry points --------------------------------------------------------------


def _console_script() -> str:
    name = "synthinfer.exe" if sys.platform == "win32" else "synthinfer"
    candidate = Path(sysconfig.get_path("scripts")) / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which("synthinfer")
    if found is None:
        pytest.fail("the console script 'synthinfer' is not installed: run python -m pip install -e .")
    return found


def test_installed_console_script_runs_the_demo() -> None:
    done = subprocess.run(
        [_console_script(), "demo", "--n-labeled", "400", "--seed", "1"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "GMM-Proxy" in done.stdout and "effective n" in done.stdout
    assert "a random 400 (seed 1)" in done.stdout


def test_python_dash_m_is_the_cli(files) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "synthinfer", "fit", FORMULA, "--real", str(files["root"] / "missing.csv")],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("synthinfer: error: real file") and "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "synthinfer"], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0 and done.stdout.startswith("usage: synthinfer")


def test_a_reader_that_stops_early_is_not_an_error() -> None:
    # `synthinfer demo | head -1`: the pipe closes while the demo is still printing
    reader = subprocess.Popen(["head", "-c", "10"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    done = subprocess.run(
        [sys.executable, "-m", "synthinfer", "demo", "--n-labeled", "300"],
        stdout=reader.stdin, stderr=subprocess.PIPE, text=True, timeout=300, check=False,
    )
    reader.stdin.close()
    reader.wait(timeout=60)
    assert done.returncode == 0, done.stderr
    assert "error" not in done.stderr and "Traceback" not in done.stderr


def test_readme_example_output_is_what_the_demo_prints(capsys) -> None:
    """The README's "Example output" block is the demo's output, character for character."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Example output", 1)[1]
    block = section.split("```\n", 2)[1]
    code, out, _ = run(capsys, "demo")
    assert code == 0
    assert out.rstrip("\n") == block.rstrip("\n"), "README.md's example output is stale: paste `synthinfer demo`'s output"
