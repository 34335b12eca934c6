"""Fits on Dask sources equal the in-memory fits, and bad input in a partition is named.

The equality tests of gmm_synth, the diagnostics and PPI++ run on a real
``dask.distributed`` LocalCluster of two workers with one thread each, shared
by the module (one start), with 16 partitions and k = 2 synthetic rows per
unit. The workers are in-process (``processes=False``: the same scheduler,
workers and task protocol, without the seconds two process starts cost this
file's time budget); process workers are what benchmarks/dask_scaling.py
runs, and its committed output shows the same equality there (docs/dask.md).
The other tests use the threaded or the synchronous scheduler: what they
check does not depend on where a partition is computed. The data sets are
built once per module and never mutated (the bad-input tests copy theirs).
"""

from __future__ import annotations

import bisect
import functools
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import synthinfer.api as smf  # noqa: E402
from synthinfer.exceptions import SpecificationError  # noqa: E402

FORMULA = "y ~ x1 + C(g)"
PARTITIONS = 16
RTOL = 1e-10


def names(*parts: object) -> str:
    """A regex matching a message that contains every part, in any order."""
    return "(?s)" + "".join(f"(?=.*{re.escape(str(p))})" for p in parts)


def make_frames(model: str, n_units: int = 4000, n_labeled: int = 300, k: int = 2, seed: int = 0):
    """real, proxy (one row per unit) and synth (k rows per unit), indexed by unit id."""
    rng = np.random.default_rng(seed)
    ids = pd.Index(np.arange(n_units) * 3 + 7, name="unit")
    x1 = rng.normal(size=n_units)
    g = rng.choice(["a", "b", "c"], size=n_units)
    lin = 0.3 + 0.8 * x1 + 0.5 * (g == "b")
    if model == "ols":
        y = lin + rng.normal(size=n_units)
        y_proxy = y + 0.8 * rng.normal(size=n_units)
    else:
        y = (rng.random(n_units) < 1 / (1 + np.exp(-lin))).astype(float)
        y_proxy = np.where(rng.random(n_units) < 0.8, y, 1 - y)
    labeled = np.sort(rng.choice(n_units, n_labeled, replace=False))
    real = pd.DataFrame({"y": y, "x1": x1, "g": g}, index=ids).iloc[labeled]
    proxy = pd.DataFrame({"y": y_proxy, "x1": x1, "g": g}, index=ids)
    rep = np.repeat(np.arange(n_units), k)
    if model == "ols":
        y_synth = lin[rep] + rng.normal(size=n_units * k)
    else:
        y_synth = (rng.random(n_units * k) < 1 / (1 + np.exp(-lin[rep]))).astype(float)
    synth = pd.DataFrame(
        {"y": y_synth, "x1": x1[rep] + 0.3 * rng.normal(size=n_units * k), "g": g[rep]},
        index=pd.Index(ids[rep], name="unit"),
    )
    return real, proxy, synth


def as_dask(proxy: pd.DataFrame, synth: pd.DataFrame, npartitions: int = PARTITIONS):
    """The aligned layout docs/dask.md asks for: sorted by unit id, equal divisions."""
    dproxy = dd.from_pandas(proxy.sort_index(), npartitions=npartitions, sort=True)
    dsynth = dd.from_pandas(synth.sort_index(), npartitions=npartitions, sort=True)
    return dproxy, dsynth.repartition(divisions=dproxy.divisions)


@functools.cache
def dataset(model: str, n_units: int = 1600, n_labeled: int = 200, k: int = 2, npartitions: int = PARTITIONS):
    """real, proxy, synth and their Dask frames (persisted: each fit reads them, not
    the pandas slicing of from_pandas), built once; tests must not mutate them."""
    real, proxy, synth = make_frames(model, n_units=n_units, n_labeled=n_labeled, k=k)
    dproxy, dsynth = as_dask(proxy, synth, npartitions=npartitions)
    with dask.config.set(scheduler="sync"):
        dproxy, dsynth = dask.persist(dproxy, dsynth)
    return real, proxy, synth, dproxy, dsynth


