"""A worker process: one provider (and later one arm), its own event loop, plain-data results.

Tracer instrumentors patch the SDKs globally, so each arm runs in a process of its own.
The worker samples its own CPU time and RSS while it runs and sends progress to the
orchestrator; its results cross the process boundary as plain data (encoded HDR
histograms, counters), never as objects.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import time
from dataclasses import dataclass, field

import psutil

from loadgen import clock
from loadgen.profile import Profile
from loadgen.providers import CallRecord, ProviderSettings, error_class, make_provider
from loadgen.redact import redact
from loadgen.runner import Runner
from loadgen.tracers import TracingSettings, make_arm

SAMPLE_INTERVAL_S = 0.5


@dataclass
class WorkerSpec:
    """What the orchestrator tells a worker: plain data only."""

    profile: dict
    provider: str
    base_url: str | None
    api_key: str
    arm: str = "baseline"
    cpu: int | None = None  # pin to this core when given
    shard: int = 0  # this worker runs op_ids with op_id % shards == shard
    shards: int = 1
    tracing: dict | None = None  # TracingSettings as a dict, for tracing arms
    extra: dict = field(default_factory=dict)


class Sampler:
    """CPU time and RSS of this process; RSS sampled twice a second while the run goes."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.rss_samples: list[tuple[float, int]] = []
        self.t0 = time.monotonic()

    def cpu_seconds(self) -> float:
        times = self.process.cpu_times()
        return times.user + times.system

    def sample(self) -> None:
        now = time.monotonic() - self.t0
        self.rss_samples.append((round(now, 3), self.process.memory_info().rss))


async def _wait_for_start(spec: WorkerSpec, progress_queue, stop_event, go_event, start_at) -> int | None:
    """Tell the orchestrator this worker is primed; wait for the common start time."""
    if go_event is None:
        return None
    progress_queue.put(("ready", spec.shard))
    while not go_event.wait(0.05):
        if stop_event is not None and stop_event.is_set():
            return None
    return start_at.value


async def _run(spec: WorkerSpec, progress_queue, stop_event, go_event=None, start_at=None) -> dict:
    profile = Profile.model_validate(spec.profile)
    settings = ProviderSettings(
        base_url=spec.base_url,
        api_key=spec.api_key,
        model=getattr(profile.models, spec.provider),
        stream=profile.stream,
        timeout_s=profile.timeout,
        max_retries=profile.max_retries,
        pool_size=profile.pool_size(),
        transport=profile.http_transport,
    )
    tracing = TracingSettings(**spec.tracing) if spec.tracing else None
    arm = make_arm(spec.arm, tracing, spec.provider, settings.model,
                   calibration=(profile.tracing.calibrate_us, profile.tracing.calibrate_mib))
    provider = make_provider(spec.provider, settings, **(arm.provider_options() if arm is not None else {}))
    runner = Runner(profile, provider, shard=spec.shard, shards=spec.shards, arm=arm)
    sampler = Sampler()
    marks: dict[str, float] = {}

    def report_progress() -> None:
        if progress_queue is not None:
            message = runner.progress()
            message.update(provider=spec.provider, arm=spec.arm, shard=spec.shard)
            progress_queue.put(("progress", message))

    async def watch() -> None:
        # Progress, stop requests and resource samples, twice a second, off the hot path.
        while True:
            await asyncio.sleep(SAMPLE_INTERVAL_S)
            if stop_event is not None and stop_event.is_set() and not runner.stopping:
                runner.stop()
            sampler.sample()
            report_progress()

    await _prime(runner, provider)
    sampler.sample()  # psutil's first reads are slow; do them before the clock too
    runner.start_at_ns = await _wait_for_start(spec, progress_queue, stop_event, go_event, start_at)
    if stop_event is not None and stop_event.is_set():
        runner.stop()

    def mark_measured_start() -> None:
        # CPU is judged over the measured phase only, from its first send.
        marks["cpu_start"] = sampler.cpu_seconds()
        marks["wall_start"] = time.monotonic()

    runner.on_first_send = mark_measured_start
    watcher = asyncio.get_running_loop().create_task(watch())
    started_wall = time.time()
    try:
        dispatch = asyncio.get_running_loop().create_task(runner.run())
        # Once dispatch is over (or asked to stop), in-flight calls drain in runner.run.
        while not dispatch.done():
            await asyncio.wait({dispatch}, timeout=0.2)
            if runner.stopping and not dispatch.done():
                await runner.drain(grace_s=2.0)
                dispatch.cancel()
                await asyncio.gather(dispatch, return_exceptions=True)
                break
        if dispatch.done() and not dispatch.cancelled() and dispatch.exception() is not None:
            raise dispatch.exception()
        cpu_end = sampler.cpu_seconds()
        wall_end = time.monotonic()
    finally:
        watcher.cancel()
        await provider.aclose()
    # The final flush: after it every span that ended is exported or dropped for a reason.
    spans = arm.shutdown() if arm is not None else None  # None: the arm traces nothing
    sampler.sample()
    report_progress()  # the final figures, so the display ends at what was done
    cpu_start = marks.get("cpu_start", cpu_end)
    wall = wall_end - marks.get("wall_start", wall_end)
    cpu_percent = (cpu_end - cpu_start) / wall * 100 if wall > 0 else 0.0
    result = _result(spec, profile, runner, sampler, started_wall, cpu_percent, cpu_end)
    result["spans"] = spans
    result["run_id"] = tracing.run_id if tracing else None
    # RSS samples from here on are the steady state (warm-up is over).
    result["measure_start_s"] = round(marks["wall_start"] - sampler.t0, 3) if "wall_start" in marks else None
    # CPU per operation counts the final flush too: exporting the last spans is tracing work.
    result["cpu_seconds_measured"] = round(sampler.cpu_seconds() - cpu_start, 4)
    return result


