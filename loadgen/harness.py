"""The harness: the embedded mock LLM and collector, each in a process of its own.

The client under test never shares an event loop with the server it measures. With two or
more cores the harness is pinned to the last core and the workers take the others in turn,
so they do not steal each other's time.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import urllib.request
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import urlencode, urlsplit

from loadgen.collector.config import CollectorConfig
from loadgen.errors import ExitCode, UserError
from loadgen.mock_llm.config import MockConfig
from loadgen.profile import Profile
from loadgen.processes import exit_with_parent, pin_to, spawn_context

HARNESS_START_TIMEOUT_S = 20.0


def _harness_main(kind: str, config: MockConfig | CollectorConfig, ready_queue, cpu: int | None) -> None:
    # A process group of its own: the terminal's Ctrl-C must not stop the mock or the
    # collector while the workers drain their last calls and flush their last spans;
    # the orchestrator terminates them at the end.
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent()
    pin_to(cpu)
    # The config arrives as the validated object it is; the server is imported here only.
    if kind == "mock":
        from loadgen.mock_llm import serve
    else:
        from loadgen.collector import serve
    serve(config, host="127.0.0.1", port=0, on_ready=ready_queue.put)


@contextmanager
def _harness(kind: str, config: MockConfig | CollectorConfig, cpu: int | None) -> Iterator[str]:
    """Start the embedded mock LLM or collector in its own process; yield http://127.0.0.1:PORT."""
    ctx = spawn_context()
    ready = ctx.Queue()
    proc = ctx.Process(target=_harness_main, args=(kind, config, ready, cpu), name=f"loadgen-{kind}", daemon=True)
    proc.start()
    try:
        try:
            port = ready.get(timeout=HARNESS_START_TIMEOUT_S)
        except queue.Empty:
            raise UserError(f"the embedded {kind} did not start within 20 s", ExitCode.FAILURE) from None
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()


def embedded_mock(profile: Profile, cpu: int | None = None):
    return _harness("mock", profile.mock, cpu)


def embedded_collector(profile: Profile, cpu: int | None = None):
    return _harness("collector", profile.collector, cpu)


def control(url: str, path: str, body: dict | None = None, timeout_s: float = 10.0) -> dict | None:
    """GET (or, with a body, POST as JSON) one of a server's control routes; its JSON answer, or None
    when it cannot tell (not there, not JSON: an external receiver)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{url.rstrip('/')}{path}", data=data, method="GET" if body is None else "POST",
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            answer = json.loads(response.read())
    except (OSError, ValueError):
        return None
    return answer if isinstance(answer, dict) else None


def collector_figures(collector_url: str, run_id: str) -> dict | None:
    """The collector's figures for one run, or None when it cannot tell (an external receiver)."""
    data = control(collector_url, f"/_collector/stats?{urlencode({'run_id': run_id})}")
    if data is None:
        return None
    return data.get("runs", {}).get(run_id, data if data.get("run_id") == run_id else None)


def check_reachable(url: str, timeout_s: float = 3.0, what: str = "target") -> None:
    """Raise UserError(UNREACHABLE) naming the URL when nothing accepts a TCP connection."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise UserError(f"{url}: not a URL with a host", ExitCode.USAGE)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(f"{what} unreachable: {url} ({reason})", ExitCode.UNREACHABLE) from None
