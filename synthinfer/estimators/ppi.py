"""PPI++: prediction-powered inference with power tuning on one auxiliary source.

Angelopoulos, Duchi and Zrnic (2023), following the conventions of the
reference implementation ppi-python 0.2.3.
"""

from __future__ import annotations

import functools
import numbers
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg

from ..data import FrameArg, ModelData, Source
from ..exceptions import ConvergenceError, SpecificationError, SynthInferWarning, describe_units
from ..families import OLS, Family, Quantile
from ..fit_keywords import check_fit_keywords
from ..formula import capture_namespace
from ..options import Correction, Engine
from ..rowblocks import scaled_rows_gram
from ..solvers import damped_update
from .base import BaselineModel, BaselineResults, BaselineResultsWrapper
from .ppi_quantile import GRID_POINTS, RectifiedCDF, rectified_cdf_interval

__all__ = ["PPI", "TUNINGS"]

#: How ``lam="auto"`` is tuned: on the labels that rectify, or on held-out folds.
TUNINGS = ("in-sample", "crossfit")


class PPI(BaselineModel):
    """PPI++: prediction-powered inference with power tuning on one auxiliary source.

    The estimate solves the rectified estimating equation

    ``lam/N_u sum_unlabeled psi(z^m) - lam/n sum_labeled psi(z^m) + 1/n sum_labeled psi(z) = 0``

    where z^m is the auxiliary row(s) of a unit (a proxy row, or the mean over a
    unit's synthetic samples). With a proxy frame, the labeled units' proxy
    rows form the rectifier and the other units' rows are the unlabeled set,
    as in ppi-python. For OLS the estimate is ppi-python's closed form
    ``lam theta(unlabeled aux) + theta(labeled human) - lam theta(labeled aux)``.

    Parameters
    ----------
    lam : "auto" or float
        ``"auto"`` tunes lambda for power as ppi-python's confidence intervals
        do (tuned at the lambda=1 estimate, then re-tuned once at the tuned
        estimate), clipped to [0, 1]; ``0`` is the classical estimate.
    tuning : {"in-sample", "crossfit"}
        How ``lam="auto"`` is tuned. ``"in-sample"`` (default): on the same
        labels that rectify, as ppi-python. ``"crossfit"``: the labeled units
        are split at random into ``folds`` folds; each fold's lambda is tuned
        (by the same rule, pilot estimate included) on the labeled units of the
        other folds and the unlabeled units, so no label tunes the lambda that
        multiplies its own rectifier. The estimate solves the rectified
        equation with each labeled unit's rectifier scaled by its fold's
        lambda and the unlabeled term by their mean,

        ``lam_bar/N_u sum_unlabeled psi(z^m) - 1/n sum_labeled lam_k(i) psi(z^m) + 1/n sum_labeled psi(z) = 0``

        (for OLS, ppi-python's closed form with the rectifier regression of
        ``lam_k(i) yhat_i - y_i``); with every fold's lambda equal it is the
        fixed-lambda estimate. Its covariance is the PPI++ sandwich of that
        equation at the fold lambdas, held fixed (each is independent of the
        fold it multiplies): ``H^-1 [n/N_u lam_bar^2 V_u + Var(psi - lam_k(i)
        psi^m)] H^-1 / n``, the labeled scores centred by their means; as every
        fold's lambda converges to the same limit this is the asymptotic
        covariance of PPI++ at that lambda.
    folds : int, optional
        Number of folds of ``tuning="crossfit"`` (default 5); each training
        set must have more labeled units than coefficients.
    seed : int, optional
        Seed of the random fold assignment (default 0).
    """

    estimator_label = "PPI++"

    def __init__(
        self,
        data: ModelData,
        model: str | Family = "ols",
        formula: str | None = None,
        lam: str | float = "auto",
        labeling_prob: Any = None,
        tuning: str = "in-sample",
        folds: int | None = None,
        seed: int | None = None,
    ):
        super().__init__(data, model, formula)
        if len(data.sources) != 1:
            raise SpecificationError(
                f"ppi takes exactly one auxiliary source (proxy= or synth=), got "
                f"{len(data.sources)}: {self.source_names}"
            )
        numeric = isinstance(lam, numbers.Real) and not isinstance(lam, bool)
        if not (lam == "auto" or (numeric and np.isfinite(lam))):
            raise ValueError(f"lam must be 'auto' or a number, got {lam!r}")
        if data.n_units == data.n_labeled:
            raise SpecificationError("ppi needs unlabeled units: every unit of the source is labeled")
        plain_quantile = isinstance(self.family, Quantile) and data.X.shape[1] == 1 and bool(np.all(data.X == 1.0))
        if not self.family.smooth and not plain_quantile:
            raise SpecificationError(
                f"ppi with model={self.family.name!r} and terms {list(data.param_names)} is not available: "
                f"its scores are step functions, so the rectified estimating equation has no "
                f"Newton solution; ppi handles a plain quantile ('y ~ 1', by its rectified CDF, "
                f"as ppi-python), and gmm_proxy a {self.family.label} with a proxy source"
            )
        self.lam = lam
        self.tuning = tuning
        self.folds, self.seed = _check_crossfit(tuning, lam, folds, seed, data.n_labeled, len(data.param_names))
        if tuning == "crossfit" and plain_quantile:
            raise SpecificationError(
                "tuning='crossfit' is not available for a plain quantile ('y ~ 1' with a Quantile "
                "model): its rectified CDF takes one lambda; use tuning='in-sample' or a fixed lam"
            )
        self.source: Source = data.sources[0]
        if getattr(data, "partitioned", False):
            if tuning == "crossfit":
                raise SpecificationError(
                    "tuning='crossfit' is not available with Dask frames (partitioned auxiliary "
                    "rows); use tuning='in-sample' or in-memory frames"
                )
            self._init_partitioned(labeling_prob, plain_quantile)
            return
        labeled = np.zeros(data.n_units, dtype=bool)
        labeled[data.labeled_pos] = True
        self._n_unlabeled = data.n_units - data.n_labeled
        # per-unit design weights, each set's normalised to mean 1 (ppi-python's
        # w and w_unlabeled): 1/pi on the labeled units, 1/(1 - pi) on the others
        unit_weight = np.ones(data.n_units)
        self._human_weight: np.ndarray | None = None
        self.labeling_prob: np.ndarray | None = None
        if labeling_prob is not None or data.unit_weight is not None:
            # survey weights w_i (1 without) times the design weights of each set
            survey = np.ones(data.n_units) if data.unit_weight is None else data.unit_weight
            human = survey[data.labeled_pos]
            unlabeled = np.zeros(data.n_units)
            unlabeled[~labeled] = survey[~labeled]
            if labeling_prob is not None:
                self.labeling_prob = _unit_labeling_prob(data, labeling_prob, labeled)
                human = human / self.labeling_prob[data.labeled_pos]
                # 1/(1 - pi) off the labeled units (where pi may be 1, so it is not evaluated)
                unlabeled[~labeled] /= 1.0 - self.labeling_prob[~labeled]
            self._human_weight = human / human.mean()
            unit_weight = unlabeled / unlabeled.sum() * self._n_unlabeled
            unit_weight[data.labeled_pos] = self._human_weight
        # Each unlabeled unit's weight; passes over the unlabeled units' rows weight
        # all rows, zero on labeled units: no copy of the (large) auxiliary design.
        self._unlabeled_unit_weight = np.where(labeled, 0.0, unit_weight)
        source = self.source
        self._unlabeled_weight = self._unlabeled_unit_weight[source.unit_pos] * source.row_weight
        #: what PPI++ sums over the unlabeled units' rows
        self._unlabeled: Any = _UnlabeledRows(source, self._unlabeled_weight)
        rows = source.labeled_rows
        self._aux_labeled = (
            source.X[rows], source.y[rows], source.row_weight[rows] * unit_weight[source.unit_pos[rows]]
        )
        # which labeled unit (real's row order) each of those auxiliary rows belongs to
        labeled_index = np.full(data.n_units, -1)
        labeled_index[data.labeled_pos] = np.arange(data.n_labeled)
        self._aux_labeled_unit = labeled_index[source.unit_pos[rows]]
        self._rectified_cdf: RectifiedCDF | None = None
        if plain_quantile:
            self._rectified_cdf = RectifiedCDF(
                human=data.y, human_weight=np.ones(data.n_labeled) if self._human_weight is None else self._human_weight,
                aux=source.y, aux_weight=source.row_weight * unit_weight[source.unit_pos], aux_unit=source.unit_pos,
                labeled_unit=labeled, labeled_pos=data.labeled_pos,
            )

    def _init_partitioned(self, labeling_prob: Any, plain_quantile: bool) -> None:
        """The auxiliary rows live in partitions (Dask): every sum over the unlabeled
        units is a pass there, see synthinfer/distributed/ppi.py."""
        from ..distributed.ppi import UnlabeledPartitions, check_partitioned_ppi

        check_partitioned_ppi(labeling_prob, plain_quantile)
        data = self.model_data
        self._n_unlabeled = data.n_units - data.n_labeled
        self._human_weight = None
        self.labeling_prob = None
        self._rectified_cdf = None
        self._unlabeled = UnlabeledPartitions(self.source)  # type: ignore[arg-type]
        self._aux_labeled = self._unlabeled.aux_labeled

    @classmethod
    def from_formula(
        cls,
        formula: str,
        real: pd.DataFrame,
        proxy: FrameArg = None,
        synth: FrameArg = None,
        model: str | Family = "ols",
        lam: str | float = "auto",
        *,
        engine: Engine | None = None,
        eval_env: int | Mapping[str, Any] = 0,
        labeling_prob: Any = None,
        weights: Any = None,
        tuning: str = "in-sample",
        folds: int | None = None,
        seed: int | None = None,
    ) -> PPI:
        """Create the model from a formula, the real frame and one auxiliary source.

        ``labeling_prob``: known probabilities pi_i with which each unit was
        chosen for human labeling, for every unit (a column of a frame covering
        all units, such as the proxy frame, or a Series indexed by unit id).
        As in ppi-python's ``w`` and ``w_unlabeled``, labeled units are weighted
        by 1/pi_i and unlabeled units by 1/(1 - pi_i), each set's weights
        normalised to mean 1. ``weights``: survey weights w_i of every unit (as
        in ``GMMSynth.from_formula``); they multiply those design weights before
        the normalisation. ``tuning``, ``folds``, ``seed``: how lambda is tuned
        (see the class). See ``GMMSynth.from_formula`` for the others.
        """
        namespace = eval_env if isinstance(eval_env, Mapping) else capture_namespace(eval_env + 1)
        if (proxy is None) == (synth is None):
            raise SpecificationError("ppi takes exactly one auxiliary source: give proxy= or synth=")
        return cls._from_frames(
            formula, real, proxy, synth, model, engine, namespace, lam=lam, labeling_prob=labeling_prob,
            weights=weights, tuning=tuning, folds=folds, seed=seed,
        )

    # -- the pieces of PPI++ ---------------------------------------------------------
    # A rectified equation is given by ``lam`` (one lambda, or one per labeled unit in
    # real's row order) and ``use`` (None: every labeled unit; else a boolean mask of the
    # labeled units that enter it, the training folds of a cross-fitted lambda).
    def _aux_score_moments(
        self, params: np.ndarray, use: np.ndarray | None = None
    ) -> tuple[np.ndarray, tuple, tuple]:
        """Auxiliary scores per unit: every labeled unit's (n, p) scores, and the
        (count, sum, cross product) of the used and unlabeled units' scores and of
        the unlabeled units' scores."""
        source, labeled_pos = self.source, self.model_data.labeled_pos
        moments = getattr(self._unlabeled, "score_moments", None)
        if moments is not None:
            # auxiliary rows in partitions: one pass there (distributed/ppi.py)
            labeled, unlabeled = moments(self.family, params)
            labeled_moments = (len(labeled), np.ones(len(labeled)) @ labeled, labeled.T @ labeled)
            return labeled, tuple(a + b for a, b in zip(labeled_moments, unlabeled)), unlabeled
        # the unlabeled units' weighted scores w_j psi_j, from all N rows (w_j = 0 on labeled units)
        w = self._unlabeled_unit_weight
        evaluation = self.family.evaluate(source.X, source.y, params)
        scores = evaluation.scores()
        if source.one_row_per_unit and isinstance(scores, tuple):
            # psi = x r: products straight from X and the residuals, no (N, p) scores
            X, residual = scores
            labeled = self._weighted(X[labeled_pos] * residual[labeled_pos, None])
            weighted = w * residual
            unlabeled = (self._n_unlabeled, X.T @ weighted, scaled_rows_gram([(X, weighted)]))
        else:
            per_unit = source.unit_sums(evaluation.values())
            labeled = self._weighted(per_unit[labeled_pos])
            unlabeled = (self._n_unlabeled, w @ per_unit, scaled_rows_gram([(per_unit, w)]))
        used = labeled if use is None else labeled[use] * self._use_scale(use)
        labeled_moments = (len(used), np.ones(len(used)) @ used, used.T @ used)
        all_units = tuple(a + b for a, b in zip(labeled_moments, unlabeled))
        return labeled, all_units, unlabeled

    def _weighted(self, labeled_rows: np.ndarray) -> np.ndarray:
        """Values on the labeled units (real's row order) times their design weights."""
        if self._human_weight is None:
            return labeled_rows
        return labeled_rows * (self._human_weight if labeled_rows.ndim == 1 else self._human_weight[:, None])

    @staticmethod
    def _covariance_from_moments(moments: tuple, ddof: int) -> np.ndarray:
        count, total, cross = moments
        mean = total / count
        return (cross - count * np.outer(mean, mean)) / (count - ddof)

    def _design_weight(self) -> np.ndarray:
        """Each labeled unit's design weight (1 without labeling probabilities)."""
        n = self.model_data.n_labeled
        return np.ones(n) if self._human_weight is None else self._human_weight

    def _use_scale(self, use: np.ndarray) -> float:
        """1 / the used units' mean design weight: it renormalises their weights to
        mean 1, as ppi-python normalises the weights of the labels it is given."""
        return 1.0 if self._human_weight is None else float(1.0 / self._human_weight[use].mean())

    def _used_weight(self, use: np.ndarray) -> np.ndarray:
        """The labeled units' design weights, zero off ``use``, mean 1 over ``use``."""
        return self._design_weight() * use * self._use_scale(use)

    def _unit_lambdas(self, lam: float | np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.asarray(lam, dtype=float), (self.model_data.n_labeled,))

    def _lam_bar(self, lam: float | np.ndarray, use: np.ndarray | None = None) -> float:
        """The unlabeled term's lambda: the used units' lambdas averaged with their design weights.

        It keeps the equation unbiased: the labeled rectifiers' weighted sum
        estimates lam_bar times the mean auxiliary score."""
        if np.ndim(lam) == 0:
            return float(lam)
        lam_units, weight = self._unit_lambdas(lam), self._design_weight()
        if use is not None:
            lam_units, weight = lam_units[use], weight[use]
        if np.all(lam_units == lam_units[0]):
            return float(lam_units[0])
        return float(weight @ lam_units / weight.sum())

    def _hessian(self, params: np.ndarray, lam: float, use: np.ndarray | None = None) -> np.ndarray:
        """ppi-python's Hessian: pooled over labeled and unlabeled rows, labeled only at lam=0."""
        data, source, n = self.model_data, self.source, self.model_data.n_labeled
        weight = self._human_weight
        if use is not None:
            weight = self._used_weight(use)
            n = int(use.sum())
        labeled_part = -self.family.evaluate(data.X, data.y, params).jacobian(weight)
        if lam == 0 or not self.family.smooth:
            # a quantile's Jacobian is the outcome's density at the estimate: the
            # human outcome's, which the auxiliary outcomes' need not share
            return labeled_part / n
        unlabeled_part = -self._unlabeled.evaluate(self.family, params).jacobian()
        return (labeled_part + unlabeled_part) / (n + self._n_unlabeled)

    @functools.cached_property
    def _human(self) -> np.ndarray:
        data = self.model_data
        return self.family.solve(
            data.X, data.y, self._human_weight, names=data.param_names, frame="real"
        ).params

    def _human_on(self, use: np.ndarray | None) -> np.ndarray:
        """The human-only estimate on the used labeled units."""
        if use is None:
            return self._human
        data, weight = self.model_data, self._human_weight
        return self.family.solve(
            data.X[use], data.y[use], None if weight is None else weight[use],
            names=data.param_names, frame="real (the labeled units outside a fold)",
        ).params

    @functools.cached_property
    def _ols_unlabeled(self) -> np.ndarray:
        source = self.source
        return self._unlabeled.solve(
            self.family, names=self.model_data.param_names, frame=f"{source.name} (unlabeled units)"
        )

    @functools.cached_property
    def _ols_aux_difference(self) -> np.ndarray:
        """theta(unlabeled aux) - theta(labeled aux): OLS's PPI estimate is linear in lam."""
        labeled = self.family.solve(
            *self._aux_labeled, names=self.model_data.param_names, frame=f"{self.source.name} (labeled units)"
        ).params
        return self._ols_unlabeled - labeled

    def _ols_rectified(self, lam: np.ndarray, use: np.ndarray | None) -> np.ndarray:
        """ppi-python's OLS closed form with a lambda per labeled unit:
        ``theta(human) + lam_bar theta(unlabeled aux) - theta(labeled aux -> lam_i yhat_i)``."""
        X, y, w = self._aux_labeled
        lam_rows = self._unit_lambdas(lam)[self._aux_labeled_unit]
        if use is not None:
            rows = use[self._aux_labeled_unit]
            X, y, w, lam_rows = X[rows], y[rows], w[rows], lam_rows[rows]
        rectifier = self.family.solve(
            X, lam_rows * y, w, names=self.model_data.param_names, frame=f"{self.source.name} (labeled units)"
        ).params
        return self._human_on(use) + self._lam_bar(lam, use) * self._ols_unlabeled - rectifier

    def _point_estimate(
        self, lam: float | np.ndarray, start: np.ndarray | None = None, use: np.ndarray | None = None
    ) -> np.ndarray:
        if self._rectified_cdf is not None:
            # tuning='crossfit' refuses the plain quantile, so lam is one number here
            return np.array([self._rectified_cdf.point_estimate(self.family.q, float(lam))])  # type: ignore[attr-defined]
        if use is None and np.ndim(lam) == 0:
            if lam == 0:
                return self._human
            if isinstance(self.family, OLS):
                return self._human + lam * self._ols_aux_difference
            return self._solve_rectified(lam, self._human if start is None else start)
        if not np.any(self._unit_lambdas(lam) if use is None else self._unit_lambdas(lam)[use]):
            return self._human_on(use)
        if isinstance(self.family, OLS):
            return self._ols_rectified(lam, use)  # type: ignore[arg-type]
        return self._solve_rectified(lam, self._human_on(use) if start is None else start, use=use)

    def _solve_rectified(
        self, lam: float | np.ndarray, start: np.ndarray, maxiter: int = 100, tol: float = 1e-9,
        use: np.ndarray | None = None,
    ) -> np.ndarray:
        """Newton on the rectified loss ``lam_bar L_u(aux) - L_l(lam aux) + L_l(human)``.

        Each step is damped by `synthinfer.solvers.damped_update`, the rule of
        every other solver of the package (halved until the loss falls, or
        the norm of the rectified scores for a family without a loss).
        """
        data, source, family = self.model_data, self.source, self.family
        n_unl = self._n_unlabeled
        unlabeled = self._unlabeled
        X_lab, y_lab, w_lab = self._aux_labeled
        w_h = self._design_weight()
        lam_units = self._unit_lambdas(lam)
        if use is not None:
            w_h, lam_units = self._used_weight(use), lam_units * use * self._use_scale(use)
        n = int(np.count_nonzero(use)) if use is not None else data.n_labeled
        # lam_i scales unit i's auxiliary rows; one lambda gives lam w_lab
        w_lab = w_lab * lam if np.ndim(lam) == 0 and use is None else w_lab * lam_units[self._aux_labeled_unit]
        unlabeled_lam = self._lam_bar(lam, use)

        def loss(b: np.ndarray) -> float:
            values = (
                unlabeled.objective(family, b),
                family.objective(X_lab, y_lab, b, w_lab),
                family.objective(data.X, data.y, b, w_h),
            )
            if None in values:  # no loss: the norm of the rectified scores instead
                g = gradient_and_evaluations(b)[0]
                return float(g @ g)
            return unlabeled_lam / n_unl * values[0] - values[1] / n + values[2] / n  # type: ignore[operator]

        def gradient_and_evaluations(b: np.ndarray) -> tuple[np.ndarray, tuple]:
            e_u = unlabeled.evaluate(family, b)
            e_l = family.evaluate(X_lab, y_lab, b)
            e_h = family.evaluate(data.X, data.y, b)
            gradient = unlabeled_lam / n_unl * e_u.sums() - e_l.sums(w_lab) / n + e_h.sums(w_h) / n
            return gradient, (e_u, e_l, e_h)

        # a log-likelihood's Hessian is symmetric; a user's Jacobian need not be
        assume = "pos" if family.has_objective else "gen"
        has_loss = bool(family.has_objective)
        params = start.copy()
        with np.errstate(over="ignore", invalid="ignore"):
            gradient, (e_u, e_l, e_h) = gradient_and_evaluations(params)
            for _ in range(maxiter):
                positive_part = -(unlabeled_lam / n_unl * e_u.jacobian() + e_h.jacobian(w_h) / n)
                jacobian = positive_part + e_l.jacobian(w_lab) / n
                try:
                    step = scipy.linalg.solve(jacobian, gradient, assume_a=assume)
                except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
                    try:
                        step = scipy.linalg.solve(positive_part, gradient, assume_a=assume)
                    except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
                        break  # the fitted means saturated: the loss has no minimum

                def along(scale: float, at: np.ndarray = params, step: np.ndarray = step) -> tuple[tuple, np.ndarray]:
                    # damped_update works on summed scores; the loss here is a mean
                    g, evaluated = gradient_and_evaluations(at + scale * step)
                    return evaluated, n * g

                def loss_along(scale: float, at: np.ndarray = params, step: np.ndarray = step) -> float:
                    return loss(at + scale * step)

                evaluations, new_sums = along(1.0)
                scale, evaluations, new_sums = damped_update(
                    step, n * gradient, evaluations, new_sums, along, loss_along if has_loss else None
                )
                params = params + scale * step
                gradient, (e_u, e_l, e_h) = new_sums / n, evaluations
                if np.max(np.abs(scale * step)) <= tol * (1.0 + np.max(np.abs(params))):
                    return params
        where = f"lambda = {unlabeled_lam:.3g}" if np.ndim(lam) == 0 else f"the fold lambdas (mean {unlabeled_lam:.3g})"
        raise ConvergenceError(
            f"the PPI++ rectified loss has no minimum at {where}: on the labeled "
            f"units the auxiliary outcomes disagree with the human ones so much that "
            f"'lam L(aux, unlabeled) - lam L(aux, labeled) + L(human)' is unbounded. Use a "
            f"smaller fixed lam (lam=0 is the human-only fit)."
        )

    def _tune(self, params: np.ndarray, use: np.ndarray | None = None) -> float:
        """ppi-python's power-tuning rule on the used labeled units, clipped to [0, 1]."""
        data, n_unl = self.model_data, self._n_unlabeled
        grads = self._weighted(self.family.evaluate(data.X, data.y, params).values())
        grads_hat, all_units, _ = self._aux_score_moments(params, use)
        if use is not None:
            scale = self._use_scale(use)
            grads, grads_hat = grads[use] * scale, grads_hat[use] * scale
        n = len(grads)
        inv_hessian = np.linalg.inv(self._hessian(params, lam=1.0, use=use))
        g_c, h_c = grads - grads.mean(axis=0), grads_hat - grads_hat.mean(axis=0)
        cov_grads = (g_c.T @ h_c + h_c.T @ g_c) / n
        # ppi-python: np.cov (ddof=1) of the labeled and unlabeled scores stacked = all units
        var_grads_hat = self._covariance_from_moments(all_units, ddof=1)
        num = np.trace(inv_hessian @ cov_grads @ inv_hessian)
        denom = 2 * (1 + n / n_unl) * np.trace(inv_hessian @ var_grads_hat @ inv_hessian)
        return float(np.clip(num / denom, 0.0, 1.0))

    def _tuned_lambda(self, use: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """ppi-python's tuning on the used labeled units: tuned at the lambda = 1
        estimate, re-tuned once at the tuned estimate. Returns lambda and that estimate."""
        try:
            start = self._point_estimate(1.0, use=use)
        except ConvergenceError:
            # lambda = 1 only serves to pick lambda; where that estimate does not
            # exist, tune at the human-only estimate (lambda = 0) instead
            warnings.warn(
                "the PPI++ estimate at lambda = 1 does not exist for these data (the "
                "auxiliary outcomes disagree strongly with the human ones); lambda is "
                "tuned at the human-only estimate instead",
                SynthInferWarning,
                stacklevel=4,
            )
            start = self._human_on(use)
        lam = self._tune(start, use)
        start = self._point_estimate(lam, start, use=use)
        return self._tune(start, use), start

    def _fold_assignment(self) -> np.ndarray:
        """Each labeled unit's fold (real's row order): a seeded random permutation of balanced folds."""
        n = self.model_data.n_labeled
        if self.folds is None:  # only tuning="crossfit" sets folds
            raise SpecificationError("labeled units are split into folds only with tuning='crossfit'")
        return np.random.default_rng(self.seed).permutation(np.arange(n) % self.folds)

    def _covariance(self, params: np.ndarray, lam: float | np.ndarray, ddof: int) -> np.ndarray:
        data, n, n_unl = self.model_data, self.model_data.n_labeled, self._n_unlabeled
        grads = self._weighted(self.family.evaluate(data.X, data.y, params).values())
        grads_hat, _, unlabeled = self._aux_score_moments(params)
        lam_bar = self._lam_bar(lam)
        var_unl = lam_bar**2 * self._covariance_from_moments(unlabeled, ddof) if lam_bar != 0 else 0.0
        if np.ndim(lam) == 0:
            var = np.atleast_2d(np.cov(grads - lam * grads_hat, rowvar=False, ddof=ddof))
        else:
            # each labeled unit's rectified score with its fold's lambda; the human and
            # auxiliary scores are centred by their own means (the same across folds),
            # not the difference by a mean that changes with the fold's lambda
            g_c, h_c = grads - grads.mean(axis=0), grads_hat - grads_hat.mean(axis=0)
            d = g_c - self._unit_lambdas(lam)[:, None] * h_c
            var = d.T @ d / (n - ddof)
        inv_hessian = np.linalg.inv(self._hessian(params, lam_bar))
        return inv_hessian @ (n / n_unl * var_unl + var) @ inv_hessian / n

    def fit(
        self, ddof: int = 0, correction: Correction | None = "small-sample", method: str | None = None, **kwargs: Any,
    ) -> BaselineResultsWrapper:
        """PPI++ estimate and covariance.

        Parameters
        ----------
        ddof : int
            Degrees of freedom of the score variances. 0 (default) makes
            ``lam=0`` exactly the classical HC0 fit; ppi-python uses 1.
        correction : {"small-sample", None}
            ``"small-sample"`` (default): the covariance times ``n / (n - p - t)``
            and Student's t inference with ``n - p - t`` degrees of freedom (p
            parameters, t = 1 when lambda is tuned from the labels, in-sample or
            cross-fitted, else 0), as the GMM estimators' default; with ``lam=0``
            it is the classical default (HC1 with t). None: the sandwich with
            normal inference, as ppi-python.
        method : {None, "newton", "gauss-newton"}
            statsmodels' optimiser keyword, accepted for drop-in use; any other
            name raises ValueError.
        **kwargs
            statsmodels' ``disp``, ``full_output``, ``callback``, ``retall`` and
            ``skip_hessian`` are accepted and ignored; anything else raises TypeError.

        Returns
        -------
        BaselineResultsWrapper
            With ``lam`` (the lambda used; with ``tuning="crossfit"`` the mean
            of the fold lambdas, the unlabeled term's lambda), ``lam_tuned``,
            ``tuning`` and, cross-fitted, ``fold_lam`` (each fold's lambda) and
            ``fold`` (each labeled unit's fold, real's row order).
        """
        check_fit_keywords(type(self).__name__, method, kwargs)
        if correction == "none":
            correction = None
        if correction not in ("small-sample", None):
            raise ValueError(f"correction must be 'small-sample' or None, got {correction!r}")
        start = None
        fold = fold_lam = None
        lam: float | np.ndarray
        if self.lam == "auto" and self.tuning == "crossfit":
            fold = self._fold_assignment()
            n_folds = int(fold.max()) + 1
            # fold k's lambda is tuned without fold k's labels: no label tunes the
            # lambda that scales its own rectifier
            fold_lam = np.array([self._tuned_lambda(fold != k)[0] for k in range(n_folds)])
            lam, tuned = fold_lam[fold], True
        elif self.lam == "auto":
            lam, start = self._tuned_lambda()
            tuned = True
        else:
            lam, tuned = float(self.lam), False
        params = self._point_estimate(lam, start)
        cov = self._covariance(params, lam, ddof)
        cov_type = "HC0" if ddof == 0 else f"HC0, ddof={ddof}"
        extra: dict = {}
        if correction == "small-sample":
            n, p = self.model_data.n_labeled, len(params)
            df = n - p - (1 if tuned else 0)
            if df < 1:
                raise SpecificationError(
                    f"the small-sample correction needs more labeled units than estimated "
                    f"coefficients: n = {n}, p = {p}{' and a tuned lambda' if tuned else ''}; "
                    f"fit(correction=None) for the plain sandwich"
                )
            cov = cov * n / df
            extra = {"use_t": True, "df_resid": float(df), "small_sample_df": float(df), "small_sample_factor": n / df}
        return self._results(
            params, cov, lam=self._lam_bar(lam), lam_tuned=tuned, tuning=self.tuning if tuned else "fixed",
            fold_lam=fold_lam, fold=fold, ddof=ddof, cov_type=cov_type, **extra,
        )

    def quantile_ci(
        self, alpha: float = 0.05, lam: float = 1.0, grid: str | int | np.ndarray = GRID_POINTS,
    ) -> tuple[float, float]:
        """ppi-python's interval for a plain quantile: the grid points where the
        rectified z-test of ``F_lam(theta) = q`` is not rejected at ``alpha``.

        Parameters
        ----------
        alpha : float
            The level; the interval covers with probability about 1 - alpha.
        lam : float
            The rectifier's lambda; 1 (default) is ppi-python's ``ppi_quantile_ci``,
            ``res.lam`` the fitted one.
        grid : int, "exact" or array
            ``5000`` (default): that many equally spaced points over the range of
            the outcomes, ppi-python's default; ``"exact"``: every outcome value
            (its ``exact_grid=True``); or the points themselves.

        Returns
        -------
        (lower, upper) : tuple of float
            Grid points, so the interval's resolution is the grid's. Inference is
            normal, with no small-sample correction and no kernel density (the
            results' ``conf_int`` is the Wald interval of the kernel sandwich).
        """
        if self._rectified_cdf is None:
            raise SpecificationError(
                f"quantile_ci is the interval of a plain quantile ('y ~ 1' with a Quantile "
                f"model), not of model={self.family.name!r} with these terms"
            )
        return rectified_cdf_interval(self._rectified_cdf, self.family.q, float(lam), alpha, grid)  # type: ignore[attr-defined]

    def summary_rows(self, results: BaselineResults) -> list:
        how = {"in-sample": "power-tuned", "crossfit": f"cross-fitted ({self.folds} folds)"}.get(results.tuning, "fixed")
        return [("PPI++ lambda:", [f"{results.lam:.4f}"]), ("Lambda:", [how])]

    def summary_notes(self, results: BaselineResults) -> list[str]:
        notes = []
        if self.model_data.unit_weight is not None:
            notes.append("Units are weighted by their survey weights w_i.")
        if self.labeling_prob is not None:
            notes.append(
                "Labeled units are weighted by 1/pi and unlabeled units by 1/(1 - pi), "
                "their known labeling probabilities (each set normalised to mean 1)."
            )
        if results.tuning == "crossfit":
            lams = ", ".join(f"{v:.4f}" for v in results.fold_lam)
            notes.append(
                f"PPI++ on source {self.source.name!r} ({self.source.kind}); lambda cross-fitted "
                f"in {self.folds} random folds of the labeled units (seed {self.seed}): each fold's "
                f"lambda is tuned for power on the other folds, clipped to [0, 1], and scales that "
                f"fold's rectifier: {lams}; their mean {results.lam:.4f} scales the unlabeled term."
            )
            return notes
        tuned = "tuned for power, clipped to [0, 1]" if results.lam_tuned else "fixed"
        notes.append(
            f"PPI++ on source {self.source.name!r} ({self.source.kind}); "
            f"lambda = {results.lam:.4f} ({tuned}). lambda = 0 is the human-only fit."
        )
        return notes


def _check_crossfit(
    tuning: Any, lam: Any, folds: Any, seed: Any, n_labeled: int, n_params: int
) -> tuple[int | None, int | None]:
    """Validate ``tuning``, ``folds`` and ``seed``; the folds and seed to use (None in-sample)."""
    if not (isinstance(tuning, str) and tuning in TUNINGS):
        raise SpecificationError(f"tuning must be one of {list(TUNINGS)}, got {tuning!r}")
    if tuning == "in-sample":
        if folds is not None or seed is not None:
            raise SpecificationError(
                "folds= and seed= set the folds of tuning='crossfit'; tuning='in-sample' "
                "(the default) has none: pass tuning='crossfit' or drop them"
            )
        return None, None
    if lam != "auto":
        raise SpecificationError(
            f"tuning='crossfit' tunes lambda on held-out folds, but lam={lam!r} fixes it: "
            f"give lam='auto' (the default) or drop tuning="
        )
    folds = 5 if folds is None else folds
    if isinstance(folds, bool) or not isinstance(folds, numbers.Integral) or int(folds) < 2:
        raise SpecificationError(f"folds must be an integer >= 2, got {folds!r}")
    folds = int(folds)
    seed = 0 if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or int(seed) < 0:
        raise SpecificationError(f"seed must be a non-negative integer, got {seed!r}")
    if folds > n_labeled:
        raise SpecificationError(
            f"tuning='crossfit' with folds={folds}: folds={folds} exceeds the {n_labeled} labeled "
            f"units, so some folds would be empty: use fewer folds"
        )
    training = n_labeled - -(-n_labeled // folds)  # labeled units outside the largest fold
    if training <= n_params:
        raise SpecificationError(
            f"tuning='crossfit' with folds={folds} on {n_labeled} labeled units leaves {training} "
            f"labeled units to tune a fold's lambda, which must exceed the {n_params} coefficients: "
            f"use fewer folds"
        )
    return int(folds), int(seed)


class _UnlabeledRows:
    """The auxiliary rows weighted by the unlabeled units' weights (zero on the labeled
    units): PPI++'s sums over the unlabeled units, in memory. Its Dask counterpart is
    ``synthinfer.distributed.ppi.UnlabeledPartitions``."""

    def __init__(self, source: Source, weight: np.ndarray) -> None:
        self.source, self.weight = source, weight

    def evaluate(self, family: Family, params: np.ndarray) -> _WeightedEvaluation:
        return _WeightedEvaluation(family.evaluate(self.source.X, self.source.y, params), self.weight)

    def objective(self, family: Family, params: np.ndarray) -> float | None:
        return family.objective(self.source.X, self.source.y, params, self.weight)

    def solve(self, family: Family, *, names: Any, frame: str) -> np.ndarray:
        return family.solve(self.source.X, self.source.y, self.weight, names=names, frame=frame).params


class _WeightedEvaluation:
    """An evaluation's sums and Jacobian with the weights bound."""

    def __init__(self, evaluation: Any, weight: np.ndarray) -> None:
        self.evaluation, self.weight = evaluation, weight

    def sums(self) -> np.ndarray:
        return self.evaluation.sums(self.weight)

    def jacobian(self) -> np.ndarray:
        return self.evaluation.jacobian(self.weight)


def _unit_labeling_prob(data: ModelData, prob: Any, labeled: np.ndarray) -> np.ndarray:
    """pi_i for every unit, validated: in (0, 1] where labeled, in [0, 1) elsewhere."""
    what = "labeling probabilities"
    if isinstance(prob, str) and prob in data.frames["real"].columns and not any(
        prob in frame.columns for name, frame in data.frames.items() if name != "real"
    ):
        raise SpecificationError(
            f"{what} column {prob!r} is in the real frame only, but PPI++ also weights "
            f"the unlabeled units by 1/(1 - pi): give pi for every unit (a column of the "
            f"proxy frame, or a Series indexed by unit id)"
        )
    values = pd.to_numeric(pd.Series(data.unit_values(prob, what)), errors="coerce").to_numpy(dtype=float)
    bad_labeled = labeled & ~((values > 0) & (values <= 1))
    bad_unlabeled = ~labeled & ~((values >= 0) & (values < 1))
    if bad_labeled.any():
        raise SpecificationError(
            f"{what} of labeled units must be known numbers in (0, 1], but are not for "
            f"unit(s) {describe_units(data.unit_ids[bad_labeled])}"
        )
    if bad_unlabeled.any():
        raise SpecificationError(
            f"{what} of unlabeled units must be known numbers in [0, 1) (a unit with "
            f"pi = 1 would have been labeled), but are not for unit(s) "
            f"{describe_units(data.unit_ids[bad_unlabeled])}"
        )
    return values
