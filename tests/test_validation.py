"""Input validation: every bad input raises a named error that says what and where.

Each test breaks one thing in otherwise valid frames and checks (1) the
exception type and (2) with ``match=`` that the message names the problem
together with the offending frame, columns, levels or unit ids. Tests that
involve the formula run with both engines. The last group checks that the
user's frames are never mutated and that unused columns are ignored.
"""

from __future__ import annotations

import copy
import re
import warnings

import numpy as np
import pandas as pd
import pytest

import synthinfer.api as smf
from synthinfer.exceptions import (
    PerfectSeparationError,
    SingularDesignError,
    SpecificationError,
)
from synthinfer.simulate import make_study

ENGINES = ["patsy", "formulaic"]
FORMULA = "y ~ x1 + x2"

pytestmark = pytest.mark.filterwarnings(
    # separated logits drive the Newton Hessian to singularity on purpose
    "ignore::scipy.linalg.LinAlgWarning",
    "ignore:divide by zero:RuntimeWarning",
    "ignore:invalid value:RuntimeWarning",
)


def names(*parts: object) -> str:
    """A regex matching a message that contains every part, in any order."""
    return "(?s)" + "".join(f"(?=.*{re.escape(str(p))})" for p in parts)


def uid(i: int) -> str:
    """The quoted unit id as ``describe_units`` renders it."""
    return f"'unit{i:06d}'"


_STUDIES: dict[str, object] = {}


def study(model: str = "ols"):
    """Small study (60 units, 20 labeled), fresh copies of its frames."""
    if model not in _STUDIES:
        _STUDIES[model] = make_study(model, n_units=60, n_labeled=20, seed=11)
    st = _STUDIES[model]
    return st.real.copy(), st.proxy.copy(), st.synth.copy()


def labeled_ids(real: pd.DataFrame, *positions: int) -> list[str]:
    return [repr(real.index[i]) for i in positions]


def groups(n: int, levels: str = "ab") -> np.ndarray:
    return np.array(list(levels))[np.arange(n) % len(levels)]


# --------------------------------------------------------------------------
# missing and non-finite values
# --------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_nan_in_labeled_outcome_names_column_and_units(engine):
    real, proxy, synth = study()
    real.iloc[[1, 4], real.columns.get_loc("y")] = np.nan
    bad = labeled_ids(real, 1, 4)
    with pytest.raises(SpecificationError, match=names("'real'", "'y'", "missing", *bad)):
        smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_nan_in_labeled_covariate_names_column_and_units(engine):
    real, proxy, synth = study()
    real.iloc[[3], real.columns.get_loc("x1")] = np.nan
    bad = labeled_ids(real, 3)
    with pytest.raises(SpecificationError, match=names("'real'", "'x1'", "missing", *bad)) as info:
        smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, engine=engine)
    # only the offending unit is named
    assert repr(real.index[2]) not in str(info.value)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_inf_in_covariate_names_column_and_units(engine, value):
    real, proxy, synth = study()
    real.iloc[[2, 7], real.columns.get_loc("x2")] = value
    bad = labeled_ids(real, 2, 7)
    with pytest.raises(SpecificationError, match=names("'real'", "'x2'", "inf", *bad)):
        smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_nullable_na_in_covariate_is_reported(engine):
    real, proxy, synth = study()
    real["x1"] = real["x1"].astype("Float64")
    real.iloc[[5], real.columns.get_loc("x1")] = pd.NA
    with pytest.raises(SpecificationError, match=names("'x1'", "missing", *labeled_ids(real, 5))):
        smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_nan_in_proxy_covariate_names_frame_column_and_units(engine):
    real, proxy, synth = study()
    proxy.loc[["unit000007", "unit000042"], "x1"] = np.nan
    with pytest.raises(
        SpecificationError, match=names("'proxy'", "'x1'", "missing", uid(7), uid(42))
    ):
        smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_nan_in_synth_covariate_names_frame_column_and_unit(engine):
    real, proxy, synth = study()
    # the second synthetic sample of unit 9 (index repeats the unit id)
    row = len(proxy) + 9
    assert synth.index[row] == "unit000009"
    synth.iloc[[row], synth.columns.get_loc("x2")] = np.nan
    with pytest.raises(SpecificationError, match=names("'synth'", "'x2'", "missing", uid(9))):
        smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_nan_in_proxy_outcome_is_reported(engine):
    real, proxy, synth = study()
    proxy.loc["unit000031", "y"] = np.nan
    with pytest.raises(SpecificationError, match=names("'proxy'", "'y'", uid(31))):
        smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, engine=engine)


