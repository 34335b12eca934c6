"""Seeded Monte Carlo checks of GMM-Synth inference against a known truth.

Every replication draws a study with ``synthinfer.simulate.make_study`` (seeds
0..R-1, the same seeds in every scenario; nothing is picked) and fits

- GMM-Synth with the proxy and the synthetic frames,
- the human-only fit (no auxiliary source),
- in one scenario (OLS, useful proxy) also GMM-Proxy (proxy frame only).

The draws of one (model, aux) scenario are made once per module and shared by
every assertion about it. They run in two forked worker processes when the
machine has two cores; the results do not depend on that (one seed = one study).

A second group of tests needs no Monte Carlo: the asymptotic variance formula
of the spec, evaluated by plug-in with numpy from the data at large N, must
agree with the reported covariance, and an invertible relabelling of an
auxiliary outcome must leave the estimate unchanged.
"""

from __future__ import annotations

import multiprocessing
import os
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from scipy import stats
from scipy.special import expit

import synthinfer.api as smf
from synthinfer.simulate import make_study

FORMULA = "y ~ x1 + x2"
NAMES = ["Intercept", "x1", "x2"]

# Design of the Monte Carlo: N units, n of them labeled, R replications.
# A replication (draw + GMM-Synth fit + human-only fit) costs ~12 ms for OLS and
# ~25 ms for logit, so the five scenarios take ~100 s of CPU on two cores.
N_UNITS, N_LABELED = 2000, 300
R = 600
SEEDS = range(R)
MODELS = ("ols", "logit")
AUX = ("useful", "noise", "anti")
PROXY_SCENARIO = ("ols", "useful")  # the scenario that also fits GMM-Proxy

# Coverage of a nominal 95% interval over R independent replications is
# Binomial(R, c) / R. If the intervals are exact (c = 0.95) its standard error
# is sqrt(0.95 * 0.05 / R) = 0.0089 for R = 600, and we accept
# |coverage - 0.95| <= 3.5 standard errors = 0.031: a false alarm has probability
# ~5e-4 per coefficient (~1% over the ~24 coverage checks of this file), while
# coverage below 0.919 or above 0.981 fails. The allowance is binomial only:
# HC0-based sandwich intervals under-cover by about a point at n = 300 (the
# human-only fit does too), which uses part of it.
COVERAGE_TOL = 3.5 * np.sqrt(0.95 * 0.05 / R)
ALPHA = 0.05


# --------------------------------------------------------------------------- #
# Monte Carlo machinery
# --------------------------------------------------------------------------- #
def _replicate(task: tuple[str, str, bool, int]) -> dict:
    """One study: errors (estimate - truth), bse, CI - truth, convergence, warnings."""
    model, aux, with_proxy, seed = task
    study = make_study(model, N_UNITS, N_LABELED, aux=aux, seed=seed)
    truth = study.truth.loc[NAMES].to_numpy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fits = {
            "gmm": smf.gmm_synth(
                FORMULA, real=study.real, proxy=study.proxy, synth=study.synth, model=model
            ).fit(),
            "human": smf.gmm_synth(FORMULA, real=study.real, model=model).fit(),
        }
        if with_proxy:
            fits["proxy"] = smf.gmm_proxy(FORMULA, real=study.real, proxy=study.proxy, model=model).fit()
    out: dict = {"warnings": [f"{w.category.__name__}: {w.message}" for w in caught]}
    for name, res in fits.items():
        ci = res.conf_int(ALPHA)
        out[name] = {
            "names": list(res.params.index) + list(res.bse.index) + list(ci.index),
            "err": res.params.to_numpy() - truth,
            "bse": res.bse.to_numpy(),
            "ci": ci.to_numpy() - truth[:, None],
            "converged": bool(getattr(res, "converged", True)),
            "df": float(res.df_resid) if getattr(res, "use_t", False) else np.inf,
        }
    return out


