"""The formula's categorical terms as plain data, and statsmodels' ``t_test_pairwise`` on them.

statsmodels reads a term's levels and contrast matrix from the formula
engine's spec at test time; patsy's spec cannot be pickled, so a result loaded
from a pickle had lost them. `CategoricalTerm` keeps what the pairwise
contrasts need (the term's first column, its levels and its coding matrix) as
arrays and strings: learned from the live spec, and carried through pickling
by `synthinfer.formula.FormulaSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import SpecificationError

__all__ = ["CategoricalTerm", "categorical_terms", "t_test_pairwise"]


@dataclass(frozen=True)
class CategoricalTerm:
    """A main-effect categorical term of the design.

    Attributes
    ----------
    name : str
        The term's name as the engine spells it (``"C(g)"``).
    start : int
        Its first design column.
    levels : tuple of str
        Its levels, in the engine's order.
    coding : ndarray
        (levels, columns): each level's row of the term's design columns.
    """

    name: str
    start: int
    levels: tuple[str, ...]
    coding: np.ndarray


def categorical_terms(engine: str, rhs_spec: Any) -> dict[str, CategoricalTerm]:
    """Every single-factor categorical term of a live right-hand-side spec, by name."""
    from statsmodels.formula._manager import FormulaManager

    manager = FormulaManager(engine=engine)
    names = manager.get_term_names(rhs_spec)
    slices = manager.get_term_name_slices(rhs_spec)
    found: dict[str, CategoricalTerm] = {}
    for name, term in zip(names, rhs_spec.terms):
        if len(term.factors) != 1:
            continue
        factor = term.factors[0]
        try:
            levels = manager.get_factor_categories(factor, rhs_spec)
            coding = manager.get_contrast_matrix(term, factor, rhs_spec)
        except (KeyError, AttributeError, TypeError):
            continue  # a numeric factor has neither
        if levels is None:
            continue
        found[name] = CategoricalTerm(
            name, int(slices[name].start), tuple(str(v) for v in levels), np.asarray(coding, dtype=float)
        )
    return found


def t_test_pairwise(
    results: Any, terms: dict[str, CategoricalTerm], term_name: str, method: str | list[str] = "hs",
    alpha: float = 0.05, factor_labels: list[str] | None = None,
) -> Any:
    """All pairwise differences of a categorical term's levels, with multiple-testing
    corrected p-values: statsmodels' ``t_test_pairwise`` on the stored term.

    Returns
    -------
    statsmodels.stats.contrast.MultiCompResult
        ``result_frame`` is statsmodels' frame (coef, std err, t or z, P, the
        interval and the corrected p-values with reject decisions).
    """
    from statsmodels.sandbox.stats.multicomp import contrast_allpairs
    from statsmodels.stats.contrast import MultiCompResult, t_test_multi

    if term_name not in terms:
        raise SpecificationError(
            f"t_test_pairwise: {term_name!r} is not a categorical main-effect term of the "
            f"formula; its categorical terms are {sorted(terms)}"
        )
    term = terms[term_name]
    levels = list(term.levels)
    if factor_labels is not None:
        if len(factor_labels) != len(levels):
            raise ValueError(f"factor_labels has the wrong length, should be {len(levels)}")
        levels = list(factor_labels)
    k = len(levels)
    first, second = np.triu_indices(k, 1)
    labels = [f"{levels[j]}-{levels[i]}" for i, j in zip(first, second)]
    block = -contrast_allpairs(k) @ term.coding
    contrasts = np.zeros((len(block), len(np.asarray(results.params))))
    contrasts[:, term.start: term.start + block.shape[1]] = block
    frame: pd.DataFrame = t_test_multi(results, contrasts, method=method, alpha=alpha, contrast_names=labels)
    return MultiCompResult(
        result_frame=frame, contrasts=contrasts, term=term_name, contrast_labels=labels,
        term_encoding_matrix=term.coding,
    )
