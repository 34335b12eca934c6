"""RePPI (Ji, Lei and Zrnic 2025) against closed forms, PPI++ / ppi-python at lambda = 1,
the classical fit, and seeded coverage."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.stats

import synthinfer.api as smf
from synthinfer.comparison import compare
from synthinfer.exceptions import SpecificationError
from synthinfer.simulate import make_study

MODELS = ["ols", "logit", "poisson"]


class AuxScore:
    """g = the auxiliary (prediction-based) score at the pilot: features' first p columns."""

    def fit(self, features, targets):
        self.p = targets.shape[1]
        return self

    def predict(self, features):
        return features[:, : self.p]


class TrainingMean:
    """g = the mean of the training targets: a constant recalibration."""

    def fit(self, features, targets):
        self.mean = targets.mean(axis=0)
        return self

    def predict(self, features):
        return np.tile(self.mean, (len(features), 1))


class Zero(TrainingMean):
    def fit(self, features, targets):
        self.mean = np.zeros(targets.shape[1])
        return self


class Memorizer:
    """Returns a training unit's own target and 0 for any unit it was not trained on:
    with honest cross-fitting every prediction is 0."""

    def fit(self, features, targets):
        self.seen = {tuple(row): t for row, t in zip(features, targets)}
        self.p = targets.shape[1]
        return self

    def predict(self, features):
        return np.array([self.seen.get(tuple(row), np.zeros(self.p)) for row in features])


@pytest.fixture(scope="module")
def ppi_py():
    with warnings.catch_warnings():
        import ppi_py as module
    return module


def _study(model, n_units=1500, n_labeled=200, seed=3, aux="useful"):
    return make_study(model, n_units=n_units, n_labeled=n_labeled, aux=aux, seed=seed)


def _design(frame):
    return np.column_stack([np.ones(len(frame)), frame["x1"], frame["x2"]])


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("model", MODELS)
def test_reppi_with_the_prediction_score_is_ppi_at_lambda_one(ppi_py, model) -> None:
    """g = psi(z^m; theta_0) and Lambda = I reduce RePPI to PPI at lambda = 1.

    Logit and Poisson: PPI's estimate is the root of the rectified equation, and at
    theta_0 = that root the RePPI equation is the rectified one, so RePPI returns theta_0.
    OLS: ppi-python's estimate is the closed form theta_h + theta_u - theta_la (human,
    unlabeled-proxy and labeled-proxy regressions); at theta_0 = theta_u RePPI's
    ``A_l^-1 [b_y - (b_f - A_l theta_u) + (b_u - A_u theta_u)]`` is exactly that.
    """
    study = _study(model)
    real, proxy = study.real, study.proxy
    unlabeled = proxy[~proxy.index.isin(real.index)]
    arrays = (
        _design(real), real["y"].to_numpy(), proxy.loc[real.index, "y"].to_numpy(),
        _design(unlabeled), unlabeled["y"].to_numpy(),
    )
    ppi = smf.ppi(study.formula, real=real, proxy=proxy, model=model, lam=1.0).fit()
    if model == "ols":
        pilot = np.linalg.lstsq(arrays[3], arrays[4], rcond=None)[0]
    else:
        pilot = ppi.params
    res = smf.reppi(
        study.formula, real=real, proxy=proxy, model=model, learner=AuxScore(), tuning=1.0, pilot=pilot,
    ).fit()
    np.testing.assert_allclose(res.params, ppi.params, rtol=0, atol=1e-8)
    point = {
        "ols": ppi_py.ppi_ols_pointestimate, "logit": ppi_py.ppi_logistic_pointestimate,
        "poisson": ppi_py.ppi_poisson_pointestimate,
    }[model](*arrays, lam=1.0)
    # ppi-python's OLS is a closed form; its GLMs stop at its optimiser's tolerance
    np.testing.assert_allclose(res.params, point, rtol=1e-8 if model == "ols" else 1e-6, atol=1e-10)


