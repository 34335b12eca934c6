"""Results of a GMM-Synth fit, in statsmodels' results machinery.

``params``, ``bse``, ``cov_params()`` and the tests are about the target
parameters theta only, named by design column; the nuisance parameters
(one eta per source) are in ``nuisance_params`` and ``cov_params_full()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from patsy import PatsyError
from scipy import stats
from statsmodels.base import wrapper as wrap
from statsmodels.iolib.summary import Summary, summary_params, table_extend
from statsmodels.iolib.table import SimpleTable
from statsmodels.sandbox.regression.gmm import GMMResults, results_class_dict

from .exceptions import SpecificationError
from .inference.bootstrap import BootstrapResults, bootstrap
from .inference.diagnostics import Diagnostics, diagnose
from .inference.power import LabelBudget, plan_labels
from .inference.small_sample import SmallSampleCorrection
from .inference.windmeijer import windmeijer_covariance
from .margins import MarginalEffects, get_margeff
from .prediction import fittedvalues, predict, resid
from .prediction_inference import PredictionResults, get_prediction
from .summary2 import summary2
from .terms import t_test_pairwise

__all__ = ["ReportingMixin", "GMMSynthResults", "GMMSynthResultsWrapper", "ResultsWrapper"]


class ReportingMixin:
    """Summary, HTML and repr shared by every estimator's results.

    Subclasses provide ``estimator`` (its name), ``_summary_top()`` (extra rows
    for the left and right header columns) and ``_summary_notes()``.
    """

    model: Any
    nobs: int
    n_labeled: int
    # provided by the statsmodels results class each subclass also derives from
    params: Any
    bse: Any
    tvalues: Any
    pvalues: Any
    conf_int: Any

    @property
    def estimator(self) -> str:
        return self.model.estimator_label

    def _summary_top(self) -> tuple[list, list]:
        return [], []

    def _summary_notes(self) -> list[str]:
        return []

    def summary(
        self, yname: str | None = None, xname: list[str] | None = None,
        title: str | None = None, alpha: float = 0.05,
    ) -> Summary:
        """A statsmodels Summary: estimator, model, N, n, sources, covariance and notes."""
        model = self.model
        extra_left, right = self._summary_top()
        left = [
            ("Dep. Variable:", [yname or model.endog_names]),
            ("Model:", [model.family.label]),
            ("Estimator:", [self.estimator]),
            ("Date:", None),
            ("Time:", None),
            ("No. Units (N):", [f"{model.nobs}"]),
            ("No. Labeled (n):", [f"{self.n_labeled}"]),
            *extra_left,
        ]
        smry = Summary()
        smry.add_table_2cols(
            self, gleft=left, gright=right, yname=yname, xname=xname,
            title=title or f"{self.estimator} {model.family.label} Regression Results",
        )
        use_t = bool(getattr(self, "use_t", False))
        equations = model.family.equations(model.model_data.param_names)
        if equations:
            smry.tables.append(self._equation_table(equations, yname or model.endog_names, xname, alpha, use_t))
        else:
            smry.add_table_params(self, yname=yname, xname=xname, alpha=alpha, use_t=use_t)
        rows = [["real", "human labels", f"{self.n_labeled}", f"{self.n_labeled}"]]
        for source in model.model_data.sources:
            rows.append([source.name, source.kind, f"{source.n_rows}", f"{source.n_units}"])
        smry.tables.append(
            SimpleTable(rows, headers=["Source", "Kind", "Rows", "Units"], title="Data sources")
        )
        smry.add_extra_txt([f"[{i}] {note}" for i, note in enumerate(self._summary_notes(), 1)])
        return smry

    def _equation_table(
        self, equations: list[tuple[str, slice]], yname: str, xname: list[str] | None, alpha: float, use_t: bool,
    ) -> SimpleTable:
        """One coefficient block per equation, headed ``y=label`` (statsmodels'
        ``summary_params_2dflat``, which MNLogit's summary uses)."""
        params = np.asarray(self.params, dtype=float)
        bse = np.asarray(self.bse, dtype=float)
        tvalues = np.asarray(self.tvalues, dtype=float)
        pvalues = np.asarray(self.pvalues, dtype=float)
        ci = np.asarray(self.conf_int(alpha=alpha), dtype=float)
        columns = list(self.model.model_data.param_names)
        tables = []
        for label, block in equations:
            title = f"{yname}={label}"
            estimates = (self, params[block], bse[block], tvalues[block], pvalues[block], ci[block])
            table = summary_params(estimates, yname=title, xname=xname or columns, alpha=alpha, use_t=use_t)
            table.title = title
            tables.append(table)
        return table_extend(tables, keep_headers=True)

    def tidy(self, alpha: float = 0.05) -> pd.DataFrame:
        """The coefficient table: one row per term (the index), with columns
        ``estimate``, ``std_error``, ``statistic`` (z), ``p_value``, ``conf_low``
        and ``conf_high`` (the ``1 - alpha`` interval). Reports and comparison
        tables are built from it."""
        ci = np.asarray(self.conf_int(alpha=alpha))
        table = pd.DataFrame(
            {
                "estimate": np.asarray(self.params).astype(float),
                "std_error": np.asarray(self.bse).astype(float),
                "statistic": np.asarray(self.tvalues).astype(float),
                "p_value": np.asarray(self.pvalues).astype(float),
                "conf_low": ci[:, 0],
                "conf_high": ci[:, 1],
            },
            index=pd.Index(list(self.model.exog_names), name="term"),
        )
        return table

    def predict(self, exog: Any = None, transform: bool = True, which: str = "mean") -> pd.Series:
        """Predicted mean (``which="mean"``) or linear index (``"linear"``) of the
        target model on ``exog``: new data through the learned formula
        (``transform=True``) or a design matrix (``transform=False``); None: the
        labeled units. See `synthinfer.prediction.predict`."""
        return predict(self, exog, transform=transform, which=which)

    def get_prediction(
        self, exog: Any = None, transform: bool = True, which: str = "mean", row_labels: Any = None,
    ) -> PredictionResults:
        """Predictions with delta-method standard errors and intervals from the
        target block of the covariance; ``.summary_frame(alpha)`` has statsmodels'
        columns ``mean``, ``mean_se``, ``mean_ci_lower``, ``mean_ci_upper``. See
        `synthinfer.prediction_inference`."""
        return get_prediction(self, exog, transform=transform, which=which, row_labels=row_labels)

    def get_margeff(
        self, at: str = "overall", method: str = "dydx", atexog: Any = None, dummy: bool = False,
        count: bool = False,
    ) -> MarginalEffects:
        """Marginal effects (average, or at the mean, median or zero) with
        delta-method standard errors from the covariance of the target
        coefficients, as statsmodels' ``get_margeff``; for OLS ``dydx`` is the
        coefficients. See `synthinfer.margins`."""
        return get_margeff(self, at=at, method=method, atexog=atexog, dummy=dummy, count=count)

    def summary2(
        self, yname: str | None = None, xname: list[str] | None = None, title: str | None = None,
        alpha: float = 0.05, float_format: str = "%.4f",
    ) -> Any:
        """statsmodels' ``summary2`` layout: a model-information table, the
        coefficient table and the notes (``as_text``, ``as_latex``, ``as_html``).
        See `synthinfer.summary2`."""
        return summary2(self, yname=yname, xname=xname, title=title, alpha=alpha, float_format=float_format)

    @property
    def df_model(self) -> float:
        """The model's degrees of freedom as statsmodels counts them: slope
        coefficients, design columns minus the constant (per equation for the
        multinomial logit; a dispersion parameter does not count)."""
        model = self.model
        columns = list(model.model_data.param_names)
        names = list(model.family.param_names(columns))
        p = len(columns)
        k_constant = int(getattr(model, "k_constant", 0) or 0)
        if names[:p] == columns:
            equations = 1
        elif p and len(names) % p == 0:
            equations = len(names) // p
        else:
            return float("nan")
        return float(equations * (p - k_constant))

    @property
    def fittedvalues(self) -> pd.Series:
        """Predicted means on the labeled units, indexed by unit (as statsmodels'
        GLM; its discrete models' ``fittedvalues`` is the linear index)."""
        return fittedvalues(self)

    @property
    def resid(self) -> pd.Series:
        """Outcome minus fitted mean on the labeled units, indexed by unit."""
        return resid(self)

    def t_test(self, r_matrix: Any, *args: Any, **kwds: Any) -> Any:
        """statsmodels' ``t_test``; a constraint naming an unknown term is a
        `SpecificationError` listing the valid terms."""
        with self._named_constraints(r_matrix):
            return super().t_test(r_matrix, *args, **kwds)  # type: ignore[misc]

    def f_test(self, r_matrix: Any, *args: Any, **kwds: Any) -> Any:
        """statsmodels' ``f_test``: the Wald statistic over q, referred to F(q, df).

        df is ``df_resid`` when the fit uses Student's t (the small-sample
        correction); under normal inference (``df_resid`` infinite) it is
        ``n - p``, labeled units minus target parameters, statsmodels' residual
        degrees of freedom for the human-only fit, so on a human-only fit with
        ``correction=None`` the p-value equals statsmodels' (``cov_type="HC0"``).
        ``wald_test(..., use_f=False)`` gives the chi-square version.
        """
        df = float(getattr(self, "df_resid", np.inf))
        if np.isfinite(df):
            with self._named_constraints(r_matrix):
                return super().f_test(r_matrix, *args, **kwds)  # type: ignore[misc]
        data = self.model.model_data
        self.df_resid = float(data.n_labeled - len(data.param_names))
        try:
            with self._named_constraints(r_matrix):
                return super().f_test(r_matrix, *args, **kwds)  # type: ignore[misc]
        finally:
            self.df_resid = df

    def t_test_pairwise(
        self, term_name: str, method: str | list[str] = "hs", alpha: float = 0.05,
        factor_labels: list[str] | None = None, ignore: bool = False,
    ) -> Any:
        """statsmodels' ``t_test_pairwise``: all pairwise contrasts of a
        categorical term's levels with multiple-testing corrected p-values,
        read from the formula learned at fit time (kept through pickling; see
        `synthinfer.terms`). ``ignore`` is accepted for statsmodels' signature."""
        terms = self.model.model_data.spec.categorical_terms()
        return t_test_pairwise(self, terms, term_name, method=method, alpha=alpha, factor_labels=factor_labels)

    def wald_test(self, r_matrix: Any, *args: Any, **kwds: Any) -> Any:
        """statsmodels' ``wald_test``; a constraint naming an unknown term is a
        `SpecificationError` listing the valid terms."""
        with self._named_constraints(r_matrix):
            return super().wald_test(r_matrix, *args, **kwds)  # type: ignore[misc]

    @contextmanager
    def _named_constraints(self, r_matrix: Any) -> Iterator[None]:
        """A constraint naming an unknown term: say so and list the valid names."""
        try:
            yield
        except PatsyError as exc:
            raise SpecificationError(
                f"the constraint {r_matrix!r} could not be read ({str(exc).splitlines()[0]}); "
                f"it may use only the terms {list(self.model.exog_names)}"
            ) from exc

    @property
    def default_model_infos(self) -> dict:
        """The rows statsmodels' ``summary_col`` adds for this fit when given no
        ``info_dict``: "N units" and "n labeled", so a column never shows N
        without saying which count it is (see `synthinfer.summary_col_info`)."""
        from .reporting import summary_col_info

        return summary_col_info()

    def _repr_html_(self) -> str:
        return self.summary().as_html()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__}: {self.estimator} {self.model.family.label}, "
            f"N={self.nobs}, n={self.n_labeled}, cov_type={self.cov_type!r}>"  # type: ignore[attr-defined]
        )


