"""cov_type="HC1", HC2/HC3 (the human-only least-squares fit) and their refusals, and the
cluster default, against statsmodels."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import synthinfer.api as smf
from synthinfer.exceptions import SpecificationError
from synthinfer.simulate import make_study


def _frames(seed: int = 5):
    study = make_study("ols", n_units=1500, n_labeled=300, seed=seed)
    real = study.real.copy()
    real["cluster"] = np.random.default_rng(seed).integers(0, 30, size=len(real))
    return real, study


def _ols(real: pd.DataFrame, **fit_kwds):
    X = sm.add_constant(real[["x1", "x2"]]).rename(columns={"const": "Intercept"})
    return sm.OLS(real["y"], X).fit(**fit_kwds)


def test_hc1_human_only_equals_statsmodels_hc1() -> None:
    real, _ = _frames()
    res = smf.gmm_synth("y ~ x1 + x2", real=real, model="ols").fit(cov_type="HC1", correction=None)
    ref = _ols(real, cov_type="HC1")
    np.testing.assert_allclose(res.params[ref.params.index], ref.params, rtol=1e-6)
    np.testing.assert_allclose(res.bse[ref.params.index], ref.bse, rtol=1e-6)
    assert res.cov_type == "HC1"
    # and the factor really is applied: HC0 differs by sqrt(n / (n - k))
    hc0 = _ols(real, cov_type="HC0")
    assert not np.allclose(res.bse[ref.params.index], hc0.bse, rtol=1e-4)


def test_hc1_with_auxiliary_source_is_hc0_times_n_over_n_minus_p() -> None:
    real, study = _frames()
    model = smf.gmm_synth("y ~ x1 + x2", real=real, proxy=study.proxy, synth=study.synth, model="ols")
    hc0 = model.fit(cov_type="HC0", correction=None, shrinkage=None)
    hc1 = model.fit(cov_type="HC1", correction=None, shrinkage=None)
    n, p = len(real), 3
    np.testing.assert_allclose(hc1.params, hc0.params, rtol=1e-10)
    np.testing.assert_allclose(hc1.cov_params(), hc0.cov_params() * n / (n - p), rtol=1e-8)


def _max_rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.abs(b)))


# correction=None is statsmodels' default (normal reference); the default
# correction keeps HC2/HC3 as they are (the leverage is their small-sample
# adjustment) with a t(n - p) reference, statsmodels' use_t=True; so does use_t=True
@pytest.mark.parametrize("cov_type", ["HC2", "HC3"])
@pytest.mark.parametrize(
    ("fit_kwds", "use_t"),
    [({"correction": None}, False), ({}, True), ({"correction": None, "use_t": True}, True)],
    ids=["plain-normal", "default-t", "plain-use_t"],
)
def test_leverage_types_human_only_equal_statsmodels(cov_type: str, fit_kwds: dict, use_t: bool) -> None:
    real, _ = _frames()
    res = smf.classical("y ~ x1 + x2", real=real).fit(cov_type=cov_type, **fit_kwds)
    ref = _ols(real, cov_type=cov_type, use_t=use_t)
    names = ref.params.index
    assert _max_rel(res.params[names], ref.params) < 1e-6
    assert _max_rel(res.bse[names], ref.bse) < 1e-6
    assert _max_rel(res.conf_int().loc[names], ref.conf_int()) < 1e-6
    assert _max_rel(res.pvalues[names], ref.pvalues) < 1e-6
    assert res.use_t is use_t and res.cov_type == cov_type
    summary = str(res.summary())
    assert re.search(rf"Covariance Type:\s+{cov_type}\b", summary)
    assert f"leverage-adjusted ({cov_type})" in summary
    # the leverage adjustment is really there: HC1 (the default with HC0) differs
    hc1 = _ols(real, cov_type="HC1")
    assert not np.allclose(res.bse[names], hc1.bse, rtol=1e-4)
    # gmm_synth with no source is the same fit
    same = smf.gmm_synth("y ~ x1 + x2", real=real, model="ols").fit(cov_type=cov_type, **fit_kwds)
    np.testing.assert_allclose(same.bse, res.bse, rtol=1e-12)


@pytest.mark.parametrize("cov_type", ["HC2", "HC3"])
def test_leverage_types_with_weights_and_labeling_prob_equal_wls(cov_type: str) -> None:
    # the leverage is the WLS hat matrix's, with the fit's weights w / pi
    real, _ = _frames()
    rng = np.random.default_rng(11)
    real = real.assign(w=rng.uniform(0.5, 3.0, len(real)), pi=rng.uniform(0.2, 0.9, len(real)))
    X = sm.add_constant(real[["x1", "x2"]]).rename(columns={"const": "Intercept"})
    cases = [({"weights": "w"}, real["w"]), ({"weights": "w", "labeling_prob": "pi"}, real["w"] / real["pi"])]
    for kwds, weights in cases:
        res = smf.classical("y ~ x1 + x2", real=real, **kwds).fit(cov_type=cov_type, correction=None)
        ref = sm.WLS(real["y"], X, weights=weights).fit(cov_type=cov_type)
        assert _max_rel(res.params[ref.params.index], ref.params) < 1e-6
        assert _max_rel(res.bse[ref.params.index], ref.bse) < 1e-6


@pytest.mark.parametrize("cov_type", ["HC2", "HC3"])
def test_leverage_types_are_refused_with_auxiliary_sources(cov_type: str) -> None:
    real, study = _frames()
    model = smf.gmm_synth("y ~ x1 + x2", real=real, proxy=study.proxy, model="ols")
    for option in ("cov_type", "weight_type"):
        with pytest.raises(SpecificationError, match="not available with auxiliary sources") as error:
            model.fit(**{option: cov_type})
        message = str(error.value)
        assert "hat matrix" in message and "'HC1'" in message and "'proxy'" in message


def test_leverage_types_are_refused_for_other_families_and_leverage_one() -> None:
    study = make_study("logit", n_units=600, n_labeled=200, seed=3)
    with pytest.raises(SpecificationError, match="least squares only.*model='logit'"):
        smf.classical("y ~ x1 + x2", real=study.real, model="logit").fit(cov_type="HC3")
    # a unit alone in its level is fitted exactly: h = 1, zero over zero
    real, _ = _frames()
    real = real.assign(g=(np.arange(len(real)) == 4).astype(float))
    with pytest.raises(SpecificationError, match=f"leverage 1.*'{real.index[4]}'|'{real.index[4]}'.*leverage 1"):
        smf.classical("y ~ x1 + x2 + g", real=real).fit(cov_type="HC2")


def test_leverage_types_bootstrap_resamples_units() -> None:
    # units are what HC2/HC3 treat as independent; the refits' estimates do not
    # depend on the covariance, so the draws are HC0's
    real, _ = _frames()
    model = smf.classical("y ~ x1 + x2", real=real)
    hc3, hc0 = model.fit(cov_type="HC3"), model.fit()
    for method in ("fast", "refit"):
        boot3 = hc3.bootstrap(n_boot=5, seed=2, method=method)
        boot0 = hc0.bootstrap(n_boot=5, seed=2, method=method)
        assert boot3.n_failed == 0
        np.testing.assert_allclose(np.asarray(boot3.bse), np.asarray(boot0.bse), rtol=1e-10)


def test_cluster_default_equals_statsmodels_default_cluster() -> None:
    real, _ = _frames()
    res = smf.gmm_synth("y ~ x1 + x2", real=real, model="ols").fit(
        cov_type="cluster", cov_kwds={"groups": "cluster"}, correction=None
    )
    ref = _ols(real, cov_type="cluster", cov_kwds={"groups": real["cluster"]})
    np.testing.assert_allclose(res.bse[ref.params.index], ref.bse, rtol=1e-6)
    # and so does the plain default fit (its small-sample factor is the cluster one)
    default = smf.gmm_synth("y ~ x1 + x2", real=real, model="ols").fit(
        cov_type="cluster", cov_kwds={"groups": "cluster"}
    )
    np.testing.assert_allclose(default.bse[ref.params.index], ref.bse, rtol=1e-6)
    off = smf.gmm_synth("y ~ x1 + x2", real=real, model="ols").fit(
        cov_type="cluster", cov_kwds={"groups": "cluster", "use_correction": False}, correction=None
    )
    ref_off = _ols(real, cov_type="cluster", cov_kwds={"groups": real["cluster"], "use_correction": False})
    np.testing.assert_allclose(off.bse[ref.params.index], ref_off.bse, rtol=1e-6)
    assert not np.allclose(off.bse, res.bse, rtol=1e-4)


def _two_way(real: pd.DataFrame, seed: int = 7) -> pd.DataFrame:
    real = real.copy()
    rng = np.random.default_rng(seed)
    real["firm"] = rng.integers(0, 25, size=len(real))
    real["year"] = rng.integers(0, 12, size=len(real))
    return real


@pytest.mark.parametrize("use_correction", [True, False])
def test_two_way_cluster_equals_statsmodels_two_way(use_correction: bool) -> None:
    real = _two_way(_frames()[0])
    res = smf.gmm_synth("y ~ x1 + x2", real=real, model="ols").fit(
        cov_type="cluster", cov_kwds={"groups": ["firm", "year"], "use_correction": use_correction},
        correction=None,
    )
    ref = _ols(
        real, cov_type="cluster",
        cov_kwds={"groups": real[["firm", "year"]].to_numpy(), "use_correction": use_correction},
    )
    names = ref.params.index
    np.testing.assert_allclose(res.params[names], ref.params, rtol=1e-6)
    np.testing.assert_allclose(res.cov_params().loc[names, names], ref.cov_params(), rtol=1e-6)
    assert res.covariance.clipped == 0
    # it is not either one-way answer
    one_way = _ols(real, cov_type="cluster", cov_kwds={"groups": real["firm"], "use_correction": use_correction})
    assert not np.allclose(ref.bse, one_way.bse, rtol=1e-3)


def test_two_way_with_one_unit_clusters_is_hc0() -> None:
    real, study = _frames()
    ids = pd.Series(np.arange(len(study.proxy)), index=study.proxy.index)
    kwds = dict(real=real, proxy=study.proxy, synth=study.synth, model="ols")
    hc0 = smf.gmm_synth("y ~ x1 + x2", **kwds).fit(correction=None, shrinkage=None)
    cluster_kwds = {"groups": pd.concat([ids, ids * 1], axis=1), "use_correction": False}
    two = smf.gmm_synth("y ~ x1 + x2", **kwds).fit(
        cov_type="cluster", cov_kwds=cluster_kwds, weight_type="cluster", weight_kwds=cluster_kwds,
        correction=None, shrinkage=None,
    )
    # S_1 + S_2 - S_12 = S + S - S with every cluster one unit
    np.testing.assert_allclose(two.params, hc0.params, rtol=1e-8)
    np.testing.assert_allclose(two.cov_params(), hc0.cov_params(), rtol=1e-8)


def test_two_way_refuses_windmeijer_and_bootstrap() -> None:
    from synthinfer.inference.windmeijer import _ds_times_v

    real = _two_way(_frames()[0])
    model = smf.gmm_synth("y ~ x1 + x2", real=real, model="ols")
    two_way = {"groups": ["firm", "year"]}
    res = model.fit(correction=None, cov_type="cluster", cov_kwds=two_way)
    assert res.covariance.supports_windmeijer is False
    with pytest.raises(SpecificationError, match="derivative of S"):
        _ds_times_v(model, np.asarray(res.params), np.ones(3), res.covariance)
    with pytest.raises(SpecificationError, match="bootstrap does not know"):
        res.bootstrap(n_boot=5, seed=1)


def test_hc1_windmeijer_and_bootstrap_follow_hc0() -> None:
    real, study = _frames()
    model = smf.gmm_synth("y ~ x1 + x2", real=real, proxy=study.proxy, synth=study.synth, model="ols")
    hc0 = model.fit(correction="windmeijer", shrinkage=None)
    hc1 = model.fit(cov_type="HC1", correction="windmeijer", shrinkage=None)
    n, p = len(real), 3
    np.testing.assert_allclose(hc1.cov_params(), hc0.cov_params() * n / (n - p), rtol=1e-8)
    # the bootstrap resamples units and refits under HC1 (its point estimates are HC0's)
    boot = hc1.bootstrap(n_boot=20, seed=4)
    boot0 = hc0.bootstrap(n_boot=20, seed=4)
    np.testing.assert_allclose(np.asarray(boot.bse), np.asarray(boot0.bse), rtol=1e-8)
