"""Serving an ASGI app under uvicorn on a socket of its own, until SIGTERM or SIGINT.

Shared by the embedded mock LLM and the embedded collector. The socket is bound before
uvicorn starts, so with port 0 the actual port is known up front and reported through
`on_ready` once the server is accepting connections. Their control routes share the
answer to an arm request (`arm_answer`).
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
from collections.abc import Callable, Generator
from typing import Any

import uvicorn

def arm_answer(plan, body: bytes | None) -> tuple[int, dict]:
    """Place a fault plan's windows at the t0_ns of an arm request's body {"t0_ns": N}
    (POST /_mock/arm, /_collector/arm); the status and JSON to answer with."""
    try:
        t0_ns = json.loads(body or b"")["t0_ns"]
    except (ValueError, KeyError, TypeError):
        t0_ns = None
    if isinstance(t0_ns, bool) or not isinstance(t0_ns, int) or t0_ns < 0:
        return 400, {"error": 'expected a JSON body {"t0_ns": N}, N an integer time.monotonic_ns() value'}
    plan.arm(t0_ns)
    return 200, {"ok": True, "windows": plan.windows()}


# Seconds that in-flight requests get to finish after SIGTERM before they are cancelled.
GRACEFUL_SHUTDOWN_S = 2


class QuietServer(uvicorn.Server):
    """uvicorn's server that reports readiness and returns on a signal instead of re-raising it."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and not self.should_exit:
            self._on_started()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # uvicorn re-raises a captured signal after shutting down, which would kill the
        # process (SIGTERM) or raise KeyboardInterrupt (SIGINT) out of serve(); the server
        # instead stops cleanly and returns. A signal the process ignores stays ignored.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = [sig for sig in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(sig) is not signal.SIG_IGN]
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port); port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on accepted sockets
    # whose proto says TCP, and with Nagle on, a response written in two parts waits for
    # the client's delayed ACK (+40 ms a call, measured on the asyncio loop).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def serve_app(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    on_ready: Callable[[int], None] | None = None,
    http: Any = "httptools",
    precise_timers: bool = False,
    keep_alive_s: float = 5,
) -> None:
    """Serve `app` on host:port until SIGTERM/SIGINT, then return.

    With port 0 a free port is chosen; `on_ready(port)` is called with the actual port
    once the server accepts connections. Raises OSError if the address cannot be bound.

    `precise_timers`: run on loadgen's µs-precise asyncio loop (loadgen.clock) instead of
    uvloop. uvloop (libuv) keeps its clock in whole milliseconds, so a server's sleep ends
    up to 1 ms late by an amount set by the request's phase within the millisecond; at a
    constant rate every request of a block shares one phase, and each block then carries
    its own random offset (measured: block means of an A/A run spread with sd ≈ 0.3 ms
    while the pairs within a block spread ≈ 0.07 ms). A server whose latencies are a known
    answer should not add that.
    """
    sock = bind_socket(host, port)
    actual_port = sock.getsockname()[1]
    uv_config = uvicorn.Config(
        app,
        host=host,
        port=actual_port,
        loop="none" if precise_timers else "uvloop",
        timeout_keep_alive=keep_alive_s,
        http=http,
        lifespan="off",
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    server = QuietServer(uv_config, on_started=lambda: on_ready(actual_port) if on_ready else None)
    try:
        if precise_timers:
            from loadgen import clock

            clock.run(server.serve(sockets=[sock]))
        else:
            server.run(sockets=[sock])
    finally:
        sock.close()
