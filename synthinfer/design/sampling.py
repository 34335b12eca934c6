"""Drawing a labeled set with known inclusion probabilities pi_i.

Two schemes, both with inclusion probability exactly ``pi_i`` for every unit
(so ``1 / pi_i`` weighting is unbiased):

- ``"poisson"``: each unit is drawn independently with probability pi_i; the
  number drawn is random with mean ``sum pi``.
- ``"fixed"``: randomised systematic sampling (Goodman and Kish 1950; Madow
  1949): the units are put in a random order, laid end to end as intervals of
  length pi_i on the line, and the points ``u, u + 1, u + 2, ...`` with one
  uniform ``u`` pick the units whose interval they fall in. An interval of
  length ``pi_i <= 1`` holds a point with probability exactly pi_i, so the
  inclusion probabilities are exact; the size is ``floor(sum pi)`` or
  ``ceil(sum pi)``, exactly ``sum pi`` when that is an integer.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["Method", "poisson_sample", "systematic_sample", "draw_mask"]

Method = Literal["poisson", "fixed"]


def poisson_sample(prob: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Independent Bernoulli(pi_i) draws: a boolean mask."""
    return rng.random(len(prob)) < prob


def systematic_sample(
    prob: np.ndarray, rng: np.random.Generator, order: np.ndarray | None = None
) -> np.ndarray:
    """Systematic sampling with inclusion probabilities ``prob`` in a given or random order.

    A unit is drawn when a point ``u + k`` (k integer) falls in its interval
    ``[C_{i-1}, C_i)`` of the cumulative sums laid in ``order``. ``order=None``
    draws a random permutation first (randomised systematic sampling), which
    removes any dependence on how the units happen to be sorted.
    """
    if order is None:
        order = rng.permutation(len(prob))
    start = rng.random()
    return systematic_mask(prob, order, start)


def systematic_mask(prob: np.ndarray, order: np.ndarray, start: float) -> np.ndarray:
    """The systematic sample for one start ``u`` in [0, 1): deterministic, for tests."""
    cumulative = np.concatenate([[0.0], np.cumsum(prob[order])])
    # the number of points u + k below each cumulative sum; a unit holds a point
    # exactly when that count steps up across its interval
    below = np.floor(cumulative - start) + 1.0
    chosen_in_order = np.diff(below) > 0
    mask = np.zeros(len(prob), dtype=bool)
    mask[order[chosen_in_order]] = True
    return mask


def draw_mask(prob: np.ndarray, method: str, rng: np.random.Generator) -> np.ndarray:
    """A labeled-set mask drawn by ``method`` ("poisson" or "fixed")."""
    if method == "poisson":
        return poisson_sample(prob, rng)
    if method == "fixed":
        return systematic_sample(prob, rng)
    raise ValueError(f"method must be 'poisson' or 'fixed', got {method!r}")
