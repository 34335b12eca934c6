"""The baselines, one file each, on the data contract of the GMM estimators.

- `Classical`: the human-only fit (GMM with no auxiliary source).
- `Naive`: pools auxiliary rows with the human rows as if they were human
  data; biased unless the LLM is exact. Shown for contrast.
- `PPI`: prediction-powered inference with power tuning (PPI++) on one source.
- `DSL`: design-based supervised learning (Egami et al. 2023), OLS.
- `RePPI`: recalibrated prediction-powered inference (Ji, Lei and Zrnic 2025) on one source.
"""

from .base import BaselineModel, BaselineResults, BaselineResultsWrapper
from .classical import Classical
from .dsl import DSL
from .naive import Naive
from .ppi import PPI
from .recalibration import LinearRecalibration, ResidualRecalibration
from .reppi import RePPI

__all__ = [
    "Classical", "DSL", "Naive", "PPI", "RePPI", "LinearRecalibration", "ResidualRecalibration",
    "BaselineModel", "BaselineResults", "BaselineResultsWrapper",
]