def test_many_bad_units_are_counted():
    real, proxy, synth = study()
    proxy.iloc[:25, proxy.columns.get_loc("x1")] = np.nan
    with pytest.raises(SpecificationError, match=names("'x1'", "25 unit", uid(0), "25 units in all")):
        smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth)


@pytest.mark.parametrize("engine", ENGINES)
def test_non_finite_transformed_covariate_names_design_column_and_unit(engine):
    real, proxy, synth = study()
    for frame in (real, proxy, synth):
        frame["x1"] = frame["x1"].abs() + 0.1
    real.iloc[[6], real.columns.get_loc("x1")] = -1.0
    with np.errstate(invalid="ignore"), pytest.raises(
        SpecificationError, match=names("'real'", "np.log(x1)", "not finite", *labeled_ids(real, 6))
    ):
        smf.gmm_synth("y ~ np.log(x1) + x2", real=real, proxy=proxy, synth=synth, engine=engine)


# --------------------------------------------------------------------------
# units: coverage, duplicates, alignment
# --------------------------------------------------------------------------


def test_real_units_missing_from_proxy_are_named():
    real, proxy, synth = study()
    gone = real.index[[0, 5]]
    with pytest.raises(
        SpecificationError, match=names("proxy", "not in", *[repr(u) for u in gone])
    ):
        smf.gmm_synth(FORMULA, real=real, proxy=proxy.drop(gone), synth=synth.drop(gone))


def test_real_units_missing_from_synth_without_proxy_are_named():
    real, _, synth = study()
    gone = real.index[[3]]
    with pytest.raises(SpecificationError, match=names("synth", "not in", repr(gone[0]))):
        smf.gmm_synth(FORMULA, real=real, synth=synth.drop(gone))


def test_synth_rows_naming_unknown_units_are_named():
    real, proxy, synth = study()
    ghosts = synth.iloc[:3].copy()
    ghosts.index = pd.Index(["ghost1", "ghost2", "ghost1"], name=synth.index.name)
    with pytest.raises(
        SpecificationError, match=names("'synth'", "2 unit id", "'ghost1'", "'ghost2'")
    ):
        smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=pd.concat([synth, ghosts]))


def test_second_synth_frame_with_unknown_units_without_proxy():
    real, _, synth = study()
    other = synth.copy()
    other.index = other.index.where(other.index != "unit000050", "ghost")
    with pytest.raises(SpecificationError, match=names("'s2'", "'ghost'")):
        smf.gmm_synth(FORMULA, real=real, synth={"s1": synth, "s2": other})


def test_proxy_units_without_synthetic_sample_are_named():
    real, proxy, synth = study()
    unlabeled = proxy.index.difference(real.index)[[0, 4]]
    with pytest.raises(
        SpecificationError, match=names("'synth'", "no sample", *[repr(u) for u in unlabeled])
    ):
        smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth.drop(unlabeled))


def test_duplicate_unit_ids_in_real_are_named():
    real, proxy, synth = study()
    dup = pd.concat([real, real.iloc[[2, 2, 9]]])
    with pytest.raises(SpecificationError, match=names("'real'", "unique", *labeled_ids(real, 2, 9))):
        smf.gmm_synth(FORMULA, real=dup, proxy=proxy, synth=synth)


