"""Unit-level bootstrap: resampling checked exactly, then against analytic standard errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import synthinfer.api as smf
from synthinfer.exceptions import BootstrapFailureError
from synthinfer.inference.bootstrap import _cluster_draws, resample_units
from synthinfer.gmm import GMMSynth
from synthinfer.simulate import make_study


@pytest.fixture(scope="module")
def fitted():
    study = make_study("logit", n_units=1500, n_labeled=300, k_synth=3, seed=4)
    # units with 1, 2 or 3 synthetic samples
    synth = study.synth.iloc[np.r_[0:1500, 1500:3000:2, 3000:4500:3]]
    res = smf.gmm_synth(study.formula, real=study.real, proxy=study.proxy, synth=synth, model="logit").fit()
    return study, res


def test_drawing_every_unit_once_or_twice_is_exact(fitted) -> None:
    _, res = fitted
    # no df factor and no shrinkage: both depend on the number of units
    res = res.model.fit(correction=None, shrinkage=None)
    data = res.model.model_data
    once = GMMSynth(resample_units(data, np.random.default_rng(0).permutation(data.n_units)), res.model.family).fit(correction=None, shrinkage=None)
    np.testing.assert_allclose(once.params, res.params, rtol=1e-9)
    np.testing.assert_allclose(once.bse, res.bse, rtol=1e-8)
    # every unit twice: the same estimate, twice the information
    twice = GMMSynth(resample_units(data, np.tile(np.arange(data.n_units), 2)), res.model.family).fit(correction=None, shrinkage=None)
    assert twice.nobs == 2 * data.n_units and twice.n_labeled == 2 * data.n_labeled
    np.testing.assert_allclose(twice.params, res.params, rtol=1e-8)
    np.testing.assert_allclose(twice.bse, res.bse / np.sqrt(2), rtol=1e-6)


def test_bootstrap_is_reproducible_and_parallel_gives_the_same_draws(fitted) -> None:
    _, res = fitted
    a = res.bootstrap(20, seed=7)
    b = res.bootstrap(20, seed=7)
    c = res.bootstrap(20, seed=7, jobs=2)
    np.testing.assert_array_equal(a.draws.to_numpy(), b.draws.to_numpy())
    np.testing.assert_allclose(a.draws.to_numpy(), c.draws.to_numpy(), rtol=1e-12)
    assert not np.allclose(a.draws.to_numpy(), res.bootstrap(20, seed=8).draws.to_numpy())
    assert list(a.draws.columns) == list(res.params.index) and a.n_failed == 0


@pytest.mark.parametrize("model", ["ols", "logit"])
def test_bootstrap_standard_errors_match_the_analytic_ones_in_large_samples(model) -> None:
    study = make_study(model, n_units=3000, n_labeled=600, seed=9)
    res = smf.gmm_synth(study.formula, real=study.real, proxy=study.proxy, synth=study.synth, model=model).fit()
    boot = res.bootstrap(300, seed=1)
    # the bootstrap SD from 300 draws has a relative standard error of about 4%
    np.testing.assert_allclose(boot.bse, res.bse, rtol=0.15)
    percentile, normal = boot.conf_int(0.1, method="percentile"), boot.conf_int(0.1, method="normal")
    assert ((percentile[0] < res.params) & (res.params < percentile[1])).all()
    # the fast bootstrap's default interval is bootstrap-t
    pd.testing.assert_frame_equal(boot.conf_int(0.1), boot.conf_int(0.1, method="t"))
    np.testing.assert_allclose(normal[1] - normal[0], 2 * 1.6448536 * boot.bse, rtol=1e-6)
    with pytest.raises(ValueError, match="percentile"):
        boot.conf_int(method="bca")


def test_failed_refits_are_counted_and_warned() -> None:
    # 15 labeled units of a rare outcome: some resamples are perfectly separated
    study = make_study("logit", n_units=300, n_labeled=15, coefs=(-1.5, 1.0, -0.5), seed=5)
    res = smf.gmm_synth(study.formula, real=study.real, proxy=study.proxy, model="logit").fit()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        boot = res.bootstrap(60, seed=2, method="refit")
    assert boot.n_failed > 0 and len(boot.draws) == 60 - boot.n_failed
    assert any(f"{boot.n_failed} of 60 bootstrap replicates failed" in str(w.message) for w in caught)
    assert f"{boot.n_failed} of 60 failed" in repr(boot)
    # more than 5% failed: an interval from the rest would be biased, so it is refused
    assert boot.n_failed > 3
    with pytest.raises(BootstrapFailureError, match=f"{boot.n_failed} of 60 bootstrap replicates failed"):
        boot.conf_int()


def _clustered_study(seed: int, n_clusters: int = 600, size: int = 5, n_labeled: int = 600):
    """OLS with a cluster-level covariate and cluster random effects in y and the proxy."""
    rng = np.random.default_rng(seed)
    n = n_clusters * size
    cluster = np.repeat(np.arange(n_clusters), size)
    x1 = rng.normal(size=n_clusters)[cluster]
    x2 = rng.normal(size=n)
    y = 0.5 + x1 - 0.5 * x2 + rng.normal(size=n_clusters)[cluster] + rng.normal(size=n)
    proxy = pd.DataFrame(
        {"y": y + 0.5 * rng.normal(size=n_clusters)[cluster] + 0.5 * rng.normal(size=n),
         "x1": x1, "x2": x2, "cluster": cluster},
        index=pd.Index([f"u{i}" for i in range(n)], name="unit"),
    )
    labeled = rng.choice(n, size=n_labeled, replace=False)
    real = proxy.iloc[labeled].assign(y=y[labeled])
    return real, proxy


def test_drawing_every_cluster_once_is_exact() -> None:
    real, proxy = _clustered_study(1, n_clusters=200, n_labeled=200)
    cluster_kwds = {"cov_type": "cluster", "cov_kwds": {"groups": "cluster"}, "weight_type": "cluster"}
    res = smf.gmm_proxy("y ~ x1 + x2", real=real, proxy=proxy).fit(**cluster_kwds)
    covariance = res._results.covariance
    (units, groups), = _cluster_draws(covariance.codes, covariance.n_clusters, 1, np.random.default_rng(0))
    assert len(units) == len(proxy) * np.mean(np.bincount(groups)) / 5  # whole clusters of 5
    # a permutation of the clusters: every cluster once
    order = np.random.default_rng(1).permutation(covariance.n_clusters)
    by_cluster = np.argsort(covariance.codes, kind="stable").reshape(-1, 5)
    units, groups = by_cluster[order].ravel(), np.repeat(np.arange(len(order)), 5)
    refit = GMMSynth(resample_units(res.model.model_data, units), res.model.family).fit(
        cov_type="cluster", cov_kwds={"groups": groups}, weight_type="cluster"
    )
    np.testing.assert_allclose(refit.params, res.params, rtol=1e-9)
    np.testing.assert_allclose(refit.bse, res.bse, rtol=1e-8)


def test_cluster_bootstrap_matches_the_cluster_robust_standard_errors() -> None:
    real, proxy = _clustered_study(2)
    model = smf.gmm_proxy("y ~ x1 + x2", real=real, proxy=proxy)
    clustered = model.fit(cov_type="cluster", cov_kwds={"groups": "cluster"})
    independent = model.fit()
    boot = clustered.bootstrap(300, seed=3)
    assert boot.n_failed == 0
    # 300 draws: the bootstrap SD has a relative standard error of about 4%
    np.testing.assert_allclose(boot.bse, clustered.bse, rtol=0.15)
    # clustering matters for the cluster-level covariate: the unit-level SE is too small
    assert clustered.bse["x1"] > 1.25 * independent.bse["x1"]
    assert boot.bse["x1"] > 1.25 * independent.bse["x1"]