@pytest.mark.parametrize("tuning", [0.7, "optimal"])
def test_reppi_ols_closed_form(tuning) -> None:
    """OLS with g = x (f - x'theta_0) at the classical pilot, by hand: the estimate,
    the tuning matrix and the sandwich covariance."""
    study = _study("ols", seed=5)
    real, proxy = study.real, study.proxy
    res = smf.reppi(study.formula, real=real, proxy=proxy, learner=AuxScore(), tuning=tuning).fit(correction=None)
    X, y = _design(real), real["y"].to_numpy()
    unl = proxy[~proxy.index.isin(real.index)]
    Xu, fu, fl = _design(unl), unl["y"].to_numpy(), proxy.loc[real.index, "y"].to_numpy()
    n, n_u = len(y), len(fu)
    theta0 = np.linalg.solve(X.T @ X, X.T @ y)
    g_l, g_u = X * (fl - X @ theta0)[:, None], Xu * (fu - Xu @ theta0)[:, None]
    psi0 = X * (y - X @ theta0)[:, None]
    if tuning == "optimal":
        gc, pc = g_l - g_l.mean(0), psi0 - psi0.mean(0)
        lam = n_u / (n + n_u) * (pc.T @ gc) @ np.linalg.inv(gc.T @ gc)
    else:
        lam = tuning * np.eye(3)
    np.testing.assert_allclose(res.tuning_matrix, lam, rtol=1e-10, atol=1e-12)
    A = X.T @ X / n
    theta = np.linalg.solve(A, X.T @ y / n - lam @ (g_l.mean(0) - g_u.mean(0)))
    np.testing.assert_allclose(res.params, theta, rtol=0, atol=1e-10)
    psi = X * (y - X @ theta)[:, None]
    left, right = psi - g_l @ lam.T, g_u @ lam.T
    meat_u = np.cov(right, rowvar=False, ddof=0) / n_u
    fixed = np.linalg.inv(A) @ (np.cov(left, rowvar=False, ddof=0) / n + meat_u) @ np.linalg.inv(A)
    # Lambda estimated: each centred labeled residual over 1 - h_i, h_i the unit's leverage
    # in the least squares of psi on [1, g] less the intercept's 1/n (0 for a fixed tuning)
    hat = np.column_stack([np.ones(n), g_l])
    h = np.einsum("ij,ji->i", hat, np.linalg.pinv(hat)) - 1 / n if tuning == "optimal" else np.zeros(n)
    scaled = (left - left.mean(0)) / (1 - h)[:, None]
    cov = np.linalg.inv(A) @ (scaled.T @ scaled / n**2 + meat_u) @ np.linalg.inv(A)
    if tuning == "optimal":
        assert h.min() > 0 and np.abs(cov - fixed).max() > 1e-3 * np.abs(fixed).max()
    np.testing.assert_allclose(res.cov_params().to_numpy(), cov, rtol=1e-10)
    np.testing.assert_allclose(res.tuning_leverage, h, rtol=0, atol=1e-12)
    unadjusted = smf.reppi(study.formula, real=real, proxy=proxy, learner=AuxScore(), tuning=tuning)
    np.testing.assert_allclose(unadjusted.fit(correction=None, leverage=False).cov_params().to_numpy(), fixed,
                               rtol=1e-10)
    assert not res.use_t
    small = smf.reppi(study.formula, real=real, proxy=proxy, learner=AuxScore(), tuning=tuning).fit()
    np.testing.assert_allclose(small.cov_params().to_numpy(), cov * n / (n - 3), rtol=1e-10)
    assert small.use_t and small.df_resid == n - 3


@pytest.mark.parametrize("model", MODELS)
def test_reppi_with_a_constant_recalibration_is_the_classical_fit(model) -> None:
    """g constant (the training folds' mean score, equal fold sizes: n = 200, 5 folds): the
    correction averages to zero and the estimate is the human-only one; g = 0 gives its
    HC0 covariance too, and so does tuning = 0 with any learner."""
    study = _study(model, n_labeled=200)
    kwargs = dict(real=study.real, proxy=study.proxy, model=model)
    classical = smf.classical(study.formula, real=study.real, model=model).fit(correction=None)
    mean = smf.reppi(study.formula, learner=TrainingMean(), tuning=1.0, **kwargs).fit(correction=None)
    np.testing.assert_allclose(mean.params, classical.params, rtol=0, atol=1e-8)
    # the per-fold constants differ, so psi - g is not psi: the SEs differ at O(1/n)
    np.testing.assert_allclose(mean.bse, classical.bse, rtol=0.05)
    for res in (
        smf.reppi(study.formula, learner=Zero(), **kwargs).fit(correction=None),
        smf.reppi(study.formula, tuning=0.0, **kwargs).fit(correction=None),
    ):
        np.testing.assert_allclose(res.params, classical.params, rtol=0, atol=1e-8)
        np.testing.assert_allclose(res.bse, classical.bse, rtol=1e-8)


