"""The default small-sample behaviour: Stein shrinkage of the weight matrix, the
small-sample correction of the intervals, the sparse-covariate warning, and
the fast (k-step) bootstrap checked against the exact replicate and the refit."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.stats

import synthinfer.api as smf
from synthinfer.exceptions import SingularMomentsError, SparseCovariateWarning, SpecificationError
from synthinfer.inference.replicate import KStepBootstrap, ReplicateBootstrap
from synthinfer.inference.small_sample import SmallSampleCorrection
from synthinfer.simulate import make_study


def _model(model="ols", n_units=1000, n_labeled=100, aux="useful", seed=0, **kwds):
    study = make_study(model, n_units=n_units, n_labeled=n_labeled, aux=aux, seed=seed)
    return study, smf.gmm_synth(study.formula, real=study.real, proxy=study.proxy, synth=study.synth, model=model, **kwds)


# -- Stein shrinkage -------------------------------------------------------------
def test_shrunk_estimate_is_the_convex_combination_of_human_only_and_two_step() -> None:
    # OLS: eta does not depend on the shrinkage and theta is linear in it, exactly
    for seed in range(20):
        study, model = _model("ols", n_labeled=60, aux="noise", seed=seed)
        shrunk = model.fit()
        factor = shrunk.weighting.factor
        if 0.05 < factor < 0.95:
            break
    else:
        pytest.fail("no seed with a shrinkage factor strictly inside (0, 1)")
    two_step = model.fit(shrinkage=None)
    human = smf.classical(study.formula, real=study.real).fit()
    np.testing.assert_allclose(shrunk.params, (1 - factor) * human.params + factor * two_step.params, rtol=1e-8)
    assert f"s = {factor:.3f}" in str(shrunk.summary())


def test_factor_zero_gives_the_human_only_fit_and_its_intervals() -> None:
    for seed in range(20):
        study, model = _model("logit", n_labeled=80, aux="noise", seed=seed)
        res = model.fit()
        if res.weighting.factor == 0.0:
            break
    else:
        pytest.fail("no seed whose Stein statistic is below its degrees of freedom")
    human = smf.classical(study.formula, real=study.real, model="logit").fit()
    np.testing.assert_allclose(res.params, human.params, rtol=1e-7)
    # no auxiliary coefficient is counted and Windmeijer's term vanishes for theta
    np.testing.assert_allclose(res.bse, human.bse, rtol=1e-6)
    np.testing.assert_allclose(res.conf_int(), human.conf_int(), rtol=1e-6)
    assert res.df_resid == human.df_resid == 80 - 3


def test_informative_sources_are_not_shrunk_in_large_samples() -> None:
    _, model = _model("logit", n_units=4000, n_labeled=1000)
    res = model.fit()
    assert res.weighting.factor > 0.97
    plain = model.fit(correction=None, shrinkage=None)
    # the correction vanishes: within 2% of the plain two-step width
    ratio = res.bse / plain.bse
    assert (ratio >= 1.0).all() and (ratio < 1.02).all()


def _noise_moments(rng, n_units=1000, n_labeled=100, q=2, shared=True):
    """Per-unit centered moment rows of a target and one uninformative source.
    ``shared``: both are products with the same skewed covariate (t(3) errors),
    uncorrelated but not independent; else independent Gaussian products.
    Returns the rows of all units, S and the labeled positions."""
    x = rng.normal(size=(n_units, q))
    if shared:
        x = np.exp(x) - np.exp(0.5)
        x_aux, e = x, rng.standard_t(3, size=n_units)
    else:
        x_aux, e = rng.normal(size=(n_units, q)), rng.normal(size=n_units)
    e_aux = rng.normal(size=n_units)
    labeled = np.sort(rng.choice(n_units, size=n_labeled, replace=False))
    target = np.zeros((n_units, q))
    target[labeled] = x[labeled] * e[labeled, None]
    aux_labeled = np.zeros((n_units, q))
    aux_labeled[labeled] = x_aux[labeled] * e_aux[labeled, None]
    g = np.hstack([target, aux_labeled, x_aux * e_aux[:, None]])
    h = g - g.mean(axis=0)
    return h, h.T @ h / n_units, labeled


class _Layout:
    def __init__(self, q: int, n_sources: int) -> None:
        self.q, self.n_sources = q, n_sources


def test_stein_null_mean_without_unlabeled_rows_is_exact() -> None:
    # the unlabeled units' share comes from the rank of S_aa, not from their rows
    from synthinfer.weighting import null_mean

    h, s, labeled = _noise_moments(np.random.default_rng(1))
    layout = _Layout(2, 1)
    mean = np.zeros(2) + 0.03  # a target mean away from zero exercises the rest term
    h_shift = h.copy()
    rest = np.setdiff1d(np.arange(len(h)), labeled)
    h_shift[rest, :2] = -mean
    s_shift = h_shift.T @ h_shift / len(h)
    full = null_mean(s_shift, layout, h_shift, 0, mean, 100, len(h))
    split = null_mean(s_shift, layout, h_shift[labeled], len(rest), mean, 100, len(h))
    assert split == pytest.approx(full, rel=1e-10)


def test_stein_null_mean_is_the_mean_of_t_under_zero_correlation() -> None:
    # moments independent of the source's: T's null mean is q q M and so is d;
    # a shared skewed covariate with t(3) errors: T's null mean is far above
    # q q M, and the plug-in d follows it (the Monte Carlo mean of T, 300 draws)
    from synthinfer.weighting import canonical_statistics, null_degrees_of_freedom, null_mean

    layout = _Layout(2, 1)
    for shared in (False, True):
        rng = np.random.default_rng(7)
        statistics, means = [], []
        for _ in range(300):
            h, s, labeled = _noise_moments(rng, shared=shared)
            statistics.append(canonical_statistics(s[None], layout, np.array([100.0]))[0])
            means.append(null_mean(s, layout, h[labeled], len(h) - 100, np.zeros(2), 100, len(h)))
        statistics, means = np.array(statistics), np.array(means)
        mc_se = statistics.std() / np.sqrt(len(statistics))
        nominal = null_degrees_of_freedom(layout)
        if not shared:
            assert abs(statistics.mean() - nominal) < 3 * mc_se + 0.05 * nominal
            assert abs(means.mean() - nominal) < 0.1 * nominal
        else:
            assert statistics.mean() > nominal + 5 * mc_se
            assert abs(means.mean() - statistics.mean()) < 3 * mc_se + 0.1 * statistics.mean()


def test_fit_reports_the_plug_in_null_mean() -> None:
    _, model = _model("ols", n_labeled=100, aux="useful", seed=0)
    res = model.fit()
    w = res.weighting
    assert np.isfinite(w.d) and w.d > 0
    assert 0.0 < w.factor < 1.0  # the rule's multiple (2) matters here
    assert w.factor == pytest.approx(max(0.0, 1.0 - 2.0 * w.d / w.statistic))
    assert f"d = {w.d:.3g}" in w.description


def test_bad_shrinkage_and_correction_names() -> None:
    _, model = _model()
    with pytest.raises(ValueError, match="shrinkage"):
        model.fit(shrinkage="ridge")
    with pytest.raises(ValueError, match="correction"):
        model.fit(correction="hc3")
    # "none" is accepted for both, as None
    res = model.fit(correction="none", shrinkage="none")
    assert res.small_sample is None and not res.use_t


# -- the small-sample correction ------------------------------------------------------
def test_correction_counts_and_t_reference() -> None:
    _, model = _model("ols", n_labeled=100)
    # the factor without the leverage adjustment (the default's is in tests/test_leverage.py)
    res = model.fit(leverage=None)
    s = res.weighting.factor
    correction = res.small_sample
    # p = 3 target parameters; q M = 3 x 2 auxiliary labeled moments, shrunk by s
    assert correction.auxiliary_coefficients == pytest.approx(6 * s)
    assert correction.df == pytest.approx(100 - 3 - 6 * s)
    assert correction.factor == pytest.approx(100 / (100 - 3 - 6 * s))
    windmeijer = model.fit(correction="windmeijer")
    np.testing.assert_allclose(res.params, windmeijer.params, rtol=1e-12)
    np.testing.assert_allclose(res.bse, windmeijer.bse * np.sqrt(correction.factor), rtol=1e-10)
    t = scipy.stats.t.ppf(0.975, correction.df)
    np.testing.assert_allclose(res.conf_int()[1] - res.params, t * res.bse, rtol=1e-10)
    text = str(res.summary())
    assert "small-sample correction" in text and "P>|t|" in text


def test_correction_needs_more_labeled_units_than_coefficients() -> None:
    with pytest.raises(SpecificationError, match="more labeled units than estimated coefficients"):
        SmallSampleCorrection.of(8, None, 3, 6.0)
    clustered = SmallSampleCorrection.of(100, 30, 3, 0.0)
    assert clustered.df == 29
    assert clustered.factor == pytest.approx(30 / 29 * 99 / 97)


def test_sparse_binary_covariate_is_named() -> None:
    study = make_study("ols", n_units=500, n_labeled=60, seed=3)
    rare = pd.Series(0.0, index=study.proxy.index)
    rare[study.real.index[:2]] = 1.0
    rare[study.proxy.index.difference(study.real.index)[:40]] = 1.0
    real, proxy = study.real.assign(d=rare[study.real.index]), study.proxy.assign(d=rare)
    with pytest.warns(SparseCovariateWarning, match="'d' takes its rarer value on only 2 of the 60 labeled units"):
        smf.gmm_proxy("y ~ x1 + d", real=real, proxy=proxy).fit()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SparseCovariateWarning)
        smf.gmm_proxy("y ~ x1 + x2", real=real, proxy=proxy).fit()


def test_column_on_fewer_labeled_units_than_blocks_is_named_when_s_is_singular() -> None:
    # two labeled units carry d = 1: the d moments of the target and of two
    # sources (three blocks) rest on those two units, so S is singular
    study = make_study("logit", n_units=500, n_labeled=60, seed=3)
    rare = pd.Series(0.0, index=study.proxy.index)
    y = study.real["y"]
    rare[[y.index[y == 1][0], y.index[y == 0][0]]] = 1.0  # one of each: no separation
    rare[study.proxy.index.difference(study.real.index)[:40]] = 1.0
    real, proxy = study.real.assign(d=rare[study.real.index]), study.proxy.assign(d=rare)
    synth = study.synth.assign(d=rare[study.synth.index].to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SparseCovariateWarning)
        with pytest.raises(SingularMomentsError, match="design column 'd' is nonzero on only 2 of the 60 labeled units"):
            smf.gmm_synth("y ~ x1 + d", real=real, proxy=proxy, synth=synth, model="logit").fit()


# -- the fast bootstrap --------------------------------------------------------------
@pytest.mark.parametrize("shrinkage", ["stein", None])
@pytest.mark.parametrize("family", ["ols", "logit"])
def test_identity_draw_reproduces_the_fit(family, shrinkage) -> None:
    _, model = _model(family, n_labeled=150)
    res = model.fit(shrinkage=shrinkage)
    plain = model.fit(shrinkage=shrinkage, correction=None)
    theta, se = ReplicateBootstrap(res).replicate(ReplicateBootstrap(res).identity_draw())
    np.testing.assert_allclose(theta, res.params, rtol=1e-4, atol=1e-4 * plain.bse.max())
    np.testing.assert_allclose(se, plain.bse, rtol=1e-3)
    engine = KStepBootstrap(res)
    theta, se, _, failures = engine.run([engine.identity_draw()])
    np.testing.assert_allclose(theta[0], res.params, atol=1e-3 * plain.bse.max())
    np.testing.assert_allclose(se[0], plain.bse, rtol=1e-4)
    assert not failures


@pytest.mark.parametrize("family", ["ols", "logit"])
def test_fast_replicates_are_close_to_the_exact_two_step_on_the_same_draws(family) -> None:
    _, model = _model(family, n_labeled=300, n_units=1500)
    res = model.fit()
    exact = res.bootstrap(60, seed=4, method="replicate")
    fast = res.bootstrap(60, seed=4, method="fast")
    gap = np.abs(fast.draws - exact.draws) / res.bse
    # two Newton steps from the estimate: measured at most 0.03 SE (logit, n = 300)
    assert gap.to_numpy().max() < 0.08


def test_fast_bootstrap_matches_the_refit_bootstrap_within_monte_carlo_error() -> None:
    _, model = _model("ols", n_labeled=200)
    res = model.fit()
    refit = res.bootstrap(300, seed=1, method="refit")
    fast = res.bootstrap(2000, seed=1)
    # endpoints of the percentile interval: MC SE about 0.1 SE with B = 300
    gap = (fast.conf_int(method="percentile") - refit.conf_int()).abs().to_numpy() / res.bse.to_numpy()[:, None]
    assert gap.max() < 0.35
    np.testing.assert_allclose(fast.bse, refit.bse, rtol=0.15)
    assert fast.method == "fast" and fast.n_boot == 2000 and fast.n_failed == 0


def test_bootstrap_t_and_percentile_intervals() -> None:
    _, model = _model("logit", n_labeled=200)
    res = model.fit()
    boot = res.bootstrap(499, seed=3)
    t_ci, p_ci = boot.conf_int(), boot.conf_int(method="percentile")
    assert (t_ci[0] < res.params).all() and (res.params < t_ci[1]).all()
    assert (p_ci[0] < p_ci[1]).all()
    # bootstrap-t from the studentized draws and the plain standard error
    t = boot.studentized.quantile(0.975)
    np.testing.assert_allclose(t_ci[0], res.params - t * boot.studentizing_se, rtol=1e-10)
    table = boot.summary(method="t")
    assert table.attrs["n_boot"] == 499 and list(table.columns) == ["estimate", "bootstrap_se", "conf_low", "conf_high"]
    refit = res.bootstrap(5, seed=3, method="refit")
    with pytest.raises(ValueError, match="fast bootstrap"):
        refit.conf_int(method="t")


@pytest.mark.parametrize("family", ["ols", "logit"])
def test_bootstrap_j_of_the_identity_draw_is_the_fits_j(family) -> None:
    # without the recentering, the replicate's J formula on the original data is
    # Hansen's generalized J of the fit (P gbar = gbar at the estimate)
    _, model = _model(family, n_labeled=150)
    res = model.fit()
    engine = KStepBootstrap(res)
    np.testing.assert_allclose(engine.gbar_hat, model.momcond_mean(res.params_full), rtol=1e-10, atol=1e-15)
    identity = engine.run([engine.identity_draw()])
    assert identity.j[0] == pytest.approx(0.0, abs=1e-8)  # recentered on itself
    engine.gbar_hat = np.zeros_like(engine.gbar_hat)
    np.testing.assert_allclose(engine.run([engine.identity_draw()]).j[0], res.jtest()[0], rtol=1e-3)


def test_bootstrap_j_recenters_and_rejects_an_invalid_design() -> None:
    study, model = _model("ols", n_labeled=200)
    valid = model.fit().bootstrap(399, seed=5)
    jval, p, df = valid.jtest()
    assert (jval, df) == model.fit().jtest()[::2] and 0.01 < p <= 1
    # the recentered J's are near their chi-square(df) mean whatever the fit's J
    assert abs(np.mean(valid.j_draws) - df) < 0.25 * df
    # the proxy shifted on the labeled units only: the restriction fails, J is large,
    # and the bootstrap's J's (recentered) stay near df, so the p-value is tiny
    proxy = study.proxy.copy()
    proxy.loc[study.real.index, "y"] += 1.0
    shifted = smf.gmm_synth(study.formula, real=study.real, proxy=proxy, synth=study.synth).fit()
    boot = shifted.bootstrap(399, seed=5)
    jval, p, df = boot.jtest()
    assert jval > 5 * df and p == pytest.approx(1 / 400)
    assert np.mean(boot.j_draws) < 2 * df
    with pytest.raises(ValueError, match="fast bootstrap"):
        shifted.bootstrap(5, seed=1, method="refit").jtest()


def test_fast_bootstrap_clusters_and_labeling_probabilities() -> None:
    study = make_study("ols", n_units=3000, n_labeled=600, seed=9)
    rng = np.random.default_rng(0)
    cluster = pd.Series(rng.integers(0, 150, size=3000), index=study.proxy.index)
    proxy = study.proxy.assign(cluster=cluster)
    model = smf.gmm_synth(study.formula, real=study.real, proxy=proxy, synth=study.synth)
    res = model.fit(cov_type="cluster", cov_kwds={"groups": "cluster"})
    boot = res.bootstrap(400, seed=2)
    np.testing.assert_allclose(boot.bse, res.bse, rtol=0.2)
    prob = np.clip(rng.uniform(0.1, 0.5, size=600), 0, 1)
    weighted = smf.gmm_synth(study.formula, real=study.real, proxy=study.proxy, synth=study.synth, labeling_prob=prob).fit()
    boot = weighted.bootstrap(400, seed=2)
    np.testing.assert_allclose(boot.bse, weighted.bse, rtol=0.2)


@pytest.mark.parametrize("family", ["probit", "poisson", "mnlogit", "quantile"])
def test_fast_bootstrap_runs_for_other_families(family) -> None:
    from synthinfer.families import Quantile

    rng = np.random.default_rng(1)
    N, n = 2000, 400
    x = rng.normal(size=N)
    index = pd.Index([f"u{i}" for i in range(N)], name="unit")
    if family == "mnlogit":
        y = np.array(["a", "b", "c"])[np.clip(np.round(x + rng.normal(size=N)).astype(int) + 1, 0, 2)]
    elif family == "poisson":
        y = rng.poisson(np.exp(0.3 + 0.5 * x)).astype(float)
    elif family == "probit":
        y = (0.2 + x + rng.normal(size=N) > 0).astype(float)
    else:
        y = 1 + x + rng.standard_t(5, size=N)
    frame = pd.DataFrame({"y": y, "x": x}, index=index)
    proxy = frame.copy()
    flip = rng.random(N) < 0.15
    if family == "mnlogit":
        proxy.loc[flip, "y"] = "a"
    elif family in ("probit",):
        proxy.loc[flip, "y"] = 1 - proxy.loc[flip, "y"]
    else:
        proxy["y"] = proxy["y"] + rng.normal(scale=0.5, size=N) * (family != "poisson")
        if family == "poisson":
            proxy["y"] = rng.poisson(np.exp(0.3 + 0.5 * x)).astype(float)
    real = frame.iloc[:n]
    spec = Quantile(0.5) if family == "quantile" else family
    res = smf.gmm_proxy("y ~ x", real=real, proxy=proxy, model=spec).fit()
    boot = res.bootstrap(300, seed=1)
    assert boot.n_failed == 0 and np.isfinite(boot.draws.to_numpy()).all()
    np.testing.assert_allclose(boot.bse, res.bse, rtol=0.35)


def test_bootstrap_argument_errors() -> None:
    _, model = _model()
    res = model.fit()
    for bad in (1, 0, 2.5):
        with pytest.raises(ValueError, match="at least 2"):
            res.bootstrap(bad)
    with pytest.raises(ValueError, match="method must be"):
        res.bootstrap(10, method="jackknife")


def test_clustered_covariance_with_fewer_clusters_than_moments_warns() -> None:
    from synthinfer.exceptions import FewLabeledWarning

    study = make_study("ols", n_units=600, n_labeled=100, seed=1)
    proxy = study.proxy.assign(c=np.arange(600) % 6)
    model = smf.gmm_synth(study.formula, real=study.real, proxy=proxy, synth=study.synth)
    with pytest.warns(FewLabeledWarning, match="only 6 clusters hold labeled units, for 15 moment conditions"):
        res = model.fit(cov_type="cluster", cov_kwds={"groups": "c"})
    assert res.df_resid == 5  # t(G - 1)
