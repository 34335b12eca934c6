"""An on-disk cache of LLM answers (SQLite), so that a re-run costs nothing and a crash loses nothing.

Every answered request is committed as soon as it arrives, keyed by the
sha256 of (model, messages, parameters, sample index). A run that is killed
keeps every answer committed before the kill; the next run with the same
cache file sends only the requests that have no answer yet. The write-ahead
log keeps committed answers through a crash of the process.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["ResponseCache", "CachedAnswer", "request_key"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    sample INTEGER NOT NULL,
    request TEXT NOT NULL,
    content TEXT,
    refusal TEXT,
    finish_reason TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS embeddings (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    vector TEXT NOT NULL,
    prompt_tokens INTEGER,
    created TEXT NOT NULL
);
"""


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def request_key(model: str, messages: list[dict], params: dict, sample: int) -> str:
    """The cache key of one request: sha256 of its model, messages, parameters and sample index."""
    blob = _canonical({"model": model, "messages": messages, "params": params, "sample": int(sample)})
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedAnswer:
    """One answer: its text (or the model's refusal) and its token counts."""

    content: str | None
    refusal: str | None
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int


class ResponseCache:
    """SQLite store of answers; ``path=None`` keeps them in memory for one call.

    Parameters
    ----------
    path : str or Path, optional
        The cache file (created with its directory if absent).
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        target = ":memory:" if self.path is None else str(self.path)
        # one connection, used from the event loop's thread only
        self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        if self.path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def get(self, key: str) -> CachedAnswer | None:
        row = self._db.execute(
            "SELECT content, refusal, finish_reason, prompt_tokens, completion_tokens FROM answers WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        return CachedAnswer(row[0], row[1], row[2], int(row[3] or 0), int(row[4] or 0))

    def put(self, key: str, model: str, sample: int, request: dict, answer: CachedAnswer) -> None:
        """Store one answer and commit it at once."""
        self._db.execute(
            "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key, model, int(sample), _canonical(request), answer.content, answer.refusal,
                answer.finish_reason, answer.prompt_tokens, answer.completion_tokens,
                datetime.now(timezone.utc).isoformat(timespec="seconds"),
            ),
        )

    def keys(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT key FROM answers")}

    def get_embedding(self, model: str, text: str) -> list[float] | None:
        row = self._db.execute("SELECT vector FROM embeddings WHERE key = ?", (self._embedding_key(model, text),)).fetchone()
        return None if row is None else json.loads(row[0])

    def put_embedding(self, model: str, text: str, vector: list[float], prompt_tokens: int = 0) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?)",
            (self._embedding_key(model, text), model, json.dumps(vector), int(prompt_tokens),
             datetime.now(timezone.utc).isoformat(timespec="seconds")),
        )

    @staticmethod
    def _embedding_key(model: str, text: str) -> str:
        return hashlib.sha256(_canonical({"model": model, "input": text}).encode("utf-8")).hexdigest()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path) if self.path else ':memory:'!r}, {len(self)} answers)"
