"""The orchestrator: starts the harness and the workers, shows progress, collects results.

It sends no load itself. The embedded mock LLM runs in a harness process of its own so
the client under test never shares an event loop with the server it measures; each
provider (and later each arm) runs in its own worker process. With two or more cores the
harness and the workers are pinned to different cores so they do not steal each other's
time.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator
from urllib.parse import urlsplit

from loadgen.errors import ExitCode, UserError
from loadgen.profile import Profile
from loadgen.providers import provider_base_url
from loadgen.worker import WorkerSpec, worker_main

API_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
PLACEHOLDER_KEY = "loadgen-no-key"
HARNESS_START_TIMEOUT_S = 20.0


@dataclass
class RunOutcome:
    results: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False
    target: str = ""


def _ctx():
    # spawn, not fork: a worker must start clean, with no SDK patched by anyone else.
    return mp.get_context("spawn")


def _cores() -> tuple[int | None, int | None]:
    """(worker core, harness core) when there are cores to separate them."""
    try:
        cores = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None, None
    if len(cores) < 2 or os.environ.get("LOADGEN_NO_PIN"):
        return None, None
    return cores[0], cores[-1]


def _harness_main(mock_config: dict, ready_queue, cpu: int | None) -> None:
    # A process group of its own: the terminal's Ctrl-C must not stop the mock while
    # the workers drain their last calls; the orchestrator terminates it at the end.
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if cpu is not None:
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            pass
    from loadgen.mock_llm import MockConfig, serve

    serve(MockConfig.model_validate(mock_config), host="127.0.0.1", port=0, on_ready=lambda port: ready_queue.put(port))


@contextmanager
def embedded_mock(profile: Profile, cpu: int | None = None) -> Iterator[str]:
    """Start the mock LLM in its own process; yield its base URL (http://127.0.0.1:PORT)."""
    ctx = _ctx()
    ready = ctx.Queue()
    proc = ctx.Process(
        target=_harness_main, args=(profile.mock.model_dump(mode="json"), ready, cpu), name="loadgen-harness", daemon=True
    )
    proc.start()
    try:
        try:
            port = ready.get(timeout=HARNESS_START_TIMEOUT_S)
        except queue.Empty:
            raise UserError("the embedded mock LLM did not start within 20 s", ExitCode.FAILURE) from None
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()


def check_reachable(url: str, timeout_s: float = 3.0) -> None:
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
        raise UserError(f"target unreachable: {url} ({reason})", ExitCode.UNREACHABLE) from None


def resolve_api_key(profile: Profile, provider: str) -> str:
    """The key from the environment; the real API needs one, a mock or URL target does not."""
    name = API_KEY_ENV[provider]
    key = os.environ.get(name, "")
    if profile.target.kind == "real" and not key:
        raise UserError(f"target 'real' needs {name} in the environment for provider {provider}", ExitCode.USAGE)
    return key or PLACEHOLDER_KEY


ProgressSink = Callable[[dict], None]


class Orchestrator:
    def __init__(self, profile: Profile, on_progress: ProgressSink | None = None, extra: dict | None = None) -> None:
        self.profile = profile
        self.on_progress = on_progress or (lambda message: None)
        self.extra = extra or {}
        self.stop_requested = False

    def run(self) -> RunOutcome:
        profile = self.profile
        keys = {provider: resolve_api_key(profile, provider) for provider in profile.providers}
        worker_cpu, harness_cpu = _cores()
        outcome = RunOutcome()
        try:
            self._run(keys, worker_cpu, harness_cpu, outcome)
        except KeyboardInterrupt:
            outcome.interrupted = True
        return outcome

    def _run(self, keys: dict[str, str], worker_cpu: int | None, harness_cpu: int | None, outcome: RunOutcome) -> None:
        profile = self.profile
        if profile.target.kind == "embedded":
            with embedded_mock(profile, harness_cpu) as url:
                outcome.target = f"embedded mock at {url}"
                self._run_providers(url, keys, worker_cpu, outcome)
        else:
            url = profile.target.base_url
            if profile.target.kind == "url":
                check_reachable(url)
                outcome.target = url
            else:
                outcome.target = "real APIs"
            self._run_providers(url, keys, worker_cpu, outcome)

    def _run_providers(self, url: str | None, keys: dict[str, str], cpu: int | None, outcome: RunOutcome) -> None:
        for provider in self.profile.providers:
            if outcome.interrupted:
                break
            spec = WorkerSpec(
                profile=self.profile.model_dump(mode="json"),
                provider=provider,
                base_url=provider_base_url(provider, url),
                api_key=keys[provider],
                cpu=cpu,
                extra=self.extra,
            )
            self._run_worker(spec, outcome)

    def _pump(self, spec: WorkerSpec, messages, proc, outcome: RunOutcome, stop_deadline: float | None) -> bool:
        """Handle one message (or a quiet quarter second); True when the worker is done."""
        try:
            kind, payload = messages.get(timeout=0.25)
        except queue.Empty:
            if not proc.is_alive():
                outcome.errors.append(f"{spec.provider} worker exited with code {proc.exitcode} before reporting")
                return True
            if stop_deadline is not None and time.monotonic() > stop_deadline:
                outcome.errors.append(f"{spec.provider} worker did not stop in time; its results are lost")
                return True
            return False
        if kind == "progress":
            self.on_progress(payload)
            return False
        if kind == "result":
            if outcome.interrupted:
                payload["interrupted"] = True
            outcome.results.append(payload)
        else:
            outcome.errors.append(payload)
        return True

    def _run_worker(self, spec: WorkerSpec, outcome: RunOutcome) -> None:
        ctx = _ctx()
        messages = ctx.Queue()
        stop = ctx.Event()
        proc = ctx.Process(target=worker_main, args=(spec, messages, stop), name=f"loadgen-{spec.provider}", daemon=True)
        proc.start()
        stop_deadline: float | None = None
        try:
            while True:
                try:
                    if self._pump(spec, messages, proc, outcome, stop_deadline):
                        return
                except KeyboardInterrupt:
                    # First Ctrl-C: ask the worker to stop and keep collecting, so the
                    # results so far are still written.
                    if not outcome.interrupted:
                        outcome.interrupted = True
                        stop.set()
                        stop_deadline = time.monotonic() + self.profile.timeout + 15
        finally:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
