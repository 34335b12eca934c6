"""Self-BLEU against NLTK and closed forms; embedding diversity against brute force; the embeddings API."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from synthinfer.exceptions import SpecificationError
from synthinfer.llm.diversity import embedding_diversity, sample_diversity, self_bleu, tokenize

TEXTS = [
    "the cat sat on the mat",
    "the cat is on the mat",
    "a dog ran in the park today",
    "the cat sat",
    "completely different words here",
    "the the the the",
    "Could you please help me with this? Thanks!",
    "could you please help with this , thanks",
]


def nltk_self_bleu(texts, max_n=4):
    bleu = pytest.importorskip("nltk.translate.bleu_score")
    tokens = [tokenize(t) for t in texts]
    weights = tuple([1 / max_n] * max_n)
    smooth = bleu.SmoothingFunction().method1
    return float(np.mean([
        bleu.sentence_bleu([tokens[j] for j in range(len(tokens)) if j != i], tokens[i], weights=weights,
                           smoothing_function=smooth)
        for i in range(len(tokens))
    ]))


@pytest.mark.parametrize("max_n", [1, 2, 4])
def test_self_bleu_equals_nltk(max_n):
    assert self_bleu(TEXTS, max_n=max_n) == pytest.approx(nltk_self_bleu(TEXTS, max_n), abs=1e-12)


def test_self_bleu_equals_nltk_on_random_texts():
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(12)]
    texts = [" ".join(rng.choice(vocab, size=rng.integers(1, 15))) for _ in range(40)]
    assert self_bleu(texts) == pytest.approx(nltk_self_bleu(texts), abs=1e-12)


def test_self_bleu_closed_forms():
    assert self_bleu(["a b c d e", "a b c d e", "a b c d e"]) == pytest.approx(1.0)
    # no shared word: every text scores 0 (NLTK returns 0 when no unigram matches)
    assert self_bleu(["a b", "c d", "e f"]) == 0.0
    # unigram BLEU of "a b" against "a c": precision 1/2, equal lengths (no brevity penalty)
    assert self_bleu(["a b", "a c"], max_n=1) == pytest.approx(0.5)
    # "a" against "a b c": precision 1, brevity penalty exp(1 - 3/1); "a b c" against "a": 1/3, no penalty
    assert self_bleu(["a", "a b c"], max_n=1) == pytest.approx((math.exp(1 - 3) + 1 / 3) / 2)
    with pytest.raises(SpecificationError, match="at least two texts"):
        self_bleu(["only one"])


def test_embedding_diversity_is_the_mean_pairwise_cosine_distance():
    rng = np.random.default_rng(1)
    e = rng.normal(size=(9, 5))
    u = e / np.linalg.norm(e, axis=1, keepdims=True)
    brute = np.mean([1 - u[i] @ u[j] for i in range(9) for j in range(9) if i != j])
    assert embedding_diversity(e) == pytest.approx(brute, abs=1e-12)
    assert embedding_diversity(np.ones((4, 3)) * [1, 2, 3]) == pytest.approx(0.0, abs=1e-12)
    assert embedding_diversity([[1, 0], [-1, 0]]) == pytest.approx(2.0)
    with pytest.raises(SpecificationError, match="non-zero"):
        embedding_diversity([[1, 0], [0, 0]])


def test_sample_diversity_per_unit_and_overall():
    synth = pd.DataFrame(
        {"text": ["a b c d", "a b c d", "x y", "z w", "solo"]},
        index=pd.Index(["u1", "u1", "u2", "u2", "u3"], name="unit"),
    )
    vectors = {"a b c d": [1.0, 0.0], "x y": [0.0, 1.0], "z w": [0.0, -1.0], "solo": [1.0, 1.0]}
    out = sample_diversity(synth, embed=lambda texts: [vectors[t] for t in texts])
    assert list(out.index) == ["u1", "u2", "(all)"]  # u3 has one sample: no within-unit score
    assert out.loc["u1", "self_bleu"] == pytest.approx(1.0) and out.loc["u1", "embedding_diversity"] == pytest.approx(0.0)
    assert out.loc["u2", "self_bleu"] == 0.0 and out.loc["u2", "embedding_diversity"] == pytest.approx(2.0)
    assert out.loc["(all)", "n_samples"] == 5
    assert out.loc["(all)", "self_bleu"] == pytest.approx(self_bleu(list(synth["text"])))
    no_embed = sample_diversity(synth)
    assert no_embed["embedding_diversity"].isna().all()


def test_embeddings_from_the_endpoint_are_cached(tmp_path):
    pytest.importorskip("openai")
    from _llm_support import API_KEY, client_for

    from synthinfer.llm import embed_texts
    from synthinfer.llm.testing import FakeLLMServer

    texts = ["could you please help", "could you please help", "fix it now", "the cat sat"]
    with FakeLLMServer(api_key=API_KEY, embedding_dim=16) as server:
        vectors = embed_texts(texts, client_for(server), cache=tmp_path / "c.sqlite", batch_size=2)
        assert vectors.shape == (4, 16) and server.stats.embeddings == 2  # 3 distinct texts, batches of 2
        np.testing.assert_allclose(vectors[0], vectors[1])
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0)
        again = embed_texts(texts, client_for(server), cache=tmp_path / "c.sqlite")
        assert server.stats.embeddings == 2
        np.testing.assert_allclose(again, vectors)
    assert embedding_diversity(vectors[:2]) == pytest.approx(0.0, abs=1e-12)


def test_embedding_errors_are_named(tmp_path):
    pytest.importorskip("openai")
    from _llm_support import API_KEY, client_for

    from synthinfer.exceptions import LLMError
    from synthinfer.llm import embed_texts
    from synthinfer.llm.testing import FakeLLMServer

    with FakeLLMServer(api_key=API_KEY) as server:
        with pytest.raises(LLMError, match=r"embeddings from http://127.0.0.1:\d+/v1 with model 'fake-model' failed "
                                           r"\(AuthenticationError"):
            embed_texts(["a"], client_for(server, api_key="sk-wrong"))
