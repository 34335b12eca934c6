"""Baselines: classical, naive pooling and PPI++ against independent references."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import synthinfer
import synthinfer.api as smf
from synthinfer.exceptions import SpecificationError
from synthinfer.simulate import make_study

MODELS = ["ols", "logit", "poisson"]


@pytest.fixture(scope="module")
def ppi_py():
    """ppi-python, imported without letting its global warnings filter escape."""
    before = list(warnings.filters)
    with warnings.catch_warnings():
        import ppi_py as module
    assert warnings.filters == before, "ppi_py's simplefilter('ignore') leaked"
    return module


def _ppi_arrays(study):
    """ppi-python's layout: labeled (X, Y, Yhat) and the disjoint unlabeled (X, Yhat)."""
    real, proxy = study.real, study.proxy
    unlabeled = proxy[~proxy.index.isin(real.index)]

    def design(frame):
        return np.column_stack([np.ones(len(frame)), frame["x1"], frame["x2"]])

    return (
        design(real), real["y"].to_numpy(), proxy.loc[real.index, "y"].to_numpy(),
        design(unlabeled), unlabeled["y"].to_numpy(),
    )


def _reference_functions(ppi_py, model):
    return {
        "ols": (ppi_py.ppi_ols_ci, ppi_py.ppi_ols_pointestimate),
        "logit": (ppi_py.ppi_logistic_ci, ppi_py.ppi_logistic_pointestimate),
        "poisson": (ppi_py.ppi_poisson_ci, ppi_py.ppi_poisson_pointestimate),
    }[model]


# sklearn inside ppi-python warns about its own use of `penalty=None`
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0, "auto"])
@pytest.mark.parametrize("model", MODELS)
def test_ppi_matches_ppi_python(ppi_py, model, lam) -> None:
    study = make_study(model, n_units=2000, n_labeled=300, aux="useful", seed=3)
    arrays = _ppi_arrays(study)
    ci_function, point_function = _reference_functions(ppi_py, model)
    # ppi-python's convention: score variances with ddof=1 (np.cov); alpha=0.1 by default
    res = smf.ppi(study.formula, real=study.real, proxy=study.proxy, model=model, lam=lam).fit(ddof=1, correction=None)
    lower, upper = ci_function(*arrays, alpha=0.1, lam=None if lam == "auto" else lam)
    ours = res.conf_int(alpha=0.1).to_numpy()
    np.testing.assert_allclose(ours[:, 0], lower, rtol=1e-6)
    np.testing.assert_allclose(ours[:, 1], upper, rtol=1e-6)
    # ppi-python's auto-lambda interval re-tunes lambda once at the tuned estimate
    # and centres on the estimate at that lambda, which we report as res.lam; its
    # point-estimate function stops after the first tuning pass, so compare at res.lam.
    point = point_function(*arrays, lam=res.lam)
    np.testing.assert_allclose(res.params.to_numpy(), point, rtol=1e-6)
    if lam == "auto":
        assert 0.0 <= res.lam <= 1.0 and res.lam_tuned
        assert f"{res.lam:.4f}" in str(res.summary())
    else:
        assert res.lam == lam


# sklearn inside ppi-python warns about its own use of `penalty=None`
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("lam", [0.0, 0.5, "auto"])
@pytest.mark.parametrize("model", MODELS)
def test_ppi_with_labeling_probabilities_matches_ppi_python_weights(ppi_py, model, lam) -> None:
    """pi for every unit: ppi-python's w = 1/pi (labeled) and w_unlabeled = 1/(1 - pi)."""
    study = make_study(model, n_units=2000, n_labeled=300, aux="useful", seed=13)
    prob = pd.Series(np.random.default_rng(13).uniform(0.05, 0.6, 2000), index=study.proxy.index)
    arrays = _ppi_arrays(study)
    unlabeled = study.proxy.index[~study.proxy.index.isin(study.real.index)]
    weights = {"w": 1 / prob[study.real.index].to_numpy(), "w_unlabeled": 1 / (1 - prob[unlabeled].to_numpy())}
    ci_function, _ = _reference_functions(ppi_py, model)
    res = smf.ppi(
        study.formula, real=study.real, proxy=study.proxy.assign(pi=prob), model=model, lam=lam,
        labeling_prob="pi",
    ).fit(ddof=1, correction=None)
    lower, upper = ci_function(*arrays, alpha=0.1, lam=None if lam == "auto" else lam, **weights)
    ours = res.conf_int(alpha=0.1).to_numpy()
    np.testing.assert_allclose(ours[:, 0], lower, rtol=1e-6)
    np.testing.assert_allclose(ours[:, 1], upper, rtol=1e-6)
    # the weights matter here: the unweighted interval is elsewhere
    plain = smf.ppi(study.formula, real=study.real, proxy=study.proxy, model=model, lam=lam).fit(ddof=1, correction=None)
    assert np.max(np.abs(plain.conf_int(alpha=0.1).to_numpy()[:, 0] - lower)) > 1e-3