def test_duplicate_unit_ids_in_proxy_are_named():
    real, proxy, synth = study()
    dup = pd.concat([proxy, proxy.loc[["unit000005"]]])
    with pytest.raises(SpecificationError, match=names("'proxy'", "unique", uid(5))) as info:
        smf.gmm_synth(FORMULA, real=real, proxy=dup, synth=synth)
    assert uid(6) not in str(info.value)


def test_two_proxy_frames_with_different_units_are_named():
    real, proxy, synth = study()
    unlabeled = proxy.index.difference(real.index)
    other = proxy.drop(unlabeled[[1]])
    extra = proxy.iloc[[0]].rename(index={proxy.index[0]: "stranger"})
    other = pd.concat([other, extra])
    with pytest.raises(
        SpecificationError,
        match=names("'p1'", "'p2'", "same units", repr(unlabeled[1]), "'stranger'"),
    ):
        smf.gmm_synth(FORMULA, real=real, proxy={"p1": proxy, "p2": other})


def test_empty_real_frame_is_rejected():
    real, proxy, synth = study()
    with pytest.raises(SpecificationError, match="real has no rows"):
        smf.gmm_synth(FORMULA, real=real.iloc[:0], proxy=proxy, synth=synth)


@pytest.mark.parametrize("engine", ENGINES)
def test_fewer_labeled_units_than_parameters_names_the_counts(engine):
    real, proxy, synth = study()
    with pytest.raises(
        SpecificationError, match=names("2 labeled units", "3 parameters", "'x1'", "'x2'")
    ):
        smf.gmm_synth(FORMULA, real=real.iloc[:2], proxy=proxy, synth=synth, engine=engine)


# --------------------------------------------------------------------------
# outcome support
# --------------------------------------------------------------------------


@pytest.mark.parametrize("value", [2.0, 0.5, -1.0])
def test_logit_outcome_not_0_1_in_real(value):
    real, proxy, synth = study("logit")
    real.iloc[[4], real.columns.get_loc("y")] = value
    with pytest.raises(
        SpecificationError,
        match=names("'real'", "logit", "0 or 1", "'y'", str(value), *labeled_ids(real, 4)),
    ):
        smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, model="logit")


@pytest.mark.parametrize("value", [2.0, -0.5])
def test_logit_outcome_outside_the_unit_interval_in_proxy(value):
    real, proxy, synth = study("logit")
    proxy.loc[["unit000013", "unit000044"], "y"] = value
    with pytest.raises(
        SpecificationError, match=names("'proxy'", "probability in [0, 1]", str(value), uid(13), uid(44))
    ):
        smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, model="logit")


def test_logit_auxiliary_outcome_may_be_a_probability():
    """An LLM's probability is a valid auxiliary outcome (the Bernoulli quasi-score)."""
    real, proxy, synth = study("logit")
    proxy.loc[["unit000013", "unit000044"], "y"] = 0.5
    res = smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, model="logit").fit()
    assert res.converged


def test_logit_outcome_outside_the_unit_interval_in_synth():
    real, proxy, synth = study("logit")
    synth.iloc[[len(proxy) + 17], synth.columns.get_loc("y")] = 3.0
    with pytest.raises(SpecificationError, match=names("'synth'", "probability in [0, 1]", uid(17))):
        smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, model="logit")


def test_poisson_negative_count_in_real_and_proxy():
    real, proxy, synth = study("poisson")
    bad_real = real.copy()
    bad_real.iloc[[1, 8], bad_real.columns.get_loc("y")] = -1.0
    with pytest.raises(
        SpecificationError, match=names("'real'", "non-negative", *labeled_ids(real, 1, 8))
    ):
        smf.gmm_synth(FORMULA, real=bad_real, proxy=proxy, synth=synth, model="poisson")
    proxy.loc["unit000022", "y"] = -3.0
    with pytest.raises(SpecificationError, match=names("'proxy'", "non-negative", uid(22))):
        smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, model="poisson")


def test_outcome_checks_are_family_specific():
    """A 0.5 outcome is fine for OLS and Poisson, only logit rejects it."""
    real, proxy, synth = study("poisson")
    real.iloc[[0], real.columns.get_loc("y")] = 0.5
    for model in ("ols", "poisson"):
        smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, model=model)
    with pytest.raises(SpecificationError, match="0 or 1"):
        smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, model="logit")


