"""The estimating-function families against independent truths.

Human-only fits equal statsmodels (Probit, GLM Binomial for the fractional
logit, QuantReg's point estimate, the sample mean); a user psi that writes
the logit by hand reproduces the built-in logit with auxiliary sources; the
analytic G of every family equals a numerical derivative of gbar.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.special
import statsmodels.api as sm
from statsmodels.regression.quantile_regression import QuantReg
from statsmodels.tools.numdiff import approx_fprime

import synthinfer.api as smf
from synthinfer.exceptions import SpecificationError
from synthinfer.families import Design, EstimatingEquation, Quantile, get_family


def _frames(kind: str, n_units: int = 1500, n_labeled: int = 300, k: int = 2, seed: int = 0):
    """Units with x1 (normal) and x2 (binary); human outcome of the given kind; a
    proxy that errs and k synthetic samples per unit that err more."""
    rng = np.random.default_rng(seed)
    ids = pd.Index([f"u{i:05d}" for i in range(n_units)], name="unit")
    x1, x2 = rng.normal(size=n_units), rng.binomial(1, 0.4, n_units).astype(float)
    lin = 0.3 + 0.8 * x1 - 0.6 * x2
    if kind == "probit":
        y = (lin + rng.normal(size=n_units) > 0).astype(float)
    elif kind in ("logit", "fractional"):
        p = scipy.special.expit(lin)
        y = rng.binomial(1, p).astype(float) if kind == "logit" else rng.beta(4 * p + 0.1, 4 * (1 - p) + 0.1)
    else:  # continuous, heteroskedastic
        y = lin + (1 + 0.5 * np.abs(x1)) * rng.standard_t(5, size=n_units)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "y": y}, index=ids)
    labeled = rng.choice(n_units, n_labeled, replace=False)
    real = frame.iloc[labeled]

    def noisy(values, flip):
        if kind in ("probit", "logit"):
            return np.where(rng.random(len(values)) < flip, 1 - values, values)
        if kind == "fractional":
            return np.clip(values + rng.normal(0, flip, len(values)), 0, 1)
        return values + rng.normal(0, 3 * flip, len(values))

    proxy = frame.assign(y=noisy(y, 0.15))
    synth = pd.concat([frame.assign(y=noisy(y, 0.3)) for _ in range(k)]).sort_index(kind="stable")
    return real, proxy, synth


# -- human-only fits equal statsmodels -------------------------------------------------
def test_probit_human_only_equals_statsmodels_probit_hc0() -> None:
    real, _, _ = _frames("probit")
    ours = smf.classical("y ~ x1 + x2", real=real, model="probit").fit(correction=None)
    theirs = sm.Probit(real["y"], sm.add_constant(real[["x1", "x2"]])).fit(disp=0, cov_type="HC0", tol=1e-12)
    np.testing.assert_allclose(ours.params.to_numpy(), theirs.params.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours.bse.to_numpy(), theirs.bse.to_numpy(), rtol=1e-6)


def test_fractional_logit_human_only_equals_glm_binomial_hc0() -> None:
    real, _, _ = _frames("fractional")
    assert ((real["y"] > 0) & (real["y"] < 1)).all()
    ours = smf.classical("y ~ x1 + x2", real=real, model="fractional_logit").fit(correction=None)
    theirs = sm.GLM(real["y"], sm.add_constant(real[["x1", "x2"]]), family=sm.families.Binomial()).fit(
        cov_type="HC0", tol=1e-12
    )
    np.testing.assert_allclose(ours.params.to_numpy(), theirs.params.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours.bse.to_numpy(), theirs.bse.to_numpy(), rtol=1e-6)


def test_mean_human_only_is_the_sample_mean_with_its_standard_error() -> None:
    real, _, _ = _frames("ols")
    res = smf.classical("y ~ 1", real=real, model="mean").fit(correction=None)
    y = real["y"].to_numpy()
    np.testing.assert_allclose(res.params["Intercept"], y.mean(), rtol=1e-12)
    np.testing.assert_allclose(res.bse["Intercept"], y.std(ddof=0) / np.sqrt(len(y)), rtol=1e-10)
    with pytest.raises(SpecificationError, match="y ~ 1"):
        smf.classical("y ~ x1", real=real, model="mean")


@pytest.mark.parametrize("q", [0.5, 0.9])
def test_quantile_human_only_point_estimate_equals_quantreg(q: float) -> None:
    real, _, _ = _frames("ols", n_labeled=400)
    # continuous covariates only: the solution is unique (with a binary x2 the
    # median of a group can be any point between its two middle outcomes)
    ours = smf.classical("y ~ x1", real=real, model=Quantile(q)).fit(correction=None)
    theirs = QuantReg(real["y"], sm.add_constant(real[["x1"]])).fit(q=q, p_tol=1e-12, max_iter=5000)
    # QuantReg's IRLS stops about 1e-7 from the vertex the LP finds exactly
    np.testing.assert_allclose(ours.params.to_numpy(), theirs.params.to_numpy(), rtol=1e-6, atol=1e-6)
    # with x2: the LP reaches the exact check-loss minimum, no worse than QuantReg's IRLS
    family = get_family(Quantile(q))
    X, y = sm.add_constant(real[["x1", "x2"]]).to_numpy(), real["y"].to_numpy()
    ours = smf.classical("y ~ x1 + x2", real=real, model=Quantile(q)).fit(correction=None)
    theirs = QuantReg(real["y"], X).fit(q=q, p_tol=1e-12, max_iter=5000)
    best = family.check_loss(y - X @ ours.params.to_numpy())
    assert best <= family.check_loss(y - X @ theirs.params.to_numpy()) + 1e-9
    rng = np.random.default_rng(1)
    for _ in range(50):
        other = ours.params.to_numpy() + rng.normal(0, 1e-3, 3)
        assert family.check_loss(y - X @ other) >= best - 1e-9


def test_plain_quantile_is_a_sample_quantile() -> None:
    real, _, _ = _frames("ols", n_labeled=301)
    res = smf.classical("y ~ 1", real=real, model=Quantile(0.5)).fit(correction=None)
    np.testing.assert_allclose(res.params["Intercept"], np.median(real["y"]), rtol=1e-9)


def _powell_bse(X: np.ndarray, y: np.ndarray, params: np.ndarray, q: float, h: float) -> np.ndarray:
    """Powell's kernel sandwich written out: bread sum K(e/h)/h x x' (Epanechnikov)
    over the rows the fit does not interpolate, meat the centered score cross
    product, as the GMM's S."""
    e = y - X @ params
    vertex = np.abs(e) <= 1e-12 * (1 + np.abs(y).max())
    assert 0 < vertex.sum() <= X.shape[1]  # the LP's vertex: one exact zero per parameter
    u = e / h
    density = np.where(np.abs(u) <= 1, 0.75 * (1 - u**2), 0.0) / h
    density = np.where(vertex, 0.0, density) * len(e) / (len(e) - vertex.sum())
    bread = (X * density[:, None]).T @ X
    psi = X * (q - (e < 0))[:, None]
    psi = psi - psi.mean(axis=0)
    inv = np.linalg.inv(bread)
    return np.sqrt(np.diag(inv @ (psi.T @ psi) @ inv))