class Draws:
    """Arrays over the R replications for one estimator."""

    def __init__(self, reps: list[dict]) -> None:
        self.names = [r["names"] for r in reps]
        self.err = np.array([r["err"] for r in reps])  # (R, 3): estimate - truth
        self.bse = np.array([r["bse"] for r in reps])  # (R, 3)
        self.ci = np.array([r["ci"] for r in reps])  # (R, 3, 2): interval - truth
        self.converged = np.array([r["converged"] for r in reps])
        self.df = np.array([r["df"] for r in reps])  # t reference's df (inf: normal)

    @property
    def coverage(self) -> np.ndarray:
        return ((self.ci[:, :, 0] <= 0) & (self.ci[:, :, 1] >= 0)).mean(axis=0)

    @property
    def sd(self) -> np.ndarray:
        return self.err.std(axis=0, ddof=1)


class Scenario:
    def __init__(self, model: str, aux: str, results: list[dict]) -> None:
        self.model, self.aux = model, aux
        self.warnings = [w for r in results for w in r["warnings"]]
        self.fits = {name: Draws([r[name] for r in results]) for name in results[0] if name != "warnings"}

    def __getitem__(self, name: str) -> Draws:
        return self.fits[name]


def _single_threaded_blas() -> None:
    """Worker initializer: the fits are tiny, and two workers x two BLAS threads
    oversubscribe two cores (~1.5x slower)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: only speed depends on it
        return
    threadpool_limits(1)


@pytest.fixture(scope="module")
def _executor():
    workers = min(2, os.cpu_count() or 1)
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        yield None
        return
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_single_threaded_blas) as executor:
        yield executor


@pytest.fixture(scope="module")
def monte_carlo(_executor):
    """``monte_carlo(model, aux)``: the R replications of a scenario, run once per module."""
    cache: dict[tuple[str, str], Scenario] = {}

    def run(model: str, aux: str) -> Scenario:
        key = (model, aux)
        if key not in cache:
            tasks = [(model, aux, key == PROXY_SCENARIO, seed) for seed in SEEDS]
            if _executor is None:
                results = [_replicate(t) for t in tasks]
            else:
                results = list(_executor.map(_replicate, tasks, chunksize=25))
            cache[key] = Scenario(model, aux, results)
        return cache[key]

    return run


def _fmt(values: np.ndarray) -> str:
    return ", ".join(f"{n}={v:.4f}" for n, v in zip(NAMES, values))


# Logit's "anti" source is 1 - the "useful" one drawn from the same random
# numbers: an invertible relabelling (section 5c), so its fits equal the useful
# scenario's to ~1e-10 (test_logit_anti_is_the_relabelled_useful_study) and its
# R replications would repeat the useful scenario's. It is not run again.
SCENARIOS = [pytest.param(m, a, id=f"{m}-{a}") for m in MODELS for a in AUX if (m, a) != ("logit", "anti")]


# --------------------------------------------------------------------------- #
# 0. The replications themselves are clean
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("model, aux", SCENARIOS)
def test_every_replication_converges_without_warnings(monte_carlo, model, aux) -> None:
    sc = monte_carlo(model, aux)
    for name, draws in sc.fits.items():
        assert draws.converged.all(), f"{name}: {np.sum(~draws.converged)} of {R} fits did not converge"
        assert all(n == NAMES * 3 for n in draws.names), f"{name}: params/bse/conf_int not named {NAMES}"
        assert np.isfinite(draws.err).all() and (draws.bse > 0).all()
    assert not sc.warnings, f"{len(sc.warnings)} warnings, first: {sc.warnings[0]}"


# --------------------------------------------------------------------------- #
# 1. Coverage of the 95% intervals
# --------------------------------------------------------------------------- #
def _assert_coverage(draws: Draws, label: str) -> None:
    coverage = draws.coverage
    bad = np.abs(coverage - (1 - ALPHA)) > COVERAGE_TOL
    assert not bad.any(), (
        f"{label}: coverage of the 95% intervals over {R} replications is {_fmt(coverage)}; "
        f"allowed 0.95 +/- {COVERAGE_TOL:.4f}"
    )


@pytest.mark.parametrize("model, aux", SCENARIOS)
def test_gmm_synth_coverage(monte_carlo, model, aux) -> None:
    _assert_coverage(monte_carlo(model, aux)["gmm"], f"GMM-Synth {model}/{aux}")


def test_gmm_proxy_coverage(monte_carlo) -> None:
    _assert_coverage(monte_carlo(*PROXY_SCENARIO)["proxy"], "GMM-Proxy %s/%s" % PROXY_SCENARIO)


@pytest.mark.parametrize("model", MODELS)
def test_human_only_coverage(monte_carlo, model) -> None:
    # the reference the GMM fits are compared with must itself be valid here
    _assert_coverage(monte_carlo(model, "useful")["human"], f"human-only {model}")


def test_conf_int_is_the_t_interval(monte_carlo) -> None:
    # coverage above is computed from conf_int(); it must be params +/- t bse with
    # the default's small-sample degrees of freedom (the normal for a plain fit)
    draws = monte_carlo("logit", "useful")["gmm"]
    assert np.isfinite(draws.df).all() and (draws.df < N_LABELED).all()
    q = stats.t.ppf(1 - ALPHA / 2, draws.df)[:, None]
    np.testing.assert_allclose(draws.ci[:, :, 0], draws.err - q * draws.bse, rtol=0, atol=1e-10)
    np.testing.assert_allclose(draws.ci[:, :, 1], draws.err + q * draws.bse, rtol=0, atol=1e-10)


# --------------------------------------------------------------------------- #
# 2. Informative auxiliary data: clearly smaller standard errors
# --------------------------------------------------------------------------- #
# Realistic values at N=2000, n=300: median bse ratio ~0.5 (OLS) and ~0.6-0.65
# (logit). A broken estimator that ignores the auxiliary data gives 1. The
# "anti" outcome is as informative as the useful one (the control variate does
# not care about the sign of the correlation), so it must help as much.
@pytest.mark.parametrize("model, aux", [("ols", "useful"), ("ols", "anti"), ("logit", "useful")])
def test_informative_auxiliary_data_shrinks_the_standard_errors(monte_carlo, model, aux) -> None:
    sc = monte_carlo(model, aux)
    gmm, human = sc["gmm"], sc["human"]
    median_ratio = np.median(gmm.bse / human.bse, axis=0)
    assert (median_ratio < 0.8).all(), f"{model}/{aux}: median bse_gmm / bse_human = {_fmt(median_ratio)}"
    # the estimates really are less variable, not just reported to be
    sd_ratio = gmm.sd / human.sd
    assert (sd_ratio < 0.8).all(), f"{model}/{aux}: SD(gmm) / SD(human) = {_fmt(sd_ratio)}"


# --------------------------------------------------------------------------- #
# 3. Pure noise: no material harm (and no spurious gain)
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("model", MODELS)
def test_pure_noise_does_no_harm(monte_carlo, model) -> None:
    sc = monte_carlo(model, "noise")
    gmm, human = sc["gmm"], sc["human"]
    median_ratio = np.median(gmm.bse / human.bse, axis=0)
    assert (median_ratio <= 1.05).all(), f"{model}: median bse_gmm / bse_human = {_fmt(median_ratio)}"
    # noise carries no information: a much smaller reported SE would be a false gain
    assert (median_ratio >= 0.9).all(), f"{model}: median bse_gmm / bse_human = {_fmt(median_ratio)}"
    sd_ratio = gmm.sd / human.sd
    assert (sd_ratio <= 1.1).all(), f"{model}: SD(gmm) / SD(human) = {_fmt(sd_ratio)}"


# --------------------------------------------------------------------------- #
# 4. Calibration: reported SE vs Monte Carlo SD, and centring on the truth
# --------------------------------------------------------------------------- #
# The MC SD from R = 600 draws has relative standard error ~1/sqrt(2R) = 2.9%,
# so a 15% band leaves room for the O(1/n) downward bias of two-step GMM SEs
# (~3-6% here) while catching, e.g., a covariance off by a factor (1 - n/N).
@pytest.mark.parametrize("model, aux", SCENARIOS)
def test_standard_errors_are_calibrated(monte_carlo, model, aux) -> None:
    gmm = monte_carlo(model, aux)["gmm"]
    ratio = gmm.bse.mean(axis=0) / gmm.sd
    assert (np.abs(ratio - 1) <= 0.15).all(), f"{model}/{aux}: mean bse / MC SD = {_fmt(ratio)}"


def test_gmm_proxy_standard_errors_are_calibrated(monte_carlo) -> None:
    proxy = monte_carlo(*PROXY_SCENARIO)["proxy"]
    ratio = proxy.bse.mean(axis=0) / proxy.sd
    assert (np.abs(ratio - 1) <= 0.15).all(), f"GMM-Proxy: mean bse / MC SD = {_fmt(ratio)}"


@pytest.mark.parametrize("model, aux", SCENARIOS)
def test_estimates_are_centred_on_the_truth(monte_carlo, model, aux) -> None:
    # MC error of the mean is SD / sqrt(R) = 0.03 SD; logit's own small-sample
    # bias is ~0.1 SD (the human-only fit has it too). 0.25 SD is far outside
    # both, and a bias that small would barely move the coverage above.
    gmm = monte_carlo(model, aux)["gmm"]
    bias = gmm.err.mean(axis=0) / gmm.sd
    assert (np.abs(bias) <= 0.25).all(), f"{model}/{aux}: mean error / MC SD = {_fmt(bias)}"


# --------------------------------------------------------------------------- #
# 5a. The efficiency gain of GMM-Proxy matches its closed form (OLS)
# --------------------------------------------------------------------------- #
def test_gmm_proxy_gain_matches_the_closed_form(monte_carlo) -> None:
    # OLS, useful proxy: y = x'b + e, e ~ N(0, 1); proxy y~ = y + u, u ~ N(0, 0.25).
    # psi = x e, h = x (e + u), so E psi psi' = Sx, E psi h' = Sx, E h h' = 1.25 Sx,
    # and the spec's Var(theta) = Sx^-1 [1 - (1 - n/N) / 1.25] / n: the SE ratio to
    # the human-only fit is sqrt(1 - 0.8 (1 - n/N)) for every coefficient.
    sc = monte_carlo(*PROXY_SCENARIO)
    expected = np.sqrt(1 - 0.8 * (1 - N_LABELED / N_UNITS))
    median_ratio = np.median(sc["proxy"].bse / sc["human"].bse, axis=0)
    sd_ratio = sc["proxy"].sd / sc["human"].sd
    assert np.allclose(median_ratio, expected, atol=0.03), (
        f"median bse_proxy / bse_human = {_fmt(median_ratio)}, closed form {expected:.4f}"
    )
    # MC SDs: each has ~2.9% relative error, but both come from the same draws, so
    # their ratio's error is far smaller; 0.05 is well outside it
    assert np.allclose(sd_ratio, expected, atol=0.05), (
        f"SD(proxy) / SD(human) = {_fmt(sd_ratio)}, closed form {expected:.4f}"
    )


# --------------------------------------------------------------------------- #
# 5b. The asymptotic variance formula, by plug-in at large N
# --------------------------------------------------------------------------- #
LARGE_N, LARGE_n = 100_000, 5_000


def _design(frame) -> np.ndarray:
    return np.column_stack([np.ones(len(frame)), frame["x1"].to_numpy(), frame["x2"].to_numpy()])


def _mean_fn(model: str, eta: np.ndarray) -> np.ndarray:
    return eta if model == "ols" else expit(eta)


def _solve(model: str, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Root of sum x (y - mu(x'b)) = 0 by Newton (independent of the package)."""
    b = np.zeros(X.shape[1])
    for _ in range(100):
        mu = _mean_fn(model, X @ b)
        d = np.ones_like(mu) if model == "ols" else mu * (1 - mu)
        step = np.linalg.solve((X * d[:, None]).T @ X, X.T @ (y - mu))
        b += step
        if np.max(np.abs(step)) < 1e-12:
            return b
    raise AssertionError("reference Newton solver did not converge")


