"""A fast bootstrap of the two-step GMM fit: every replicate is the whole
two-step estimator, but no replicate refits from scratch.

The reference bootstrap (`synthinfer.inference.bootstrap`) draws units (or
clusters) with replacement and refits everything, which costs a pass over
all N units' rows per replicate. Here a replicate is the same draw, computed
from what the fit already has:

- the **labeled units** (few) are handled exactly: the drawn labeled units
  enter with their multiplicities as frequency weights, and the target's
  step-1 solve, the labeled moments, their Jacobians and S's labeled blocks
  are re-evaluated on their rows at every iterate;
- the **unlabeled units** (many) enter only through the auxiliary
  sources' all-units blocks. Their per-unit (or per-cluster) contributions
  ``v_c`` at the estimate are computed once; a replicate needs their sum
  over the drawn copies, drawn exactly when there are at most
  `EXACT_POOL_MAX` unlabeled groups and otherwise from its normal limit
  (mean ``D mu``, covariance ``D Sigma`` for D drawn groups: the sum of
  thousands of independent draws), plus a linear term ``J (eta - eta_hat)``
  with the pool's Jacobian J. S's all-units block over the unlabeled pool is
  its expectation (an average over thousands of groups).

The number of drawn groups that hold labeled units is binomial, as in the
reference bootstrap, so a replicate is a draw from the same distribution up
to the normal and linear approximations of the unlabeled pool, whose errors
shrink with the number of unlabeled units. Each replicate runs step 1 (the
target solved on its labeled rows, each source's all-units block by a
Newton step), S and its Stein shrinkage, Gauss-Newton to convergence and
the replicate's own standard errors (for bootstrap-t), in time that depends
on n, not N.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import scipy.linalg
import scipy.sparse

from ..exceptions import SpecificationError
from ..moments import group_sums
from ..weighting import canonical_statistics, shrink, stein_rule

__all__ = ["ReplicateBootstrap", "EXACT_POOL_MAX"]

#: up to this many unlabeled groups, their sums are resampled exactly
EXACT_POOL_MAX = 20_000


class ReplicateFailure(Exception):
    """A replicate whose two-step estimate does not exist (separation, singular S)."""


@dataclass
class _SourceRows:
    """One source's rows of the labeled units, and its all-units summaries."""

    X: np.ndarray
    y: np.ndarray
    row_weight: np.ndarray  # 1/k per row
    labeled_of_row: np.ndarray  # the labeled unit (0..n-1) of each row
    aggregate: scipy.sparse.csr_matrix  # (n, rows): per labeled unit, sum of 1/k-weighted rows
    pool_jacobian: np.ndarray  # summed Jacobian of the unlabeled units' rows at eta_hat


