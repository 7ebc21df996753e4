"""The mock LLM as a raw ASGI app: routing, the request flow both API dialects share, and counters.

Raw ASGI rather than a framework because the mock must not be the bottleneck of the load
it measures: the two API routes are a dict lookup away from the request, render JSON
from prefixes, and log nothing per request but the bounded fault log. The control routes
(`/_mock/...`, `/healthz`) are for tests, benchmarks and the harness, and answer only on
loopback.

Routes:
  POST /v1/chat/completions, POST /v1/messages   the OpenAI and Anthropic APIs
  GET  /_mock/stats                              counters, and the placed fault windows
  GET  /_mock/arrivals                           arrival times of the API requests
  GET  /_mock/faults                             the fault log: one entry per request a fault hit
  POST /_mock/arm      {"t0_ns": N}              place the fault windows at N + start_s
  POST /_mock/stall    {"seconds": S}            hold every response for S seconds
  POST /_mock/reset                              forget counters and logs; the windows wait to be placed again
  GET  /healthz
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from time import monotonic_ns
from typing import Any, Protocol

import httpx2

from loadgen.serving import arm_answer

from . import anthropic_api, openai_api
from .config import HTTP_FAULT_STATUS, MockConfig
from .faults import NO_FAULTS, Drawn, FaultLog, FaultPlan, Pacer, StallGate
from .latency import BadRequestError, Job, LatencyModel, chunk_count, chunk_texts, filler_text

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]


class StreamFrames(Protocol):
    """The SSE frames of one streamed response, in a dialect's wire format."""

    def head(self) -> bytes: ...  # sent at once: carries no text
    def delta(self, text: str) -> bytes: ...
    def tail(self, usage: bool = True) -> bytes: ...  # the closing frames of a complete response
    def malformed(self) -> bytes: ...  # an event whose data is not JSON
    def error(self) -> bytes: ...  # a mid-stream error that ends the stream


class Dialect(Protocol):
    """One API family; the modules `openai_api` and `anthropic_api` are the two implementations."""

    NAME: str
    REQUEST_ID_HEADER: bytes

    def parse(self, body: bytes, default_output_tokens: int) -> Job: ...
    def error_body(self, status: int, message: str | None = None) -> bytes: ...
    def completion(self, job: Job, seq: int, text: str, usage: bool = True) -> bytes: ...
    def Frames(self, job: Job, seq: int) -> StreamFrames: ...  # noqa: N802 - the dialect's Frames class


MAX_ARRIVALS = 2_000_000
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_API_ROUTES: dict[str, Dialect] = {
    "/v1/chat/completions": openai_api,
    "/v1/messages": anthropic_api,
}
_JSON = (b"content-type", b"application/json")
_SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
# Faults that strike half-way through generation, streaming or not.
_HALF_WAY = frozenset({"stream_error", "stream_cut"})
# ... and, streaming, these too: the malformed event goes where the next delta would have.
_HALF_WAY_STREAMED = _HALF_WAY | {"malformed_json"}


class StreamCut(httpx2.RemoteProtocolError):
    """Raised to make the server drop the connection mid-response (the stream_cut fault).

    uvicorn closes the connection when an app raises after the response started. The
    class is httpx2's "peer closed the connection" error so that a client calling the app
    in-process through httpx2.ASGITransport sees the same error as one on a socket.
    """


