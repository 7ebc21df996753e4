"""Running the collector under uvicorn on a socket of its own, until SIGTERM or SIGINT.

Served the same way as the mock LLM (`loadgen.serving`): the socket is bound before
uvicorn starts, so with port 0 the actual port is known up front and reported through
`on_ready` once the server accepts connections.

The one difference is uvicorn's HTTP protocol: the collector's subclass hands each
request a callable that resets its TCP connection (SO_LINGER 0, then abort), which the
`reset` and `down` faults use. A client then sees ECONNRESET, as from a collector
that crashed or was restarted mid-request, instead of an HTTP answer.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from loadgen.serving import serve_app

from .app import create_app
from .config import CollectorConfig
from .wire import RESET_EXTENSION

_LINGER_RESET = struct.pack("ii", 1, 0)  # l_onoff=1, l_linger=0: close() sends RST


class _ResettableProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus a per-request extension that resets the connection."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {RESET_EXTENSION: self._reset_connection}

    def _reset_connection(self) -> None:
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            except OSError:
                pass  # a plain close then: the client still gets no answer
        self.transport.abort()


def serve(
    config: CollectorConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Serve the collector on host:port until SIGTERM/SIGINT, then return.

    With port 0 a free port is chosen; `on_ready(port)` is called with the actual port
    once the server accepts connections. Raises OSError if the address cannot be bound.
    """
    serve_app(create_app(config), host, port, on_ready, http=_ResettableProtocol)
