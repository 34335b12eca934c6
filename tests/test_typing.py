"""The package type-checks, and its option types are the command line's choices.

mypy runs with the configuration in pyproject.toml ([tool.mypy]) and the
repository's ``.mypy_cache``: warm it takes ~2 s; a cold cache (a fresh
checkout) costs ~15 s of CPU, mostly reading numpy's and the standard
library's stubs.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pytest

from synthinfer import cli, options
from synthinfer.gmm import GMMSynth

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_is_clean():
    api = pytest.importorskip("mypy.api")
    stdout, stderr, status = api.run([
        "--config-file", str(ROOT / "pyproject.toml"),
        "--cache-dir", str(ROOT / ".mypy_cache"),
        str(ROOT / "synthinfer"),
    ])
    assert status == 0, f"mypy found errors:\n{stdout}{stderr}"
    assert "Success: no issues found" in stdout


def test_frame_arg_is_a_runtime_type_alias():
    # a valid alias resolves where it is used, so signatures are introspectable
    hints = typing.get_type_hints(GMMSynth.from_formula)
    assert hints["proxy"] == hints["synth"] == pd.DataFrame | Mapping[str, pd.DataFrame] | None
    assert typing.get_type_hints(GMMSynth.fit)["correction"] == options.Correction | None


def _fit_choices() -> dict[str, list[str]]:
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    fit = commands.choices["fit"]
    return {a.dest: list(a.choices) for a in fit._actions if a.choices is not None}


@pytest.mark.parametrize("dest, option", [
    ("correction", options.Correction),
    ("shrinkage", options.Shrinkage),
    ("leverage", options.Leverage),
    ("engine", options.Engine),
    ("output", options.OutputFormat),
])
def test_cli_choices_are_the_option_types(dest, option):
    assert _fit_choices()[dest] == list(typing.get_args(option))


def test_fit_accepts_every_option_value():
    import numpy as np

    rng = np.random.default_rng(0)
    units = pd.Index(range(200), name="unit")
    proxy = pd.DataFrame({"x": rng.normal(size=200)}, index=units)
    proxy["y"] = 1 + proxy["x"] + rng.normal(size=200)
    real = proxy.iloc[:60].copy()
    real["y"] = real["y"] + rng.normal(size=60)
    model = GMMSynth.from_formula("y ~ x", real, proxy=proxy)
    for correction in typing.get_args(options.Correction):
        for shrinkage in typing.get_args(options.Shrinkage):
            res = model.fit(correction=correction, shrinkage=shrinkage)
            assert np.isfinite(res.bse).all()
    for leverage in typing.get_args(options.Leverage):
        assert np.isfinite(model.fit(leverage=leverage).bse).all()
