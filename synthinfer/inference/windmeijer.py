"""Windmeijer's finite-sample correction of the two-step GMM covariance.

The two-step estimate beta2 uses W = S(beta1)^-1, estimated at the step-1
values beta1; the usual covariance ignores that W is random, which makes it
too small when the labeled sample is small (Windmeijer 2005, J. Econometrics
126). Step 1 here is itself GMM: the just-identified subsystem of the target
block and each source's all-units block (a selection weight matrix). With

    A  = (G' W G)^-1 G' W,           v = W gbar(beta2),
    D_j = A (dS / d beta1_j) v       (how beta2 moves with the step-1 values),
    V2 = (G' W G)^-1 / N,            V1 = the step-1 sandwich covariance,

the corrected covariance is ``V2 + D V2 + V2 D' + D V1 D'``.

``dS/dbeta_j`` is ``(1/N) sum_i [dg_i/dbeta_j (g_i - gbar)' + (g_i - gbar) dg_i'/dbeta_j]``
(the centering terms cancel); its product with v is assembled from products
over the n labeled units and one pass over each source's rows, a block of rows
at a time for every vector v at once (in memory, `_InMemorySums`; in
partitions, `synthinfer.distributed.blocks`), never per unit and parameter. With clustered S,
``S = (1/N) sum_c h_c h_c'`` over cluster sums ``h_c = sum_{i in c} (g_i - gbar)``
and the same derivative is taken over clusters.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exceptions import SpecificationError
from ..moments import group_sums
from ..rowblocks import ROWS_PER_BLOCK
from .protocol import FittedMoments, MomentModel

__all__ = ["windmeijer_covariance", "step_one_sensitivity"]


def _ds_times_many(model: MomentModel, params: np.ndarray, vs: list[np.ndarray], covariance: Any) -> list[np.ndarray]:
    """`_ds_times_v` for each vector: every vector's sums in one pass over the rows."""
    _check_windmeijer(covariance)
    blocks, scores = model.moment_blocks(params), model.scores_at(params)
    partitioned = getattr(blocks, "ds_times_many", None)
    if partitioned is not None:
        # blocks whose units live in partitions take the same sums partition by partition
        return partitioned(scores, vs, covariance)
    return _InMemorySums(model, params, blocks, scores, covariance).ds_times_many(vs)


def _check_windmeijer(covariance: Any) -> None:
    if covariance is not None and not covariance.supports_windmeijer:
        raise SpecificationError(
            f"Windmeijer's correction does not know the derivative of S for "
            f"cov_type={covariance.cov_type!r}"
        )


def _ds_times_v(model: MomentModel, params: np.ndarray, v: np.ndarray, covariance: Any = None) -> np.ndarray:
    """(dS/dbeta_j) v for every parameter j: a (K, P) matrix, at ``params``.

    ``covariance`` is the S estimator; for a `ClusteredCovariance` the
    unit terms become cluster terms (see the module docstring).
    """
    return _ds_times_many(model, params, [v], covariance)[0]


