"""synthinfer: valid regression inference with a few human labels and imperfect LLM data."""

from .exceptions import (
    ConvergenceError,
    PerfectSeparationError,
    SingularDesignError,
    SingularMomentsError,
    SpecificationError,
)
from .estimators import PPI, Classical, Naive
from .comparison import ComparisonTable, compare, plot_coefficients
from .etable import ETable, etable
from .reporting import summary_col_info
from .families import EstimatingEquation, MNLogit, NegativeBinomial, Quantile
from .gmm import GMMProxy, GMMSynth
from .results import GMMSynthResults
from . import datasets, simulate  # synthinfer.datasets.load_politeness() after `import synthinfer`

__version__ = "0.1.0.dev0"

__all__ = [
    "compare",
    "etable",
    "ETable",
    "summary_col_info",
    "plot_coefficients",
    "ComparisonTable",
    "Classical",
    "Naive",
    "PPI",
    "GMMSynth",
    "GMMProxy",
    "GMMSynthResults",
    "EstimatingEquation",
    "Quantile",
    "MNLogit",
    "NegativeBinomial",
    "SpecificationError",
    "SingularDesignError",
    "SingularMomentsError",
    "PerfectSeparationError",
    "ConvergenceError",
    "datasets",
    "simulate",
    "__version__",
]
