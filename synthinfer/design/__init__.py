"""Labeling designs: choose which units to label from the LLM's data, with valid inference.

- `optimal_design`: variance-optimal probabilities for the target coefficients
  (disagreement model x influence direction, mixed with uniform sampling).
- `stratified_design`: one probability per stratum.
- `Design.draw`: Poisson or fixed-size (systematic) draws with exact
  inclusion probabilities; ``design.prob`` is what ``labeling_prob=`` takes.
- `SequentialDesign`: labeling in rounds, re-estimating the disagreement model.
- `Design.label_budget`: how many labels a target precision needs under the design.
"""

from .planning import DesignBudget
from .rules import Design, optimal_design, stratified_design
from .sequential import SequentialDesign

__all__ = ["Design", "DesignBudget", "SequentialDesign", "optimal_design", "stratified_design"]