class _InMemorySums:
    """The sums of ``(dS/dbeta) v`` for in-memory blocks, split as the partitioned ones are.

    With ``c_i = (g_i - gbar)' v`` and ``e_i = (dg_i/dbeta)' v``, ``N (dS/dbeta) v =
    sum_i c_i dg_i/dbeta + sum_i (g_i - gbar) e_i'``. ``e_i`` is an all-units part
    (each source's all-units block, on every row) plus a labeled part (the target
    and the labeled blocks, on the labeled units only). The labeled parts are
    products over the n labeled units; the all-units parts are taken one block of
    a source's rows at a time, for every vector at once, so no (N, P) array of
    ``e_i`` is built and each block of rows is read once while it is in cache.
    """

    def __init__(self, model: MomentModel, params: np.ndarray, blocks: Any, scores: Any, covariance: Any) -> None:
        self.model, self.params, self.blocks, self.scores = model, params, blocks, scores
        self.groups = None if covariance is None else covariance.groups
        data = model.model_data
        self.n_units, self.labeled_pos = data.n_units, data.labeled_pos
        self.span = blocks.spans
        self.all_units = [a for a, only in enumerate(blocks.labeled_only) if not only]

    def ds_times_many(self, vs: list[np.ndarray]) -> list[np.ndarray]:
        model, blocks, scores, layout = self.model, self.blocks, self.scores, self.model.layout
        N, n, J = self.n_units, len(self.labeled_pos), len(vs)
        K, P = model.nmoms, model.k_params
        V = np.column_stack(vs)
        gbar = blocks.mean()
        # c_i for every unit and vector, (N, J)
        C = np.empty((N, J))
        C[:] = -(gbar @ V)
        for a, block in enumerate(blocks.blocks):
            V_a = V[self.span[a]]
            part = (block[0] @ V_a) * block[1][:, None] if isinstance(block, tuple) else block @ V_a
            if blocks.labeled_only[a]:
                C[self.labeled_pos] += part
            else:
                C += part
        if self.groups is not None:
            # each unit carries its cluster's c_c = h_c' v
            codes, n_groups = self.groups
            C_cluster = group_sums(codes, n_groups, C)
            C = C_cluster[codes]
        term1 = np.zeros((J, K, P))  # sum_i c_i dg_i/dbeta
        E_lab = np.zeros((J, n, P))  # e_i's labeled part, on the labeled units
        E_all_lab = np.zeros((J, n, P))  # e_i's all-units part, on the labeled units
        # the all-units part summed against the all-units blocks (or, clustered, within clusters)
        full_width = sum(self.span[a].stop - self.span[a].start for a in self.all_units)
        GE = np.zeros((J, full_width, P))
        E_cluster = None if self.groups is None else np.zeros((J, self.groups[1], P))
        e_all_total = np.zeros((J, P))
        weight = scores.target_weight
        target = scores.target
        for j in range(J):
            c_lab = C[self.labeled_pos, j]
            term1[j, layout.moment_block(0), layout.param_block(0)] = target.jacobian(
                c_lab if weight is None else c_lab * weight
            )
            e_target = target.vjp(V[self.span[0], j])
            E_lab[j, :, layout.param_block(0)] = e_target if weight is None else e_target * weight[:, None]
        labeled_order = np.empty(N, dtype=np.intp)
        labeled_order[self.labeled_pos] = np.arange(n)
        for m, source_scores in enumerate(scores.sources):
            cols = layout.param_block(1 + m)
            lab_block, all_block = layout.labeled_block(m), layout.all_units_block(m)
            source, evaluation = source_scores.source, source_scores.evaluation
            row_weight, labeled_weight = source_scores.row_weight, source_scores.labeled_row_weight
            lab_rows = source.labeled_rows
            lab_codes = labeled_order[source.unit_pos[lab_rows]]
            c_lab_rows = C[source.unit_pos[lab_rows]]
            lab_row_weight = None if row_weight is None else row_weight[lab_rows]
            # the all-units block's terms on the labeled rows, as in the whole (not a sample of its own)
            whole_on_lab = evaluation.row_block(lab_rows)
            for j in range(J):
                c_j = c_lab_rows[:, j]
                term1[j, lab_block, cols] = evaluation.jacobian(
                    c_j if labeled_weight is None else c_j * labeled_weight, rows=lab_rows
                )
                lab_e = evaluation.vjp(V[lab_block, j], rows=lab_rows)
                if labeled_weight is not None:
                    lab_e = lab_e * labeled_weight[:, None]
                E_lab[j, :, cols] += group_sums(lab_codes, n, lab_e)
                all_e = whole_on_lab.vjp(V[all_block, j])
                if lab_row_weight is not None:
                    all_e = all_e * lab_row_weight[:, None]
                E_all_lab[j, :, cols] = group_sums(lab_codes, n, all_e)
            self._all_rows_pass(m, V[all_block], C, term1, GE, E_cluster, e_all_total)
        labeled_values = blocks.labeled_rows() if self.groups is None else np.empty((n, 0))  # (n, K)
        out = []
        for j in range(J):
            E_lab_j = E_lab[j]
            e_total = np.ones(n) @ E_lab_j + e_all_total[j]
            if self.groups is not None:
                codes, n_groups = self.groups
                assert E_cluster is not None
                E_cluster_j = E_cluster[j] + group_sums(codes[self.labeled_pos], n_groups, E_lab_j)
                out.append(self._clustered(term1[j], C_cluster[:, j], E_cluster_j, V[:, j]) / N)
                continue
            term2 = np.zeros((K, P))
            offset = 0
            for a, only in enumerate(blocks.labeled_only):
                on_labeled = labeled_values[:, self.span[a]]
                if only:
                    term2[self.span[a]] = on_labeled.T @ (E_lab_j + E_all_lab[j])
                else:
                    width = self.span[a].stop - self.span[a].start
                    term2[self.span[a]] = on_labeled.T @ E_lab_j + GE[j, offset : offset + width]
                    offset += width
                term2[self.span[a]] -= np.outer(gbar[self.span[a]], e_total)
            out.append((term1[j] + term2) / N)
        return out

    def _all_rows_pass(
        self, m: int, V_all: np.ndarray, C: np.ndarray, term1: np.ndarray, GE: np.ndarray,
        E_cluster: np.ndarray | None, e_all_total: np.ndarray,
    ) -> None:
        """Source m's all-units terms over all its rows, a block of rows at a time."""
        source_scores = self.scores.sources[m]
        source, evaluation, row_weight = source_scores.source, source_scores.evaluation, source_scores.row_weight
        layout = self.model.layout
        cols, all_block = layout.param_block(1 + m), layout.all_units_block(m)
        in_order = source.one_row_per_unit  # its rows are the units, in order
        n_rows, J = len(source.unit_pos), V_all.shape[1]
        width = cols.stop - cols.start
        all_spans = [self.span[a] for a in self.all_units]
        offsets = np.cumsum([0] + [s.stop - s.start for s in all_spans])
        # column-major buffers: filled a column block at a time, and their product
        # G'E is a third faster than from row-major blocks
        block_rows = min(ROWS_PER_BLOCK, n_rows)
        E_buffer = np.empty((block_rows, J * width), order="F")
        G_buffer = np.empty((block_rows, int(offsets[-1])), order="F")
        for start in range(0, n_rows, ROWS_PER_BLOCK):
            rows = slice(start, min(start + ROWS_PER_BLOCK, n_rows))
            size = rows.stop - rows.start
            units = rows if in_order else source.unit_pos[rows]
            C_rows = C[units]
            w = None if row_weight is None else row_weight[rows]
            part = evaluation.row_block(rows)
            E_rows = E_buffer[:size]
            for j in range(J):
                c_j = C_rows[:, j]
                term1[j, all_block, cols] += part.jacobian(c_j if w is None else c_j * w)
                e = part.vjp(V_all[:, j])
                E_rows[:, j * width : (j + 1) * width] = e if w is None else e * w[:, None]
            e_all_total[:, cols] += (np.ones(size) @ E_rows).reshape(J, width)
            if E_cluster is not None:
                codes, n_groups = self.groups  # type: ignore[misc]
                sums = group_sums(codes[units], n_groups, E_rows)
                for j in range(J):
                    E_cluster[j, :, cols] += sums[:, j * width : (j + 1) * width]
                continue
            G_rows = G_buffer[:size]
            for a, lo, hi in zip(self.all_units, offsets[:-1], offsets[1:]):
                G_rows[:, lo:hi] = self.blocks.values_on(a, units)
            products = G_rows.T @ E_rows
            for j in range(J):
                GE[j, :, cols] += products[:, j * width : (j + 1) * width]

    def _clustered(self, term1: np.ndarray, c_cluster: np.ndarray, E_cluster: np.ndarray, v: np.ndarray) -> np.ndarray:
        """N (dS/dbeta) v for cluster sums ``h_c = sum_{i in c} (g_i - gbar)``.

        ``dh_c/dbeta = sum_{i in c} dg_i/dbeta - n_c G``: unlike unit terms, the
        centering no longer cancels when clusters differ in size.
        """
        codes, n_clusters = self.groups  # type: ignore[misc]
        sizes = np.bincount(codes, minlength=n_clusters).astype(float)
        G = self.model.jacobian(self.params)  # d gbar / d beta
        term1 = term1 - (c_cluster @ sizes) * G
        H = self.blocks.cluster_sums(codes, n_clusters) - np.outer(sizes, self.blocks.mean())
        return term1 + H.T @ (E_cluster - np.outer(sizes, G.T @ v))