def partition_of(frame, unit) -> int:
    return min(bisect.bisect_right(list(frame.divisions), unit) - 1, frame.npartitions - 1)


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None,
    ) as cluster, distributed.Client(cluster) as client:
        yield client


def assert_same_fit(memory, on_dask) -> None:
    np.testing.assert_allclose(np.asarray(on_dask.params), np.asarray(memory.params), rtol=RTOL)
    np.testing.assert_allclose(np.asarray(on_dask.bse), np.asarray(memory.bse), rtol=RTOL)
    np.testing.assert_allclose(on_dask.params_full, memory.params_full, rtol=RTOL)
    np.testing.assert_allclose(
        np.asarray(on_dask.cov_params_full()), np.asarray(memory.cov_params_full()), rtol=RTOL, atol=1e-300,
    )
    j_memory, j_dask = memory.jtest(), on_dask.jtest()
    assert j_dask[2] == j_memory[2]
    np.testing.assert_allclose(j_dask[:2], j_memory[:2], rtol=RTOL)
    factor = getattr(memory.weighting, "factor", None)
    assert getattr(on_dask.weighting, "factor", None) == (None if factor is None else pytest.approx(factor, rel=RTOL))


def assert_same_diagnostics(memory, on_dask) -> None:
    # a refit per source and the residual correlations
    a, b = memory.diagnostics(), on_dask.diagnostics()
    np.testing.assert_allclose(b.effective_n, a.effective_n, rtol=RTOL)
    np.testing.assert_allclose(b.variance_reduction, a.variance_reduction, rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(b.residual_correlation, a.residual_correlation, rtol=RTOL)


def assert_same_ppi(memory, on_dask) -> None:
    np.testing.assert_allclose(np.asarray(on_dask.params), np.asarray(memory.params), rtol=RTOL)
    np.testing.assert_allclose(np.asarray(on_dask.bse), np.asarray(memory.bse), rtol=RTOL)
    np.testing.assert_allclose(
        np.asarray(on_dask.cov_params()), np.asarray(memory.cov_params()), rtol=RTOL, atol=1e-300,
    )
    assert on_dask.lam == pytest.approx(memory.lam, rel=RTOL, abs=1e-300)
    assert on_dask.lam_tuned == memory.lam_tuned and on_dask.df_resid == memory.df_resid


@pytest.mark.parametrize("model", ["ols", "logit"])
def test_gmm_synth_and_diagnostics_on_a_cluster_equal_the_in_memory_ones(client, model):
    real, proxy, synth, dproxy, dsynth = dataset(model)
    assert len(client.scheduler_info()["workers"]) == 2
    assert dproxy.npartitions >= 16 and dsynth.npartitions == dproxy.npartitions
    memory = smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, model=model).fit()
    on_dask = smf.gmm_synth(FORMULA, real=real, proxy=dproxy, synth=dsynth, model=model).fit()
    assert_same_fit(memory, on_dask)
    assert on_dask.nobs == memory.nobs == 1600
    assert on_dask.model.model_data.sources[1].n_rows == 3200
    assert_same_diagnostics(memory, on_dask)
    assert "Data sources" in str(on_dask.summary())


