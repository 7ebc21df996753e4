"""Running the mock under uvicorn on a socket of its own (see loadgen.serving)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from loadgen.serving import bind_socket, serve_app

from .app import StreamCut, create_app
from .config import MockConfig

__all__ = ["bind_socket", "serve"]


class _DropStreamCuts(logging.Filter):
    """Keeps the deliberate connection drops of the stream_cut fault out of uvicorn's error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, StreamCut)


MOCK_KEEP_ALIVE_S = 60.0


def serve(
    config: MockConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Serve the mock on host:port until SIGTERM/SIGINT, then return (port 0: a free one,
    reported through `on_ready`). Raises OSError if the address cannot be bound."""
    logging.getLogger("uvicorn.error").addFilter(_DropStreamCuts())
    # Precise timers (the default): the mock's latencies are known answers, to the
    # microsecond, not the millisecond (serving.serve_app). Idle connections live for a minute: while one arm
    # runs its block another arm's connections sit idle, and uvicorn's default of 5 s
    # would close them, so its next block would open new ones (a real server may; the
    # mock's job is to add no noise of its own).
    serve_app(create_app(config), host, port, on_ready, http="httptools", precise_timers=config.precise_timers,
              keep_alive_s=MOCK_KEEP_ALIVE_S)
