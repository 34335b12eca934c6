"""RePPI: recalibrated prediction-powered inference (Ji, Lei and Zrnic, 2025).

"Predictions as surrogates: revisiting surrogate outcomes in the age of AI"
(arXiv 2501.09731). No public implementation was found; this follows the
paper's description: PPI with the prediction-based score replaced by a learned
"imputed" score ``g(z^m) ~ E[psi(z; theta_0) | z^m]``, learned on the labeled
units with K-fold cross-fitting at a pilot estimate theta_0, entering the
estimating equation linearly (so the equation is the gradient of a convex
objective whenever the model's loss is convex), with a tuning matrix that
makes the estimator never worse, asymptotically, than the human-only fit.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg

from ..data import FrameArg, ModelData, Source
from ..exceptions import ConvergenceError, SpecificationError
from ..families import Family, SingleIndexFamily
from ..fit_keywords import check_fit_keywords
from ..formula import capture_namespace
from ..options import Correction, Engine
from ..solvers import damped_update
from .base import BaselineModel, BaselineResults, BaselineResultsWrapper
from .recalibration import LinearRecalibration, ResidualRecalibration, feature_layout

__all__ = ["RePPI"]


class RePPI(BaselineModel):
    """RePPI: PPI with a recalibrated, cross-fitted imputed score on one source.

    With L the n labeled units and U the N - n others, the estimate solves

    ``1/n sum_L psi(z_i; theta) - Lambda [1/n sum_L g_i - 1/(N - n) sum_U g_j] = 0``

    where ``g_i`` estimates ``E[psi(z_i; theta_0) | z_i^m]``, the unit's human
    score at the pilot ``theta_0`` given its auxiliary row(s) ``z_i^m``. The
    learner is fitted on the labeled units outside each of ``folds`` folds
    and predicts the held-out labeled units; an unlabeled unit's ``g_j`` is
    the mean of the fold models' predictions. ``Lambda`` is the p x p matrix
    ``(N - n)/N Cov(psi, g) Var(g)^-1`` (estimated on the labeled units), which
    minimises the asymptotic covariance over all matrices and so is never worse
    than the human-only fit (Lambda = 0); with ``g`` the exact conditional mean
    it is ``(N - n)/N I``, the efficient estimator. Because Lambda is fitted on
    the labeled units it is applied to, the sandwich divides each labeled
    residual by one minus the unit's leverage in that fit (`fit`'s ``leverage``).

    Parameters
    ----------
    folds : int
        Cross-fitting folds over the labeled units (>= 2).
    learner : object with ``fit`` and ``predict``, optional
        Regressor of the human score on a unit's features (scikit-learn
        protocol): ``fit(features, targets)`` with targets (n, p), ``predict``
        returning (m, p). For a single-output scikit-learn regressor, wrap it in
        ``sklearn.multioutput.MultiOutputRegressor``. The features, per unit
        (the mean over a unit's synthetic samples), are the auxiliary score at
        the pilot (p columns), the auxiliary design (p) and the auxiliary
        outcome (1). Each fold fits a deep copy, so the object passed in is not
        changed. Default (numpy only): for the single-index families (ols,
        logit, probit, Poisson), `ResidualRecalibration`, which learns the
        human residual ``r(y, x'theta_0)`` given ``[x^m, f, r^m]`` and sets
        ``g = x^m r_hat``; for the others, `LinearRecalibration` at degree 1.
    pilot : "classical" or array of p floats
        theta_0: the human-only estimate (default) or given values.
    tuning : "optimal" or float
        ``"optimal"``: the matrix above. A number a: ``Lambda = a I`` (a = 1 with
        ``g = psi(z^m; theta_0)`` and theta_0 the PPI estimate at lambda = 1 gives
        back that estimate).
    seed : int
        Seed of the random fold assignment.
    """

    estimator_label = "RePPI"

    def __init__(
        self,
        data: ModelData,
        model: str | Family = "ols",
        formula: str | None = None,
        folds: int = 5,
        learner: Any = None,
        pilot: Any = "classical",
        tuning: str | float = "optimal",
        seed: int = 0,
    ):
        super().__init__(data, model, formula)
        if len(data.sources) != 1:
            raise SpecificationError(
                f"reppi takes exactly one auxiliary source (proxy= or synth=), got "
                f"{len(data.sources)}: {self.source_names}"
            )
        if data.labeled_weight is not None:
            raise SpecificationError(
                "reppi does not take labeling probabilities: the labeled units must be a simple random sample"
            )
        if data.n_units == data.n_labeled:
            raise SpecificationError("reppi needs unlabeled units: every unit of the source is labeled")
        if not self.family.smooth:
            raise SpecificationError(
                f"reppi with model={self.family.name!r} is not available: its scores are step "
                f"functions, so the estimating equation has no Newton solution"
            )
        if not (isinstance(folds, numbers.Integral) and not isinstance(folds, bool) and folds >= 2):
            raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
        fits = callable(getattr(learner, "fit", None)) and callable(getattr(learner, "predict", None))
        if learner is not None and not fits:
            raise TypeError(
                f"learner must have fit(features, targets) and predict(features) methods "
                f"(a scikit-learn style regressor), got {type(learner).__name__}"
            )
        numeric = isinstance(tuning, numbers.Real) and not isinstance(tuning, bool)
        if not (tuning == "optimal" or (numeric and np.isfinite(tuning))):
            raise ValueError(f"tuning must be 'optimal' or a number, got {tuning!r}")
        p = len(data.param_names)
        if not (isinstance(pilot, str) and pilot == "classical"):
            values = np.asarray(pilot, dtype=float).ravel() if not isinstance(pilot, str) else None
            if values is None or values.shape != (p,) or not np.isfinite(values).all():
                raise ValueError(
                    f"pilot must be 'classical' or {p} finite numbers (one per coefficient "
                    f"{data.param_names}), got {pilot!r}"
                )
            pilot = values
        n = data.n_labeled
        if folds > n:
            raise SpecificationError(f"reppi has {folds} folds but only {n} labeled units: use fewer folds")
        # the smallest training set has n - ceil(n / folds) units
        smallest = n - -(-n // folds)
        if smallest < p + 1:
            raise SpecificationError(
                f"reppi with {folds} folds trains the recalibration on {smallest} labeled units, "
                f"too few for {p} coefficients: use fewer folds or more labels (n = {n})"
            )
        self.folds: int = int(folds)
        self.learner: Any = learner
        self.pilot: str | np.ndarray = pilot
        self.tuning: str | float = tuning
        self.seed: int = seed
        self.source: Source = data.sources[0]
        labeled = np.zeros(data.n_units, dtype=bool)
        labeled[data.labeled_pos] = True
        self._unlabeled_pos: np.ndarray = np.flatnonzero(~labeled)

    @classmethod
    def from_formula(
        cls,
        formula: str,
        real: pd.DataFrame,
        proxy: FrameArg = None,
        synth: FrameArg = None,
        model: str | Family = "ols",
        *,
        folds: int = 5,
        learner: Any = None,
        pilot: Any = "classical",
        tuning: str | float = "optimal",
        seed: int = 0,
        engine: Engine | None = None,
        eval_env: int | Mapping[str, Any] = 0,
    ) -> RePPI:
        """Create the model from a formula, the real frame and one auxiliary source.

        See the class for ``folds``, ``learner``, ``pilot``, ``tuning`` and
        ``seed``, and ``GMMSynth.from_formula`` for the others.
        """
        namespace = eval_env if isinstance(eval_env, Mapping) else capture_namespace(eval_env + 1)
        if (proxy is None) == (synth is None):
            raise SpecificationError("reppi takes exactly one auxiliary source: give proxy= or synth=")
        return cls._from_frames(
            formula, real, proxy, synth, model, engine, namespace,
            folds=folds, learner=learner, pilot=pilot, tuning=tuning, seed=seed,
        )

    # -- the pieces ---------------------------------------------------------------
    def pilot_params(self) -> np.ndarray:
        """theta_0: the human-only estimate, or the values given as ``pilot``."""
        if not isinstance(self.pilot, str):
            return self.pilot
        data = self.model_data
        return self.family.solve(data.X, data.y, None, names=data.param_names, frame="real").params

    def features(self, pilot: np.ndarray) -> np.ndarray:
        """Per unit (N, 2p + 1): auxiliary score at the pilot, auxiliary design, auxiliary outcome.

        With several synthetic samples per unit, each column is the mean over them.
        """
        source = self.source
        scores = self.family.evaluate(source.X, source.y, pilot).values()
        y = source.y.reshape(len(source.y), -1)
        # unit_sums weights each row by 1/k: a mean over a unit's samples, the identity for a proxy
        return source.unit_sums(np.column_stack([scores, source.X, y]))

    def fold_assignment(self) -> np.ndarray:
        """The fold of each labeled unit (real's row order), sizes differing by at most one."""
        n = self.model_data.n_labeled
        return np.random.default_rng(self.seed).permutation(np.arange(n) % self.folds)

    def _predict(self, learner: Any, features: np.ndarray, p: int) -> np.ndarray:
        predicted = np.asarray(learner.predict(features), dtype=float)
        if p == 1 and predicted.ndim == 1:
            predicted = predicted[:, None]
        if predicted.shape != (len(features), p):
            raise SpecificationError(
                f"the recalibration learner {type(learner).__name__} predicted an array of shape "
                f"{predicted.shape}; RePPI needs ({len(features)}, {p}), one column per score "
                f"component (wrap a single-output regressor in sklearn.multioutput.MultiOutputRegressor)"
            )
        if not np.isfinite(predicted).all():
            raise SpecificationError(f"the recalibration learner {type(learner).__name__} predicted non-finite values")
        return predicted

    def recalibrate(self, pilot: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cross-fitted g: the labeled units' (n, p) out-of-fold predictions, the
        unlabeled units' (N - n, p) mean over the fold models, and the folds."""
        data = self.model_data
        p = len(pilot)
        features = self.features(pilot)
        labeled_features = features[data.labeled_pos]
        unlabeled_features = features[self._unlabeled_pos]
        targets = self.family.evaluate(data.X, data.y, pilot).values()
        fold = self.fold_assignment()
        if self.learner is None and isinstance(self.family, SingleIndexFamily):
            return (*self._recalibrate_residual(pilot, fold), fold)
        g_labeled = np.empty((data.n_labeled, p))
        g_unlabeled = np.zeros((len(unlabeled_features), p))
        # degree 1: a quadratic in the prediction extrapolates to units outside the labeled
        # range (for Poisson counts by orders of magnitude: docs/baselines.md)
        template = LinearRecalibration(degree=1) if self.learner is None else self.learner
        for k in range(self.folds):
            held_out = fold == k
            learner = copy.deepcopy(template)
            learner.fit(labeled_features[~held_out], targets[~held_out])
            g_labeled[held_out] = self._predict(learner, labeled_features[held_out], p)
            g_unlabeled += self._predict(learner, unlabeled_features, p) / self.folds
        return g_labeled, g_unlabeled, fold

    def _single_index(self) -> SingleIndexFamily:
        if not isinstance(self.family, SingleIndexFamily):
            raise SpecificationError(
                f"residual features are defined for the single-index families (score x r(y, x'b)), "
                f"not for model={self.family.name!r}"
            )
        return self.family

    def residual_features(self, pilot: np.ndarray) -> np.ndarray:
        """Per unit (N, p + 2): auxiliary design, auxiliary outcome and auxiliary residual
        ``r(f, x^m'theta_0)`` (means over a unit's synthetic samples), for the single-index families."""
        source = self.source
        residual = self._single_index().residual(source.X, source.y, pilot)
        y = source.y.reshape(len(source.y), -1)
        return source.unit_sums(np.column_stack([source.X, y, residual]))

    def _recalibrate_residual(self, pilot: np.ndarray, fold: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The default g for ``psi = x r``: ``x^m`` times the cross-fitted
        `ResidualRecalibration` of the human residual at the pilot."""
        data = self.model_data
        p = len(pilot)
        features = self.residual_features(pilot)
        labeled, unlabeled = features[data.labeled_pos], features[self._unlabeled_pos]
        residual = self._single_index().residual(data.X, data.y, pilot)
        r_labeled = np.empty(data.n_labeled)
        r_unlabeled = np.zeros(len(unlabeled))
        for k in range(self.folds):
            held_out = fold == k
            learner = ResidualRecalibration().fit(labeled[~held_out], residual[~held_out])
            r_labeled[held_out] = learner.predict(labeled[held_out])
            r_unlabeled += learner.predict(unlabeled) / self.folds
        design_labeled, design_unlabeled = labeled[:, :p], unlabeled[:, :p]
        return design_labeled * r_labeled[:, None], design_unlabeled * r_unlabeled[:, None]

    def tuning_matrix(self, targets: np.ndarray, g_labeled: np.ndarray) -> np.ndarray:
        """Lambda: ``(N - n)/N Cov(psi, g) Var(g)^+`` on the labeled units, or ``a I``."""
        p = g_labeled.shape[1]
        if self.tuning != "optimal":
            return float(self.tuning) * np.eye(p)
        n, n_unlabeled = self.model_data.n_labeled, len(self._unlabeled_pos)
        t_c = targets - targets.mean(axis=0)
        g_c = g_labeled - g_labeled.mean(axis=0)
        # a pseudo-inverse: a learner may predict some component as (nearly) constant
        return n_unlabeled / (n + n_unlabeled) * (t_c.T @ g_c) @ np.linalg.pinv(g_c.T @ g_c)

    def _solve(self, offset: np.ndarray, start: np.ndarray, maxiter: int = 100, tol: float = 1e-10) -> np.ndarray:
        """Damped Newton for ``sum_L psi(z_i; theta) = n offset``.

        The root minimises the model's loss plus ``n offset' theta`` (a linear term,
        so convex with the loss); `synthinfer.solvers.damped_update` halves a step
        until that falls (the norm of the scores for a family without a loss).
        """
        data, family = self.model_data, self.family
        target = data.n_labeled * offset

        def gradient_at(b: np.ndarray) -> tuple[np.ndarray, Any]:
            evaluation = family.evaluate(data.X, data.y, b)
            return evaluation.sums() - target, evaluation

        def loss(b: np.ndarray) -> float:
            value = family.objective(data.X, data.y, b, np.ones(data.n_labeled))
            if value is None:
                g = gradient_at(b)[0]
                return float(g @ g)
            return float(value + target @ b)

        params = np.array(start, dtype=float)
        assume = "pos" if family.has_objective else "gen"
        with np.errstate(over="ignore", invalid="ignore"):
            gradient, evaluation = gradient_at(params)
            for _ in range(maxiter):
                try:
                    step = scipy.linalg.solve(-evaluation.jacobian(), gradient, assume_a=assume)
                except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
                    break
                if not np.all(np.isfinite(step)):
                    break

                def along(scale: float, at: np.ndarray = params, step: np.ndarray = step) -> tuple[Any, np.ndarray]:
                    g, evaluated = gradient_at(at + scale * step)
                    return evaluated, g

                def loss_along(scale: float, at: np.ndarray = params, step: np.ndarray = step) -> float:
                    return loss(at + scale * step)

                evaluation, new_gradient = along(1.0)
                scale, evaluation, gradient = damped_update(
                    step, gradient, evaluation, new_gradient, along, loss_along if family.has_objective else None
                )
                params = params + scale * step
                if np.max(np.abs(scale * step)) <= tol * (1.0 + np.max(np.abs(params))):
                    return params
        raise ConvergenceError(
            "the RePPI estimating equation has no root: the human scores cannot reach the "
            "recalibrated correction (for logit or Poisson, the labeled outcomes may be separated "
            "after the shift). Try tuning=0 (the human-only fit) or another learner."
        )

    def tuning_leverage(self, g_labeled: np.ndarray) -> np.ndarray:
        """Each labeled unit's leverage in the regression that estimates Lambda.

        ``h_i = gc_i' (Gc' Gc)^+ gc_i`` with ``gc_i`` the unit's centred
        ``g_i``: the hat-matrix diagonal of the least squares of the human
        scores on the p columns of ``g`` (the centring, the regression's
        intercept, is in every version of the sandwich and is not counted).
        Zero for ``tuning`` a number, where Lambda is not estimated.
        """
        if self.tuning != "optimal":
            return np.zeros(len(g_labeled))
        g_c = g_labeled - g_labeled.mean(axis=0)
        return np.einsum("ij,jk,ik->i", g_c, np.linalg.pinv(g_c.T @ g_c), g_c)

    def fit(
        self, correction: Correction | None = "small-sample", method: str | None = None,
        leverage: bool = True, **kwargs: Any,
    ) -> BaselineResultsWrapper:
        """RePPI estimate and its sandwich covariance.

        The covariance is ``J^-1 [V_L / n + V_U / (N - n)] J^-T`` with J the mean
        Jacobian of the human scores on the labeled units at the estimate,
        ``V_L`` the covariance (1/n) of ``psi_i - Lambda g_i`` over the labeled
        units and ``V_U`` that of ``Lambda g_j`` over the unlabeled units. The
        cross-fitted ``g`` and the pilot enter only at second order and are
        treated as fixed. Lambda is a regression of the human scores on ``g``
        fitted on the same n labeled units, so its residuals
        ``psi_i - Lambda g_i`` understate the errors they stand for (their
        squares by a factor ``1 - h_i`` in expectation, ``h_i`` the unit's
        leverage in that regression); with ``leverage=True`` (default, for
        ``tuning="optimal"``) each labeled unit's centred residual is divided
        by ``1 - h_i`` in ``V_L``, as HC3 does for least squares. Without it
        the sandwich is optimistic when g is noisy and heavy-tailed (in the
        committed Monte Carlo, Poisson with an anti-correlated proxy at
        n = 200: mean SE 0.84 times the SD of the estimate, coverage 0.907;
        with it 0.99 and 0.923; docs/baselines.md).

        Parameters
        ----------
        correction : {"small-sample", None}
            ``"small-sample"`` (default): covariance times ``n / (n - p)`` and
            Student's t with ``n - p`` degrees of freedom, as the other
            estimators' default. None: the sandwich with normal inference.
        method : {None, "newton", "gauss-newton"}
            statsmodels' optimiser keyword, accepted for drop-in use.
        leverage : bool
            True (default): the labeled residuals divided by ``1 - h_i``
            (`tuning_leverage`; no change for a fixed ``tuning``). False:
            Lambda treated as fixed, the sandwich of the authors' research
            code (up to its ddof = 1 covariances and normal intervals).
            The small-sample factor ``n / (n - p)`` counts the p target
            coefficients and applies either way: the leverage allows for
            Lambda's regressors, not for theta.
        **kwargs
            statsmodels' ``disp``, ``full_output``, ``callback``, ``retall`` and
            ``skip_hessian`` are accepted and ignored; anything else raises TypeError.
        """
        check_fit_keywords(type(self).__name__, method, kwargs)
        if correction == "none":
            correction = None
        if correction not in ("small-sample", None):
            raise ValueError(f"correction must be 'small-sample' or None, got {correction!r}")
        if not isinstance(leverage, (bool, np.bool_)):
            raise TypeError(f"leverage must be True or False, got {leverage!r}")
        data, family = self.model_data, self.family
        n, n_unlabeled = data.n_labeled, len(self._unlabeled_pos)
        pilot = self.pilot_params()
        g_labeled, g_unlabeled, fold = self.recalibrate(pilot)
        targets = family.evaluate(data.X, data.y, pilot).values()
        lam = self.tuning_matrix(targets, g_labeled)
        offset = lam @ (g_labeled.mean(axis=0) - g_unlabeled.mean(axis=0))
        params = self._solve(offset, pilot)

        evaluation = family.evaluate(data.X, data.y, params)
        jacobian = evaluation.jacobian() / n
        labeled_part = evaluation.values() - g_labeled @ lam.T
        unlabeled_part = g_unlabeled @ lam.T
        h = self.tuning_leverage(g_labeled) if leverage else np.zeros(n)
        if np.any(h >= 1.0 - 1e-8):
            raise SpecificationError(
                f"a labeled unit has leverage {h.max():.6g} in the regression that estimates the "
                f"tuning matrix (its g alone determines Lambda): fit(leverage=False) treats Lambda "
                f"as fixed, or use a fixed tuning or more labels"
            )
        centred = (labeled_part - labeled_part.mean(axis=0)) / (1.0 - h)[:, None]
        meat = centred.T @ centred / n / n
        meat = meat + np.atleast_2d(np.cov(unlabeled_part, rowvar=False, ddof=0)) / n_unlabeled
        inverse = np.linalg.inv(jacobian)
        cov = inverse @ meat @ inverse.T
        extra: dict = {}
        if correction == "small-sample":
            p = len(params)
            df = n - p
            cov = cov * n / df
            extra = {
                "use_t": True, "df_resid": float(df), "small_sample_df": float(df),
                "small_sample_factor": n / df, "small_sample_label": "n/(n - p)",
            }
        return self._results(
            params, cov, pilot_params=pilot, tuning_matrix=lam, fold=fold,
            recalibrated_labeled=g_labeled, recalibrated_unlabeled=g_unlabeled, tuning_leverage=h,
            cov_type="HC3 (tuning regression)" if leverage and self.tuning == "optimal" else "HC0",
            **extra,
        )

    def summary_rows(self, results: BaselineResults) -> list:
        tuning = "optimal matrix" if self.tuning == "optimal" else f"{float(self.tuning):g} I"
        return [("Folds:", [str(self.folds)]), ("Tuning:", [tuning])]

    def summary_notes(self, results: BaselineResults) -> list[str]:
        if self.learner is not None:
            learner = type(self.learner).__name__
        elif isinstance(self.family, SingleIndexFamily):
            learner = "ResidualRecalibration"
        else:
            learner = "LinearRecalibration(degree=1)"
        pilot = "the human-only fit" if isinstance(self.pilot, str) else "given values"
        return [
            f"RePPI on source {self.source.name!r} ({self.source.kind}): the score recalibrated by "
            f"{learner}, cross-fitted in {self.folds} folds of the labeled units, at the pilot "
            f"({pilot}); the tuning matrix Lambda makes it no worse than the human-only fit"
            + (
                "; each labeled residual is divided by 1 - its leverage in the fit of Lambda."
                if results.cov_type != "HC0" else "; Lambda treated as fixed in the covariance."
            )
            if self.tuning == "optimal" else
            f"RePPI on source {self.source.name!r} ({self.source.kind}): the score recalibrated by "
            f"{learner}, cross-fitted in {self.folds} folds of the labeled units, at the pilot "
            f"({pilot}); Lambda fixed at {float(self.tuning):g} I."
        ]
