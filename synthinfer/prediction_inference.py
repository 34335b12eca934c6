"""Predictions with delta-method standard errors and intervals (statsmodels' ``get_prediction``).

The prediction is a function of the target coefficients only, so its variance
comes from the target block of the GMM covariance (``cov_params()``): with
``V`` that block, the linear index ``x'b`` has variance ``x' V x`` and the mean
``mu(x'b)`` has the delta-method variance ``mu'(x'b)^2 x' V x``.

Intervals for the mean are statsmodels' "endpoint" intervals by default: the
interval of the linear index, mapped through the (increasing) mean function,
as statsmodels' GLM, Logit, Probit and Poisson ``get_prediction`` do. They stay
inside the mean's range (probabilities in [0, 1], counts above 0);
``conf_int(method="delta")`` gives the symmetric ``mean +- q se`` instead.
For OLS the two coincide.

For OLS (and the mean) the frame also has statsmodels' prediction intervals
for a new observation, ``obs_ci_lower`` and ``obs_ci_upper``: ``mean +- q
sqrt(se^2 + s^2)`` with ``s^2`` the residual variance of the labeled units at
the target coefficients, ``sum w_i r_i^2 / (n - p)`` (w_i the labeled blocks'
weights, survey weight times 1/pi_i, 1 without them), which is statsmodels'
``scale`` of OLS / WLS; on the labeled units (``exog=None``) a unit's is
``s^2 / w_i``, as statsmodels divides by the model's weights. For a GMM fit
with sources the same labeled-data residual variance is used: the auxiliary
outcomes are an LLM's, not draws of the human outcome, so they say nothing
about its noise; only ``se`` carries the sources' gain. The other families
have no obs columns, as statsmodels' GLM and discrete models have none (a new
0/1 or count observation has no interval of this form).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .families.glm import OLS
from .prediction import design_matrix, index_coefficients, mean_functions

__all__ = ["PredictionResults", "get_prediction"]


class PredictionResults:
    """Predicted values with standard errors, as statsmodels' ``PredictionResults``.

    Attributes
    ----------
    predicted : ndarray
        The predicted mean (or linear index).
    se : ndarray
        Its delta-method standard error (``mean_se`` of `summary_frame`).
    var_pred : ndarray
        ``se**2``.
    linpred, linpred_se : ndarray
        The linear index and its standard error.
    which : str
        "mean" or "linear".
    dist, df : scipy distribution, float
        The reference distribution: Student's t with ``df`` when the fit uses
        t inference (``use_t``), else the standard normal (``df`` infinite).
    row_labels : Index
        The rows' labels.
    var_resid : ndarray or None
        The variance of a new observation around its mean (OLS: the residual
        variance, see the module notes), or None for the families without one.
    """

    def __init__(
        self, linpred: np.ndarray, linpred_se: np.ndarray, func: Callable[[np.ndarray], np.ndarray],
        deriv: Callable[[np.ndarray], np.ndarray], which: str, df: float, row_labels: pd.Index,
        var_resid: np.ndarray | None = None,
    ) -> None:
        self.linpred, self.linpred_se = linpred, linpred_se
        self.func, self.deriv = func, deriv
        self.which = which
        self.predicted = func(linpred)
        self.se = np.abs(deriv(linpred)) * linpred_se
        self.var_pred = self.se**2
        self.df = df
        self.dist = stats.t if np.isfinite(df) else stats.norm
        self.dist_args: tuple[float, ...] = (df,) if np.isfinite(df) else ()
        self.row_labels = row_labels
        self.var_resid = var_resid

    @property
    def se_obs(self) -> np.ndarray:
        """Standard error of a new observation, ``sqrt(se**2 + var_resid)`` (OLS only)."""
        if self.var_resid is None:
            raise ValueError("a new observation's interval exists for OLS only (as in statsmodels)")
        return np.sqrt(self.var_pred + self.var_resid)

    @property
    def predicted_mean(self) -> np.ndarray:
        """statsmodels' older name of ``predicted``."""
        return self.predicted

    @property
    def se_mean(self) -> np.ndarray:
        """statsmodels' older name of ``se``."""
        return self.se

    @property
    def tvalues(self) -> np.ndarray:
        return self.predicted / self.se

    def _quantile(self, alpha: float) -> float:
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        return float(self.dist.ppf(1 - alpha / 2, *self.dist_args))

    def conf_int(self, alpha: float = 0.05, method: str = "endpoint", obs: bool = False) -> np.ndarray:
        """The ``1 - alpha`` interval of each prediction, (rows, 2).

        Parameters
        ----------
        alpha : float
            0.05 gives 95% intervals.
        method : {"endpoint", "delta"}
            "endpoint" (default, statsmodels' default): the linear index's
            interval mapped through the mean function. "delta": ``predicted +- q se``.
        obs : bool
            True: the interval of a new observation, ``predicted +- q se_obs``
            (OLS only, as statsmodels' ``conf_int(obs=True)``).
        """
        if obs:
            q = self._quantile(alpha)
            return np.column_stack([self.predicted - q * self.se_obs, self.predicted + q * self.se_obs])
        if method not in ("endpoint", "delta"):
            raise ValueError(f"method must be 'endpoint' or 'delta', got {method!r}")
        q = self._quantile(alpha)
        if method == "endpoint":
            lin = np.column_stack([self.linpred - q * self.linpred_se, self.linpred + q * self.linpred_se])
            return self.func(lin)
        return np.column_stack([self.predicted - q * self.se, self.predicted + q * self.se])

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """Columns ``mean``, ``mean_se``, ``mean_ci_lower``, ``mean_ci_upper`` (the
        names of statsmodels' OLS and GLM prediction frames; its Logit, Probit and
        Poisson call the same numbers ``predicted``, ``se``, ``ci_lower``, ``ci_upper``),
        and for OLS ``obs_ci_lower``, ``obs_ci_upper`` (a new observation's interval)."""
        ci = self.conf_int(alpha)
        columns = {"mean": self.predicted, "mean_se": self.se, "mean_ci_lower": ci[:, 0], "mean_ci_upper": ci[:, 1]}
        if self.var_resid is not None:
            obs = self.conf_int(alpha, obs=True)
            columns.update(obs_ci_lower=obs[:, 0], obs_ci_upper=obs[:, 1])
        return pd.DataFrame(columns, index=self.row_labels)

    def t_test(self, value: float = 0.0, alternative: str = "two-sided") -> tuple[np.ndarray, np.ndarray]:
        """Test of ``prediction = value`` per row: (statistic, p-value)."""
        stat = (self.predicted - value) / self.se
        if alternative == "two-sided":
            pvalue = 2 * self.dist.sf(np.abs(stat), *self.dist_args)
        elif alternative == "larger":
            pvalue = self.dist.sf(stat, *self.dist_args)
        elif alternative == "smaller":
            pvalue = self.dist.cdf(stat, *self.dist_args)
        else:
            raise ValueError(f"alternative must be 'two-sided', 'larger' or 'smaller', got {alternative!r}")
        return stat, pvalue


