"""The formula interface, mirroring ``statsmodels.formula.api``.

>>> import synthinfer.api as smf
>>> res = smf.gmm_synth("y ~ x1", real=real, proxy=proxy, synth=synth, model="logit").fit()
"""

from .estimators import DSL, PPI, Classical, Naive, RePPI
from .etable import etable
from .gmm import GMMProxy, GMMSynth

__all__ = ["gmm_synth", "gmm_proxy", "classical", "naive", "ppi", "dsl", "reppi", "etable"]

gmm_synth = GMMSynth.from_formula
gmm_proxy = GMMProxy.from_formula
classical = Classical.from_formula
naive = Naive.from_formula
ppi = PPI.from_formula
dsl = DSL.from_formula
reppi = RePPI.from_formula
