"""The opt-in baselines of the repeated-sampling study (cross-fitted PPI++, the oracle, RePPI, DSL).

A trial's row of each is the estimator's own fit on the study its seed draws,
and ``synthinfer simulate --estimators`` passes them through.
"""

from __future__ import annotations

import numpy as np
import pytest

import synthinfer.api as smf
from synthinfer import experiments
from synthinfer.cli import main
from synthinfer.simulate import simulate_study

NEW = ("ppi_cf_proxy", "ppi_oracle_synth", "reppi_proxy", "reppi_synth", "dsl_proxy")


def test_opt_in_rows_are_the_estimators_fits_on_the_trials_study() -> None:
    result = experiments.run_simulation(
        n_labeled=[100], n_units=500, models=["ols"], scenarios=["proxy+synth"], trials=1,
        estimators=("classical",) + NEW, progress=False,
    )
    rows = result.trials.set_index("estimator")
    assert set(rows.index) == {"classical", *NEW} and not rows["failed"].any()
    seed = int(rows["trial_seed"].iloc[0])
    study = simulate_study("ols", 500, 100, seed=seed, proxy="useful", synth="useful")
    kw = dict(real=study.real, eval_env={})
    fits = {
        "ppi_cf_proxy": smf.ppi(study.formula, proxy=study.proxy, tuning="crossfit", **kw).fit(),
        "ppi_oracle_synth": experiments.oracle_ppi(study.formula, study.real, synth=study.synth,
                                                   truth=study.truth, targets=["x1"], eval_env={}),
        "reppi_proxy": smf.reppi(study.formula, proxy=study.proxy, **kw).fit(),
        "reppi_synth": smf.reppi(study.formula, synth=study.synth, **kw).fit(),
        "dsl_proxy": smf.dsl(study.formula, proxy=study.proxy, **kw).fit(),
    }
    for name, res in fits.items():
        assert rows.loc[name, "estimate"] == res.params["x1"], name
        assert rows.loc[name, "std_err"] == res.bse["x1"], name
    assert "reppi_proxy" not in experiments.DEFAULT_ESTIMATORS  # opt-in: the default study stays fast


def test_cli_simulate_estimators(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    code = main(["simulate", "--output", str(out), "--n-labeled", "100", "--n-units", "400", "--models", "ols",
                 "--scenarios", "proxy", "--trials", "1", "--no-progress", "--estimators", "classical,reppi_proxy"])
    assert code == 0
    text = capsys.readouterr().out
    assert "reppi_proxy" in text and "gmm_proxy" not in text
    code = main(["simulate", "--output", str(tmp_path / "bad"), "--estimators", "ppi_magic", "--trials", "1"])
    assert code == 2
    assert "unknown estimator(s) ['ppi_magic']" in capsys.readouterr().err


@pytest.mark.parametrize("name", NEW)
def test_every_opt_in_estimator_has_a_plot_style(name) -> None:
    assert name in experiments.ESTIMATORS and name in experiments._STYLE
    assert np.all([n in experiments._STYLE for n in experiments.ESTIMATORS])
