"""Estimating functions: the model families of every estimator.

- `base`: the abstraction (`EstimatingFunction`, `Evaluation`);
- `single_index`: scores ``x r(y, x'b)``, the fast path of the GLM-type families;
- `glm`: OLS, logit, fractional logit, probit, Poisson, mean;
- `quantile`: quantile regression (kernel Jacobian);
- `multinomial`: multinomial logit;
- `negbin`: negative binomial (NB2) with its dispersion;
- `custom`: user-defined moments.

``model=`` takes a name from `FAMILIES` or an instance (for options, e.g.
``Quantile(q=0.9)``, or a user's `EstimatingEquation`).
"""

from __future__ import annotations

from ..rowblocks import weighted_gram
from ..solvers import check_full_rank
from .base import EstimatingFunction, Evaluation, Factors, Solution
from .custom import Design, EstimatingEquation, NonFiniteScoresError
from .glm import OLS, FractionalLogit, GLMFamily, Logit, Mean, Poisson, Probit, expit
from .multinomial import MNLogit
from .negbin import NegativeBinomial
from .quantile import Quantile
from .single_index import SingleIndexEvaluation, SingleIndexFamily

__all__ = [
    "EstimatingFunction", "Evaluation", "Factors", "Solution",
    "SingleIndexFamily", "SingleIndexEvaluation", "GLMFamily",
    "OLS", "Logit", "FractionalLogit", "Probit", "Poisson", "Mean", "Quantile", "MNLogit", "NegativeBinomial",
    "EstimatingEquation", "Design", "NonFiniteScoresError",
    "FAMILIES", "Family", "get_family", "check_full_rank", "weighted_gram", "expit",
]

#: kept for code written against the first releases
Family = EstimatingFunction

#: the families ``model=`` names
FAMILIES: dict[str, type[EstimatingFunction]] = {
    f.name: f for f in (OLS, Logit, FractionalLogit, Probit, Poisson, Mean, Quantile, MNLogit, NegativeBinomial)
}


def get_family(model: str | EstimatingFunction) -> EstimatingFunction:
    """The family named by ``model`` (see `FAMILIES`), or ``model`` itself if it is one."""
    if isinstance(model, EstimatingFunction):
        return model
    try:
        return FAMILIES[str(model).lower()]()
    except KeyError:
        raise ValueError(
            f"model must be one of {sorted(FAMILIES)} or an EstimatingFunction, got {model!r}"
        ) from None