def inference_df(results: Any) -> float:
    """The t reference's degrees of freedom, or infinity under normal inference."""
    return float(results.df_resid) if getattr(results, "use_t", False) else np.inf


def get_prediction(
    results: Any, exog: Any = None, transform: bool = True, which: str = "mean", row_labels: Any = None,
) -> PredictionResults:
    """Predictions of the target model with delta-method standard errors.

    Parameters
    ----------
    results : results object
        A fitted synthinfer results object of a single-index family.
    exog : DataFrame, optional
        As in `synthinfer.prediction.predict` (None: the labeled units).
    transform : bool
        True: ``exog`` goes through the learned formula; False: it is the design matrix.
    which : {"mean", "linear"}
        Predict the mean ``mu(x'b)`` or the linear index ``x'b``.
    row_labels : sequence, optional
        Labels replacing the rows' own (the frame's index, or the labeled units).

    Returns
    -------
    PredictionResults
    """
    if which not in ("mean", "linear"):
        raise ValueError(f"which must be 'mean' or 'linear', got {which!r}")
    X, labels = design_matrix(results, exog, transform)
    b = index_coefficients(results)
    p = len(b)
    cov = np.asarray(results.cov_params(), dtype=float)[:p, :p]
    lin = X @ b
    lin_se = np.sqrt(np.einsum("ij,jk,ik->i", X, cov, X))
    func: Callable[[np.ndarray], np.ndarray]
    deriv: Callable[[np.ndarray], np.ndarray]
    if which == "linear":
        func, deriv = (lambda t: t), np.ones_like
    else:
        func, deriv = mean_functions(results)
    if row_labels is not None:
        labels = pd.Index(row_labels)
        if len(labels) != len(X):
            raise ValueError(f"row_labels has {len(labels)} labels for {len(X)} rows")
    var_resid = _residual_variance(results, per_labeled_unit=exog is None)
    return PredictionResults(lin, lin_se, func, deriv, which, inference_df(results), labels, var_resid)


def _residual_variance(results: Any, per_labeled_unit: bool) -> np.ndarray | None:
    """OLS's ``scale``, ``sum w r^2 / (n - p)`` on the labeled units (divided by
    each unit's w on the labeled units), or None for the other families."""
    data = results.model.model_data
    if not isinstance(results.model.family, OLS):
        return None
    X, y = data.X, data.y
    n, p = X.shape
    w = np.ones(n) if data.labeled_weight is None else np.asarray(data.labeled_weight, dtype=float)
    r = y - X @ index_coefficients(results)
    scale = float(w @ r**2) / (n - p) if n > p else np.nan
    return scale / w if per_labeled_unit else np.asarray(scale)
