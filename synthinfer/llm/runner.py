"""Sending many requests: a concurrency limit, a rate limit, retries with backoff, the cache, counts.

A run is a list of jobs (one per unit, or per unit and sample index), each a
coroutine that makes one or more requests through `Session.complete`. The
jobs are processed in a seeded random order by ``concurrency`` workers, so at
most ``concurrency`` requests are in flight. Until one request has been
answered, jobs run one at a time: an unreachable endpoint, a wrong key, an
unknown model or a refused first request stops the run after one request
(`LLMConnectionError`), before anything else is sent, and so do three jobs in
a row failing (5xx or timeouts after their retries) before any answer. A 429,
a 5xx, a timeout or a dropped connection is retried with exponential backoff
(honouring ``Retry-After``); other client errors (400, 422) after the first
answer fail their job at once. A job that fails is recorded with its reason;
the other jobs go on, and every answer is in the cache.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..exceptions import LLMConnectionError, SpecificationError
from .cache import CachedAnswer, ResponseCache, request_key
from .client import LLMClient, require_openai

__all__ = ["RunOptions", "Counts", "Session", "UnitFailure", "run_jobs", "run_sync"]


@dataclass(frozen=True)
class RunOptions:
    """How a run sends its requests.

    Parameters
    ----------
    concurrency : int
        Requests in flight at most.
    rate_limit : float, optional
        Requests started per second at most (None: no limit).
    max_retries : int
        Retries of one request after a 429, a 5xx, a timeout or a dropped connection.
    backoff : float
        Seconds before the first retry; doubled at each retry (with jitter).
    max_backoff : float
        Longest wait between retries, also the cap on a server's ``Retry-After``.
    max_reasks : int
        Times an unparseable answer or a refusal is sent back asking again.
    progress : bool, optional
        Show a tqdm progress bar; None shows it when stderr is a terminal.
    price : tuple of float or dict, optional
        US dollars per million (prompt, completion) tokens, or a dict of such
        pairs by model name; gives ``counts["cost"]``.
    """

    concurrency: int = 8
    rate_limit: float | None = None
    max_retries: int = 4
    backoff: float = 1.0
    max_backoff: float = 30.0
    max_reasks: int = 2
    progress: bool | None = None
    price: tuple[float, float] | Mapping[str, tuple[float, float]] | None = None

    def __post_init__(self) -> None:
        def bad(name: str, value: object, need: str) -> SpecificationError:
            return SpecificationError(f"{name} must be {need}, got {value!r}")

        if isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise bad("concurrency", self.concurrency, "a positive integer")
        if self.rate_limit is not None and not (isinstance(self.rate_limit, (int, float)) and self.rate_limit > 0):
            raise bad("rate_limit", self.rate_limit, "a positive number of requests per second, or None")
        for name in ("max_retries", "max_reasks"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise bad(name, value, "a non-negative integer")
        for name in ("backoff", "max_backoff"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise bad(name, value, "a non-negative number of seconds")

    def price_of(self, model: str) -> tuple[float, float] | None:
        if self.price is None:
            return None
        if isinstance(self.price, Mapping):
            return self.price.get(model)
        return (float(self.price[0]), float(self.price[1]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency, "rate_limit": self.rate_limit, "max_retries": self.max_retries,
            "backoff": self.backoff, "max_backoff": self.max_backoff, "max_reasks": self.max_reasks,
        }


@dataclass
class Counts:
    """What a run did. ``requests`` were sent (and answered) in this run; ``cache_hits``
    were answered from the cache; ``retries`` counts retries by cause (``"429"``,
    ``"5xx"``, ``"timeout"``, ``"connection"``); tokens are those of this run's requests."""

    jobs: int = 0
    requests: int = 0
    cache_hits: int = 0
    retries: Counter = field(default_factory=Counter)
    reasks: int = 0
    refusals: int = 0
    parsed_json: int = 0
    parsed_regex: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "jobs": self.jobs, "requests": self.requests, "cache_hits": self.cache_hits,
            "retries": dict(sorted(self.retries.items())), "retries_total": int(sum(self.retries.values())),
            "reasks": self.reasks, "refusals": self.refusals, "parsed_json": self.parsed_json,
            "parsed_regex": self.parsed_regex, "failures": self.failures,
            "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens, "cost": self.cost,
        }