# --------------------------------------------------------------------------
# categorical levels
# --------------------------------------------------------------------------


def _with_groups(real, proxy, synth, levels="ab"):
    return (
        real.assign(g=groups(len(real), levels)),
        proxy.assign(g=groups(len(proxy), levels)),
        synth.assign(g=groups(len(synth), levels)),
    )


DECLARED = "y ~ x1 + C(g, levels=['a', 'b'])"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("where", ["real", "proxy", "synth"])
def test_level_outside_declared_levels_is_named(engine, where):
    frames = dict(zip(["real", "proxy", "synth"], _with_groups(*study())))
    frames[where].iloc[[5], frames[where].columns.get_loc("g")] = "c"
    with pytest.raises(SpecificationError, match=names("level", "'c'")):
        smf.gmm_synth(DECLARED, **frames, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_level_outside_declared_levels_names_frame_and_units(engine):
    real, proxy, synth = _with_groups(*study())
    proxy.loc["unit000005", "g"] = "c"
    with pytest.raises(SpecificationError, match=names("'c'", "'proxy'", uid(5))):
        smf.gmm_synth(DECLARED, real=real, proxy=proxy, synth=synth, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_level_only_in_auxiliary_frames_is_learned_then_real_design_is_singular(engine):
    """Levels are the union of the frames: a level that no labeled unit has is
    learned (no error at model creation), then the real design has an all-zero
    dummy column, which fit reports as a SingularDesignError naming it."""
    real, proxy, synth = _with_groups(*study())
    unlabeled = proxy.index.difference(real.index)[:3]
    proxy.loc[unlabeled, "g"] = "c"
    synth.loc[synth.index.isin(unlabeled), "g"] = "c"
    model = smf.gmm_synth("y ~ x1 + C(g)", real=real, proxy=proxy, synth=synth, engine=engine)
    assert "C(g)[T.c]" in model.model_data.param_names
    with pytest.raises(SingularDesignError, match=names("'real'", "C(g)[T.c]", "zero")):
        model.fit()


@pytest.mark.parametrize("engine", ENGINES)
def test_level_only_in_labeled_units_makes_proxy_design_singular(engine):
    """The mirror case: a level only the real frame has (the proxy and synth
    frames give the same units other levels) leaves an all-zero dummy column
    in the proxy design."""
    real, proxy, synth = _with_groups(*study())
    real.iloc[[0, 1], real.columns.get_loc("g")] = "c"
    model = smf.gmm_synth("y ~ x1 + C(g)", real=real, proxy=proxy, synth=synth, engine=engine)
    with pytest.raises(SingularDesignError, match=names("'proxy'", "C(g)[T.c]")):
        model.fit()


@pytest.mark.parametrize(
    "engine",
    [
        "patsy",
        "formulaic",
    ],
)
def test_categorical_with_same_levels_in_other_order_fits(engine):
    real, proxy, synth = study()
    real["g"] = pd.Categorical(groups(len(real), "abc"), categories=["c", "b", "a"])
    proxy["g"] = pd.Categorical(groups(len(proxy), "abc"), categories=["a", "b", "c"])
    synth["g"] = pd.Categorical(groups(len(synth), "abc"), categories=["a", "b", "c"])
    res = smf.gmm_synth("y ~ x1 + g", real=real, proxy=proxy, synth=synth, engine=engine).fit()
    assert np.all(np.isfinite(res.params))


# --------------------------------------------------------------------------
# rank and existence of the estimate
# --------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_duplicate_column_is_singular_and_named(engine):
    real, proxy, synth = study()
    for frame in (real, proxy, synth):
        frame["x3"] = 2.0 * frame["x1"]
    model = smf.gmm_synth("y ~ x1 + x3 + x2", real=real, proxy=proxy, synth=synth, engine=engine)
    with pytest.raises(SingularDesignError, match=names("'real'", "rank", "x3")):
        model.fit()


@pytest.mark.parametrize("engine", ENGINES)
def test_constant_column_besides_intercept_is_singular_and_named(engine):
    real, proxy, synth = study()
    for frame in (real, proxy, synth):
        frame["c"] = 5.0
    model = smf.gmm_synth("y ~ x1 + c + x2", real=real, proxy=proxy, synth=synth, engine=engine)
    with pytest.raises(SingularDesignError, match=names("'real'", "'c'")):
        model.fit()


@pytest.mark.parametrize("engine", ENGINES)
def test_covariate_constant_only_on_labeled_units_is_singular(engine):
    real, proxy, synth = study()
    real["x2"] = 1.5
    model = smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, engine=engine)
    with pytest.raises(SingularDesignError, match=names("'real'", "x2")):
        model.fit()


def test_collinear_only_in_proxy_names_the_proxy_frame():
    real, proxy, synth = study()
    for frame in (real, synth):
        frame["x3"] = frame["x1"] ** 2
    proxy["x3"] = 3.0 * proxy["x2"]
    model = smf.gmm_synth("y ~ x1 + x2 + x3", real=real, proxy=proxy, synth=synth)
    with pytest.raises(SingularDesignError, match=names("'proxy'", "rank")) as info:
        model.fit()
    assert "x2" in str(info.value) or "x3" in str(info.value)


@pytest.mark.parametrize("engine", ENGINES)
def test_complete_separation_in_real(engine):
    real, proxy, synth = study("logit")
    real["y"] = (real["x1"] > 0).astype(float)
    model = smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, model="logit", engine=engine)
    with pytest.raises(PerfectSeparationError, match=names("'real'", "separated", "'x1'")):
        model.fit()


