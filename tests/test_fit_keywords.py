"""statsmodels fit() keywords carried over: accepted (ignored or honoured) on every estimator, never a TypeError for disp=0."""

from __future__ import annotations

import numpy as np
import pytest

import synthinfer.api as smf
from synthinfer.simulate import make_study

ESTIMATORS = ("gmm_synth", "gmm_proxy", "classical", "naive", "ppi")


def _model(name: str, study):
    if name == "classical":
        return smf.classical(study.formula, real=study.real, model="logit")
    if name == "gmm_proxy":
        return smf.gmm_proxy(study.formula, real=study.real, proxy=study.proxy, model="logit")
    return getattr(smf, name)(study.formula, real=study.real, proxy=study.proxy, model="logit")


@pytest.fixture(scope="module")
def study():
    return make_study("logit", n_units=600, n_labeled=150, seed=3)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_statsmodels_output_keywords_are_accepted_and_change_nothing(name, study, capsys) -> None:
    plain = _model(name, study).fit()
    carried = _model(name, study).fit(disp=0, full_output=True, callback=None, retall=False, method="newton")
    assert capsys.readouterr().out == ""  # nothing is printed, disp or not
    np.testing.assert_array_equal(carried.params, plain.params)
    np.testing.assert_array_equal(carried.bse, plain.bse)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_unavailable_optimiser_and_unknown_keyword_are_errors(name, study) -> None:
    with pytest.raises(ValueError, match="method='bfgs'"):
        _model(name, study).fit(method="bfgs")
    with pytest.raises(TypeError, match="not_a_keyword"):
        _model(name, study).fit(not_a_keyword=1)