async def _prime(runner: Runner, provider) -> None:
    """One call, awaited, before the clock starts: the SDK's lazy imports and caches
    are built here, not in the middle of the measured phase. Then freeze what exists
    so the collector does not walk the interpreter's start-up objects on every pass."""
    rec = CallRecord(-1, time.perf_counter_ns(), None)
    try:
        async with asyncio.timeout(runner.profile.timeout):
            if runner.arm is None:
                await provider.call(runner.prompt(0, warmup=True), rec)
            else:
                await runner.arm.call(provider, runner.prompt(0, warmup=True), rec)
    except Exception as exc:  # the run itself will count and report errors
        runner.prime_error = error_class(exc)
    gc.collect()
    gc.freeze()


def _result(spec, profile: Profile, runner: Runner, sampler: Sampler, started_wall, cpu_percent, cpu_total) -> dict:
    stats = runner.stats
    return {
        "provider": spec.provider,
        "arm": spec.arm,
        "shard": spec.shard,
        "shards": spec.shards,
        "mode": profile.mode,
        "load_kind": profile.load.kind,
        "stream": profile.stream,
        "model": getattr(profile.models, spec.provider),
        "started_at": started_wall,
        "interrupted": runner.stopping,
        "operations_planned": stats.planned,
        "operations_fixed": profile.operations is not None,
        "operations_sent": stats.sent,
        "operations_completed": stats.completed,
        "operations_ok": stats.ok,
        "shed": stats.shed,
        "attempts": stats.attempts,
        "output_tokens": stats.output_tokens,
        "warmup_operations": runner.warmup_done,
        "warmup_errors": runner.warmup_errors,
        "prime_error": runner.prime_error,
        "peak_in_flight": runner.peak_in_flight,
        "pool_size": profile.pool_size(),
        "offsets_first_ns": runner.offsets[0] if len(runner.offsets) else None,
        "offsets_last_ns": runner.offsets[-1] if len(runner.offsets) else None,
        "first_sent_ns": stats.first_sent_ns,
        "last_sent_ns": stats.last_sent_ns,
        "last_done_ns": stats.last_done_ns,
        "measure_start_ns": runner.measure_start_ns,
        "errors": dict(stats.errors),
        "error_examples": {k: redact(v) for k, v in stats.error_examples.items()},
        "histograms": {name: rec.encode() for name, rec in stats.h.items()},
        "cpu_percent": round(cpu_percent, 2),
        "cpu_seconds_total": round(cpu_total, 3),
        "rss_samples": sampler.rss_samples,
        # 8 bytes per operation, for pairing op_ids across arms (loadgen.overhead).
        "latency_by_op": stats.latency_by_op.tobytes().hex(),
    }


def worker_main(spec: WorkerSpec, progress_queue, stop_event, go_event=None, start_at=None) -> None:
    """Process entry point: run and put ('result', dict) or ('error', message) on the queue."""
    # Ctrl-C reaches the whole process group; the orchestrator decides, and tells us
    # through stop_event, so that results so far are still returned.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Some tracers (HoneyHive) log JSON lines to stdout; the report owns the terminal.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    if spec.cpu is not None and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {spec.cpu})
        except OSError:
            pass
    try:
        result = clock.run(_run(spec, progress_queue, stop_event, go_event, start_at))
        progress_queue.put(("result", result))
    except Exception as exc:  # reported by the orchestrator as one clear line
        progress_queue.put(("error", redact(f"{spec.provider} worker failed: {type(exc).__name__}: {exc}")))