@pytest.mark.parametrize("engine", ENGINES)
def test_quasi_complete_separation_in_real(engine):
    real, proxy, synth = study("logit")
    real["y"] = (real["x1"] > 0).astype(float)
    # four units on the boundary x1 = 0 with both outcomes: quasi-complete
    real.iloc[:4, real.columns.get_loc("x1")] = 0.0
    real.iloc[:4, real.columns.get_loc("y")] = [0.0, 1.0, 0.0, 1.0]
    model = smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, model="logit", engine=engine)
    with pytest.raises(PerfectSeparationError, match=names("'real'", "separated", "'x1'")):
        model.fit()


@pytest.mark.parametrize("engine", ENGINES)
def test_quasi_separation_by_a_category(engine):
    real, proxy, synth = _with_groups(*study("logit"), levels="aab")
    real.loc[real["g"] == "b", "y"] = 1.0
    model = smf.gmm_synth(
        "y ~ x1 + C(g)", real=real, proxy=proxy, synth=synth, model="logit", engine=engine
    )
    with pytest.raises(PerfectSeparationError, match=names("'real'", "C(g)[T.b]")):
        model.fit()


def test_complete_separation_in_proxy_names_the_proxy():
    real, proxy, synth = study("logit")
    proxy["y"] = (proxy["x2"] < 0).astype(float)
    model = smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, model="logit")
    with pytest.raises(PerfectSeparationError, match=names("'proxy'", "separated", "'x2'")):
        model.fit()


# --------------------------------------------------------------------------
# frames and columns
# --------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("frame", ["proxy", "synth"])
def test_auxiliary_frame_missing_formula_variable(engine, frame):
    frames = dict(zip(["real", "proxy", "synth"], study()))
    frames[frame] = frames[frame].drop(columns="x2")
    with pytest.raises(SpecificationError, match=names(f"'{frame}'", "missing", "'x2'")):
        smf.gmm_synth(FORMULA, **frames, engine=engine)


def test_named_auxiliary_frame_missing_formula_variable():
    real, proxy, synth = study()
    with pytest.raises(SpecificationError, match=names("'llm_b'", "missing", "'x1'")):
        smf.gmm_synth(
            FORMULA, real=real, proxy={"llm_a": proxy, "llm_b": proxy.drop(columns="x1")}
        )