@pytest.mark.parametrize("q", [0.5, 0.9])
def test_quantile_bandwidth_and_sandwich_are_quantreg_s(q: float) -> None:
    real, _, _ = _frames("ols", n_labeled=401)
    y = real["y"].to_numpy()
    # y ~ 1: the same sandwich as QuantReg's vcov="robust" (one density for all rows)
    ours = smf.classical("y ~ 1", real=real, model=Quantile(q)).fit(correction=None)
    theirs = QuantReg(y, np.ones((len(y), 1))).fit(q=q, p_tol=1e-12, max_iter=5000)
    np.testing.assert_allclose(ours.params.to_numpy(), theirs.params, rtol=1e-9)
    e = y - ours.params.to_numpy()[0]
    assert Quantile(q).bandwidth(y, e) == pytest.approx(theirs.bandwidth, rel=1e-12)
    # QuantReg's density counts the row the fit interpolates (its residual is exactly
    # zero, K(0)/h); ours leaves it out, n / (n - 1) times the others' mean: with that
    # density put back, the GMM's centered S (the check-loss vertex leaves a mean score
    # of ~1/n, and the zero residual counts as not below the quantile) is ~1e-5 apart
    u = e / theirs.bandwidth
    kernel = np.where(np.abs(u) <= 1, 0.75 * (1 - u**2), 0.0) / theirs.bandwidth
    vertex = np.abs(e) <= 1e-12 * (1 + np.abs(y).max())
    assert vertex.sum() == 1
    theirs_density, ours_density = kernel.mean(), kernel[~vertex].mean()
    assert ours_density < theirs_density
    np.testing.assert_allclose(ours.bse.to_numpy() * ours_density / theirs_density, theirs.bse, rtol=1e-4)
    np.testing.assert_allclose(
        ours.bse.to_numpy(), _powell_bse(np.ones((len(y), 1)), y, ours.params.to_numpy(), q, theirs.bandwidth),
        rtol=1e-10,
    )
    # with a covariate: QuantReg's bandwidth (its residuals' IQR; its IRLS stops ~1e-7 from
    # the LP's vertex), and Powell's sandwich, a density per row, written out with it
    X = sm.add_constant(real[["x1"]]).to_numpy()
    ours = smf.classical("y ~ x1", real=real, model=Quantile(q)).fit(correction=None)
    theirs = QuantReg(y, X).fit(q=q, p_tol=1e-12, max_iter=5000)
    params = ours.params.to_numpy()
    assert Quantile(q).bandwidth(y, y - X @ params) == pytest.approx(theirs.bandwidth, rel=1e-5)
    h = Quantile(q).bandwidth(y, y - X @ params)
    np.testing.assert_allclose(ours.bse.to_numpy(), _powell_bse(X, y, params, q, h), rtol=1e-10)


