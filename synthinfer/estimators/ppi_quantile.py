"""PPI++ for a plain quantile (``y ~ 1``): the rectified CDF.

The quantile's score ``q - 1{y <= theta}`` is a step function of theta, so
the rectified estimating equation is solved where it crosses zero, as
ppi-python 0.2.3 does: on the sorted values of every outcome (its
``exact_grid=True``), the point that minimises ``|F_lam(theta) - q|`` with
the rectified CDF

``F_lam = lam F(aux, unlabeled) + F(human, labeled) - lam F(aux, labeled)``.

ppi-python's interval inverts the rectified z-test of ``F_lam(theta) = q``
over a grid (`rectified_cdf_interval`); the results' ``conf_int`` is the
Wald interval of the kernel sandwich, as for every other estimator.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.sparse
from scipy import stats

from ..exceptions import SpecificationError

__all__ = ["RectifiedCDF", "rectified_cdf_interval", "GRID_POINTS"]

#: ppi-python's default grid: this many equally spaced points over the outcomes' range
GRID_POINTS = 5000
#: grid points per chunk times rows held at once in the interval's indicator matrices
_CHUNK_CELLS = 2_000_000


@dataclass(frozen=True, eq=False)
class RectifiedCDF:
    """The weighted empirical CDFs that PPI rectifies, one row per outcome value.

    ``human`` and ``human_weight`` are the labeled units' outcomes and design
    weights (mean 1); ``aux`` and ``aux_weight`` every row of the source with
    its unit's design weight times its ``1 / k``; ``aux_unit`` each row's unit
    position; ``labeled_unit`` marks the labeled units (in unit order),
    ``labeled_pos`` gives them in the human rows' order.
    """

    human: np.ndarray
    human_weight: np.ndarray
    aux: np.ndarray
    aux_weight: np.ndarray
    aux_unit: np.ndarray
    labeled_unit: np.ndarray
    labeled_pos: np.ndarray

    @property
    def n(self) -> int:
        return len(self.human)

    @property
    def n_unlabeled(self) -> int:
        return int((~self.labeled_unit).sum())

    @functools.cached_property
    def _aggregator(self) -> scipy.sparse.csr_matrix | None:
        """Sums rows into units (None: the rows are the units, in order)."""
        n_units, rows = len(self.labeled_unit), len(self.aux)
        if rows == n_units and np.array_equal(self.aux_unit, np.arange(rows)):
            return None
        return scipy.sparse.csr_matrix((np.ones(rows), (self.aux_unit, np.arange(rows))), shape=(n_units, rows))

    def exact_grid(self) -> np.ndarray:
        """Every outcome value, sorted: ppi-python's ``exact_grid=True``."""
        return np.sort(np.concatenate([self.human, self.aux]))

    def linear_grid(self, points: int = GRID_POINTS) -> np.ndarray:
        """``points`` equally spaced values over the outcomes' range: ppi-python's default grid."""
        values = np.concatenate([self.human, self.aux])
        return np.linspace(values.min(), values.max(), points)

    def cdf(self, grid: np.ndarray, lam: float) -> np.ndarray:
        """``F_lam`` at each grid point (right-continuous: ``1{y <= theta}``)."""
        on_labeled = self.labeled_unit[self.aux_unit]
        aux_labeled = _weighted_cdf(self.aux[on_labeled], self.aux_weight[on_labeled], grid) / self.n
        aux_unlabeled = _weighted_cdf(self.aux[~on_labeled], self.aux_weight[~on_labeled], grid) / self.n_unlabeled
        human = _weighted_cdf(self.human, self.human_weight, grid) / self.n
        return human + lam * (aux_unlabeled - aux_labeled)

    def point_estimate(self, q: float, lam: float) -> float:
        """The first value of the exact grid where ``|F_lam - q|`` is smallest."""
        grid = self.exact_grid()
        return float(grid[np.argmin(np.abs(self.cdf(grid, lam) - q))])

    def standard_errors(self, grid: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
        """The standard errors of the rectifier and of the imputed CDF at each grid
        point: ``sd(w (1{Y <= t} - lam A(t))) / sqrt(n)`` over the labeled units and
        ``lam sd(w A(t)) / sqrt(N_u)`` over the unlabeled ones, A a unit's share of
        auxiliary rows at or below t (ddof = 0, ppi-python's ``np.std``)."""
        n_units = len(self.labeled_unit)
        rect_sd, unl_sd = np.empty(len(grid)), np.empty(len(grid))
        unlabeled = ~self.labeled_unit
        step = max(1, _CHUNK_CELLS // max(n_units + len(self.aux), 1))
        for start in range(0, len(grid), step):
            cols = slice(start, start + step)
            below = (self.aux[:, None] <= grid[None, cols]) * self.aux_weight[:, None]
            per_unit = below if self._aggregator is None else self._aggregator @ below  # w_i A_i(t)
            rect = (self.human[:, None] <= grid[None, cols]) * self.human_weight[:, None]
            rect = rect - lam * per_unit[self.labeled_pos]
            rect_sd[cols] = rect.std(axis=0)
            unl_sd[cols] = abs(lam) * per_unit[unlabeled].std(axis=0)
        return rect_sd / np.sqrt(self.n), unl_sd / np.sqrt(self.n_unlabeled)


def _weighted_cdf(values: np.ndarray, weights: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """``sum_j w_j 1{v_j <= t}`` at each grid point t."""
    order = np.argsort(values, kind="stable")
    cumulative = np.concatenate([[0.0], np.cumsum(weights[order])])
    return cumulative[np.searchsorted(values[order], grid, side="right")]


def rectified_cdf_interval(
    cdf: RectifiedCDF, q: float, lam: float, alpha: float = 0.05, grid: str | int | np.ndarray = GRID_POINTS,
) -> tuple[float, float]:
    """The grid points where the rectified z-test of ``F_lam(theta) = q`` is not
    rejected at level ``alpha``: the first and the last.

    ppi-python's ``ppi_quantile_ci`` at ``lam = 1`` (its only lambda): with
    ``grid=5000`` (its default) or ``grid="exact"`` (its ``exact_grid=True``) the
    endpoints are the same grid points. The interval needs no density estimate;
    its resolution is the grid's.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if isinstance(grid, str):
        if grid != "exact":
            raise ValueError(f"grid must be 'exact', a number of points or an array, got {grid!r}")
        points = cdf.exact_grid()
    elif isinstance(grid, (int, np.integer)):
        if grid < 2:
            raise ValueError(f"the grid needs at least 2 points, got {grid}")
        points = cdf.linear_grid(int(grid))
    else:
        points = np.sort(np.asarray(grid, dtype=float).ravel())
    rect_se, unl_se = cdf.standard_errors(points, lam)
    se = np.maximum(np.sqrt(rect_se**2 + unl_se**2), 1e-16)
    z = (cdf.cdf(points, lam) - q) / se
    accepted = points[2.0 * stats.norm.sf(np.abs(z)) > alpha]
    if len(accepted) == 0:
        raise SpecificationError(
            f"no grid point between {points[0]:.6g} and {points[-1]:.6g} is accepted at "
            f"alpha = {alpha:g}: the grid is too coarse for this interval; give more points"
        )
    return float(accepted[0]), float(accepted[-1])