@pytest.mark.parametrize("model", ["ols", "logit"])
def test_fast_and_replicate_bootstraps_on_a_cluster_equal_the_in_memory_ones(client, model):
    # the unlabeled units enter through sums over the partitions, so the pool is drawn
    # from its normal limit; in memory the same rule (exact_pool_max=0) on the same seed
    # gives the same replicates. real's rows in another order than the sources' units:
    # the labeled units' draws still match one for one.
    from synthinfer.inference.replicate import fast_bootstrap, replicate_bootstrap

    real, proxy, synth, dproxy, dsynth = dataset(model)
    real = real.iloc[np.random.default_rng(3).permutation(len(real))]
    memory = smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, model=model).fit()
    on_dask = smf.gmm_synth(FORMULA, real=real, proxy=dproxy, synth=dsynth, model=model).fit()
    expected = fast_bootstrap(memory, n_boot=40, seed=11, exact_pool_max=0)
    got = on_dask.bootstrap(n_boot=40, seed=11, method="fast")
    assert got.method == expected.method and got.n_failed == expected.n_failed == 0
    np.testing.assert_allclose(got.draws.to_numpy(), expected.draws.to_numpy(), rtol=RTOL)
    np.testing.assert_allclose(got.studentized.to_numpy(), expected.studentized.to_numpy(), rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(np.asarray(got.studentizing_se), np.asarray(expected.studentizing_se), rtol=RTOL)
    # the normal limit's draws differ from the exact ones: the comparison can fail
    exact = memory.bootstrap(n_boot=40, seed=11, method="fast")
    assert not np.allclose(exact.draws.to_numpy(), got.draws.to_numpy(), rtol=1e-6)
    # the same pool, each replicate iterated to convergence
    expected = replicate_bootstrap(memory, n_boot=10, seed=4, exact_pool_max=0)
    got = on_dask.bootstrap(n_boot=10, seed=4, method="replicate")
    np.testing.assert_allclose(got.draws.to_numpy(), expected.draws.to_numpy(), rtol=RTOL)
    np.testing.assert_allclose(got.studentized.to_numpy(), expected.studentized.to_numpy(), rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("model", ["ols", "logit"])
def test_label_budget_equals_the_in_memory_one(model):
    # the planner reads the labeled units' scores and N only
    real, proxy, synth, dproxy, dsynth = dataset(model)
    memory = smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, model=model).fit()
    with dask.config.set(scheduler="threads"):
        on_dask = smf.gmm_synth(FORMULA, real=real, proxy=dproxy, synth=dsynth, model=model).fit().label_budget()
    expected = memory.label_budget()
    assert on_dask.n_units == expected.n_units == 1600 and on_dask.sources == expected.sources
    got, want = on_dask.table([50, 400, 1500]), expected.table([50, 400, 1500])
    assert list(got.columns) == ["human only", "proxy", "synth", "all sources"]
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=RTOL)
    # the sources change the prediction: equal tables are not equal by construction
    assert (got["all sources"] < got["human only"]).all()


@pytest.mark.parametrize("model", ["ols", "logit"])
def test_ppi_on_a_cluster_equals_the_in_memory_fit(client, model):
    # PPI++ with a proxy and its power-tuned lambda: the tuning's and the covariance's
    # sums over all units are passes over the partitions
    real, proxy, _, dproxy, _ = dataset(model)
    memory = smf.ppi(FORMULA, real=real, proxy=proxy, model=model).fit()
    on_dask = smf.ppi(FORMULA, real=real, proxy=dproxy, model=model).fit()
    assert 0 < memory.lam < 1 and memory.lam_tuned
    assert_same_ppi(memory, on_dask)
    assert "PPI++ lambda:" in str(on_dask.summary())


@pytest.mark.parametrize("model", ["ols", "logit"])
def test_ppi_on_a_synthetic_source_equals_the_in_memory_fit(model):
    # a synthetic source (k = 2 rows per unit) with a fixed lambda (the tuned one of
    # these data is 0 for the logit, the human-only fit), ppi-python's ddof and no correction
    real, _, synth, _, dsynth = dataset(model, npartitions=4)
    memory = smf.ppi(FORMULA, real=real, synth=synth, model=model, lam=0.6).fit(correction=None, ddof=1)
    with dask.config.set(scheduler="threads"):
        on_dask = smf.ppi(FORMULA, real=real, synth=dsynth, model=model, lam=0.6).fit(correction=None, ddof=1)
    assert_same_ppi(memory, on_dask)