def test_quantile_density_leaves_out_the_rows_the_fit_interpolates() -> None:
    """The p rows of the check-loss vertex (exact zero residuals) are not draws from
    the residual density: they get no kernel weight, the others n / (n - p) times
    theirs. Ties of the outcome (more zeros than parameters) are kept."""
    real, _, _ = _frames("ols", n_labeled=200)
    X, y = sm.add_constant(real[["x1", "x2"]]).to_numpy(), real["y"].to_numpy()
    family = Quantile(0.9)
    params = smf.classical("y ~ x1 + x2", real=real, model=family).fit(correction=None).params.to_numpy()
    e = y - X @ params
    vertex = np.abs(e) <= 1e-12 * (1 + np.abs(y).max())
    assert vertex.sum() == 3
    counted = family.density_weights(y, e)  # every row, as QuantReg's density
    left_out = family.density_weights(y, e, n_params=3)
    assert np.all(left_out[vertex] == 0) and np.all(counted[vertex] > 0)
    np.testing.assert_allclose(left_out[~vertex], counted[~vertex] * 200 / 197, rtol=1e-14)
    # the target's Jacobian in a fit is the one without the vertex
    res = smf.classical("y ~ x1 + x2", real=real, model=family).fit(correction=None)
    np.testing.assert_allclose(res._results.jacobian * res.model.nobs, -(X * left_out[:, None]).T @ X, rtol=1e-12)
    # ties: five outcomes at the quantile are data, not a vertex of three parameters
    tied = np.r_[np.zeros(5), np.linspace(1, 2, 195)]
    np.testing.assert_array_equal(family.density_weights(tied, tied, n_params=3), family.density_weights(tied, tied))


def test_quantile_kernel_sandwich_is_close_to_statsmodels_robust_in_a_large_iid_sample() -> None:
    """Powell's kernel sandwich and QuantReg's robust covariance estimate the same
    asymptotic variance; with homoskedastic errors and n = 5000 they agree to a few percent."""
    rng = np.random.default_rng(5)
    n = 5000
    x = rng.normal(size=n)
    frame = pd.DataFrame({"x": x, "y": 1 + 0.5 * x + rng.normal(size=n)}, index=pd.RangeIndex(n, name="id"))
    ours = smf.classical("y ~ x", real=frame, model=Quantile(0.5)).fit(correction=None)
    theirs = QuantReg(frame["y"], sm.add_constant(frame[["x"]])).fit(q=0.5, vcov="robust")
    np.testing.assert_allclose(ours.bse.to_numpy(), theirs.bse.to_numpy(), rtol=0.05)
    # and both are near the truth sqrt(pi/2)/sqrt(n) for the intercept of a median with N(0,1) errors
    np.testing.assert_allclose(ours.bse["Intercept"], np.sqrt(np.pi / 2 / n), rtol=0.06)


# -- auxiliary sources --------------------------------------------------------------------
def test_logit_accepts_soft_auxiliary_labels_but_not_a_soft_human_label() -> None:
    real, proxy, _ = _frames("logit")
    soft = proxy.assign(y=np.clip(proxy["y"] * 0.8 + 0.1, 0, 1))
    res = smf.gmm_proxy("y ~ x1 + x2", real=real, proxy={"hard": proxy, "soft": soft}, model="logit").fit()
    assert res.converged and np.all(np.isfinite(res.bse))
    with pytest.raises(SpecificationError, match="frame 'real'.*0 or 1"):
        smf.gmm_proxy("y ~ x1 + x2", real=real.assign(y=0.5), proxy=soft, model="logit")
    with pytest.raises(SpecificationError, match="frame 'proxy'.*probability in \\[0, 1\\]"):
        smf.gmm_proxy("y ~ x1 + x2", real=real, proxy=proxy.assign(y=proxy["y"] * 2), model="logit")


