"""Results depend on the data, not on its order, ids or unused columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import synthinfer.api as smf
from synthinfer.simulate import make_study


def _fit(study, real=None, proxy=None, synth=None, model="logit", **kwds):
    return smf.gmm_synth(
        study.formula,
        real=study.real if real is None else real,
        proxy=study.proxy if proxy is None else proxy,
        synth=study.synth if synth is None else synth,
        model=model,
        **kwds,
    ).fit()


def _assert_same(a, b, rtol=1e-9) -> None:
    np.testing.assert_allclose(a.params, b.params, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(a.bse, b.bse, rtol=rtol)
    np.testing.assert_allclose(a.jtest()[0], b.jtest()[0], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(a.nuisance_params, b.nuisance_params, rtol=rtol, atol=1e-12)


@pytest.fixture(scope="module", params=["ols", "logit", "poisson"])
def case(request):
    study = make_study(request.param, n_units=700, n_labeled=150, seed=31)
    return request.param, study, _fit(study, model=request.param)


def test_shuffled_units(case) -> None:
    model, study, base = case
    rng = np.random.default_rng(0)

    def shuffle(frame):
        return frame.iloc[rng.permutation(len(frame))]

    res = _fit(study, shuffle(study.real), shuffle(study.proxy), shuffle(study.synth), model=model)
    _assert_same(res, base)


def test_reindexed_units(case) -> None:
    model, study, base = case
    mapping = {u: 10_000 + i for i, u in enumerate(np.random.default_rng(1).permutation(study.proxy.index))}

    def rename(frame):
        return frame.set_axis(frame.index.map(mapping))

    res = _fit(study, rename(study.real), rename(study.proxy), rename(study.synth), model=model)
    _assert_same(res, base)


def test_unused_columns_present_or_absent(case) -> None:
    model, study, base = case
    # the proxy frame may carry the human columns, missing for unlabeled units
    human = study.real["y"].rename("y_human")
    proxy = study.proxy.join(human).assign(note="llm", confidence=np.nan)
    real = study.real.assign(coder=["c1"] * len(study.real), x3=np.nan)
    synth = study.synth.assign(prompt="p")
    _assert_same(_fit(study, real, proxy, synth, model=model), base, rtol=1e-12)


def test_k_copies_of_each_synthetic_sample_change_nothing(case) -> None:
    model, study, base = case
    doubled = pd.concat([study.synth, study.synth])
    _assert_same(_fit(study, synth=doubled, model=model), base)


def test_a_proxy_is_a_synthetic_source_with_one_sample_per_unit(case) -> None:
    model, study, _ = case
    as_proxy = smf.gmm_synth(study.formula, real=study.real, proxy=study.proxy, model=model).fit()
    as_synth = smf.gmm_synth(study.formula, real=study.real, synth=study.proxy, model=model).fit()
    _assert_same(as_proxy, as_synth)
    assert as_proxy.estimator == "GMM-Proxy" and as_synth.estimator == "GMM-Synth"


def test_source_order_does_not_change_theta(case) -> None:
    model, study, _ = case
    second = study.proxy.assign(y=study.synth["y"].groupby(level=0).first())
    a = smf.gmm_synth(study.formula, real=study.real, proxy={"a": study.proxy, "b": second}, model=model).fit()
    b = smf.gmm_synth(study.formula, real=study.real, proxy={"b": second, "a": study.proxy}, model=model).fit()
    np.testing.assert_allclose(a.params, b.params, rtol=1e-9)
    np.testing.assert_allclose(a.bse, b.bse, rtol=1e-8)
    pd.testing.assert_frame_equal(a.nuisance_params[["a", "b"]], b.nuisance_params[["a", "b"]], rtol=1e-8)
    assert a.model.nmoms == 3 * (1 + 2 * 2) and a.jtest()[2] == 2 * 3


def test_synthetic_only_units_come_from_the_synthetic_frame() -> None:
    study = make_study("ols", n_units=400, n_labeled=80, seed=4)
    res = smf.gmm_synth(study.formula, real=study.real, synth=study.synth).fit()
    assert res.nobs == 400 and res.n_labeled == 80
    with_proxy_units = smf.gmm_synth(study.formula, real=study.real, synth={"s": study.synth}).fit()
    _assert_same(res, with_proxy_units)