@pytest.mark.parametrize("model", ["ols", "logit"])
def test_gmm_proxy_on_the_threaded_scheduler_equals_the_in_memory_fit(model):
    # dask's default scheduler, without a cluster
    real, proxy, _, dproxy, _ = dataset(model, npartitions=4)
    memory = smf.gmm_proxy(FORMULA, real=real, proxy=proxy, model=model).fit()
    with dask.config.set(scheduler="threads"):
        on_dask = smf.gmm_proxy(FORMULA, real=real, proxy=dproxy, model=model).fit()
    assert_same_fit(memory, on_dask)


def test_plain_fit_and_diagnostics_equal_the_in_memory_ones():
    # correction=None and no shrinkage: the plain two-step covariance, S^-1 weights
    real, proxy, synth, dproxy, dsynth = dataset("logit", npartitions=4)
    plain = {"correction": None, "shrinkage": None}
    memory = smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, model="logit").fit(**plain)
    with dask.config.set(scheduler="threads"):
        on_dask = smf.gmm_synth(FORMULA, real=real, proxy=dproxy, synth=dsynth, model="logit").fit(**plain)
        assert_same_fit(memory, on_dask)
        assert_same_diagnostics(memory, on_dask)


def test_synthetic_only_equals_the_in_memory_fit():
    # no proxy: the units are those the synthetic frame names; k = 3
    real, _, synth, _, dsynth = dataset("ols", n_units=600, n_labeled=100, k=3, npartitions=4)
    memory = smf.gmm_synth(FORMULA, real=real, synth={"s": synth}).fit()
    with dask.config.set(scheduler="threads"):
        on_dask = smf.gmm_synth(FORMULA, real=real, synth={"s": dsynth}).fit()
    assert_same_fit(memory, on_dask)


# -- no N-row array on the client --------------------------------------------------------
@pytest.mark.parametrize("model", ["ols", "logit"])
def test_a_numeric_formula_out_of_core_equals_the_in_memory_fit(model):
    # bare numeric columns: each partition's design is built without patsy, here at every
    # pass (persist off); the proxy's rows are its units, the synthetic ones (k = 2) are not
    real, proxy, synth, dproxy, dsynth = dataset(model, npartitions=4)
    memory = smf.gmm_synth("y ~ x1", real=real, proxy=proxy, synth=synth, model=model).fit()
    with dask.config.set({"scheduler": "threads", "synthinfer.persist": False}):
        on_dask_model = smf.gmm_synth("y ~ x1", real=real, proxy=dproxy, synth=dsynth, model=model)
        assert on_dask_model.model_data.spec.plain_columns() == ("y", [None, "x1"])
        assert_same_fit(memory, on_dask_model.fit())


def test_the_sources_step_one_iterations_share_their_passes():
    # solved together, two sources' Newton iterations cost the passes of the slower one,
    # and each source takes the steps it takes alone
    from synthinfer.distributed.reduction import PASSES

    real, _, _, dproxy, dsynth = dataset("logit", npartitions=4)

    def step_one(**sources):
        model = smf.gmm_synth(FORMULA, real=real, model="logit", **sources)
        before = PASSES["count"]
        start = model.fitstart()
        return PASSES["count"] - before, start

    with dask.config.set(scheduler="sync"):
        both, start = step_one(proxy=dproxy, synth=dsynth)
        proxy_passes, proxy_start = step_one(proxy=dproxy)
        synth_passes, synth_start = step_one(synth=dsynth)
    assert both == max(proxy_passes, synth_passes) >= 3
    p = len(proxy_start) // 2
    np.testing.assert_array_equal(start, np.concatenate([proxy_start, synth_start[p:]]))


def test_solving_together_raises_the_error_solving_in_order_would(monkeypatch):
    # in lockstep a later source may fail first; solved in order, the first one's error comes first
    from synthinfer.distributed import solve

    def steps(source, family, **options):
        for _ in range(source["fails_after"]):
            yield
        raise ValueError(source["name"])

    monkeypatch.setattr(solve, "_steps", steps)
    sources = [{"name": "first", "fails_after": 3}, {"name": "second", "fails_after": 1}, {"name": "third", "fails_after": 0}]
    with pytest.raises(ValueError, match="^first$"):
        solve.solve_together(sources, None, [{}, {}, {}])


