"""Where the LLM is: model, base URL and API key, from arguments or the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import SpecificationError

__all__ = ["LLMClient", "require_openai"]

INSTALL_HINT = "synthinfer.llm needs the openai package: python -m pip install 'synthinfer[llm]'"


def require_openai() -> Any:
    """Import ``openai`` (an optional dependency) or explain how to install it."""
    try:
        import openai
    except ImportError as exc:  # pragma: no cover - the test extra installs openai
        raise ImportError(INSTALL_HINT) from exc
    return openai


@dataclass(frozen=True)
class LLMClient:
    """An OpenAI-compatible endpoint: OpenAI, vLLM, Ollama, llama.cpp's server,
    LM Studio, Azure OpenAI's v1 endpoint, ...

    Parameters
    ----------
    model : str, optional
        The model name sent with every request; ``OPENAI_MODEL`` if omitted.
    base_url : str, optional
        The endpoint, e.g. ``http://localhost:8000/v1`` for vLLM;
        ``OPENAI_BASE_URL`` if omitted, else the ``openai`` client's default.
    api_key : str, optional
        ``OPENAI_API_KEY`` if omitted. Local servers accept any string.
    timeout : float
        Seconds before one request counts as timed out (and is retried).
    embedding_model : str, optional
        The model for the embeddings API (see
        `synthinfer.llm.diversity.embedding_diversity`); ``model`` if omitted.

    Notes
    -----
    The ``openai`` client is created afresh for every run (inside its event
    loop) with ``max_retries=0``: retries, backoff and rate limits are done by
    `synthinfer.llm.runner`, which counts them. The API key is never written
    to the cache, the provenance or a repr.
    """

    model: str | None = None
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 60.0
    embedding_model: str | None = None

    def __post_init__(self) -> None:
        env = os.environ
        object.__setattr__(self, "model", self.model or env.get("OPENAI_MODEL") or None)
        object.__setattr__(self, "base_url", self.base_url or env.get("OPENAI_BASE_URL") or None)
        object.__setattr__(self, "api_key", self.api_key or env.get("OPENAI_API_KEY") or None)
        if not self.model:
            raise SpecificationError("LLMClient: no model given; pass model= or set OPENAI_MODEL")
        if not self.api_key:
            raise SpecificationError(
                "LLMClient: no API key; pass api_key= or set OPENAI_API_KEY (local servers such as "
                "vLLM or Ollama accept any string, e.g. 'none')"
            )
        if not (isinstance(self.timeout, (int, float)) and self.timeout > 0):
            raise SpecificationError(f"LLMClient: timeout must be a positive number of seconds, got {self.timeout!r}")

    def open(self) -> Any:
        """A new ``openai.AsyncOpenAI`` for this endpoint (no retries of its own)."""
        openai = require_openai()
        return openai.AsyncOpenAI(
            api_key=self.api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0
        )

    def describe(self) -> dict[str, Any]:
        """Model, base URL and timeout (never the key), for provenance."""
        return {"model": self.model, "base_url": self.base_url, "timeout": self.timeout}
