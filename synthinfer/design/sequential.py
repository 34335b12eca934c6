"""Labeling in rounds, with the disagreement model re-estimated between rounds.

The units not in the pilot are split at random (seeded) into ``rounds``
pools. Round r draws from pool r only, with probabilities computed from
everything labeled before it (the pilot and rounds 1..r-1), and its budget is
the pool's share of the total. So **every unit's inclusion is decided exactly
once, with a probability known at that moment given the past**.

Why inference stays valid. Let F_r be what is known after round r. For unit
i of pool r, pi_i is fixed given F_{r-1} and ``E[R_i / pi_i | F_{r-1}] = 1``
(Poisson or systematic sampling within the round). Hence for every theta

    E[ sum_{pilot} psi_i(theta) + sum_r sum_{i in pool r} R_i / pi_i psi_i(theta) ]
        = sum_{all units} psi_i(theta):

the inverse-probability-weighted estimating equations are unbiased, and
their deviation is a sum of martingale differences (one per round). The
labeled set with each unit's own pi (1 for the pilot, its round's pi
otherwise) is therefore passed to any estimator as ``labeling_prob=`` exactly
like a one-shot design: per-unit IPW with the probabilities known at draw time.
The usual sandwich variance is consistent when the rounds' probabilities
settle (the disagreement model converges); the uniform mixture bounds every
weight. The pilot itself may have been chosen in any way: the argument
conditions on it. A simple random pilot (``random_pilot=True``) may instead
take the first round's score-weighted mean probability (see
`synthinfer.design.rules.random_pilot_prob`): each unit's weight then has the
same expectation whether or not it fell in the pilot, which is all the
argument needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import DesignError, describe_units
from ..formula import capture_namespace
from .influence import design_family
from .rules import Design, _proxy_frame, optimal_design

__all__ = ["SequentialDesign"]


class SequentialDesign:
    """Batch-sequential labeling: ``rounds`` designs, each learning from the labels before it.

    Parameters
    ----------
    formula, proxy, synth, model
        As for `optimal_design`.
    budget : float
        Expected number of new labels over all rounds.
    rounds : int
        Number of rounds (pools), at least 1.
    pilot : DataFrame, optional
        Units labeled before the first round.
    seed : int
        Seeds the split into pools and every round's draw.
    method : {"poisson", "fixed"}
        How each round draws (see `Design.draw`).
    random_pilot : bool
        Whether the pilot is a simple random sample of the units: its units
        then take, from the first round on, that round's score-weighted mean
        probability instead of 1 (see `optimal_design`; the first round's
        pool is a random part of the units outside the pilot). The rounds'
        own units keep their round's pi.
    **design_kwds
        Passed to `optimal_design` each round (target, uniform_mix,
        uncertainty, confidence, cost, source, engine). ``uncertainty="auto"``
        uses the confidence rule (or none) before any label exists and the
        pilot model from then on.

    Examples
    --------
    >>> seq = SequentialDesign(formula, proxy=proxy, model="logit", budget=500, rounds=4,
    ...                        confidence="confidence_gpt4o", seed=1)
    >>> while not seq.done:
    ...     ids = seq.next_round().index          # label these units now
    ...     seq.add_labels(human.loc[ids])        # their human labels
    >>> smf.gmm_proxy(formula, real=seq.labeled, proxy=proxy, model="logit",
    ...               labeling_prob=seq.labeling_prob).fit()
    """

    def __init__(
        self,
        formula: str,
        proxy: Any,
        synth: Any = None,
        model: str = "ols",
        budget: float = 100.0,
        rounds: int = 4,
        pilot: pd.DataFrame | None = None,
        seed: int = 0,
        method: str = "poisson",
        eval_env: int | Mapping[str, Any] = 0,
        random_pilot: bool = False,
        **design_kwds: Any,
    ) -> None:
        if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 1:
            raise DesignError(f"rounds must be a positive integer, got {rounds!r}")
        if "pool" in design_kwds or "clusters" in design_kwds:
            raise DesignError("SequentialDesign splits the units into pools itself; pool= and clusters= are not taken")
        if method not in ("poisson", "fixed"):
            raise DesignError(f"method must be 'poisson' or 'fixed', got {method!r}")
        design_family(model)  # a family without an influence function fails now, not in round 1
        self.formula, self.proxy, self.synth, self.model = formula, proxy, synth, model
        self.method = method
        self._kwds = design_kwds
        self._namespace = eval_env if isinstance(eval_env, Mapping) else capture_namespace(eval_env + 1)
        _, frame = _proxy_frame(proxy, design_kwds.get("source"))
        units = frame.index
        pilot_ids = pd.Index([]) if pilot is None else pilot.index
        unknown = pilot_ids.difference(units)
        if len(unknown):
            raise DesignError(f"pilot units {describe_units(unknown)} are not units of the proxy frame")
        rest = units[~units.isin(pilot_ids)]
        if isinstance(budget, bool) or not isinstance(budget, (int, float, np.integer, np.floating)) \
                or not np.isfinite(budget) or budget > len(rest) or budget < 1:
            raise DesignError(
                f"budget must be between 1 and the {len(rest)} units to draw from, got {budget!r}"
            )
        if rounds > len(rest):
            raise DesignError(f"{rounds} rounds for {len(rest)} units: fewer rounds, please")
        self._rng = np.random.default_rng(seed)
        order = self._rng.permutation(len(rest))
        self.pools: list[pd.Index] = [rest[np.sort(part)] for part in np.array_split(order, rounds)]
        self.round_budgets = [budget * len(p) / len(rest) for p in self.pools]
        self.budget = float(budget)
        self.units = units
        self._labeled = [] if pilot is None else [pilot]
        self._prob = pd.Series(np.nan, index=units, name="pi")
        if not isinstance(random_pilot, (bool, np.bool_)):
            raise DesignError(f"random_pilot must be True or False, got {random_pilot!r}")
        self.random_pilot = bool(random_pilot)
        self._pilot_ids = pilot_ids
        # a random pilot's pi is the first round's (see next_round); else 1 now
        self._prob.loc[pilot_ids] = np.nan if self.random_pilot else 1.0
        self.designs: list[Design] = []
        self._pending: pd.Index | None = None

    @property
    def done(self) -> bool:
        """All rounds drawn and labeled."""
        return len(self.designs) == len(self.pools) and self._pending is None

    @property
    def labeled(self) -> pd.DataFrame:
        """The pilot and every round's labeled rows (pass as ``real=``)."""
        if not self._labeled:
            raise DesignError("no unit is labeled yet")
        return pd.concat(self._labeled)

    @property
    def labeling_prob(self) -> pd.Series:
        """pi of every unit decided so far (1 for the pilot), by unit id: ``labeling_prob=``."""
        return self._prob.dropna()

    def next_round(self) -> pd.Series:
        """Compute this round's design from the labels so far and draw; returns the ids to label and their pi."""
        if self._pending is not None:
            raise DesignError(
                f"round {len(self.designs)} is drawn but not labeled: add_labels() its "
                f"{len(self._pending)} units first"
            )
        r = len(self.designs)
        if r == len(self.pools):
            raise DesignError("every round is drawn already")
        pilot = pd.concat(self._labeled) if self._labeled else None
        design = optimal_design(
            self.formula, self.proxy, self.synth, self.model, budget=self.round_budgets[r],
            pilot=pilot, pool=self.pools[r], eval_env=self._namespace,
            random_pilot=self.random_pilot and r == 0, **self._kwds,
        ) if self.round_budgets[r] >= 1 else None
        if design is None:
            raise DesignError(f"round {r + 1}'s budget {self.round_budgets[r]:.3g} is below 1 label: use fewer rounds")
        self.designs.append(design)
        self._prob.loc[design.pool] = design.pool_prob
        if r == 0:
            self._prob.loc[self._pilot_ids] = design.pilot_prob
        drawn = design.draw(self._rng, method=self.method)
        self._pending = drawn.index
        return drawn

    def add_labels(self, labeled: pd.DataFrame) -> None:
        """Give the human-labeled rows of exactly the units the last `next_round` drew."""
        if self._pending is None:
            raise DesignError("no round is waiting for labels: call next_round() first")
        if not isinstance(labeled, pd.DataFrame):
            raise DesignError(f"labels must be a DataFrame, got {type(labeled).__name__}")
        missing = self._pending.difference(labeled.index)
        extra = labeled.index.difference(self._pending)
        if len(missing) or len(extra):
            raise DesignError(
                f"the labels must be for exactly the drawn units; missing {describe_units(missing)}, "
                f"not drawn {describe_units(extra)}"
            )
        self._labeled.append(labeled.loc[self._pending])
        self._pending = None
