"""Simulated studies: layout, reproducibility, and each quality knob moving what it should."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

import synthinfer.api as smf
from synthinfer.simulate import Study, make_study, simulate_study

MODELS = ["ols", "logit", "poisson"]
SCENARIOS = ["useful", "noise", "anti", "biased", "differential"]
COEFS = np.array([0.5, 1.0, -0.5])
BIG = 20000  # units for the statistics checks


def _residual(model: str, y: pd.Series, covariates: pd.DataFrame) -> np.ndarray:
    """y minus its true mean given the covariates."""
    lin = COEFS[0] + COEFS[1] * covariates["x1"].to_numpy() + COEFS[2] * covariates["x2"].to_numpy()
    mean = {"ols": lin, "logit": 1 / (1 + np.exp(-lin)), "poisson": np.exp(lin)}[model]
    return y.to_numpy() - mean


def _fingerprint(study: Study) -> str:
    h = hashlib.sha256()
    for frame in (study.real, study.proxy, study.synth):
        h.update("|".join(map(str, frame.index)).encode())
        h.update(",".join(frame.columns).encode())
        h.update(np.ascontiguousarray(frame.to_numpy(dtype=float)).tobytes())
    return h.hexdigest()[:20]


# Recorded before simulate_study was added: make_study's draws must never change,
# the rest of the test suite is calibrated on them.
MAKE_STUDY_FINGERPRINTS = {
    ("ols", "useful"): "1b259a210ef35e21c99a",
    ("ols", "noise"): "693880fb9e2094cb5d71",
    ("ols", "anti"): "810ea6a64b80ad26af80",
    ("ols", "biased"): "1163f43b2349b94ba3ba",
    ("logit", "useful"): "a630286a61f5360ea30c",
    ("logit", "noise"): "95033ad4a710e5327fe4",
    ("logit", "anti"): "94cf3f66d145f4b9f9e8",
    ("logit", "biased"): "a8456b3d453c504f3e2f",
    ("poisson", "useful"): "c4ac0fe85081c06cf759",
    ("poisson", "noise"): "e9252ab69433d0527fe9",
    ("poisson", "anti"): "74acf44864359aae7ce9",
    ("poisson", "biased"): "f0f4104faa4983766bbf",
}


@pytest.mark.parametrize(("model", "aux"), list(MAKE_STUDY_FINGERPRINTS))
def test_make_study_draws_are_unchanged(model: str, aux: str) -> None:
    study = make_study(model, n_units=300, n_labeled=50, aux=aux, k_synth=3, seed=42)
    assert _fingerprint(study) == MAKE_STUDY_FINGERPRINTS[model, aux]
    assert study.full is not None and len(study.full) == 300
    pd.testing.assert_frame_equal(study.real, study.full.loc[study.real.index])


# -- layout and reproducibility ----------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("model", MODELS)
def test_layout(model: str, scenario: str) -> None:
    study = simulate_study(model, 400, 60, proxy=scenario, synth=scenario, k_synth=3, seed=1)
    real, proxy, synth, full = study.real, study.proxy, study.synth, study.full
    for frame in (real, proxy, synth, full):
        assert list(frame.columns) == ["y", "x1", "x2"]
        assert frame.index.name == "unit"
        assert np.isfinite(frame.to_numpy()).all()
    assert real.shape == (60, 3) and proxy.shape == (400, 3) and synth.shape == (1200, 3)
    assert proxy.index.is_unique and real.index.is_unique and real.index.is_monotonic_increasing
    assert proxy.index.equals(full.index)
    assert real.index.isin(proxy.index).all()
    assert synth.index.value_counts().eq(3).all() and set(synth.index) == set(proxy.index)
    pd.testing.assert_frame_equal(real, full.loc[real.index])
    pd.testing.assert_frame_equal(proxy[["x1", "x2"]], full[["x1", "x2"]])  # same units, same covariates
    pd.testing.assert_series_equal(study.truth, pd.Series(COEFS, index=["Intercept", "x1", "x2"], name="truth"))
    assert study.formula == "y ~ x1 + x2"
    for frame in (full, proxy, synth):
        y = frame["y"].to_numpy()
        if model == "logit":
            assert set(np.unique(y)) <= {0.0, 1.0}
        if model == "poisson":
            assert (y >= 0).all() and (y == np.round(y)).all()


def test_reproducible_with_a_seed() -> None:
    kwargs = dict(proxy="biased", synth="anti", k_synth=2)
    a = simulate_study("logit", 500, 80, seed=5, **kwargs)
    b = simulate_study("logit", 500, 80, seed=5, **kwargs)
    c = simulate_study("logit", 500, 80, seed=6, **kwargs)
    d = simulate_study("logit", 500, 80, seed=np.random.default_rng(5), **kwargs)
    for name in ("real", "proxy", "synth", "full"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
        pd.testing.assert_frame_equal(getattr(a, name), getattr(d, name))
    assert not a.real.index.equals(c.real.index)
    assert not np.array_equal(a.full["x1"], c.full["x1"])


def test_settings_resolve_the_scenario_defaults() -> None:
    study = simulate_study("logit", 100, 20, seed=0)
    assert study.settings["proxy_error"] == 0.1
    assert study.settings["proxy_bias"] == 0.0 and study.settings["synth_labeled_shift"] == 0.0
    assert simulate_study("ols", 100, 20, seed=0).settings["proxy_error"] == 0.5
    biased = simulate_study("ols", 100, 20, proxy="biased", synth="biased", seed=0).settings
    assert biased["proxy_bias"] == 0.5 and biased["synth_bias"] == 0.5
    differential = simulate_study("ols", 100, 20, proxy="differential", synth="differential", seed=0)
    assert differential.settings["proxy_labeled_shift"] == 0.5
    assert differential.settings["synth_labeled_shift"] == 0.5
    explicit = simulate_study("ols", 100, 20, synth="biased", synth_bias=0.2, seed=0)
    assert explicit.settings["synth_bias"] == 0.2


@pytest.mark.parametrize("model", MODELS)
def test_human_outcome_follows_the_model(model: str) -> None:
    study = simulate_study(model, BIG, 10, seed=2)
    res = smf.classical(study.formula, real=study.full, model=model).fit()
    z = (res.params.to_numpy() - COEFS) / res.bse.to_numpy()
    assert np.all(np.abs(z) < 4), z


# -- proxy knobs -----------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.2, 0.4])
def test_logit_misclassification_rate_is_realised(rate: float) -> None:
    study = simulate_study("logit", BIG, 100, proxy_error=rate, seed=3)
    flipped = (study.proxy["y"] != study.full["y"]).mean()
    if rate == 0:
        assert flipped == 0
    else:
        assert abs(flipped - rate) < 4 * np.sqrt(rate * (1 - rate) / BIG)


@pytest.mark.parametrize("scale", [0.0, 0.3, 1.0, 2.0])
def test_ols_proxy_noise_scale_is_realised(scale: float) -> None:
    study = simulate_study("ols", BIG, 100, proxy_error=scale, seed=4)
    error = study.proxy["y"] - study.full["y"]
    if scale == 0:
        assert (error == 0).all()
    else:
        assert abs(error.std() / scale - 1) < 0.03
        assert abs(error.mean()) < 4 * scale / np.sqrt(BIG)


def test_poisson_proxy_noise_scale_lowers_the_correlation_not_the_mean() -> None:
    correlations = []
    for scale in [0.0, 0.5, 1.0, 3.0]:
        study = simulate_study("poisson", BIG, 100, proxy_error=scale, seed=5)
        y, y_proxy = study.full["y"], study.proxy["y"]
        if scale == 0:
            assert (y_proxy == y).all()
        difference = y_proxy - y
        assert abs(difference.mean()) < 4 * difference.std() / np.sqrt(BIG) + 1e-12
        residuals = _residual("poisson", y, study.full), _residual("poisson", y_proxy, study.full)
        correlations.append(np.corrcoef(*residuals)[0, 1])
    assert correlations[0] == pytest.approx(1.0)
    assert np.all(np.diff(correlations) < -0.1), correlations


@pytest.mark.parametrize("model", MODELS)
def test_noise_scenario_is_independent_of_everything(model: str) -> None:
    study = simulate_study(model, BIG, 100, proxy="noise", synth="noise", k_synth=1, seed=6)
    bound = 4 / np.sqrt(BIG)
    for frame in (study.proxy, study.synth):
        assert abs(np.corrcoef(frame["y"], study.full["y"])[0, 1]) < bound
        assert abs(np.corrcoef(frame["y"], study.full["x1"])[0, 1]) < bound
        assert abs(np.corrcoef(frame["y"], study.full["x2"])[0, 1]) < bound


@pytest.mark.parametrize("model", MODELS)
def test_anti_scenario_runs_against_the_human_outcome(model: str) -> None:
    study = simulate_study(model, BIG, 100, proxy="anti", synth="anti", k_synth=1, seed=7)
    useful = simulate_study(model, BIG, 100, k_synth=1, seed=7)
    for frame in (study.proxy, study.synth):
        assert np.corrcoef(frame["y"], study.full["y"])[0, 1] < -0.2
        fitted = smf.classical(study.formula, real=frame, model=model).fit().params
        assert fitted["x1"] < -0.5 and fitted["x2"] > 0.2  # slopes reversed
    for frame in (useful.proxy, useful.synth):
        assert np.corrcoef(frame["y"], useful.full["y"])[0, 1] > 0.2


@pytest.mark.parametrize("model", MODELS)
def test_bias_is_one_directional_and_grows_with_the_knob(model: str) -> None:
    # no proxy error and a perfectly correlated, unshifted synthetic copy: only the bias acts
    exact = dict(proxy_error=0.0, synth_correlation=1.0, synth_shift=0.0, synth_covariate_noise=0.0, k_synth=1)
    excess = []
    for bias in [0.0, 0.5, 1.0]:
        study = simulate_study(model, BIG, 100, proxy_bias=bias, synth_bias=bias, seed=8, **exact)
        y = study.full["y"].to_numpy()
        for frame in (study.proxy, study.synth):
            assert (frame["y"].to_numpy() >= y).all()
            if bias == 0:
                assert (frame["y"].to_numpy() == y).all()
        excess.append((study.proxy["y"] - study.full["y"]).mean())
    assert excess[0] == 0 and excess[0] < excess[1] < excess[2]
    if model == "ols":
        assert excess[1] == pytest.approx(0.5, abs=0.01)  # mean 2 b expit(x1) = b
    if model == "logit":
        study = simulate_study(model, BIG, 100, proxy="biased", seed=8, **exact)
        negatives = study.full["y"] == 0
        false_positive = study.proxy["y"][negatives].mean()
        assert 0.1 < false_positive < 0.5
        # more so for large x1
        x1 = study.full["x1"][negatives]
        assert study.proxy["y"][negatives][x1 > 0].mean() > study.proxy["y"][negatives][x1 < 0].mean()


def test_biased_proxy_biases_naive_pooling_but_not_gmm() -> None:
    study = simulate_study("ols", BIG, 2000, proxy="biased", seed=9)
    naive = smf.naive(study.formula, real=study.real, proxy=study.proxy).fit()
    gmm = smf.gmm_proxy(study.formula, real=study.real, proxy=study.proxy).fit()
    assert abs(naive.params["x1"] - 1.0) / naive.bse["x1"] > 10
    assert abs(gmm.params["x1"] - 1.0) / gmm.bse["x1"] < 4


# -- synthetic knobs -------------------------------------------------------------------


@pytest.mark.parametrize("rho", [-0.5, 0.0, 0.3, 0.9])
def test_synthetic_correlation_is_realised(rho: float) -> None:
    study = simulate_study(
        "ols", BIG, 100, synth_correlation=rho, synth_shift=0.0, synth_covariate_noise=0.0, k_synth=1, seed=10
    )
    full = study.full
    lin = COEFS[0] + COEFS[1] * full["x1"] + COEFS[2] * full["x2"]
    realised = np.corrcoef(study.synth["y"] - lin, full["y"] - lin)[0, 1]
    assert abs(realised - rho) < 0.03


@pytest.mark.parametrize("model", MODELS)
def test_synthetic_correlation_orders_the_agreement(model: str) -> None:
    agreement = []
    for rho in [0.0, 0.5, 0.9, 1.0]:
        study = simulate_study(
            model, BIG, 100, synth_correlation=rho, synth_shift=0.0, synth_covariate_noise=0.0, k_synth=1, seed=11
        )
        residuals = _residual(model, study.synth["y"], study.full), _residual(model, study.full["y"], study.full)
        agreement.append(np.corrcoef(*residuals)[0, 1])
        if rho == 1.0:
            assert (study.synth["y"] == study.full["y"]).all()
    assert abs(agreement[0]) < 4 / np.sqrt(BIG)
    assert np.all(np.diff(agreement) > 0.05), agreement


@pytest.mark.parametrize("model", MODELS)
def test_synthetic_shift_moves_the_distribution(model: str) -> None:
    means = {}
    for shift in [-0.5, 0.0, 0.5]:
        study = simulate_study(model, BIG, 100, synth_shift=shift, synth_covariate_noise=0.0, k_synth=1, seed=12)
        means[shift] = study.synth["y"].mean()
        difference = study.synth["y"] - study.full["y"]
        se = difference.std() / np.sqrt(BIG)
        if model == "ols":
            assert abs(difference.mean() - shift) < 4 * se
        if model == "poisson":
            # log-rate shifted by `shift`: the mean count scales by exp(shift)
            assert study.synth["y"].mean() / study.full["y"].mean() == pytest.approx(np.exp(shift), rel=0.05)
        if shift == 0.0:
            assert abs(difference.mean()) < 4 * se
    assert means[-0.5] < means[0.0] < means[0.5]


def test_synthetic_covariate_noise_is_realised() -> None:
    for tau in [0.0, 0.3, 1.0]:
        study = simulate_study("ols", BIG, 100, synth_covariate_noise=tau, k_synth=2, seed=13)
        units = study.synth.index
        for column in ("x1", "x2"):
            noise = study.synth[column].to_numpy() - study.full.loc[units, column].to_numpy()
            if tau == 0:
                assert (noise == 0).all()
            else:
                assert abs(noise.std() / tau - 1) < 0.03


def test_samples_of_a_unit_share_its_latent_not_its_noise() -> None:
    study = simulate_study("ols", 2000, 100, synth_correlation=0.5, synth_covariate_noise=0.0, k_synth=2, seed=14)
    first, second = study.synth.iloc[:2000], study.synth.iloc[2000:]
    assert first.index.equals(second.index)
    assert not np.allclose(first["y"], second["y"])
    lin = COEFS[0] + COEFS[1] * first["x1"] + COEFS[2] * first["x2"]
    # both correlate 0.5 with the unit's latent: 0.25 with each other
    assert abs(np.corrcoef(first["y"] - lin, second["y"] - lin)[0, 1] - 0.25) < 0.1


# -- generated differently for labeled units ------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_labeled_shift_applies_to_labeled_units_only(model: str) -> None:
    study = simulate_study(model, BIG, 5000, proxy="differential", synth="differential", k_synth=1, seed=15)
    control = simulate_study(model, BIG, 5000, k_synth=1, seed=15)
    for s in (study, control):
        labeled = s.full.index.isin(s.real.index)
        for frame in (s.proxy, s.synth):
            excess = (frame["y"] - s.full["y"]).to_numpy()
            gap = excess[labeled].mean() - excess[~labeled].mean()
            se = np.sqrt(excess[labeled].var() / labeled.sum() + excess[~labeled].var() / (~labeled).sum())
            if s is study:
                assert gap > 4 * se
                if model == "ols":
                    assert abs(gap - 0.5) < 4 * se
            else:
                assert abs(gap) < 4 * se


@pytest.mark.parametrize("model", MODELS)
def test_jtest_flags_synthetic_data_generated_differently_for_labeled_units(model: str) -> None:
    rejected = {"differential": 0, "useful": 0}
    for seed in range(10):
        for scenario in rejected:
            study = simulate_study(model, 5000, 500, synth=scenario, seed=100 + seed)
            res = smf.gmm_synth(
                study.formula, real=study.real, proxy=study.proxy, synth=study.synth, model=model
            ).fit()
            assert res.converged
            rejected[scenario] += res.jtest()[1] < 0.05
    assert rejected["differential"] >= 8, rejected
    assert rejected["useful"] <= 3, rejected  # P(>= 4 of 10) at level 0.05 is 0.001


# -- bad arguments -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(model="probit"), ValueError, "model must be one of"),
        (dict(n_labeled=0), ValueError, "n_labeled must be at least 1"),
        (dict(n_units=10, n_labeled=20), ValueError, r"n_labeled \(20\) must not exceed n_units \(10\)"),
        (dict(n_labeled=2.5), TypeError, "n_labeled must be an integer"),
        (dict(proxy="good"), ValueError, "proxy must be one of"),
        (dict(synth="leaky"), ValueError, "synth must be one of"),
        (dict(k_synth=0), ValueError, "k_synth must be at least 1"),
        (dict(model="logit", proxy_error=1.5), ValueError, r"proxy_error must be in \[0.0, 1.0\]"),
        (dict(proxy_error=-0.1), ValueError, "proxy_error must be in"),
        (dict(synth_correlation=1.2), ValueError, r"synth_correlation must be in \[-1.0, 1.0\]"),
        (dict(synth_covariate_noise=-1.0), ValueError, "synth_covariate_noise must be in"),
        (dict(synth_shift=float("nan")), ValueError, "synth_shift must be finite"),
        (dict(proxy_bias="high"), TypeError, "proxy_bias must be a number"),
        (dict(coefs=(1.0, 2.0)), ValueError, "coefs must be 3 numbers"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, error: type, match: str) -> None:
    args = dict(model="ols", n_units=100, n_labeled=20) | kwargs
    with pytest.raises(error, match=match):
        simulate_study(**args)