def step_one_sensitivity(results: FittedMoments) -> np.ndarray:
    """D = d beta2 / d beta1 through the weight matrix, (P, P)."""
    model = results.model
    W, beta2, beta1 = results.weights, results.params_full, results.start_params
    G = results.jacobian
    GW = G.T @ W
    A = np.linalg.solve(GW @ G, GW)
    v = W @ model.momcond_mean(beta2)
    # W = S_w(beta1)^-1: the derivative is the weight matrix's estimator's
    weighting = results.weighting
    if hasattr(weighting, "ds_times_v"):
        # a weight matrix built from a base S (shrunk): its derivative from the base's
        base = getattr(weighting, "base")
        return A @ weighting.ds_times_v(lambda vs: _ds_times_many(model, beta1, vs, base), v)
    return A @ _ds_times_v(model, beta1, v, weighting)


def windmeijer_covariance(results: FittedMoments) -> np.ndarray:
    """The corrected covariance of (theta, eta_1, ..., eta_M), (P, P)."""
    model = results.model
    n_units = model.nobs
    W, beta1 = results.weights, results.start_params
    G = results.jacobian
    V2 = np.linalg.inv(G.T @ W @ G) / n_units
    # step 1: the just-identified subsystem (target block and all-units blocks)
    selected = model.layout.just_identified()
    G1 = model.jacobian(beta1)[selected]
    G1_inv = np.linalg.inv(G1)
    D = step_one_sensitivity(results)
    # the S of the parameters' covariance: the fit's, or its leverage-adjusted version
    covariance = getattr(results, "parameter_covariance", results.covariance)
    if results.weighting is covariance:
        S1 = np.linalg.inv(W)[np.ix_(selected, selected)]
        V1 = G1_inv @ S1 @ G1_inv.T / n_units
        return (V2 + D @ V2 + V2 @ D.T + D @ V1 @ D.T) * results.covariance.scale
    S_c = covariance.s(model.moment_blocks(results.params_full))
    return sandwich_correction(results, D, G1_inv, S_c) * results.covariance.scale


def sandwich_correction(results: FittedMoments, D: np.ndarray, G1_inv: np.ndarray, S_c: np.ndarray) -> np.ndarray:
    """The corrected covariance for a weight matrix W that is not ``S_c^-1``.

    ``beta2 - beta ~ -(A + D A1) gbar`` with ``A = (G'WG)^-1 G'W`` and ``A1``
    step 1's map (``G1^-1`` on the just-identified rows), so the covariance is
    ``(A + D A1) S_c (A + D A1)' / N``. With ``S_c = W^-1`` and G constant it
    is exactly the efficient formula ``V2 + D V2 + V2 D' + D V1 D'``.
    """
    model, W, G = results.model, results.weights, results.jacobian
    A = np.linalg.solve(G.T @ W @ G, G.T @ W)
    A1 = np.zeros_like(A)
    A1[:, model.layout.just_identified()] = G1_inv
    total = A + D @ A1
    return total @ S_c @ total.T / model.nobs