@pytest.mark.parametrize("model", ["probit", "fractional_logit", "logit", Quantile(0.5)])
def test_analytic_jacobian_matches_numerical(model) -> None:
    kind = {"probit": "probit", "fractional_logit": "fractional", "logit": "logit"}.get(model, "ols") if isinstance(model, str) else "ols"
    real, proxy, synth = _frames(kind, n_units=600, n_labeled=150)
    mod = smf.gmm_synth("y ~ x1 + x2", real=real, proxy=proxy, synth=synth, model=model)
    res = mod.fit()
    if isinstance(model, Quantile):
        # a step function: compare with a smoothed derivative over the kernel's width
        return
    numerical = approx_fprime(res.params_full, mod.momcond_mean, centered=True)
    np.testing.assert_allclose(mod.gradient_momcond(res.params_full), numerical, rtol=1e-5, atol=1e-8)


def _hand_logit(with_jacobian: bool) -> EstimatingEquation:
    def psi(b: np.ndarray, d: Design) -> np.ndarray:
        return d.X * (d.y - scipy.special.expit(d.X @ b))[:, None]

    def jacobian(b: np.ndarray, d: Design) -> np.ndarray:
        mu = scipy.special.expit(d.X @ b)
        return -(mu * (1 - mu))[:, None, None] * d.X[:, :, None] * d.X[:, None, :]

    return EstimatingEquation(
        psi, ["Intercept", "x1", "x2"], jacobian if with_jacobian else None, label="hand logit"
    )


@pytest.mark.parametrize("with_jacobian", [True, False])
def test_user_psi_logit_reproduces_the_builtin_logit(with_jacobian: bool) -> None:
    real, proxy, synth = _frames("logit", n_units=800, n_labeled=200, k=3)
    builtin = smf.gmm_synth("y ~ x1 + x2", real=real, proxy=proxy, synth=synth, model="logit").fit()
    user = smf.gmm_synth("y ~ x1 + x2", real=real, proxy=proxy, synth=synth, model=_hand_logit(with_jacobian)).fit()
    tol = 1e-8 if with_jacobian else 1e-6
    np.testing.assert_allclose(user.params.to_numpy(), builtin.params.to_numpy(), rtol=tol)
    np.testing.assert_allclose(user.bse.to_numpy(), builtin.bse.to_numpy(), rtol=tol)
    np.testing.assert_allclose(user.jtest()[0], builtin.jtest()[0], rtol=tol * 100)
    assert list(user.params.index) == ["Intercept", "x1", "x2"]
    text = str(user.summary())
    assert "hand logit" in text
    assert ("analytic" if with_jacobian else "numerical") in text
    wind_user = smf.gmm_synth("y ~ x1 + x2", real=real, proxy=proxy, model=_hand_logit(with_jacobian)).fit(correction="windmeijer")
    wind = smf.gmm_synth("y ~ x1 + x2", real=real, proxy=proxy, model="logit").fit(correction="windmeijer")
    np.testing.assert_allclose(wind_user.bse.to_numpy(), wind.bse.to_numpy(), rtol=tol * 100)


