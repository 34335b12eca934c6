"""RePPI's default recalibration learners (numpy only).

RePPI needs ``g(z^m) ~ E[psi(z; theta_0) | z^m]``, the human score at the pilot
given what the LLM gave for the unit. For the single-index families the score
is ``x_k r(y, x'theta_0)``, so its conditional mean is ``x_k`` times the
recalibrated residual ``E[r | z^m]``: `ResidualRecalibration` learns that one
scalar (the default for ols, logit, probit, Poisson). `LinearRecalibration`
regresses each score component on a sieve of the unit's auxiliary row (the
default, at degree 1, for the other smooth families). Both bases contain the
conditional mean exactly when the human outcome's conditional mean is linear
in the prediction and the covariates (``E[y | x, f] = a + b f + c'x``), and
approximate it otherwise.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LinearRecalibration", "ResidualRecalibration", "feature_layout"]


def feature_layout(n_params: int) -> dict[str, slice]:
    """Where RePPI's per-unit features sit: the auxiliary score at the pilot, the
    auxiliary design, the auxiliary outcome (columns ``0..2p``)."""
    p = n_params
    return {"aux_score": slice(0, p), "aux_design": slice(p, 2 * p), "aux_outcome": slice(2 * p, 2 * p + 1)}


class LinearRecalibration:
    """Least squares of score component k on ``[1, psi^m_k, x_k x_j (all j), x_k s(f)]``.

    ``x`` is the unit's auxiliary design row, ``f`` its auxiliary outcome,
    ``psi^m_k`` the auxiliary score at the pilot and ``s(f)`` the standardised
    prediction and its square (a quadratic in f; with a binary f the square is
    collinear and drops out of the minimum-norm least squares). Only numpy.

    The object follows the scikit-learn protocol RePPI uses for any learner:
    ``fit(features, targets)`` with targets of shape (n, p), then
    ``predict(features)`` of shape (m, p).
    """

    def __init__(self, degree: int = 2):
        if not (isinstance(degree, int) and degree >= 1):
            raise ValueError(f"degree must be an integer >= 1, got {degree!r}")
        self.degree = degree

    def _basis(self, features: np.ndarray, k: int) -> np.ndarray:
        layout = feature_layout(self._p)
        x = features[:, layout["aux_design"]]
        f = features[:, layout["aux_outcome"]][:, 0]
        z = (f - self._f_center) / self._f_scale
        x_k = x[:, k : k + 1]
        columns = [np.ones((len(features), 1)), features[:, k : k + 1], x_k * x]
        columns += [x_k * z[:, None] ** d for d in range(1, self.degree + 1)]
        return np.hstack(columns)

    def fit(self, features: np.ndarray, targets: np.ndarray) -> LinearRecalibration:
        targets = np.asarray(targets, dtype=float)
        features = np.asarray(features, dtype=float)
        p = targets.shape[1]
        if features.shape[1] != 2 * p + 1:
            raise ValueError(
                f"LinearRecalibration reads RePPI's feature layout (2p + 1 = {2 * p + 1} columns "
                f"for p = {p} score components), got {features.shape[1]} columns"
            )
        self._p = p
        f = features[:, 2 * p]
        self._f_center = float(f.mean())
        scale = float(f.std())
        self._f_scale = scale if scale > 0 else 1.0
        self.coef_ = [
            np.linalg.lstsq(self._basis(features, k), targets[:, k], rcond=None)[0] for k in range(p)
        ]
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, dtype=float)
        return np.column_stack([self._basis(features, k) @ c for k, c in enumerate(self.coef_)])


class ResidualRecalibration:
    """Least squares of the human residual ``r(y, x'theta_0)`` on ``[x^m, f, r^m]``.

    RePPI's default for the single-index families (``psi = x r``): their
    conditional mean is ``E[psi | z^m] = x E[r | z^m]`` when the auxiliary design
    is the human one, so one regression of the scalar residual, pooled over the
    score components, is learned instead of p regressions of the components
    ``x_k r`` (whose weights ``x_k^2`` make each one noisy when the scores are
    heavy-tailed, as Poisson's ``x (y - exp(x'theta))`` are). The basis is linear:
    a constant, the auxiliary design ``x^m``, the auxiliary outcome ``f`` and the auxiliary
    residual ``r^m = r(f, x^m'theta_0)``, so it contains both the prediction's own
    residual (PPI's correction) and the authors' linear recalibration of the
    outcome, ``E[y | x, f] = a'x + b f`` for OLS; being linear, it does not
    extrapolate faster than the features to units outside the labeled range
    (a quadratic in f did, by orders of magnitude, for Poisson counts).

    ``fit(features, residuals)`` takes the (n, p + 2) features ``[x^m, f, r^m]``
    and the (n,) residuals; ``predict(features)`` returns (m,) recalibrated residuals.
    """

    @staticmethod
    def _basis(features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, dtype=float)
        return np.column_stack([np.ones(len(features)), features])

    def fit(self, features: np.ndarray, residuals: np.ndarray) -> ResidualRecalibration:
        # minimum-norm least squares: the constant may repeat the design's intercept, and
        # for OLS r^m = f - x'theta_0 is collinear with [x, f]
        self.coef_ = np.linalg.lstsq(self._basis(features), np.asarray(residuals, dtype=float), rcond=None)[0]
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self._basis(features) @ self.coef_
