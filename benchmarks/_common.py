"""Shared by the benchmark scripts: a standalone mock, loadgen runs, reading results."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_json(url: str, body: dict | None = None, method: str | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method or ("POST" if body is not None else "GET"),
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@contextmanager
def standalone_mock(ttft_ms: float, itl_ms: float = 0.0, core: int | None = 1):
    """`loadgen mock` in its own process (pinned to `core` when the machine has it)."""
    port = free_port()
    cmd = [PYTHON, "-m", "loadgen.cli", "mock", "--port", str(port), "--ttft-ms", str(ttft_ms), "--itl-ms", str(itl_ms)]
    if core is not None and len(os.sched_getaffinity(0)) > core:
        cmd = ["taskset", "-c", str(core)] + cmd
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                http_json(url + "/healthz")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("mock did not start")
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def loadgen_run(*args: str, timeout: float = 600) -> tuple[int, dict]:
    """Run `loadgen run ARGS --export-json TMP --quiet`; return (exit code, document)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        done = subprocess.run([PYTHON, "-m", "loadgen.cli", "run", *args, "--export-json", str(out), "--quiet"],
                              cwd=REPO, capture_output=True, text=True, timeout=timeout)
        if not out.exists():
            raise RuntimeError(f"loadgen wrote no results (exit {done.returncode}): {done.stderr.strip()}")
        return done.returncode, json.loads(out.read_text())


def command_line() -> str:
    return " ".join([".venv/bin/python", *[os.path.relpath(a, REPO) if a.startswith(str(REPO)) else a for a in sys.argv]])
