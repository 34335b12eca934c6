"""The benchmark script keeps working (its --quick mode); timings are never asserted here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_fit.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_fit", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.filterwarnings("ignore::FutureWarning")  # sklearn deprecations inside ppi-python
def test_quick_run_writes_csv_and_markdown(bench, tmp_path) -> None:
    page = tmp_path / "performance.md"
    assert bench.main(["--quick", "--output", str(tmp_path), "--docs", str(page)]) == 0
    table = pd.read_csv(tmp_path / "results.csv")
    expected = {"statsmodels", "gmm_synth", "gmm_synth (plain)", "gmm_proxy", "ppi (auto)", "ppi-python (warm)"}
    for model in ("logit", "ols"):
        assert set(table.loc[table.model == model, "estimator"]) == expected
    assert (table["seconds"] > 0).all()
    reference = table[table.estimator == "statsmodels"]
    assert (reference["ratio_to_statsmodels"] == 1.0).all()
    memory = table.loc[table.estimator == "gmm_synth", "peak_memory_ratio"]
    assert (memory > 0).all()
    markdown = (tmp_path / "results.md").read_text()
    assert "Machine:" in markdown and "| logit | 5 | 2,000 |" in markdown
    rendered = page.read_text()
    assert "@" not in rendered and markdown.strip() in rendered


def test_frames_follow_the_data_contract(bench) -> None:
    import synthinfer.api as smf

    formula, real, proxy, synth = bench.make_frames("logit", 500, 4, 50)
    assert formula == "y ~ x1 + x2 + x3"
    assert len(real) == 50 and len(proxy) == len(synth) == 500
    assert real.index.isin(proxy.index).all() and proxy.index.is_unique
    res = smf.gmm_synth(formula, real=real, proxy=proxy, synth=synth, model="logit").fit()
    assert res.converged and res.nobs == 500


COVERAGE_SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "small_sample_coverage.py"


def test_small_sample_coverage_quick_run(tmp_path) -> None:
    spec = importlib.util.spec_from_file_location("small_sample_coverage", COVERAGE_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--quick", "--output", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "coverage.csv")
    assert set(table["method"]) == set(module.METHODS)
    assert table["coverage"].between(0, 1).all()
    boot = table[table.method.str.startswith("bootstrap")]
    assert (boot["studies"] + boot["failed"] == 2).all()  # bootstrapped studies only
    assert ((table.studies + table.failed)[~table.method.str.startswith("bootstrap")] == 4).all()
    assert "| plain |" in (tmp_path / "coverage.md").read_text()


STUDY_SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "small_sample_study.py"
BOOTSTRAP_SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_bootstrap.py"


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_small_sample_study_quick_run(tmp_path) -> None:
    module = _load(STUDY_SCRIPT)
    assert module.main(["--quick", "--output", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "cells.csv")
    assert set(module.METHODS) <= set(table["method"])
    assert table["coverage"].dropna().between(0, 1).all()
    fits = table[table.method.isin(module.FIT_METHODS)]
    assert ((fits.studies + fits.failed) == 6).all()
    boot = table[table.method.isin(module.BOOT_METHODS)]
    assert ((boot.studies + boot.failed) == 2).all()  # bootstrapped studies only
    # the human-only fit is its own MSE reference
    assert np.allclose(table[table.method == "human HC0"].rel_mse, 1.0)
    assert "| ols n=50 useful |" in (tmp_path / "summary.md").read_text()
    # with no failed fit the paired difference is the difference of the two coverages
    default = table[table.method == "default"].set_index(["cell", "coefficient"])
    human = table[table.method == "human default"].set_index(["cell", "coefficient"])
    complete = (default.failed == 0) & (human.failed == 0)
    assert complete.any()
    assert np.allclose(default.paired_diff[complete], (default.coverage - human.coverage)[complete])


def test_bootstrap_benchmark_quick_run(tmp_path) -> None:
    module = _load(BOOTSTRAP_SCRIPT)
    assert module.main(["--quick", "--output", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "results.csv")
    assert list(table.method) == ["fast"] and (table.ratio_to_one_fit > 0).all()
    assert "bootstrap / one fit" in (tmp_path / "results.md").read_text()
