"""polars frames (unit ids in a ``unit`` column) give the same fit as pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import synthinfer.api as smf
from synthinfer.exceptions import SpecificationError
from synthinfer.simulate import make_study

pl = pytest.importorskip("polars")


def _polars(frame: pd.DataFrame) -> "pl.DataFrame":
    return pl.from_pandas(frame.rename_axis("unit").reset_index())


@pytest.fixture(scope="module")
def study():
    return make_study("ols", n_units=600, n_labeled=120, seed=3)


ESTIMATORS = {
    "gmm_synth": lambda s: dict(proxy=s.proxy, synth=s.synth),
    "gmm_proxy": lambda s: dict(proxy=s.proxy),
    "naive": lambda s: dict(proxy=s.proxy),
    "ppi": lambda s: dict(proxy=s.proxy),
    "classical": lambda s: dict(),
    "reppi": lambda s: dict(proxy=s.proxy),
    # DSL: the labeling probabilities as a column of the proxy frame, read by name
    "dsl": lambda s: dict(proxy=s.proxy.assign(pi=0.2), labeling_prob="pi"),
}


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_polars_frames_give_identical_results(study, name) -> None:
    aux = ESTIMATORS[name](study)
    build = getattr(smf, name)
    with_pandas = build(study.formula, real=study.real, **aux).fit()
    with_polars = build(
        study.formula, real=_polars(study.real),
        **{k: _polars(v) if isinstance(v, pd.DataFrame) else v for k, v in aux.items()},
    ).fit()
    pd.testing.assert_series_equal(with_polars.params, with_pandas.params, rtol=0, atol=0)
    pd.testing.assert_series_equal(with_polars.bse, with_pandas.bse, rtol=0, atol=0)
    if name.startswith("gmm_"):
        assert np.array_equal(with_polars.jtest(), with_pandas.jtest(), equal_nan=True)
        assert with_pandas.jtest()[2] > 0  # over-identified: the J comparison is not vacuous


def test_dict_of_polars_sources(study) -> None:
    a = smf.gmm_proxy(study.formula, real=study.real, proxy={"gpt": study.proxy}).fit()
    b = smf.gmm_proxy(study.formula, real=_polars(study.real), proxy={"gpt": _polars(study.proxy)}).fit()
    pd.testing.assert_series_equal(a.params, b.params, rtol=0, atol=0)


def test_polars_frame_without_unit_column_is_refused(study) -> None:
    with pytest.raises(SpecificationError, match="column named 'unit'"):
        smf.gmm_proxy(study.formula, real=pl.from_pandas(study.real.reset_index(drop=True)),
                      proxy=study.proxy)


def test_pyarrow_backed_pandas_frames_give_identical_results(study) -> None:
    pytest.importorskip("pyarrow")
    arrow = {k: v.convert_dtypes(dtype_backend="pyarrow")
             for k, v in dict(real=study.real, proxy=study.proxy, synth=study.synth).items()}
    a = smf.gmm_synth(study.formula, real=study.real, proxy=study.proxy, synth=study.synth).fit()
    b = smf.gmm_synth(study.formula, **arrow).fit()
    pd.testing.assert_series_equal(b.params, a.params, rtol=0, atol=0)
    pd.testing.assert_series_equal(b.bse, a.bse, rtol=0, atol=0)


def test_the_cli_reads_parquet_written_by_polars_or_by_pandas(study, tmp_path, capsys) -> None:
    """A Parquet file from polars (unit ids in a column) and one from pandas (the index
    stored) give the command line the same fit, which is the library's on either frame."""
    import json

    from synthinfer.cli import main

    pytest.importorskip("pyarrow")
    paths = {}
    for name in ("real", "proxy", "synth"):
        frame = getattr(study, name)
        paths[f"{name}_pl"], paths[f"{name}_pd"] = tmp_path / f"{name}_pl.parquet", tmp_path / f"{name}_pd.parquet"
        _polars(frame).write_parquet(paths[f"{name}_pl"])
        frame.to_parquet(paths[f"{name}_pd"])
    results = {}
    for kind in ("pl", "pd"):
        argv = ["fit", study.formula, "--real", str(paths[f"real_{kind}"]), "--proxy", str(paths[f"proxy_{kind}"]),
                "--synth", str(paths[f"synth_{kind}"]), "--output", "json"]
        assert main(argv) == 0
        results[kind] = json.loads(capsys.readouterr().out)
    assert results["pl"]["params"] == results["pd"]["params"] and results["pl"]["bse"] == results["pd"]["bse"]
    library = smf.gmm_synth(study.formula, real=pl.read_parquet(paths["real_pl"]), proxy=pl.read_parquet(paths["proxy_pl"]),
                            synth=pl.read_parquet(paths["synth_pl"]), eval_env={"np": np}).fit()
    for term in library.params.index:
        assert results["pl"]["params"][term] == pytest.approx(library.params[term], rel=1e-12)
        assert results["pl"]["bse"][term] == pytest.approx(library.bse[term], rel=1e-12)
    assert results["pl"]["n_labeled"] == len(study.real)
