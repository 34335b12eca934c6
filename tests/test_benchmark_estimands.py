"""The estimand benchmarks keep working (their --quick modes); no coverage is asserted here,
the committed runs in docs/results/ are what the docs cite."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.filterwarnings("ignore")
def test_families_quick_run(tmp_path) -> None:
    bench = _load("families_coverage")
    assert bench.main(["--quick", "--jobs", "1", "--output", str(tmp_path)]) == 0
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert set(summary["estimand"]) == set(bench.ESTIMANDS)
    assert (summary["failed"] == 0).all()
    assert "coverage, GMM" in (tmp_path / "summary.md").read_text()


@pytest.mark.filterwarnings("ignore")
def test_politeness_soft_labels_quick_run(tmp_path) -> None:
    bench = _load("politeness_soft_labels")
    assert bench.main(["--quick", "--jobs", "1", "--output", str(tmp_path)]) == 0
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert set(summary["method"]) == set(bench.METHODS)
    human = summary[summary.method == "human only"]
    assert (human["mse vs human only"] == 1.0).all()
