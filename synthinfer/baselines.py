"""Baseline estimators on the same data contract: classical, naive pooling, PPI++.

- :class:`Classical`: the human-only fit (GMM-Synth with no auxiliary source).
- :class:`Naive`: pools auxiliary rows with the human rows as if they were
  human data; biased unless the LLM is exact. Shown for contrast.
- :class:`PPI`: prediction-powered inference with power tuning (PPI++,
  Angelopoulos, Duchi and Zrnic 2023) on one auxiliary source, following the
  conventions of the reference implementation ppi-python 0.2.3.
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
from statsmodels.base import wrapper as wrap
from statsmodels.base.model import LikelihoodModelResults, Model

from .data import FrameArg, ModelData, Source
from .exceptions import ConvergenceError, SpecificationError, SynthInferWarning
from .families import OLS, Family, fit_estimating_equation, weighted_gram
from .formula import capture_namespace
from .gmm import GMMSynth
from .model import ModelBase
from .results import ReportingMixin, ResultsWrapper

__all__ = ["Classical", "Naive", "PPI", "BaselineResults"]


class Classical(GMMSynth):
    """The human-only fit: the model family on the labeled units, HC0 or cluster covariance."""

    @classmethod
    def from_formula(  # type: ignore[override]
        cls,
        formula: str,
        real: pd.DataFrame,
        model: str | Family = "ols",
        *,
        engine: str | None = None,
        eval_env: int | Mapping[str, Any] = 0,
        labeling_prob: Any = None,
    ) -> Classical:
        """As :meth:`GMMSynth.from_formula` with the human-labeled frame only.

        With ``labeling_prob`` it is the inverse-probability-weighted estimate.
        """
        namespace = eval_env if isinstance(eval_env, Mapping) else capture_namespace(eval_env + 1)
        return super().from_formula(  # type: ignore[return-value]
            formula, real, None, None, model, engine=engine, eval_env=namespace,
            labeling_prob=labeling_prob,
        )

    @property
    def estimator_label(self) -> str:
        return "Classical"


class _BaselineModel(ModelBase, Model):
    """A model on :class:`ModelData` whose ``fit`` computes params and a covariance directly."""

    def __init__(self, data: ModelData, model: str | Family = "ols", formula: str | None = None):
        endog, exog = self._set_data(data, model, formula)
        super().__init__(endog, exog)
        self._set_counts()

    def _results(self, params: np.ndarray, cov: np.ndarray, **attrs: Any) -> BaselineResultsWrapper:
        results = BaselineResults(self, params, cov, **attrs)
        return BaselineResultsWrapper(results)


def _sandwich(bread: np.ndarray, meat: np.ndarray) -> np.ndarray:
    inverse = np.linalg.inv(bread)
    return inverse @ meat @ inverse.T


class Naive(_BaselineModel):
    """Pool the auxiliary rows with the human rows as if all were human data.

    Rows: every human-labeled row; for a proxy source, the rows of the units
    that are not labeled (a labeled unit keeps its human label); for a
    synthetic source, every synthetic row. Each row is an observation with
    weight 1 and the covariance is HC0 over rows. This is the biased practice
    the other estimators correct, shown for contrast.
    """

    estimator_label = "Naive pooling"

    @classmethod
    def from_formula(  # type: ignore[override]
        cls,
        formula: str,
        real: pd.DataFrame,
        proxy: FrameArg = None,
        synth: FrameArg = None,
        model: str | Family = "ols",
        *,
        engine: str | None = None,
        eval_env: int | Mapping[str, Any] = 0,
    ) -> Naive:
        namespace = eval_env if isinstance(eval_env, Mapping) else capture_namespace(eval_env + 1)
        return cls._from_frames(formula, real, proxy, synth, model, engine, namespace)

    def pooled_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The stacked (X, y) the naive fit treats as human data."""
        data = self.model_data
        labeled = np.zeros(data.n_units, dtype=bool)
        labeled[data.labeled_pos] = True
        Xs, ys = [data.X], [data.y]
        for source in data.sources:
            rows = ~labeled[source.unit_pos] if source.kind == "proxy" else slice(None)
            Xs.append(source.X[rows])
            ys.append(source.y[rows])
        return np.vstack(Xs), np.concatenate(ys)

    def fit(self) -> BaselineResultsWrapper:  # type: ignore[override]
        """Fit on the pooled rows; HC0 covariance over rows."""
        X, y = self.pooled_rows()
        params = fit_estimating_equation(
            self.family, X, y, None, names=self.model_data.param_names, frame="pooled rows"
        ).params
        scores = self.family.scores(X, y, params)
        cov = _sandwich(self.family.gram(X, params), scores.T @ scores)
        return self._results(params, cov, n_rows=len(y))


