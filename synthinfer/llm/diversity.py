"""Diagnostics of synthetic samples: Self-BLEU, embedding diversity, and a residual preview.

- Self-BLEU (Zhu et al. 2018, Texygen): each text's BLEU against all the
  others as references, averaged. 1 means the texts repeat each other, values
  near 0 mean they share few n-grams. It follows NLTK's ``sentence_bleu``
  with uniform weights up to 4-grams and smoothing method 1 (epsilon 0.1),
  with a simple lower-case word tokenizer.
- Embedding diversity: the mean pairwise cosine distance (1 - cosine) of the
  texts' embeddings, from a function you pass or the endpoint's embeddings
  API; 0 means identical directions.
- `residual_preview`: how well each source's residuals track the human ones
  on the labeled units (the correlation the estimator exploits) and what
  each source buys, from a GMM-Synth fit.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import SpecificationError

__all__ = ["self_bleu", "embedding_diversity", "embed_texts", "sample_diversity", "residual_preview", "tokenize"]

_TOKEN = re.compile(r"\w+|[^\w\s]")
EPSILON = 0.1  # NLTK SmoothingFunction().method1


def tokenize(text: str) -> list[str]:
    """Lower-case words and punctuation marks."""
    return _TOKEN.findall(text.lower())


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def self_bleu(
    texts: Sequence[str],
    max_n: int = 4,
    tokenizer: Callable[[str], list[str]] = tokenize,
) -> float:
    """Self-BLEU of a set of texts: the mean BLEU of each against all the others.

    Parameters
    ----------
    texts : sequence of str
        At least two texts.
    max_n : int
        Longest n-gram (uniform weights 1/max_n).
    tokenizer : callable
        Text -> list of tokens.

    Returns
    -------
    float
        In [0, 1]; higher means less diverse.

    Notes
    -----
    Each text's score is NLTK's ``sentence_bleu(others, text, smoothing_function=
    SmoothingFunction().method1)``: clipped n-gram precisions (a zero count
    becomes 0.1 / the number of n-grams), the brevity penalty against the
    closest reference length (ties to the shorter), and 0 when no word of the
    text appears in the others. The maximum count of each n-gram over the
    other texts is found from the two largest counts over all texts, so the
    cost is linear in the total number of n-grams (plus n^2 length
    comparisons).
    """
    texts = list(texts)
    if len(texts) < 2:
        raise SpecificationError(f"self_bleu needs at least two texts, got {len(texts)}")
    if not isinstance(max_n, int) or max_n < 1:
        raise SpecificationError(f"max_n must be a positive integer, got {max_n!r}")
    tokens = [list(tokenizer(str(t))) for t in texts]
    lengths = np.array([len(t) for t in tokens], dtype=float)
    counts = [[_ngrams(t, n) for n in range(1, max_n + 1)] for t in tokens]
    # the two largest counts of every n-gram over all texts, and which text holds the largest
    top: list[dict[tuple, list]] = [{} for _ in range(max_n)]
    for i, per_n in enumerate(counts):
        for n, counter in enumerate(per_n):
            table = top[n]
            for gram, c in counter.items():
                entry = table.get(gram)
                if entry is None:
                    table[gram] = [c, i, 0]
                elif c > entry[0]:
                    table[gram] = [c, i, entry[0]]
                elif c > entry[2]:
                    entry[2] = c
    scores = np.empty(len(tokens))
    for i, per_n in enumerate(counts):
        hyp_len = len(tokens[i])
        gaps = np.abs(lengths - hyp_len)
        gaps[i] = np.inf
        # closest reference length, ties broken towards the shorter (NLTK's rule)
        closest = lengths[np.lexsort((lengths, gaps))[0]]
        log_p = []
        no_unigram_match = False
        for n, counter in enumerate(per_n):
            table = top[n]
            matched = 0
            for gram, c in counter.items():
                best, holder, second = table[gram]
                matched += min(c, second if holder == i else best)
            total = max(1, sum(counter.values()))
            if n == 0 and matched == 0:
                no_unigram_match = True
                break
            log_p.append(math.log((matched if matched else EPSILON) / total))
        if no_unigram_match:
            scores[i] = 0.0
            continue
        if hyp_len > closest:
            bp = 1.0
        elif hyp_len == 0:
            bp = 0.0
        else:
            bp = math.exp(1 - closest / hyp_len)
        scores[i] = bp * math.exp(math.fsum(log_p) / max_n)
    return float(scores.mean())


def embedding_diversity(embeddings: Any) -> float:
    """Mean pairwise cosine distance ``1 - cos(e_i, e_j)`` over all pairs of rows.

    Parameters
    ----------
    embeddings : array of shape (n, d)
        At least two rows, none all zero.

    Returns
    -------
    float
        0 when all rows point the same way; 1 on average for unrelated
        directions; up to 2.
    """
    e = np.asarray(embeddings, dtype=float)
    if e.ndim != 2 or e.shape[0] < 2:
        raise SpecificationError(f"embedding_diversity needs an (n, d) array with n >= 2, got shape {e.shape}")
    norms = np.linalg.norm(e, axis=1)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise SpecificationError("embedding_diversity: every embedding must be finite and non-zero")
    u = e / norms[:, None]
    n = len(u)
    total = u.sum(axis=0)
    mean_cos = (float(total @ total) - n) / (n * (n - 1))  # sum over pairs i != j of cos, / pairs
    return float(np.clip(1.0 - mean_cos, 0.0, 2.0))  # rounding can step just outside [0, 2]


def embed_texts(texts: Sequence[str], client: Any, *, model: str | None = None, cache: Any = None,
                batch_size: int = 64) -> np.ndarray:
    """Embeddings from the endpoint's embeddings API (``POST /embeddings``), cached.

    Parameters
    ----------
    texts : sequence of str
    client : LLMClient
        The endpoint; ``model`` or else ``client.embedding_model`` or else
        ``client.model`` names the embedding model.
    cache : str, Path or ResponseCache, optional
        Embeddings are stored next to the chat answers.
    batch_size : int
        Texts per request.

    Returns
    -------
    ndarray of shape (len(texts), d)
    """
    from ..exceptions import LLMError
    from .client import require_openai
    from .runner import run_sync
    from .units import as_cache

    openai = require_openai()
    texts = [str(t) for t in texts]
    name = model or client.embedding_model or client.model
    store, opened = as_cache(cache)

    async def run() -> np.ndarray:
        api = client.open()
        try:
            vectors: dict[str, list[float]] = {}
            todo = []
            for t in dict.fromkeys(texts):
                hit = store.get_embedding(name, t)
                if hit is None:
                    todo.append(t)
                else:
                    vectors[t] = hit
            for start in range(0, len(todo), batch_size):
                batch = todo[start:start + batch_size]
                try:
                    response = await api.embeddings.create(model=name, input=batch)
                except openai.APIError as exc:
                    raise LLMError(
                        f"embeddings from {client.base_url or 'the default OpenAI endpoint'} with model {name!r} "
                        f"failed ({type(exc).__name__}: {exc}); {len(vectors)} of {len(set(texts))} texts are embedded "
                        f"and cached"
                    ) from exc
                for t, item in zip(batch, sorted(response.data, key=lambda d: d.index)):
                    vectors[t] = list(item.embedding)
                    store.put_embedding(name, t, vectors[t])
            return np.array([vectors[t] for t in texts], dtype=float)
        finally:
            await api.close()

    try:
        return run_sync(run)
    finally:
        if opened:
            store.close()


def sample_diversity(
    synth: pd.DataFrame,
    *,
    text: str = "text",
    embed: Callable[[list[str]], Any] | None = None,
    max_texts: int = 500,
    seed: int = 0,
    max_n: int = 4,
) -> pd.DataFrame:
    """Self-BLEU and embedding diversity of each unit's samples and of the whole set.

    Parameters
    ----------
    synth : DataFrame
        A synthetic frame (indexed by unit id, several rows per unit).
    text : str
        The generated-text column.
    embed : callable, optional
        ``embed(list_of_texts) -> array (n, d)``: your embedding function, or
        ``lambda t: embed_texts(t, client)`` for the endpoint's embeddings.
        Without it only Self-BLEU is computed.
    max_texts : int
        The whole-set scores use a seeded random subset of at most this many
        texts (Self-BLEU is quadratic in the number of texts).
    seed : int
        Seed of that subset.
    max_n : int
        Longest n-gram of Self-BLEU.

    Returns
    -------
    DataFrame
        One row per unit with at least two samples (``n_samples``,
        ``self_bleu``, ``embedding_diversity``), then a row ``"(all)"`` for the
        whole set; units with one sample are left out of the per-unit rows.
    """
    if text not in synth.columns:
        raise SpecificationError(f"sample_diversity: no text column {text!r} in the frame (columns: {list(synth.columns)})")
    texts = synth[text].astype(str)
    vectors = None
    if embed is not None:
        vectors = np.asarray(embed(list(texts)), dtype=float)
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise SpecificationError(f"sample_diversity: embed returned shape {vectors.shape} for {len(texts)} texts")
    positions = pd.Series(np.arange(len(texts)), index=synth.index)
    rows = {}
    for unit, where in positions.groupby(level=0, sort=False):
        pos = where.to_numpy()
        if len(pos) < 2:
            continue
        rows[unit] = {
            "n_samples": len(pos),
            "self_bleu": self_bleu(list(texts.iloc[pos]), max_n=max_n),
            "embedding_diversity": embedding_diversity(vectors[pos]) if vectors is not None else np.nan,
        }
    pick = np.sort(np.random.default_rng(seed).permutation(len(texts))[:max_texts])
    if len(pick) >= 2:
        rows["(all)"] = {
            "n_samples": len(pick),
            "self_bleu": self_bleu(list(texts.iloc[pick]), max_n=max_n),
            "embedding_diversity": embedding_diversity(vectors[pick]) if vectors is not None else np.nan,
        }
    out = pd.DataFrame.from_dict(rows, orient="index", columns=["n_samples", "self_bleu", "embedding_diversity"])
    out.index.name = synth.index.name
    return out


def residual_preview(
    formula: str,
    real: pd.DataFrame,
    *,
    proxy: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
    synth: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
    model: str = "ols",
    **kwargs: Any,
) -> pd.DataFrame:
    """How each source's residuals track the human ones on the labeled units.

    A convenience over the public API: ``smf.gmm_synth(formula, real=real,
    proxy=proxy, synth=synth, model=model, **kwargs).fit().diagnostics()``.

    Returns
    -------
    DataFrame
        One row per source: ``residual_correlation`` (the correlation of the
        source's residuals, a unit's samples averaged, with the human
        residuals on the labeled units) and ``variance_reduction:<term>``
        (1 - variance with that source alone / human-only variance). The
        row ``"all"`` has the variance reductions of all sources together.
    """
    from .. import api as smf

    diagnostics = smf.gmm_synth(formula, real=real, proxy=proxy, synth=synth, model=model, **kwargs).fit().diagnostics()
    reduction = diagnostics.variance_reduction.T.add_prefix("variance_reduction:")
    out = reduction.join(diagnostics.residual_correlation.rename("residual_correlation"), how="left")
    return out[["residual_correlation", *reduction.columns]]
