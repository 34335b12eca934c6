"""The repeated-sampling study (synthinfer.experiments and ``synthinfer simulate``).

A small configuration runs here and its numbers are asserted with Monte Carlo
tolerances; the machinery (seeds, resume, failures, CLI) is tested on tiny grids.

Design of the Monte Carlo part: OLS, N = 1000 units, n = 200 labeled, R = 100
trials in each of four scenarios (proxy + synthetic informative, pure noise,
noise in one direction, differential), seeds derived from base seed 0
(nothing is picked). Plus logit with informative proxy + synthetic data.
About 40 s on two cores (building the models from the frames is most of it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import synthinfer.api as smf
from synthinfer import experiments
from synthinfer.cli import main
from synthinfer.datasets import load_politeness
from synthinfer.experiments import (
    KEY,
    run_politeness,
    run_simulation,
    summarize,
    trial_seed,
)
from synthinfer.simulate import simulate_study

R = 100
N_UNITS, N_LABELED = 1000, 200
VALID_SCENARIOS = ("proxy+synth", "noise", "biased")
VALID_ESTIMATORS = ("classical", "ppi_proxy", "ppi_synth", "gmm_proxy", "gmm_synth")
NOMINAL = 0.95

# Coverage tolerance. Coverage over R independent trials is Binomial(R, c) / R;
# with exact intervals its SE is sqrt(0.95 * 0.05 / R). The checks pool the
# three valid scenarios (3 R = 300 trials, SE 0.0126) and allow 3.5 SE either
# side (false alarm ~5e-4 per check). Below nominal they also allow a known
# finite-sample shortfall: HC0 sandwich intervals undercover by about a point
# at n = 200, and two-step GMM, whose weight matrix is estimated from the same
# n labeled units, by up to about two points more (the committed run shows
# 0.92-0.94 at n = 100-200 for the GMM estimators). So the lower bound is
# 0.95 - 0.01 (sandwich) - 0.02 (GMM only) - 3.5 SE; the upper bound is
# binomial only.
SANDWICH_SHORTFALL = 0.01
GMM_SHORTFALL = 0.02


def _coverage_se(trials: int) -> float:
    return float(np.sqrt(NOMINAL * (1 - NOMINAL) / trials))


def lower_bound(estimator: str, trials: int) -> float:
    shortfall = SANDWICH_SHORTFALL + (GMM_SHORTFALL if estimator.startswith("gmm") else 0.0)
    return NOMINAL - shortfall - 3.5 * _coverage_se(trials)


def upper_bound(trials: int) -> float:
    return NOMINAL + 3.5 * _coverage_se(trials)


@pytest.fixture(scope="module")
def ols_run():
    return run_simulation(
        None, n_labeled=[N_LABELED], n_units=N_UNITS, models=["ols"],
        scenarios=list(VALID_SCENARIOS) + ["differential"], trials=R, seed=0, jobs=2, progress=False,
    )


@pytest.fixture(scope="module")
def logit_run():
    return run_simulation(
        None, n_labeled=[N_LABELED], n_units=N_UNITS, models=["logit"],
        scenarios=["proxy+synth"], trials=R, seed=0, jobs=2, progress=False,
    )


def cell(run, scenario: str, estimator: str) -> pd.Series:
    s = run.summary
    row = s[(s["scenario"] == scenario) & (s["estimator"] == estimator)]
    assert len(row) == 1, (scenario, estimator)
    return row.iloc[0]


# -- Monte Carlo claims ----------------------------------------------------------------------


def test_every_trial_fits_in_the_small_configuration(ols_run, logit_run) -> None:
    for run in (ols_run, logit_run):
        assert (run.summary["trials"] == R).all()
        assert (run.summary["failures"] == 0).all()


@pytest.mark.parametrize("estimator", VALID_ESTIMATORS)
def test_coverage_of_valid_estimators_is_nominal_within_binomial_error(ols_run, estimator) -> None:
    rows = ols_run.trials
    rows = rows[rows["scenario"].isin(VALID_SCENARIOS) & (rows["estimator"] == estimator)]
    assert len(rows) == 3 * R and not rows["failed"].any()
    coverage = rows["covered"].astype(float).mean()
    assert lower_bound(estimator, len(rows)) <= coverage <= upper_bound(len(rows)), coverage


def test_logit_coverage_is_nominal_within_binomial_error(logit_run) -> None:
    for estimator in VALID_ESTIMATORS:
        coverage = cell(logit_run, "proxy+synth", estimator)["coverage"]
        assert lower_bound(estimator, R) <= coverage <= upper_bound(R), (estimator, coverage)


def test_the_coverage_check_can_fail_naive_pooling(ols_run) -> None:
    # the same bound rejects the estimator that is known to be invalid
    coverage = cell(ols_run, "biased", "naive")["coverage"]
    assert coverage < lower_bound("naive", R) - 0.2


def test_naive_pooling_is_visibly_biased_in_the_biased_scenario(ols_run) -> None:
    naive = cell(ols_run, "biased", "naive")
    assert naive["bias"] > 0.1 and naive["bias"] > 10 * naive["bias_mc_se"]
    # the corrected estimators are not: their bias is within Monte Carlo error
    for estimator in VALID_ESTIMATORS:
        row = cell(ols_run, "biased", estimator)
        assert abs(row["bias"]) < 4 * row["bias_mc_se"], estimator


@pytest.mark.parametrize("run_name", ["ols_run", "logit_run"])
def test_gmm_synth_beats_human_only_with_informative_data(request, run_name) -> None:
    row = cell(request.getfixturevalue(run_name), "proxy+synth", "gmm_synth")
    # paired difference of squared errors, below zero beyond 3 Monte Carlo SEs
    assert row["mse_diff"] + 3 * row["mse_diff_mc_se"] < 0
    assert row["rel_mse"] < 0.8


def test_gmm_is_no_worse_than_human_only_with_pure_noise(ols_run) -> None:
    for estimator in ("gmm_proxy", "gmm_synth"):
        row = cell(ols_run, "noise", estimator)
        assert row["mse_diff"] <= 3 * row["mse_diff_mc_se"], estimator


def test_j_test_flags_the_differential_scenario(ols_run) -> None:
    for estimator in ("gmm_proxy", "gmm_synth"):
        assert cell(ols_run, "differential", estimator)["j_reject"] >= 0.8, estimator
    # and keeps its size when the design holds
    for scenario in VALID_SCENARIOS:
        rejections = cell(ols_run, scenario, "gmm_synth")["j_reject"]
        assert rejections <= 0.05 + 0.03 + 3.5 * _coverage_se(R), (scenario, rejections)


# -- the numbers are what they claim to be -------------------------------------------------


def test_a_trial_row_is_the_fit_on_the_study_its_seed_draws(ols_run) -> None:
    rows = ols_run.trials
    row = rows[(rows["scenario"] == "biased") & (rows["trial"] == 7) & (rows["estimator"] == "gmm_synth")].iloc[0]
    assert row["trial_seed"] == trial_seed(0, ("simulation", "biased", "ols", N_UNITS, N_LABELED), 7)
    study = simulate_study("ols", N_UNITS, N_LABELED, proxy="biased", synth="biased", seed=int(row["trial_seed"]))
    res = smf.gmm_synth(study.formula, real=study.real, proxy=study.proxy, synth=study.synth).fit()
    lo, hi = res.conf_int().loc["x1"]
    assert row["estimate"] == res.params["x1"] and row["std_err"] == res.bse["x1"]
    assert (row["ci_lower"], row["ci_upper"]) == (lo, hi)
    assert row["covered"] == float(lo <= 1.0 <= hi) and row["truth"] == 1.0
    assert row["j_pvalue"] == res.jtest()[1]


def test_summary_statistics_match_the_rows(ols_run) -> None:
    rows = ols_run.trials
    rows = rows[(rows["scenario"] == "noise")]
    summary = summarize(rows)
    for estimator, group in rows.groupby("estimator"):
        row = summary[summary["estimator"] == estimator].iloc[0]
        err = group["estimate"] - group["truth"]
        assert row["bias"] == pytest.approx(err.mean())
        assert row["mse"] == pytest.approx((err**2).mean())
        assert row["coverage"] == pytest.approx(group["covered"].mean())
        assert row["coverage_mc_se"] == pytest.approx(np.sqrt(row["coverage"] * (1 - row["coverage"]) / R))
        assert row["mean_width"] == pytest.approx((group["ci_upper"] - group["ci_lower"]).mean())
        classical = rows[rows["estimator"] == "classical"]
        assert row["rel_mse"] == pytest.approx(row["mse"] / ((classical["estimate"] - 1.0) ** 2).mean())
    assert set(summary["estimator"]) == set(experiments.DEFAULT_ESTIMATORS)
    gmm = summary["estimator"].str.startswith("gmm")
    assert summary.loc[gmm, "j_reject"].notna().all() and summary.loc[~gmm, "j_reject"].isna().all()


# -- seeds, workers and resuming -------------------------------------------------------------

TINY = dict(n_labeled=[60, 120], n_units=400, models=["ols", "logit"], scenarios=["proxy", "synth"], progress=False)


def test_same_seed_same_rows_whatever_the_workers() -> None:
    one = run_simulation(None, trials=4, jobs=1, **TINY)
    two = run_simulation(None, trials=4, jobs=2, **TINY)
    pd.testing.assert_frame_equal(one.trials, two.trials)
    other = run_simulation(None, trials=4, jobs=1, seed=1, **TINY)
    assert not np.allclose(one.trials["estimate"], other.trials["estimate"])


def test_a_cell_does_not_depend_on_the_rest_of_the_grid() -> None:
    alone = run_simulation(None, trials=3, n_labeled=[120], n_units=400, models=["logit"],
                           scenarios=["synth"], progress=False)
    grid = run_simulation(None, trials=3, **TINY)
    part = grid.trials[(grid.trials["model"] == "logit") & (grid.trials["scenario"] == "synth")
                       & (grid.trials["n_labeled"] == 120)].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone.trials, part)


def test_resume_skips_trials_already_in_the_output(tmp_path) -> None:
    first = run_simulation(tmp_path, trials=2, **TINY)
    assert first.n_run == 8 * 2 and first.n_skipped == 0
    again = run_simulation(tmp_path, trials=2, **TINY)
    assert again.n_run == 0 and again.n_skipped == 16
    pd.testing.assert_frame_equal(first.trials, again.trials, check_dtype=False)
    more = run_simulation(tmp_path, trials=3, **TINY)
    assert more.n_run == 8 and more.n_skipped == 16
    fresh = run_simulation(None, trials=3, **TINY)
    pd.testing.assert_frame_equal(more.trials, fresh.trials, check_dtype=False)
    on_disk = pd.read_csv(tmp_path / "trials.csv")
    assert len(on_disk) == len(fresh.trials) and not on_disk.duplicated(KEY + ["estimator", "target"]).any()
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert (summary["trials"] == 3).all() and len(summary) == len(fresh.summary)


def test_resume_refuses_a_foreign_file(tmp_path) -> None:
    (tmp_path / "trials.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a trials file"):
        run_simulation(tmp_path, trials=1, **TINY)


# -- failures ----------------------------------------------------------------------------------


def test_failing_fits_are_recorded_and_counted_not_dropped() -> None:
    # logit with 8 labeled units: perfect separation in many trials
    run = run_simulation(None, n_labeled=[8], n_units=200, models=["logit"], scenarios=["proxy"],
                         trials=20, progress=False)
    classical = run.summary[run.summary["estimator"] == "classical"].iloc[0]
    assert classical["failures"] > 0 and classical["fits"] + classical["failures"] == 20
    failed = run.trials[run.trials["failed"]]
    assert len(failed) and (failed["error"] != "").all() and failed["estimate"].isna().all()
    assert failed["error"].str.contains("Separation|separation|singular|Singular").any()
    assert len(run.trials) == 20 * 4  # every estimator of every trial has a row


def test_an_unexpected_exception_is_a_failure(monkeypatch) -> None:
    original = experiments._fit_one

    def flaky(name, *args, **kwargs):
        if name == "gmm_proxy":
            raise RuntimeError("boom\nsecond line")
        return original(name, *args, **kwargs)

    monkeypatch.setattr(experiments, "_fit_one", flaky)
    run = run_simulation(None, n_labeled=[100], n_units=400, models=["ols"], scenarios=["proxy"],
                         trials=3, progress=False)
    row = run.summary[run.summary["estimator"] == "gmm_proxy"].iloc[0]
    assert row["failures"] == 3 and row["fits"] == 0 and np.isnan(row["coverage"])
    errors = run.trials.loc[run.trials["estimator"] == "gmm_proxy", "error"]
    assert (errors == "RuntimeError: boom").all()
    assert (run.summary.loc[run.summary["estimator"] != "gmm_proxy", "failures"] == 0).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"models": ["probit"]}, "models"),
        ({"scenarios": ["great"]}, "scenarios"),
        ({"n_labeled": [0]}, "n_labeled"),
        ({"n_labeled": [500], "n_units": 400}, "no cell left"),
        ({"target": "x9"}, "target"),
        ({"jobs": 0}, "jobs"),
    ],
)
def test_bad_arguments_raise(kwargs, match) -> None:
    args = dict(n_labeled=[100], n_units=400, models=["ols"], scenarios=["proxy"], trials=1, progress=False)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        run_simulation(None, **args)


# -- politeness mode ---------------------------------------------------------------------------


def test_politeness_mode_uses_the_full_data_fit_as_truth() -> None:
    run = run_politeness(None, n_labeled=[300], trials=3, progress=False)
    data = load_politeness()
    truth = smf.classical(data.formula, real=data.human, model="logit").fit().params
    rows = run.trials
    assert set(rows["estimator"]) == {"classical", "naive", "ppi_proxy", "gmm_proxy"}
    assert set(rows["target"]) == {"hedging", "first_person_plural"}
    assert len(rows) == 3 * 4 * 2 and not rows["failed"].any()
    for target in ("hedging", "first_person_plural"):
        assert (rows.loc[rows["target"] == target, "truth"] == truth[target]).all()
    first = rows[(rows["trial"] == 0) & (rows["estimator"] == "gmm_proxy") & (rows["target"] == "hedging")].iloc[0]
    real, proxy = data.sample(300, seed=int(first["trial_seed"]))
    res = smf.gmm_proxy(data.formula, real=real, proxy=proxy, model="logit").fit()
    assert first["estimate"] == res.params["hedging"]


# -- plots -------------------------------------------------------------------------------------


def test_plots_are_written(tmp_path, ols_run) -> None:
    pytest.importorskip("matplotlib")
    written = experiments.plot_summary(ols_run.summary, tmp_path, formats=["png", "svg"])
    names = sorted(p.name for p in written)
    assert names == sorted(
        f"{q}_simulation_ols_x1.{fmt}" for q in ("coverage", "rel_mse") for fmt in ("png", "svg")
    )
    assert all(p.stat().st_size > 1000 for p in written)


# -- command line ------------------------------------------------------------------------------


def test_cli_simulate_writes_rows_summary_and_plots(tmp_path, capsys) -> None:
    argv = ["simulate", "--output", str(tmp_path), "--n-labeled", "80", "--n-units", "300",
            "--models", "ols", "--scenarios", "proxy,noise", "--trials", "3", "--no-progress"]
    assert main(argv + ["--plots", "png"]) == 0
    out = capsys.readouterr().out
    assert "6 trial(s) run, 0 already" in out and "gmm_proxy" in out
    assert (tmp_path / "coverage_simulation_ols_x1.png").exists()
    summary = pd.read_csv(tmp_path / "summary.csv")
    expected = run_simulation(None, n_labeled=[80], n_units=300, models=["ols"],
                              scenarios=["proxy", "noise"], trials=3, progress=False).summary
    assert summary["estimate" if "estimate" in summary else "bias"].to_numpy() == pytest.approx(
        expected["bias"].to_numpy(), rel=1e-12)
    assert main(argv) == 0
    assert "0 trial(s) run, 6 already" in capsys.readouterr().out


def test_cli_simulate_politeness(tmp_path, capsys) -> None:
    argv = ["simulate", "--politeness", "--output", str(tmp_path), "--n-labeled", "400",
            "--trials", "2", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "politeness" in out and "first_person_plural" in out


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--scenarios", "proxy,nonsense"], "nonsense"),
        (["--models", "probit"], "probit"),
        (["--n-labeled", "0"], "--n-labeled"),
        (["--n-labeled", "ten"], "--n-labeled"),
        (["--trials", "0"], "--trials"),
        (["--jobs", "0"], "--jobs"),
        (["--n-labeled", "500", "--n-units", "300"], "no cell left"),
        (["--politeness", "--models", "ols"], "--politeness"),
        (["--plots", "gif"], "gif"),
    ],
)
def test_cli_simulate_bad_input_is_one_line_and_exit_2(tmp_path, capsys, extra, words) -> None:
    code = main(["simulate", "--output", str(tmp_path / "out"), "--trials", "1", "--no-progress", *extra])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("synthinfer: error:")]
    assert len(lines) == 1 and words in lines[0], err


def test_cli_simulate_needs_an_output(capsys) -> None:
    assert main(["simulate", "--trials", "1"]) == 2
    assert "--output" in capsys.readouterr().err


def test_cli_simulate_reports_failed_fits_once_per_fit(tmp_path, capsys) -> None:
    argv = ["simulate", "--output", str(tmp_path), "--n-labeled", "8", "--n-units", "200",
            "--models", "logit", "--scenarios", "proxy", "--trials", "20", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    trials = pd.read_csv(tmp_path / "trials.csv")
    failed = int(trials["failed"].sum())  # one target: one row per fit
    assert failed > 0 and f"{failed} failed fit(s) recorded" in out
