"""The orchestrator: starts the harness and the workers, shows progress, collects results.

It sends no load itself. The embedded mock LLM runs in a harness process of its own so
the client under test never shares an event loop with the server it measures; each
provider (and later each arm) runs in its own worker process. With two or more cores the
harness and the workers are pinned to different cores so they do not steal each other's
time.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
import urllib.request
import uuid
import signal
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator
from urllib.parse import urlencode, urlsplit

from loadgen.errors import ExitCode, UserError
from loadgen.metrics import merge_shards
from loadgen.profile import UNTRACED_ARMS, Profile
from loadgen.providers import provider_base_url
from loadgen.schedule import Block, blocks, windows
from loadgen.worker import WorkerSpec, exit_with_parent, worker_main

API_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
REAL_API_URL = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}
PLACEHOLDER_KEY = "loadgen-no-key"
HARNESS_START_TIMEOUT_S = 20.0
BLOCK_MARGIN_NS = 150_000_000  # from a block's command to its common start


@dataclass
class RunOutcome:
    results: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False
    target: str = ""
    collector: str | None = None


def _ctx():
    # spawn, not fork: a worker must start clean, with no SDK patched by anyone else.
    return mp.get_context("spawn")


def _cores() -> tuple[list[int] | None, int | None]:
    """(worker cores, harness core): workers take the cores in turn, the harness the last.

    With one worker per provider that keeps the worker and the embedded mock apart.
    """
    try:
        cores = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None, None
    if len(cores) < 2 or os.environ.get("LOADGEN_NO_PIN"):
        return None, None
    return cores, cores[-1]


def _harness_main(kind: str, config: dict, ready_queue, cpu: int | None) -> None:
    # A process group of its own: the terminal's Ctrl-C must not stop the mock or the
    # collector while the workers drain their last calls and flush their last spans;
    # the orchestrator terminates them at the end.
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent()
    if cpu is not None:
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            pass
    if kind == "mock":
        from loadgen.mock_llm import MockConfig, serve

        serve(MockConfig.model_validate(config), host="127.0.0.1", port=0, on_ready=ready_queue.put)
    else:
        from loadgen.collector import CollectorConfig, serve

        serve(CollectorConfig.model_validate(config), host="127.0.0.1", port=0, on_ready=ready_queue.put)


@contextmanager
def _harness(kind: str, config: dict, cpu: int | None) -> Iterator[str]:
    """Start the embedded mock LLM or collector in its own process; yield http://127.0.0.1:PORT."""
    ctx = _ctx()
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
    return _harness("mock", profile.mock.model_dump(mode="json"), cpu)


def embedded_collector(profile: Profile, cpu: int | None = None):
    return _harness("collector", profile.collector.model_dump(mode="json"), cpu)


