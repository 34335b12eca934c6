"""Labeling designs: which units to give to human annotators, with known probabilities.

`optimal_design` computes the variance-optimal probabilities for the target
coefficients (Zrnic and Candes 2024, "Active statistical inference";
Gligoric et al. 2025, "confidence-driven inference"):

    pi_i proportional to sqrt(e_i) * ||target rows of H^-1 x_i||,

where ``e_i`` is the expected squared human-LLM disagreement of unit i (see
`synthinfer.design.uncertainty`) and ``H^-1 x_i`` its influence direction
(`synthinfer.design.influence`), water-filled to the budget under
``pi_i <= 1`` and mixed with uniform sampling (`synthinfer.design.allocation`).
`stratified_design` is the simple alternative: one probability per stratum.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import DesignError, describe_units
from ..families import Family, GLMFamily
from ..formula import FormulaSpec, capture_namespace
from .allocation import mixed_allocation
from .influence import Influence, design_family, fit_family, influence_direction
from .sampling import draw_mask
from .uncertainty import (
    confidence_uncertainty,
    disagreement_features,
    fit_disagreement,
    pilot_residual,
    user_uncertainty,
)

__all__ = ["Design", "optimal_design", "stratified_design"]


@dataclass(frozen=True, eq=False, repr=False)
class Design:
    """Known labeling probabilities for a set of units, and the draw of a labeled set.

    Build it with `optimal_design` or `stratified_design`.

    Attributes
    ----------
    prob : Series
        pi_i by unit id (name ``"pi"``) for the pilot units (1: they are labeled
        already) and the pool (the units the design draws from). Pass it as
        ``labeling_prob=`` to any estimator, with the pilot and the drawn units
        as ``real``.
    pool : Index
        The units the design draws from.
    budget : float
        Expected number of new labels (expected cost with ``cost=``).
    uniform_mix : float
        Share of uniform sampling in the mixture; every pool pi is at least
        ``uniform_mix * budget / (cost of the pool)``.
    score : Series
        The design score of every pool unit before water-filling and mixing
        (``sqrt(e_i)`` times the influence norm for `optimal_design`).
    uncertainty : Series or None
        ``e_i``, the expected squared human-LLM disagreement (`optimal_design`).
    influence : Series or None
        The size of the target's influence direction (`optimal_design`).
    clusters : Series or None
        Cluster of each unit when whole clusters are drawn.
    kind : str
        ``"optimal"``, ``"stratified"`` or ``"uniform"``.
    """

    prob: pd.Series
    pool: pd.Index
    budget: float
    uniform_mix: float
    score: pd.Series
    kind: str
    uncertainty: pd.Series | None = None
    influence: pd.Series | None = None
    clusters: pd.Series | None = None
    targets: list[str] = field(default_factory=list)
    unit_cost: pd.Series | None = None
    _state: dict[str, Any] = field(default_factory=dict, repr=False)
    #: pi of the pilot units in ``prob``: 1, or with ``random_pilot=True`` the
    #: score-weighted mean pool probability (see `random_pilot_prob`)
    pilot_prob: float = 1.0

    @property
    def labeling_prob(self) -> pd.Series:
        """``prob``: the form ``labeling_prob=`` takes (a Series by unit id)."""
        return self.prob

    @property
    def pool_prob(self) -> pd.Series:
        """pi_i of the pool units only."""
        return self.prob.loc[self.pool]

    @property
    def cluster_prob(self) -> pd.Series | None:
        """pi per cluster (clustered designs), else None."""
        if self.clusters is None:
            return None
        pool_clusters = self.clusters.loc[self.pool]
        return self.prob.loc[self.pool].groupby(pool_clusters.to_numpy(), sort=False).first()

    @property
    def expected_labels(self) -> float:
        """Expected number of newly labeled units (sum of the pool's pi)."""
        return float(self.pool_prob.sum())

    def draw(self, seed: int | np.random.Generator | None = None, method: str = "poisson") -> pd.Series:
        """Draw the units to label.

        Parameters
        ----------
        seed : int, Generator or None
            Seed of the draw; the same seed gives the same units.
        method : {"poisson", "fixed"}
            ``"poisson"``: each unit (cluster) independently with probability
            pi (random size, mean the budget). ``"fixed"``: randomised
            systematic sampling, size ``floor`` or ``ceil`` of the expected
            number of units (clusters), exactly it when it is an integer. Both
            have inclusion probabilities exactly pi.

        Returns
        -------
        Series
            pi_i of the drawn units, indexed by unit id (in pool order). With
            clusters, every unit of a drawn cluster, each with its cluster's pi.
        """
        if method not in ("poisson", "fixed"):
            raise DesignError(f"method must be 'poisson' or 'fixed', got {method!r}")
        rng = np.random.default_rng(seed)
        pool_prob = self.pool_prob
        if self.clusters is None:
            mask = draw_mask(pool_prob.to_numpy(), method, rng)
            return pool_prob[mask]
        cluster_prob = self.cluster_prob
        assert cluster_prob is not None  # a clustered design has its clusters' pi
        chosen = cluster_prob.index[draw_mask(cluster_prob.to_numpy(), method, rng)]
        in_chosen = self.clusters.loc[self.pool].isin(chosen).to_numpy()
        return pool_prob[in_chosen]

    def label_budget(self, pilot: pd.DataFrame | None = None, pilot_prob: Any = None):
        """How many labels this design needs for a target precision; see `DesignBudget`.

        Parameters
        ----------
        pilot : DataFrame, optional
            Human-labeled units (the formula's columns, indexed by unit id);
            the design's own pilot by default.
        pilot_prob : Series or float, optional
            The probabilities with which the pilot units were labeled; a simple
            random sample (``n_pilot / N``) by default.
        """
        from .planning import plan_design_labels

        return plan_design_labels(self, pilot, pilot_prob)

    def summary(self) -> pd.Series:
        """A few numbers about the design: size, probability range, weight spread."""
        p = self.pool_prob
        weights = 1.0 / p
        return pd.Series(
            {
                "kind": self.kind,
                "pool units": len(p),
                "expected labels": float(p.sum()),
                "min pi": float(p.min()),
                "max pi": float(p.max()),
                "max weight 1/pi": float(weights.max()),
                # Kish's design effect of the weights: 1 for uniform labeling
                "weight design effect": float((weights**2).mean() / weights.mean() ** 2),
            },
            name="design",
        )

    def __repr__(self) -> str:
        p = self.pool_prob
        return (
            f"<Design {self.kind}: {len(p)} pool units, {self.expected_labels:.1f} expected "
            f"labels, pi in [{p.min():.4g}, {p.max():.4g}]>"
        )


# -- validation helpers ----------------------------------------------------------------

def _proxy_frame(proxy: Any, source: str | None) -> tuple[str, pd.DataFrame]:
    if isinstance(proxy, pd.DataFrame):
        return "proxy", proxy
    if isinstance(proxy, Mapping) and proxy:
        if source is None:
            if len(proxy) > 1:
                raise DesignError(
                    f"proxy has {len(proxy)} sources {list(proxy)}: name the one whose "
                    f"annotation the design uses with source="
                )
            source = next(iter(proxy))
        if source not in proxy:
            raise DesignError(f"source {source!r} is not among the proxy sources {list(proxy)}")
        frame = proxy[source]
        if not isinstance(frame, pd.DataFrame):
            raise DesignError(f"proxy source {source!r} must be a DataFrame, got {type(frame).__name__}")
        return str(source), frame
    raise DesignError(
        "a labeling design needs the LLM's annotation of every unit: proxy= must be a "
        f"DataFrame (or a dict of them), got {type(proxy).__name__}"
    )


def _check_budget(budget: Any, capacity: float, what: str) -> float:
    if isinstance(budget, bool) or not isinstance(budget, numbers.Real) or not np.isfinite(float(budget)):
        raise DesignError(f"budget must be a finite number, got {budget!r}")
    value = float(budget)
    if value < 1:
        raise DesignError(f"budget must be at least 1 label, got {budget!r}")
    if value > capacity + 1e-9:
        raise DesignError(
            f"budget {budget!r} is more than the {what} ({capacity:g}): there are not enough "
            f"units to draw from"
        )
    return float(min(value, capacity))


def _unit_series(values: Any, frame: pd.DataFrame, units: pd.Index, what: str) -> pd.Series:
    if isinstance(values, str):
        if values not in frame.columns:
            raise DesignError(f"{what} column {values!r} is not a column of the proxy frame")
        series = frame[values]
    elif isinstance(values, pd.Series):
        series = values
    else:
        array = np.asarray(values).ravel()
        if len(array) != len(units):
            raise DesignError(
                f"{what} as an array must have one value per unit ({len(units)}), got {len(array)}"
            )
        series = pd.Series(array, index=units)
    missing = units.difference(series.index)
    if len(missing) or not series.index.is_unique:
        raise DesignError(
            f"{what} must have exactly one value per unit; missing for units {describe_units(missing)}"
        )
    series = series.reindex(units)
    if series.isna().any():
        raise DesignError(f"{what} is missing for units {describe_units(units[series.isna().to_numpy()])}")
    return series


def _pool_and_pilot(
    units: pd.Index, pilot: pd.DataFrame | None, pool: Any
) -> tuple[pd.Index, pd.Index]:
    pilot_ids = pd.Index([]) if pilot is None else pilot.index
    if pilot is not None:
        if not isinstance(pilot, pd.DataFrame):
            raise DesignError(f"pilot must be a DataFrame of labeled units, got {type(pilot).__name__}")
        if not pilot_ids.is_unique:
            raise DesignError(
                f"pilot: unit ids {describe_units(pilot_ids[pilot_ids.duplicated()].unique())} repeat"
            )
        unknown = pilot_ids.difference(units, sort=False)
        if len(unknown):
            raise DesignError(
                f"pilot units {describe_units(unknown)} are not units of the proxy frame; the "
                f"pilot must be labeled units of the same population"
            )
    if pool is None:
        pool_ids = units[~units.isin(pilot_ids)]
    else:
        pool_ids = pd.Index(pool)
        if not pool_ids.is_unique:
            raise DesignError(f"pool: unit ids {describe_units(pool_ids[pool_ids.duplicated()].unique())} repeat")
        unknown = pool_ids.difference(units, sort=False)
        if len(unknown):
            raise DesignError(f"pool units {describe_units(unknown)} are not units of the proxy frame")
        overlap = pool_ids.intersection(pilot_ids, sort=False)
        if len(overlap):
            raise DesignError(
                f"the pilot overlaps the units to draw from: {len(overlap)} unit(s) "
                f"{describe_units(overlap)} are labeled already; a unit's labeling probability "
                f"must be decided once, so leave pilot units out of the pool"
            )
        pool_ids = units[units.isin(pool_ids)]  # in unit order
    if len(pool_ids) == 0:
        raise DesignError("there are no units to draw from (the pool is empty)")
    return pool_ids, pilot_ids


@dataclass
class _Frames:
    """The proxy (and pilot) through the formula, aligned to the proxy's units."""

    units: pd.Index
    X: np.ndarray
    f: np.ndarray
    names: list[str]
    pilot_y: np.ndarray | None
    pilot_X: np.ndarray | None
    pilot_pos: np.ndarray
    synth_mean: np.ndarray | None
    spec: FormulaSpec


def _through_formula(
    formula: str, proxy_name: str, proxy: pd.DataFrame, pilot: pd.DataFrame | None,
    synth: Any, engine: str | None, namespace: Mapping[str, Any],
) -> _Frames:
    units = proxy.index
    if not units.is_unique:
        raise DesignError(
            f"frame {proxy_name!r}: unit ids {describe_units(units[units.duplicated()].unique())} repeat"
        )
    frames: dict[str, pd.DataFrame] = {proxy_name: proxy}
    if pilot is not None:
        frames["pilot"] = pilot
    synth_frames: dict[str, pd.DataFrame] = {}
    if isinstance(synth, pd.DataFrame):
        synth_frames = {"synth": synth}
    elif isinstance(synth, Mapping):
        synth_frames = {str(k): v for k, v in synth.items()}
    elif synth is not None:
        raise DesignError(f"synth must be a DataFrame or a dict of them, got {type(synth).__name__}")
    frames.update(synth_frames)
    spec = FormulaSpec(formula, frames, engine=engine, namespace=namespace)
    f, X = spec.apply(proxy, proxy_name)
    pilot_y = pilot_X = None
    pilot_pos = np.array([], dtype=int)
    if pilot is not None:
        pilot_y, pilot_X = spec.apply(pilot, "pilot")
        pilot_pos = units.get_indexer(pilot.index)
    synth_mean = None
    if synth_frames:
        # the unit's mean synthetic outcome, averaged over the synthetic sources
        means = []
        for name, frame in synth_frames.items():
            y_s, _ = spec.apply(frame, name)
            per_unit = pd.Series(y_s, index=frame.index).groupby(level=0).mean()
            missing = units.difference(per_unit.index)
            if len(missing):
                raise DesignError(
                    f"synthetic frame {name!r} has no sample for unit(s) {describe_units(missing)}"
                )
            means.append(per_unit.reindex(units).to_numpy())
        synth_mean = np.mean(means, axis=0)
    return _Frames(units, X, f, list(spec.param_names), pilot_y, pilot_X, pilot_pos, synth_mean, spec)


def _pilot_residual(family: GLMFamily, frames: _Frames, influence: Influence) -> np.ndarray:
    """The pilot's human residual net of the LLM's (see `synthinfer.design.uncertainty`)."""
    if frames.pilot_X is None or frames.pilot_y is None:
        raise DesignError("the pilot's residual needs a pilot of labeled units (pilot=)")
    pos = frames.pilot_pos
    llm_mean = family.mean(frames.X[pos] @ influence.params)
    try:
        theta = fit_family(family, frames.pilot_X, frames.pilot_y, "pilot")
        human_mean = family.mean(frames.pilot_X @ theta)
    except DesignError:
        # a small pilot can be separated: use the LLM's fit for the human mean
        human_mean = llm_mean
    return pilot_residual(frames.pilot_y, human_mean, frames.f[pos], llm_mean)


def _targets(target: Any, names: list[str]) -> list[int]:
    if target is None:
        chosen = [n for n in names if n != "Intercept"] or list(names)
    else:
        chosen = [target] if isinstance(target, str) else list(target)
    unknown = [t for t in chosen if t not in names]
    if unknown or not chosen:
        raise DesignError(f"target term(s) {unknown or chosen} are not among the formula's terms {names}")
    return [names.index(t) for t in chosen]


def _finish(
    kind: str, units: pd.Index, pool_ids: pd.Index, pilot_ids: pd.Index, unit_score: np.ndarray,
    costs: np.ndarray, budget: Any, uniform_mix: float, clusters: pd.Series | None,
    random_pilot: bool = False, **extra: Any,
) -> Design:
    """Allocate the budget over the pool (units or whole clusters) and build the Design."""
    if not isinstance(random_pilot, (bool, np.bool_)):
        raise DesignError(f"random_pilot must be True or False, got {random_pilot!r}")
    if isinstance(uniform_mix, bool) or not isinstance(uniform_mix, numbers.Real) or not 0 <= uniform_mix <= 1:
        raise DesignError(f"uniform_mix must be a number in [0, 1], got {uniform_mix!r}")
    in_pool = units.isin(pool_ids)
    score = unit_score[in_pool]
    cost = costs[in_pool]
    what = "pool's total cost" if extra.get("costed") else "number of units to draw from"
    budget = _check_budget(budget, float(cost.sum()), what)
    if clusters is None:
        prob = mixed_allocation(score, cost, budget, float(uniform_mix), pool_ids)
        pilot_prob = random_pilot_prob(score, prob) if random_pilot else 1.0
    else:
        pool_clusters = clusters.loc[pool_ids].to_numpy()
        codes, cluster_names = pd.factorize(pool_clusters)
        # a cluster's variance term is the sum of its units' (influence x disagreement)^2
        cluster_score = np.sqrt(np.bincount(codes, weights=score**2))
        cluster_cost = np.bincount(codes, weights=cost)
        cluster_prob = mixed_allocation(
            cluster_score, cluster_cost, budget, float(uniform_mix), pd.Index(cluster_names)
        )
        prob = cluster_prob[codes]
        pilot_prob = random_pilot_prob(cluster_score, cluster_prob) if random_pilot else 1.0
    full = pd.Series(np.nan, index=units, name="pi")
    full.loc[pool_ids] = prob
    # a random pilot's units count as typical drawn units (see random_pilot_prob)
    full.loc[pilot_ids] = pilot_prob
    keep = units.isin(pool_ids) | units.isin(pilot_ids)
    extra.pop("costed", None)
    return Design(
        prob=full[keep],
        pool=pool_ids,
        budget=budget,
        uniform_mix=float(uniform_mix),
        score=pd.Series(score, index=pool_ids, name="score"),
        kind=kind,
        clusters=clusters,
        pilot_prob=pilot_prob,
        **extra,
    )


def random_pilot_prob(score: np.ndarray, prob: np.ndarray) -> float:
    """The pi that a simple random pilot's units take: ``sum s^2 / sum (s^2 / pi)`` over the pool.

    Write ``W_i`` for unit i's weight: ``a`` if it is in the pilot, ``R_i /
    pi_i`` if not (R_i: drawn from the pool). When the pilot is a simple
    random sample (each unit in it with the same probability ``p0``, whatever
    its label), ``E[W_i | unit i] = p0 a + (1 - p0)`` for every unit and every
    ``a``, because ``E[R_i | pilot] = pi_i``: the weighted estimating equations
    stay unbiased. ``a = 1`` (pi = 1) treats the pilot as a stratum of its own
    that spends its labels on itself alone (with 50 of 200 labels in the pilot,
    a quarter of the budget then says nothing about the other units). The
    variance of the weighted equations, ``sum E[W_i^2] psi_i^2 / (sum E W_i)^2``,
    is least at ``a = E[psi^2 / pi] / E[psi^2]``, the inverse probability a
    typical pool unit carries, averaged with the weights of its squared score;
    its estimate from the design's own scores ``s_i`` (proportional to the
    expected ``|psi_i|``) is ``a = sum s^2 / pi / sum s^2``. It makes a uniform
    pool design with a random pilot exactly uniform labeling of every unit
    (``a = N_pool / budget``) and gives a pilot unit of a design concentrated
    on a rare covariate the small weight its designed units have. ``a``
    depends on the pilot's labels only through the disagreement model, a
    smooth function of all pilot units, so the equations' bias from it is of
    smaller order than their standard error.
    """
    s2 = np.asarray(score, dtype=float) ** 2
    prob = np.asarray(prob, dtype=float)
    if not np.any(s2 > 0):
        s2 = np.ones(len(prob))
    return float(min(1.0, s2.sum() / (s2 / prob).sum()))


def _clusters_and_cost(
    proxy: pd.DataFrame, units: pd.Index, pilot_ids: pd.Index, clusters: Any, cost: Any
) -> tuple[pd.Series | None, np.ndarray]:
    cluster_series = None
    if clusters is not None:
        cluster_series = _unit_series(clusters, proxy, units, "clusters")
        if len(pilot_ids):
            pilot_clusters = set(cluster_series.loc[pilot_ids])
            split = units[cluster_series.isin(pilot_clusters).to_numpy() & ~units.isin(pilot_ids)]
            if len(split):
                raise DesignError(
                    f"clusters are drawn whole, but the pilot holds part of cluster(s) "
                    f"{describe_units(sorted(set(cluster_series.loc[split]), key=str))}: units "
                    f"{describe_units(split)} of those clusters are not in the pilot"
                )
    if cost is None:
        unit_cost = np.ones(len(units))
    else:
        unit_cost = pd.to_numeric(_unit_series(cost, proxy, units, "cost"), errors="coerce").to_numpy(float)
        bad = ~np.isfinite(unit_cost) | (unit_cost <= 0)
        if bad.any():
            raise DesignError(f"cost must be a positive number for every unit; not for {describe_units(units[bad])}")
    return cluster_series, unit_cost


# -- the designs ------------------------------------------------------------------------

def optimal_design(
    formula: str,
    proxy: pd.DataFrame | Mapping[str, pd.DataFrame],
    synth: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
    model: str | Family = "ols",
    budget: float | None = None,
    pilot: pd.DataFrame | None = None,
    target: str | Sequence[str] | None = None,
    uniform_mix: float = 0.1,
    uncertainty: Any = "auto",
    *,
    confidence: str | None = None,
    clusters: Any = None,
    cost: Any = None,
    pool: Any = None,
    source: str | None = None,
    engine: str | None = None,
    eval_env: int | Mapping[str, Any] = 0,
    random_pilot: bool = False,
) -> Design:
    """The variance-optimal labeling probabilities for the target coefficients.

    ``pi_i`` is proportional to ``sqrt(e_i) * ||(H^-1 x_i)_target||`` (the
    expected squared human-LLM disagreement times the size of the unit's
    influence on the target), water-filled to the budget under ``pi_i <= 1``
    and mixed with uniform sampling: ``pi = (1 - uniform_mix) pi_optimal +
    uniform_mix * budget / N``.

    Parameters
    ----------
    formula : str
        The model's formula, as for the estimators.
    proxy : DataFrame or dict of one
        The LLM's annotation of every unit of the population (index: unit id),
        with the formula's columns; its covariates are the units' covariates.
    synth : DataFrame or dict, optional
        Synthetic samples by unit id; their mean outcome per unit enters the
        pilot's disagreement model.
    model : {"ols", "logit", "poisson"}
        The model family.
    budget : float
        Expected number of new labels (``1 <= budget <= pool size``), or their
        expected cost with ``cost=``.
    pilot : DataFrame, optional
        Units labeled already (human outcome and the formula's columns, by unit
        id; units of the proxy frame). They are not drawn again, enter
        ``prob`` with pi = 1 and teach the disagreement model.
    target : str or list of str, optional
        The coefficient(s) to estimate precisely; every term but the intercept
        by default. Several targets minimise the sum of their variances each
        relative to its own (see `synthinfer.design.influence`).
    uniform_mix : float
        Share of uniform sampling, in [0, 1]; 0.1 by default (as Gligoric et
        al.). Every pool pi is at least ``uniform_mix * budget / N_pool``.
    uncertainty : "auto", "pilot", "confidence", "constant", array or Series
        The model of ``e_i``, see `synthinfer.design.uncertainty`. "auto":
        "pilot" with a pilot, else "confidence" with a confidence column, else
        "constant".
    confidence : str, optional
        Column of the proxy frame holding the LLM's confidence (0..1).
    clusters : str, Series or array, optional
        Cluster of each unit: whole clusters are drawn, with one pi per cluster.
    cost : str, Series or array, optional
        Cost of labeling each unit; the budget is then an expected cost and
        ``pi`` is proportional to the score over ``sqrt(cost)``.
    pool : index-like, optional
        The units to draw from; every proxy unit not in the pilot by default.
        It must not overlap the pilot.
    source : str, optional
        With several proxy sources, the one whose annotation is used.
    engine, eval_env
        As for the estimators' ``from_formula``.
    random_pilot : bool
        Whether the pilot is a simple random sample of the units (every unit
        equally likely to be in it, whatever its label). False (default): the
        pilot units enter ``prob`` with pi = 1, valid however the pilot was
        chosen. True: they all enter with ``sum s^2 / sum (s^2 / pi)`` over
        the pool (``s`` the score), the inverse of a typical pool unit's
        weight (``budget / N_pool`` for a uniform pool), so the pilot's labels
        count for the whole population as drawn labels do; valid only for a
        random pilot, and worth up to the pilot's share of the labels (see
        `random_pilot_prob`).

    Returns
    -------
    Design

    Raises
    ------
    DesignError
        A budget below 1 or above the pool, probabilities that would be 0, a
        pilot overlapping the pool, unknown units, bad columns.
    UnsupportedFamilyError
        The model family has no influence function for the design.
    """
    if budget is None:
        raise DesignError("give the budget: the expected number of new labels (or their cost with cost=)")
    family = design_family(model)
    namespace = eval_env if isinstance(eval_env, Mapping) else capture_namespace(eval_env + 1)
    proxy_name, proxy_frame = _proxy_frame(proxy, source)
    pool_ids, pilot_ids = _pool_and_pilot(proxy_frame.index, pilot, pool)
    frames = _through_formula(formula, proxy_name, proxy_frame, pilot, synth, engine, namespace)
    units = frames.units
    targets = _targets(target, frames.names)
    influence: Influence = influence_direction(family, frames.X, frames.f, targets, proxy_name)

    conf = None
    if confidence is not None:
        conf = pd.to_numeric(_unit_series(confidence, proxy_frame, units, "confidence"), errors="coerce")
        conf = conf.to_numpy(float)
        bad = ~np.isfinite(conf) | (conf < 0) | (conf > 1)
        if bad.any():
            raise DesignError(
                f"confidence column {confidence!r} must lie in [0, 1]; it does not for units "
                f"{describe_units(units[bad])}"
            )
    binary = family.name == "logit"
    how = uncertainty
    if isinstance(how, str) and how == "auto":
        how = "pilot" if pilot is not None and len(pilot) else ("confidence" if conf is not None else "constant")
    if isinstance(how, str):
        if how == "pilot":
            if pilot is None or not len(pilot):
                raise DesignError('uncertainty="pilot" needs a pilot of labeled units (pilot=)')
            features = disagreement_features(frames.f, frames.X, conf, frames.synth_mean, binary)
            e = fit_disagreement(features, frames.pilot_pos, _pilot_residual(family, frames, influence) ** 2)
        elif how == "confidence":
            if conf is None:
                raise DesignError('uncertainty="confidence" needs the column of the LLM\'s confidence (confidence=)')
            if not binary:
                raise DesignError(
                    'uncertainty="confidence" (P(human != LLM) = 1 - confidence) is defined for a '
                    'binary label (model="logit"); give a pilot or your own uncertainty values'
                )
            e = confidence_uncertainty(conf)
        elif how == "constant":
            e = np.ones(len(units))
        else:
            raise DesignError(
                f"uncertainty must be 'auto', 'pilot', 'confidence', 'constant' or per-unit values, got {how!r}"
            )
    else:
        e = user_uncertainty(how, units)

    cluster_series, unit_cost = _clusters_and_cost(proxy_frame, units, pilot_ids, clusters, cost)
    unit_score = np.sqrt(e) * influence.norm
    design = _finish(
        "optimal", units, pool_ids, pilot_ids, unit_score, unit_cost, budget, uniform_mix,
        cluster_series, random_pilot,
        costed=cost is not None,
        uncertainty=pd.Series(e, index=units, name="uncertainty"),
        influence=pd.Series(influence.norm, index=units, name="influence"),
        targets=[frames.names[j] for j in targets],
        unit_cost=None if cost is None else pd.Series(unit_cost, index=units, name="cost"),
        _state={
            "family": family, "X": frames.X, "f": frames.f, "names": frames.names,
            "eta": influence.params, "units": units, "pilot": pilot, "formula": formula,
            "unit_score": unit_score, "unit_cost": unit_cost, "clusters": cluster_series,
            "spec": frames.spec, "proxy_name": proxy_name,
        },
    )
    return design


def stratified_design(
    proxy: pd.DataFrame,
    strata: str | Sequence[str] | pd.Series,
    budget: float,
    allocation: str | Mapping[Any, float] | pd.Series = "proportional",
    *,
    pilot: pd.DataFrame | None = None,
    outcome: str | None = None,
    uniform_mix: float = 0.0,
    pool: Any = None,
    random_pilot: bool = False,
) -> Design:
    """One labeling probability per stratum (e.g. the LLM's label x confidence band).

    Parameters
    ----------
    proxy : DataFrame
        Every unit of the population, indexed by unit id.
    strata : str, list of str or Series
        Column(s) of ``proxy`` whose combinations are the strata, or a Series
        of stratum labels by unit id.
    budget : float
        Expected number of new labels.
    allocation : {"proportional", "equal", "neyman"} or mapping
        ``"proportional"``: the same pi everywhere (uniform labeling);
        ``"equal"``: the same expected number of labels per stratum;
        ``"neyman"``: labels proportional to ``N_h S_h`` with ``S_h`` the
        pilot's standard deviation of the human-minus-LLM outcome in stratum h
        (needs ``pilot`` and ``outcome``); or a mapping stratum -> relative
        weight of its units' probabilities. Strata whose pi would exceed 1 get
        1 and the rest of the budget goes to the others.
    pilot : DataFrame, optional
        Labeled units (not drawn again; pi = 1 in ``prob``).
    outcome : str, optional
        The outcome column (human in ``pilot``, LLM's in ``proxy``) for "neyman".
    uniform_mix : float
        Share of uniform sampling mixed in (0 by default).
    pool : index-like, optional
        Units to draw from; all non-pilot units by default.
    random_pilot : bool
        As for `optimal_design`: True for a simple random pilot, whose units
        then enter ``prob`` with the strata scores' weighted mean probability
        (``budget / N_pool`` for proportional allocation) instead of 1.

    Returns
    -------
    Design
    """
    if not isinstance(proxy, pd.DataFrame):
        raise DesignError(f"proxy must be a DataFrame, got {type(proxy).__name__}")
    units = proxy.index
    if not units.is_unique:
        raise DesignError(f"proxy: unit ids {describe_units(units[units.duplicated()].unique())} repeat")
    pool_ids, pilot_ids = _pool_and_pilot(units, pilot, pool)
    if isinstance(strata, pd.Series):
        labels = _unit_series(strata, proxy, units, "strata")
    else:
        columns = [strata] if isinstance(strata, str) else list(strata)
        missing = [c for c in columns if c not in proxy.columns]
        if missing:
            raise DesignError(f"strata column(s) {missing} are not columns of the proxy frame")
        labels = proxy[columns].astype(str).agg(" | ".join, axis=1)
    counts = labels.loc[pool_ids].value_counts()
    if isinstance(allocation, str) and allocation == "proportional":
        weight = pd.Series(1.0, index=counts.index)
    elif isinstance(allocation, str) and allocation == "equal":
        weight = 1.0 / counts
    elif isinstance(allocation, str) and allocation == "neyman":
        if pilot is None or outcome is None:
            raise DesignError('allocation="neyman" needs a pilot and the outcome column (pilot=, outcome=)')
        for name, frame in (("pilot", pilot), ("proxy", proxy)):
            if outcome not in frame.columns:
                raise DesignError(f"outcome column {outcome!r} is not in the {name} frame")
        gap = pilot[outcome].astype(float) - proxy.loc[pilot.index, outcome].astype(float)
        sd = gap.groupby(labels.loc[pilot.index].to_numpy()).std(ddof=1)
        lacking = [h for h in counts.index if h not in sd.index or not np.isfinite(sd.get(h, np.nan))]
        if lacking:
            raise DesignError(
                f"Neyman allocation needs at least two pilot units in every stratum; strata "
                f"{lacking[:10]} have fewer"
            )
        # N_h S_h labels over N_h units: pi_h proportional to S_h
        weight = sd.reindex(counts.index)
    elif isinstance(allocation, (Mapping, pd.Series)):
        weight = pd.Series(allocation, dtype=float)
        lacking = [h for h in counts.index if h not in weight.index]
        if lacking:
            raise DesignError(f"allocation gives no weight for strata {lacking[:10]}")
        weight = weight.reindex(counts.index)
        if (weight < 0).any() or not np.all(np.isfinite(weight)):
            raise DesignError("allocation weights must be finite and >= 0")
    else:
        raise DesignError(
            f"allocation must be 'proportional', 'equal', 'neyman' or a mapping, got {allocation!r}"
        )
    unit_score = labels.map(weight).fillna(0.0).to_numpy(float)
    return _finish(
        "stratified", units, pool_ids, pilot_ids, unit_score, np.ones(len(units)), budget,
        uniform_mix, None, random_pilot, _state={"strata": labels},
    )
