"""From per-unit scores to labeling probabilities that meet a budget.

Minimising ``sum_k s_k^2 / pi_k`` (the part of the variance the design
controls) subject to the expected cost ``sum_k c_k pi_k = B`` gives
``pi_k proportional to s_k / sqrt(c_k)``; with the bound ``pi_k <= 1`` the
solution is the same rule with the units that would exceed 1 fixed at 1 and
the rest rescaled to the remaining budget ("water-filling"). The result is
then mixed with the uniform design ``B / sum c``:

    pi = (1 - m) pi_optimal + m B / C,

which keeps the expected cost at B, every pi at most 1, and every pi at least
``m B / C`` (``m`` = ``uniform_mix``): inverse-probability weights stay below
``C / (m B)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..exceptions import DesignError, describe_units

__all__ = ["water_fill", "mixed_allocation"]


def water_fill(score: np.ndarray, cost: np.ndarray, budget: float) -> np.ndarray:
    """``pi_k = min(1, t s_k / sqrt(c_k))`` with t such that ``sum c_k pi_k = budget``."""
    rate = score / np.sqrt(cost)
    prob = np.zeros(len(score))
    free = rate > 0
    remaining = float(budget)
    for _ in range(len(score) + 1):
        mass = float(cost[free] @ rate[free])
        if mass <= 0:
            break
        candidate = remaining * rate / mass
        over = free & (candidate >= 1.0)
        if not over.any():
            prob[free] = candidate[free]
            break
        prob[over] = 1.0
        remaining -= float(cost[over].sum())
        free &= ~over
        if remaining <= 1e-12 * budget:
            break
    return prob


def mixed_allocation(
    score: np.ndarray, cost: np.ndarray, budget: float, uniform_mix: float, names: pd.Index
) -> np.ndarray:
    """Water-filled optimal probabilities mixed with the uniform design (see module)."""
    total = float(cost.sum())
    if uniform_mix < 1:
        if not np.any(score > 0):
            raise DesignError(
                "every unit has a design score of 0 (no influence or no expected "
                "disagreement), so the optimal probabilities are all 0; use uniform_mix=1 "
                "(uniform labeling) or another uncertainty model"
            )
        optimal = water_fill(score, cost, budget)
    else:
        optimal = np.zeros(len(score))
    prob = (1.0 - uniform_mix) * optimal + uniform_mix * budget / total
    zero = prob <= 0
    if zero.any():
        raise DesignError(
            f"labeling probabilities would be 0 for {int(zero.sum())} unit(s) "
            f"{describe_units(names[zero])} (their design score is 0 and uniform_mix=0); "
            f"1/pi weighting needs every pi > 0: set uniform_mix > 0"
        )
    return np.minimum(prob, 1.0)
