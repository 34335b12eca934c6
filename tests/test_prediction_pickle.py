"""predict / get_prediction on new data after pickle and save/load equal the predictions before (patsy and formulaic)."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

import synthinfer.api as smf
from synthinfer.simulate import make_study

# stateful transforms (their memorised mean, sd, knots), a declared contrast, a module function and I()
FORMULA = "y ~ center(x1) + standardize(I(x1 ** 2)) + bs(x2, df=4) + C(g, Treatment('b')) + np.log(np.abs(x1) + 1)"


def _frames():
    study = make_study("logit", n_units=400, n_labeled=150, seed=11)
    real = study.real.assign(g=np.array(["a", "b", "c"])[np.arange(150) % 3])
    proxy = study.proxy.assign(g=np.array(["a", "b", "c"])[np.arange(400) % 3])
    # new rows outside the training range and with one level only: only the learned state can code them
    new = proxy.drop(columns="y").iloc[:7].assign(g="c", x1=lambda f: f["x1"] * 3)
    return real, proxy, new


@pytest.mark.parametrize("engine", ["patsy", "formulaic"])
def test_predictions_after_pickle_and_load_equal_the_ones_before(engine, tmp_path) -> None:
    real, proxy, new = _frames()
    formula = FORMULA if engine == "patsy" else "y ~ center(x1) + bs(x2, df=4) + C(g) + np.log(np.abs(x1) + 1)"
    res = smf.gmm_proxy(formula, real=real, proxy=proxy, model="logit", engine=engine).fit()
    before = res.predict(new)
    frame_before = res.get_prediction(new).summary_frame()
    res.save(tmp_path / "fit.pickle")
    for loaded in (pickle.loads(pickle.dumps(res)), type(res).load(tmp_path / "fit.pickle")):
        pd.testing.assert_series_equal(loaded.predict(new), before, rtol=0, atol=0)
        pd.testing.assert_series_equal(loaded.predict(new, which="linear"), res.predict(new, which="linear"), rtol=0, atol=0)
        pd.testing.assert_frame_equal(loaded.get_prediction(new).summary_frame(), frame_before, rtol=0, atol=0)
        pd.testing.assert_series_equal(loaded.predict(), res.fittedvalues, rtol=0, atol=0)
    # the prediction is not vacuous: the new rows differ from each other and from the fitted ones
    assert before.nunique() == len(new)


def test_the_pickle_keeps_only_the_names_the_formula_reads() -> None:
    real, proxy, _ = _frames()
    big = np.zeros(2_000_000)  # in the captured namespace, not read by the formula  # noqa: F841
    res = smf.gmm_proxy("y ~ center(x1) + C(g)", real=real, proxy=proxy, model="logit").fit()
    assert len(pickle.dumps(res.model.model_data.spec)) < 100_000


def test_a_formula_reading_an_unpicklable_function_still_pickles_and_says_why_it_cannot_predict() -> None:
    real, proxy, new = _frames()
    double = lambda v: 2 * v  # noqa: E731
    res = smf.gmm_proxy("y ~ double(x1) + x2", real=real, proxy=proxy, model="logit").fit()
    np.testing.assert_allclose(res.predict(new, which="linear"),
                               res.params["Intercept"] + 2 * new["x1"] * res.params["double(x1)"]
                               + new["x2"] * res.params["x2"], rtol=1e-12)
    loaded = pickle.loads(pickle.dumps(res))
    pd.testing.assert_series_equal(loaded.params, res.params)
    pd.testing.assert_series_equal(loaded.fittedvalues, res.fittedvalues)
    with pytest.raises(RuntimeError, match="(?i)lambda"):
        loaded.predict(new)
