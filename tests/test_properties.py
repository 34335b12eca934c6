"""Property-based checks (hypothesis): what must not change an estimate, on generated studies.

Generated frames vary the unit ids (strings, integers, a CategoricalIndex),
the number of units and labels, k (synthetic samples per unit, varying by
unit), the family, and carry unused columns with missing values (which are
legal). The profile in conftest.py derandomizes the examples, so a CI run is
reproducible; ``HYPOTHESIS_PROFILE=dev`` draws new ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import synthinfer.api as smf  # noqa: E402

FORMULA = "y ~ x1 + x2"

pytestmark = pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")


@dataclass(frozen=True)
class Frames:
    real: pd.DataFrame
    proxy: pd.DataFrame
    synth: pd.DataFrame
    model: str


def _ids(kind: str, n: int, rng: np.random.Generator) -> pd.Index:
    if kind == "int":
        return pd.Index(rng.choice(10 * n, size=n, replace=False), name="unit")
    names = [f"id-{i:04d}" for i in rng.permutation(n)]
    if kind == "categorical":
        return pd.CategoricalIndex(names, name="unit")
    return pd.Index(names, name="unit")


@st.composite
def studies(draw, models=("ols", "logit")) -> Frames:
    """A study in the package's layout: real (labeled), proxy (every unit), synth (k_i rows per unit)."""
    model = draw(st.sampled_from(models))
    n_units = draw(st.integers(80, 160))
    n_labeled = draw(st.integers(45 if model == "ols" else 60, 70))
    kind = draw(st.sampled_from(["str", "int", "categorical"]))
    k_max = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ids = _ids(kind, n_units, rng)
    x1, x2 = rng.normal(size=(2, n_units))
    lin = 0.3 + 0.8 * x1 - 0.5 * x2
    if model == "ols":
        y = lin + rng.normal(size=n_units)
        y_proxy = y + rng.normal(scale=0.7, size=n_units)
    else:
        y = (rng.random(n_units) < 1 / (1 + np.exp(-lin))).astype(float)
        y_proxy = np.where(rng.random(n_units) < 0.2, 1 - y, y)
    unused = {"notes": np.nan, "comment": None}
    full = pd.DataFrame({"y": y, "x1": x1, "x2": x2}, index=ids)
    labeled = np.sort(rng.choice(n_units, size=n_labeled, replace=False))
    real = full.iloc[labeled].assign(**unused)
    proxy = full.assign(y=y_proxy, **unused)
    k = rng.integers(1, k_max + 1, size=n_units)
    rows = np.repeat(np.arange(n_units), k)
    synth_x1 = x1[rows] + rng.normal(scale=0.3, size=len(rows))
    if model == "ols":
        synth_y = 0.5 + 0.7 * synth_x1 - 0.4 * x2[rows] + 0.6 * (y[rows] - lin[rows]) + rng.normal(size=len(rows))
    else:
        synth_y = np.where(rng.random(len(rows)) < 0.25, 1 - y[rows], y[rows])
    synth = pd.DataFrame({"y": synth_y, "x1": synth_x1, "x2": x2[rows]}, index=ids[rows]).assign(**unused)
    return Frames(real, proxy, synth, model)


def fit(frames: Frames, real=None, proxy=None, synth=None, formula: str = FORMULA, **kwds):
    return smf.gmm_synth(
        formula,
        real=frames.real if real is None else real,
        proxy=frames.proxy if proxy is None else proxy,
        synth=frames.synth if synth is None else synth,
        model=frames.model,
        **kwds,
    ).fit()


def assert_same_fit(a, b, rtol: float = 1e-7) -> None:
    """Estimates equal to well within the solver's tolerance (1e-8 standard errors)."""
    scale = np.asarray(a.bse)
    np.testing.assert_allclose(np.asarray(a.params), np.asarray(b.params), rtol=rtol, atol=1e-6 * scale.max())
    np.testing.assert_allclose(np.asarray(a.bse), np.asarray(b.bse), rtol=1e-6)


@given(studies(), st.randoms(use_true_random=False))
def test_shuffled_rows_do_not_change_the_fit(frames: Frames, random) -> None:
    def shuffled(frame: pd.DataFrame) -> pd.DataFrame:
        order = list(range(len(frame)))
        random.shuffle(order)
        return frame.iloc[order]

    assert_same_fit(fit(frames), fit(frames, shuffled(frames.real), shuffled(frames.proxy), shuffled(frames.synth)))


