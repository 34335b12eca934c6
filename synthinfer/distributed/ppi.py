"""PPI++'s unlabeled units when their auxiliary rows live in partitions.

PPI++ (`synthinfer.estimators.PPI`) sums over the unlabeled units' auxiliary
rows: the rectified equation's scores, Jacobian and loss, OLS's unlabeled
fit, and for the power tuning and the covariance the count, sum and cross
product of their per-unit scores. Without weights every unlabeled unit's
rows carry the source's own weight (1/k), so each of these sums is the sum
over all rows, one pass of the GMM path's reductions (the batched totals of
source.py, the per-unit Gram of blocks.py, the objective), minus the same
sum over the labeled units' rows, which are in memory. No N-row array exists
on the client.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..exceptions import SpecificationError
from .blocks import _joint
from .reduction import map_reduce
from .source import PartitionedEvaluation, PartitionedSource

__all__ = ["UnlabeledPartitions", "UnlabeledEvaluation", "check_partitioned_ppi"]


def check_partitioned_ppi(labeling_prob: Any, plain_quantile: bool) -> None:
    """What PPI++ on Dask sources does not do yet, refused with the reason."""
    if labeling_prob is not None:
        raise SpecificationError(
            "ppi with labeling_prob= is not supported for Dask sources yet: the unlabeled "
            "units' weights 1/(1 - pi) would be an N-row array on the client; fit in memory"
        )
    if plain_quantile:
        raise SpecificationError(
            "ppi of a plain quantile on a Dask source is not supported yet: its rectified CDF "
            "sorts every auxiliary outcome in memory; fit in memory"
        )


class UnlabeledEvaluation:
    """Sums over the unlabeled units' rows at one parameter vector: all rows' totals
    (batched with the other pending evaluations into one pass) minus the labeled rows'."""

    def __init__(self, source: PartitionedSource, family: Any, params: np.ndarray) -> None:
        self.all_rows: PartitionedEvaluation = source.evaluate(family, params)
        self.weight = source.labeled.row_weight
        self.n_rows = source.n_rows - source.labeled.n_rows

    def totals(self) -> tuple[np.ndarray, np.ndarray]:
        sums, jacobian = self.all_rows.totals()
        labeled = self.all_rows.labeled
        return sums - labeled.sums(self.weight), jacobian - labeled.jacobian(self.weight)

    def sums(self) -> np.ndarray:
        return self.totals()[0]

    def jacobian(self) -> np.ndarray:
        return self.totals()[1]


class UnlabeledPartitions:
    """The unlabeled units' auxiliary rows of a Dask source (module docstring).

    It answers PPI++ as its in-memory counterpart (``evaluate``, ``objective``,
    ``solve``) and the step-1 solver (solve.py) as a partitioned source does.
    """

    def __init__(self, source: PartitionedSource) -> None:
        self.source = source
        self.labeled = source.labeled
        self.n_rows = source.n_rows - source.labeled.n_rows

    @property
    def aux_labeled(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The labeled units' auxiliary rows (X, y, weight 1/k), in memory."""
        return self.labeled.X, self.labeled.y, self.labeled.row_weight

    def evaluate(self, family: Any, params: np.ndarray) -> UnlabeledEvaluation:
        return UnlabeledEvaluation(self.source, family, np.asarray(params, dtype=float))

    def objective(self, family: Any, params: np.ndarray) -> float | None:
        total = self.source.objective(family, params)
        labeled = family.objective(self.labeled.X, self.labeled.y, params, self.labeled.row_weight)
        return None if total is None or labeled is None else total - labeled

    def cross_product(self) -> np.ndarray:
        X = self.labeled.X
        return self.source.cross_product() - X.T @ X

    def solve(self, family: Any, *, names: Sequence[str], frame: str, **options: Any) -> np.ndarray:
        """The root of the unlabeled rows' own equation (OLS's unlabeled fit)."""
        from .solve import solve_partitioned

        return solve_partitioned(self, family, names=names, frame=frame, **options).params

    def labeled_unit_scores(self, family: Any, params: np.ndarray) -> np.ndarray:
        """(n, p): each labeled unit's auxiliary score (the mean over its rows), in real's order."""
        return self.labeled.unit_sums(family.evaluate(self.labeled.X, self.labeled.y, params).values())

    def score_moments(self, family: Any, params: np.ndarray) -> tuple[np.ndarray, tuple]:
        """The labeled units' per-unit scores and the unlabeled units' (count, sum, cross
        product) of theirs: one pass for all units' sum and Gram (blocks.py's), less the labeled."""
        source = self.source
        labeled = self.labeled_unit_scores(family, params)
        total, gram = map_reduce(
            source.chunks, _joint, [(source.index, family, np.asarray(params, dtype=float), source.weighted)]
        )
        count = source.n_units - len(labeled)
        return labeled, (count, total - np.ones(len(labeled)) @ labeled, gram - labeled.T @ labeled)
