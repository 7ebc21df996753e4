"""Serving an ASGI app under uvicorn on a socket of its own, until SIGTERM or SIGINT.

Shared by the embedded mock LLM and the embedded collector. The socket is bound before
uvicorn starts, so with port 0 the actual port is known up front and reported through
`on_ready` once the server is accepting connections.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Generator
from typing import Any

import uvicorn

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
    sock = socket.socket(family, socket.SOCK_STREAM)
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
) -> None:
    """Serve `app` on host:port until SIGTERM/SIGINT, then return.

    With port 0 a free port is chosen; `on_ready(port)` is called with the actual port
    once the server accepts connections. Raises OSError if the address cannot be bound.
    """
    sock = bind_socket(host, port)
    actual_port = sock.getsockname()[1]
    uv_config = uvicorn.Config(
        app,
        host=host,
        port=actual_port,
        loop="uvloop",
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
        server.run(sockets=[sock])
    finally:
        sock.close()