def _scores(model: str, X: np.ndarray, y: np.ndarray, b: np.ndarray) -> np.ndarray:
    return X * (y - _mean_fn(model, X @ b))[:, None]


def _plug_in_covariance(model: str, study, use_synth: bool) -> tuple[np.ndarray, np.ndarray]:
    """Spec: H^-1 [E psi psi' - (1 - n/N) E psi h' (E h h')^-1 E h psi'] H^-1 / n.

    Returns (that, the human-only H^-1 E psi psi' H^-1 / n). Every expectation
    is a sample mean over the labeled units, theta the labeled-only estimate and
    each eta its source's estimate on all rows; h stacks the per-unit scores of
    the sources (a unit's synthetic score is the mean over its samples).
    E h h' is taken over the labeled units like E psi h': then the bracket is the
    residual second moment of the sample regression of psi on h (positive
    definite). Taking E h h' over all N units instead is equally consistent, but
    the bracket is a difference of nearly cancelling terms and the mixed-sample
    version is ~10x noisier at this n.
    """
    units = study.proxy.index
    labeled = units.get_indexer(study.real.index)
    n, N = len(labeled), len(units)
    XL, yL = _design(study.real), study.real["y"].to_numpy()
    theta = _solve(model, XL, yL)
    psi = _scores(model, XL, yL, theta)
    mu = _mean_fn(model, XL @ theta)
    d = np.ones(n) if model == "ols" else mu * (1 - mu)
    H_inv = np.linalg.inv((XL * d[:, None]).T @ XL / n)

    Xp, yp = _design(study.proxy), study.proxy["y"].to_numpy()
    h = [_scores(model, Xp, yp, _solve(model, Xp, yp))]
    if use_synth:
        Xs, ys = _design(study.synth), study.synth["y"].to_numpy()
        pos = units.get_indexer(study.synth.index)
        rows = _scores(model, Xs, ys, _solve(model, Xs, ys))
        per_unit = np.zeros((N, rows.shape[1]))
        np.add.at(per_unit, pos, rows)
        h.append(per_unit / np.bincount(pos, minlength=N)[:, None])
    hL = np.hstack(h)[labeled]

    e_psi_psi = psi.T @ psi / n
    e_psi_h = psi.T @ hL / n
    e_h_h = hL.T @ hL / n
    bracket = e_psi_psi - (1 - n / N) * e_psi_h @ np.linalg.solve(e_h_h, e_psi_h.T)
    return H_inv @ bracket @ H_inv / n, H_inv @ e_psi_psi @ H_inv / n