@pytest.mark.parametrize("engine", ENGINES)
def test_real_frame_missing_formula_variable_names_real(engine):
    real, proxy, synth = study()
    with pytest.raises(SpecificationError, match=names("'real'", "'x2'")):
        smf.gmm_synth(FORMULA, real=real.drop(columns="x2"), proxy=proxy, synth=synth, engine=engine)


@pytest.mark.parametrize(
    "engine",
    [
        "patsy",
        "formulaic",
    ],
)
def test_formula_variable_in_no_frame(engine):
    real, proxy, synth = study()
    with pytest.raises(SpecificationError, match="x9"):
        smf.gmm_synth("y ~ x1 + x9", real=real, proxy=proxy, synth=synth, engine=engine)


@pytest.mark.parametrize("bad", [np.zeros((20, 3)), {"y": [1.0]}, [1, 2, 3], None])
def test_real_must_be_a_dataframe(bad):
    _, proxy, synth = study()
    with pytest.raises(SpecificationError, match="real must be a pandas DataFrame"):
        smf.gmm_synth(FORMULA, real=bad, proxy=proxy, synth=synth)


@pytest.mark.parametrize("role", ["proxy", "synth"])
def test_auxiliary_must_be_a_dataframe_or_dict_of_dataframes(role):
    real, proxy, synth = study()
    frames = {"proxy": proxy, "synth": synth}
    frames[role] = frames[role].to_numpy()
    with pytest.raises(SpecificationError, match=names(role, "DataFrame", "ndarray")):
        smf.gmm_synth(FORMULA, real=real, **frames)
    frames[role] = {"good": proxy, "bad_one": proxy["x1"]}
    with pytest.raises(SpecificationError, match=names("'bad_one'", "DataFrame", "Series")):
        smf.gmm_synth(FORMULA, real=real, **frames)


def test_dask_real_is_named_and_refused():
    # proxy and synth may be Dask frames (tests/test_dask.py); real, the n labeled
    # units, stays pandas: the error must say the frame is a Dask one and what to do
    dd = pytest.importorskip("dask.dataframe")
    real, proxy, synth = study()
    with pytest.raises(SpecificationError, match=names("real", "dask", "proxy and synth only", ".compute()")):
        smf.gmm_synth(FORMULA, real=dd.from_pandas(real, npartitions=2), proxy=proxy, synth=synth)


def test_source_names_must_be_unique_and_not_real():
    real, proxy, synth = study()
    with pytest.raises(SpecificationError, match=names("unique", "'a'")):
        smf.gmm_synth(FORMULA, real=real, proxy={"a": proxy}, synth={"a": synth})
    with pytest.raises(SpecificationError, match=names("not 'real'", "'real'")):
        smf.gmm_synth(FORMULA, real=real, proxy={"real": proxy}, synth=synth)


def test_formula_without_outcome_separator():
    real, proxy, synth = study()
    with pytest.raises(SpecificationError, match=names("formula", "'y x1'")):
        smf.gmm_synth("y x1", real=real, proxy=proxy, synth=synth)


@pytest.mark.parametrize("model", ["tobit", "OLSS", ""])
def test_bad_model_name(model):
    real, proxy, synth = study()
    with pytest.raises(ValueError, match=names("model must be one of", "'logit'", repr(model))):
        smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, model=model)


def test_bad_engine_name():
    real, proxy, synth = study()
    with pytest.raises(ValueError, match=names("engine", "'R'")):
        smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, engine="R")


# --------------------------------------------------------------------------
# fit(): covariance options
# --------------------------------------------------------------------------


@pytest.fixture
def ols_model():
    real, proxy, synth = study()
    proxy["school"] = np.arange(len(proxy)) % 6
    return smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth)


def test_bad_cov_type(ols_model):
    with pytest.raises(ValueError, match=names("cov_type", "'HC3'")):
        ols_model.fit(cov_type="HC3")


def test_non_string_cov_type(ols_model):
    with pytest.raises(ValueError, match="cov_type"):
        ols_model.fit(cov_type=None)