class ReplicateBootstrap:
    """Everything a replicate needs, computed once from a fit.

    Parameters
    ----------
    results : GMMSynthResults
        The fit (any family, sources, clusters, labeling probabilities), in
        memory or on Dask sources (unclustered, as those fits are).
    exact_pool_max : int
        Up to this many unlabeled groups their sums are drawn exactly, above it
        from the normal limit. On Dask sources the draws are always the normal
        limit's: the exact draw needs every unlabeled unit's contribution on the
        client, the normal limit only their mean and covariance (sums over the
        partitions).
    """

    def __init__(self, results: Any, exact_pool_max: int = EXACT_POOL_MAX) -> None:
        model = results.model
        data = model.model_data
        self.model, self.family, self.layout = model, model.family, model.layout
        self.data = data
        self.params = np.asarray(results.params_full, dtype=float)
        self.shrink = getattr(results.weighting, "factor", None) is not None
        #: the Stein rule's null mean, the full sample's in every replicate
        self.stein_d = float(getattr(results.weighting, "d", np.nan))
        self.smooth = bool(self.family.smooth)
        n, q, M = data.n_labeled, self.layout.q, self.layout.n_sources
        self.n, self.q, self.M = n, q, M
        #: the columns of every source's all-units block
        self.all_units = np.concatenate(
            [np.arange(self.layout.all_units_block(m).start, self.layout.all_units_block(m).stop) for m in range(M)]
        ) if M else np.zeros(0, dtype=int)
        self.w = np.ones(n) if data.labeled_weight is None else np.asarray(data.labeled_weight, dtype=float)
        #: survey weights: w on every block of a unit (u on the labeled units), and
        #: w/pi (self.w) on its labeled blocks
        unit_weight = np.ones(data.n_units) if data.unit_weight is None else np.asarray(data.unit_weight, dtype=float)
        self.u = unit_weight[data.labeled_pos]
        self.equal_weights = bool(np.array_equal(self.w, self.u))
        etas = self.layout.split_params(self.params)[1:]
        if getattr(data, "partitioned", False):
            self._partitioned_pool(results, etas)
            return
        # per unit, each source's all-units contribution at eta_hat: (N, q M)
        is_labeled = np.zeros(data.n_units, dtype=bool)
        is_labeled[data.labeled_pos] = True
        labeled_index = np.full(data.n_units, -1)
        labeled_index[data.labeled_pos] = np.arange(n)
        contributions = np.zeros((data.n_units, q * M))
        self.sources: list[_SourceRows] = []
        for m, (source, eta) in enumerate(zip(data.sources, etas)):
            evaluation = self.family.evaluate(source.X, source.y, eta)
            row_weight = np.asarray(source.row_weight, dtype=float)
            contributions[:, m * q:(m + 1) * q] = unit_weight[:, None] * (
                source.unit_sums(evaluation.values()) if not source.one_row_per_unit else evaluation.values()
            )
            all_units_weight = row_weight * unit_weight[source.unit_pos]
            rows = source.labeled_rows
            of_row = labeled_index[source.unit_pos[rows]]
            aggregate = scipy.sparse.csr_matrix(
                (row_weight[rows], (of_row, np.arange(len(rows)))), shape=(n, len(rows))
            )
            total_jacobian = evaluation.jacobian(all_units_weight)
            labeled_jacobian = evaluation.jacobian(all_units_weight[rows], rows=rows)
            self.sources.append(_SourceRows(
                X=source.X[rows], y=source.y[rows], row_weight=row_weight[rows], labeled_of_row=of_row,
                aggregate=aggregate, pool_jacobian=total_jacobian - labeled_jacobian,
            ))
        # groups: what the fit's covariance treats as independent
        groups = results.covariance.groups
        if groups is None:
            codes, n_groups = np.arange(data.n_units), data.n_units
        else:
            codes, n_groups = groups
        self.clustered = groups is not None
        self.n_groups = n_groups
        sizes = np.bincount(codes, minlength=n_groups).astype(float)
        group_has_labeled = np.zeros(n_groups, dtype=bool)
        group_has_labeled[codes[data.labeled_pos]] = True
        labeled_groups = np.flatnonzero(group_has_labeled)
        pool_groups = np.flatnonzero(~group_has_labeled)
        group_index = np.full(n_groups, -1)
        group_index[labeled_groups] = np.arange(len(labeled_groups))
        #: for each labeled unit, its labeled group (0..C_L-1)
        self.group_of_labeled = group_index[codes[data.labeled_pos]]
        self.n_labeled_groups = len(labeled_groups)
        unlabeled = ~is_labeled
        # unlabeled members' contributions: the labeled groups' fixed part, and the pool
        if not self.clustered:  # every unit its own group: no summing to do
            unlabeled_sums = np.where(unlabeled[:, None], contributions, 0.0)
        elif unlabeled.any():
            unlabeled_sums = group_sums(codes[unlabeled], n_groups, contributions[unlabeled])
        else:
            unlabeled_sums = np.zeros((n_groups, q * M))
        self.labeled_group_fixed = unlabeled_sums[labeled_groups]
        self.labeled_group_size = sizes[labeled_groups]
        self.labeled_group_unlabeled = (sizes - np.bincount(codes[data.labeled_pos], minlength=n_groups))[labeled_groups]
        pool = np.column_stack([unlabeled_sums[pool_groups], sizes[pool_groups]])
        self.n_pool = len(pool_groups)
        self.n_unlabeled = int(unlabeled.sum())
        self.exact_pool = self.n_pool <= exact_pool_max
        self.pool = pool
        if self.n_pool:
            self.pool_mean = pool.mean(axis=0)
            centered = pool - self.pool_mean
            self.pool_cov = centered.T @ centered / self.n_pool
            v, size = pool[:, :-1], pool[:, -1]
            self.pool_vv = v.T @ v / self.n_pool
            self.pool_nv = size @ v / self.n_pool
            self.pool_nn = float(size @ size / self.n_pool)
            if not self.exact_pool:
                eigval, eigvec = np.linalg.eigh(self.pool_cov)
                self.pool_root = eigvec * np.sqrt(np.clip(eigval, 0, None))

    def _partitioned_pool(self, results: Any, etas: list[np.ndarray]) -> None:
        """The labeled rows and the pool's moments of a fit on Dask sources.

        Every unit is its own group (clustering is refused on Dask sources) and
        carries no survey weight. The unlabeled units enter through sums only:
        each source's Jacobian over all rows minus its labeled rows', and the
        sum and Gram of the per-unit contributions over all N units (one pass,
        `joint_sums`) minus the labeled units' (in memory). The pool is drawn
        from its normal limit, which needs nothing else; no N-row array exists.
        """
        from ..distributed.blocks import joint_sums

        data, n, q, M = self.data, self.n, self.q, self.M
        if results.covariance.groups is not None:  # pragma: no cover - refused when fitting
            raise SpecificationError("the fast bootstrap of a clustered fit is not available on Dask sources")
        evaluations = [source.evaluate(self.family, eta) for source, eta in zip(data.sources, etas)]
        labeled_contributions = np.zeros((n, q * M))
        self.sources = []
        for m, (source, evaluation) in enumerate(zip(data.sources, evaluations)):
            labeled = source.labeled
            row_weight = np.asarray(labeled.row_weight, dtype=float)
            rows = labeled.labeled_rows
            of_row = labeled.unit_pos[rows]  # labeled units are listed first, in real's order
            aggregate = scipy.sparse.csr_matrix(
                (row_weight[rows], (of_row, np.arange(len(rows)))), shape=(n, len(rows))
            )
            labeled_contributions[:, m * q:(m + 1) * q] = evaluation.values().labeled_values
            # the sums over all rows take the source's own weights 1/k (one pass for every source)
            pool_jacobian = evaluation.jacobian() - evaluation.jacobian(row_weight[rows], rows=rows)
            self.sources.append(_SourceRows(
                X=labeled.X[rows], y=labeled.y[rows], row_weight=row_weight[rows], labeled_of_row=of_row,
                aggregate=aggregate, pool_jacobian=pool_jacobian,
            ))
        N = data.n_units
        self.clustered = False
        self.n_groups = N
        # in memory a labeled unit's group is its rank among the labeled units' positions;
        # the Dask sources are sorted by unit id, so that is its id's rank (the same draws
        # as an in-memory fit on the sorted frames, whatever real's order)
        self.group_of_labeled = np.empty(n, dtype=int)
        self.group_of_labeled[np.argsort(np.asarray(data.real_index), kind="stable")] = np.arange(n)
        self.n_labeled_groups = n
        self.labeled_group_fixed = np.zeros((n, q * M))
        self.labeled_group_size = np.ones(n)
        self.labeled_group_unlabeled = np.zeros(n)
        self.n_pool = self.n_unlabeled = N - n
        self.exact_pool = False
        self.pool = np.zeros((0, q * M + 1))
        if self.n_pool:
            total, gram = joint_sums(evaluations) if M else (np.zeros(0), np.zeros((0, 0)))
            v_mean = (total - labeled_contributions.sum(axis=0)) / self.n_pool
            self.pool_vv = (gram - labeled_contributions.T @ labeled_contributions) / self.n_pool
            self.pool_nv = v_mean
            self.pool_nn = 1.0
            self.pool_mean = np.append(v_mean, 1.0)
            # [v, 1]'s covariance: the size column is constant
            self.pool_cov = np.zeros((q * M + 1, q * M + 1))
            self.pool_cov[:-1, :-1] = self.pool_vv - np.outer(v_mean, v_mean)
            eigval, eigvec = np.linalg.eigh(self.pool_cov)
            self.pool_root = eigvec * np.sqrt(np.clip(eigval, 0, None))

    # -- one replicate ----------------------------------------------------------
    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, int]:
        """Multiplicities of the labeled units and groups, the unlabeled sum
        (q M), its unit count, and the number of independent labeled draws."""
        C, C_L = self.n_groups, self.n_labeled_groups
        drawn_labeled = rng.binomial(C, C_L / C) if self.n_pool else C
        group_counts = np.bincount(rng.integers(0, C_L, size=drawn_labeled), minlength=C_L).astype(float)
        counts = group_counts[self.group_of_labeled]
        D = C - drawn_labeled
        fixed = group_counts @ self.labeled_group_fixed
        unlabeled_units = float(group_counts @ self.labeled_group_unlabeled)
        if D:
            if self.exact_pool:
                picks = np.bincount(rng.integers(0, self.n_pool, size=D), minlength=self.n_pool)
                total = picks @ self.pool
            else:
                total = D * self.pool_mean + np.sqrt(D) * (self.pool_root @ rng.standard_normal(len(self.pool_mean)))
            fixed = fixed + total[:-1]
            unlabeled_units += total[-1]
        independent = drawn_labeled if self.clustered else int(counts.sum())
        return counts, group_counts, fixed, unlabeled_units, independent

    def _labeled_moments(self, params: np.ndarray) -> tuple[list[Any], np.ndarray]:
        """Evaluations at params and the per-labeled-unit moment rows g_i, (n, K)."""
        theta, *etas = self.layout.split_params(params)
        data = self.data
        target = self.family.evaluate(data.X, data.y, theta)
        pieces = [target.values() * self.w[:, None]]
        evaluations = [target]
        for rows, eta in zip(self.sources, etas):
            evaluation = self.family.evaluate(rows.X, rows.y, eta)
            per_unit = np.asarray(rows.aggregate @ evaluation.values())
            pieces += [per_unit * self.w[:, None], per_unit * self.u[:, None]]
            evaluations.append(evaluation)
        return evaluations, np.hstack(pieces)

    def _labeled_terms(self, params: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The labeled units' moment rows g_i (n, K) at params, and the sum of their
        Jacobians weighted by the draw's counts (K, P): G without the pool."""
        layout = self.layout
        evaluations, g = self._labeled_moments(params)
        G = np.zeros((layout.n_moments, layout.n_params))
        G[layout.moment_block(0), layout.param_block(0)] = evaluations[0].jacobian(counts * self.w)
        for m, (rows, evaluation) in enumerate(zip(self.sources, evaluations[1:])):
            row_counts = counts[rows.labeled_of_row] * rows.row_weight
            cols = layout.param_block(1 + m)
            all_units = evaluation.jacobian(row_counts * self.u[rows.labeled_of_row])
            G[layout.all_units_block(m), cols] = all_units
            # with equal labeling weights the labeled block's Jacobian is the same
            G[layout.labeled_block(m), cols] = all_units if self.equal_weights else evaluation.jacobian(
                row_counts * self.w[rows.labeled_of_row]
            )
        return g, G

    def _state(self, params: np.ndarray, draw: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """(gbar, G, per-labeled-unit moments, N_b) of the replicate at params."""
        counts, _, fixed, unlabeled_units, _ = draw
        layout, q = self.layout, self.q
        n_units = counts.sum() + unlabeled_units
        g, G = self._labeled_terms(params, counts)
        sums = counts @ g
        etas = layout.split_params(params)[1:]
        eta_hats = layout.split_params(self.params)[1:]
        share = unlabeled_units / self.n_unlabeled if self.n_unlabeled else 0.0
        for m, rows in enumerate(self.sources):
            block = layout.all_units_block(m)
            pool_jacobian = share * rows.pool_jacobian
            G[block, layout.param_block(1 + m)] += pool_jacobian
            sums[block] += fixed[m * q:(m + 1) * q] + pool_jacobian @ (etas[m] - eta_hats[m])
        return sums / n_units, G / n_units, g, n_units

    def _s(self, gbar: np.ndarray, g: np.ndarray, draw: tuple, n_units: float) -> np.ndarray:
        """S of the replicate: labeled groups exactly, the pool by its expectation."""
        counts, group_counts, _, _, _ = draw
        if self.clustered:
            H = group_sums(self.group_of_labeled, self.n_labeled_groups, g)
            H[:, self.all_units] += self.labeled_group_fixed
            H -= np.outer(self.labeled_group_size, gbar)
            s = (H * group_counts[:, None]).T @ H
        else:
            centered = g - gbar
            s = (centered * counts[:, None]).T @ centered
        D = self.n_groups - group_counts.sum()
        if self.n_pool and D:
            s += D * self._pool_term(gbar[None])[0]
        return s / n_units

    def _pool_term(self, gbar: np.ndarray) -> np.ndarray:
        """Per row of gbar (B, K), the expected ``(h_c - n_c gbar)(h_c - n_c gbar)'``
        of one unlabeled-only group, ``h_c = [0; v_c]``: (B, K, K)."""
        K = gbar.shape[1]
        vv = np.zeros((K, K))
        vv[np.ix_(self.all_units, self.all_units)] = self.pool_vv
        nh = np.zeros(K)
        nh[self.all_units] = self.pool_nv
        cross = nh[None, :, None] * gbar[:, None, :]
        return vv[None] - cross - np.swapaxes(cross, 1, 2) + self.pool_nn * gbar[:, :, None] * gbar[:, None, :]

    def _batch_weights(self, s: np.ndarray, independent: np.ndarray) -> np.ndarray:
        """W per replicate (shrunk as in the fit); NaN where S is singular.

        Singularity is judged on the unshrunk S, as in the fit: the shrunk one can
        be invertible when S is not. The converse needs no check: shrinking
        scales the cross blocks of the (diagonally scaled) S by a factor in
        [0, 1], a convex combination of S and its block diagonal, whose extreme
        eigenvalues lie inside S's, so a shrunk S is never worse conditioned."""
        scale = np.sqrt(np.clip(np.einsum("bii->bi", s), np.finfo(float).tiny, None))
        scaled = s / (scale[:, :, None] * scale[:, None, :])
        eigenvalues = np.linalg.eigvalsh(np.where(np.isfinite(scaled), scaled, 0.0))
        singular = (eigenvalues[:, 0] <= eigenvalues[:, -1] * 1e-14) | ~np.isfinite(scaled).all(axis=(1, 2))
        if self.shrink and self.M:
            statistic = canonical_statistics(s, self.layout, independent)
            # the diagonal is left alone by the shrinkage: the same scale applies
            scaled = shrink(scaled, self.layout, stein_rule(statistic, self.stein_d))
            singular |= ~np.isfinite(scaled).all(axis=(1, 2))
        scaled[singular] = np.eye(s.shape[1])
        W = np.linalg.inv(scaled) / (scale[:, :, None] * scale[:, None, :])
        W[singular] = np.nan
        return W

    def _weights(self, s: np.ndarray, independent: int) -> np.ndarray:
        """W of one replicate, as `_batch_weights`; a singular S fails the replicate."""
        W = self._batch_weights(s[None], np.array([float(independent)]))[0]
        if not np.isfinite(W).all():
            raise ReplicateFailure("S is singular in this resample")
        return W

    def replicate(self, draw: tuple, maxiter: int = 30, tol: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
        """The two-step estimate of the target and its plain standard errors."""
        counts = draw[0]
        layout, data = self.layout, self.data
        p = layout.k
        # step 1: the target on its drawn labeled rows; each source's all-units
        # block by a Newton step from eta_hat
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                theta = self.family.solve(
                    data.X, data.y, counts * self.w, names=data.param_names, frame="real",
                    start=self.params[:p], tol=1e-6, check_rank=False,
                ).params
            except (ValueError, RuntimeError, np.linalg.LinAlgError) as error:
                raise ReplicateFailure(f"step 1 on the labeled units: {error}") from error
        start = self.params.copy()
        start[:p] = theta
        gbar, G, _, _ = self._state(start, draw)
        for m in range(self.M):
            block, cols = layout.all_units_block(m), layout.param_block(1 + m)
            start[cols] -= np.linalg.solve(G[block, cols], gbar[block])
        gbar, G, g, n_units = self._state(start, draw)
        W = self._weights(self._s(gbar, g, draw, n_units), draw[4])
        params = start
        if self.M:
            for _ in range(maxiter if self.smooth else 1):
                GW = G.T @ W
                hessian = GW @ G
                try:
                    step = -scipy.linalg.solve(hessian, GW @ gbar, assume_a="sym")
                except (np.linalg.LinAlgError, ValueError) as error:
                    raise ReplicateFailure("G'WG is singular in this resample") from error
                se = np.sqrt(np.clip(np.diag(np.linalg.inv(hessian)), 0, None) / n_units)
                params = params + step
                gbar, G, g, n_units = self._state(params, draw)
                if np.max(np.abs(step) / np.where(se > 0, se, 1.0)) < tol:
                    break
        if not np.all(np.isfinite(params)):
            raise ReplicateFailure("the estimate is not finite")
        s = self._s(gbar, g, draw, n_units)
        W_final = W if self.shrink else self._weights(s, draw[4])
        GW = G.T @ (W if self.shrink else W_final)
        bread = np.linalg.solve(GW @ G, GW)
        cov = bread @ s @ bread.T / n_units
        return params[:p], np.sqrt(np.clip(np.diag(cov)[:p], 0, None))

    def identity_draw(self) -> tuple:
        """The draw that is the original data (every group once)."""
        counts = np.ones(self.n)
        group_counts = np.ones(self.n_labeled_groups)
        fixed = group_counts @ self.labeled_group_fixed
        unlabeled_units = float(self.labeled_group_unlabeled.sum())
        if self.n_pool:
            fixed = fixed + self.n_pool * self.pool_mean[:-1]
            unlabeled_units += self.n_pool * self.pool_mean[-1]
        independent = self.n_labeled_groups if self.clustered else self.n
        return counts, group_counts, fixed, unlabeled_units, independent


def replicate_bootstrap(
    results: Any, n_boot: int, seed: Any = None, progress: bool = False, exact_pool_max: int = EXACT_POOL_MAX,
) -> Any:
    """Draw ``n_boot`` replicates; see `GMMSynthResults.bootstrap` (``method="replicate"``);
    ``exact_pool_max`` as `fast_bootstrap`'s."""
    from .bootstrap import BootstrapResults

    engine = ReplicateBootstrap(results, exact_pool_max=exact_pool_max)
    rng = np.random.default_rng(seed)
    names = list(results.model.exog_names)
    theta_hat, se_hat = engine.replicate(engine.identity_draw())
    estimates, errors, failures = [], [], []
    iterator: Any = range(n_boot)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="bootstrap", unit="replicate")
    for _ in iterator:
        try:
            theta, se = engine.replicate(engine.draw(rng))
        except ReplicateFailure as failure:
            failures.append(str(failure))
            continue
        estimates.append(theta)
        errors.append(se)
    return BootstrapResults.collect(
        results, names, estimates, errors, failures, n_boot, seed, "replicate",
        studentizing_se=se_hat, replicate_of_estimate=theta_hat,
    )


def row_jacobians(evaluation: Any) -> np.ndarray:
    """Per row, ``d psi_j / d b``: (rows, q, k), from q vector-Jacobian products."""
    q = evaluation.n_moments
    return np.stack([evaluation.vjp(np.eye(q)[j]) for j in range(q)], axis=1)


class KStepBootstrap(ReplicateBootstrap):
    """The k-step bootstrap of Andrews (2002) for the two-step estimator, all
    replicates at once (``res.bootstrap(method="fast")``).

    Per replicate: the step-1 values by one Newton step from the fit's step-1
    values; S and its Stein shrinkage at them (the labeled units' moments there
    by a first-order expansion); then k = 2 Gauss-Newton steps from the
    estimate, the first with the replicate's exact moments and Jacobian at the
    estimate, the second at the replicate's own first step. Each Newton step
    squares the distance to the replicate's two-step estimate (Andrews 2002,
    Econometrica 70: k steps leave an error of order n^-(2^k)/2), so two steps
    reproduce the exact replicate to a few hundredths of a standard error
    while every replicate costs a few matrix products over the labeled units.
    """

    def __init__(self, results: Any, steps: int = 2, exact_pool_max: int = EXACT_POOL_MAX) -> None:
        super().__init__(results, exact_pool_max=exact_pool_max)
        layout = self.layout
        #: Gauss-Newton steps of step 2 (Andrews' k)
        self.steps = int(steps)
        self.start = np.asarray(results.start_params, dtype=float)
        self.g_hat, self.J_hat = self._unit_terms(self.params)
        self.g_one, self.J_one = self._unit_terms(self.start)
        K = layout.n_moments
        # With equal labeling and unit weights a labeled unit's labeled-block and
        # all-units-block moments are the same numbers, so the (B, n, K) arrays
        # keep one copy (`kept` columns) and S's Gram is expanded afterwards
        # (`expand` maps every moment to its kept column): about a third of the
        # work with one source or more.
        duplicate = np.zeros(K, dtype=bool)
        self.expand = np.arange(K)
        if self.equal_weights:
            for m in range(self.M):
                labeled, all_units = layout.labeled_block(m), layout.all_units_block(m)
                duplicate[all_units] = True
                self.expand[all_units] = self.expand[labeled]
        self.kept = np.flatnonzero(~duplicate)
        position = np.full(K, -1)
        position[self.kept] = np.arange(len(self.kept))
        self.expand = position[self.expand]
        self.g_hat_kept = np.ascontiguousarray(self.g_hat[:, self.kept])
        self.g_one_kept = np.ascontiguousarray(self.g_one[:, self.kept])
        # (n K_kept, P), for the first-order expansion of the moments at step 1
        self.J_one_kept = np.ascontiguousarray(self.J_one[:, self.kept]).reshape(-1, layout.n_params)
        # the pool's summed Jacobian (all-units rows, eta columns), at eta_hat
        self.J_pool = np.zeros((K, layout.n_params))
        for m, rows in enumerate(self.sources):
            self.J_pool[layout.all_units_block(m), layout.param_block(1 + m)] = rows.pool_jacobian
        self.group_matrix = np.zeros((0, self.n))
        if self.clustered:
            self.group_matrix = scipy.sparse.csr_matrix(
                (np.ones(self.n), (self.group_of_labeled, np.arange(self.n))), shape=(self.n_labeled_groups, self.n)
            ).toarray()
        # the original moments' mean at the estimate (the identity draw's), which
        # the bootstrap J recenters on; and the fit's S scale, as its J uses
        counts, _, fixed, unlabeled_units, _ = self.identity_draw()
        total = counts @ self.g_hat
        total[self.all_units] += fixed
        self.gbar_hat = total / (counts.sum() + unlabeled_units)
        self.s_scale = float(results.covariance.scale)

    def _unit_terms(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per labeled unit, its moments g_i (n, K) and their Jacobian (n, K, P) at params."""
        layout = self.layout
        theta, *etas = layout.split_params(params)
        data = self.data
        K, P = layout.n_moments, layout.n_params
        g = np.zeros((self.n, K))
        J = np.zeros((self.n, K, P))
        target = self.family.evaluate(data.X, data.y, theta)
        w = self.w[:, None]
        g[:, layout.moment_block(0)] = target.values() * w
        J[:, layout.moment_block(0), layout.param_block(0)] = row_jacobians(target) * w[:, :, None]
        for m, (rows, eta) in enumerate(zip(self.sources, etas)):
            evaluation = self.family.evaluate(rows.X, rows.y, eta)
            per_unit = np.asarray(rows.aggregate @ evaluation.values())
            jac = row_jacobians(evaluation)
            per_unit_jac = np.asarray(rows.aggregate @ jac.reshape(len(jac), -1)).reshape(self.n, *jac.shape[1:])
            cols = layout.param_block(1 + m)
            g[:, layout.labeled_block(m)] = per_unit * w
            g[:, layout.all_units_block(m)] = per_unit * self.u[:, None]
            J[:, layout.labeled_block(m), cols] = per_unit_jac * w[:, :, None]
            J[:, layout.all_units_block(m), cols] = per_unit_jac * self.u[:, None, None]
        return g, J

    def _batch_s(self, g: np.ndarray, gbar: np.ndarray, counts: np.ndarray, group_counts: np.ndarray,
                 D: np.ndarray, n_units: np.ndarray) -> np.ndarray:
        """S per replicate: g (B, n, K_kept) per labeled unit in the kept
        columns, gbar (B, K). ``g`` is overwritten (it is scratch space by then)."""
        expand = self.expand
        if self.clustered:
            H = np.matmul(self.group_matrix, g)[:, :, expand]
            H[:, :, self.all_units] += self.labeled_group_fixed
            H -= self.labeled_group_size[None, :, None] * gbar[:, None, :]
            H *= np.sqrt(group_counts)[:, :, None]
            s = np.matmul(np.swapaxes(H, 1, 2), H)
        else:
            # sum_i c_i (g_i - gbar)(g_i - gbar)' from the uncentered Gram of
            # sqrt(c_i) g_i (one symmetric product; centering the (B, n, K) array
            # first would cost more than the product)
            root = np.sqrt(counts)
            rooted = np.multiply(g, root[:, :, None], out=g)
            gram = np.matmul(np.swapaxes(rooted, 1, 2), rooted)[:, expand][:, :, expand]
            total = np.matmul(root[:, None, :], rooted)[:, 0][:, expand]
            cross = total[:, :, None] * gbar[:, None, :]
            s = gram - cross - np.swapaxes(cross, 1, 2) + counts.sum(axis=1)[:, None, None] * gbar[:, :, None] * gbar[:, None, :]
        if self.n_pool:
            s += D[:, None, None] * self._pool_term(gbar)
        return s / n_units[:, None, None]

    def run(self, draws: list[tuple]) -> KStepBatch:
        """Estimates (B, p), plain standard errors (B, p) and the J statistic (B,) of a
        batch of draws, and why the failed ones (NaN rows) failed.

        The replicate's J is Hansen's (generalized) J of its moments recentered
        on the original ones at the estimate, to first order in the parameters:
        ``N_b c' P' Omega^+ P c`` with ``c = gbar_b(theta_hat) - gbar(theta_hat)``,
        ``P = I - G (G'W G)^-1 G'W`` from the replicate's G and W and
        ``Omega = P S P'`` from its S (Hall and Horowitz 1996: without the
        recentering a bootstrap J would test a restriction the resample does
        not satisfy). The weight matrix and S are the replicate's own, which is
        what the chi-square reference leaves out at small n.
        """
        layout = self.layout
        p = layout.k
        counts = np.array([d[0] for d in draws])
        group_counts = np.array([d[1] for d in draws])
        fixed = np.array([d[2] for d in draws]).reshape(len(draws), -1)
        unlabeled_units = np.array([d[3] for d in draws], dtype=float)
        independent = np.array([d[4] for d in draws], dtype=float)
        B, K, P = len(draws), layout.n_moments, layout.n_params
        n_units = counts.sum(axis=1) + unlabeled_units
        D = self.n_groups - group_counts.sum(axis=1)
        share = unlabeled_units / self.n_unlabeled if self.n_unlabeled else np.zeros(B)
        pool_vec = np.zeros((B, K))
        if self.M:
            pool_vec[:, self.all_units] = fixed

        def sums(g: np.ndarray, J: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """Replicate moment sums at ``at`` (B, P) from unit terms at their own point, and G sums."""
            total = counts @ g + pool_vec + share[:, None] * ((at - self.params) @ self.J_pool.T)
            G = (counts @ J.reshape(len(J), -1)).reshape(len(counts), *J.shape[1:]) + share[:, None, None] * self.J_pool
            return total, G

        # step 1: one Newton step from the fit's step-1 values
        step_one = np.tile(self.start, (B, 1))
        total, G1 = sums(self.g_one, self.J_one, step_one)
        just = layout.just_identified()
        failed = np.zeros(B, dtype=bool)
        for block, cols in [(layout.moment_block(0), layout.param_block(0))] + [
            (layout.all_units_block(m), layout.param_block(1 + m)) for m in range(self.M)
        ]:
            try:
                step_one[:, cols] -= np.linalg.solve(G1[:, block, cols], total[:, block, None])[:, :, 0]
            except np.linalg.LinAlgError:
                for b in range(B):
                    try:
                        step_one[b, cols] -= np.linalg.solve(G1[b, block, cols], total[b, block])
                    except np.linalg.LinAlgError:
                        failed[b] = True
        del just
        # S at the step-1 values: the labeled units' moments expanded around the fit's
        delta = step_one - self.start
        g1 = (delta @ self.J_one_kept.T).reshape(B, self.n, len(self.kept))
        g1 += self.g_one_kept
        # the moment sums are linear in delta as the expansion is: no pass over g1
        total1 = total + np.einsum("bkp,bp->bk", G1, delta)
        s1 = self._batch_s(g1, total1 / n_units[:, None], counts, group_counts, D, n_units)
        W = self._batch_weights(s1, independent)
        # step 2: Gauss-Newton steps from the estimate; the first with the unit
        # terms at the estimate (shared by every replicate), later ones with each
        # replicate's own
        at = np.tile(self.params, (B, 1))
        g_units: np.ndarray | None = None
        total, G = sums(self.g_hat, self.J_hat, at)
        bad = failed.copy()
        for step in range(self.steps):
            if step:
                g_units, G_labeled = self._replicate_terms(at, counts, bad)
                labeled_sums = np.matmul(counts[:, None, :], g_units)[:, 0][:, self.expand]
                total = labeled_sums + pool_vec + share[:, None] * ((at - self.params) @ self.J_pool.T)
                G = G_labeled + share[:, None, None] * self.J_pool
            gbar, G_mean = total / n_units[:, None], G / n_units[:, None, None]
            GW = np.matmul(np.swapaxes(G_mean, 1, 2), W)
            hessian = np.matmul(GW, G_mean)
            bad |= ~np.isfinite(hessian).all(axis=(1, 2))
            hessian[bad] = np.eye(P)
            GW[bad] = 0.0
            bread = np.linalg.solve(hessian, GW)
            if not step:
                # at the estimate: the recentered moments and P's G and bread for J
                recentered = gbar - self.gbar_hat
                projected = recentered - np.einsum("bkp,bp->bk", G_mean, np.einsum("bpk,bk->bp", bread, recentered))
                G_hat, bread_hat = G_mean, bread
            at = at - np.einsum("bpk,bk->bp", bread, gbar)
            bad |= ~np.isfinite(at).all(axis=1)
            at[bad] = self.params
            if not self.smooth:
                break  # the estimator itself is one step (scores that are step functions)
        estimates = at
        # the replicate's plain covariance (as the fit's with correction=None), S at the last unit terms
        if g_units is None:
            g_units = np.tile(self.g_hat_kept, (B, 1, 1))
        s_hat = self._batch_s(g_units, gbar, counts, group_counts, D, n_units)
        if self.shrink:
            cov = np.matmul(np.matmul(bread, s_hat), np.swapaxes(bread, 1, 2))
        else:
            W_hat = self._batch_weights(s_hat, independent)
            bad |= ~np.isfinite(W_hat).all(axis=(1, 2))
            W_hat[bad] = np.eye(K)
            cov = np.linalg.inv(np.matmul(np.matmul(np.swapaxes(G_mean, 1, 2), W_hat), G_mean))
        se = np.sqrt(np.clip(np.einsum("bii->bi", cov)[:, :p], 0, None) / n_units[:, None])
        j = self._j_statistics(projected, G_hat, bread_hat, s_hat, n_units, bad)
        bad |= ~np.isfinite(estimates).all(axis=1) | ~np.isfinite(se).all(axis=1)
        reasons = [self._reason(failed[b], group_counts[b]) for b in np.flatnonzero(bad)]
        estimates = estimates.copy()
        estimates[bad] = np.nan
        j[bad] = np.nan
        return KStepBatch(estimates[:, :p], se, j, reasons)

    def _j_statistics(
        self, projected: np.ndarray, G: np.ndarray, bread: np.ndarray, s: np.ndarray, n_units: np.ndarray,
        bad: np.ndarray,
    ) -> np.ndarray:
        """``N_b (P c)' Omega^+ (P c)`` per replicate, ``Omega = P S P'`` of rank df (see `run`)."""
        K, P = self.layout.n_moments, self.layout.n_params
        df = K - P
        if df <= 0:
            return np.zeros(len(projected))
        projection = np.eye(K)[None] - np.matmul(G, bread)
        omega = np.matmul(np.matmul(projection, s * self.s_scale), np.swapaxes(projection, 1, 2))
        omega = (omega + np.swapaxes(omega, 1, 2)) / 2
        omega[bad] = np.eye(K)
        eigval, eigvec = np.linalg.eigh(omega)
        with np.errstate(divide="ignore", invalid="ignore"):
            top = eigvec[:, :, -df:] / np.sqrt(eigval[:, None, -df:])
            return n_units * np.sum(np.einsum("bkd,bk->bd", top, projected) ** 2, axis=1)

    def _reason(self, step_one_failed: bool, group_counts: np.ndarray) -> str:
        """Why a replicate failed, in the user's terms."""
        if step_one_failed:
            return "step 1 has no solution in this resample"
        # without unlabeled-only clusters every moment's S comes from the drawn clusters
        moments = self.layout.n_moments if not self.n_pool else self.q * (1 + self.M)
        distinct = int((group_counts > 0).sum())
        if self.clustered and distinct <= moments:
            return (
                f"resamples that drew at most {moments} distinct clusters: the fit has only "
                f"{self.n_labeled_groups} clusters for {moments} moment conditions, and a clustered "
                f"S from a resample needs more than {moments} distinct clusters. Use more clusters, "
                f"fewer terms or sources, or cov_type='HC0' if the units are independent"
            )
        return "S or G'WG is singular in this resample"

    def _replicate_terms(self, at: np.ndarray, counts: np.ndarray, bad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each replicate's labeled unit moments at its own iterate, in the kept
        columns (B, n, K_kept), and the count-weighted sum of their Jacobians,
        (B, K, P), all replicates in one batch per source
        (`EstimatingFunction.batch_terms`)."""
        layout, data = self.layout, self.data
        B, n = len(at), self.n
        g = np.empty((B, n, len(self.kept)))
        kept = self._kept_block
        G = np.zeros((B, layout.n_moments, layout.n_params))
        w = self.w
        target = layout.moment_block(0)
        values, jacobian = self.family.batch_terms(data.X, data.y, at[:, layout.param_block(0)], counts * w)
        np.multiply(values, w[None, :, None], out=g[:, :, kept(target)])
        G[:, target, layout.param_block(0)] = jacobian
        for m, rows in enumerate(self.sources):
            cols = layout.param_block(1 + m)
            row_counts = counts[:, rows.labeled_of_row] * rows.row_weight
            values, all_units = self.family.batch_terms(rows.X, rows.y, at[:, cols], row_counts * self.u[rows.labeled_of_row])
            q_m = values.shape[2]
            stacked = np.moveaxis(values, 0, 1).reshape(len(rows.X), B * q_m)
            per_unit = np.moveaxis(np.asarray(rows.aggregate @ stacked).reshape(n, B, q_m), 1, 0)
            np.multiply(per_unit, w[None, :, None], out=g[:, :, kept(layout.labeled_block(m))])
            if not self.equal_weights:
                np.multiply(per_unit, self.u[None, :, None], out=g[:, :, kept(layout.all_units_block(m))])
            G[:, layout.all_units_block(m), cols] = all_units
            # with equal labeling weights the labeled block's Jacobian is the same
            G[:, layout.labeled_block(m), cols] = all_units if self.equal_weights else self.family.batch_terms(
                rows.X, rows.y, at[:, cols], row_counts * w[rows.labeled_of_row]
            )[1]
        g[bad] = self.g_hat_kept
        G[bad] = 0.0
        return g, G

    def _kept_block(self, block: slice) -> slice:
        """A moment block's columns among the kept ones (blocks stay contiguous)."""
        start = int(self.expand[block.start])
        return slice(start, start + block.stop - block.start)


class KStepBatch(NamedTuple):
    """One batch of k-step replicates (`KStepBootstrap.run`); NaN rows failed."""

    estimates: np.ndarray
    se: np.ndarray
    j: np.ndarray
    failures: list[str]


def _one_blas_thread() -> Any:
    """One BLAS thread for the batched products: thousands of small K x K
    products gain nothing from threads, and on a busy machine threaded BLAS
    took 50 s for B = 999 at N = 1e5 (n = 1,000) where one thread took 2 s."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def fast_bootstrap(
    results: Any, n_boot: int, seed: Any = None, progress: bool = False, chunk: int = 128,
    exact_pool_max: int = EXACT_POOL_MAX,
) -> Any:
    """The batched k-step bootstrap; see `GMMSynthResults.bootstrap` (``method="fast"``).
    ``exact_pool_max`` as `ReplicateBootstrap`'s (0: always the normal limit's draws,
    as on Dask sources)."""
    from .bootstrap import BootstrapResults

    engine = KStepBootstrap(results, exact_pool_max=exact_pool_max)
    rng = np.random.default_rng(seed)
    names = list(results.model.exog_names)
    estimates, errors, failures, j_draws = [], [], [], []
    starts: Any = range(0, n_boot, chunk)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="bootstrap", unit="batch")
    # one limit for the whole loop: threadpoolctl scans the loaded libraries
    # each time a limit is set, which cost as much as a batch at N = 1e5
    with _one_blas_thread():
        identity = engine.run([engine.identity_draw()])
        for start in starts:
            draws = [engine.draw(rng) for _ in range(min(chunk, n_boot - start))]
            batch = engine.run(draws)
            ok = np.isfinite(batch.estimates).all(axis=1)
            estimates += list(batch.estimates[ok])
            errors += list(batch.se[ok])
            j_draws += list(batch.j[ok])
            failures += batch.failures
    return BootstrapResults.collect(
        results, names, estimates, errors, failures, n_boot, seed, "fast",
        studentizing_se=identity.se[0], replicate_of_estimate=identity.estimates[0], j_draws=j_draws,
    )
