"""How many labels a study needs under a labeling design (not only simple random sampling).

With labeling probabilities pi_i(n) (the design's rule at budget n), the
estimators that combine the labels with the LLM's annotation behave like

    theta - theta_0 = H^-1 (1/N) sum_i [R_i / pi_i (psi_i - B h_i) + B h_i],

psi_i the human score, h_i the LLM's score of unit i and B the coefficient of
the control variate. Its variance over the population and the labeling is

    Var(n) = H^-1 [ (1/N) E psi psi'
                    + (1/N^2) sum_i (1/pi_i(n) - 1) r_i r_i' ] H^-1,

    r_i = psi_i - B h_i,  B = [sum w_i psi_i h_i'] [sum w_i h_i h_i']^-1,  w_i = 1/pi_i - 1,

the efficient (GMM) choice of B; ``B = 0`` is the human-only fit. Under simple
random sampling (pi = n/N) it is exactly `synthinfer.power`'s formula
``(a - b)/n + b/N``. H uses every unit's covariates (known before labeling);
the sums over units are estimated from the pilot, weighting each pilot unit
by the inverse of its own labeling probability. With clusters the planner
uses each unit's cluster probability and treats the units' residuals as
independent within clusters (an approximation: positively correlated
residuals make the clustered variance larger than predicted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from ..exceptions import DesignError
from .allocation import mixed_allocation
from .influence import fit_family

if TYPE_CHECKING:
    from .rules import Design

__all__ = ["DesignBudget", "plan_design_labels"]


@dataclass(frozen=True)
class DesignBudget:
    """Predicted standard errors under a design for any number of labels.

    Build it with ``design.label_budget(pilot)``. ``sources="all"`` predicts
    the estimators that use the LLM's annotation (GMM-Proxy / GMM-Synth, the
    efficient combination), ``"none"`` the human-only (weighted) fit.
    """

    names: list[str]
    n_units: int
    _design: Any
    _psi: np.ndarray  # pilot units' human scores (n0, p)
    _h: np.ndarray  # pilot units' LLM scores (n0, p)
    _inv_p: np.ndarray  # 1 / (pilot unit's labeling probability)
    _pilot_pos: np.ndarray
    _bread_inv: np.ndarray

    def _prob(self, n_labeled: float) -> np.ndarray:
        state = self._design._state
        score, cost, clusters = state["unit_score"], state["unit_cost"], state["clusters"]
        mix = self._design.uniform_mix
        if clusters is None:
            return mixed_allocation(score, cost, n_labeled, mix, state["units"])
        codes, names = pd.factorize(clusters.to_numpy())
        cluster_prob = mixed_allocation(
            np.sqrt(np.bincount(codes, weights=score**2)), np.bincount(codes, weights=cost),
            n_labeled, mix, pd.Index(names),
        )
        return cluster_prob[codes]

    def covariance(self, n_labeled: float, sources: str = "all") -> np.ndarray:
        """Predicted covariance of the coefficients with ``n_labeled`` expected labels."""
        N = self.n_units
        if not 1 <= n_labeled <= N:
            raise DesignError(f"n_labeled must be in 1..{N}, got {n_labeled}")
        if sources not in ("all", "none"):
            raise DesignError(f"sources must be 'all' or 'none', got {sources!r}")
        pi = self._prob(n_labeled)[self._pilot_pos]
        w = (1.0 / pi - 1.0) * self._inv_p  # population sums from the pilot
        psi, h = self._psi, self._h
        residual = psi
        if sources == "all":
            cross = (psi * w[:, None]).T @ h
            gram = (h * w[:, None]).T @ h
            if np.any(w > 0):
                B = np.linalg.lstsq(gram, cross.T, rcond=None)[0].T
                residual = psi - h @ B.T
        meat_design = (residual * w[:, None]).T @ residual / N**2
        meat_population = (psi * self._inv_p[:, None]).T @ psi / N**2  # (1/N) E psi psi'
        Hinv = self._bread_inv
        return Hinv @ (meat_population + meat_design) @ Hinv.T

    def se(self, n_labeled: float, sources: str = "all") -> pd.Series:
        """Predicted standard errors with ``n_labeled`` expected labels under the design."""
        return pd.Series(np.sqrt(np.diag(self.covariance(n_labeled, sources))), index=self.names, name="se")

    def table(self, n_values: Sequence[float]) -> pd.DataFrame:
        """Predicted standard errors: rows (n, term), columns human only and with the LLM."""
        rows = {
            (n, term): {"human only": self.se(n, "none")[term], "with the LLM": self.se(n, "all")[term]}
            for n in n_values for term in self.names
        }
        frame = pd.DataFrame.from_dict(rows, orient="index")
        frame.index = pd.MultiIndex.from_tuples(frame.index, names=["n labeled", "term"])
        return frame

    def labels_for_se(self, target_se: float, term: str, sources: str = "all") -> int:
        """The fewest expected labels whose predicted standard error of ``term`` is at most ``target_se``."""
        if term not in self.names:
            raise KeyError(f"unknown term {term!r}; terms are {self.names}")
        j = self.names.index(term)

        def se_at(n: float) -> float:
            return float(np.sqrt(self.covariance(n, sources)[j, j]))

        low, high = 1, self.n_units
        if se_at(high) > target_se:
            raise DesignError(
                f"a standard error of {target_se:.4g} for {term!r} is out of reach under this "
                f"design: labeling all {self.n_units} units gives {se_at(high):.4g}"
            )
        if se_at(low) <= target_se:
            return low
        while high - low > 1:  # the variance falls as every pi grows with n
            mid = (low + high) // 2
            if se_at(mid) <= target_se:
                high = mid
            else:
                low = mid
        return high

    def labels_for_power(
        self, effect: float, term: str, power: float = 0.8, alpha: float = 0.05, sources: str = "all"
    ) -> int:
        """Expected labels for a two-sided z test of ``term = 0`` to detect ``effect`` with ``power``."""
        if not (0 < alpha < 1 and 0 < power < 1):
            raise DesignError("alpha and power must be in (0, 1)")
        z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
        return self.labels_for_se(abs(effect) / z, term, sources)


def plan_design_labels(design: Design, pilot: pd.DataFrame | None, pilot_prob: Any) -> DesignBudget:
    """A `DesignBudget` from the design's rule and a pilot of human labels."""
    state = design._state
    if "family" not in state:
        raise DesignError("label planning needs a model-based design (optimal_design)")
    pilot = state["pilot"] if pilot is None else pilot
    if pilot is None or not len(pilot):
        raise DesignError("label planning needs a pilot of human-labeled units (pilot=)")
    units: pd.Index = state["units"]
    unknown = pilot.index.difference(units)
    if len(unknown):
        raise DesignError(f"pilot units {list(unknown[:10])} are not units of the design")
    family, spec = state["family"], state["spec"]
    y, X_p = spec.apply(pilot, "pilot")
    pos = units.get_indexer(pilot.index)
    N = len(units)
    if pilot_prob is None:
        p = np.full(len(pilot), len(pilot) / N)
    elif np.ndim(pilot_prob) == 0:
        p = np.full(len(pilot), float(pilot_prob))
    else:
        p = pd.Series(pilot_prob).reindex(pilot.index).to_numpy(float)
    if not np.all((p > 0) & (p <= 1)):
        raise DesignError("pilot_prob must be in (0, 1] for every pilot unit")
    theta = fit_family(family, X_p, y, "pilot", weights=1.0 / p)
    X, f, eta = state["X"], state["f"], state["eta"]
    psi = X_p * (y - family.mean(X_p @ theta))[:, None]
    h = X[pos] * (f[pos] - family.mean(X[pos] @ eta))[:, None]
    weight = family.mean_deriv(X @ theta)
    bread = (X * weight[:, None]).T @ X / N
    return DesignBudget(
        names=list(state["names"]), n_units=N, _design=design, _psi=psi, _h=h,
        _inv_p=1.0 / p, _pilot_pos=pos, _bread_inv=np.linalg.inv(bread),
    )