class PPI(_BaselineModel):
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
    """

    estimator_label = "PPI++"

    def __init__(self, data: ModelData, model: str | Family = "ols", formula: str | None = None, lam: str | float = "auto"):
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
        self.lam = lam
        self.source: Source = data.sources[0]
        labeled = np.zeros(data.n_units, dtype=bool)
        labeled[data.labeled_pos] = True
        self._n_unlabeled = data.n_units - data.n_labeled
        # Passes over the unlabeled units' rows weight all rows, zero on labeled
        # units: no copy of the (large) auxiliary design is ever made.
        source = self.source
        self._unlabeled_weight = np.where(labeled[source.unit_pos], 0.0, source.row_weight)
        rows = source.labeled_rows
        self._aux_labeled = (source.X[rows], source.y[rows], source.row_weight[rows])

    @classmethod
    def from_formula(  # type: ignore[override]
        cls,
        formula: str,
        real: pd.DataFrame,
        proxy: FrameArg = None,
        synth: FrameArg = None,
        model: str | Family = "ols",
        lam: str | float = "auto",
        *,
        engine: str | None = None,
        eval_env: int | Mapping[str, Any] = 0,
    ) -> PPI:
        namespace = eval_env if isinstance(eval_env, Mapping) else capture_namespace(eval_env + 1)
        if (proxy is None) == (synth is None):
            raise SpecificationError("ppi takes exactly one auxiliary source: give proxy= or synth=")
        return cls._from_frames(formula, real, proxy, synth, model, engine, namespace, lam=lam)

    # -- the pieces of PPI++ ---------------------------------------------------------
    def _aux_score_moments(self, params: np.ndarray) -> tuple[np.ndarray, tuple, tuple]:
        """Auxiliary scores per unit: the labeled units' (n, p) scores, and the
        (count, sum, cross product) of all units' and of the unlabeled units' scores."""
        per_unit = self.source.unit_sums(self.family.scores(self.source.X, self.source.y, params))
        labeled = per_unit[self.model_data.labeled_pos]
        all_units = (len(per_unit), np.ones(len(per_unit)) @ per_unit, per_unit.T @ per_unit)
        unlabeled = (
            self._n_unlabeled,
            all_units[1] - labeled.sum(axis=0),
            all_units[2] - labeled.T @ labeled,
        )
        return labeled, all_units, unlabeled

    @staticmethod
    def _covariance_from_moments(moments: tuple, ddof: int) -> np.ndarray:
        count, total, cross = moments
        mean = total / count
        return (cross - count * np.outer(mean, mean)) / (count - ddof)

    def _hessian(self, params: np.ndarray, lam: float) -> np.ndarray:
        """ppi-python's Hessian: pooled over labeled and unlabeled rows, labeled only at lam=0."""
        data, source, n = self.model_data, self.source, self.model_data.n_labeled
        labeled_part = self.family.gram(data.X, params)
        if lam == 0:
            return labeled_part / n
        unlabeled_part = self.family.gram(source.X, params, self._unlabeled_weight)
        return (labeled_part + unlabeled_part) / (n + self._n_unlabeled)

    @functools.cached_property
    def _human(self) -> np.ndarray:
        data = self.model_data
        return fit_estimating_equation(
            self.family, data.X, data.y, None, names=data.param_names, frame="real"
        ).params

    @functools.cached_property
    def _ols_aux_difference(self) -> np.ndarray:
        """theta(unlabeled aux) - theta(labeled aux): OLS's PPI estimate is linear in lam."""
        source, names = self.source, self.model_data.param_names
        unlabeled = fit_estimating_equation(
            self.family, source.X, source.y, self._unlabeled_weight,
            names=names, frame=f"{source.name} (unlabeled units)",
        ).params
        labeled = fit_estimating_equation(
            self.family, *self._aux_labeled, names=names, frame=f"{source.name} (labeled units)"
        ).params
        return unlabeled - labeled

    def _point_estimate(self, lam: float, start: np.ndarray | None = None) -> np.ndarray:
        if lam == 0:
            return self._human
        if isinstance(self.family, OLS):
            return self._human + lam * self._ols_aux_difference
        return self._solve_rectified(lam, self._human if start is None else start)

    def _solve_rectified(self, lam: float, start: np.ndarray, maxiter: int = 100, tol: float = 1e-9) -> np.ndarray:
        """Newton on the rectified loss ``lam L_u(aux) - lam L_l(aux) + L_l(human)``.

        As in :func:`~synthinfer.families.fit_estimating_equation`, a full step is
        taken when the loss is still falling at its end; otherwise it is halved.
        """
        data, source, family = self.model_data, self.source, self.family
        n, n_unl = data.n_labeled, self._n_unlabeled
        w_unl = self._unlabeled_weight
        X_lab, y_lab, w_lab = self._aux_labeled

        def loss(b: np.ndarray) -> float:
            return (
                lam / n_unl * family.objective(source.X @ b, source.y, w_unl)
                - lam / n * family.objective(X_lab @ b, y_lab, w_lab)
                + family.objective(data.X @ b, data.y, np.ones(n)) / n
            )

        def gradient_and_derivs(b: np.ndarray) -> tuple[np.ndarray, tuple]:
            mu_u, d_u = family.mean_and_deriv(source.X @ b)
            mu_l, d_l = family.mean_and_deriv(X_lab @ b)
            mu_h, d_h = family.mean_and_deriv(data.X @ b)
            gradient = (
                lam / n_unl * (source.X.T @ (w_unl * (source.y - mu_u)))
                - lam / n * (X_lab.T @ (w_lab * (y_lab - mu_l)))
                + data.X.T @ (data.y - mu_h) / n
            )
            return gradient, (d_u, d_l, d_h)

        params = start.copy()
        with np.errstate(over="ignore", invalid="ignore"):
            gradient, (d_u, d_l, d_h) = gradient_and_derivs(params)
            for _ in range(maxiter):
                positive_part = (
                    lam / n_unl * weighted_gram(source.X, w_unl * d_u)
                    + weighted_gram(data.X, d_h) / n
                )
                jacobian = positive_part - lam / n * weighted_gram(X_lab, w_lab * d_l)
                try:
                    step = scipy.linalg.solve(jacobian, gradient, assume_a="pos")
                except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
                    try:
                        step = scipy.linalg.solve(positive_part, gradient, assume_a="pos")
                    except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
                        break  # the fitted means saturated: the loss has no minimum

                new_gradient, derivs = gradient_and_derivs(params + step)
                scale = 1.0
                if n * (step @ gradient) >= 1.0 and not new_gradient @ step >= 0.0:
                    value = loss(params)
                    while scale >= 1e-8 and loss(params + scale * step) > value + 1e-12 * abs(value):
                        scale *= 0.5
                    new_gradient, derivs = gradient_and_derivs(params + scale * step)
                params = params + scale * step
                gradient, (d_u, d_l, d_h) = new_gradient, derivs
                if np.max(np.abs(scale * step)) <= tol * (1.0 + np.max(np.abs(params))):
                    return params
        raise ConvergenceError(
            f"the PPI++ rectified loss has no minimum at lambda = {lam:.3g}: on the labeled "
            f"units the auxiliary outcomes disagree with the human ones so much that "
            f"'lam L(aux, unlabeled) - lam L(aux, labeled) + L(human)' is unbounded. Use a "
            f"smaller fixed lam (lam=0 is the human-only fit)."
        )

    def _tune(self, params: np.ndarray) -> float:
        """ppi-python's power-tuning rule, clipped to [0, 1]."""
        data, n, n_unl = self.model_data, self.model_data.n_labeled, self._n_unlabeled
        grads = self.family.scores(data.X, data.y, params)
        grads_hat, all_units, _ = self._aux_score_moments(params)
        inv_hessian = np.linalg.inv(self._hessian(params, lam=1.0))
        g_c, h_c = grads - grads.mean(axis=0), grads_hat - grads_hat.mean(axis=0)
        cov_grads = (g_c.T @ h_c + h_c.T @ g_c) / n
        # ppi-python: np.cov (ddof=1) of the labeled and unlabeled scores stacked = all units
        var_grads_hat = self._covariance_from_moments(all_units, ddof=1)
        num = np.trace(inv_hessian @ cov_grads @ inv_hessian)
        denom = 2 * (1 + n / n_unl) * np.trace(inv_hessian @ var_grads_hat @ inv_hessian)
        return float(np.clip(num / denom, 0.0, 1.0))

    def _covariance(self, params: np.ndarray, lam: float, ddof: int) -> np.ndarray:
        data, n, n_unl = self.model_data, self.model_data.n_labeled, self._n_unlabeled
        grads = self.family.scores(data.X, data.y, params)
        grads_hat, _, unlabeled = self._aux_score_moments(params)
        var_unl = lam**2 * self._covariance_from_moments(unlabeled, ddof) if lam != 0 else 0.0
        var = np.atleast_2d(np.cov(grads - lam * grads_hat, rowvar=False, ddof=ddof))
        inv_hessian = np.linalg.inv(self._hessian(params, lam))
        return inv_hessian @ (n / n_unl * var_unl + var) @ inv_hessian / n

    def fit(self, ddof: int = 0) -> BaselineResultsWrapper:  # type: ignore[override]
        """PPI++ estimate and covariance.

        Parameters
        ----------
        ddof : int
            Degrees of freedom of the score variances. 0 (default) makes
            ``lam=0`` exactly the classical HC0 fit; ppi-python uses 1.
        """
        start = None
        if self.lam == "auto":
            try:
                start = self._point_estimate(1.0)
            except ConvergenceError:
                # lambda = 1 only serves to pick lambda; where that estimate does not
                # exist, tune at the human-only estimate (lambda = 0) instead
                warnings.warn(
                    "the PPI++ estimate at lambda = 1 does not exist for these data (the "
                    "auxiliary outcomes disagree strongly with the human ones); lambda is "
                    "tuned at the human-only estimate instead",
                    SynthInferWarning,
                    stacklevel=2,
                )
                start = self._human
            lam = self._tune(start)
            start = self._point_estimate(lam, start)
            lam = self._tune(start)
            tuned = True
        else:
            lam, tuned = float(self.lam), False
        params = self._point_estimate(lam, start)
        cov = self._covariance(params, lam, ddof)
        cov_type = "HC0" if ddof == 0 else f"HC0, ddof={ddof}"
        return self._results(params, cov, lam=lam, lam_tuned=tuned, ddof=ddof, cov_type=cov_type)


