"""The GMM-Synth model: statsmodels' GMM with blockwise moments and analytic derivatives.

Parameters are ``beta = (theta, eta_1, ..., eta_M)``, each of length p: the
target theta and one nuisance vector per auxiliary source. The moments are
``g_i = [R_i psi(z_i; theta) ; (R_i psi(z^m_i; eta_m) ; psi(z^m_i; eta_m))_m]``
(see ``moments.py``). Estimation is the two-step GMM of the spec:

1. theta solves the labeled block, eta_m solves source m's all-units block;
2. with W = S^-1 (S centered, at the step-1 values), minimise
   ``gbar' W gbar`` by Gauss-Newton with the analytic Jacobian.

The reported covariance is ``(G' S^-1 G)^-1 / N`` with G and S at the estimate.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.sandbox.regression.gmm import GMM, results_class_dict
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from .covariance import LEVERAGES, get_covariance, leverage_adjusted
from .data import FrameArg, ModelData
from .exceptions import ConvergenceError, NearSingularWeightWarning, SingularMomentsError, SparseCovariateWarning
from .families import Evaluation, Family
from .fit_keywords import check_fit_keywords
from .formula import capture_namespace
from .inference.protocol import ScoresAt, SourceScores
from .inference.small_sample import CORRECTIONS
from .model import ModelBase
from .moments import MomentBlocks, assemble_blocks
from .options import Correction, Engine, Leverage, Shrinkage
from .results import GMMSynthResultsWrapper
from .singular import explain_singular, warn_if_few_clusters, warn_if_few_labeled
from .solvers import SolverInfo, gauss_newton, gauss_newton_step
from .weighting import ShrunkWeight

__all__ = ["GMMSynth", "GMMProxy", "SolverInfo", "warn_sparse_columns"]

#: a 0/1 design column whose rarer value occurs on at most this many labeled
#: units identifies its coefficient from those units alone
SPARSE_COLUMN_UNITS = 2


def warn_sparse_columns(X: np.ndarray, names: list[str], frame: str = "real") -> None:
    """Warn about 0/1 design columns whose rarer value occurs on very few labeled rows.

    Their coefficient (and its standard error) rests on those few units: the
    intervals are not trustworthy, and a resample that misses them has no
    estimate (the bootstrap then reports failed replicates).
    """
    for j, name in enumerate(names):
        column = X[:, j]
        values = np.unique(column)
        if len(values) != 2 or not np.array_equal(values, [0.0, 1.0]):
            continue
        rare = int(min(column.sum(), len(column) - column.sum()))
        if rare <= SPARSE_COLUMN_UNITS:
            warnings.warn(
                f"design column {name!r} takes its rarer value on only {rare} of the "
                f"{len(column)} labeled units in frame {frame!r}: its coefficient is identified "
                f"by those units alone, and its standard error and interval are not reliable. "
                f"Label more units with {name!r} = {int(column.sum() <= len(column) / 2)} "
                f"or merge the level",
                SparseCovariateWarning,
                stacklevel=4,
            )


# Above this condition number (of S scaled to unit diagonal) S is singular in
# double precision: some moments are exact linear combinations of others.
SINGULAR_CONDITION = 1e14
NEAR_SINGULAR_CONDITION = 1e12


def weight_matrix(
    s: np.ndarray, block_names: list[str] | None = None, explain: Callable[[], str] | None = None
) -> np.ndarray:
    """W = S^-1; an error when S is singular, a warning when it is close.

    S is scaled to unit diagonal before the condition check so the check does
    not depend on the units of the covariates. ``block_names`` (one name per
    moment block of equal size) lets the error say which moments collide;
    ``explain`` (called only when S is singular) says why, see ``singular.py``.
    """
    scale = np.sqrt(np.clip(np.diag(s), np.finfo(float).tiny, None))
    scaled = s / np.outer(scale, scale)
    eigenvalues, eigenvectors = np.linalg.eigh(scaled)
    smallest = eigenvalues[0]
    condition = eigenvalues[-1] / smallest if smallest > eigenvalues[-1] * 1e-300 else np.inf
    if condition > SINGULAR_CONDITION:
        culprits = ""
        if block_names:
            loadings = np.abs(eigenvectors[:, 0]).reshape(len(block_names), -1).max(axis=1)
            involved = [name for name, load in zip(block_names, loadings) if load >= 0.1 * loadings.max()]
            culprits = f" The collinear moments: {involved}."
        cause = explain() if explain is not None else ""
        raise SingularMomentsError(
            f"the moment covariance S is singular (condition number {condition:.3g} after "
            f"scaling): "
            + (
                f"{cause}.{culprits}" if cause else
                f"some auxiliary moments are exact linear combinations of others, as when a "
                f"source repeats another source's data or its recoding.{culprits} Drop the "
                f"duplicate source."
            )
        )
    if condition > NEAR_SINGULAR_CONDITION:
        warnings.warn(
            f"the moment covariance S is close to singular (condition number "
            f"{condition:.3g} after scaling); an auxiliary source's moments are nearly "
            f"collinear with other moments, and the weight matrix is unstable",
            NearSingularWeightWarning,
            stacklevel=3,
        )
        return np.linalg.pinv(scaled) / np.outer(scale, scale)
    return np.linalg.inv(scaled) / np.outer(scale, scale)


class GMMSynth(ModelBase, GMM):
    """Two-step GMM for a target regression with auxiliary (proxy, synthetic) sources.

    Build it with ``from_formula`` (``synthinfer.api.gmm_synth``).

    Parameters
    ----------
    data : ModelData
        The validated design matrices (see ``synthinfer.data.build_model_data``).
    model : {"ols", "logit", "poisson"} or Family
        The estimating function of the target and of every source.
    formula : str, optional
        Kept for display.
    """

    results_class = "GMMSynthResults"

    def __init__(
        self,
        data: ModelData,
        model: str | Family = "ols",
        formula: str | None = None,
        labeling_prob: Any = None,
        weights: Any = None,
    ):
        if weights is not None:
            data = data.with_weights(weights)
        if labeling_prob is not None:
            data = data.with_labeling_prob(labeling_prob)
        endog, exog = self._set_data(data, model, formula)
        layout = self.layout
        super().__init__(endog, exog, None, k_moms=layout.n_moments, k_params=layout.n_params)
        self._set_counts()
        self._evaluations: dict[int, list[tuple[bytes, Evaluation]]] = {}
        #: moment blocks of sources in partitions, by params: their sums and Gram are a
        #: pass, and S at the step-1 values is asked for again by Windmeijer's correction
        self._partitioned_blocks: dict[bytes, MomentBlocks] = {}
        # the designs do not change: their rank is checked by the first fit only
        self._ranks_checked = False
        # w/pi per labeled unit; per source, the weights of its rows (1/k times the
        # unit's survey weight w, None when all are 1) and of its labeled rows
        # (1/k times w/pi)
        self._labeled_weight = data.labeled_weight
        self._row_weight: list[np.ndarray | None] = []
        self._labeled_row_weight: list[np.ndarray | None] = []
        if data.labeled_weight is not None:
            position = np.full(data.n_units, -1)
            position[data.labeled_pos] = np.arange(data.n_labeled)
        for source in data.sources:
            row_weight = None if source.one_row_per_unit else source.row_weight
            if data.unit_weight is not None:
                unit_weight = data.unit_weight[source.unit_pos]
                row_weight = unit_weight if row_weight is None else row_weight * unit_weight
                # the labeled rows' w comes with labeled_weight (w/pi) below
                labeled = None if source.one_row_per_unit else source.row_weight[source.labeled_rows]
            else:
                labeled = None if row_weight is None else row_weight[source.labeled_rows]
            if data.labeled_weight is not None:
                pi_weight = data.labeled_weight[position[source.unit_pos[source.labeled_rows]]]
                labeled = pi_weight if labeled is None else labeled * pi_weight
            self._row_weight.append(row_weight)
            self._labeled_row_weight.append(labeled)
        self.param_names_full = layout.param_names_full

    @classmethod
    def from_formula(
        cls,
        formula: str,
        real: pd.DataFrame,
        proxy: FrameArg = None,
        synth: FrameArg = None,
        model: str | Family = "ols",
        *,
        engine: Engine | None = None,
        eval_env: int | Mapping[str, Any] = 0,
        labeling_prob: Any = None,
        weights: Any = None,
    ) -> GMMSynth:
        """Create the model from a formula and the real / proxy / synthetic frames.

        Parameters
        ----------
        formula : str
            ``"y ~ x1 + C(group)"``: the regression on the human-labeled data.
        real : DataFrame
            The human-labeled units; index = unit id (unique).
        proxy : DataFrame or dict of DataFrame, optional
            LLM annotations of every unit (labeled or not); index = unit id.
        synth : DataFrame or dict of DataFrame, optional
            Synthetic samples; index = id of the unit each sample was generated
            from (repeats allowed: k samples are averaged into the unit's moment).
        model : {"ols", "logit", "poisson"}
            The model family.
        engine : {"patsy", "formulaic"}, optional
            Formula engine; defaults to ``statsmodels.formula.options.formula_engine``.
        eval_env : int or dict
            Where the formula looks up names that are not columns: the number of
            frames above the caller (0 = the caller), or a dict of names.
        labeling_prob : str, Series or array, optional
            Known probabilities pi_i with which each labeled unit was chosen for
            human labeling (a column, a Series indexed by unit id, or an array in
            the order of ``real``'s rows). The labeled moment blocks are weighted by
            1/pi_i. pi_i must be known by design and positive; the default is a
            simple random sample (all pi_i equal, which gives the same estimate).
        weights : str, Series or array, optional
            Survey (sampling) weights w_i > 0, one per unit: a column of a frame
            covering every unit (``real`` without auxiliary sources, else a
            proxy frame or a synthetic frame whose rows of a unit agree), a
            Series indexed by unit id, or an array in ``model.unit_ids`` order.
            Every block of a unit's moments is multiplied by w_i (its labeled
            blocks also by 1/pi_i). Rescaling all w_i by one factor changes
            nothing. With no source this is statsmodels' ``WLS(weights=w)`` /
            ``GLM(var_weights=w)`` with HC0; see docs/survey-weights.md.
        """
        namespace = eval_env if isinstance(eval_env, Mapping) else capture_namespace(eval_env + 1)
        return cls._from_frames(
            formula, real, proxy, synth, model, engine, namespace, labeling_prob=labeling_prob,
            weights=weights,
        )

    # -- parameter layout --------------------------------------------------------
    def _split(self, params: np.ndarray) -> list[np.ndarray]:
        return self.layout.split_params(params)

    # -- step 1 ------------------------------------------------------------------
    def fitstart(self) -> np.ndarray:
        """Step-1 values: theta on the labeled units, each eta_m on all units."""
        return self._step_one()[0]

    def _step_one(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """Step-1 values and each source's last Newton Jacobian (G's all-units blocks).

        Newton's last Jacobian was taken one tiny step before eta: close enough to
        steer Gauss-Newton, which re-checks with the exact G at its end.
        """
        data, names = self.model_data, self.model_data.param_names
        check_rank = not self._ranks_checked
        theta = self.family.solve(
            data.X, data.y, self._labeled_weight, names=names, frame="real", check_rank=check_rank,
        ).params
        pieces, jacobians = [theta], []
        # theta is a good start: the source estimates the same kind of coefficients
        # Newton's error after a step s is ~s**2: a step below 1e-4 leaves ~1e-8,
        # far below what the weight matrix computed from these values can feel.
        fits = data.solve_sources(
            self.family, self._row_weight, names=names, start=theta, tol=1e-4, check_rank=check_rank,
        )
        for m, fit in enumerate(fits):
            pieces.append(fit.params)
            jacobians.append(fit.jacobian)
            # Newton evaluated the source at eta last: S at step 1 reuses it
            self._evaluations[m] = [(fit.params.tobytes(), fit.evaluation)]
        if check_rank:
            # after the rank checks: a column that is not identified at all is an error first
            warn_sparse_columns(data.X, names)
        self._ranks_checked = True
        return np.concatenate(pieces), jacobians

    # -- moments and derivatives -------------------------------------------------
    def _evaluation(self, m: int, eta: np.ndarray) -> Evaluation:
        """Source m's scores at eta.

        The last two evaluations per source are kept: the moments, G and S are
        often needed at the same point, Windmeijer's correction alternates
        between the step-1 and the step-2 values, and each evaluation is a pass
        over every row.
        """
        key = eta.tobytes()
        kept = self._evaluations.setdefault(m, [])
        for i, (cached_key, evaluation) in enumerate(kept):
            if cached_key == key:
                kept.insert(0, kept.pop(i))  # the most recently used first
                return evaluation
        evaluation = self.model_data.sources[m].evaluate(self.family, eta)
        kept.insert(0, (key, evaluation))
        del kept[2:]
        return evaluation

    def _target_evaluation(self, theta: np.ndarray) -> Evaluation:
        data = self.model_data
        return self.family.evaluate(data.X, data.y, theta)

    def moment_blocks(self, params: np.ndarray) -> MomentBlocks:
        """Per-unit moments as blocks (what S is computed from)."""
        if not getattr(self.model_data, "partitioned", False):
            return self._moment_blocks(params)
        # small objects (the all-units values stay in the partitions): kept per params
        key = np.asarray(params, dtype=float).tobytes()
        blocks = self._partitioned_blocks.get(key)
        if blocks is None:
            blocks = self._partitioned_blocks[key] = self._moment_blocks(params)
        return blocks

    def _moment_blocks(self, params: np.ndarray) -> MomentBlocks:
        data = self.model_data
        theta, *etas = self._split(params)
        weight = self._labeled_weight
        target = self._target_evaluation(theta).values()
        blocks: list[np.ndarray | tuple[np.ndarray, np.ndarray]] = [
            target if weight is None else target * weight[:, None]
        ]
        labeled_only = [True]
        for m, (source, eta) in enumerate(zip(data.sources, etas)):
            evaluation = self._evaluation(m, eta)
            per_unit: np.ndarray | tuple[np.ndarray, np.ndarray]
            if source.one_row_per_unit:
                # factors stay factors: S's all-units products are then taken a block
                # of rows at a time, without an (N, q) array per source
                per_unit = evaluation.scores()
                labeled = evaluation.values(data.labeled_pos)
            else:
                per_unit = source.unit_sums(evaluation.values())
                labeled = per_unit[data.labeled_pos]
            if data.unit_weight is not None:
                per_unit = _scaled_rows(per_unit, data.unit_weight)
            blocks += [labeled if weight is None else labeled * weight[:, None], per_unit]
            labeled_only += [True, False]
        return assemble_blocks(tuple(blocks), tuple(labeled_only), data.labeled_pos, data.n_units)

    def momcond(self, params: np.ndarray) -> np.ndarray:
        """The (N, K) matrix of per-unit moments (not used for estimation)."""
        return self.moment_blocks(params).full()

    def momcond_mean(self, params: np.ndarray) -> np.ndarray:
        """gbar = (1/N) sum_i g_i, from row sums (no per-unit matrix is built)."""
        self.nobs_moms, self.k_moms = self.nobs, self.nmoms
        data = self.model_data
        theta, *etas = self._split(params)
        sums = [self._target_evaluation(theta).sums(self._labeled_weight)]
        # every source is evaluated before any is summed (sources in partitions
        # then take their sums in one pass, see synthinfer/distributed)
        evaluations = [self._evaluation(m, eta) for m, eta in enumerate(etas)]
        for m, (source, evaluation) in enumerate(zip(data.sources, evaluations)):
            sums += [
                evaluation.sums(self._labeled_row_weight[m], rows=source.labeled_rows),
                evaluation.sums(self._row_weight[m]),
            ]
        return np.concatenate(sums) / self.nobs

    def scores_at(self, params: np.ndarray) -> ScoresAt:
        """Every block's estimating function at ``params``, with its weights."""
        theta, *etas = self._split(params)
        return ScoresAt(
            target=self._target_evaluation(theta),
            target_weight=self._labeled_weight,
            sources=tuple(
                SourceScores(source, self._evaluation(m, eta), self._row_weight[m], self._labeled_row_weight[m])
                for m, (source, eta) in enumerate(zip(self.model_data.sources, etas))
            ),
        )

    def jacobian(self, params: np.ndarray) -> np.ndarray:
        """G = d gbar / d beta at ``params``, (K, P)."""
        return self._jacobian(params)

    def refit(self, data: ModelData, **fit_kwds: Any) -> Any:
        """The same estimator (family) fitted on other data (a resample, fewer sources)."""
        return GMMSynth(data, self.family).fit(**fit_kwds)

    def gradient_momcond(self, params: np.ndarray, epsilon: float = 1e-4, centered: bool = True) -> np.ndarray:
        """Analytic G = d gbar / d beta, (K, P); ``epsilon``/``centered`` are ignored."""
        return self._jacobian(params)

    def _jacobian(self, params: np.ndarray, all_units_blocks: list[np.ndarray] | None = None) -> np.ndarray:
        """G, optionally with given all-units blocks (each source's summed Jacobian)."""
        data, layout = self.model_data, self.layout
        theta, *etas = self._split(params)
        G = np.zeros((self.nmoms, self.k_params))
        G[layout.moment_block(0), layout.param_block(0)] = self._target_evaluation(theta).jacobian(self._labeled_weight)
        # every source is evaluated before any is summed (one pass for sources in partitions)
        evaluations = [self._evaluation(m, eta) for m, eta in enumerate(etas)]
        for m, (source, evaluation) in enumerate(zip(data.sources, evaluations)):
            cols = layout.param_block(1 + m)
            G[layout.labeled_block(m), cols] = evaluation.jacobian(
                self._labeled_row_weight[m], rows=source.labeled_rows
            )
            G[layout.all_units_block(m), cols] = (
                all_units_blocks[m] if all_units_blocks is not None
                else evaluation.jacobian(self._row_weight[m])
            )
        return G / self.nobs

    def score(self, params: np.ndarray, weights: np.ndarray, epsilon: float | None = None, centered: bool = True) -> np.ndarray:
        """Analytic gradient of the GMM objective ``gbar' W gbar``."""
        return 2.0 * self.gradient_momcond(params).T @ weights @ self.momcond_mean(params)

    def calc_weightmatrix(self, moms, weights_method="cov", wargs=(), params=None):
        """S: blockwise at ``params`` when given, else column-centered from ``moms``."""
        if params is not None:
            return get_covariance("HC0", None, self.model_data, self.family).s(self.moment_blocks(params))
        centered = moms - moms.mean(axis=0)
        return centered.T @ centered / moms.shape[0]

    # -- step 2 ------------------------------------------------------------------
    def fitgmm(self, start, weights=None, optim_method="gauss-newton", optim_args=None):
        """Minimise ``gbar' W gbar`` by Gauss-Newton; returns the parameters."""
        if weights is None:
            weights = self.start_weights(inv=False)
        return self._gauss_newton(np.asarray(start, dtype=float), weights, **(optim_args or {}))[0]

    def _all_units_blocks(self, params: np.ndarray) -> list[np.ndarray]:
        """Each source's summed Jacobian over all its rows: the costly part of G."""
        etas = self._split(params)[1:]
        evaluations = [self._evaluation(m, eta) for m, eta in enumerate(etas)]
        return [evaluation.jacobian(self._row_weight[m]) for m, evaluation in enumerate(evaluations)]

    def _gauss_newton(
        self,
        start: np.ndarray,
        weights: np.ndarray,
        maxiter: int = 100,
        tol: float = 1e-8,
        all_units_blocks: list[np.ndarray] | None = None,
    ) -> tuple[np.ndarray, SolverInfo, np.ndarray]:
        """Minimise ``gbar' W gbar`` by Gauss-Newton (`synthinfer.solvers.gauss_newton`),
        reusing ``all_units_blocks`` (step 1's Newton Hessians) until near the estimate."""
        return gauss_newton(
            start, weights, self.momcond_mean, self._jacobian, self._all_units_blocks,
            nobs=self.nobs, constant_jacobian=self.family.constant_jacobian,
            maxiter=maxiter, tol=tol, reused_blocks=all_units_blocks,
        )

    def _one_step(self, start: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, SolverInfo, np.ndarray]:
        """Step 2 for scores that are step functions of the parameters (quantiles).

        One Gauss-Newton step from step 1 (`synthinfer.solvers.gauss_newton_step`)
        gives the target moments ``u = G_t (theta_2 - theta_1)`` that the efficient
        combination with the auxiliary moments prescribes (``u`` does not depend
        on ``G_t``: the step sets the target moments to their regression on the
        auxiliary ones). The target's theta is then the exact root of its
        estimating equation shifted to ``u`` (the family's `solve_shifted`), not
        ``theta_1 + G_t^-1 u``: theta_1's error is ``-G_t^-1 gbar_t`` with the
        true slope, so dividing the auxiliary correction by the kernel estimate
        of ``G_t`` would mis-scale it by that estimate's relative error (a 20%
        standard deviation for a 0.9 quantile at n = 200 with t(5) errors), an
        extra variance no standard error allows for. The shifted root moves with the true slope, as theta_1 does,
        and is asymptotically the same estimator. It is again a check-loss
        vertex, so the target block of G is taken there (its interpolated rows
        left out of the density); the sources' blocks stay at step 1, where
        their vertex rows are exact zeros. A family without `solve_shifted`
        keeps the linear step and G at step 1.
        """
        gbar = self._step_one_moments(start)
        params, info, G = gauss_newton_step(start, weights, gbar, self._jacobian, nobs=self.nobs)
        rows, cols = self.layout.moment_block(0), self.layout.param_block(0)
        data = self.model_data
        target_sum = self.nobs * (G[rows, cols] @ (params[cols] - start[cols]))
        try:
            root = self.family.solve_shifted(
                data.X, data.y, self._labeled_weight, target_sum, names=data.param_names, frame="real",
                start=params[cols],
            )
        except ConvergenceError:
            # a shift beyond the scores' range has no root (the LP is unbounded): the linear step stands
            root = None
        if root is None:
            return params, info, G
        params, G = params.copy(), G.copy()
        params[cols] = root.params
        # the solver's Jacobian at the root, with the labeled weights it was given
        G[rows, cols] = root.jacobian / self.nobs
        return params, info, G

    def _step_one_moments(self, start: np.ndarray) -> np.ndarray:
        """gbar at step 1 with the blocks step 1 solved set to their root, zero.

        A check-loss minimum interpolates p rows (zero residuals), where the step
        score takes one side's value: the block's mean is then up to p/n away from
        the zero that its subgradient attains. One Gauss-Newton step would treat
        that artefact as information and move theta by ~p / (n f(0)), a sizeable
        fraction of a standard error in a tail where the density f is small.
        """
        gbar = self.momcond_mean(start)
        gbar[self.layout.moment_block(0)] = 0.0
        for m in range(self.layout.n_sources):
            gbar[self.layout.moment_block(2 + 2 * m)] = 0.0
        return gbar

    def fit(
        self,
        cov_type: str = "HC0",
        cov_kwds: Mapping[str, Any] | None = None,
        *,
        weight_type: str = "HC0",
        weight_kwds: Mapping[str, Any] | None = None,
        correction: Correction | None = "small-sample",
        shrinkage: Shrinkage | None = "stein",
        leverage: Leverage | None = "HC3",
        maxiter: int = 100,
        tol: float = 1e-8,
        method: str | None = None,
        use_t: bool | None = None,
        **kwargs: Any,
    ):
        """Two-step GMM estimate.

        Parameters
        ----------
        cov_type : {"HC0", "HC1", "HC2", "HC3", "cluster"}
            How the reported covariance treats dependence: independent units,
            or independent clusters of units. It does not change ``params``.
            "HC1" scales HC0 by ``n / (n - p)``. "HC2" and "HC3" divide each
            squared residual by ``1 - h_ii`` or its square (``h_ii`` the
            leverage of the labeled design, weighted by ``w / pi`` when the fit
            is); they exist for the human-only least-squares fit only (no
            auxiliary source, ``model="ols"`` or ``"mean"``) and are refused
            otherwise. There the leverage replaces the small-sample factor:
            the default correction gives statsmodels' HC2/HC3 with
            ``use_t=True``, ``correction=None`` its default (normal).
        cov_kwds : dict, optional
            For "cluster": ``groups`` (a column name found in the frames, a
            Series indexed by unit id, or an array in ``model.unit_ids`` order)
            and ``use_correction`` (bool, default True; statsmodels' small-sample
            factor).
        weight_type : {"HC0", "cluster"}
            The S whose inverse is the step-2 weight matrix (as linearmodels'
            ``weight_type``): "HC0" (default) or "cluster", efficient when
            clusters of units are dependent. When it is the same estimator as
            the covariance, the covariance is ``(G' S^-1 G)^-1 / N``; otherwise
            it is the sandwich ``A S_c A' / N`` with ``A = (G'WG)^-1 G'W`` and
            the J test is Hansen's generalized form.
        weight_kwds : dict, optional
            As ``cov_kwds``, for ``weight_type``; defaults to ``cov_kwds`` when
            ``weight_type == cov_type``.
        correction : {"small-sample", "windmeijer", None}
            ``"small-sample"`` (default): Windmeijer's (2005) correction for the
            estimated weight matrix, the target's covariance scaled by
            ``n / (n - p - s d_aux)`` (labeled units over what remains after the
            target's p parameters and the s-shrunk d_aux auxiliary coefficients)
            and Student's t inference with that many degrees of freedom (with
            clusters: statsmodels' cluster factor and G - 1); with no source it is
            HC1 with t. For least squares it also applies the leverage
            adjustment ``leverage`` (default HC3, with no source statsmodels'
            HC3 with t). ``"windmeijer"``: Windmeijer's correction alone, normal
            inference. None: the plain two-step covariance, normal inference.
            See `synthinfer.inference.small_sample` and docs/small-samples.md.
        shrinkage : {"stein", None}
            ``"stein"`` (default): the weight matrix's target-auxiliary covariance
            is shrunk by a positive-part Stein factor s in [0, 1], so sources that
            do not predict the human moments cost (almost) nothing: s = 0 is the
            human-only estimate, s = 1 the efficient two-step one, and s tends to
            1 as n grows when the sources are informative. None: the efficient
            weight matrix ``S^-1``. See `synthinfer.weighting`.
        leverage : {"HC3", "HC2", None}
            Part of the default ``correction="small-sample"``: each labeled
            unit's labeled moments (target and labeled auxiliary blocks) are
            divided by ``1 - h_i`` (``"HC3"``, default) or ``sqrt(1 - h_i)``
            (``"HC2"``) in the parameters' covariance, ``h_i`` the unit's
            leverage in the target fit; the factor then counts only the
            auxiliary coefficients, ``n / (n - s d_aux)``, and the t keeps
            ``n - p - s d_aux`` degrees of freedom. Applied where it is defined:
            unit-level covariance (HC0, HC1) and a family with a hat matrix
            (``model="ols"`` or ``"mean"``); elsewhere (clusters, logit, Poisson,
            ...) the correction is unchanged. It does not change ``params``,
            the weight matrix or the J test. With no source it is statsmodels'
            ``OLS`` HC3 (HC2) with ``use_t=True``. None: the ``n / (n - p - s
            d_aux)`` factor instead. See docs/small-samples.md.
        maxiter, tol : int, float
            Gauss-Newton limit and tolerance (largest step, in standard errors).
        method : {None, "newton", "gauss-newton"}
            statsmodels' optimiser keyword, accepted for drop-in use; the solver
            is always Newton / Gauss-Newton, any other name raises ValueError.
        use_t : bool, optional
            Student's t (True) or normal (False) inference for the tests and
            intervals; it does not change the covariance. None (default): t
            exactly when ``correction="small-sample"``, with its degrees of
            freedom. True with another correction: t with ``df_resid = n - p``
            (labeled units minus target parameters; with clusters G - 1, G the
            clusters holding labeled units), statsmodels' small-sample
            reference. False: normal inference even with the small-sample
            covariance (``df_resid`` infinite).
        **kwargs
            statsmodels' ``disp``, ``full_output``, ``callback``, ``retall`` and
            ``skip_hessian`` are accepted and ignored (nothing is printed);
            anything else raises TypeError.

        Returns
        -------
        GMMSynthResults
        """
        check_fit_keywords(type(self).__name__, method, kwargs)
        if use_t not in (None, True, False):
            raise ValueError(f"use_t must be True, False or None, got {use_t!r}")
        if correction == "none":
            correction = None
        if correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
        if leverage == "none":
            leverage = None
        if leverage not in LEVERAGES:
            raise ValueError(f"leverage must be one of {LEVERAGES}, got {leverage!r}")
        covariance = get_covariance(cov_type, cov_kwds, self.model_data, self.family)
        if weight_kwds is None and str(weight_type).lower() == str(cov_type).lower():
            weight_kwds = cov_kwds
        weighting = get_covariance(weight_type, weight_kwds, self.model_data, self.family)
        if weighting.same_as(covariance):
            weighting = covariance  # one estimator: the efficient formulas apply
        if shrinkage == "none":
            shrinkage = None
        if shrinkage not in (None, "stein"):
            raise ValueError(f"shrinkage must be 'stein' or None, got {shrinkage!r}")
        if shrinkage == "stein" and self.model_data.sources:
            weighting = ShrunkWeight(weighting, self.layout, self._independent_labeled(weighting))
        start, newton_blocks = self._step_one()
        sandwich = None
        if correction == "small-sample":
            adjusted = leverage_adjusted(covariance, self.model_data, self.family, leverage, self.layout)
            sandwich = None if adjusted is covariance else adjusted
        block_names = self.layout.block_names
        warn_if_few_labeled(self.model_data, self.nmoms)
        warn_if_few_clusters(self.model_data, covariance, self.nmoms)
        s_weight = weighting.s(self.moment_blocks(start))
        s_base = getattr(weighting, "base_s", s_weight)
        explain = lambda: explain_singular(self.model_data, weighting, s_base)  # noqa: E731
        if s_base is not s_weight:
            # a singular S is diagnosed as such even where the shrunk one could be
            # inverted; the shrunk one is then inverted without a second warning
            weight_matrix(s_base, block_names, explain=explain)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NearSingularWeightWarning)
                weights = weight_matrix(s_weight, block_names, explain=explain)
        else:
            weights = weight_matrix(s_weight, block_names, explain=explain)
        if self.model_data.sources and self.family.smooth:
            params, info, jacobian = self._gauss_newton(
                start, weights, maxiter=maxiter, tol=tol, all_units_blocks=newton_blocks
            )
        elif self.model_data.sources:
            params, info, jacobian = self._one_step(start, weights)
        else:
            # just identified: step 1 already solves gbar = 0 exactly
            params, info = start, SolverInfo(True, 0, 0.0)
            jacobian = self.gradient_momcond(params)
        if not info.converged:
            warnings.warn(
                f"Gauss-Newton did not converge in {maxiter} iterations (last step "
                f"{info.max_step_in_se:.2g} standard errors)",
                ConvergenceWarning,
                stacklevel=2,
            )
        results = results_class_dict[self.results_class](
            model=self,
            params=params[: self.k_target],
            params_full=params,
            start_params=start,
            weights=weights,
            covariance=covariance,
            sandwich_covariance=sandwich,
            weighting=weighting,
            cov_type=covariance.cov_type,
            cov_kwds=dict(cov_kwds or {}),
            weight_type=weighting.cov_type,
            weight_kwds=dict(weight_kwds or {}),
            solver_info=info,
            jacobian=jacobian,
            correction=correction,
            shrinkage=shrinkage if self.model_data.sources else None,
            requested_use_t=use_t,
            wargs={},
            options_other={"weights_method": weighting.cov_type, "has_optimal_weights": weighting is covariance, "optim_method": "gauss-newton"},
            optim_args={"maxiter": maxiter, "tol": tol},
        )
        self._evaluations.clear()  # per-row arrays are not kept past the fit
        self._partitioned_blocks.clear()
        return GMMSynthResultsWrapper(results)

    def _independent_labeled(self, covariance: Any) -> int:
        """Independent labeled observations under ``covariance``: labeled units, or
        the clusters that hold labeled units."""
        groups = covariance.groups
        if groups is None:
            return self.model_data.n_labeled
        codes, _ = groups
        return len(np.unique(codes[self.model_data.labeled_pos]))

    @property
    def estimator_label(self) -> str:
        """The estimator's name in summaries and comparison tables."""
        if not self.model_data.sources:
            return "Human only"
        kinds = {s.kind for s in self.model_data.sources}
        return "GMM-Proxy" if kinds == {"proxy"} else "GMM-Synth"


class GMMProxy(GMMSynth):
    """GMM with LLM annotations ("proxy") of every unit and no synthetic data."""

    @classmethod
    def from_formula(  # type: ignore[override]
        cls,
        formula: str,
        real: pd.DataFrame,
        proxy: FrameArg,
        model: str | Family = "ols",
        *,
        engine: Engine | None = None,
        eval_env: int | Mapping[str, Any] = 0,
        labeling_prob: Any = None,
        weights: Any = None,
    ) -> GMMProxy:
        """As ``GMMSynth.from_formula``, with proxy data only."""
        namespace = eval_env if isinstance(eval_env, Mapping) else capture_namespace(eval_env + 1)
        return super().from_formula(
            formula, real, proxy, None, model, engine=engine, eval_env=namespace,
            labeling_prob=labeling_prob, weights=weights,
        )


def _scaled_rows(
    block: np.ndarray | tuple[np.ndarray, np.ndarray], weight: np.ndarray
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """A per-unit block with row i multiplied by weight[i]; factors stay factors."""
    if isinstance(block, tuple):
        return block[0], block[1] * weight
    return block * weight[:, None]