@pytest.mark.parametrize("source", ["proxy", "synth"])
@pytest.mark.parametrize("model", MODELS)
def test_ppi_with_equal_labeling_probabilities_is_the_unweighted_fit(model, source) -> None:
    """Also with two synthetic samples per unit (rows weighted 1/k within a unit)."""
    study = make_study(model, n_units=1200, n_labeled=200, aux="useful", seed=14)
    kwds = dict(real=study.real, model=model, **{source: getattr(study, source)})
    plain = smf.ppi(study.formula, **kwds).fit()
    equal = pd.Series(200 / 1200, index=study.proxy.index)
    weighted = smf.ppi(study.formula, labeling_prob=equal, **kwds).fit()
    np.testing.assert_allclose(weighted.params, plain.params, rtol=1e-9)
    np.testing.assert_allclose(weighted.bse, plain.bse, rtol=1e-9)
    assert weighted.lam == pytest.approx(plain.lam, rel=1e-9)
    assert "1/(1 - pi)" in str(weighted.summary()) and "1/(1 - pi)" not in str(plain.summary())


@pytest.mark.parametrize(
    ("prob", "match"),
    [
        (lambda s: "pi", r"in the real frame only.*every unit"),
        (lambda s: pd.Series(0.2, index=s.proxy.index[1:]), r"missing for unit"),
        (lambda s: pd.Series(0.2, index=s.proxy.index).mask(s.proxy.index == s.real.index[0], 0.0),
         r"labeled units must be known numbers in \(0, 1\].*" + "unit"),
        (lambda s: pd.Series(0.2, index=s.proxy.index).mask(~s.proxy.index.isin(s.real.index), 1.0),
         r"unlabeled units must be known numbers in \[0, 1\)"),
    ],
)
def test_ppi_bad_labeling_probabilities_are_errors(prob, match) -> None:
    study = make_study("ols", n_units=300, n_labeled=60, seed=15)
    real = study.real.assign(pi=0.2)
    with pytest.raises(SpecificationError, match=match):
        smf.ppi(study.formula, real=real, proxy=study.proxy, labeling_prob=prob(study))


@pytest.mark.parametrize("model", MODELS)
def test_lam_zero_is_classical_and_classical_is_statsmodels(model) -> None:
    study = make_study(model, n_units=1500, n_labeled=250, seed=9)
    ppi0 = smf.ppi(study.formula, real=study.real, proxy=study.proxy, model=model, lam=0).fit(correction=None)
    classical = smf.classical(study.formula, real=study.real, model=model).fit(correction=None)
    np.testing.assert_allclose(ppi0.params, classical.params, rtol=1e-10)
    np.testing.assert_allclose(ppi0.bse, classical.bse, rtol=1e-10)
    # and the defaults (small-sample correction: HC1 with t(n - p)) agree too; the
    # human-only fit's leverage adjustment (least squares' default, HC3) is not PPI's
    ppi0_default = smf.ppi(study.formula, real=study.real, proxy=study.proxy, model=model, lam=0).fit()
    classical_default = smf.classical(study.formula, real=study.real, model=model).fit(leverage=None)
    np.testing.assert_allclose(ppi0_default.bse, classical_default.bse, rtol=1e-10)
    np.testing.assert_allclose(ppi0_default.conf_int(), classical_default.conf_int(), rtol=1e-10)
    np.testing.assert_allclose(ppi0_default.bse, ppi0.bse * np.sqrt(250 / 247), rtol=1e-12)
    X = sm.add_constant(study.real[["x1", "x2"]]).rename(columns={"const": "Intercept"})
    family = {"ols": sm.OLS, "logit": sm.Logit, "poisson": sm.Poisson}[model]
    kwds = {} if model == "ols" else {"disp": 0}
    ref = family(study.real["y"], X).fit(cov_type="HC0", **kwds)
    np.testing.assert_allclose(classical.params, ref.params, rtol=1e-6)
    np.testing.assert_allclose(classical.bse, ref.bse, rtol=1e-6)
    assert classical.estimator == "Classical" and "Classical" in str(classical.summary())


