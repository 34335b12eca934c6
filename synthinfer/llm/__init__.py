"""From texts to frames: annotate and generate with any OpenAI-compatible LLM.

`annotate` makes the proxy frame (one annotation per unit), `synthesize` the
synthetic frame (k samples per unit, each conditioned on that unit's text),
both indexed by unit id and ready for `synthinfer.api.gmm_synth`. They follow
the design rules of the synthetic-data guide by construction: one prompt,
model, parameters and k for every unit; no human label reaches the LLM; a
seeded random processing order; provenance with the frames; an on-disk cache
so that a re-run costs nothing; a unit that fails is named, never dropped.

Needs the ``llm`` extra (``pip install "synthinfer[llm]"``, the ``openai``
client); ``import synthinfer`` does not import it.
"""

from .annotate import annotate
from .cache import ResponseCache
from .client import LLMClient
from .diversity import embedding_diversity, embed_texts, residual_preview, self_bleu, sample_diversity
from .parse import OutputSchema
from .prompts import Prompt
from .provenance import provenance_path, save_frame
from .runner import RunOptions
from .synthesize import synthesize

__all__ = [
    "annotate",
    "synthesize",
    "LLMClient",
    "Prompt",
    "OutputSchema",
    "ResponseCache",
    "RunOptions",
    "save_frame",
    "provenance_path",
    "self_bleu",
    "sample_diversity",
    "embedding_diversity",
    "embed_texts",
    "residual_preview",
]
