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
(the centering terms cancel); its product with v is assembled block by block
from weighted Gram products, never per unit and parameter. With clustered S,
``S = (1/N) sum_c h_c h_c'`` over cluster sums ``h_c = sum_{i in c} (g_i - gbar)``
and the same derivative is taken over clusters.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exceptions import SpecificationError
from ..moments import group_sums
from .protocol import FittedMoments, MomentModel

__all__ = ["windmeijer_covariance", "step_one_sensitivity"]


def _ds_times_many(model: MomentModel, params: np.ndarray, vs: list[np.ndarray], covariance: Any) -> list[np.ndarray]:
    """`_ds_times_v` for each vector; blocks in partitions take them all in one pass."""
    if not getattr(model.model_data, "partitioned", False):
        # the moment blocks and the scores at params are the same for every vector
        blocks, scores = model.moment_blocks(params), model.scores_at(params)
        return [_ds_times_v(model, params, v, covariance, blocks=blocks, scores=scores) for v in vs]
    _check_windmeijer(covariance)
    partitioned: Any = model.moment_blocks(params)  # a PartitionedMomentBlocks
    return partitioned.ds_times_many(model.scores_at(params), vs, covariance)


def _check_windmeijer(covariance: Any) -> None:
    if covariance is not None and not covariance.supports_windmeijer:
        raise SpecificationError(
            f"Windmeijer's correction does not know the derivative of S for "
            f"cov_type={covariance.cov_type!r}"
        )


def _ds_times_v(
    model: MomentModel, params: np.ndarray, v: np.ndarray, covariance: Any = None,
    blocks: Any = None, scores: Any = None,
) -> np.ndarray:
    """(dS/dbeta_j) v for every parameter j: a (K, P) matrix, at ``params``.

    ``covariance`` is the S estimator; for a `ClusteredCovariance` the
    unit terms become cluster terms (see the module docstring). ``blocks`` and
    ``scores``, the moment blocks and scores at ``params``, may be passed by a
    caller that has them.
    """
    _check_windmeijer(covariance)
    groups = None if covariance is None else covariance.groups
    data = model.model_data
    n_units = data.n_units
    if blocks is None:
        blocks = model.moment_blocks(params)
    partitioned = getattr(blocks, "ds_times_v", None)
    if partitioned is not None:
        # blocks whose units live in partitions take the same sums partition by partition
        return partitioned(model.scores_at(params), v, covariance)
    starts = np.cumsum([0] + [b.shape[1] for b in blocks.values])
    v_blocks = [v[starts[b] : starts[b + 1]] for b in range(len(blocks.values))]
    # c_i = (g_i - gbar)' v, per unit
    gbar = blocks.mean()
    c = np.full(n_units, -(gbar @ v))
    for values, only, vb in zip(blocks.values, blocks.labeled_only, v_blocks):
        contribution = values @ vb
        if only:
            c[data.labeled_pos] += contribution
        else:
            c += contribution
    if groups is not None:
        # each unit carries its cluster's c_c = h_c' v
        codes, n_groups = groups
        c_cluster = np.bincount(codes, weights=c, minlength=n_groups)
        c = c_cluster[codes]
    K, P = model.nmoms, model.k_params
    layout = model.layout
    term1 = np.zeros((K, P))  # (1/N) sum_i c_i dg_i/dbeta
    # e_i = (dg_i/dbeta)' v; column-major: it is filled and read a parameter block at a time
    E = np.zeros((n_units, P), order="F")
    if scores is None:
        scores = model.scores_at(params)
    weight = scores.target_weight
    # target block: g = w psi(z; theta) on labeled units
    target = scores.target
    c_lab = c[data.labeled_pos]
    term1[layout.moment_block(0), layout.param_block(0)] = target.jacobian(
        c_lab if weight is None else c_lab * weight
    )
    e_target = target.vjp(v_blocks[0])
    E[data.labeled_pos, layout.param_block(0)] = e_target if weight is None else e_target * weight[:, None]
    for m, source_scores in enumerate(scores.sources):
        cols = layout.param_block(1 + m)
        source, evaluation = source_scores.source, source_scores.evaluation
        row_weight, labeled_weight = source_scores.row_weight, source_scores.labeled_row_weight
        lab_rows = source.labeled_rows
        c_rows = c[source.unit_pos]
        lab_block, all_block = 1 + 2 * m, 2 + 2 * m
        c_lab_rows = c_rows[lab_rows]
        term1[layout.labeled_block(m), cols] = evaluation.jacobian(
            c_lab_rows if labeled_weight is None else c_lab_rows * labeled_weight, rows=lab_rows
        )
        term1[layout.all_units_block(m), cols] = evaluation.jacobian(
            c_rows if row_weight is None else c_rows * row_weight
        )
        # e_i's source part per row: the all-units term on every row plus the
        # labeled term on labeled rows, each with its row weights
        row_e = evaluation.vjp(v_blocks[all_block])
        if row_weight is not None:
            row_e *= row_weight[:, None]
        lab_e = evaluation.vjp(v_blocks[lab_block], rows=lab_rows)
        row_e[lab_rows] += lab_e if labeled_weight is None else lab_e * labeled_weight[:, None]
        E[:, cols] = _unit_totals(source, row_e)
    if groups is not None:
        return _clustered_terms(model, params, blocks, groups, c_cluster, term1, E, v) / n_units
    term2 = np.zeros((K, P))  # (1/N) sum_i (g_i - gbar) e_i'
    e_total = np.ones(n_units) @ E  # a matrix-vector product sums rows faster than .sum(axis=0)
    for b, (values, only) in enumerate(zip(blocks.values, blocks.labeled_only)):
        rows = slice(starts[b], starts[b + 1])
        E_b = E[data.labeled_pos] if only else E
        term2[rows] = values.T @ E_b - np.outer(gbar[rows], e_total)
    return (term1 + term2) / n_units


def _clustered_terms(
    model: MomentModel, params: np.ndarray, blocks: Any, groups: tuple[np.ndarray, int],
    c_cluster: np.ndarray, term1: np.ndarray, E: np.ndarray, v: np.ndarray,
) -> np.ndarray:
    """N (dS/dbeta) v for cluster sums ``h_c = sum_{i in c} (g_i - gbar)``.

    ``dh_c/dbeta = sum_{i in c} dg_i/dbeta - n_c G``: unlike unit terms, the
    centering no longer cancels when clusters differ in size.
    """
    codes, n_clusters = groups
    sizes = np.bincount(codes, minlength=n_clusters).astype(float)
    G = model.jacobian(params)  # d gbar / d beta
    term1 = term1 - (c_cluster @ sizes) * G
    H = blocks.cluster_sums(codes, n_clusters) - np.outer(sizes, blocks.mean())
    E_cluster = group_sums(codes, n_clusters, E)
    return term1 + H.T @ (E_cluster - np.outer(sizes, G.T @ v))


def _unit_totals(source: Any, row_values: np.ndarray) -> np.ndarray:
    """Plain per-unit sums of row values (weights already applied)."""
    if source.one_row_per_unit:
        return row_values
    return group_sums(source.unit_pos, source.n_units, row_values)


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