@pytest.fixture(scope="module")
def large_studies():
    cache: dict = {}

    def get(model: str, aux: str):
        if (model, aux) not in cache:
            cache[model, aux] = make_study(model, LARGE_N, LARGE_n, aux=aux, seed=0)
        return cache[model, aux]

    return get


@pytest.mark.parametrize("aux", ["useful", "noise"])
@pytest.mark.parametrize("use_synth", [False, True], ids=["proxy", "proxy+synth"])
@pytest.mark.parametrize("model", MODELS)
def test_reported_covariance_matches_the_asymptotic_formula(large_studies, model, use_synth, aux) -> None:
    study = large_studies(model, aux)
    res = smf.gmm_synth(
        FORMULA, real=study.real, proxy=study.proxy, synth=study.synth if use_synth else None, model=model
    ).fit()
    reported = res.cov_params().loc[NAMES, NAMES].to_numpy()
    plug_in, human_plug_in = _plug_in_covariance(model, study, use_synth)
    # Both estimate the same limit from the same data; they differ by O(1/sqrt(n))
    # sampling terms (~1% here). The gain from useful data is 25-60% of the SE,
    # so a 3% band separates a correct covariance from, e.g., the human-only one.
    se_ratio = np.sqrt(np.diag(reported) / np.diag(plug_in))
    assert np.allclose(se_ratio, 1, atol=0.03), f"reported SE / plug-in SE = {_fmt(se_ratio)}"
    scale = np.sqrt(np.outer(np.diag(plug_in), np.diag(plug_in)))
    worst = np.max(np.abs(reported - plug_in) / scale)
    assert worst <= 0.04, f"reported vs plug-in covariance differ by {worst:.4f} (correlation units)"

    gain = np.sqrt(np.diag(reported) / np.diag(human_plug_in))
    if aux == "noise":
        # independent auxiliary residuals: the same variance as human-only
        assert np.allclose(gain, 1, atol=0.02), f"noise: SE / human-only SE = {_fmt(gain)}"
    else:
        assert (gain < 0.8).all(), f"useful: SE / human-only SE = {_fmt(gain)}"