def test_classical_cluster_matches_statsmodels() -> None:
    study = make_study("logit", n_units=1000, n_labeled=300, seed=10)
    real = study.real.assign(cluster=np.arange(len(study.real)) // 5)
    res = smf.classical(study.formula, real=real, model="logit").fit(
        cov_type="cluster", cov_kwds={"groups": "cluster"}, correction=None
    )
    X = sm.add_constant(real[["x1", "x2"]])
    ref = sm.Logit(real["y"], X).fit(disp=0, cov_type="cluster", cov_kwds={"groups": real["cluster"]})  # both default: corrected
    np.testing.assert_allclose(res.bse.to_numpy(), ref.bse.to_numpy(), rtol=1e-6)


@pytest.mark.parametrize("model", MODELS)
def test_naive_is_statsmodels_on_the_pooled_rows(model) -> None:
    study = make_study(model, n_units=800, n_labeled=150, aux="biased", seed=4)
    res = smf.naive(study.formula, real=study.real, proxy=study.proxy, synth=study.synth, model=model).fit()
    unlabeled_proxy = study.proxy[~study.proxy.index.isin(study.real.index)]
    pooled = pd.concat([study.real, unlabeled_proxy, study.synth])
    assert res.n_rows == len(pooled) == 150 + 650 + 1600
    X = sm.add_constant(pooled[["x1", "x2"]])
    family = {"ols": sm.OLS, "logit": sm.Logit, "poisson": sm.Poisson}[model]
    kwds = {} if model == "ols" else {"disp": 0}
    ref = family(pooled["y"], X).fit(cov_type="HC0", **kwds)
    np.testing.assert_allclose(res.params.to_numpy(), ref.params.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(res.bse.to_numpy(), ref.bse.to_numpy(), rtol=1e-6)
    assert "Naive pooling" in str(res.summary()) and "biased" in str(res.summary())


def test_ppi_on_synthetic_samples() -> None:
    study = make_study("ols", n_units=1000, n_labeled=200, seed=6)
    res = smf.ppi(study.formula, real=study.real, synth=study.synth).fit()
    doubled = smf.ppi(study.formula, real=study.real, synth=pd.concat([study.synth, study.synth])).fit()
    np.testing.assert_allclose(res.params, doubled.params, rtol=1e-10)
    np.testing.assert_allclose(res.bse, doubled.bse, rtol=1e-10)
    human = smf.classical(study.formula, real=study.real).fit()
    assert (res.bse < human.bse).all()


def test_ppi_bad_input() -> None:
    study = make_study("ols", n_units=300, n_labeled=60, seed=1)
    with pytest.raises(SpecificationError, match="exactly one auxiliary source"):
        smf.ppi(study.formula, real=study.real)
    with pytest.raises(SpecificationError, match="exactly one auxiliary source"):
        smf.ppi(study.formula, real=study.real, proxy=study.proxy, synth=study.synth)
    with pytest.raises(SpecificationError, match="exactly one auxiliary source"):
        smf.ppi(study.formula, real=study.real, proxy={"a": study.proxy, "b": study.proxy})
    with pytest.raises(ValueError, match="lam"):
        smf.ppi(study.formula, real=study.real, proxy=study.proxy, lam="best")


def _coverage_run(model: str, reps: int):
    """Repeated studies with a biased proxy: does each interval cover the truth?"""
    hits = {"naive": [], "PPI++": [], "GMM-Synth": []}
    for seed in range(reps):
        study = make_study(model, n_units=2000, n_labeled=250, aux="biased", seed=seed)
        kwds = dict(real=study.real, model=model)
        fits = {
            "naive": smf.naive(study.formula, proxy=study.proxy, **kwds).fit(),
            "PPI++": smf.ppi(study.formula, proxy=study.proxy, **kwds).fit(),
            "GMM-Synth": smf.gmm_synth(study.formula, proxy=study.proxy, synth=study.synth, **kwds).fit(),
        }
        for name, res in fits.items():
            ci = res.conf_int()
            hits[name].append(((ci[0] <= study.truth) & (study.truth <= ci[1])).to_numpy())
    return {name: np.mean(v, axis=0) for name, v in hits.items()}


@pytest.mark.parametrize("model", ["ols", "logit"])
def test_biased_auxiliary_data_naive_fails_valid_estimators_cover(model) -> None:
    reps = 200
    coverage = _coverage_run(model, reps)
    # binomial tolerance around 95%: 3.5 standard errors of a proportion
    tolerance = 3.5 * np.sqrt(0.95 * 0.05 / reps)
    for name in ("PPI++", "GMM-Synth"):
        assert np.all(np.abs(coverage[name] - 0.95) <= tolerance), (name, coverage[name])
    # the slope on x1 is where the LLM's bias sits: naive misses it far more than 5%
    assert coverage["naive"][1] < 0.5, coverage["naive"]


def test_compare_table_and_plot(tmp_path) -> None:
    study = make_study("logit", n_units=1500, n_labeled=200, seed=12)
    kwds = dict(real=study.real, model="logit")
    results = {
        "human only": smf.classical(study.formula, **kwds).fit(),
        "naive": smf.naive(study.formula, proxy=study.proxy, **kwds).fit(),
        "PPI++": smf.ppi(study.formula, proxy=study.proxy, **kwds).fit(),
        "GMM-Synth": smf.gmm_synth(study.formula, proxy=study.proxy, synth=study.synth, **kwds).fit(),
    }
    table = synthinfer.compare(results, alpha=0.1)
    human = results["human only"]
    for name, res in results.items():
        for term in res.params.index:
            assert table.loc[(term, "coef"), name] == pytest.approx(res.params[term])
            assert table.loc[(term, "std err"), name] == pytest.approx(res.bse[term])
            assert table.loc[(term, "ci lower"), name] == pytest.approx(res.conf_int(0.1).loc[term, 0])
            ratio = res.bse[term] / human.bse[term]
            assert table.loc[(term, "se ratio"), name] == pytest.approx(ratio)
            if name == "naive":
                # its SE counts LLM rows as human labels: no human-label equivalent
                assert np.isnan(table.loc[(term, "effective n"), name])
            else:
                assert table.loc[(term, "effective n"), name] == pytest.approx(200 / ratio**2)
        assert table.loc[("n labeled", ""), name] == 200
        assert table.loc[("N", ""), name] == (200 if name == "human only" else 1500)
    assert table.loc[("x1", "effective n"), "GMM-Synth"] > 200
    text, html = str(table), table._repr_html_()
    for needle in ("GMM-Synth", "PPI++", "effective n", "se ratio", "n labeled"):
        assert needle in text and needle in html
    # without a human-only fit in the dict, the reference is computed from the labeled data
    no_reference = synthinfer.compare({k: v for k, v in results.items() if k != "human only"}, alpha=0.1)
    pd.testing.assert_series_equal(
        no_reference.loc[("x1", "se ratio")], table.loc[("x1", "se ratio"), ["naive", "PPI++", "GMM-Synth"]]
    )
    with pytest.raises(KeyError, match="nope"):
        synthinfer.compare(results, reference="nope")

    import matplotlib

    matplotlib.use("Agg")
    fig, ax = synthinfer.plot_coefficients(results, terms=["x1", "x2"], truth=study.truth)
    path = tmp_path / "forest.png"
    fig.savefig(path)
    assert path.exists() and path.stat().st_size > 1000
    positions = dict(zip([t.get_text() for t in ax.get_yticklabels()], ax.get_yticks()))
    assert positions["x1"] > positions["x2"]  # terms top to bottom in the order asked
    assert len(ax.get_legend().get_texts()) == 4


def test_ppi_when_the_lambda_one_estimate_does_not_exist() -> None:
    from synthinfer.exceptions import ConvergenceError, SynthInferWarning
    from synthinfer.simulate import simulate_study

    # anti-correlated labels and 50 human labels: the rectified loss at lambda = 1 is unbounded
    study = simulate_study("logit", 2000, 50, proxy="anti", synth="anti", seed=5)
    with pytest.raises(ConvergenceError, match="no minimum at lambda = 1"):
        smf.ppi(study.formula, real=study.real, proxy=study.proxy, model="logit", lam=1.0).fit()
    with pytest.warns(SynthInferWarning, match="tuned at the human-only estimate"):
        res = smf.ppi(study.formula, real=study.real, proxy=study.proxy, model="logit").fit()
    human = smf.classical(study.formula, real=study.real, model="logit").fit()
    assert res.lam == 0.0
    np.testing.assert_allclose(res.params, human.params, rtol=1e-10)


@pytest.mark.parametrize("model", ["ols", "logit"])
def test_weighted_ppi_on_duplicated_synthetic_rows_is_the_one_row_fit(model) -> None:
    """Unit weights combine with the 1/k row weights: k identical samples act as one."""
    study = make_study(model, n_units=1000, n_labeled=150, aux="useful", k_synth=1, seed=16)
    prob = pd.Series(np.random.default_rng(16).uniform(0.05, 0.5, 1000), index=study.proxy.index)
    kwds = dict(real=study.real, model=model, labeling_prob=prob)
    once = smf.ppi(study.formula, synth=study.synth, **kwds).fit()
    twice = smf.ppi(study.formula, synth=pd.concat([study.synth, study.synth]), **kwds).fit()
    np.testing.assert_allclose(twice.params, once.params, rtol=1e-9)
    np.testing.assert_allclose(twice.bse, once.bse, rtol=1e-9)
    assert twice.lam == pytest.approx(once.lam, rel=1e-9)