def test_reppi_cross_fitting_never_predicts_a_unit_it_was_trained_on() -> None:
    study = _study("ols")
    res = smf.reppi(study.formula, real=study.real, proxy=study.proxy, learner=Memorizer(), tuning=1.0).fit()
    assert np.all(res.recalibrated_labeled == 0) and np.all(res.recalibrated_unlabeled == 0)
    classical = smf.classical(study.formula, real=study.real).fit()
    np.testing.assert_allclose(res.params, classical.params, rtol=0, atol=1e-10)
    folds = np.bincount(res.fold)
    assert len(folds) == 5 and folds.max() - folds.min() <= 1


def test_reppi_default_learner_gains_and_reports() -> None:
    """With a useful proxy the default recalibration beats the human-only SEs; summary,
    p-values and the compare table work; the passed learner object is not fitted."""
    study = _study("ols", n_units=3000)
    kwargs = dict(real=study.real, proxy=study.proxy)
    res = smf.reppi(study.formula, **kwargs).fit()
    classical = smf.classical(study.formula, real=study.real).fit()
    assert (res.bse < classical.bse).all()
    assert np.isfinite(res.pvalues).all()
    text = str(res.summary())
    assert "RePPI" in text and "optimal matrix" in text and "n/(n - p) = " in text
    ppi = smf.ppi(study.formula, **kwargs).fit()
    table = compare({"Human": classical, "PPI++": ppi, "RePPI": res})
    assert table.loc[("x1", "coef"), "RePPI"] == pytest.approx(res.params["x1"])
    assert table.loc[("x1", "se ratio"), "RePPI"] < 1
    learner = AuxScore()
    smf.reppi(study.formula, learner=learner, **kwargs).fit()
    assert not hasattr(learner, "p")


def test_reppi_on_synthetic_samples_uses_the_unit_means() -> None:
    study = _study("logit", n_units=800, n_labeled=150)
    model = smf.reppi(study.formula, real=study.real, synth=study.synth, model="logit")
    res = model.fit()
    assert np.isfinite(res.bse).all()
    pilot = res.pilot_params
    features = model.features(pilot)
    synth = study.synth
    X = _design(synth)
    eta = X @ pilot
    scores = X * (synth["y"].to_numpy() - 1 / (1 + np.exp(-eta)))[:, None]
    frame = pd.DataFrame(np.column_stack([scores, X, synth["y"]]), index=synth.index)
    expected = frame.groupby(level=0).mean().loc[model.unit_ids].to_numpy()
    np.testing.assert_allclose(features, expected, rtol=1e-12, atol=1e-12)


def test_reppi_coverage_seeded() -> None:
    """Seeded 95% coverage of x1 at n = 200 (N = 1000, OLS, useful proxy); the longer
    study (logit and Poisson too, n = 200 and 500) is benchmarks/reppi_coverage.py."""
    reps, hits = 100, 0
    rng = np.random.default_rng(2026)
    for _ in range(reps):
        study = make_study("ols", n_units=1000, n_labeled=200, aux="useful", seed=rng)
        res = smf.reppi(study.formula, real=study.real, proxy=study.proxy).fit()
        lo, hi = np.asarray(res.conf_int(0.05))[1]
        hits += lo <= study.truth["x1"] <= hi
    # fail only outside the central 99.8% of Binomial(100, 0.95)
    assert scipy.stats.binom.ppf(0.001, reps, 0.95) <= hits <= scipy.stats.binom.ppf(0.999, reps, 0.95)


class NoPredict:
    def fit(self, features, targets):
        return self


class WrongShape(TrainingMean):
    def predict(self, features):
        return np.zeros(len(features))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(folds=1), ValueError, "folds must be an integer >= 2"),
        (dict(folds=2.5), ValueError, "folds must be an integer >= 2"),
        (dict(folds=61), SpecificationError, "61 folds but only 60 labeled units"),
        (dict(learner=NoPredict()), TypeError, "fit.*predict"),
        (dict(tuning="power"), ValueError, "tuning must be 'optimal' or a number"),
        (dict(tuning=np.nan), ValueError, "tuning must be 'optimal' or a number"),
        (dict(pilot=[1.0, 2.0]), ValueError, r"pilot must be 'classical' or 3 finite numbers"),
        (dict(pilot="ppi"), ValueError, r"pilot must be 'classical'"),
    ],
)
def test_reppi_bad_options(kwargs, error, match) -> None:
    study = _study("ols", n_units=300, n_labeled=60)
    with pytest.raises(error, match=match):
        smf.reppi(study.formula, real=study.real, proxy=study.proxy, **kwargs)