class UnitFailure(Exception):
    """One job failed for good; the message is the reason recorded for its unit."""


class _Limiter:
    """At most ``rate`` starts per second, spaced evenly."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 0.0 if rate is None else 1.0 / rate
        self.next = 0.0
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self.lock:
            now = time.monotonic()
            if self.next > now:
                await asyncio.sleep(self.next - now)
            self.next = max(now, self.next) + self.interval


class Session:
    """One run's connection, cache and counters (create it with `run_jobs`)."""

    def __init__(self, client: LLMClient, cache: ResponseCache, options: RunOptions, seed: int | None) -> None:
        self.client = client
        self.cache = cache
        self.options = options
        self.counts = Counts()
        self.api: Any = None
        self.openai = require_openai()
        self.answered_once = False  # a request has been answered over the network in this run
        self._limiter = _Limiter(options.rate_limit)
        self._pending: dict[str, asyncio.Event] = {}
        self._jitter = random.Random(seed)

    async def complete(self, messages: list[dict], params: Mapping[str, Any], sample: int) -> CachedAnswer:
        """The answer to one chat request: from the cache, or sent (with retries) and cached."""
        model = str(self.client.model)
        params = dict(params)
        key = request_key(model, messages, params, sample)
        while True:
            cached = self.cache.get(key)
            if cached is not None:
                self.counts.cache_hits += 1
                return cached
            # the same request already in flight (two units with the same text): wait for its
            # answer rather than pay twice, and so that a re-run gives both the answer cached
            pending = self._pending.get(key)
            if pending is None:
                break
            await pending.wait()
        done = self._pending[key] = asyncio.Event()
        try:
            answer = await self._send(messages, params)
            self.cache.put(key, model, sample, {"messages": messages, "params": params}, answer)
        finally:
            del self._pending[key]
            done.set()
        self.counts.requests += 1
        self.counts.prompt_tokens += answer.prompt_tokens
        self.counts.completion_tokens += answer.completion_tokens
        return answer

    async def _send(self, messages: list[dict], params: dict[str, Any]) -> CachedAnswer:
        oa = self.openai
        where = self.client.base_url or "the default OpenAI endpoint"
        for attempt in range(self.options.max_retries + 1):
            await self._limiter.wait()
            retry_after = None
            try:
                response = await self.api.chat.completions.create(
                    model=self.client.model, messages=messages, **params
                )
            except (oa.AuthenticationError, oa.PermissionDeniedError) as exc:
                raise LLMConnectionError(
                    f"the endpoint {where} rejected the API key (HTTP {exc.status_code}): {_message(exc)}; "
                    f"nothing else was sent"
                ) from None
            except oa.NotFoundError as exc:
                raise LLMConnectionError(
                    f"the endpoint {where} has no model {self.client.model!r} or no chat-completions route "
                    f"(HTTP 404): {_message(exc)}; check model= and base_url="
                ) from None
            except oa.RateLimitError as exc:
                cause, retry_after = "429", _retry_after(exc)
            except oa.APITimeoutError:
                cause = "timeout"
            except oa.APIConnectionError as exc:
                if not self.answered_once:
                    raise LLMConnectionError(
                        f"cannot reach the endpoint {where}: {_message(exc)} "
                        f"({type(exc.__cause__ or exc).__name__}); nothing was sent"
                    ) from None
                cause = "connection"
            except oa.APIStatusError as exc:
                if exc.status_code >= 500:
                    cause = "5xx"
                elif exc.status_code == 409:
                    cause = "409"
                elif not self.answered_once:
                    # the very first request is refused: the parameters, not a unit, are at fault
                    raise LLMConnectionError(
                        f"the endpoint {where} refused the first request (HTTP {exc.status_code}: {_message(exc)}); "
                        f"check the request parameters (endpoints without JSON-schema support need "
                        f"response_format='json_object' or 'text'); nothing else was sent"
                    ) from None
                else:
                    raise UnitFailure(f"HTTP {exc.status_code}: {_message(exc)}") from None
            else:
                self.answered_once = True
                return _answer_of(response)
            if attempt == self.options.max_retries:
                raise UnitFailure(f"{cause} after {self.options.max_retries} retries")
            self.counts.retries[cause] += 1
            delay = min(self.options.max_backoff, self.options.backoff * 2**attempt) * (0.5 + self._jitter.random() / 2)
            if retry_after is not None:
                delay = min(self.options.max_backoff, max(delay, retry_after))
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


