"""The collector as a raw ASGI app: routing, the export request flow, faults and control routes.

Raw ASGI, like the mock LLM, so the collector is not the bottleneck of the exports it
measures: an export is read, decoded by `decode`, accounted by `figures.Ledger` and
answered, with nothing logged per request but the bounded attempt log of its run. The
control routes (`/_collector/...`) are for the orchestrator, tests and benchmarks, and
answer only on loopback.

Routes:
  POST /v1/traces, POST /opentelemetry/v1/traces,  OTLP/HTTP exports (HoneyHive uses the second,
       POST /api/public/otel/v1/traces                Langfuse the third)
  POST /session/start                              HoneyHive's session creation
  GET  /v1/info                                    Logfire's token check
  GET  /_collector/stats[?run_id=X]                figures, all runs (and the placed fault windows) or one
  GET  /_collector/attempts?run_id=X               one run's attempt log
  POST /_collector/arm  {"t0_ns": N}               place the fault windows at N + start_s
  POST /_collector/reset[?run_id=X]                forget everything (the windows wait to be placed
                                                   again), or one run
  GET  /healthz
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from time import monotonic_ns, time_ns
from typing import Any
from urllib.parse import parse_qs

from loadgen.span_names import LANGFUSE_OTLP_PATH
from loadgen.serving import arm_answer

from .config import FAULT_KINDS, HTTP_FAULT_STATUS, CollectorConfig
from .conventions import compile_required
from .decode import JSON, PROTOBUF, BadRequest, decode, decompress, encoding_of, spans_by_run
from .faults import NO_FAULTS, FaultPlan
from .figures import Ledger, RunFigures
from .wire import (
    MEDIA_TYPE, Receive, Scope, Send, export_response, read_body, request_headers, reset_connection, retry_after,
    send_bytes, send_json, send_status, wait_unless_gone,
)

EXPORT_PATHS = ("/v1/traces", "/opentelemetry/v1/traces", LANGFUSE_OTLP_PATH)
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_MAX_OTHER_ROUTES = 100  # distinct unknown routes counted; more are lumped under "..."


class CollectorApp:
    """ASGI app receiving OTLP/HTTP trace exports and keeping the figures of `figures.Ledger`."""

    def __init__(self, config: CollectorConfig, now_ns: Callable[[], int] = monotonic_ns) -> None:
        self.config = config
        # The clock of arrivals and fault windows (the delay fault sleeps on the loop's): tests
        # on a clock.VirtualClock's loop pass its now_ns. Receive wall times stay time_ns().
        self._now_ns = now_ns
        self._plan = FaultPlan(config)
        # With faults_from "armed", traffic never places the windows: only POST /_collector/arm does.
        self._armed_by_traffic = config.faults_from == "first_request"
        self.ledger = Ledger(compile_required(config.required_attributes))
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._seq = 0  # export sequence number: seeds each export's fault draws
        self.requests = 0
        self.bytes = 0
        self.accepted = 0
        self.bad_requests = 0
        self.abandoned = 0  # clients that hung up during a delay fault; nothing ingested
        self.by_path = dict.fromkeys(EXPORT_PATHS, 0)
        self.by_encoding = {PROTOBUF: 0, JSON: 0}
        self.compressed = 0
        self.faults = dict.fromkeys(FAULT_KINDS, 0)
        self.session_starts = 0
        self.token_checks = 0
        self.other_routes: dict[str, int] = {}
        self.first_receive_ns: int | None = None
        self.last_receive_ns: int | None = None

    def stats(self, run_id: str | None = None) -> dict[str, Any]:
        """One run's figures, or the request totals with every run's figures under "runs"."""
        if run_id is not None:
            figures = self.ledger.runs.get(run_id)
            return (figures or RunFigures(run_id)).to_json()
        return {
            "requests": self.requests,
            "bytes": self.bytes,
            "accepted_requests": self.accepted,
            "bad_requests": self.bad_requests,
            "abandoned_requests": self.abandoned,
            "by_path": dict(self.by_path),
            "by_encoding": dict(self.by_encoding),
            "compressed_requests": self.compressed,
            "faults": dict(self.faults),
            "session_starts": self.session_starts,
            "token_checks": self.token_checks,
            "other_routes": dict(self.other_routes),
            "first_receive_ns": self.first_receive_ns,
            "last_receive_ns": self.last_receive_ns,
            "fault_windows": self._plan.windows(),
            "runs": {name: figures.to_json() for name, figures in sorted(self.ledger.runs.items())},
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # served with lifespan off; nothing else is spoken
        path, method = scope["path"], scope["method"]
        if method == "POST" and path in self.by_path:
            await self._serve_export(path, scope, receive, send)
        elif method == "POST" and path == "/session/start":
            await self._session_start(scope, receive, send)
        elif method == "GET" and path == "/v1/info":
            await self._token_check(receive, send)
        else:
            await self._serve_other(path, method, scope, receive, send)

    # --- exports ----------------------------------------------------------------------------

    async def _serve_export(self, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        # Stamped before the body is read: fault windows and receive times are from arrival.
        arrival, arrival_wall = self._now_ns(), time_ns()
        if self._armed_by_traffic and self._plan.enabled and not self._plan.armed:
            self._plan.arm(arrival)
        if self._plan.enabled and self._plan.down(arrival):
            await self._down(scope, receive, arrival)
            return
        seq = self._seq
        self._seq += 1
        self.requests += 1
        self.by_path[path] += 1
        if self.first_receive_ns is None:
            self.first_receive_ns = arrival
        self.last_receive_ns = arrival
        body = await read_body(receive)
        if body is None:
            return
        self.bytes += len(body)
        drawn = self._plan.draw(seq, arrival) if self._plan.enabled else NO_FAULTS
        content_type, content_encoding = request_headers(scope)
        try:
            encoding = encoding_of(content_type)
        except BadRequest as exc:
            self.bad_requests += 1
            self._attribute(body, content_type, content_encoding, "bad_request", arrival)
            await send_status(send, exc.status, str(exc), JSON)
            return
        self.by_encoding[encoding] += 1
        if drawn.delay_s:
            self.faults["delay"] += 1
            if not await wait_unless_gone(receive, drawn.delay_s):
                self.abandoned += 1
                self._attribute(body, content_type, content_encoding, "abandoned", arrival)
                return
        fault = drawn.fault
        if fault is not None:
            self.faults[fault.kind] += 1
            status = HTTP_FAULT_STATUS.get(fault.kind)
            if status is not None:
                self._attribute(body, content_type, content_encoding, fault.kind, arrival)  # outcome: the kind
                await send_status(send, status, f"{fault.kind} fault", encoding, retry_after(fault.retry_after_s))
                return
            if fault.kind == "reset":
                self._attribute(body, content_type, content_encoding, "reset", arrival)
                await reset_connection(scope, receive)
                return
        try:
            if content_encoding:
                self.compressed += 1
            resources = decode(decompress(body, content_encoding), encoding)
        except BadRequest as exc:
            self.bad_requests += 1
            self._attribute(body, content_type, content_encoding, "bad_request", arrival)
            await send_status(send, exc.status, str(exc), encoding)
            return
        rejected = 0
        if fault is not None and fault.kind == "partial_success":
            # The last ceil(n * fraction) spans of the request are the rejected ones.
            rejected = math.ceil(sum(len(rows) for _, rows in resources) * fault.reject_fraction)
        self.ledger.add_request(resources, len(body), rejected, arrival, arrival_wall)  # an accepted attempt too
        self.accepted += 1
        await send_bytes(send, 200, export_response(encoding, rejected), MEDIA_TYPE[encoding])

    async def _down(self, scope: Scope, receive: Receive, arrival: int) -> None:
        """An export arriving while the collector is down: read it, attribute the attempt, reset
        the connection. Reading first costs the client nothing it can see: it sends the whole
        request either way, and gets a reset instead of an answer."""
        body = await read_body(receive)
        if body is None:
            return
        self.faults["down"] += 1
        self._attribute(body, *request_headers(scope), "down", arrival)
        await reset_connection(scope, receive)

    def _attribute(self, body: bytes, content_type: bytes, content_encoding: bytes, outcome: str,
                   arrival: int) -> None:
        """Record an export that was not ingested as an attempt on each run it carries spans of."""
        try:
            spans = spans_by_run(decompress(body, content_encoding), encoding_of(content_type))
        except BadRequest:
            spans = {}  # unreadable: an attempt on run ""
        self.ledger.add_attempt(spans, outcome, arrival)

    # --- HoneyHive's session, Logfire's token check and control routes --------------------------------------------------

    async def _session_start(self, scope: Scope, receive: Receive, send: Send) -> None:
        """HoneyHive 1.7's POST /session/start: body {"session": {...}}, answer a session event.

        The SDK validates the answer as PostSessionStartResponse, whose required fields are
        event_id, session_id, org_id, workspace_id and project_id; a session_id it sent is
        echoed back (it keeps its own id only if the answer carries the same one).
        """
        if self._plan.enabled and self._plan.down(self._now_ns()):
            self.faults["down"] += 1
            await reset_connection(scope, receive)
            return
        body = await read_body(receive)
        if body is None:
            return
        self.session_starts += 1
        try:
            request = json.loads(body or b"{}")
            session = request.get("session", request) if isinstance(request, dict) else {}
            session_id = str(session.get("session_id") or uuid.uuid4()) if isinstance(session, dict) else None
        except ValueError:
            session_id = None
        if session_id is None:
            await send_json(send, 400, {"error": 'expected a JSON body {"session": {...}}'})
            return
        await send_json(send, 200, {
            "session_id": session_id, "event_id": session_id, "event_type": "session",
            "org_id": "loadgen", "workspace_id": "loadgen", "project_id": "loadgen",
        })

    async def _token_check(self, receive: Receive, send: Send) -> None:
        """Logfire's token check (logfire 5.4, LogfireCredentials.from_token): a 200 answer
        must carry `project_name` and `project_url`; any other answer is a warning."""
        await read_body(receive)
        self.token_checks += 1
        await send_json(send, 200, {"project_name": "loadgen", "project_url": "http://127.0.0.1/loadgen"})

    async def _serve_other(self, path: str, method: str, scope: Scope, receive: Receive, send: Send) -> None:
        if path == "/healthz":
            await send_json(send, 200, {"ok": True})
            return
        if not path.startswith("/_collector/"):
            route = f"{method} {path}"
            if route in self.other_routes or len(self.other_routes) < _MAX_OTHER_ROUTES:
                self.other_routes[route] = self.other_routes.get(route, 0) + 1
            else:
                self.other_routes["..."] = self.other_routes.get("...", 0) + 1
            await send_json(send, 404, {"error": f"no route {route}"})
            return
        client = scope.get("client")
        if client is not None and client[0] not in _LOOPBACK:
            await send_json(send, 403, {"error": "control routes answer on loopback only"})
            return
        body = await read_body(receive)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        run_id = query.get("run_id", [None])[0]  # "?run_id=" is the run of spans without a run id
        if (method, path) == ("GET", "/_collector/stats"):
            await send_json(send, 200, self.stats(run_id))
        elif (method, path) == ("GET", "/_collector/attempts"):
            if run_id is None:
                await send_json(send, 400, {"error": "GET /_collector/attempts needs ?run_id=X"})
                return
            await send_json(send, 200, (self.ledger.runs.get(run_id) or RunFigures(run_id)).attempts_json())
        elif (method, path) == ("POST", "/_collector/arm"):
            await send_json(send, *arm_answer(self._plan, body))
        elif (method, path) == ("POST", "/_collector/reset"):
            if run_id is None:
                self.ledger.reset()
                self._reset_counters()
                self._plan.disarm()
            else:
                self.ledger.reset(run_id)
            await send_json(send, 200, {"ok": True})
        else:
            await send_json(send, 404, {"error": f"no route {method} {path}"})


def create_app(config: CollectorConfig, now_ns: Callable[[], int] = monotonic_ns) -> CollectorApp:
    """The collector as an ASGI app, e.g. for `httpx2.ASGITransport(app=create_app(cfg))` in tests;
    `now_ns` is its clock (a clock.VirtualClock's, to run it in virtual time)."""
    return CollectorApp(config, now_ns)