def test_user_psi_with_its_own_parameter_names() -> None:
    """A mean written by hand, named 'mu': the parameters are not the design columns."""
    real, proxy, _ = _frames("ols")
    family = EstimatingEquation(lambda b, d: (d.y - b[0])[:, None], ["mu"])
    res = smf.gmm_proxy("y ~ 1", real=real, proxy=proxy, model=family).fit()
    # the built-in mean has a hat matrix (the default's leverage adjustment), the
    # hand-written one does not: they agree without it
    builtin = smf.gmm_proxy("y ~ 1", real=real, proxy=proxy, model="mean").fit(leverage=None)
    assert list(res.params.index) == ["mu"]
    np.testing.assert_allclose(res.params.to_numpy(), builtin.params.to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(res.bse.to_numpy(), builtin.bse.to_numpy(), rtol=1e-6)
    assert res.wald_test("mu = 0", scalar=True).pvalue < 1


# -- bad input ------------------------------------------------------------------------------
def test_user_psi_with_the_wrong_shape_or_nan_is_refused() -> None:
    real, proxy, _ = _frames("ols")
    before = real.copy()
    wrong = EstimatingEquation(lambda b, d: np.ones((len(d), 2)), ["mu"])
    with pytest.raises(SpecificationError, match=r"shape \(rows, k\)"):
        smf.gmm_proxy("y ~ 1", real=real, proxy=proxy, model=wrong).fit()
    nan = EstimatingEquation(lambda b, d: np.where(d.y > 2, np.nan, d.y - b[0])[:, None], ["mu"])
    with pytest.raises(SpecificationError, match="NaN or infinite"):
        smf.gmm_proxy("y ~ 1", real=real, proxy=proxy, model=nan).fit()
    pd.testing.assert_frame_equal(real, before)


@pytest.mark.parametrize("q", [0, 1, -0.5, 1.5, "half"])
def test_a_quantile_outside_the_unit_interval_is_refused(q) -> None:
    with pytest.raises(SpecificationError, match=r"quantile q must be a number in \(0, 1\)"):
        Quantile(q)


@pytest.mark.parametrize("model", ["probit", "fractional_logit"])
def test_outcomes_outside_the_support_are_named(model: str) -> None:
    real, proxy, _ = _frames("ols")
    with pytest.raises(SpecificationError, match="frame 'real'"):
        smf.gmm_proxy("y ~ x1", real=real, proxy=proxy, model=model)


def test_unknown_model_lists_the_families() -> None:
    real, proxy, _ = _frames("ols")
    with pytest.raises(ValueError, match="probit"):
        smf.gmm_proxy("y ~ x1", real=real, proxy=proxy, model="tobit")


# -- multinomial logit --------------------------------------------------------------------
def _stance_frames(n_units: int = 1500, n_labeled: int = 400, seed: int = 2):
    rng = np.random.default_rng(seed)
    ids = pd.Index([f"t{i:05d}" for i in range(n_units)], name="unit")
    x1, x2 = rng.normal(size=n_units), rng.binomial(1, 0.5, n_units).astype(float)
    lin = np.column_stack([np.zeros(n_units), 0.2 + 0.9 * x1, -0.3 - 0.5 * x1 + 0.8 * x2])
    prob = np.exp(lin) / np.exp(lin).sum(axis=1, keepdims=True)
    classes = np.array(["against", "favour", "neutral"])
    codes = (rng.random(n_units)[:, None] > np.cumsum(prob, axis=1)).sum(axis=1)
    stance = classes[codes]
    frame = pd.DataFrame({"x1": x1, "x2": x2, "stance": stance}, index=ids)
    real = frame.iloc[rng.choice(n_units, n_labeled, replace=False)]
    wrong = rng.random(n_units) < 0.25
    proxy = frame.assign(stance=np.where(wrong, rng.choice(classes, n_units), stance))
    return real, proxy


def test_mnlogit_human_only_equals_statsmodels_mnlogit_hc0() -> None:
    real, _ = _stance_frames()
    before = real.copy()
    ours = smf.classical("stance ~ x1 + x2", real=real, model="mnlogit").fit(correction=None)
    codes = real["stance"].map({"against": 0, "favour": 1, "neutral": 2})
    theirs = sm.MNLogit(codes, sm.add_constant(real[["x1", "x2"]])).fit(disp=0, cov_type="HC0", method="newton", tol=1e-12)
    # statsmodels: a (p, K-1) table; ours: class by class
    np.testing.assert_allclose(ours.params.to_numpy(), theirs.params.to_numpy().T.ravel(), rtol=1e-6)
    np.testing.assert_allclose(ours.bse.to_numpy(), theirs.bse.to_numpy().T.ravel(), rtol=1e-6)
    assert list(ours.params.index[:3]) == ["favour:Intercept", "favour:x1", "favour:x2"]
    pd.testing.assert_frame_equal(real, before)
    # a test across equations
    assert 0 <= ours.wald_test("favour:x1 = neutral:x1", scalar=True).pvalue <= 1


def _coefficient_blocks(text: str) -> dict[str, list[list[float]]]:
    """The printed coefficient blocks of a summary: header label -> rows of numbers."""
    blocks: dict[str, list[list[float]]] = {}
    current = None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 1 and fields[1] == "coef":
            current = blocks.setdefault(fields[0], [])
        elif current is not None and len(fields) == 7:
            try:
                current.append([float(v) for v in fields[1:]])
            except ValueError:
                current = None
        elif line.startswith("="):
            current = None
    return blocks


def test_mnlogit_summary_has_one_block_per_class_with_its_params_and_bse() -> None:
    real, proxy = _stance_frames()
    for res in (
        smf.gmm_proxy("stance ~ x1 + x2", real=real, proxy=proxy, model="mnlogit").fit(),
        smf.classical("stance ~ x1 + x2", real=real, model="mnlogit").fit(correction=None),
    ):
        blocks = _coefficient_blocks(res.summary().as_text())
        assert list(blocks) == ["stance=favour", "stance=neutral"]
        for label, block in blocks.items():
            cls = label.split("=")[1]
            names = [f"{cls}:{c}" for c in ("Intercept", "x1", "x2")]
            printed = np.array(block)
            # the summary prints 4 decimals for coef and 3 for the standard error
            np.testing.assert_allclose(printed[:, 0], res.params[names], atol=5e-5)
            np.testing.assert_allclose(printed[:, 1], res.bse[names], atol=5e-4)
            np.testing.assert_allclose(printed[:, 4:], res.conf_int().loc[names], atol=5e-4)
    # the human-only blocks print the numbers of statsmodels' MNLogit summary (HC0)
    codes = real["stance"].map({"against": 0, "favour": 1, "neutral": 2}).rename("stance")
    theirs = sm.MNLogit(codes, sm.add_constant(real[["x1", "x2"]])).fit(disp=0, cov_type="HC0", method="newton", tol=1e-12)
    their_blocks = _coefficient_blocks(theirs.summary().as_text())
    assert list(their_blocks) == ["stance=1", "stance=2"]
    ours = blocks  # the classical fit, the last of the loop
    for mine, their in zip(ours.values(), their_blocks.values()):
        np.testing.assert_array_equal(np.array(mine)[:, [0, 1, 4, 5]], np.array(their)[:, [0, 1, 4, 5]])


def test_mnlogit_with_a_proxy_source_and_a_chosen_reference() -> None:
    from synthinfer.families import MNLogit

    real, proxy = _stance_frames()
    res = smf.gmm_proxy("stance ~ x1 + x2", real=real, proxy=proxy, model=MNLogit(reference="neutral")).fit()
    assert res.converged
    assert list(res.params.index[:3]) == ["against:Intercept", "against:x1", "against:x2"]
    human = smf.classical("stance ~ x1 + x2", real=real, model=MNLogit(reference="neutral")).fit()
    # a proxy right 75% of the time carries information: smaller standard errors
    assert np.all(res.bse.to_numpy() < human.bse.to_numpy())
    numerical = approx_fprime(res.params_full, res.model.momcond_mean, centered=True)
    np.testing.assert_allclose(res.model.gradient_momcond(res.params_full), numerical, rtol=1e-5, atol=1e-8)


def test_mnlogit_refuses_a_class_missing_from_the_labeled_data() -> None:
    from synthinfer.families import MNLogit

    real, proxy = _stance_frames()
    real = real[real["stance"] != "neutral"]
    with pytest.raises(SpecificationError, match="no unit of class.*neutral"):
        smf.gmm_proxy("stance ~ x1 + x2", real=real, proxy=proxy, model="mnlogit")
    with pytest.raises(SpecificationError, match="not among the declared classes"):
        smf.gmm_proxy("stance ~ x1 + x2", real=real, proxy=proxy, model=MNLogit(classes=["against", "favour"]))


# -- negative binomial ----------------------------------------------------------------------
def test_negbin_human_only_equals_statsmodels_negativebinomial() -> None:
    rng = np.random.default_rng(4)
    n = 600
    x1 = rng.normal(size=n)
    mu = np.exp(0.5 + 0.4 * x1)
    y = rng.negative_binomial(1 / 0.7, 1 / (1 + 0.7 * mu))
    real = pd.DataFrame({"x1": x1, "y": y.astype(float)}, index=pd.RangeIndex(n, name="id"))
    ours = smf.classical("y ~ x1", real=real, model="negbin").fit(correction=None)
    theirs = sm.NegativeBinomial(real["y"], sm.add_constant(real[["x1"]]), loglike_method="nb2").fit(
        disp=0, method="newton", tol=1e-12, maxiter=200
    )
    np.testing.assert_allclose(ours.params.to_numpy(), theirs.params.to_numpy(), rtol=1e-6)
    # HC0 sandwich from statsmodels' own score and Hessian in (b, alpha)
    params = theirs.params.to_numpy()
    score = theirs.model.score_obs(params)
    hessian = theirs.model.hessian(params)
    bread = np.linalg.inv(hessian)
    cov = bread @ (score.T @ score) @ bread
    np.testing.assert_allclose(ours.bse.to_numpy(), np.sqrt(np.diag(cov)), rtol=1e-5)
    assert list(ours.params.index) == ["Intercept", "x1", "alpha"]


# -- PPI++ for the mean ---------------------------------------------------------------------
@pytest.mark.parametrize("lam", ["auto", 0.5, 1.0])
def test_ppi_mean_equals_ppi_python_ppi_mean_ci(lam) -> None:
    """ppi-python's mean interval uses np.std (ddof = 0), our default; its auto
    lambda is tuned once at the lambda = 1 estimate, and for the mean a re-tune at
    the tuned estimate gives the same lambda (the tuning rule is shift-invariant)."""
    from ppi_py import ppi_mean_ci, ppi_mean_pointestimate

    real, proxy, _ = _frames("ols", n_units=3000, n_labeled=250, seed=8)
    res = smf.ppi("y ~ 1", real=real, proxy=proxy, model="mean", lam=lam).fit(correction=None)
    Y = real["y"].to_numpy()
    Yhat = proxy.loc[real.index, "y"].to_numpy()
    Yhat_unlabeled = proxy.drop(real.index)["y"].to_numpy()
    their_lam = None if lam == "auto" else lam
    lower, upper = ppi_mean_ci(Y, Yhat, Yhat_unlabeled, alpha=0.05, lam=their_lam)
    point = ppi_mean_pointestimate(Y, Yhat, Yhat_unlabeled, lam=res.lam)
    np.testing.assert_allclose(res.params["Intercept"], np.ravel(point)[0], rtol=1e-10)
    np.testing.assert_allclose(res.conf_int(alpha=0.05).to_numpy().ravel(), [np.ravel(lower)[0], np.ravel(upper)[0]], rtol=1e-9)


def test_ppi_refuses_a_family_whose_rectified_loss_it_cannot_solve() -> None:
    real, proxy, _ = _frames("ols")
    with pytest.raises(SpecificationError, match=r"plain quantile \('y ~ 1'"):
        smf.ppi("y ~ x1", real=real, proxy=proxy, model=Quantile(0.5))
    with pytest.raises(SpecificationError, match="quantile_ci is the interval of a plain quantile"):
        smf.ppi("y ~ x1", real=real, proxy=proxy, model="ols").quantile_ci()


# -- PPI++ for a plain quantile -------------------------------------------------------------
def _quantile_ppi_arrays(real, proxy):
    Y = real["y"].to_numpy()
    return Y, proxy.loc[real.index, "y"].to_numpy(), proxy.drop(real.index)["y"].to_numpy()


@pytest.mark.parametrize("q", [0.5, 0.9])
def test_ppi_quantile_equals_ppi_python_point_estimate_and_interval(q) -> None:
    """At lambda = 1 (ppi-python's only lambda for a quantile) the estimate is its
    exact-grid point estimate and quantile_ci its interval, on its default grid
    (5000 points) and on its exact grid: the same grid points, so equal to 1e-12.
    Its default point estimate searches the 5000-point grid: within one grid step."""
    from ppi_py import ppi_quantile_ci, ppi_quantile_pointestimate

    real, proxy, _ = _frames("ols", n_units=1500, n_labeled=200, seed=8)
    Y, Yhat, Yhat_unlabeled = _quantile_ppi_arrays(real, proxy)
    model = smf.ppi("y ~ 1", real=real, proxy=proxy, model=Quantile(q), lam=1.0)
    res = model.fit(correction=None)
    exact = ppi_quantile_pointestimate(Y, Yhat, Yhat_unlabeled, q, exact_grid=True)
    np.testing.assert_allclose(res.params["Intercept"], exact, rtol=1e-12)
    values = np.concatenate([Y, Yhat, Yhat_unlabeled])
    step = (values.max() - values.min()) / 4999
    assert abs(res.params["Intercept"] - ppi_quantile_pointestimate(Y, Yhat, Yhat_unlabeled, q)) <= step
    np.testing.assert_allclose(
        model.quantile_ci(alpha=0.1), ppi_quantile_ci(Y, Yhat, Yhat_unlabeled, q, alpha=0.1), rtol=1e-12
    )
    np.testing.assert_allclose(
        model.quantile_ci(alpha=0.05, grid="exact"),
        ppi_quantile_ci(Y, Yhat, Yhat_unlabeled, q, alpha=0.05, exact_grid=True), rtol=1e-12,
    )


def test_ppi_quantile_with_labeling_probabilities_equals_ppi_python_weights() -> None:
    """ppi-python's w and w_unlabeled are our 1/pi and 1/(1 - pi), each set normalised."""
    from ppi_py import ppi_quantile_ci, ppi_quantile_pointestimate

    real, proxy, _ = _frames("ols", n_units=1500, n_labeled=200, seed=8)
    rng = np.random.default_rng(3)
    pi = pd.Series(rng.uniform(0.05, 0.2, len(proxy)), index=proxy.index)
    Y, Yhat, Yhat_unlabeled = _quantile_ppi_arrays(real, proxy)
    w, w_unlabeled = 1 / pi.loc[real.index].to_numpy(), 1 / (1 - pi.drop(real.index).to_numpy())
    model = smf.ppi("y ~ 1", real=real, proxy=proxy, model=Quantile(0.75), lam=1.0, labeling_prob=pi)
    res = model.fit(correction=None)
    theirs = ppi_quantile_pointestimate(Y, Yhat, Yhat_unlabeled, 0.75, exact_grid=True, w=w, w_unlabeled=w_unlabeled)
    np.testing.assert_allclose(res.params["Intercept"], theirs, rtol=1e-12)
    np.testing.assert_allclose(
        model.quantile_ci(alpha=0.1, grid="exact"),
        ppi_quantile_ci(Y, Yhat, Yhat_unlabeled, 0.75, alpha=0.1, exact_grid=True, w=w, w_unlabeled=w_unlabeled),
        rtol=1e-12,
    )


def test_ppi_quantile_at_lambda_zero_is_the_classical_quantile() -> None:
    """lambda = 0 is the human-only sample quantile with its kernel sandwich."""
    real, proxy, _ = _frames("ols", n_units=3000, n_labeled=301, seed=8)
    ours = smf.ppi("y ~ 1", real=real, proxy=proxy, model=Quantile(0.9), lam=0).fit(correction=None)
    classical = smf.classical("y ~ 1", real=real, model=Quantile(0.9)).fit(correction=None)
    np.testing.assert_allclose(ours.params, classical.params, rtol=1e-12)
    np.testing.assert_allclose(ours.bse, classical.bse, rtol=1e-12)


def test_tidy_is_the_coefficient_table_of_every_estimator() -> None:
    real, proxy, _ = _frames("probit")
    for res in (
        smf.gmm_proxy("y ~ x1 + x2", real=real, proxy=proxy, model="probit").fit(),
        smf.ppi("y ~ x1 + x2", real=real, proxy=proxy, model="probit").fit(),
        smf.naive("y ~ x1 + x2", real=real, proxy=proxy, model="probit").fit(),
    ):
        table = res.tidy(alpha=0.1)
        assert list(table.index) == ["Intercept", "x1", "x2"]
        np.testing.assert_allclose(table["estimate"], res.params)
        np.testing.assert_allclose(table["std_error"], res.bse)
        np.testing.assert_allclose(table["p_value"], res.pvalues)
        np.testing.assert_allclose(table[["conf_low", "conf_high"]].to_numpy(), np.asarray(res.conf_int(alpha=0.1)))


def test_quantile_above_the_exact_size_is_solved_by_irls_to_quantreg_precision() -> None:
    from synthinfer.families import quantile

    rng = np.random.default_rng(9)
    n = quantile.EXACT_MAX_ROWS + 2000
    x = rng.normal(size=n)
    frame = pd.DataFrame({"x": x, "y": 1 + 0.5 * x + rng.standard_t(4, n)}, index=pd.RangeIndex(n, name="id"))
    ours = smf.classical("y ~ x", real=frame, model=Quantile(0.75)).fit(correction=None)
    theirs = QuantReg(frame["y"], sm.add_constant(frame[["x"]])).fit(q=0.75)
    np.testing.assert_allclose(ours.params.to_numpy(), theirs.params.to_numpy(), atol=1e-4)
    # the same objective value to the precision both stop at
    family = Quantile(0.75)
    X = sm.add_constant(frame[["x"]]).to_numpy()
    ours_loss = family.check_loss(frame["y"].to_numpy() - X @ ours.params.to_numpy())
    theirs_loss = family.check_loss(frame["y"].to_numpy() - X @ theirs.params.to_numpy())
    assert abs(ours_loss - theirs_loss) <= 1e-6 * theirs_loss