def _message(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and inner.get("message"):
            return str(inner["message"])
        if body.get("message"):
            return str(body["message"])
    return str(getattr(exc, "message", None) or exc)


def _retry_after(exc: Any) -> float | None:
    try:
        return max(0.0, float(exc.response.headers.get("retry-after")))
    except (AttributeError, TypeError, ValueError):
        return None


def _answer_of(response: Any) -> CachedAnswer:
    choice = response.choices[0] if response.choices else None
    message = getattr(choice, "message", None)
    content = getattr(message, "content", None)
    refusal = getattr(message, "refusal", None)
    finish = getattr(choice, "finish_reason", None)
    if finish == "content_filter" and not refusal:
        refusal = "the answer was withheld by the endpoint's content filter"
    usage = getattr(response, "usage", None)
    return CachedAnswer(
        content=content,
        refusal=refusal,
        finish_reason=finish,
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
    )


Job = Callable[[Session], Awaitable[Any]]

# jobs that fail, one after the other, before any answer: the endpoint is down, not the units
PROBE_FAILURES = 3


async def _run(
    client: LLMClient, cache: ResponseCache, options: RunOptions, jobs: Sequence[tuple[Hashable, Job]],
    seed: int | None, desc: str,
) -> tuple[dict, dict, Counts]:
    session = Session(client, cache, options, seed)
    session.counts.jobs = len(jobs)
    order = np.random.default_rng(seed).permutation(len(jobs)) if len(jobs) else np.array([], dtype=int)
    queue = [jobs[i] for i in order]
    results: dict = {}
    failures: dict = {}
    show = sys.stderr.isatty() if options.progress is None else bool(options.progress)
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(queue), desc=desc, unit="unit")
    session.api = client.open()

    async def one(key: Hashable, job: Job) -> None:
        try:
            results[key] = await job(session)
        except UnitFailure as exc:
            failures[key] = str(exc)
        if bar is not None:
            bar.update(1)

    try:
        position = 0
        # one at a time until the endpoint has answered once (or everything came from the cache)
        while position < len(queue) and not session.answered_once:
            await one(*queue[position])
            position += 1
            unanswered = [key for key, _ in queue[:position] if key in failures]
            if len(unanswered) >= PROBE_FAILURES and not session.answered_once:
                raise LLMConnectionError(
                    f"the endpoint {client.base_url or 'the default OpenAI endpoint'} answered none of the first "
                    f"{len(unanswered)} requests (the last: {failures[unanswered[-1]]}); stopping before the "
                    f"other {len(queue) - position} job(s)"
                )
        pending = iter(queue[position:])

        async def worker() -> None:
            for key, job in pending:
                await one(key, job)

        tasks = [asyncio.create_task(worker()) for _ in range(min(options.concurrency, len(queue) - position))]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
    finally:
        if bar is not None:
            bar.close()
        await session.api.close()
    counts = session.counts
    counts.failures = len(failures)
    price = options.price_of(str(client.model))
    if price is not None:
        counts.cost = (counts.prompt_tokens * price[0] + counts.completion_tokens * price[1]) / 1e6
    return results, failures, counts


def run_jobs(
    client: LLMClient, cache: ResponseCache, options: RunOptions, jobs: Sequence[tuple[Hashable, Job]],
    seed: int | None = 0, desc: str = "LLM",
) -> tuple[dict, dict, Counts]:
    """Run ``jobs`` (``(key, coroutine function of a Session)``) in a seeded random order.

    Returns
    -------
    results : dict
        key -> what the job returned, for the jobs that succeeded.
    failures : dict
        key -> the reason, for the jobs that raised `UnitFailure`.
    counts : Counts
    """
    return run_sync(lambda: _run(client, cache, options, jobs, seed, desc))


def run_sync(factory: Callable[[], Awaitable[Any]]) -> Any:
    """Run a coroutine to completion, also from a thread that already has an event loop (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())  # type: ignore[arg-type]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()  # type: ignore[arg-type]
