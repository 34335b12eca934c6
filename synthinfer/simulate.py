"""Simulated studies in the package's data layout (real / proxy / synthetic).

The target model is correctly specified with known coefficients, so the
truth is known: ``y = mu(b0 + b1 x1 + b2 x2)`` with x1, x2 standard normal.
The auxiliary data's quality is chosen by ``aux``:

- ``"useful"``: the LLM's outcome tracks the human one (proxy: noisy copy or a
  few flipped labels; synthetic: a shifted, noisier copy with perturbed
  covariates), so auxiliary residuals predict the real ones.
- ``"noise"``: the LLM's outcome is independent of everything (pure noise).
- ``"anti"``: the LLM's outcome runs against the human one.
- ``"biased"``: the LLM's outcome tracks the human one but errs in one
  direction, more so for large x1 (OLS: shifted up with a larger slope;
  logit: false positives; poisson: over-counts), so pooling it biases the fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.special import expit

__all__ = ["Study", "make_study"]

Quality = Literal["useful", "noise", "anti", "biased"]


@dataclass(frozen=True)
class Study:
    """One simulated study: the three frames and the true coefficients."""

    real: pd.DataFrame
    proxy: pd.DataFrame
    synth: pd.DataFrame
    truth: pd.Series
    formula: str = "y ~ x1 + x2"


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
    return Study(real=real, proxy=proxy, synth=synth, truth=truth)