@pytest.mark.parametrize("aux", ["useful", "noise"])
def test_ols_proxy_variance_matches_the_population_value(large_studies, aux) -> None:
    # With x = (1, x1, x2), x1, x2 iid N(0, 1): Sx = I. Human-only Var = I / n;
    # with a useful proxy (see test_gmm_proxy_gain_matches_the_closed_form) it is
    # [1 - 0.8 (1 - n/N)] I / n = 0.24 I / n; with a noise proxy it stays I / n.
    # The sandwich's middle term is a mean of n terms like x1^2 e^2 (variance 8),
    # so n Var / value has sampling SE up to sqrt(8 / n) = 0.04 for a slope: allow
    # 0.15. Getting the factor wrong (e.g. human-only, or n/N for 1 - n/N) is 4x off.
    study = large_studies("ols", aux)
    res = smf.gmm_proxy(FORMULA, real=study.real, proxy=study.proxy, model="ols").fit()
    factor = 1 - 0.8 * (1 - LARGE_n / LARGE_N) if aux == "useful" else 1.0
    scaled = np.diag(res.cov_params().loc[NAMES, NAMES].to_numpy()) * LARGE_n / factor
    assert np.allclose(scaled, 1, atol=0.15), f"n Var / population value = {_fmt(scaled)}"