def test_per_unit_arrays_are_refused_not_collected():
    real, _, _, dproxy, dsynth = dataset("ols", n_units=400, n_labeled=60, npartitions=4)
    with dask.config.set(scheduler="sync"):
        model = smf.gmm_synth(FORMULA, real=real, proxy=dproxy, synth=dsynth)
        source = model.model_data.sources[0]
        assert source.labeled.n_rows == 60 and source.n_rows == 400
        with pytest.raises(SpecificationError, match=names("'proxy'", "Dask frame", "not collected")):
            source.X  # noqa: B018
        blocks = model.moment_blocks(model.fitstart())
        with pytest.raises(SpecificationError, match="Dask"):
            blocks.full()
        with pytest.raises(SpecificationError, match=names("cluster", "Dask")):
            model.fit(cov_type="cluster", cov_kwds={"groups": "g"})
        # what reads every row in memory says so instead of collecting the rows
        res = model.fit(correction=None)
        with pytest.raises(SpecificationError, match=names("bootstrap", "refit", "Dask", "method='fast'")):
            res.bootstrap(n_boot=9, method="refit")



# -- alignment --------------------------------------------------------------------------
def test_sources_with_different_divisions_are_refused():
    real, proxy, synth = make_frames("ols", n_units=400, n_labeled=60)
    dproxy, _ = as_dask(proxy, synth)
    dsynth = dd.from_pandas(synth.sort_index(), npartitions=5, sort=True)
    with pytest.raises(SpecificationError, match=names("'proxy'", "'synth'", "different divisions", "repartition")):
        smf.gmm_synth(FORMULA, real=real, proxy=dproxy, synth=dsynth)


def test_unknown_divisions_are_refused():
    real, proxy, synth = make_frames("ols", n_units=400, n_labeled=60)
    dproxy = dd.from_pandas(proxy, npartitions=4).clear_divisions()
    with pytest.raises(SpecificationError, match=names("'proxy'", "unknown divisions")):
        smf.gmm_proxy(FORMULA, real=real, proxy=dproxy)


def test_divisions_that_do_not_describe_the_index_are_refused():
    real, proxy, synth = make_frames("ols", n_units=400, n_labeled=60)
    dproxy, dsynth = as_dask(proxy, synth, npartitions=4)
    # a partition whose rows fall outside its declared range (divisions lied about)
    wrong = list(dproxy.divisions)
    wrong[2] = wrong[1] + 3
    parts = [proxy.loc[(proxy.index >= lo) & (proxy.index < hi)] for lo, hi in zip(dproxy.divisions[:-1], dproxy.divisions[1:])]
    bad = dd.from_delayed([dask.delayed(p) for p in parts], meta=proxy.iloc[:0], divisions=tuple(wrong))
    with dask.config.set(scheduler="sync"), pytest.raises(
        SpecificationError, match=names("'proxy'", "outside", "divisions"),
    ):
        smf.gmm_proxy(FORMULA, real=real, proxy=bad)


def test_a_pandas_source_beside_a_dask_one_is_refused():
    real, proxy, synth = make_frames("ols", n_units=400, n_labeled=60)
    dproxy, _ = as_dask(proxy, synth)
    with pytest.raises(SpecificationError, match=names("'synth'", "pandas", "every one must be")):
        smf.gmm_synth(FORMULA, real=real, proxy=dproxy, synth=synth)


# -- bad input in a partition names the units ---------------------------------------------
@pytest.fixture
def small():
    real, proxy, synth = make_frames("logit", n_units=400, n_labeled=60)
    return real, proxy, synth


def fit_on_dask(real, proxy, synth, model="logit", formula=FORMULA):
    dproxy, dsynth = as_dask(proxy, synth, npartitions=4)
    with dask.config.set(scheduler="sync"):
        return smf.gmm_synth(formula, real=real, proxy=dproxy, synth=dsynth, model=model)


