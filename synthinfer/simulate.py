"""Simulated studies in the package's data layout (real / proxy / synthetic).

The target model is correctly specified with known coefficients, so the
truth is known: ``y = mu(b0 + b1 x1 + b2 x2)`` with x1, x2 standard normal.

Two generators:

- ``make_study``: the fixed designs the test suite is built on. The
  auxiliary data's quality is chosen by ``aux``:

  - ``"useful"``: the LLM's outcome tracks the human one (proxy: noisy copy or a
    few flipped labels; synthetic: a shifted, noisier copy with perturbed
    covariates), so auxiliary residuals predict the real ones.
  - ``"noise"``: the LLM's outcome is independent of everything (pure noise).
  - ``"anti"``: the LLM's outcome runs against the human one.
  - ``"biased"``: the LLM's outcome tracks the human one but errs in one
    direction, more so for large x1 (OLS: shifted up with a larger slope;
    logit: false positives; poisson: over-counts), so pooling it biases the fit.

- ``simulate_study``: the same layout with every aspect of the auxiliary
  data's quality on an explicit knob (proxy misclassification rate or noise
  scale, synthetic-to-real correlation, distribution shift, one-directional
  bias, covariate noise) and a scenario in which the auxiliary data is
  generated differently for labeled and unlabeled units (``"differential"``),
  which violates the design and which the J test detects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit, ndtr

__all__ = ["Study", "make_study", "simulate_study"]

Quality = Literal["useful", "noise", "anti", "biased"]
Scenario = Literal["useful", "noise", "anti", "biased", "differential"]


@dataclass(frozen=True)
class Study:
    """One simulated study: the three frames and the true coefficients.

    Attributes
    ----------
    real : DataFrame
        The n human-labeled units (outcome ``y``, covariates ``x1``, ``x2``),
        indexed by unit id.
    proxy : DataFrame
        The LLM's annotation of every one of the N units, indexed by unit id.
    synth : DataFrame
        k synthetic samples per unit, indexed by the id of the unit each was
        generated from.
    truth : Series
        The true coefficients (Intercept, x1, x2).
    formula : str
        ``"y ~ x1 + x2"``.
    full : DataFrame or None
        The human outcome of all N units (``real`` is its labeled rows): the
        full-data fit on it is the finite-population truth.
    settings : dict
        The generator's arguments after defaults were resolved
        (``simulate_study`` only).
    """

    real: pd.DataFrame
    proxy: pd.DataFrame
    synth: pd.DataFrame
    truth: pd.Series
    formula: str = "y ~ x1 + x2"
    full: pd.DataFrame | None = None
    settings: dict = field(default_factory=dict)


def _outcome(model: str, lin: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if model == "ols":
        return lin + rng.normal(size=lin.shape)
    if model == "logit":
        return rng.binomial(1, expit(lin)).astype(float)
    if model == "poisson":
        return rng.poisson(np.exp(lin)).astype(float)
    raise ValueError(f"model must be 'ols', 'logit' or 'poisson', got {model!r}")


def _auxiliary_outcome(
    model: str, y: np.ndarray, x1: np.ndarray, aux: Quality, rng: np.random.Generator, shift: float
) -> np.ndarray:
    n = len(y)
    if aux not in ("useful", "noise", "anti", "biased"):
        raise ValueError(f"aux must be 'useful', 'noise', 'anti' or 'biased', got {aux!r}")
    if aux == "biased":
        if model == "ols":
            return y + 0.5 + 0.5 * x1 + rng.normal(scale=0.5, size=n)
        if model == "logit":
            return np.where(rng.random(n) < expit(-1.0 + x1), 1.0, y)
        if model == "poisson":
            return y + rng.poisson(np.exp(0.5 * x1)).astype(float)
    if aux == "noise":
        return _outcome(model, np.full(n, 0.2), rng)
    if model == "ols":
        copy = y + shift + rng.normal(scale=0.5, size=n)
        return copy if aux == "useful" else -y + rng.normal(scale=0.5, size=n)
    if model == "logit":
        flipped = np.where(rng.random(n) < 0.1 + shift, 1.0 - y, y)
        return flipped if aux == "useful" else 1.0 - flipped
    if model == "poisson":
        copy = rng.poisson(y * (1.0 + shift) + 0.2).astype(float)
        return copy if aux == "useful" else rng.poisson(np.maximum(3.0 - y, 0.1)).astype(float)
    raise ValueError(f"model must be 'ols', 'logit' or 'poisson', got {model!r}")


def make_study(
    model: str = "ols",
    n_units: int = 2000,
    n_labeled: int = 200,
    *,
    aux: Quality = "useful",
    k_synth: int = 2,
    coefs: tuple[float, float, float] = (0.5, 1.0, -0.5),
    seed: int | np.random.Generator | None = 0,
) -> Study:
    """Draw a study with ``n_units`` units of which ``n_labeled`` are human-labeled.

    Parameters
    ----------
    model : {"ols", "logit", "poisson"}
    n_units, n_labeled : int
        N and n; the labeled units are a simple random sample.
    aux : {"useful", "noise", "anti", "biased"}
        Quality of the proxy and synthetic outcomes (see the module docstring).
    k_synth : int
        Synthetic samples per unit; each is conditioned on its unit.
    coefs : tuple
        True (Intercept, x1, x2).
    seed : int or Generator

    Returns
    -------
    Study
        ``real`` (n rows), ``proxy`` (N rows) and ``synth`` (N k rows) frames
        indexed by unit id, and ``truth``.
    """
    if not 0 < n_labeled <= n_units:
        raise ValueError("need 0 < n_labeled <= n_units")
    rng = np.random.default_rng(seed)
    units = pd.Index([f"unit{i:06d}" for i in range(n_units)], name="unit")
    x1, x2 = rng.normal(size=n_units), rng.normal(size=n_units)
    lin = coefs[0] + coefs[1] * x1 + coefs[2] * x2
    y = _outcome(model, lin, rng)
    full = pd.DataFrame({"y": y, "x1": x1, "x2": x2}, index=units)
    labeled = np.sort(rng.choice(n_units, size=n_labeled, replace=False))
    real = full.iloc[labeled].copy()
    proxy = full.assign(y=_auxiliary_outcome(model, y, x1, aux, rng, shift=0.0))
    samples = []
    for _ in range(k_synth):
        samples.append(
            pd.DataFrame(
                {
                    "y": _auxiliary_outcome(model, y, x1, aux, rng, shift=0.05),
                    "x1": x1 + rng.normal(scale=0.3, size=n_units),
                    "x2": x2 + rng.normal(scale=0.3, size=n_units),
                },
                index=units,
            )
        )
    synth = pd.concat(samples)
    truth = pd.Series(coefs, index=["Intercept", "x1", "x2"], name="truth")
    return Study(real=real, proxy=proxy, synth=synth, truth=truth, full=full)


# -- simulate_study: every aspect of the auxiliary data's quality on a knob -------------

_MODELS = ("ols", "logit", "poisson")
_SCENARIOS = ("useful", "noise", "anti", "biased", "differential")
_DEFAULT_PROXY_ERROR = {"ols": 0.5, "logit": 0.1, "poisson": 0.5}
_DEFAULT_BIAS = 0.5
_DEFAULT_LABELED_SHIFT = 0.5


def _quantile(model: str, z: np.ndarray, lin: np.ndarray) -> np.ndarray:
    """The outcome with linear predictor ``lin`` at standard-normal latent ``z``.

    Increasing in ``z``; with ``z ~ N(0, 1)`` it is a draw from the model:
    OLS ``lin + z``; logit ``1{Phi(z) > 1 - expit(lin)}``; poisson the
    ``Phi(z)`` quantile of Poisson(exp(lin)).
    """
    if model == "ols":
        return lin + z
    if model == "logit":
        return (ndtr(-z) < expit(lin)).astype(float)
    upper_tail = np.clip(ndtr(-z), np.finfo(float).tiny, 1.0)
    return stats.poisson.isf(upper_tail, np.exp(lin)).astype(float)


def _check_number(name: str, value: float, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise ValueError(f"{name} must be in {bounds}, got {value!r}")
    return value


def _check_count(name: str, value: int, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be at least {low}, got {value}")
    return int(value)


def _check_scenario(name: str, value: str) -> str:
    if value not in _SCENARIOS:
        raise ValueError(f"{name} must be one of {list(_SCENARIOS)}, got {value!r}")
    return value


def _tilt(bias: float, x1: np.ndarray) -> np.ndarray:
    """One-directional error on the linear predictor: ``2 bias expit(x1)``, mean ``bias``."""
    return 2.0 * bias * expit(x1)


def simulate_study(
    model: str = "ols",
    n_units: int = 2000,
    n_labeled: int = 200,
    *,
    proxy: Scenario = "useful",
    proxy_error: float | None = None,
    proxy_bias: float | None = None,
    proxy_labeled_shift: float | None = None,
    synth: Scenario = "useful",
    k_synth: int = 2,
    synth_correlation: float = 0.7,
    synth_shift: float = 0.25,
    synth_bias: float | None = None,
    synth_covariate_noise: float = 0.3,
    synth_labeled_shift: float | None = None,
    coefs: tuple[float, float, float] = (0.5, 1.0, -0.5),
    seed: int | np.random.Generator | None = 0,
) -> Study:
    """Draw a study whose proxy and synthetic data have a chosen quality.

    The human outcome is ``y_i = Q(Z_i; eta_i)`` with ``eta_i = b0 + b1 x1_i +
    b2 x2_i``, x1, x2 and the latent ``Z_i`` independent standard normal, and
    ``Q(z; eta)`` the model's outcome at latent z (OLS ``eta + z``; logit
    ``1{Phi(z) > 1 - expit(eta)}``; poisson the ``Phi(z)`` quantile of
    Poisson(exp(eta))), so ``y_i`` follows the model exactly. The labeled units
    are a simple random sample of n of the N units.

    **Proxy** (the LLM annotates the unit itself, same covariates): the outcome
    ``Q(Z_i; eta^p_i)`` with ``eta^p_i = eta_i + 2 bias expit(x1_i)`` (plus
    ``proxy_labeled_shift`` on labeled units), read with error
    ``proxy_error``:

    - OLS: noise scale, ``y^p = Q(Z; eta^p) + proxy_error * W``;
    - logit: misclassification rate, each label flipped with this probability;
    - poisson: noise scale on the latent, ``y^p = Q((Z + s W) / sqrt(1 + s^2); eta^p)``
      with ``s = proxy_error``: the same Poisson model, correlation with y
      falling as s grows (s = 0 is an exact copy).

    **Synthetic** (the LLM generates k new samples, each conditioned on one
    real unit): covariates ``x*_ij = x_i + synth_covariate_noise * V_ij``,
    latent ``Z*_ij = rho Z_i + sqrt(1 - rho^2) W_ij`` with ``rho =
    synth_correlation``, outcome ``Q(Z*_ij; eta*_ij)`` with ``eta*_ij = b0 +
    b1 x1*_ij + b2 x2*_ij + synth_shift + 2 bias expit(x1*_ij)`` (plus
    ``synth_labeled_shift`` on labeled units).

    Scenarios (``proxy=`` and ``synth=``) set the direction of the above:

    - ``"useful"``: as described; the auxiliary residuals predict the human ones.
    - ``"noise"``: the outcome is independent of everything (pure noise): the
      latent is independent and ``eta`` is the constant mean of the units'
      ``eta``; the error, correlation and bias knobs are ignored, shifts apply.
    - ``"anti"``: the outcome runs against the human one: slopes reversed
      (``b0 - b1 x1 - b2 x2``) and latent negated (synthetic: correlation
      ``-|rho|``).
    - ``"biased"``: ``"useful"`` with a one-directional error, ``bias`` 0.5 by
      default: the linear predictor is raised by ``2 bias expit(x1)`` (mean
      ``bias``, more for large x1) at the same latent, so OLS outcomes are
      shifted up, logit labels only gain false positives and poisson counts only
      over-count (exactly so with no proxy error and correlation 1).
    - ``"differential"``: ``"useful"`` but generated differently for labeled and
      unlabeled units: the labeled units' linear predictor is shifted by
      ``labeled_shift`` (0.5 by default). This violates the design (the
      auxiliary data must be generated alike for every unit): estimates that
      use the auxiliary data are biased and Hansen's J test rejects.

    Parameters
    ----------
    model : {"ols", "logit", "poisson"}
    n_units, n_labeled : int
        N units, of which ``1 <= n_labeled <= n_units`` are human-labeled.
    proxy : {"useful", "noise", "anti", "biased", "differential"}
        Scenario of the proxy annotations.
    proxy_error : float, optional
        OLS: standard deviation of the annotation error (default 0.5; the
        outcome's own noise has sd 1). Logit: misclassification rate in [0, 1]
        (default 0.1). Poisson: noise scale on the latent (default 0.5).
    proxy_bias : float, optional
        One-directional error of the proxy (default 0; 0.5 for ``"biased"``).
    proxy_labeled_shift : float, optional
        Shift of the labeled units' proxy linear predictor (default 0; 0.5 for
        ``"differential"``).
    synth : {"useful", "noise", "anti", "biased", "differential"}
        Scenario of the synthetic samples.
    k_synth : int
        Synthetic samples per unit (>= 1).
    synth_correlation : float
        Correlation in [-1, 1] between a synthetic sample's latent and its
        paired real unit's latent (1 and no shift or covariate noise: a copy;
        0: an independent draw from the shifted model).
    synth_shift : float
        Distribution shift: added to the synthetic linear predictor of every
        unit (OLS: the mean; logit: the log-odds; poisson: the log-rate).
    synth_bias : float, optional
        One-directional error of the synthetic outcomes (default 0; 0.5 for
        ``"biased"``).
    synth_covariate_noise : float
        Standard deviation of the perturbation of the synthetic covariates (>= 0).
    synth_labeled_shift : float, optional
        Shift of the labeled units' synthetic linear predictor (default 0; 0.5
        for ``"differential"``).
    coefs : tuple of 3 floats
        True (Intercept, x1, x2).
    seed : int, numpy Generator or None
        The same seed gives the same study.

    Returns
    -------
    Study
        ``real`` (n rows), ``proxy`` (N rows), ``synth`` (N k rows: the first N
        rows are every unit's first sample, and so on), ``truth``, ``full``
        (the human outcome of all N units) and ``settings`` (the resolved
        arguments).

    Raises
    ------
    ValueError, TypeError
        Naming the argument that is out of range or of the wrong type.

    Examples
    --------
    >>> import synthinfer.api as smf
    >>> from synthinfer.simulate import simulate_study
    >>> study = simulate_study("logit", 5000, 500, proxy_error=0.2, synth_correlation=0.5, seed=1)
    >>> res = smf.gmm_synth(study.formula, real=study.real, proxy=study.proxy,
    ...                     synth=study.synth, model="logit").fit()
    """
    if model not in _MODELS:
        raise ValueError(f"model must be one of {list(_MODELS)}, got {model!r}")
    n_units = _check_count("n_units", n_units, 1)
    n_labeled = _check_count("n_labeled", n_labeled, 1)
    if n_labeled > n_units:
        raise ValueError(f"n_labeled ({n_labeled}) must not exceed n_units ({n_units})")
    proxy = _check_scenario("proxy", proxy)  # type: ignore[assignment]
    synth = _check_scenario("synth", synth)  # type: ignore[assignment]
    k_synth = _check_count("k_synth", k_synth, 1)
    if len(coefs) != 3:
        raise ValueError(f"coefs must be 3 numbers (Intercept, x1, x2), got {coefs!r}")
    b0, b1, b2 = (_check_number("coefs", c) for c in coefs)

    def default(value: float | None, scenario: str, preset: str, preset_value: float) -> float:
        return (preset_value if scenario == preset else 0.0) if value is None else value

    if proxy_error is None:
        proxy_error = _DEFAULT_PROXY_ERROR[model]
    proxy_error = _check_number("proxy_error", proxy_error, 0.0, 1.0 if model == "logit" else None)
    proxy_bias = _check_number("proxy_bias", default(proxy_bias, proxy, "biased", _DEFAULT_BIAS))
    proxy_labeled_shift = _check_number(
        "proxy_labeled_shift",
        default(proxy_labeled_shift, proxy, "differential", _DEFAULT_LABELED_SHIFT),
    )
    synth_correlation = _check_number("synth_correlation", synth_correlation, -1.0, 1.0)
    synth_shift = _check_number("synth_shift", synth_shift)
    synth_bias = _check_number("synth_bias", default(synth_bias, synth, "biased", _DEFAULT_BIAS))
    synth_covariate_noise = _check_number("synth_covariate_noise", synth_covariate_noise, 0.0)
    synth_labeled_shift = _check_number(
        "synth_labeled_shift",
        default(synth_labeled_shift, synth, "differential", _DEFAULT_LABELED_SHIFT),
    )
    settings = {
        "model": model, "n_units": n_units, "n_labeled": n_labeled,
        "proxy": proxy, "proxy_error": proxy_error, "proxy_bias": proxy_bias,
        "proxy_labeled_shift": proxy_labeled_shift,
        "synth": synth, "k_synth": k_synth, "synth_correlation": synth_correlation,
        "synth_shift": synth_shift, "synth_bias": synth_bias,
        "synth_covariate_noise": synth_covariate_noise, "synth_labeled_shift": synth_labeled_shift,
        "coefs": (b0, b1, b2),
    }

    rng = np.random.default_rng(seed)
    units = pd.Index([f"unit{i:06d}" for i in range(n_units)], name="unit")
    x1, x2 = rng.normal(size=n_units), rng.normal(size=n_units)
    z = rng.normal(size=n_units)
    lin = b0 + b1 * x1 + b2 * x2
    y = _quantile(model, z, lin)
    full = pd.DataFrame({"y": y, "x1": x1, "x2": x2}, index=units)
    labeled = np.sort(rng.choice(n_units, size=n_labeled, replace=False))
    is_labeled = np.zeros(n_units, dtype=bool)
    is_labeled[labeled] = True
    real = full.iloc[labeled].copy()

    def aux_lin(scenario: str, a1: np.ndarray, a2: np.ndarray, bias: float) -> np.ndarray:
        if scenario == "noise":
            return np.full(len(a1), lin.mean())
        direction = -1.0 if scenario == "anti" else 1.0
        # the same operations as `lin`, so an unbiased copy is exact
        return b0 + direction * b1 * a1 + direction * b2 * a2 + _tilt(bias, a1)

    # proxy: the unit itself, read with error
    w = rng.normal(size=n_units)
    p_lin = aux_lin(proxy, x1, x2, proxy_bias) + proxy_labeled_shift * is_labeled
    sign = -1.0 if proxy == "anti" else 1.0
    if proxy == "noise":
        y_proxy = _quantile(model, w, p_lin)
    elif model == "ols":
        y_proxy = _quantile(model, sign * z, p_lin) + proxy_error * w
    elif model == "logit":
        y_proxy = _quantile(model, sign * z, p_lin)
        y_proxy = np.where(rng.random(n_units) < proxy_error, 1.0 - y_proxy, y_proxy)
    else:
        latent = (z + proxy_error * w) / np.sqrt(1.0 + proxy_error**2)
        y_proxy = _quantile(model, sign * latent, p_lin)
    proxy_frame = full.assign(y=y_proxy)

    # synthetic: k new samples per unit, each conditioned on its unit
    rho = {"noise": 0.0, "anti": -abs(synth_correlation)}.get(synth, synth_correlation)
    samples = []
    for _ in range(k_synth):
        s1 = x1 + synth_covariate_noise * rng.normal(size=n_units)
        s2 = x2 + synth_covariate_noise * rng.normal(size=n_units)
        latent = rho * z + np.sqrt(1.0 - rho**2) * rng.normal(size=n_units)
        s_lin = aux_lin(synth, s1, s2, synth_bias) + synth_shift + synth_labeled_shift * is_labeled
        samples.append(
            pd.DataFrame({"y": _quantile(model, latent, s_lin), "x1": s1, "x2": s2}, index=units)
        )
    synth_frame = pd.concat(samples)
    truth = pd.Series((b0, b1, b2), index=["Intercept", "x1", "x2"], name="truth")
    return Study(
        real=real, proxy=proxy_frame, synth=synth_frame, truth=truth, full=full, settings=settings
    )