def test_reppi_bad_input() -> None:
    study = _study("ols", n_units=300, n_labeled=60)
    real, proxy, synth = study.real, study.proxy, study.synth
    with pytest.raises(SpecificationError, match="exactly one auxiliary source"):
        smf.reppi(study.formula, real=real)
    with pytest.raises(SpecificationError, match="exactly one auxiliary source"):
        smf.reppi(study.formula, real=real, proxy=proxy, synth=synth)
    with pytest.raises(SpecificationError, match="trains the recalibration on 3 labeled units, too few"):
        smf.reppi(study.formula, real=real.iloc[:6], proxy=proxy, folds=2)
    with pytest.raises(SpecificationError, match="needs unlabeled units"):
        smf.reppi(study.formula, real=proxy, proxy=proxy)
    with pytest.raises(SpecificationError, match="step functions"):
        smf.reppi(study.formula, real=real, proxy=proxy, model="quantile")
    with pytest.raises(SpecificationError, match=r"shape \(12,\); RePPI needs \(12, 3\)"):
        smf.reppi(study.formula, real=real, proxy=proxy, learner=WrongShape()).fit()
    model = smf.reppi(study.formula, real=real, proxy=proxy)
    with pytest.raises(ValueError, match="correction must be"):
        model.fit(correction="hc3")
    with pytest.raises(TypeError):
        model.fit(not_a_keyword=3)  # statsmodels' maxiter is accepted (test_fit_keywords)
    before = real.copy()
    model.fit()
    pd.testing.assert_frame_equal(real, before)


def test_reppi_takes_a_scikit_learn_regressor() -> None:
    """Any fit/predict object: scikit-learn's multi-output LinearRegression on the raw
    features spans ``[1, psi^m, x, f]``, so it matches LinearRecalibration restricted to
    that basis by hand (least squares per fold on the same features)."""
    linear_model = pytest.importorskip("sklearn.linear_model")
    study = _study("logit", n_units=800, n_labeled=150)
    model = smf.reppi(study.formula, real=study.real, proxy=study.proxy, model="logit",
                      learner=linear_model.LinearRegression())
    res = model.fit()
    features = model.features(res.pilot_params)
    labeled = features[model.model_data.labeled_pos]
    targets = model.family.evaluate(model.model_data.X, model.model_data.y, res.pilot_params).values()
    expected = np.empty_like(targets)
    for k in range(5):
        held = res.fold == k
        design = np.column_stack([np.ones(len(labeled)), labeled])
        coef = np.linalg.lstsq(design[~held], targets[~held], rcond=None)[0]
        expected[held] = design[held] @ coef
    np.testing.assert_allclose(res.recalibrated_labeled, expected, rtol=1e-6, atol=1e-8)
    assert np.isfinite(res.bse).all()


