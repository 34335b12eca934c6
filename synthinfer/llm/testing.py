"""A fake OpenAI-compatible server on 127.0.0.1: a test double, not an LLM.

`FakeLLMServer` speaks enough of the chat-completions and embeddings protocol
for the real ``openai`` client (``POST /v1/chat/completions``,
``POST /v1/embeddings``, ``GET /v1/models``). It answers deterministically
from the request (a seeded hash of the model, the messages and the ``seed``
parameter), checks the API key, counts requests and the requests in flight,
and injects failures on demand (429, 500, timeouts, malformed JSON, refusals,
401). The package's tests and the offline notebook run against it, because
neither can reach a real LLM; its answers carry no knowledge of language.

Use it as a context manager::

    with FakeLLMServer(api_key="sk-test") as server:
        client = synthinfer.llm.LLMClient(model="fake", base_url=server.url, api_key="sk-test")
        server.inject("429", times=3)           # the next three requests get a 429
        server.inject("malformed", match="req00007")   # every request naming req00007

`politeness_responder` is a deterministic stand-in for an LLM on the
politeness texts (keyword rules plus seeded noise), used by the notebook.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .prompts import SCHEMA_MARKER  # synthinfer.llm puts the JSON schema after it

__all__ = ["FakeLLMServer", "FakeRequest", "Fault", "default_responder", "politeness_responder", "FAULT_KINDS"]

FAULT_KINDS = ("429", "500", "timeout", "malformed", "garbage", "refusal", "401", "400")


@dataclass
class FakeRequest:
    """What a responder sees of one chat-completions request.

    Attributes
    ----------
    model, messages, seed :
        As sent by the client.
    schema : dict or None
        The JSON schema of the answer (from ``response_format`` or from the
        system message), None for free text.
    prompt : str
        The content of the last user message.
    rng : random.Random
        Seeded from the request: the same request gets the same draws.
    """

    model: str
    messages: list[dict]
    seed: int | None
    schema: dict | None
    prompt: str
    rng: random.Random


@dataclass
class Fault:
    """An injected failure: ``kind`` for requests whose messages contain ``match``.

    ``times`` is how many more matching requests get it (None: all of them).
    """

    kind: str
    match: str | None = None
    times: int | None = None

    def applies(self, text: str) -> bool:
        return (self.times is None or self.times > 0) and (self.match is None or self.match in text)


@dataclass
class _Stats:
    posts: int = 0  # every POST, answered or not (401s included)
    requests: int = 0  # chat-completions requests that passed the key check
    in_flight: int = 0
    max_in_flight: int = 0
    embeddings: int = 0
    faults: Counter = field(default_factory=Counter)
    answered: Counter = field(default_factory=Counter)  # request identity -> times answered (HTTP 200)
    order: list = field(default_factory=list)  # last user message of every answered request, in order
    log: list = field(default_factory=list)  # all message contents of every answered request, in order
    prompt_tokens: int = 0  # usage reported in the answers, summed
    completion_tokens: int = 0


def request_identity(model: str, messages: list[dict], seed: int | None) -> str:
    """A hash of what makes two chat requests the same request."""
    blob = json.dumps({"model": model, "messages": messages, "seed": seed}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def _value_for(spec: dict, rng: random.Random) -> Any:
    if "enum" in spec:
        return rng.choice(list(spec["enum"]))
    kind = spec.get("type", "string")
    if kind == "integer":
        return rng.randint(int(spec.get("minimum", 0)), int(spec.get("maximum", 10)))
    if kind == "number":
        lo, hi = float(spec.get("minimum", 0.0)), float(spec.get("maximum", 1.0))
        return round(lo + (hi - lo) * rng.random(), 3)
    if kind == "boolean":
        return rng.random() < 0.5
    return "answer " + str(rng.randint(0, 999))


def default_responder(request: FakeRequest) -> str:
    """Deterministic answers: a JSON object drawn from the schema, or a shuffled echo of the prompt."""
    if request.schema is not None:
        props = request.schema.get("properties", {})
        return json.dumps({name: _value_for(spec, request.rng) for name, spec in props.items()})
    words = re.findall(r"\w+", request.prompt)
    request.rng.shuffle(words)
    return " ".join(words[:30]) or "nothing"


_POLITE = ("please", "thank", "thanks", "could you", "would you", "appreciate", "sorry", "kindly", "hi", "hello")
_RUDE = ("why", "you must", "wrong", "!", "stupid", "never", "no ", "do not", "don't", "obviously")
_HEDGES = ("perhaps", "maybe", "i think", "might", "possibly", "i guess", "seems", "probably", "i believe")


def _between(text: str, tag: str) -> str:
    found = re.search(rf"<{tag}>(.*?)</{tag}>", text, re.S)
    return found.group(1).strip() if found else text


def politeness_responder(request: FakeRequest) -> str:
    """A deterministic stand-in for an LLM on the politeness texts (keyword rules and noise).

    - With a schema (annotation): the text inside ``<request>...</request>`` is
      scored by counting polite and rude keywords; ``polite`` is 1 when the
      score plus seeded noise is positive, ``confidence`` grows with the score.
    - Without (generation): the text inside ``<request>...</request>`` is
      rewritten by dropping some words and adding or removing politeness
      markers and hedges according to whether the last user message asks for
      a ``polite`` or an ``impolite`` request.
    """
    text = _between(request.prompt, "request")
    lower = text.lower()
    rng = request.rng
    if request.schema is not None:
        score = sum(lower.count(w) for w in _POLITE) - sum(lower.count(w) for w in _RUDE)
        noisy = score + rng.gauss(0.0, 1.0) - 0.3
        answer: dict[str, Any] = {}
        for name, spec in request.schema.get("properties", {}).items():
            if name == "confidence":
                answer[name] = round(min(0.99, 0.55 + 0.1 * abs(noisy)), 2)
            elif spec.get("type") in ("integer", "boolean") or "enum" in spec:
                answer[name] = int(noisy > 0)
            else:
                answer[name] = _value_for(spec, rng)
        return json.dumps(answer)
    wants_impolite = "impolite" in request.prompt.lower()
    words = [w for w in text.split() if rng.random() > 0.15] or text.split()[:1] or ["Hello"]
    if wants_impolite:
        words = [w for w in words if w.lower().strip(",.!?") not in ("please", "thanks", "perhaps", "maybe")]
        if rng.random() < 0.5:
            words.append("Now!")
    else:
        if rng.random() < 0.6:
            words.insert(0, "Could you please")
        if rng.random() < 0.3:
            words.insert(0, "Perhaps")
        if rng.random() < 0.5:
            words.append("Thanks!")
    return " ".join(words)


def _embed(text: str, dim: int) -> list[float]:
    """A hashed bag of words, unit length: texts sharing words point the same way."""
    vec = [0.0] * dim
    for word in re.findall(r"\w+", text.lower()) or ["<empty>"]:
        h = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
        vec[h % dim] += 1.0 if (h >> 32) & 1 else -1.0
    norm = sum(v * v for v in vec) ** 0.5 or 1.0
    return [v / norm for v in vec]


class FakeLLMServer:
    """A fake OpenAI-compatible HTTP server on 127.0.0.1 (a test double).

    Parameters
    ----------
    api_key : str
        The only key accepted (``Authorization: Bearer <key>``); others get a 401.
    respond : callable, optional
        ``respond(request: FakeRequest) -> str``, the content of the answer;
        `default_responder` if omitted.
    seed : int
        Mixed into every request's random draws.
    latency : float
        Seconds every answer waits (makes concurrency observable).
    timeout_delay : float
        Seconds an injected ``"timeout"`` waits before answering (longer than
        the client's timeout).
    embedding_dim : int
        Length of the embeddings ``/v1/embeddings`` returns.
    models : tuple of str, optional
        Model names accepted; any model if None. Others get a 404.

    Attributes
    ----------
    url : str
        The ``base_url`` to give the client (``http://127.0.0.1:PORT/v1``).
    """

    def __init__(
        self,
        *,
        api_key: str = "sk-test",
        respond: Callable[[FakeRequest], str] | None = None,
        seed: int = 0,
        latency: float = 0.0,
        timeout_delay: float = 2.0,
        embedding_dim: int = 32,
        models: tuple[str, ...] | None = None,
    ) -> None:
        self.api_key = api_key
        self.respond = respond or default_responder
        self.seed = seed
        self.latency = latency
        self.timeout_delay = timeout_delay
        self.retry_after = 0.0  # seconds a 429 tells the client to wait (the Retry-After header)
        self.embedding_dim = embedding_dim
        self.models = models
        self.faults: list[Fault] = []
        self.stats = _Stats()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control ---------------------------------------------------------------------------

    def start(self) -> FakeLLMServer:
        """Listen on a free port of 127.0.0.1 in a daemon thread."""
        server = self

        class Handler(_Handler):
            fake = server

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-llm", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the fake server is not running; call start()")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def inject(self, kind: str, *, match: str | None = None, times: int | None = None) -> Fault:
        """Make matching requests fail.

        Parameters
        ----------
        kind : str
            ``"429"`` or ``"500"`` (an error status), ``"timeout"`` (answer only
            after ``timeout_delay`` seconds), ``"malformed"`` (an answer that is
            not JSON but has ``field: value`` pairs a regex can read),
            ``"garbage"`` (an answer nothing can parse), ``"refusal"`` (the
            model refuses), ``"401"`` (the key is rejected), ``"400"`` (the
            request is refused as invalid).
        match : str, optional
            Only requests whose messages contain this text; all if None.
        times : int, optional
            How many matching requests fail; all of them if None.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; choose from {FAULT_KINDS}")
        fault = Fault(kind, match, times)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def reset_stats(self) -> None:
        with self._lock:
            self.stats = _Stats()

    # -- handling (called from the handler threads) ------------------------------------------

    def _take_fault(self, text: str) -> str | None:
        with self._lock:
            for fault in self.faults:
                if fault.applies(text):
                    if fault.times is not None:
                        fault.times -= 1
                    self.stats.faults[fault.kind] += 1
                    return fault.kind
        return None

    def _rng(self, identity: str) -> random.Random:
        return random.Random(int(hashlib.sha256(f"{self.seed}:{identity}".encode()).hexdigest()[:16], 16))


def _schema_of(body: dict) -> dict | None:
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return (fmt.get("json_schema") or {}).get("schema")
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str) and SCHEMA_MARKER in content:
            tail = content.split(SCHEMA_MARKER, 1)[1].strip()
            try:
                return json.JSONDecoder().raw_decode(tail)[0]
            except ValueError:
                return None
    return {"properties": {}} if fmt.get("type") == "json_object" else None


def _tokens(text: str) -> int:
    return max(1, len(re.findall(r"\w+|[^\w\s]", text)))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 drops connections when many clients open at once


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeLLMServer

    def setup(self) -> None:
        super().setup()
        # headers and body are written separately: without this, Nagle's algorithm and the
        # client's delayed ACK add 40 ms to every answer on a kept-alive connection
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests and notebooks read stderr
        pass

    def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout)
            self.close_connection = True

    def _error(self, status: int, message: str, kind: str, headers: dict | None = None) -> None:
        self._send(status, {"error": {"message": message, "type": kind, "code": None, "param": None}}, headers)

    def _authorized(self) -> bool:
        if self.headers.get("Authorization", "") == f"Bearer {self.fake.api_key}":
            return True
        self._error(401, "Incorrect API key provided.", "invalid_request_error")
        return False

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if not self._authorized():
            return
        if self.path.rstrip("/").endswith("/models"):
            names = self.fake.models or ("fake-model",)
            self._send(200, {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in names]})
        else:
            self._error(404, f"no route {self.path}", "not_found")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        with self.fake._lock:
            self.fake.stats.posts += 1
        if not self._authorized():
            return
        if self.path.endswith("/chat/completions"):
            self._chat(body)
        elif self.path.endswith("/embeddings"):
            self._embeddings(body)
        else:
            self._error(404, f"no route {self.path}", "not_found")

    def _embeddings(self, body: dict) -> None:
        fake = self.fake
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
        with fake._lock:
            fake.stats.embeddings += 1
        data = [{"object": "embedding", "index": i, "embedding": _embed(str(t), fake.embedding_dim)} for i, t in enumerate(inputs)]
        tokens = sum(_tokens(str(t)) for t in inputs)
        self._send(200, {"object": "list", "data": data, "model": body.get("model", ""),
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    def _chat(self, body: dict) -> None:
        fake = self.fake
        with fake._lock:
            fake.stats.requests += 1
            fake.stats.in_flight += 1
            fake.stats.max_in_flight = max(fake.stats.max_in_flight, fake.stats.in_flight)
        try:
            self._chat_answer(body)
        finally:
            with fake._lock:
                fake.stats.in_flight -= 1

    def _chat_answer(self, body: dict) -> None:
        fake = self.fake
        model = str(body.get("model", ""))
        messages = list(body.get("messages", []))
        if fake.models is not None and model not in fake.models:
            self._error(404, f"The model '{model}' does not exist.", "invalid_request_error")
            return
        text = "\n".join(str(m.get("content") or "") for m in messages)
        fault = fake._take_fault(text)
        if fault == "401":
            self._error(401, "Incorrect API key provided.", "invalid_request_error")
            return
        if fault == "400":
            self._error(400, "Invalid parameter: response_format is not supported.", "invalid_request_error")
            return
        if fault == "429":
            self._error(429, "Rate limit reached; try again.", "rate_limit_error",
                        {"Retry-After": f"{fake.retry_after:g}"})
            return
        if fault == "500":
            self._error(500, "The server had an error.", "server_error")
            return
        if fault == "timeout":
            time.sleep(fake.timeout_delay)
        elif fake.latency:
            time.sleep(fake.latency)
        seed = body.get("seed")
        identity = request_identity(model, messages, seed)
        prompt = next((str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"), "")
        request = FakeRequest(model, messages, seed, _schema_of(body), prompt, fake._rng(identity))
        content: str | None = fake.respond(request)
        refusal = None
        if fault == "refusal":
            content, refusal = None, "I'm sorry, but I can't help with that request."
        elif fault == "malformed":
            try:
                pairs = json.loads(content or "")
                content = "Sure! " + ", ".join(f"{k}: {v}" for k, v in pairs.items()) + " (my best guess)"
            except (ValueError, AttributeError):
                content = "Sure! " + str(content)
        elif fault == "garbage":
            content = "Hmm, hard to say."
        completion_tokens = _tokens(content or refusal or "")
        prompt_tokens = sum(_tokens(str(m.get("content") or "")) for m in messages)
        with fake._lock:
            fake.stats.answered[identity] += 1
            fake.stats.order.append(prompt)
            fake.stats.log.append(text)
            fake.stats.prompt_tokens += prompt_tokens
            fake.stats.completion_tokens += completion_tokens
        self._send(200, {
            "id": "chatcmpl-" + identity[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": "stop",
                "logprobs": None,
            }],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        })