def test_missing_value_in_a_partition_names_the_unit_and_partition(small):
    real, proxy, synth = small
    unit = proxy.index[300]
    proxy.loc[unit, "x1"] = np.nan
    part = partition_of(as_dask(proxy, synth, npartitions=4)[0], unit)
    with pytest.raises(SpecificationError, match=names("'proxy'", "'x1'", "missing values", f"{unit}", f"partition {part}")):
        fit_on_dask(real, proxy, synth)


def test_outcome_outside_the_support_names_the_unit(small):
    real, proxy, synth = small
    unit = synth.index[123]
    synth.loc[unit, "y"] = 2.0
    with pytest.raises(SpecificationError, match=names("'synth'", "probability in [0, 1]", f"{unit}")):
        fit_on_dask(real, proxy, synth)


def test_duplicate_proxy_id_names_the_unit(small):
    real, proxy, synth = small
    unit = proxy.index[77]
    proxy = pd.concat([proxy, proxy.loc[[unit]]]).sort_index()
    with pytest.raises(SpecificationError, match=names("'proxy'", "unique unit ids", f"{unit}")):
        fit_on_dask(real, proxy, synth)


def test_synthetic_row_of_an_unknown_unit_is_named(small):
    real, proxy, synth = small
    stray = synth.iloc[[10]].copy()
    stray.index = pd.Index([proxy.index[10] + 1], name="unit")  # between two unit ids
    synth = pd.concat([synth, stray]).sort_index()
    with pytest.raises(SpecificationError, match=names("'synth'", "name no unit", f"{proxy.index[10] + 1}")):
        fit_on_dask(real, proxy, synth)


def test_unit_without_a_synthetic_sample_is_named(small):
    real, proxy, synth = small
    unit = proxy.index[200]
    synth = synth.drop(index=unit)
    with pytest.raises(SpecificationError, match=names("'synth'", "no sample", f"{unit}")):
        fit_on_dask(real, proxy, synth)


def test_labeled_unit_missing_from_the_proxy_is_named(small):
    real, proxy, synth = small
    unit = real.index[5]
    proxy, synth = proxy.drop(index=unit), synth.drop(index=unit)
    with pytest.raises(SpecificationError, match=names("real (labeled) unit", f"{unit}", "'proxy'")):
        fit_on_dask(real, proxy, synth)


def test_level_outside_the_declared_levels_names_level_and_units(small):
    real, proxy, synth = small
    with pytest.raises(SpecificationError, match=names("['c']", "'proxy'", "units")):
        fit_on_dask(real, proxy, synth, formula="y ~ x1 + C(g, levels=['a', 'b'])")


def test_stateful_transforms_are_refused_with_a_reason(small):
    real, proxy, synth = small
    with pytest.raises(SpecificationError, match=names("center", "stateful", "not supported yet")):
        fit_on_dask(real, proxy, synth, formula="y ~ center(x1)")