# --------------------------------------------------------------------------- #
# 5c. An invertible relabelling of an auxiliary outcome changes nothing
# --------------------------------------------------------------------------- #
# Replacing a source's outcome by a + b y (OLS, b != 0) or 1 - y (logit) maps its
# eta affinely and multiplies its moment blocks by b (resp. -1): an invertible
# linear map of the moment set, so step 1, the weighted objective and hence theta
# and its covariance are unchanged (spec, "Facts the tests can lean on").
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("seed", range(3))
def test_relabelled_auxiliary_outcomes_give_the_same_fit(model, seed) -> None:
    study = make_study(model, N_UNITS, N_LABELED, aux="useful", seed=seed)
    if model == "ols":
        proxy = study.proxy.assign(y=3.0 - 2.0 * study.proxy["y"])
        synth = study.synth.assign(y=-0.5 * study.synth["y"] + 1.0)
    else:
        proxy = study.proxy.assign(y=1.0 - study.proxy["y"])
        synth = study.synth.assign(y=1.0 - study.synth["y"])
    base = smf.gmm_synth(FORMULA, real=study.real, proxy=study.proxy, synth=study.synth, model=model).fit()
    flipped = smf.gmm_synth(FORMULA, real=study.real, proxy=proxy, synth=synth, model=model).fit()
    np.testing.assert_allclose(flipped.params, base.params, rtol=0, atol=1e-6 * base.bse.min())
    np.testing.assert_allclose(flipped.bse, base.bse, rtol=1e-6)
    # and it is not the human-only fit (the relabelled data is still used)
    human = smf.gmm_synth(FORMULA, real=study.real, model=model).fit()
    assert (flipped.bse < 0.9 * human.bse).all()


@pytest.mark.parametrize("seed", range(3))
def test_logit_anti_is_the_relabelled_useful_study(seed) -> None:
    # why the Monte Carlo above skips logit/anti: same draws, outcomes 1 - y
    useful = make_study("logit", N_UNITS, N_LABELED, aux="useful", seed=seed)
    anti = make_study("logit", N_UNITS, N_LABELED, aux="anti", seed=seed)
    assert useful.real.equals(anti.real)
    np.testing.assert_array_equal(anti.proxy["y"], 1 - useful.proxy["y"])
    np.testing.assert_array_equal(anti.synth["y"], 1 - useful.synth["y"])
    fits = [
        smf.gmm_synth(FORMULA, real=s.real, proxy=s.proxy, synth=s.synth, model="logit").fit()
        for s in (useful, anti)
    ]
    np.testing.assert_allclose(fits[1].params.loc[NAMES], fits[0].params.loc[NAMES], rtol=1e-8)
    np.testing.assert_allclose(fits[1].bse.loc[NAMES], fits[0].bse.loc[NAMES], rtol=1e-8)