def _body_message(body: bytes, more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": body, "more_body": more}


async def _send_bytes(send: Send, status: int, body: bytes, headers: Headers) -> None:
    headers = [_JSON, (b"content-length", b"%d" % len(body)), *headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send(_body_message(body))


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None if the client went away first."""
    message = await receive()
    if message["type"] != "http.request":
        return None
    body = message.get("body", b"")
    while message.get("more_body", False):
        message = await receive()
        if message["type"] != "http.request":
            return None
        body += message.get("body", b"")
    return body


class MockApp:
    """ASGI app serving the OpenAI and Anthropic APIs with seeded latency and faults.

    What each response-changing fault sends (`FaultSpec` lists them; what each SDK makes
    of it is in `openai_api` and `anthropic_api`):
      http_*, overloaded_529  that status and the dialect's error body, before any body
      stream_error   non-streaming: a 500 half-way through generation; streaming: half
                     the content deltas, then the dialect's error event
      stream_cut     half the response (deltas, or the first half of the body), then the
                     connection drops
      malformed_json non-streaming: a 200 at the usual time whose body is the first half of
                     the completion (content-length says so: the message is whole, its JSON
                     broken); streaming: half the deltas, one event whose data is a delta
                     cut off inside its JSON, then at once the closing frames
      no_usage       the whole answer, at the usual times, without token usage:
                     non-streaming, the body has no `usage`; streaming OpenAI, no usage-only
                     chunk even with stream_options.include_usage; streaming Anthropic, the
                     message_delta has no `usage` (message_start keeps its usage, as always
                     input_tokens and output_tokens 1)
    Each request a fault changes gets one entry in the fault log (`GET /_mock/faults`),
    and so does each response a stall holds; the log and `stats()["faults"]` agree.
    """

    def __init__(self, config: MockConfig, now_ns: Callable[[], int] = monotonic_ns) -> None:
        self.config = config
        # The clock of arrivals, fault windows, stalls and the latency schedule; its sleeps
        # are the loop's, so tests on a clock.VirtualClock's loop pass its now_ns.
        self._now_ns = now_ns
        self._latency = LatencyModel(config)
        self._plan = FaultPlan(config)
        # With faults_from "armed", traffic never places the windows: only POST /_mock/arm does.
        self._armed_by_traffic = config.faults_from == "first_request"
        self._gate = StallGate(now_ns)
        self._tokens_per_chunk = config.tokens_per_chunk
        self._default_tokens = config.default_output_tokens
        self.in_flight = 0
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._seq = 0  # request sequence number: seeds each request's latency and fault draws
        self.requests = 0
        self.streaming = 0
        self.by_api = {openai_api.NAME: 0, anthropic_api.NAME: 0}
        self.fault_log = FaultLog()
        self.first_request_ns: int | None = None
        self.arrivals: deque[int] = deque(maxlen=MAX_ARRIVALS)

    def stats(self) -> dict[str, Any]:
        """Counters since start or reset; faults["stall"] counts responses a stall held up."""
        return {
            "requests": self.requests,
            "by_api": dict(self.by_api),
            "streaming": self.streaming,
            "in_flight": self.in_flight,
            "faults": dict(self.fault_log.counts),
            "first_request_ns": self.first_request_ns,
            "fault_windows": self._plan.windows(),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await _lifespan(receive, send)
            return
        dialect = _API_ROUTES.get(scope["path"])
        if dialect is not None and scope["method"] == "POST":
            await self._serve_api(dialect, receive, send)
        else:
            await self._serve_other(dialect, scope, receive, send)

    # --- the API request flow -------------------------------------------------------------

    async def _serve_api(self, dialect: Dialect, receive: Receive, send: Send) -> None:
        # Arrival is stamped before reading the body: it is when the request reached the
        # mock, which is what /_mock/arrivals reports and what fault windows are timed by.
        arrival = self._now_ns()
        seq = self._seq
        self._seq += 1
        self.requests += 1
        self.by_api[dialect.NAME] += 1
        self.arrivals.append(arrival)
        if self.first_request_ns is None:
            self.first_request_ns = arrival
            if self._armed_by_traffic and not self._plan.armed:
                self._plan.arm(arrival)
        self.in_flight += 1
        try:
            body = await _read_body(receive)
            if body is None:
                return
            request_id = [(dialect.REQUEST_ID_HEADER, b"req_mock%d" % seq)]
            try:
                job = dialect.parse(body, self._default_tokens)
            except BadRequestError as exc:
                await _send_bytes(send, 400, dialect.error_body(400, str(exc)), request_id)
                return
            if job.stream:
                self.streaming += 1
            drawn = self._plan.draw(seq, arrival) if self._plan.enabled else NO_FAULTS
            request = (seq, arrival, dialect.NAME, job.stream)  # as the fault log has it
            pacer = Pacer(self._gate, drawn.stalls, self.fault_log, request)
            # A request arriving in a stall is not answered until the stall ends; its whole
            # schedule, TTFT included, starts from there.
            start = arrival + await pacer.wait(0)
            fault = drawn.fault.kind if drawn.fault is not None else None
            if fault is not None:
                self.fault_log.add(fault, request)
                status = HTTP_FAULT_STATUS.get(fault)
                if status is not None:
                    await _send_bytes(send, status, dialect.error_body(status), request_id + _retry_after(drawn))
                    return
            if job.stream:
                await self._stream(dialect, job, seq, start, pacer, fault, request_id, receive, send)
            else:
                await self._complete(dialect, job, seq, start, pacer, fault, request_id, send)
        finally:
            self.in_flight -= 1

    async def _complete(self, dialect: Dialect, job: Job, seq: int, start: int, pacer: Pacer,
                        fault: str | None, request_id: Headers, send: Send) -> None:
        """A non-streaming answer, sent when the last content delta would have been due."""
        total = self._latency.total_ns(seq, chunk_count(job.output_tokens, self._tokens_per_chunk))
        if fault in _HALF_WAY:
            # stream_error / stream_cut strike half-way through generation, as in a stream.
            await pacer.wait(start + total // 2)
            if fault == "stream_error":
                await _send_bytes(send, 500, dialect.error_body(500), request_id)
                return
            body = dialect.completion(job, seq, filler_text(0, job.output_tokens))
            headers = [_JSON, (b"content-length", b"%d" % len(body)), *request_id]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send(_body_message(body[: len(body) // 2], more=True))
            raise StreamCut(f"stream_cut fault on request {seq}")
        await pacer.wait(start + total)
        body = dialect.completion(job, seq, filler_text(0, job.output_tokens), usage=fault != "no_usage")
        if fault == "malformed_json":
            body = _first_half(body)
        await _send_bytes(send, 200, body, request_id)

    async def _stream(self, dialect: Dialect, job: Job, seq: int, start: int, pacer: Pacer,
                      fault: str | None, request_id: Headers, receive: Receive, send: Send) -> None:
        """An SSE answer: head frames at once, content deltas on the latency schedule, then the tail."""
        frames = dialect.Frames(job, seq)
        await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS + request_id})
        await send(_body_message(frames.head(), more=True))
        chunks = chunk_count(job.output_tokens, self._tokens_per_chunk)
        fail_at = chunks // 2 if fault in _HALF_WAY_STREAMED else -1
        # A client that goes away ends the stream, rather than leaving it to run to its end.
        gone = asyncio.ensure_future(receive())
        try:
            gaps = self._latency.gaps(seq)
            deadline = start
            for index, text in enumerate(chunk_texts(job.output_tokens, self._tokens_per_chunk)):
                if index == fail_at:
                    break
                deadline += next(gaps)
                deadline += await pacer.wait(deadline)  # a stall shifts the rest of the schedule
                if gone.done():
                    return
                await send(_body_message(frames.delta(text), more=True))
            await pacer.wait(0)  # the closing frames wait out a stall too
            if gone.done():
                return
            if fault == "stream_error":
                await send(_body_message(frames.error()))
            elif fault == "stream_cut":
                raise StreamCut(f"stream_cut fault on request {seq}")
            elif fault == "malformed_json":
                await send(_body_message(frames.malformed() + frames.tail()))
            else:
                await send(_body_message(frames.tail(usage=fault != "no_usage")))
        finally:
            gone.cancel()

    # --- control routes ---------------------------------------------------------------------

    async def _serve_other(self, dialect: Dialect | None, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if dialect is not None:  # an API path with the wrong method
            await _send_bytes(send, 404, dialect.error_body(404, f"{method} {path} is not supported"), [])
            return
        if path == "/healthz":
            await _send_json(send, 200, {"ok": True})
            return
        if not path.startswith("/_mock/"):
            await _send_json(send, 404, {"error": f"no route {method} {path}"})
            return
        client = scope.get("client")
        if client is not None and client[0] not in _LOOPBACK:
            await _send_json(send, 403, {"error": "control routes answer on loopback only"})
            return
        body = await _read_body(receive)
        route = (method, path)
        if route == ("GET", "/_mock/stats"):
            await _send_json(send, 200, self.stats())
        elif route == ("GET", "/_mock/arrivals"):
            await _send_json(send, 200, {"arrivals_ns": list(self.arrivals)})
        elif route == ("GET", "/_mock/faults"):
            await _send_json(send, 200, self.fault_log.to_json())
        elif route == ("POST", "/_mock/arm"):
            await _send_json(send, *arm_answer(self._plan, body))
        elif route == ("POST", "/_mock/reset"):
            self._reset_counters()
            self._gate.clear()
            self._plan.disarm()
            await _send_json(send, 200, {"ok": True})
        elif route == ("POST", "/_mock/stall"):
            seconds = _stall_seconds(body)
            if seconds is None:
                await _send_json(send, 400, {"error": 'expected a JSON body {"seconds": S} with S >= 0'})
                return
            self._gate.start(seconds)
            await _send_json(send, 200, {"ok": True, "seconds": seconds})
        else:
            await _send_json(send, 404, {"error": f"no route {method} {path}"})


def _retry_after(drawn: Drawn) -> Headers:
    seconds = drawn.fault.retry_after_s if drawn.fault is not None else None
    if seconds is None:
        return []
    # Both SDKs read retry-after-ms first, then retry-after (seconds, fractions allowed).
    return [(b"retry-after", b"%g" % seconds), (b"retry-after-ms", b"%d" % round(seconds * 1000))]


def _first_half(body: bytes) -> bytes:
    """The first half of a JSON body, cut on a character boundary: never valid JSON."""
    return body[: len(body) // 2].decode(errors="ignore").encode()


def _stall_seconds(body: bytes | None) -> float | None:
    try:
        seconds = json.loads(body or b"")["seconds"]
    except (ValueError, KeyError, TypeError):
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
        return None
    return float(seconds)


async def _send_json(send: Send, status: int, obj: Any) -> None:
    await _send_bytes(send, status, json.dumps(obj, separators=(",", ":")).encode(), [])


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_app(config: MockConfig, now_ns: Callable[[], int] = monotonic_ns) -> MockApp:
    """The mock as an ASGI app, e.g. for `httpx2.ASGITransport(app=create_app(cfg))` in tests;
    `now_ns` is its clock (a clock.VirtualClock's, to run it in virtual time)."""
    return MockApp(config, now_ns)