class GMMSynthResults(ReportingMixin, GMMResults):
    """Results of ``synthinfer.gmm.GMMSynth``.

    Attributes
    ----------
    params, bse, tvalues, pvalues : Series
        Target estimates and their normal-theory inference.
    nobs : int
        N, the number of units.
    n_labeled : int
        n, the number of human-labeled units.
    cov_type : str
        "HC0", "HC1", "HC2", "HC3" or "cluster" (HC2/HC3 only for the
        human-only least-squares fit).
    converged : bool
        Whether the step-2 Gauss-Newton iteration converged.
    nuisance_params, nuisance_bse : DataFrame
        Each source's eta (columns = sources, rows = design columns).
    start_params : ndarray
        Step-1 values of (theta, eta_1, ..., eta_M).
    """

    normalized_cov_params = None

    def __init__(self, *args: Any, **kwds: Any) -> None:
        super().__init__(*args, **kwds)
        self.n_labeled = self.model.n_labeled
        self.converged = self.solver_info.converged
        self.iterations = self.solver_info.iterations
        if self.small_sample is not None:
            self.use_t = True
            self.df_resid = self.small_sample.df
        requested = self.__dict__.get("requested_use_t")
        if requested is False:
            self.use_t = False
            self.df_resid = np.inf
        elif requested is True and self.small_sample is None:
            # statsmodels' t reference: n - p, or G - 1 with clusters
            self.use_t = True
            independent = self.model._independent_labeled(self.covariance)
            clustered = self.covariance.groups is not None
            self.df_resid = float(independent - 1 if clustered else independent - self.model.k_target)

    @cached_property
    def small_sample(self) -> SmallSampleCorrection | None:
        """The small-sample correction in force (None for the plain covariance)."""
        if self.correction != "small-sample":
            return None
        return SmallSampleCorrection.for_fit(self)

    @cached_property
    def parameter_covariance(self) -> Any:
        """The estimator of S in the parameters' covariance: ``covariance``, or
        its leverage-adjusted version under the default small-sample correction
        (``fit(leverage=...)``, `synthinfer.covariance.LeverageAdjustedCovariance`).
        The weight matrix, the J test and ``moment_covariance`` use ``covariance``."""
        adjusted = self.__dict__.get("sandwich_covariance")
        return self.covariance if adjusted is None else adjusted

    @property
    def leverage(self) -> str | None:
        """The leverage adjustment in force ("HC3", "HC2") or None."""
        estimator = self.parameter_covariance
        return getattr(estimator, "kind", None) if estimator is not self.covariance else None

    def _cov_params(self, **kwds: Any) -> np.ndarray:
        p = self.model.k_target
        return self._cov_full[:p, :p]

    @cached_property
    def _cov_full(self) -> np.ndarray:
        cov = self._cov_two_step
        if self.small_sample is not None:
            # the small-sample factor replaces a cluster estimator's own factor
            return self.small_sample.scale(cov / self.covariance.scale, self.model.k_target)
        return cov

    @cached_property
    def _cov_two_step(self) -> np.ndarray:
        """The two-step covariance, Windmeijer-corrected when asked, before any df factor."""
        model = self.model
        if self.correction in ("windmeijer", "small-sample") and model.source_names:
            return windmeijer_covariance(self)
        G = self.jacobian  # the exact G at the estimate, from the solver
        if self.parameter_covariance is not self.covariance:
            A = self.influence_map
            s = self.parameter_covariance.s(self.model.moment_blocks(self.params_full))
            return A @ s @ A.T / model.nobs * self.covariance.scale
        s = self.moment_covariance
        if self.weighting is self.covariance:
            information = G.T @ np.linalg.solve(s, G)
            return np.linalg.inv(information) / model.nobs * self.covariance.scale
        # a weight matrix that is not S_c^-1: the sandwich of the GMM estimator
        A = self.influence_map
        return A @ s @ A.T / model.nobs * self.covariance.scale

    @cached_property
    def influence_map(self) -> np.ndarray:
        """``A = (G'WG)^-1 G'W``: the estimate moves by ``-A gbar``, (P, K)."""
        G, W = self.jacobian, self.weights
        GW = G.T @ W
        return np.linalg.solve(GW @ G, GW)

    def diagnostics(self, per_source: bool = True) -> Diagnostics:
        """Effective number of human labels, variance reduction per source, residual
        correlations, the J test in plain words and warnings; see
        `synthinfer.inference.Diagnostics`."""
        # computed once per setting: summary() and Jupyter's HTML repr ask again and again
        cache = self.__dict__.setdefault("_diagnostics", {})
        if per_source not in cache:
            cache[per_source] = diagnose(self, per_source=per_source)
        return cache[per_source]

    def bootstrap(
        self, n_boot: int = 999, seed: Any = None, jobs: int = 1, progress: bool = False,
        method: str = "fast",
    ) -> BootstrapResults:
        """Unit-level bootstrap: resample units (labeled and unlabeled together) and
        recompute the whole two-step estimator (with its shrinkage) ``n_boot`` times.
        A fit with ``cov_type="cluster"`` resamples whole clusters instead.

        Parameters
        ----------
        n_boot : int
            Number of resamples (at least 2).
        seed : int or Generator, optional
            Makes the draws reproducible.
        jobs : int
            Parallel workers (joblib) for ``method="refit"``; 1 runs serially.
        progress : bool
            Show a progress bar (tqdm).
        method : {"fast", "replicate", "refit"}
            ``"fast"`` (default): every replicate is the two-step estimator (with
            its shrinkage) reached by Newton steps from the estimate (Andrews'
            k-step bootstrap with k = 2), all replicates at once from the labeled
            units' moments and the unlabeled units' contributions, at a cost that
            depends on n, not N. ``"replicate"``: the same resamples with each
            replicate's two-step estimate iterated to convergence (slower, for
            checks). Both also give bootstrap-t intervals (see
            `synthinfer.inference.replicate`). ``"refit"``: the reference, a full
            refit of every resample. On Dask sources ``"fast"`` and
            ``"replicate"`` are available (the unlabeled units' sum always from
            its normal limit; docs/dask.md), ``"refit"`` is not.

        Returns
        -------
        synthinfer.inference.BootstrapResults
            ``bse``, ``cov_params()``, ``conf_int(alpha, method="percentile" | "t" | "normal")``.
        """
        return bootstrap(self, n_boot=n_boot, seed=seed, jobs=jobs, progress=progress, method=method)

    def label_budget(self) -> LabelBudget:
        """Predicted standard errors for other numbers of labels, with and without each
        source, from this fit as a pilot; see `synthinfer.inference.LabelBudget`."""
        return plan_labels(self)

    @cached_property
    def moment_covariance(self) -> np.ndarray:
        """S at the estimate (centered; HC0 or clustered as fitted)."""
        return self.covariance.s(self.model.moment_blocks(self.params_full))

    def cov_params_full(self) -> pd.DataFrame:
        """Covariance of (theta, eta_1, ..., eta_M), named."""
        names = self.model.param_names_full
        return pd.DataFrame(self._cov_full, index=names, columns=names)

    @property
    def params_full_named(self) -> pd.Series:
        return pd.Series(self.params_full, index=self.model.param_names_full)

    def _by_source(self, values: np.ndarray) -> pd.DataFrame:
        p = self.model.k_target
        blocks = values[p:].reshape(len(self.model.source_names), p).T
        return pd.DataFrame(blocks, index=self.model.exog_names, columns=self.model.source_names)

    @property
    def nuisance_params(self) -> pd.DataFrame:
        """Estimates of each source's own parameters eta (rows: design columns)."""
        return self._by_source(self.params_full)

    @property
    def nuisance_bse(self) -> pd.DataFrame:
        return self._by_source(np.sqrt(np.diag(self._cov_full)))

    @cached_property
    def q(self) -> float:
        """Objective ``gbar' W gbar`` at the estimate, W the step-2 weight matrix."""
        return float(self.model.gmmobjective(self.params_full, self.weights))

    @cached_property
    def jval(self) -> float:
        if self.weighting is not self.covariance and self.model.nmoms > self.model.k_params:
            return self._generalized_j
        return self.q * self.model.nobs

    def jtest(self) -> tuple[float, float, int]:
        """Hansen's J test of the overidentifying restrictions: (J, p-value, df).

        A rejection says the auxiliary moments do not have the same mean on the
        labeled units as on all units: the auxiliary data was not generated the
        same way for labeled and unlabeled units, or the labeled units are not a
        random subset. The p-value is chi-square with df; with clustered
        covariance and the small-sample correction (the default), Hotelling's F
        on (df, G - df) degrees of freedom, G the clusters with labeled units.
        With few labels either reference can reject a valid design too often
        (docs/small-samples.md); ``res.bootstrap(B).jtest()`` gives the same J
        with a bootstrap p-value.
        """
        df = self.model.nmoms - self.model.k_params
        if df == 0:
            return 0.0, np.nan, 0
        return self.jval, self._j_pvalue(self.jval, df), df

    def _j_pvalue(self, jval: float, df: int) -> float:
        """chi-square p-value; with clusters and the small-sample correction, Hotelling's F.

        J compares the auxiliary moments' mean on the labeled units with their
        mean on all units, with a covariance estimated from G clusters:
        Hotelling's T^2 of dimension df, for which ``(G - df) / ((G - 1) df) T^2``
        is F(df, G - df). With 40 clusters the chi-square reference rejected a
        valid design 12-18% of the time at 5%, the F 5-9%; with independent units
        the chi-square was within Monte Carlo error of 5% from n = 100 and the F
        conservative (docs/results/j_calibration), so units keep the chi-square.
        """
        correction = self.small_sample
        if correction is not None and correction.n_clusters is not None:
            m = correction.n_clusters
            if m - df >= 1:
                return float(stats.f.sf(jval * (m - df) / ((m - 1.0) * df), df, m - df))
        return float(stats.chi2.sf(jval, df))

    @cached_property
    def _generalized_j(self) -> float:
        """Hansen's J for a weight matrix that is not the covariance's S^-1:
        ``N gbar' Omega^+ gbar`` with ``Omega = P S P'``, ``P = I - G A``, the
        covariance of the moments at the estimate (rank = the J test's df)."""
        G, s = self.jacobian, self.moment_covariance * self.covariance.scale
        P = np.eye(len(s)) - G @ self.influence_map
        omega = P @ s @ P.T
        df = self.model.nmoms - self.model.k_params
        eigval, eigvec = np.linalg.eigh((omega + omega.T) / 2)
        top = eigvec[:, -df:] / np.sqrt(eigval[-df:])
        gbar = self.model.momcond_mean(self.params_full)
        return float(self.model.nobs * np.sum((top.T @ gbar) ** 2))

    def _summary_top(self) -> tuple[list, list]:
        jval, jpval, jdf = self.jtest()
        right = [
            ("Aux. Sources:", [f"{len(self.model.source_names)}"]),
            ("Covariance Type:", [self.cov_type]),
            ("Hansen J:", [f"{jval:#8.4g}" if jdf else "--"]),
            ("Prob (J):", [f"{jpval:#6.3g}" if jdf else "--"]),
            ("J df:", [f"{jdf}"]),
            ("Converged:", [str(self.converged)]),
            ("GN Iterations:", [f"{self.iterations}"]),
        ]
        return [], right

    def _summary_notes(self) -> list[str]:
        if self.small_sample is not None:
            corrected = "Windmeijer's correction for the estimated weight matrix and a " if self.model.source_names else "a "
            notes = [
                f"Standard errors: {self.parameter_covariance.description}, with {corrected}"
                f"{self.small_sample.description}; fit(correction=None) gives the plain "
                f"two-step covariance with normal inference."
            ]
        elif self.use_t:
            notes = [
                f"Standard errors: {self.covariance.description}; inference is Student's t "
                f"with {self.df_resid:.4g} degrees of freedom (fit(use_t=True))."
            ]
        else:
            notes = [f"Standard errors: {self.covariance.description}; inference is normal (z)."]
        if self.weighting is not self.covariance and self.model.source_names:
            notes.append(
                f"Weight matrix: {self.weighting.description}; the covariance is the GMM "
                f"sandwich and the J test Hansen's generalized form."
            )
        if self.model.family.jacobian_note:
            notes.append(self.model.family.jacobian_note)
        if self.correction == "windmeijer" and self.model.source_names:
            notes.append("Covariance with Windmeijer's finite-sample correction for the estimated weight matrix.")
        data = self.model.model_data
        surveyed, by_pi = data.unit_weight is not None, data.weighted_by_pi
        if surveyed:
            notes.append(
                "Every unit's moments are weighted by its survey weight w_i"
                + (", the labeled blocks also by 1/pi (known labeling probabilities)." if by_pi else ".")
            )
        elif by_pi:
            notes.append(
                "Labeled units are weighted by 1/pi, their known labeling probabilities."
            )
        if not self.model.source_names:
            weighting = {(False, True): " weighted by 1/pi", (True, False): " weighted by w (WLS / GLM var_weights)",
                         (True, True): " weighted by w/pi"}.get((surveyed, by_pi), "")
            # the statsmodels covariance this fit reproduces: the default correction
            # turns HC0 into HC1 and leaves HC2/HC3 as they are, with t inference
            reproduced = self.cov_type
            if self.small_sample is not None:
                if self.leverage is not None:
                    reproduced = self.leverage
                reproduced = f"{'HC1' if reproduced in ('HC0', 'HC1') else reproduced} covariance and t inference"
            else:
                reproduced = f"{reproduced} covariance"
            notes.append(
                f"Human-only fit: no auxiliary source was given. This equals "
                f"{self.model.family.label} on the labeled units"
                f"{weighting} with {reproduced}."
            )
        else:
            notes.append(
                "Each source has its own parameters (res.nuisance_params); the LLM data "
                "is never assumed to be correct. A small Prob (J) means the auxiliary data "
                "behaves differently on labeled and unlabeled units."
            )
        if self.model.source_names:
            diagnostics = self.diagnostics(per_source=False)
            effective = ", ".join(f"{k} {v:,.0f}" for k, v in diagnostics.effective_n.items())
            correlation = ", ".join(f"{k} {v:.2f}" for k, v in diagnostics.residual_correlation.items())
            notes.append(f"Effective number of human labels (n = {self.n_labeled}): {effective}.")
            notes.append(f"Correlation of human and source residuals on the labeled units: {correlation}.")
            notes.append(f"J test: {diagnostics.j_reading}")
            notes += [f"Warning: {w}" for w in diagnostics.warnings]
        if not self.converged:
            notes.append("Warning: the Gauss-Newton iteration did not converge.")
        return notes


class ResultsWrapper(wrap.ResultsWrapper):
    """Re-attaches design-column names to the target estimates."""

    _attrs = {"params": "columns", "bse": "columns", "pvalues": "columns", "tvalues": "columns"}
    _wrap_attrs = _attrs
    _wrap_methods = {"cov_params": "cov", "conf_int": "columns"}

    def tidy(self, alpha: float = 0.05) -> pd.DataFrame:
        return self._results.tidy(alpha)

    def _repr_html_(self) -> str:
        return self._results._repr_html_()

    def __repr__(self) -> str:
        return repr(self._results)


class GMMSynthResultsWrapper(ResultsWrapper):
    pass


wrap.populate_wrapper(GMMSynthResultsWrapper, GMMSynthResults)
results_class_dict["GMMSynthResults"] = GMMSynthResults