def test_reppi_default_recalibration_is_the_pooled_residual_regression() -> None:
    """The default g for a single-index family, by hand: per fold, least squares of the
    human residual y - exp(x'theta_0) on [1, x^m, f, f - exp(x^m'theta_0)] over the other
    folds, times x^m; an unlabeled unit's g is the mean of the fold models'."""
    study = _study("poisson", n_units=600, n_labeled=150)
    model = smf.reppi(study.formula, real=study.real, proxy=study.proxy, model="poisson")
    res = model.fit()
    theta0 = res.pilot_params
    X, y = _design(study.real), study.real["y"].to_numpy()
    unl = study.proxy[~study.proxy.index.isin(study.real.index)]
    Xu, fu, fl = _design(unl), unl["y"].to_numpy(), study.proxy.loc[study.real.index, "y"].to_numpy()

    def basis(design, f):
        return np.column_stack([np.ones(len(f)), design, f, f - np.exp(design @ theta0)])

    r = y - np.exp(X @ theta0)
    g_l, g_u = np.empty_like(X), np.zeros_like(Xu)
    for k in range(5):
        held = res.fold == k
        coef = np.linalg.lstsq(basis(X, fl)[~held], r[~held], rcond=None)[0]
        g_l[held] = X[held] * (basis(X, fl)[held] @ coef)[:, None]
        g_u += Xu * (basis(Xu, fu) @ coef)[:, None] / 5
    np.testing.assert_allclose(res.recalibrated_labeled, g_l, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(res.recalibrated_unlabeled, g_u, rtol=1e-9, atol=1e-10)
    assert "ResidualRecalibration" in str(res.summary())


def test_reppi_poisson_default_does_not_extrapolate() -> None:
    """The Poisson failure of the former default (docs/baselines.md): in this seeded study
    an unlabeled unit's proxy count (103) is far above the labeled range (max 18), and a
    quadratic in the prediction, fitted on the labeled units, put that unit's imputed score
    orders of magnitude outside the labeled ones' and the estimate 9.5 human-only SEs from
    the truth. The pooled linear residual recalibration stays within 3 SEs with an SE below
    the human-only one."""
    from synthinfer.estimators import LinearRecalibration

    study = make_study("poisson", n_units=2000, n_labeled=200, aux="useful", seed=57)
    kwargs = dict(real=study.real, proxy=study.proxy, model="poisson")
    classical = smf.classical(study.formula, real=study.real, model="poisson").fit()
    se, truth = classical.bse["x1"], study.truth["x1"]
    res = smf.reppi(study.formula, **kwargs).fit()
    assert abs(res.params["x1"] - truth) < 3 * se
    assert res.bse["x1"] < se
    quadratic = smf.reppi(study.formula, learner=LinearRecalibration(degree=2), **kwargs).fit()
    assert abs(quadratic.params["x1"] - truth) > 5 * se


def test_reppi_ols_matches_the_authors_point_estimate_formula() -> None:
    """Ji, Lei and Zrnic's research code (github Wenlong2000/RePPI, reppi.py, OLS only)
    recalibrates the outcome, m(x, f) ~ E[y | x, f], and for a fold with pilot theta_0 and
    the imputed gradient ``g = X (X'theta_0 - m) / (1 + r)`` (r = n / N_unlabeled) sets
    ``theta = Sigma^-1 [X'y / n + M (mean_L g - mean_U g)]`` with
    ``M = Cov(l, g) Var(g)^-1 / (1 + r)``, ``l = X (X'theta_0 - y)``. Their formula,
    transcribed here, with the same fixed m and theta_0 equals RePPI's optimal-Lambda
    estimate (their signs and 1/(1 + r) cancel against our Lambda's (N - n)/N)."""
    study = _study("ols", seed=8)
    real, proxy = study.real, study.proxy
    X, y = _design(real), real["y"].to_numpy()
    unl = proxy[~proxy.index.isin(real.index)]
    Xu, fu, fl = _design(unl), unl["y"].to_numpy(), proxy.loc[real.index, "y"].to_numpy()
    coef = np.linalg.lstsq(np.column_stack([X, fl]), y, rcond=None)[0]
    theta0 = np.linalg.lstsq(X[::2], y[::2], rcond=None)[0]

    class FixedOutcome:
        """g = x (m(x, f) - x'theta_0) with m fixed in advance (no training)."""

        def fit(self, features, targets):
            return self

        def predict(self, features):
            design, f = features[:, 3:6], features[:, 6]
            return design * (np.column_stack([design, f]) @ coef - design @ theta0)[:, None]

    res = smf.reppi(study.formula, real=real, proxy=proxy, learner=FixedOutcome(), pilot=theta0).fit()
    n, n_u = len(y), len(fu)
    r = n / n_u
    grad_l = X * (X @ theta0 - np.column_stack([X, fl]) @ coef)[:, None] / (1 + r)
    grad_u = Xu * (Xu @ theta0 - np.column_stack([Xu, fu]) @ coef)[:, None] / (1 + r)
    loss_grad = X * (X @ theta0 - y)[:, None]
    cov = np.cov(loss_grad.T, grad_l.T)
    M = cov[:3, 3:] @ np.linalg.inv(cov[3:, 3:]) / (1 + r)
    theta = np.linalg.inv(X.T @ X / n) @ (X.T @ y / n + M @ (grad_l.mean(0) - grad_u.mean(0)))
    np.testing.assert_allclose(res.params, theta, rtol=0, atol=1e-10)


def test_reppi_leverage_must_be_a_bool() -> None:
    study = _study("ols", n_units=300, n_labeled=60)
    model = smf.reppi(study.formula, real=study.real, proxy=study.proxy)
    with pytest.raises(TypeError, match="leverage must be True or False"):
        model.fit(leverage="hc3")
