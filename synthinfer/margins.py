"""Marginal effects of single-index models with delta-method standard errors
(statsmodels' ``get_margeff``).

For a model with mean ``mu(x'b)`` the effect of a continuous regressor j at a
row x is ``dy/dx_j = mu'(x'b) b_j``; the elasticities scale it by ``x_j``
(``ex``) and divide by ``mu(x'b)`` (``ey``). ``at="overall"`` averages the
effects over the labeled units (the average marginal effect), ``"mean"``,
``"median"`` and ``"zero"`` evaluate them at one row. A binary regressor
(``dummy=True``) gets the discrete change ``mu(x, x_j = 1) - mu(x, x_j = 0)``,
a count regressor (``count=True``) the centred change ``(mu(x_j + 1) -
mu(x_j - 1)) / 2``; with ``ey`` the changes are in ``log mu``. These are
statsmodels' definitions, so with no auxiliary source the effects and their
standard errors equal statsmodels' (Logit, Probit, Poisson, NegativeBinomial).

The effects are functions of the target coefficients only: their covariance
is ``J V J'`` with V the target block of the GMM covariance and J the
effects' Jacobian in the coefficients (central differences, accurate to about
1e-10 relative; statsmodels uses complex-step or forward differences). For OLS
the mean is the index itself, so ``dydx`` is the coefficients and their
standard errors. Columns that are constant on the labeled units (the
intercept) get no effect, as in statsmodels. With known labeling
probabilities, ``overall`` and ``mean`` weight the labeled units by 1/pi, so
they estimate the population's average; ``median`` is unweighted.

``atexog`` is statsmodels' argument: a dict sets design columns (by position,
as statsmodels, or by name) to a value on every labeled row, an array (p
columns, or a DataFrame with the design's column names) replaces the rows;
``at`` is applied afterwards, and which columns are binary or counts is read
from the labeled design, both as in statsmodels. Rows given as an array are
the user's, so the labeled units' 1/pi weights do not apply to them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.iolib.summary import Summary, summary_params
from statsmodels.tools.numdiff import approx_fprime

from .exceptions import SpecificationError
from .prediction import index_coefficients, mean_functions
from .prediction_inference import inference_df

__all__ = ["MarginalEffects", "get_margeff", "AT", "METHODS"]

AT = ("overall", "mean", "median", "zero")
METHODS = ("dydx", "eyex", "dyex", "eydx")
# statsmodels' column and header names, so code written against its frames keeps working
_NAMES = {"dydx": "dy/dx", "eyex": "d(lny)/d(lnx)", "dyex": "dy/d(lnx)", "eydx": "d(lny)/dx"}


def _dummy_columns(X: np.ndarray, effect: np.ndarray) -> np.ndarray:
    """Non-constant columns holding only 0 and 1."""
    return np.flatnonzero(effect & (X.min(axis=0) == 0) & (X.max(axis=0) == 1) & np.all(X % 1 == 0, axis=0))


def _count_columns(X: np.ndarray, effect: np.ndarray, dummies: np.ndarray) -> np.ndarray:
    """Non-constant, non-negative integer columns that are not 0/1."""
    count = effect & np.all(X % 1 == 0, axis=0) & np.all(X >= 0, axis=0)
    count[dummies] = False
    return np.flatnonzero(count)


class _Effects:
    """The effects as a function of the coefficients, at the evaluation rows."""

    def __init__(self, results: Any, at: str, method: str, dummy: bool, count: bool, atexog: Any = None) -> None:
        data = results.model.model_data
        X = np.asarray(data.X, dtype=float)
        index_coefficients(results)  # a single linear index, checked first
        self.mean, self.slope = mean_functions(results)
        self.method = method
        self.effect = X.var(axis=0) != 0
        if not self.effect.any():
            raise SpecificationError(
                f"the design {list(data.param_names)} has no regressor that varies on the "
                f"labeled units: there is no marginal effect to compute"
            )
        binary = _dummy_columns(X, self.effect)
        self.dummies = binary if dummy else np.array([], dtype=int)
        # a 0/1 column is never a count, even when binary columns are treated as continuous
        self.counts = _count_columns(X, self.effect, binary) if count else np.array([], dtype=int)
        w = data.labeled_weight
        if atexog is not None:
            X, replaced = _at_exog(X, atexog, list(data.param_names))
            w = None if replaced else w
        self.weights = None if (w is None or at != "overall") else np.asarray(w, float) / np.sum(w)
        if at == "mean":
            X = np.atleast_2d(np.average(X, axis=0, weights=w))
        elif at == "median":
            X = np.atleast_2d(np.median(X, axis=0))
        elif at == "zero":
            X = np.zeros((1, X.shape[1]))
            X[0, ~self.effect] = 1.0  # constant columns keep their value 1
        self.X = X

    def _mu(self, X: np.ndarray, b: np.ndarray) -> np.ndarray:
        mu = self.mean(X @ b)
        return np.log(mu) if self.method.startswith("ey") else mu

    def per_row(self, b: np.ndarray) -> np.ndarray:
        """(rows, p) effects at each evaluation row."""
        X = self.X
        lin = X @ b
        out = self.slope(lin)[:, None] * b[None, :]
        if self.method.endswith("ex"):
            out = out * X
        if self.method.startswith("ey"):
            out = out / self.mean(lin)[:, None]
        for j in self.dummies:
            lo, hi = X.copy(), X.copy()
            lo[:, j], hi[:, j] = 0.0, 1.0
            out[:, j] = self._mu(hi, b) - self._mu(lo, b)
        for j in self.counts:
            lo, hi = X.copy(), X.copy()
            lo[:, j] -= 1.0
            hi[:, j] += 1.0
            out[:, j] = (self._mu(hi, b) - self._mu(lo, b)) / 2.0
        return out

    def __call__(self, b: np.ndarray) -> np.ndarray:
        """The reported effects (the effect columns only), (k,)."""
        rows = self.per_row(b)
        if self.weights is not None:
            summary = self.weights @ rows
        else:
            summary = rows.mean(axis=0)
        return summary[self.effect]


def _at_exog(X: np.ndarray, atexog: Any, names: list[str]) -> tuple[np.ndarray, bool]:
    """The rows to evaluate at: X with ``atexog``'s columns set, or ``atexog``'s rows; and whether replaced."""
    p = X.shape[1]
    if isinstance(atexog, dict):
        X = X.copy()
        for key, value in atexog.items():
            if isinstance(key, str) and key in names:
                j = names.index(key)
            elif isinstance(key, (int, np.integer)) and not isinstance(key, bool) and -p <= key < p:
                j = int(key)
            else:
                raise SpecificationError(
                    f"get_margeff: atexog key {key!r} is neither a design column {names} nor a column position 0..{p - 1}"
                )
            X[:, j] = value
        return X, False
    if isinstance(atexog, pd.DataFrame):
        if sorted(map(str, atexog.columns)) != sorted(names):
            raise SpecificationError(
                f"get_margeff: an atexog frame holds the design's columns {names}, got {list(atexog.columns)}"
            )
        atexog = atexog[names]
    if isinstance(atexog, (np.ndarray, pd.DataFrame)):
        rows = np.atleast_2d(np.asarray(atexog, dtype=float))
        if rows.ndim != 2 or rows.shape[1] != p:
            raise ValueError(
                f"atexog does not have the same number of variables as exog: {np.shape(atexog)} against {p} columns {names}"
            )
        return rows, True
    raise SpecificationError(
        f"get_margeff: atexog must be a dict of column -> value, an array or a DataFrame of the design, "
        f"got {type(atexog).__name__}"
    )


class MarginalEffects:
    """Marginal effects with delta-method standard errors, as statsmodels' ``DiscreteMargins``.

    Attributes
    ----------
    margeff, margeff_se : ndarray
        The effects and their standard errors, one per regressor that varies
        on the labeled units (named in ``names``).
    margeff_cov : ndarray
        Their covariance ``J V J'``.
    margeff_options : dict
        ``at`` and ``method``.
    names : list of str
        The regressors.
    dummy_idx, count_idx : ndarray or None
        Design columns treated as binary / count regressors.
    use_t, df : bool, float
        Student's t with ``df`` when the fit uses t inference, else normal.
    """

    def __init__(self, results: Any, at: str, method: str, dummy: bool, count: bool, atexog: Any = None) -> None:
        self.results = results
        self.margeff_options = {"at": at, "method": method}
        effects = _Effects(results, at, method, dummy, count, atexog)
        b = index_coefficients(results)
        p = len(b)
        self.margeff = effects(b)
        # central differences: the effects are smooth in b, and the step
        # eps^(1/3) max(|b|, 0.1) leaves an error near 1e-10 relative
        jacobian = np.atleast_2d(approx_fprime(b, effects, centered=True))
        cov = np.asarray(results.cov_params(), dtype=float)[:p, :p]
        self.margeff_cov = jacobian @ cov @ jacobian.T
        self.margeff_se = np.sqrt(np.diag(self.margeff_cov))
        names = list(results.model.model_data.param_names)
        self.names = [name for name, keep in zip(names, effects.effect) if keep]
        self.dummy_idx = effects.dummies if dummy and len(effects.dummies) else None
        self.count_idx = effects.counts if count and len(effects.counts) else None
        self.df = inference_df(results)
        self.use_t = bool(np.isfinite(self.df))
        self._dist_args: tuple[float, ...]
        self._dist, self._dist_args = (stats.t, (self.df,)) if self.use_t else (stats.norm, ())

    @property
    def tvalues(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):  # an effect that is 0 with se 0 (at="zero", "ex")
            return self.margeff / self.margeff_se

    @property
    def pvalues(self) -> np.ndarray:
        return 2 * self._dist.sf(np.abs(self.tvalues), *self._dist_args)

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        """``margeff +- q margeff_se``, (k, 2)."""
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        q = self._dist.ppf(1 - alpha / 2, *self._dist_args)
        return np.column_stack([self.margeff - q * self.margeff_se, self.margeff + q * self.margeff_se])

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """One row per regressor, with statsmodels' column names (``dy/dx`` or the
        elasticity's, ``Std. Err.``, ``z``, ``Pr(>|z|)``, ``Conf. Int. Low``,
        ``Cont. Int. Hi.``; ``t`` and ``Pr(>|t|)`` under t inference)."""
        stat = "t" if self.use_t else "z"
        ci = self.conf_int(alpha)
        columns = [_NAMES[self.margeff_options["method"]], "Std. Err.", stat, f"Pr(>|{stat}|)",
                   "Conf. Int. Low", "Cont. Int. Hi."]
        table = np.column_stack([self.margeff, self.margeff_se, self.tvalues, self.pvalues, ci])
        return pd.DataFrame(table, columns=columns, index=self.names)

    def summary(self, alpha: float = 0.05) -> Summary:
        """A statsmodels Summary: the options and one row per regressor."""
        results, model = self.results, self.results.model
        method, at = self.margeff_options["method"], self.margeff_options["at"]
        left = [
            ("Dep. Variable:", [model.endog_names]),
            ("Model:", [model.family.label]),
            ("Estimator:", [results.estimator]),
            ("Method:", [method]),
            ("At:", [at]),
            ("No. Labeled (n):", [f"{results.n_labeled}"]),
        ]
        smry = Summary()
        smry.add_table_2cols(
            self, gleft=left, gright=[], yname=model.endog_names, xname=self.names,
            title=f"{results.estimator} {model.family.label} Marginal Effects",
        )
        restup = (results, self.margeff, self.margeff_se, self.tvalues, self.pvalues, self.conf_int(alpha))
        table = summary_params(
            restup, yname=model.endog_names, xname=self.names, alpha=alpha, use_t=self.use_t, skip_header=True
        )
        stat = "t" if self.use_t else "z"
        table.insert_header_row(
            0, ["", _NAMES[method], "std err", stat, f"P>|{stat}|", f"[{alpha / 2}", f"{1 - alpha / 2}]"]
        )
        smry.tables.append(table)
        notes = [f"Standard errors by the delta method from the {results.estimator} covariance of the coefficients."]
        if self.dummy_idx is not None:
            notes.append("Binary regressors: the change from 0 to 1.")
        if self.count_idx is not None:
            notes.append("Count regressors: the centred change from x - 1 to x + 1.")
        smry.add_extra_txt(notes)
        return smry

    def __repr__(self) -> str:
        return f"<MarginalEffects: {self.margeff_options['method']} at {self.margeff_options['at']!r}, {len(self.names)} regressors>"


def get_margeff(
    results: Any, at: str = "overall", method: str = "dydx", atexog: Any = None, dummy: bool = False,
    count: bool = False,
) -> MarginalEffects:
    """Marginal effects of the target model; see `synthinfer.margins`.

    Parameters
    ----------
    results : results object
        A fit of a single-index family with a mean function (OLS, logit,
        fractional logit, probit, Poisson, negative binomial).
    at : {"overall", "mean", "median", "zero"}
        Average over the labeled units, or at the regressors' mean, median or zero.
    method : {"dydx", "eyex", "dyex", "eydx"}
        The effect, the elasticity or a semi-elasticity.
    atexog : dict, ndarray or DataFrame, optional
        statsmodels' argument: a dict of design column (position or name) to
        the value it takes on every row, or rows (p design columns) replacing
        the labeled design; ``at`` applies afterwards.
    dummy, count : bool
        Discrete changes for binary and count regressors (``at`` "overall" or
        "mean", ``method`` "dydx" or "eydx").

    Returns
    -------
    MarginalEffects
    """
    at, method = str(at).lower(), str(method).lower()
    if at not in AT:
        raise ValueError(f"at must be one of {AT}, got {at!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if (dummy or count) and (method.endswith("ex") or at in ("median", "zero")):
        raise ValueError(
            f"dummy=True and count=True need method 'dydx' or 'eydx' and at 'overall' or 'mean' "
            f"(statsmodels' rule), got method={method!r}, at={at!r}"
        )
    return MarginalEffects(results, at, method, bool(dummy), bool(count), atexog)