def collector_figures(collector_url: str, run_id: str) -> dict | None:
    """The collector's figures for one run, or None when it cannot tell (an external receiver)."""
    try:
        request = urllib.request.Request(
            f"{collector_url.rstrip('/')}/_collector/stats?{urlencode({'run_id': run_id})}", method="GET"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            data = json.loads(response.read())
    except (OSError, ValueError):
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


def real_api_url(profile: Profile, provider: str) -> str:
    """Where target 'real' sends a provider's calls: a configured gateway, or the API itself."""
    return provider_base_url(provider, profile.target.base_url) or REAL_API_URL[provider]


def resolve_api_key(profile: Profile, provider: str) -> str:
    """The key from the environment; the real API needs one, a mock or URL target does not."""
    name = API_KEY_ENV[provider]
    key = os.environ.get(name, "")
    if profile.target.kind == "real" and not key:
        raise UserError(f"target 'real' needs {name} in the environment for provider {provider}", ExitCode.USAGE)
    return key or PLACEHOLDER_KEY


ProgressSink = Callable[[dict], None]
# A soak window from one worker: (provider, arm label, shards of that arm, figures, tracing settings).
WindowSink = Callable[[str, str, int, dict, dict | None], None]


class Orchestrator:
    def __init__(self, profile: Profile, on_progress: ProgressSink | None = None, extra: dict | None = None,
                 on_window: WindowSink | None = None) -> None:
        self.profile = profile
        self.on_progress = on_progress or (lambda message: None)
        self.on_window = on_window
        self.extra = extra or {}
        self.collector_url: str | None = None
        self.session_id = uuid.uuid4().hex[:12]

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

    def _run(self, keys: dict[str, str], worker_cpu: list[int] | None, harness_cpu: int | None, outcome: RunOutcome) -> None:
        tracing = self.profile.tracing
        if tracing.traced and not tracing.collector_url:
            with embedded_collector(self.profile, harness_cpu) as collector_url:
                outcome.collector = f"embedded collector at {collector_url}"
                self.collector_url = collector_url
                self._run_target(keys, worker_cpu, harness_cpu, outcome)
            return
        if tracing.traced:
            check_reachable(tracing.collector_url, what="collector")
            self.collector_url = tracing.collector_url
            outcome.collector = tracing.collector_url
        self._run_target(keys, worker_cpu, harness_cpu, outcome)

    def _run_target(self, keys: dict[str, str], worker_cpu: list[int] | None, harness_cpu: int | None,
                    outcome: RunOutcome) -> None:
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
                for provider in profile.providers:
                    check_reachable(real_api_url(profile, provider))
                outcome.target = "real APIs" + (f" via {url}" if url else "")
            self._run_providers(url, keys, worker_cpu, outcome)

    def _run_providers(self, url: str | None, keys: dict[str, str], cpus: list[int] | None, outcome: RunOutcome) -> None:
        """Per provider, every arm's workers at once, taking the schedule's blocks in turn."""
        profile = self.profile
        shards = profile.worker_count(len(cpus) if cpus else (os.cpu_count() or 1))
        soak = profile.soak is not None
        plan = windows(profile, profile.soak.window) if soak else blocks(profile, profile.round_count())
        for provider in profile.providers:
            if outcome.interrupted:
                return
            groups: dict[str, list[WorkerSpec]] = {}
            for arm, label in zip(profile.tracing.arms, profile.tracing.arm_labels):
                if arm == "anthropic-native" and provider != "anthropic":
                    continue  # the anthropic SDK's own tracing traces Anthropic calls only
                # Arms that take turns share the workers' cores; a soak's arms run at once,
                # so their workers are spread over the cores.
                first_core = len(groups) * shards if soak else 0
                tracing = self._tracing(provider, arm, label)
                groups[label] = [
                    WorkerSpec(
                        profile=profile.model_dump(mode="json"),
                        provider=provider,
                        base_url=provider_base_url(provider, url),
                        api_key=keys[provider],
                        arm=arm,
                        label=label,
                        cpu=cpus[(first_core + shard) % len(cpus)] if cpus else None,
                        shard=shard,
                        shards=shards,
                        tracing=tracing,
                        extra=self.extra,
                    )
                    for shard in range(shards)
                ]
            on_window = None
            if self.on_window is not None:
                def on_window(label: str, shard: int, figures: dict, provider: str = provider) -> None:
                    self.on_window(provider, label, len(groups[label]), figures, groups[label][0].tracing)
            results = _Fleet(groups, profile.timeout, self.on_progress, on_window).run(plan, outcome, together=soak)
            for label, result in results.items():
                tracing = groups[label][0].tracing
                if tracing is not None and tracing["collector_url"]:
                    # After the workers' final flush every exported span has been ACKed,
                    # so the collector's count is complete.
                    result["collector"] = collector_figures(self.collector_url, tracing["run_id"])
                outcome.results.append(result)

    def _tracing(self, provider: str, arm: str, label: str) -> dict | None:
        if arm in UNTRACED_ARMS:
            return None
        t = self.profile.tracing
        # With the real APIs and an HH_API_KEY, the HoneyHive arm reports to HoneyHive
        # itself (its default server); its collector-side figures are then unmeasured.
        to_honeyhive = arm == "honeyhive" and self.profile.target.kind == "real" and bool(os.environ.get("HH_API_KEY"))
        return {
            "collector_url": None if to_honeyhive else self.collector_url,
            "run_id": f"{self.session_id}-{provider}-{label}",
            "max_queue_size": t.max_queue_size,
            "schedule_delay_ms": t.schedule_delay_ms,
            "max_export_batch_size": t.max_export_batch_size,
            "export_timeout_ms": t.export_timeout_ms,
        }


Key = tuple[str, int]  # (arm label, shard)


class _Fleet:
    """Every arm's worker processes for one provider, run in interleaved rounds.

    All workers start and prime together; then for each block of the schedule each arm in
    turn runs it from a common start time, alone on the machine, so drift on a shared
    machine lands on every arm alike. The order rotates from block to block (baseline, A, B;
    A, B, baseline; B, baseline, A; …), so running first or last, after one arm or another,
    does not fall on one arm either. Workers stay alive between blocks, so each arm's
    process, tracer and connections persist, as in production.
    """

    def __init__(self, groups: dict[str, list[WorkerSpec]], timeout_s: float, on_progress: ProgressSink,
                 on_window: Callable[[str, int, dict], None] | None = None) -> None:
        self.groups = groups
        self.on_window = on_window
        self.timeout_s = timeout_s
        self.on_progress = on_progress
        ctx = _ctx()
        self.messages = ctx.Queue()
        self.stop = ctx.Event()
        self.specs: dict[Key, WorkerSpec] = {(label, spec.shard): spec for label, specs in groups.items() for spec in specs}
        self.commands = {key: ctx.Queue() for key in self.specs}
        self.procs = {
            key: ctx.Process(target=worker_main, args=(spec, self.messages, self.commands[key], self.stop),
                             name=f"loadgen-{spec.provider}-{key[0]}-{key[1]}", daemon=True)
            for key, spec in self.specs.items()
        }
        self.ready: set[Key] = set()
        self.blocks_done: set[tuple[str, int, int]] = set()
        self.results: dict[Key, dict] = {}
        self.failed: set[Key] = set()
        self.progress: dict[str, dict[int, dict]] = {label: {} for label in groups}
        self.stop_deadline: float | None = None

    def run(self, plan: list[Block], outcome: RunOutcome, together: bool = False) -> dict[str, dict]:
        """Run the plan's blocks: each arm in turn, or (a soak's windows) every arm at once."""
        for proc in self.procs.values():
            proc.start()
        try:
            self._wait(outcome, lambda: self.ready | self.failed >= set(self.specs))
            turns = [list(self.groups)] if together else [[label] for label in self.groups]
            for k, block in enumerate(plan):
                for labels in turns[k % len(turns):] + turns[:k % len(turns)]:
                    if outcome.interrupted or self.failed:
                        break
                    keys = [key for key in self.specs if key[0] in labels]
                    start_at = time.perf_counter_ns() + BLOCK_MARGIN_NS
                    for key in keys:
                        self.commands[key].put(("block", block, start_at))
                    self._wait(outcome, lambda: all((*key, block.index) in self.blocks_done or key in self.failed
                                                    for key in keys))
            for command in self.commands.values():
                command.put(("finish",))
            self._wait(outcome, lambda: set(self.results) | self.failed >= set(self.specs))
        finally:
            for proc in self.procs.values():
                proc.join(timeout=10)
                if proc.is_alive():
                    proc.kill()
        merged: dict[str, dict] = {}
        for label in self.groups:
            shards = [self.results[key] for key in self.specs if key[0] == label and key in self.results]
            if not shards:
                continue
            result = merge_shards(shards)
            if outcome.interrupted or any(key[0] == label for key in self.failed):
                result["interrupted"] = True  # stopped early, or a shard's operations are missing
            merged[label] = result
        return merged

    def _wait(self, outcome: RunOutcome, done: Callable[[], bool]) -> None:
        while not done():
            try:
                self._pump(outcome)
            except KeyboardInterrupt:
                # First Ctrl-C: ask the workers to stop and keep collecting, so the
                # results so far are still written.
                if not outcome.interrupted:
                    outcome.interrupted = True
                    self._stop()

    def _stop(self) -> None:
        if self.stop_deadline is None:
            self.stop.set()
            self.stop_deadline = time.monotonic() + self.timeout_s + 15

    def _fail(self, key: Key, message: str, outcome: RunOutcome) -> None:
        if key not in self.failed:
            self.failed.add(key)
            outcome.errors.append(message)
            self._stop()

    def _pump(self, outcome: RunOutcome) -> None:
        """Handle one message, or notice a dead or stuck worker after a quiet quarter second."""
        try:
            kind, payload = self.messages.get(timeout=0.25)
        except queue.Empty:
            for key, proc in self.procs.items():
                if key not in self.results and not proc.is_alive():
                    spec = self.specs[key]
                    self._fail(key, f"{spec.provider}/{key[0]} worker {key[1]} exited with code {proc.exitcode} "
                                    f"before reporting", outcome)
            if self.stop_deadline is not None and time.monotonic() > self.stop_deadline:
                for key in set(self.specs) - set(self.results) - self.failed:
                    self._fail(key, f"{self.specs[key].provider}/{key[0]} worker {key[1]} did not stop in time; "
                                    f"its results are lost", outcome)
            return
        if kind == "ready":
            self.ready.add(tuple(payload))
        elif kind == "block_done":
            label, shard, index, window = payload
            self.blocks_done.add((label, shard, index))
            if window is not None and self.on_window is not None:
                self.on_window(label, shard, window)
        elif kind == "progress":
            shards = self.progress[payload["arm"]]
            shards[payload["shard"]] = payload
            self.on_progress(_sum_progress(list(shards.values())))
        elif kind == "result":
            self.results[(payload["arm"], payload["shard"])] = payload
        else:
            label, shard, message = payload
            self._fail((label, shard), message, outcome)


def _sum_progress(messages: list[dict]) -> dict:
    total = dict(messages[0])
    for key in ("planned", "sent", "completed", "errors", "shed", "in_flight", "warmup_done"):
        total[key] = sum(m[key] for m in messages)
    total["elapsed_s"] = max(m["elapsed_s"] for m in messages)
    return total