def test_hc0_rejects_cov_kwds(ols_model):
    with pytest.raises(TypeError, match=names("HC0", "groups")):
        ols_model.fit(cov_type="HC0", cov_kwds={"groups": "school"})


@pytest.mark.parametrize("cov_kwds", [None, {}, {"use_correction": True}])
def test_cluster_without_groups(ols_model, cov_kwds):
    with pytest.raises(TypeError, match=names("cluster", "groups")):
        ols_model.fit(cov_type="cluster", cov_kwds=cov_kwds)


def test_cluster_groups_column_missing(ols_model):
    with pytest.raises(SpecificationError, match=names("'classroom'", "not found")):
        ols_model.fit(cov_type="cluster", cov_kwds={"groups": "classroom"})


def test_cluster_groups_column_only_in_real_does_not_cover_units():
    real, proxy, synth = study()
    real["school"] = np.arange(len(real)) % 3
    model = smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth)
    with pytest.raises(SpecificationError, match=names("'school'", "all 60 units")):
        model.fit(cov_type="cluster", cov_kwds={"groups": "school"})


def test_cluster_groups_with_missing_values_name_the_units():
    real, proxy, synth = study()
    proxy["school"] = (np.arange(len(proxy)) % 6).astype(float)
    proxy.loc["unit000004", "school"] = np.nan
    model = smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth)
    with pytest.raises(SpecificationError, match=names("cluster groups", "missing", uid(4))):
        model.fit(cov_type="cluster", cov_kwds={"groups": "school"})


def test_cluster_groups_series_missing_units_and_bad_array(ols_model):
    groups_ = pd.Series(np.arange(60) % 4, index=ols_model.unit_ids).drop(["unit000010"])
    with pytest.raises(SpecificationError, match=names("cluster groups", uid(10))):
        ols_model.fit(cov_type="cluster", cov_kwds={"groups": groups_})
    with pytest.raises(SpecificationError, match=names("cluster groups", "(60)", "length 59")):
        ols_model.fit(cov_type="cluster", cov_kwds={"groups": np.arange(59) % 4})


def test_unknown_cluster_cov_kwds(ols_model):
    with pytest.raises(TypeError, match="'maxlags'"):
        ols_model.fit(cov_type="cluster", cov_kwds={"groups": "school", "maxlags": 2})


# --------------------------------------------------------------------------
# the user's frames are never mutated; unused columns are ignored
# --------------------------------------------------------------------------