def test_the_core_imports_without_dask():
    # in a subprocess: a fresh import of the package in this process would leave
    # later tests holding objects of a second copy of its classes (pickling and
    # pytest.raises then fail), which putting sys.modules back does not undo
    code = (
        "import re, sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('dask', 'distributed'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import synthinfer, synthinfer.api, synthinfer.gmm\n"
        "assert not any(m.split('.')[0] in ('dask', 'distributed') for m in sys.modules)\n"
        "from synthinfer.distributed import require_dask\n"
        "try:\n"
        "    require_dask()\n"
        "except ImportError as error:\n"
        "    assert 'synthinfer[dask]' in str(error), str(error)\n"
        "else:\n"
        "    raise AssertionError('require_dask() did not raise with dask hidden')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("model", ["ols", "logit"])
def test_naive_pooling_equals_the_in_memory_fit(model):
    # human rows, the proxy rows of unlabeled units and every synthetic row, pooled
    real, proxy, synth, dproxy, dsynth = dataset(model, n_units=600, n_labeled=100, npartitions=4)
    memory = smf.naive(FORMULA, real=real, proxy=proxy, synth=synth, model=model).fit()
    with dask.config.set(scheduler="threads"):
        on_dask = smf.naive(FORMULA, real=real, proxy=dproxy, synth=dsynth, model=model).fit()
    np.testing.assert_allclose(np.asarray(on_dask.params), np.asarray(memory.params), rtol=RTOL)
    np.testing.assert_allclose(np.asarray(on_dask.bse), np.asarray(memory.bse), rtol=RTOL)
    assert on_dask.n_rows == memory.n_rows == 100 + 500 + 1200


# -- survey weights ------------------------------------------------------------------------
@pytest.mark.parametrize("estimator", ["gmm_synth", "gmm_proxy", "naive", "ppi"])
def test_survey_weights_are_refused_by_every_estimator(estimator):
    # every estimator that takes weights= refuses them on Dask sources, as a column
    # name or as a Series by unit id, before any fit
    real, proxy, _, dproxy, _ = dataset("ols", n_units=400, n_labeled=60, npartitions=4)
    weights = pd.Series(np.linspace(0.5, 2.0, len(proxy)), index=proxy.index)
    fit = getattr(smf, estimator)
    with dask.config.set(scheduler="sync"):
        for given in ("x1", weights):
            with pytest.raises(SpecificationError, match=names("weights=", "Dask sources", "fit in memory")):
                fit(FORMULA, real=real, proxy=dproxy, weights=given)


def test_ppi_refuses_what_it_cannot_do_on_dask_sources():
    real, _, _, dproxy, _ = dataset("ols", n_units=400, n_labeled=60, npartitions=4)
    prob = pd.Series(0.2, index=real.index)
    with dask.config.set(scheduler="sync"):
        with pytest.raises(SpecificationError, match=names("labeling_prob", "Dask", "fit in memory")):
            smf.ppi(FORMULA, real=real, proxy=dproxy, labeling_prob=prob)
        with pytest.raises(SpecificationError, match=names("plain quantile", "Dask", "fit in memory")):
            smf.ppi("y ~ 1", real=real, proxy=dproxy, model="quantile").fit()
        with pytest.raises(SpecificationError, match=names("tuning='crossfit'", "Dask", "in-memory frames")):
            smf.ppi(FORMULA, real=real, proxy=dproxy, tuning="crossfit")


# dask's own Parquet reader calls pandas' deprecated inplace= (not ours to fix)
@pytest.mark.filterwarnings("ignore:The inplace keyword")
def test_a_path_or_glob_of_parquet_files_is_read_lazily_and_equals_the_in_memory_fit(tmp_path):
    pytest.importorskip("pyarrow")
    real, proxy, synth, dproxy, dsynth = dataset("logit")
    with dask.config.set(scheduler="sync"):
        dproxy.to_parquet(tmp_path / "proxy")
        dsynth.to_parquet(tmp_path / "synth")
        memory = smf.gmm_synth(FORMULA, real=real, proxy=proxy, synth=synth, model="logit").fit()
        from_files = smf.gmm_synth(
            FORMULA, real=real, proxy=tmp_path / "proxy", synth=str(tmp_path / "synth" / "*.parquet"), model="logit",
        )
        assert_same_fit(memory, from_files.fit())
        # files without the unit id as their index: no divisions to align on, said so
        proxy.reset_index().to_parquet(tmp_path / "flat.parquet")
        with pytest.raises(SpecificationError, match=names("proxy", "flat.parquet", "divisions")):
            smf.gmm_synth(FORMULA, real=real, proxy=str(tmp_path / "flat.parquet"), model="logit")
        with pytest.raises(SpecificationError, match=names("proxy", "could not read")):
            smf.gmm_synth(FORMULA, real=real, proxy=str(tmp_path / "nothing-here-*.parquet"), model="logit")
