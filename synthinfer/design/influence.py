"""The influence direction of the target coefficients, from the LLM's data alone.

For an estimating function ``psi = x (y - mu(x'b))`` the influence of unit i on
the full-data estimate is ``H^-1 x_i (y_i - mu_i)`` with the bread
``H = (1/N) sum_i mu'(x_i'b) x_i x_i'``. The human and the LLM's scores of a
unit differ by ``x_i (y_i - f_i)`` (the mean cancels), so a human label moves
target coefficient j by about ``(H^-1 x_i)_j (y_i - f_i)``: its size is the
norm of the target rows of ``H^-1 x_i`` times the disagreement. The bread is
computed before any human label exists, from the family fitted to the LLM's
outcome on every unit (Zrnic and Candes 2024; Gligoric et al. 2025 do the
same).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import statsmodels.api as sm

from ..exceptions import DesignError, UnsupportedFamilyError
from ..families import Family, GLMFamily, get_family

__all__ = ["Influence", "design_family", "fit_family", "influence_direction"]

# families whose estimating function x (y - mu) the design knows how to fit
_GLM_FAMILIES = {
    "ols": sm.families.Gaussian,
    "logit": sm.families.Binomial,
    "poisson": sm.families.Poisson,
}


def design_family(model: str | Family) -> GLMFamily:
    """The family named by ``model``, if the design has an influence function for it."""
    try:
        family = get_family(model)
    except ValueError as exc:
        raise UnsupportedFamilyError(
            f"no labeling design for model {model!r}: {exc}"
        ) from None
    if not isinstance(family, GLMFamily) or family.name not in _GLM_FAMILIES:
        raise UnsupportedFamilyError(
            f"model family {family!r} has no influence function for the labeling design yet; "
            f"designs are available for {sorted(_GLM_FAMILIES)}"
        )
    return family


def fit_family(family: Family, X: np.ndarray, y: np.ndarray, frame: str,
               weights: np.ndarray | None = None) -> np.ndarray:
    """Solve ``sum w x (y - mu(x'b)) = 0`` with statsmodels' GLM (the canonical link)."""
    glm_family = _GLM_FAMILIES[family.name]()
    if family.name == "logit" and not np.isin(y, (0.0, 1.0)).all():
        raise DesignError(f"{frame}: a logit outcome must be 0 or 1")
    if family.name == "poisson" and (y < 0).any():
        raise DesignError(f"{frame}: a poisson outcome must be a non-negative count")
    import warnings

    from statsmodels.tools.sm_exceptions import PerfectSeparationWarning, SingularMatrixWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PerfectSeparationWarning)
            warnings.simplefilter("error", SingularMatrixWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            fit = sm.GLM(y, X, family=glm_family, var_weights=weights).fit(tol=1e-10)
    except (PerfectSeparationWarning, SingularMatrixWarning, np.linalg.LinAlgError, ValueError) as exc:
        raise DesignError(
            f"{frame}: the {family.label} fit that the design's influence directions need "
            f"failed ({type(exc).__name__}: {exc})"
        ) from None
    params = np.asarray(fit.params, dtype=float)
    if not np.all(np.isfinite(params)):
        raise DesignError(f"{frame}: the {family.label} fit did not converge")
    return params


@dataclass(frozen=True)
class Influence:
    """Per-unit size of the target's influence direction, and the pieces behind it.

    Attributes
    ----------
    norm : ndarray
        ``sqrt(sum_j (H^-1 x_i)_j^2 / V_jj)`` over the target coefficients j,
        per unit (one target: ``|(H^-1 x_i)_j|`` up to a constant).
    params : ndarray
        The family's coefficients fitted to the LLM's outcome on every unit.
    bread_inv : ndarray
        ``H^-1`` at those coefficients.
    """

    norm: np.ndarray
    params: np.ndarray
    bread_inv: np.ndarray


def influence_direction(
    family: GLMFamily, X: np.ndarray, f: np.ndarray, targets: list[int], frame: str = "proxy"
) -> Influence:
    """The size of the target rows of ``H^-1 x_i`` for every unit.

    Several targets are weighted by the inverse of their (LLM-data) sandwich
    variance ``V_jj``: the design then minimises the sum of the targets'
    variances each relative to its own size, so no coefficient dominates just
    because its units move the fit more in absolute terms.
    """
    params = fit_family(family, X, f, frame)
    lin = X @ params
    weight = family.mean_deriv(lin)
    n = len(f)
    bread = (X * weight[:, None]).T @ X / n
    try:
        bread_inv = np.linalg.inv(bread)
    except np.linalg.LinAlgError:
        raise DesignError(
            f"{frame}: the bread X' diag(mu') X is singular, so the influence directions "
            f"are not defined (collinear or constant design columns?)"
        ) from None
    rows = X @ bread_inv[targets].T  # (N, k): (H^-1 x_i)_j for the targets
    residual = f - family.mean(lin)
    meat = (X * (residual**2)[:, None]).T @ X / n
    v = np.diag(bread_inv @ meat @ bread_inv)[targets]
    scale = 1.0 / np.where(v > 0, v, 1.0)
    norm = np.sqrt((rows**2 * scale).sum(axis=1))
    return Influence(norm=norm, params=params, bread_inv=bread_inv)