class BaselineResults(ReportingMixin, LikelihoodModelResults):
    """Results of a baseline: ``params`` and a sandwich covariance, normal inference."""

    def __init__(self, model: _BaselineModel, params: np.ndarray, cov: np.ndarray, **attrs: Any) -> None:
        super().__init__(model, params, normalized_cov_params=cov, scale=1.0)
        self.nobs = model.nobs
        self.n_labeled = model.n_labeled
        self.df_resid = np.inf
        self.use_t = False
        self.cov_type = "HC0"
        self.cov_kwds: dict[str, Any] = {}
        self.__dict__.update(attrs)

    def _summary_top(self) -> tuple[list, list]:
        right: list = [("Covariance Type:", [self.cov_type])]
        if isinstance(self.model, PPI):
            how = "power-tuned" if self.lam_tuned else "fixed"
            right += [("PPI++ lambda:", [f"{self.lam:.4f}"]), ("Lambda:", [how])]
        if isinstance(self.model, Naive):
            right += [("Pooled rows:", [f"{self.n_rows}"])]
        return [], right

    def _summary_notes(self) -> list[str]:
        notes = ["Standard errors are robust (sandwich); inference is normal (z)."]
        if isinstance(self.model, Naive):
            notes.append(
                "Naive pooling treats LLM-generated rows as human data. It is biased "
                "whenever the LLM errs and its intervals are not valid; shown for contrast."
            )
        if isinstance(self.model, PPI):
            notes.append(
                f"PPI++ on source {self.model.source.name!r} ({self.model.source.kind}); "
                f"lambda = {self.lam:.4f} ({'tuned for power, clipped to [0, 1]' if self.lam_tuned else 'fixed'}). "
                f"lambda = 0 is the human-only fit."
            )
        return notes


class BaselineResultsWrapper(ResultsWrapper):
    pass


wrap.populate_wrapper(BaselineResultsWrapper, BaselineResults)
