"""get_prediction, get_margeff, summary2, df_model / use_t, predict's transform and
pickled t_test_pairwise, against statsmodels on human-only fits and closed forms with a source."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import statsmodels.api as sm
import statsmodels.formula.api as smf_sm

import synthinfer.api as smf
from synthinfer.exceptions import SpecificationError
from synthinfer.simulate import make_study

STATSMODELS = {"ols": sm.OLS, "logit": sm.Logit, "probit": sm.Probit, "poisson": sm.Poisson}
DATA = {"ols": "ols", "logit": "logit", "probit": "logit", "poisson": "poisson"}


def _pair(model: str, seed: int = 2, **fit):
    """A human-only fit with HC0 and normal inference, and statsmodels' on the same rows."""
    study = make_study(DATA[model], n_units=300, n_labeled=150, seed=seed)
    res = smf.classical(study.formula, real=study.real, model=model).fit(correction=None, **fit)
    X = sm.add_constant(study.real[["x1", "x2"]]).rename(columns={"const": "Intercept"})
    ref = STATSMODELS[model](study.real["y"], X).fit(cov_type="HC0", **({} if model == "ols" else {"disp": 0}))
    return study, res, ref


def _statsmodels_prediction(ref, X, which="mean"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' "using default log-link" notice for Poisson
        if which == "linear":
            return ref.get_prediction(X, which="linear")
        return ref.get_prediction(X)


@pytest.mark.parametrize("model", sorted(STATSMODELS))
def test_get_prediction_equals_statsmodels_on_a_human_only_fit(model) -> None:
    study, res, ref = _pair(model)
    new = study.proxy.drop(columns="y").iloc[:20]
    X = sm.add_constant(new[["x1", "x2"]])
    ours = res.get_prediction(new)
    theirs = _statsmodels_prediction(ref, X)
    frame = ours.summary_frame(alpha=0.1)
    obs = ["obs_ci_lower", "obs_ci_upper"] if model == "ols" else []  # as statsmodels: OLS only
    assert list(frame.columns) == ["mean", "mean_se", "mean_ci_lower", "mean_ci_upper", *obs]
    assert frame.index.equals(new.index)
    expected = theirs.summary_frame(alpha=0.1).to_numpy()
    np.testing.assert_allclose(frame.to_numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(ours.conf_int(alpha=0.1), theirs.conf_int(alpha=0.1), rtol=1e-6)
    if model != "ols":
        # statsmodels' default interval for the mean is the linear index's, mapped
        # through the mean function; "delta" is the symmetric mean +- q se
        np.testing.assert_allclose(ours.conf_int(method="delta"), theirs.conf_int(method="delta"), rtol=1e-6)
        assert not np.allclose(ours.conf_int(), ours.conf_int(method="delta"))
        linear = res.get_prediction(new, which="linear").summary_frame()
        np.testing.assert_allclose(linear.to_numpy(), _statsmodels_prediction(ref, X, "linear").summary_frame().to_numpy(), rtol=1e-6)
    # no exog: the labeled units, whose predictions are fittedvalues
    labeled = res.get_prediction().summary_frame()
    pd.testing.assert_series_equal(labeled["mean"], res.fittedvalues, check_names=False)
    np.testing.assert_allclose(labeled["mean_se"], _statsmodels_prediction(ref, ref.model.exog).se, rtol=1e-6)
    if model == "ols":
        np.testing.assert_allclose(labeled[obs], ref.get_prediction().summary_frame()[obs], rtol=1e-6)
    relabeled = res.get_prediction(new, row_labels=list("abcdefghijklmnopqrst")).summary_frame()
    assert list(relabeled.index) == list("abcdefghijklmnopqrst")


@pytest.mark.parametrize("leverage, cov_type", [("HC3", "HC3"), (None, "HC1")])
def test_get_prediction_with_t_inference_equals_statsmodels_hc1_ols(leverage, cov_type) -> None:
    study = make_study("ols", n_units=300, n_labeled=60, seed=4)
    # default: HC3 and t(n - p); without the leverage adjustment HC1 and t(n - p)
    res = smf.classical(study.formula, real=study.real).fit(leverage=leverage)
    X = sm.add_constant(study.real[["x1", "x2"]])
    ref = sm.OLS(study.real["y"], X).fit(cov_type=cov_type, use_t=True)
    new = study.proxy.drop(columns="y").iloc[:10]
    ours = res.get_prediction(new).summary_frame()
    theirs = ref.get_prediction(sm.add_constant(new[["x1", "x2"]])).summary_frame()
    assert list(ours.columns) == list(theirs.columns)  # with obs_ci_lower / obs_ci_upper
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=1e-6)


def test_obs_intervals_of_weighted_and_gmm_ols_fits() -> None:
    """Weighted human-only OLS: statsmodels' WLS obs intervals; with a source: the
    labeled residual variance at the GMM coefficients added to the GMM se^2."""
    study = make_study("ols", n_units=300, n_labeled=120, seed=7)
    w = np.linspace(0.5, 2.0, 120)
    real = study.real.assign(w=w)
    res = smf.classical(study.formula, real=real, weights="w").fit(correction=None)
    X = sm.add_constant(real[["x1", "x2"]])
    ref = sm.WLS(real["y"], X, weights=w).fit(cov_type="HC0")
    new = study.proxy.drop(columns="y").iloc[:8]
    np.testing.assert_allclose(res.get_prediction(new).summary_frame().to_numpy(),
                               ref.get_prediction(sm.add_constant(new[["x1", "x2"]])).summary_frame().to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(res.get_prediction().summary_frame().to_numpy(),
                               ref.get_prediction().summary_frame().to_numpy(), rtol=1e-6)
    gmm = smf.gmm_proxy(study.formula, real=study.real, proxy=study.proxy).fit()
    pred = gmm.get_prediction(new)
    r = study.real["y"] - gmm.predict(study.real)
    s2 = float(r @ r) / (120 - 3)
    q = scipy.stats.t.ppf(0.95, gmm.df_resid) if gmm.use_t else scipy.stats.norm.ppf(0.95)
    half = q * np.sqrt(pred.se**2 + s2)
    frame = pred.summary_frame(alpha=0.1)
    np.testing.assert_allclose(frame[["obs_ci_lower", "obs_ci_upper"]], np.column_stack([pred.predicted - half, pred.predicted + half]), rtol=1e-12)
    assert (frame["obs_ci_upper"] - frame["obs_ci_lower"] > frame["mean_ci_upper"] - frame["mean_ci_lower"]).all()
    with pytest.raises(ValueError, match="OLS only"):
        _pair("logit")[1].get_prediction(new).conf_int(obs=True)


def test_prediction_with_a_source_is_a_linear_combination_of_the_target_coefficients() -> None:
    study = make_study("logit", n_units=600, n_labeled=150, seed=6)
    res = smf.gmm_proxy(study.formula, real=study.real, proxy=study.proxy, model="logit").fit()
    new = study.proxy.drop(columns="y").iloc[:4]
    ours = res.get_prediction(new, which="linear")
    for i, (_, row) in enumerate(new.iterrows()):
        contrast = np.array([[1.0, row["x1"], row["x2"]]])
        test = res.t_test(contrast)  # statsmodels' machinery on the GMM covariance
        np.testing.assert_allclose(ours.predicted[i], np.asarray(test.effect).item(), rtol=1e-12)
        np.testing.assert_allclose(ours.se[i], np.asarray(test.sd).item(), rtol=1e-12)
    # t inference (the small-sample correction): the interval uses t(df_resid)
    q = scipy.stats.t.ppf(0.975, res.df_resid)
    np.testing.assert_allclose(ours.conf_int(), np.column_stack([ours.predicted - q * ours.se, ours.predicted + q * ours.se]))
    mean = res.get_prediction(new)
    np.testing.assert_allclose(mean.predicted, res.predict(new), rtol=1e-12)
    np.testing.assert_allclose(mean.conf_int(), 1 / (1 + np.exp(-ours.conf_int())), rtol=1e-12)


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")  # statsmodels' 0/0 at="zero"
@pytest.mark.parametrize("model", ["logit", "probit", "poisson"])
def test_get_margeff_equals_statsmodels_on_a_human_only_fit(model) -> None:
    _, res, ref = _pair(model)
    for at in ("overall", "mean", "median", "zero"):
        for method in ("dydx", "eyex", "dyex", "eydx"):
            ours, theirs = res.get_margeff(at=at, method=method), ref.get_margeff(at=at, method=method)
            frame, expected = ours.summary_frame(alpha=0.1), theirs.summary_frame(alpha=0.1)
            assert list(frame.columns) == list(expected.columns) and list(frame.index) == list(expected.index) == ["x1", "x2"]
            np.testing.assert_allclose(ours.margeff, theirs.margeff, rtol=1e-6)
            np.testing.assert_allclose(ours.margeff_se, theirs.margeff_se, rtol=1e-6)
            np.testing.assert_allclose(frame.to_numpy(), expected.to_numpy(), rtol=1e-6, atol=1e-300)
            np.testing.assert_allclose(ours.conf_int(), theirs.conf_int(), rtol=1e-6)
    text = res.get_margeff().summary().as_text()
    assert "Marginal Effects" in text and "dy/dx" in text and "x1" in text


def _discrete_frame(outcome: str, n: int = 240, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"x1": rng.normal(size=n), "d": rng.integers(0, 2, n).astype(float), "k": rng.integers(0, 4, n).astype(float)},
        index=pd.Index([f"u{i:03d}" for i in range(n)], name="unit"),
    )
    lin = 0.2 + 0.5 * frame["x1"] - 0.4 * frame["d"] + 0.2 * frame["k"]
    if outcome == "binary":
        frame["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-lin))).astype(float)
    else:
        frame["y"] = rng.negative_binomial(2, 2 / (2 + np.exp(lin))).astype(float)
    return frame


@pytest.mark.parametrize("model", ["logit", "probit", "poisson", "negbin"])
def test_get_margeff_of_binary_and_count_regressors_equals_statsmodels(model) -> None:
    frame = _discrete_frame("binary" if model in ("logit", "probit") else "count")
    res = smf.classical("y ~ x1 + d + k", real=frame, model=model).fit(correction=None)
    X = sm.add_constant(frame[["x1", "d", "k"]])
    if model == "negbin":
        # statsmodels' default optimiser stops 1e-5 short of the maximum; Newton from
        # our estimate stays there (it is the MLE), so the effects compare at equal params
        ref = sm.NegativeBinomial(frame["y"], X).fit(
            cov_type="HC0", disp=0, start_params=np.asarray(res.params), method="newton", tol=1e-14
        )
        np.testing.assert_allclose(res.params, ref.params, rtol=1e-9)
    else:
        ref = STATSMODELS[model](frame["y"], X).fit(cov_type="HC0", disp=0)
    for at in ("overall", "mean"):
        for options in ({"dummy": True}, {"count": True}, {"dummy": True, "count": True, "method": "eydx"}, {}):
            ours, theirs = res.get_margeff(at=at, **options), ref.get_margeff(at=at, **options)
            np.testing.assert_allclose(ours.margeff, theirs.margeff, rtol=1e-6)
            np.testing.assert_allclose(ours.margeff_se, theirs.margeff_se, rtol=1e-6)
    assert list(res.get_margeff(dummy=True, count=True).dummy_idx) == [2]
    assert list(res.get_margeff(dummy=True, count=True).count_idx) == [3]
    with pytest.raises(ValueError, match="dummy=True and count=True need"):
        res.get_margeff(method="eyex", dummy=True)


def test_fractional_logit_on_binary_outcomes_has_the_logit_effects() -> None:
    study, res, ref = _pair("logit")
    fractional = smf.classical(study.formula, real=study.real, model="fractional_logit").fit(correction=None)
    np.testing.assert_allclose(fractional.get_margeff().summary_frame(), ref.get_margeff().summary_frame(), rtol=1e-6)


def test_ols_margeff_is_the_coefficients() -> None:
    _, res, ref = _pair("ols")
    effects = res.get_margeff()
    np.testing.assert_allclose(effects.margeff, ref.params[["x1", "x2"]], rtol=1e-10)
    np.testing.assert_allclose(effects.margeff_se, ref.bse[["x1", "x2"]], rtol=1e-6)


def test_margeff_with_a_source_equals_the_closed_form_delta_method() -> None:
    study = make_study("logit", n_units=600, n_labeled=150, seed=9)
    res = smf.gmm_proxy(study.formula, real=study.real, proxy=study.proxy, model="logit").fit()
    X = sm.add_constant(study.real[["x1", "x2"]]).to_numpy()
    b = res.params.to_numpy()
    mu = 1 / (1 + np.exp(-X @ b))
    d1, d2 = mu * (1 - mu), mu * (1 - mu) * (1 - 2 * mu)
    effects = d1.mean() * b
    # d AME_j / d b_k = mean(mu'' x_k) b_j + mean(mu') 1{j = k}
    jacobian = np.outer(b, (d2[:, None] * X).mean(axis=0)) + d1.mean() * np.eye(3)
    cov = jacobian @ res.cov_params().to_numpy() @ jacobian.T
    ours = res.get_margeff()
    np.testing.assert_allclose(ours.margeff, effects[1:], rtol=1e-10)
    np.testing.assert_allclose(ours.margeff_se, np.sqrt(np.diag(cov))[1:], rtol=1e-7)
    # the fit's t inference carries over
    assert ours.use_t and "t" in ours.summary_frame().columns
    np.testing.assert_allclose(ours.pvalues, 2 * scipy.stats.t.sf(np.abs(ours.tvalues), res.df_resid))


def test_families_without_a_mean_or_a_single_index_raise_clearly() -> None:
    study = make_study("ols", n_units=300, n_labeled=150, seed=1)
    quantile = smf.classical(study.formula, real=study.real, model="quantile").fit(correction=None)
    with pytest.raises(SpecificationError, match="no mean function"):
        quantile.get_margeff()
    with pytest.raises(SpecificationError, match="no mean function"):
        quantile.get_prediction()
    np.testing.assert_allclose(quantile.get_prediction(which="linear").predicted, quantile.predict(which="linear"))
    real = study.real.assign(c=np.array(["a", "b", "c"])[np.arange(150) % 3])
    mnlogit = smf.classical("c ~ x1 + x2", real=real, model="mnlogit").fit(correction=None)
    for call in (mnlogit.get_margeff, mnlogit.get_prediction, mnlogit.predict):
        with pytest.raises(SpecificationError, match="single linear index"):
            call()
    mean = smf.classical("y ~ 1", real=study.real, model="mean").fit()
    with pytest.raises(SpecificationError, match="no regressor that varies"):
        mean.get_margeff()


def test_predict_transform_false_takes_the_design_matrix() -> None:
    study, res, ref = _pair("logit")
    new = study.proxy.drop(columns="y").iloc[:5]
    design = sm.add_constant(new[["x1", "x2"]]).rename(columns={"const": "Intercept"})
    expected = res.predict(new)
    pd.testing.assert_series_equal(res.predict(design, transform=False), expected)
    pd.testing.assert_series_equal(res.predict(design[["x2", "Intercept", "x1"]], transform=False), expected)
    np.testing.assert_allclose(res.predict(design.to_numpy(), transform=False), expected, rtol=1e-12)
    np.testing.assert_allclose(res.predict(design.to_numpy()[0], transform=False), expected.iloc[:1], rtol=1e-12)
    np.testing.assert_allclose(res.get_prediction(design.to_numpy(), transform=False).se, res.get_prediction(new).se)
    with pytest.raises(SpecificationError, match="design matrix"):
        res.predict(new, transform=False)  # the raw variables are not the design
    with pytest.raises(SpecificationError, match="3 columns"):
        res.predict(design.to_numpy()[:, :2], transform=False)
    pd.testing.assert_series_equal(res.predict({"x1": new["x1"], "x2": new["x2"]}), expected)


def test_summary2_has_the_model_information_and_the_coefficients() -> None:
    study = make_study("logit", n_units=400, n_labeled=150, seed=5)
    res = smf.gmm_proxy(study.formula, real=study.real, proxy=study.proxy, model="logit").fit()
    smry = res.summary2()
    info, params = smry.tables[0], smry.tables[1]
    cells = dict(zip(info[0], info[1])) | dict(zip(info[2], info[3]))
    assert cells["No. Units (N):"] == "400" and cells["No. Labeled (n):"] == "150"
    assert cells["Estimator:"] == "GMM-Proxy" and cells["Inference:"] == "t"
    assert cells["Df Residuals:"] == f"{res.df_resid:.4g}" and cells["Hansen J:"].strip()
    np.testing.assert_allclose(params["Coef."], res.params, rtol=1e-12)
    np.testing.assert_allclose(params["P>|t|"], res.pvalues, rtol=1e-12)
    for text in (smry.as_text(), smry.as_latex(), smry.as_html()):
        assert "x1" in text and "Labeled" in text


def test_df_model_df_resid_and_use_t_follow_statsmodels() -> None:
    study, res, ref = _pair("logit")
    assert res.df_model == ref.df_model == 2
    assert not res.use_t and np.isinf(res.df_resid)
    t_fit = smf.classical(study.formula, real=study.real, model="logit").fit(correction=None, use_t=True)
    X = sm.add_constant(study.real[["x1", "x2"]])
    ref_t = sm.Logit(study.real["y"], X).fit(cov_type="HC0", use_t=True, disp=0)
    assert t_fit.use_t and t_fit.df_resid == ref_t.df_resid == 150 - 3
    np.testing.assert_allclose(t_fit.pvalues, ref_t.pvalues, rtol=1e-6)
    np.testing.assert_allclose(t_fit.conf_int(), ref_t.conf_int(), rtol=1e-6)
    np.testing.assert_allclose(t_fit.bse, res.bse, rtol=1e-12)  # the covariance is unchanged
    assert "Student's t with 147 degrees of freedom" in str(t_fit.summary())
    z_fit = smf.classical(study.formula, real=study.real, model="logit").fit(use_t=False)
    assert not z_fit.use_t and np.isinf(z_fit.df_resid)
    np.testing.assert_allclose(z_fit.pvalues, 2 * scipy.stats.norm.sf(np.abs(z_fit.tvalues)))
    clusters = study.real.assign(g=np.arange(150) % 15)
    clustered = smf.classical(study.formula, real=clusters, model="logit").fit(
        correction=None, use_t=True, cov_type="cluster", cov_kwds={"groups": "g"}
    )
    assert clustered.df_resid == 15 - 1
    mn = smf.classical("c ~ x1 + x2", real=study.real.assign(c=np.arange(150) % 3), model="mnlogit").fit(correction=None)
    ref_mn = sm.MNLogit(np.arange(150) % 3, X).fit(disp=0)
    assert mn.df_model == ref_mn.df_model == 4
    with pytest.raises(ValueError, match="use_t"):
        smf.classical(study.formula, real=study.real, model="logit").fit(use_t="yes")


def test_t_test_pairwise_survives_pickling() -> None:
    study = make_study("logit", n_units=300, n_labeled=180, seed=8)
    real = study.real.assign(g=np.array(["a", "b", "c"])[np.arange(180) % 3])
    ref = smf_sm.logit("y ~ C(g) + x2", data=real).fit(disp=0, cov_type="HC0").t_test_pairwise("C(g)").result_frame
    for engine in ("patsy", "formulaic"):
        res = smf.classical("y ~ C(g) + x2", real=real, model="logit", engine=engine).fit(correction=None)
        loaded = pickle.loads(pickle.dumps(res))
        frame = loaded.t_test_pairwise("C(g)").result_frame
        assert list(frame.index) == ["b-a", "c-a", "c-b"] and list(frame.columns) == list(ref.columns)
        np.testing.assert_allclose(frame.select_dtypes("number"), ref.select_dtypes("number"), rtol=1e-6)
        pd.testing.assert_frame_equal(frame, res.t_test_pairwise("C(g)").result_frame)
        np.testing.assert_allclose(loaded.get_margeff().margeff, res.get_margeff().margeff)
        with pytest.raises(SpecificationError, match="categorical terms are"):
            loaded.t_test_pairwise("x2")


def test_predictions_on_a_polars_frame_equal_the_pandas_ones() -> None:
    pl = pytest.importorskip("polars")
    study, res, _ = _pair("poisson")
    new = study.proxy.drop(columns="y").iloc[:6]
    expected = res.get_prediction(new).summary_frame()
    with_units = pl.from_pandas(new.reset_index())  # the unit column labels the rows, as at fit time
    pd.testing.assert_frame_equal(res.get_prediction(with_units).summary_frame(), expected)
    without = pl.from_pandas(new.reset_index(drop=True))
    np.testing.assert_allclose(res.predict(without), res.predict(new), rtol=1e-12)


@pytest.mark.parametrize("model", ["logit", "poisson"])
def test_get_margeff_atexog_equals_statsmodels(model) -> None:
    study, res, ref = _pair(model)
    rows = sm.add_constant(study.proxy[["x1", "x2"]]).to_numpy()[:9]
    cases = [({1: 0.5}, "overall", "dydx"), ({1: 0.5, 2: -1.0}, "mean", "eyex"), ({2: np.linspace(-1, 1, 150)}, "overall", "dydx"),
             (rows, "overall", "dydx"), (rows, "median", "dyex"), (rows[:1], "overall", "eydx")]
    for atexog, at, method in cases:
        ours = res.get_margeff(at=at, method=method, atexog=atexog)
        theirs = ref.get_margeff(at=at, method=method, atexog=atexog)
        np.testing.assert_allclose(ours.margeff, theirs.margeff, rtol=1e-6)
        np.testing.assert_allclose(ours.margeff_se, theirs.margeff_se, rtol=1e-6)
    # by design column name, and as a frame of the design: the same as by position / array
    by_name = res.get_margeff(at="mean", atexog={"x1": 0.5})
    np.testing.assert_allclose(by_name.margeff, res.get_margeff(at="mean", atexog={1: 0.5}).margeff, rtol=0)
    assert not np.allclose(by_name.margeff, res.get_margeff(at="mean").margeff)  # atexog changed something
    frame = pd.DataFrame(rows[:, ::-1], columns=["x2", "x1", "Intercept"])
    np.testing.assert_allclose(res.get_margeff(atexog=frame).margeff, res.get_margeff(atexog=rows).margeff, rtol=0)
    with pytest.raises(SpecificationError, match="atexog key 'x9'"):
        res.get_margeff(atexog={"x9": 1.0})
    with pytest.raises(ValueError, match="same number of variables"):
        res.get_margeff(atexog=rows[:, :2])


def test_get_margeff_atexog_with_discrete_changes_equals_statsmodels() -> None:
    frame = _discrete_frame("binary")
    res = smf.classical("y ~ x1 + d + k", real=frame, model="logit").fit(correction=None)
    X = sm.add_constant(frame[["x1", "d", "k"]])
    ref = sm.Logit(frame["y"], X).fit(disp=0, cov_type="HC0")
    for at in ("overall", "mean"):
        ours = res.get_margeff(at=at, dummy=True, count=True, atexog={1: 0.3, 3: 2.0})
        theirs = ref.get_margeff(at=at, dummy=True, count=True, atexog={1: 0.3, 3: 2.0})
        np.testing.assert_allclose(ours.margeff, theirs.margeff, rtol=1e-6)
        np.testing.assert_allclose(ours.margeff_se, theirs.margeff_se, rtol=1e-6)
