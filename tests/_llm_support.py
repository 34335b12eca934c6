"""Shared helpers of the tests/test_llm_*.py files (not a test module)."""

from __future__ import annotations

import socket

import pandas as pd

from synthinfer.llm import LLMClient

API_KEY = "sk-test-key"
SCHEMA = {
    "polite": {"type": "integer", "enum": [0, 1]},
    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
}
PROMPT = "Is this request polite? <request>{text}</request>"
FAST = {"backoff": 0.001, "max_backoff": 0.01, "progress": False}


def make_units(n: int, prefix: str = "u") -> pd.DataFrame:
    """n units whose texts name their id as "(ref u007)", so a fault can target one unit."""
    ids = [f"{prefix}{i:03d}" for i in range(n)]
    texts = [
        ("Could you please look at this? Thanks, we appreciate it." if i % 3 == 0
         else "Why is this still wrong! Fix it." if i % 3 == 1
         else "Perhaps this might need another look, I think.") + f" (ref {uid})"
        for i, uid in enumerate(ids)
    ]
    return pd.DataFrame({"text": texts, "length": [len(t) for t in texts]}, index=pd.Index(ids, name="unit"))


def ref(unit: str) -> str:
    """The text that identifies ``unit``'s requests (for FakeLLMServer.inject(match=...))."""
    return f"(ref {unit})"


def client_for(server, *, timeout: float = 2.0, **kwargs) -> LLMClient:
    return LLMClient(model=kwargs.pop("model", "fake-model"), base_url=server.url, api_key=kwargs.pop("api_key", API_KEY),
                     timeout=timeout, **kwargs)


def features(text: str) -> dict[str, float]:
    words = text.lower().split()
    return {
        "n_words": float(len(words)),
        "please": float("please" in text.lower()),
        "hedging": float(any(w.strip(",.!?") in ("perhaps", "maybe", "might", "think") for w in words)),
    }


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
