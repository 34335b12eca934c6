"""Label-budget planning: how many human labels a study needs, with and without LLM data.

From a pilot fit (a small labeled set plus the auxiliary data) the asymptotic
variance of the target coefficients,

    Var(theta) = H^-1 [E psi psi' - (1 - n/N) E psi h' (E h h')^-1 E h psi'] H^-1 / n,

is estimated once (psi: the human scores, h: the stacked auxiliary scores, H:
the Jacobian of the human estimating equation), and then evaluated at any
number of labels n, for any subset of the sources. With no source this is the
human-only variance ``H^-1 E psi psi' H^-1 / n``. The formula assumes the
labeled units are a simple random sample of the N units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["LabelBudget", "plan_labels"]


def _centered_cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a - a.mean(axis=0)).T @ (b - b.mean(axis=0)) / len(a)


@dataclass(frozen=True)
class LabelBudget:
    """Predicted standard errors of the target coefficients for any number of labels.

    Build it with ``plan_labels`` (or ``res.label_budget()``) from a pilot fit.

    Attributes
    ----------
    names : list of str
        Design columns (the terms).
    sources : list of str
        Auxiliary sources of the pilot.
    n_units : int
        N of the pilot (the default population size of predictions).
    """

    names: list[str]
    sources: list[str]
    n_units: int
    _bread: np.ndarray  # H^-1
    _psi_psi: np.ndarray  # E psi psi'
    _psi_h: np.ndarray  # E psi h', all sources stacked
    _h_h: np.ndarray  # E h h'

    def _columns(self, sources: Sequence[str] | str | None) -> np.ndarray:
        if sources is None or sources == "all":
            chosen = list(self.sources)
        elif sources == "none":
            chosen = []
        else:
            chosen = [sources] if isinstance(sources, str) else list(sources)
            unknown = [s for s in chosen if s not in self.sources]
            if unknown:
                raise KeyError(f"unknown source(s) {unknown}; the pilot has {self.sources}")
        p = len(self.names)
        return np.concatenate(
            [np.arange(i * p, (i + 1) * p) for i, s in enumerate(self.sources) if s in chosen]
        ).astype(int) if chosen else np.array([], dtype=int)

    def _variance_parts(self, sources: Sequence[str] | str | None) -> tuple[np.ndarray, np.ndarray]:
        """(a, b) with Var(n) = diag(a - (1 - n/N) b) / n."""
        a = self._bread @ self._psi_psi @ self._bread.T
        columns = self._columns(sources)
        if columns.size == 0:
            return np.diag(a), np.zeros(len(self.names))
        cross = self._psi_h[:, columns]
        explained = cross @ np.linalg.solve(self._h_h[np.ix_(columns, columns)], cross.T)
        return np.diag(a), np.diag(self._bread @ explained @ self._bread.T)

    def se(self, n_labeled: int, sources: Sequence[str] | str | None = "all", n_units: int | None = None) -> pd.Series:
        """Predicted standard errors with ``n_labeled`` labels.

        Parameters
        ----------
        n_labeled : int
            Number of human-labeled units.
        sources : "all", "none", a source name or a list of names
            Which auxiliary sources the fit would use ("none": human only).
        n_units : int, optional
            N; the pilot's by default.
        """
        N = self.n_units if n_units is None else n_units
        if not 0 < n_labeled <= N:
            raise ValueError(f"n_labeled must be in 1..{N}, got {n_labeled}")
        a, b = self._variance_parts(sources)
        return pd.Series(np.sqrt((a - (1 - n_labeled / N) * b) / n_labeled), index=self.names, name="se")

    def table(self, n_values: Sequence[int], n_units: int | None = None) -> pd.DataFrame:
        """Predicted standard errors: rows (n, term); columns human only, each source, all."""
        options: dict[str, Any] = {"human only": "none", **{s: [s] for s in self.sources}}
        if len(self.sources) > 1:
            options["all sources"] = "all"
        rows = {
            (n, term): {label: self.se(n, sources, n_units)[term] for label, sources in options.items()}
            for n in n_values
            for term in self.names
        }
        frame = pd.DataFrame.from_dict(rows, orient="index")
        frame.index = pd.MultiIndex.from_tuples(frame.index, names=["n labeled", "term"])
        return frame

    def labels_for_se(
        self, target_se: float, term: str, sources: Sequence[str] | str | None = "all", n_units: int | None = None
    ) -> int:
        """The fewest labels whose predicted standard error of ``term`` is at most ``target_se``.

        Raises
        ------
        ValueError
            When even labeling all N units cannot reach the target.
        """
        N = self.n_units if n_units is None else n_units
        j = self.names.index(term)
        a, b = (v[j] for v in self._variance_parts(sources))
        # Var(n) = (a - b)/n + b/N: solve (a - b)/n + b/N = target^2
        room = target_se**2 - b / N
        needed = np.inf if room <= 0 else (a - b) / room
        if needed > N:
            best = float(np.sqrt(a / N))
            raise ValueError(
                f"a standard error of {target_se:.4g} for {term!r} is out of reach: labeling all "
                f"{N} units gives {best:.4g}"
            )
        return int(max(1, np.ceil(needed - 1e-9)))

    def labels_for_power(
        self,
        effect: float,
        term: str,
        power: float = 0.8,
        alpha: float = 0.05,
        sources: Sequence[str] | str | None = "all",
        n_units: int | None = None,
    ) -> int:
        """Labels for a two-sided z test of ``term = 0`` to detect ``effect`` with ``power``."""
        if not (0 < alpha < 1 and 0 < power < 1):
            raise ValueError("alpha and power must be in (0, 1)")
        z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
        return self.labels_for_se(abs(effect) / z, term, sources, n_units)


def plan_labels(results: Any) -> LabelBudget:
    """A ``LabelBudget`` estimated from a pilot GMM-Synth (or human-only) fit."""
    model = results.model
    data = model.model_data
    if data.labeled_weight is not None:
        raise NotImplementedError(
            "label planning assumes a simple random sample of labeled units; the pilot was "
            "fitted with labeling probabilities or survey weights"
        )
    blocks = model.moment_blocks(np.asarray(results.params_full))
    # every block read here lives on the labeled units: no (N, p) array is built,
    # so a fit on Dask sources plans as one in memory does
    psi = blocks._on_labeled(0)
    # E psi h' and E h h' both on the labeled units: their joint covariance is then
    # positive semidefinite, so the variance explained never exceeds E psi psi'
    labeled = [blocks._on_labeled(a) for a, only in enumerate(blocks.labeled_only) if a and only]
    p = model.layout.k
    n = data.n_labeled
    # H = (1/n) X' diag(mu') X on the labeled units (the target block of G, rescaled);
    # the sign of H cancels in the sandwich
    bread = np.linalg.inv(-model.scores_at(np.asarray(results.params_full)).target.jacobian() / n)
    if labeled:
        h_labeled = np.hstack(labeled)
        psi_h, h_h = _centered_cross(psi, h_labeled), _centered_cross(h_labeled, h_labeled)
    else:
        psi_h, h_h = np.zeros((p, 0)), np.zeros((0, 0))
    return LabelBudget(
        names=list(model.exog_names),
        sources=list(model.source_names),
        n_units=data.n_units,
        _bread=bread,
        _psi_psi=_centered_cross(psi, psi),
        _psi_h=psi_h,
        _h_h=h_h,
    )
