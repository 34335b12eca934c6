"""The formula spec is learned over all frames as if they were stacked.

patsy learns it one frame at a time (no stacked copy); the reference is patsy
and formulaic on the explicitly concatenated frames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import patsy
import pytest

from synthinfer.exceptions import SpecificationError
from synthinfer.formula import FormulaSpec


def _frames() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)

    def frame(n: int, levels: list[str], offset: float) -> pd.DataFrame:
        return pd.DataFrame({
            "y": rng.normal(size=n),
            "x1": rng.normal(loc=offset, size=n),
            "x2": rng.gamma(2.0, size=n) + offset,
            "g": rng.choice(levels, size=n),
            # Categoricals whose categories differ between frames stack to strings
            "h": pd.Categorical(rng.choice(levels[:2], size=n), categories=levels[:2]),
        })

    return {
        "real": frame(40, ["a", "b"], 0.0),
        "proxy": frame(300, ["a", "b", "c"], 1.0),
        "synth": frame(500, ["b", "d", "a"], -0.5),
    }


FORMULAS = [
    "y ~ x1 + C(g)",
    "y ~ center(x1) + standardize(x2) + g",
    "y ~ bs(x2, df=4) + C(h) + x1:g",
    "np.log(y + 10) ~ scale(x1) + h",
]


@pytest.mark.parametrize("formula", FORMULAS)
def test_patsy_spec_equals_the_spec_of_the_stacked_frames(formula) -> None:
    frames = _frames()
    spec = FormulaSpec(formula, frames, engine="patsy", namespace={"np": np})
    stacked = pd.concat([f[spec.variables] for f in frames.values()], ignore_index=True)
    lhs, rhs = patsy.dmatrices(formula, stacked, eval_env=patsy.EvalEnvironment([{"np": np}]))
    assert spec.param_names == rhs.design_info.column_names
    assert spec.outcome_name == lhs.design_info.column_names[0]
    start = 0
    for name, frame in frames.items():
        y, X = spec.apply(frame, name)
        rows = slice(start, start + len(frame))
        np.testing.assert_allclose(X, np.asarray(rhs)[rows], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(y, np.asarray(lhs)[rows, 0], rtol=1e-12)
        start += len(frame)


@pytest.mark.parametrize("formula", ["y ~ x1 + C(g)", "y ~ x1 + h + g:x2"])
def test_both_engines_learn_the_same_columns(formula) -> None:
    frames = _frames()
    by_patsy = FormulaSpec(formula, frames, engine="patsy")
    by_formulaic = FormulaSpec(formula, frames, engine="formulaic")
    # the engines name columns differently; the designs span the same space
    for name, frame in frames.items():
        _, X_p = by_patsy.apply(frame, name)
        _, X_f = by_formulaic.apply(frame, name)
        assert X_p.shape == X_f.shape
        coef = np.linalg.lstsq(X_f, X_p, rcond=None)[0]
        np.testing.assert_allclose(X_f @ coef, X_p, atol=1e-9)


@pytest.mark.parametrize("formula, plain", [
    ("y ~ x1 + n + f32", True),
    ("y ~ 0 + f32 + x1", True),
    ("n ~ x1 - 1", True),
    ("y ~ x1 + C(g)", False),
    ("y ~ x1:n", False),
    ("y ~ np.log(f32) + x1", False),
    ("y ~ I(x1) + b", False),
])
def test_plain_columns_give_patsys_design_exactly(formula, plain):
    # Dask partitions take bare numeric columns without patsy: the arrays must be patsy's, bit for bit
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({
        "y": rng.normal(size=60), "x1": rng.normal(size=60), "n": rng.integers(-3, 9, size=60),
        "f32": rng.gamma(2.0, size=60).astype(np.float32), "g": rng.choice(["a", "b"], size=60),
        "b": rng.random(60) < 0.5,
    })
    spec = FormulaSpec(formula, {"a": frame}, engine="patsy", namespace={"np": np})
    assert (spec.plain_columns() is not None) is plain
    y_patsy, X_patsy = patsy.dmatrices(formula, frame, eval_env=patsy.EvalEnvironment([{"np": np}]))
    y, X = spec.apply(frame, "a", plain=True)
    assert np.array_equal(X, np.asarray(X_patsy)) and np.array_equal(y, np.asarray(y_patsy)[:, 0])
    assert X.flags.f_contiguous and y.flags.c_contiguous


@pytest.mark.parametrize("bad, message", [(np.nan, "missing values"), (np.inf, r"non-finite values \(inf\)")])
def test_a_bad_value_in_a_numeric_column_is_named_on_the_plain_path(bad, message):
    frame = pd.DataFrame({"y": np.arange(8.0), "x1": np.linspace(0, 1, 8)}, index=np.arange(8) + 100)
    spec = FormulaSpec("y ~ x1", {"a": frame}, engine="patsy")
    broken = frame.copy()
    broken.loc[105, "x1"] = bad
    with pytest.raises(SpecificationError, match=f"column 'x1' has {message} in 1 unit.*105"):
        spec._check_values("b", broken, "y")
    with pytest.raises(SpecificationError, match=r"design column\(s\) \['x1'\] are not finite in 1 unit.*105"):
        spec.apply(broken, "b", plain=True)
