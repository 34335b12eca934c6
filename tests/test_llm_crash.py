"""A run killed mid-way (SIGKILL) and re-run with the same cache sends no request already answered."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("openai")

from _llm_support import API_KEY, FAST, PROMPT, SCHEMA, client_for, make_units  # noqa: E402

from synthinfer.llm import annotate  # noqa: E402
from synthinfer.llm.testing import FakeLLMServer, request_identity  # noqa: E402

N_UNITS = 60
CONCURRENCY = 3

CHILD = """
import sys
sys.path.insert(0, {tests!r})
from _llm_support import FAST, PROMPT, SCHEMA, make_units
from synthinfer.llm import LLMClient, annotate
client = LLMClient(model="fake-model", base_url={url!r}, api_key={key!r}, timeout=5)
annotate(make_units({n}), prompt=PROMPT, client=client, output=SCHEMA, cache={cache!r},
         concurrency={concurrency}, **FAST)
print("finished")
"""


def cached_identities(cache: Path) -> set[str]:
    with sqlite3.connect(cache) as db:
        rows = db.execute("SELECT model, request FROM answers").fetchall()
    out = set()
    for model, request in rows:
        request = json.loads(request)
        out.add(request_identity(model, request["messages"], request["params"].get("seed")))
    return out


def test_killed_run_resumes_without_resending_answered_requests(tmp_path):
    cache = tmp_path / "cache.sqlite"
    with FakeLLMServer(api_key=API_KEY, latency=0.03) as server:
        script = CHILD.format(tests=str(Path(__file__).parent), url=server.url, key=API_KEY, n=N_UNITS,
                              cache=str(cache), concurrency=CONCURRENCY)
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while sum(server.stats.answered.values()) < 20:
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the child never got going"
            time.sleep(0.005)
        os.kill(child.pid, signal.SIGKILL)  # no chance to clean up
        child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL
        while server.stats.in_flight:  # let the server finish what the dead child had sent
            time.sleep(0.01)
        answered_before = set(server.stats.answered)
        saved = cached_identities(cache)
        # everything answered was committed, except at most the requests in flight at the kill
        assert saved <= answered_before
        assert len(answered_before - saved) <= CONCURRENCY
        assert 20 - CONCURRENCY <= len(saved) < N_UNITS

        server.reset_stats()
        proxy = annotate(make_units(N_UNITS), prompt=PROMPT, client=client_for(server), output=SCHEMA, cache=cache,
                         concurrency=CONCURRENCY, **FAST)
        resent = set(server.stats.answered)
        assert not (resent & saved), "a request whose answer was cached was sent again"
        assert len(resent) == server.stats.requests == N_UNITS - len(saved)
        assert proxy.attrs["provenance"]["counts"]["cache_hits"] == len(saved)

        # and the result is the one an uninterrupted run gives
        server.reset_stats()
        fresh = annotate(make_units(N_UNITS), prompt=PROMPT, client=client_for(server), output=SCHEMA,
                         concurrency=CONCURRENCY, **FAST)
    pd.testing.assert_frame_equal(proxy, fresh)