@given(studies(), st.sampled_from(["str", "int", "categorical"]))
def test_relabeled_unit_ids_do_not_change_the_fit(frames: Frames, kind: str) -> None:
    old = pd.Index(frames.proxy.index)
    new = _ids(kind, len(old), np.random.default_rng(1))
    mapping = dict(zip(old, new))

    def relabeled(frame: pd.DataFrame) -> pd.DataFrame:
        index = pd.Index([mapping[u] for u in frame.index], name="unit")
        if kind == "categorical":
            index = pd.CategoricalIndex(index, name="unit")
        return frame.set_axis(index)

    assert_same_fit(fit(frames), fit(frames, relabeled(frames.real), relabeled(frames.proxy), relabeled(frames.synth)))


@given(studies(), st.floats(1e-3, 1e3), st.floats(-5, 5))
def test_covariate_scaling_and_shift_rescale_only_their_coefficient(frames: Frames, scale: float, shift: float) -> None:
    base = fit(frames)
    moved = {name: getattr(frames, name).assign(x1=lambda f: f["x1"] * scale + shift)
             for name in ("real", "proxy", "synth")}
    res = fit(frames, **moved)
    np.testing.assert_allclose(res.params["x1"] * scale, base.params["x1"], rtol=1e-6)
    np.testing.assert_allclose(res.bse["x1"] * scale, base.bse["x1"], rtol=1e-6)
    np.testing.assert_allclose(res.params["x2"], base.params["x2"], rtol=1e-6, atol=1e-7 * base.bse["x2"])
    np.testing.assert_allclose(res.bse["x2"], base.bse["x2"], rtol=1e-6)


@given(studies(models=("ols",)), st.floats(-100, 100))
def test_an_outcome_shift_in_ols_moves_the_intercept_only(frames: Frames, shift: float) -> None:
    base = fit(frames)
    res = fit(frames, real=frames.real.assign(y=frames.real["y"] + shift))
    np.testing.assert_allclose(res.params["Intercept"], base.params["Intercept"] + shift, rtol=1e-9, atol=1e-6 * base.bse.max())
    np.testing.assert_allclose(res.params[["x1", "x2"]], base.params[["x1", "x2"]], rtol=1e-7, atol=1e-6 * base.bse.max())
    np.testing.assert_allclose(res.bse, base.bse, rtol=1e-7)


@given(studies())
def test_the_order_of_sources_in_a_dict_does_not_matter(frames: Frames) -> None:
    second = frames.proxy.assign(y=frames.proxy["y"].sample(frac=1.0, random_state=3).to_numpy())
    one = fit(frames, proxy={"a": frames.proxy, "b": second}, synth={"s": frames.synth})
    other = fit(frames, proxy={"b": second, "a": frames.proxy}, synth={"s": frames.synth})
    assert_same_fit(one, other)


@given(studies())
def test_both_formula_engines_give_the_same_fit(frames: Frames) -> None:
    groups = {name: getattr(frames, name).assign(g=lambda f: np.where(f["x2"] > 0, "hi", "lo"))
              for name in ("real", "proxy", "synth")}
    patsy = fit(frames, formula="y ~ x1 + C(g)", engine="patsy", **groups)
    formulaic = fit(frames, formula="y ~ x1 + C(g)", engine="formulaic", **groups)
    names = list(patsy.params.index)
    assert sorted(names) == sorted(formulaic.params.index)
    np.testing.assert_allclose(formulaic.params[names], patsy.params, rtol=1e-7, atol=1e-6 * patsy.bse.max())
    np.testing.assert_allclose(formulaic.bse[names], patsy.bse, rtol=1e-6)


@given(studies(), st.integers(2, 3))
def test_repeating_every_synthetic_row_does_not_change_the_fit(frames: Frames, times: int) -> None:
    repeated = pd.concat([frames.synth] * times)
    assert_same_fit(fit(frames), fit(frames, synth=repeated))


@given(studies())
def test_no_auxiliary_source_is_statsmodels_hc0(frames: Frames) -> None:
    import statsmodels.api as sm

    res = smf.classical(FORMULA, real=frames.real, model=frames.model).fit(correction=None)
    X = sm.add_constant(frames.real[["x1", "x2"]].to_numpy())
    y = frames.real["y"].to_numpy()
    if frames.model == "ols":
        ref = sm.OLS(y, X).fit(cov_type="HC0")
    else:
        ref = sm.Logit(y, X).fit(disp=0, cov_type="HC0", method="newton", tol=1e-12)
    np.testing.assert_allclose(np.asarray(res.params), ref.params, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(np.asarray(res.bse), ref.bse, rtol=1e-6)