def _rich_frames(model: str = "ols"):
    """Frames with categorical and string columns and shuffled (unsorted) indexes."""
    key = f"rich-{model}"
    if key not in _STUDIES:
        _STUDIES[key] = make_study(model, n_units=200, n_labeled=60, seed=5)
    st = _STUDIES[key]
    real, proxy, synth = st.real.copy(), st.proxy.copy(), st.synth.copy()
    cat = pd.CategoricalDtype(["lo", "mid", "hi"])
    for frame in (real, proxy, synth):
        n = len(frame)
        frame["g"] = pd.Categorical(np.array(["lo", "mid", "hi"])[np.arange(n) % 3], dtype=cat)
        frame["s"] = np.array(["u", "v"])[(np.arange(n) // 2) % 2]
    for frame in (real, proxy):
        # 100 clusters of two units, a string label constant within each unit
        frame["school"] = [f"sch{int(u[4:]) // 2}" for u in frame.index]
    return (
        real.sample(frac=1.0, random_state=1),
        proxy.sample(frac=1.0, random_state=2),
        synth.sample(frac=1.0, random_state=3),
    )


RICH = "y ~ x1 + x2 + g + C(s)"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("model", ["ols", "logit"])
def test_frames_not_mutated_by_successful_fit(engine, model):
    real, proxy, synth = _rich_frames(model)
    before = copy.deepcopy((real, proxy, synth))
    mod = smf.gmm_synth(RICH, real=real, proxy=proxy, synth=synth, model=model, engine=engine)
    res = mod.fit()
    res_cl = mod.fit(cov_type="cluster", cov_kwds={"groups": "school"})
    assert np.all(np.isfinite(res.params)) and np.all(np.isfinite(res_cl.bse))
    for after, orig in zip((real, proxy, synth), before):
        pd.testing.assert_frame_equal(after, orig, check_exact=True)
        assert after.index.equals(orig.index)  # row order kept, not re-sorted


@pytest.mark.parametrize("engine", ENGINES)
def test_frames_not_mutated_by_failing_fit(engine):
    real, proxy, synth = _rich_frames()
    real["x3"] = 2.0 * real["x1"]
    proxy["x3"] = 2.0 * proxy["x1"]
    synth["x3"] = 2.0 * synth["x1"]
    before = copy.deepcopy((real, proxy, synth))
    model = smf.gmm_synth(RICH + " + x3", real=real, proxy=proxy, synth=synth, engine=engine)
    with pytest.raises(SingularDesignError):
        model.fit()
    # a failure during model creation, too
    proxy_bad = proxy.copy()
    proxy_bad.loc["unit000003", "x2"] = np.nan
    before_bad = proxy_bad.copy(deep=True)
    with pytest.raises(SpecificationError):
        smf.gmm_synth(RICH, real=real, proxy=proxy_bad, synth=synth, engine=engine)
    pd.testing.assert_frame_equal(proxy_bad, before_bad, check_exact=True)
    for after, orig in zip((real, proxy, synth), before):
        pd.testing.assert_frame_equal(after, orig, check_exact=True)


@pytest.mark.parametrize("engine", ENGINES)
def test_shuffled_rows_give_the_same_fit(engine):
    """Alignment is by unit id, never by position."""
    shuffled = _rich_frames()
    ordered = [frame.sort_index(kind="stable") for frame in shuffled]
    a = smf.gmm_synth(RICH, real=ordered[0], proxy=ordered[1], synth=ordered[2], engine=engine).fit()
    b = smf.gmm_synth(RICH, real=shuffled[0], proxy=shuffled[1], synth=shuffled[2], engine=engine).fit()
    pd.testing.assert_series_equal(a.params, b.params, rtol=1e-9, atol=1e-12)
    pd.testing.assert_series_equal(a.bse, b.bse, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
def test_unused_columns_with_nan_and_inf_are_ignored(engine):
    real, proxy, synth = study()
    plain = smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, engine=engine).fit()
    real2 = real.assign(notes=np.nan, score=np.inf, x10=np.nan, text=None)
    proxy2 = proxy.assign(notes="n/a", x1_raw=np.nan, yy=np.nan)
    synth2 = synth.assign(notes=np.nan, y_llm=-np.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even a warning
        extra = smf.gmm_synth(FORMULA, real=real2, proxy=proxy2, synth=synth2, engine=engine).fit()
    pd.testing.assert_series_equal(plain.params, extra.params, rtol=0, atol=0)
    pd.testing.assert_series_equal(plain.bse, extra.bse, rtol=0, atol=0)


@pytest.mark.parametrize(
    "formula, column",
    [("y ~ x1 + C(g)", "C"), ("y ~ x1 + C(g, levels=['a', 'b'])", "a")],
)
def test_unused_column_named_like_a_formula_token_is_ignored(formula, column):
    real, proxy, synth = _with_groups(*study())
    real[column] = np.nan
    smf.gmm_synth(formula, real=real, proxy=proxy, synth=synth)


@pytest.mark.parametrize("recode", [lambda y: y, lambda y: 1 - y])
def test_a_source_that_repeats_another_is_an_error_naming_both(recode):
    from synthinfer.simulate import make_study as _make

    st = _make("logit", 400, 80, seed=2)
    twin = st.proxy.assign(y=recode(st.proxy["y"]))
    with pytest.raises(SpecificationError, match=r"(?s)singular.*'gpt \(all units\)'.*'twin \(all units\)'"):
        smf.gmm_synth(st.formula, real=st.real, proxy={"gpt": st.proxy, "twin": twin}, model="logit").fit()
