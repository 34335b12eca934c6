"""Issue 12's fixes that are not errors: what is now read, matched or computed correctly.

(The errors themselves are the rows of tests/bad_input_cases.py.)
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

import synthinfer.api as smf
from synthinfer import experiments
from synthinfer.cli import _read_frame, main
from synthinfer.comparison import compare
from synthinfer.exceptions import FewLabeledWarning, OutputDirectoryError, SpecificationError
from synthinfer.inference import diagnostics
from synthinfer.simulate import make_study

FORMULA = "y ~ x1 + x2"


def fit_json(capsys, *argv: object) -> dict:
    code = main(["fit", FORMULA, *[str(a) for a in argv], "--output", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


@pytest.fixture(scope="module")
def study():
    return make_study("ols", n_units=300, n_labeled=90, seed=8)


# -- command line: reading files -----------------------------------------------------------


def test_unit_ids_like_na_stay_strings(tmp_path, capsys, study) -> None:
    # "NA" is Namibia; None / nan / NULL are ids too. Other columns keep pandas' NA markers.
    special = ["NA", "None", "nan", "NULL", "N/A"]
    ids = pd.Index(special + [f"c{i}" for i in range(len(study.proxy) - len(special))], name="unit")
    proxy = study.proxy.set_axis(ids)
    labeled = ids[:3].append(ids[study.proxy.index.isin(study.real.index)][:60])
    real = proxy.loc[labeled.unique()].assign(y=lambda f: f["y"] + 0.1)
    real.to_csv(tmp_path / "r.csv")
    proxy.assign(note="NA").to_csv(tmp_path / "p.csv")
    frame = _read_frame(str(tmp_path / "p.csv"), None, "proxy")
    assert list(frame.index[:5]) == special
    assert frame["note"].isna().all()  # not the id column: NA is missing, as pandas reads it
    result = fit_json(capsys, "--real", tmp_path / "r.csv", "--proxy", tmp_path / "p.csv")
    expected = smf.gmm_proxy(FORMULA, real=real, proxy=proxy).fit()
    assert result["n_labeled"] == len(real) and result["nobs"] == len(proxy)
    assert result["params"] == pytest.approx(expected.params.to_dict(), rel=1e-12)


def test_an_existing_file_with_an_equals_sign_is_that_file(tmp_path, capsys, study) -> None:
    study.real.to_csv(tmp_path / "real.csv")
    study.proxy.to_csv(tmp_path / "run=1.csv")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = fit_json(capsys, "--real", "real.csv", "--proxy", "run=1.csv")
        assert [s["name"] for s in result["sources"]] == ["proxy"]
        # NAME=FILE still names a source when the whole value is no file
        study.proxy.to_csv(tmp_path / "1.csv")
        (tmp_path / "run=1.csv").unlink()
        named = fit_json(capsys, "--real", "real.csv", "--proxy", "run=1.csv")
        assert [s["name"] for s in named["sources"]] == ["run"]
        assert named["params"] == pytest.approx(result["params"], rel=1e-12)
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("sep, decimal", [(";", ","), ("\t", ".")])
def test_semicolon_and_tab_files_are_detected(tmp_path, capsys, study, sep, decimal) -> None:
    study.real.to_csv(tmp_path / "r.csv", sep=sep, decimal=decimal)
    study.proxy.to_csv(tmp_path / "p.csv", sep=sep, decimal=decimal)
    before = (tmp_path / "r.csv").read_bytes()
    result = fit_json(capsys, "--real", tmp_path / "r.csv", "--proxy", tmp_path / "p.csv")
    expected = smf.gmm_proxy(FORMULA, real=study.real, proxy=study.proxy).fit()
    assert result["params"] == pytest.approx(expected.params.to_dict(), rel=1e-9)
    assert (tmp_path / "r.csv").read_bytes() == before


def test_a_named_integer_index_is_accepted_as_unit_ids(study) -> None:
    proxy = study.proxy.reset_index(drop=True)
    real = proxy.iloc[:90].assign(y=lambda f: f["y"] + 0.1)
    real.index.name = proxy.index.name = "unit"
    res = smf.gmm_proxy(FORMULA, real=real, proxy=proxy).fit()
    assert res.n_labeled == 90


def test_cluster_ids_that_agree_between_frames_fit(study) -> None:
    groups = pd.Series([f"g{i % 30}" for i in range(len(study.proxy))], index=study.proxy.index)
    real = study.real.assign(g=groups)
    proxy = study.proxy.assign(g=groups)
    with_real = smf.gmm_proxy(FORMULA, real=real, proxy=proxy).fit(cov_type="cluster", cov_kwds={"groups": "g"})
    by_series = smf.gmm_proxy(FORMULA, real=study.real, proxy=study.proxy).fit(
        cov_type="cluster", cov_kwds={"groups": groups})
    pd.testing.assert_series_equal(with_real.bse, by_series.bse, rtol=0, atol=0)


def test_categorical_and_numeric_columns_are_not_flagged_as_text(study) -> None:
    real = study.real.assign(g=pd.Categorical(np.arange(len(study.real)) % 3))
    proxy = study.proxy.assign(g=pd.Categorical(np.arange(len(study.proxy)) % 3))
    res = smf.gmm_proxy("y ~ x1 + g", real=real, proxy=proxy).fit()
    assert len(res.params) == 4


@pytest.mark.parametrize("estimator", ["classical", "gmm_proxy", "naive", "ppi"])
@pytest.mark.parametrize("test", ["wald_test", "t_test"])
def test_every_estimator_names_the_valid_terms_for_an_unknown_constraint(study, estimator, test) -> None:
    frames = {"real": study.real} if estimator == "classical" else {"real": study.real, "proxy": study.proxy}
    res = getattr(smf, estimator)(FORMULA, **frames).fit()
    with pytest.raises(SpecificationError, match=r"'x3 = 0'.*\['Intercept', 'x1', 'x2'\]"):
        getattr(res, test)("x3 = 0")
    # a valid constraint is statsmodels' test, unchanged
    assert np.isfinite(float(np.squeeze(getattr(res, test)("x1 = 0").statistic)))


# -- effective n: compare() and diagnostics() agree, and no refit is needed -----------------


@pytest.mark.parametrize("model", ["ols", "logit"])
@pytest.mark.parametrize("cov", ["HC0", "cluster", "cluster-corrected", "weighted"])
def test_human_only_variance_from_the_fit_equals_the_refit(model, cov) -> None:
    st = make_study(model, n_units=500, n_labeled=150, seed=3)
    groups = pd.Series(np.arange(500) % 37, index=st.proxy.index)
    kwds: dict = {}
    if cov.startswith("cluster"):
        kwds = {"cov_type": "cluster", "cov_kwds": {"groups": groups, "use_correction": cov != "cluster"}}
    prob = None
    if cov == "weighted":
        prob = pd.Series(np.linspace(0.2, 0.5, len(st.real)), index=st.real.index)
    res = smf.gmm_synth(st.formula, real=st.real, proxy=st.proxy, synth=st.synth, model=model,
                        labeling_prob=prob).fit(**kwds)
    refit = np.diag(np.asarray(diagnostics._refit(res, ()).cov_params()))
    np.testing.assert_allclose(diagnostics._human_only_variance(res), refit, rtol=1e-12)


def test_compare_and_diagnostics_report_the_same_effective_n_for_a_clustered_fit() -> None:
    st = make_study("ols", n_units=800, n_labeled=200, seed=12)
    groups = pd.Series(np.arange(800) // 8, index=st.proxy.index)
    res = smf.gmm_proxy(st.formula, real=st.real, proxy=st.proxy).fit(
        cov_type="cluster", cov_kwds={"groups": groups})
    table = compare({"gmm": res}).xs("effective n", level="statistic")["gmm"]
    from_diagnostics = res.diagnostics(per_source=False).effective_n
    np.testing.assert_allclose(table.to_numpy(), from_diagnostics.to_numpy(), rtol=1e-12)
    # and the HC0 reference would differ: the fix matters
    hc0 = smf.classical(st.formula, real=st.real).fit()
    assert not np.allclose(res.n_labeled * hc0.bse**2 / res.bse**2, table.to_numpy(), rtol=1e-3)


def test_the_first_summary_runs_no_second_fit(monkeypatch) -> None:
    st = make_study("ols", n_units=400, n_labeled=120, seed=1)
    res = smf.gmm_proxy(st.formula, real=st.real, proxy=st.proxy).fit()

    def no_refit(*args, **kwds):
        raise AssertionError("summary() refitted the model")

    monkeypatch.setattr(diagnostics, "_refit", no_refit)
    assert "Effective number of human labels" in str(res.summary())


# -- few labeled units: a warning and a note -------------------------------------------------


def test_few_labeled_units_warn_and_the_summary_says_so() -> None:
    st = make_study("ols", n_units=300, n_labeled=12, seed=4)
    with pytest.warns(FewLabeledWarning, match="12 labeled units for 15 moments"):
        res = smf.gmm_synth(st.formula, real=st.real, proxy=st.proxy, synth=st.synth).fit()
    assert "labeled units per moment condition" in str(res.summary())
    # enough labeled units: no warning (the pytest config makes any warning an error)
    st = make_study("ols", n_units=300, n_labeled=16, seed=4)
    smf.gmm_synth(st.formula, real=st.real, proxy=st.proxy, synth=st.synth).fit()


# -- simulate --output -------------------------------------------------------------------------

TINY = dict(n_labeled=[50], n_units=200, models=["ols"], scenarios=["proxy"], trials=1, progress=False)


def test_simulate_refuses_a_run_of_another_study(tmp_path) -> None:
    (tmp_path / "trials.csv").write_text("mode,scenario\npoliteness,politeness\n")
    with pytest.raises(OutputDirectoryError, match="another study"):
        experiments.run_simulation(tmp_path, **TINY)
    assert (tmp_path / "trials.csv").read_text() == "mode,scenario\npoliteness,politeness\n"


def test_simulate_resumes_its_own_run_with_plots(tmp_path) -> None:
    first = experiments.run_simulation(tmp_path, **TINY)
    (tmp_path / "coverage_simulation_ols_x1.png").write_bytes(b"figure")
    again = experiments.run_simulation(tmp_path, **TINY)
    assert first.n_run == 1 and again.n_skipped == 1


def test_figures_are_not_written_through_links(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    summary = experiments.run_simulation(None, **TINY).summary
    target = tmp_path / "precious.png"
    target.write_bytes(b"keep")
    out = tmp_path / "out"
    out.mkdir()
    (out / "coverage_simulation_ols_x1.png").symlink_to(target)
    with pytest.raises(OutputDirectoryError, match="symbolic link"):
        experiments.plot_summary(summary, out)
    assert target.read_bytes() == b"keep"
