"""A worker process: one provider (and later one arm), its own event loop, plain-data results.

Tracer instrumentors patch the SDKs globally, so each arm runs in a process of its own.
The worker samples its own CPU time and RSS while it runs and sends progress to the
orchestrator; its results cross the process boundary as plain data (encoded HDR
histograms, counters), never as objects.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import queue
import signal
import warnings
import time

import psutil

from loadgen import clock
from loadgen.plan import WorkerSpec
from loadgen.profile import Profile
from loadgen.arms import installed_version, make_arm
from loadgen.providers import error_class, make_provider
from loadgen.processes import exit_with_parent, fine_timer_slack, pin_to, release_memory
from loadgen.redact import redact
from loadgen.results import CallRecord, WorkerResult
from loadgen.runner import Runner
from loadgen.sync_runner import ThreadRunner
from loadgen.soak import WindowProbe

SAMPLE_INTERVAL_S = 0.5
# An idle worker waits for its next block on one blocking read: it shares its core with
# the worker that runs, and every wake-up of its own may preempt that one mid-call. The
# fleet puts ("finish",) on every queue when it stops, so a long wait never delays a stop.
COMMAND_POLL_S = 5.0


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


async def _next_command(commands, stop_event) -> tuple | None:
    """The orchestrator's next command, waited for off the event loop; None when told to stop."""
    loop = asyncio.get_running_loop()
    while not (stop_event is not None and stop_event.is_set()):
        try:
            return await loop.run_in_executor(None, commands.get, True, COMMAND_POLL_S)
        except queue.Empty:
            continue
    return None


async def _run(spec: WorkerSpec, messages, commands, stop_event, settle=lambda: None) -> WorkerResult:
    profile, settings = spec.profile, spec.settings
    arm = make_arm(spec.arm.arm, spec.tracing, spec.provider, settings.model, calibration=spec.calibration)
    provider = make_provider(spec.provider, settings, **arm.provider_options())
    if settings.client == "sync":
        runner: Runner = ThreadRunner(profile, arm.wrap(provider), threads=spec.threads or 1, shard=spec.shard,
                                      shards=spec.shards)
    else:
        runner = Runner(profile, arm.wrap(provider), shard=spec.shard, shards=spec.shards)
    if settings.client == "raw":
        runner.request_for = _rendered_requests(runner, provider)
        fine_timer_slack()  # the raw client's gaps (100 µs at 10,000/s) are twice the default slack
    sampler = Sampler()
    label = spec.label
    window: dict = {"active": False}  # the current block: its start CPU and wall time
    # A fault scenario's phases are cut from these samples (loadgen.faults).
    timeline: list[tuple] | None = [] if profile.faults is not None else None
    accounting = getattr(arm, "accounting", None)

    def report_progress() -> None:
        message = runner.progress()
        message.update(provider=spec.provider, arm=label, shard=spec.shard, worker=spec.worker)
        messages.put(("progress", message))

    async def watch() -> None:
        # Progress, stop requests and resource samples, twice a second, off the hot path;
        # between blocks the worker keeps still, so it does not disturb the arm that runs.
        while True:
            await asyncio.sleep(SAMPLE_INTERVAL_S)
            if stop_event is not None and stop_event.is_set() and not runner.stopping:
                runner.stop()
            if window["active"]:
                sampler.sample()
                report_progress()
            if timeline is not None:
                spans = accounting.counts() if accounting is not None else (0, 0, {}, 0)
                rss = sampler.rss_samples[-1][1] if window["active"] else sampler.process.memory_info().rss
                timeline.append((time.monotonic_ns(), rss, *spans))

    def mark_block_start() -> None:
        # CPU is judged over each block's measured phase, from its first send.
        window["cpu"] = sampler.cpu_seconds() - runner.instrument_cpu_s()
        window["wall"] = time.monotonic()
        window.setdefault("measure_start_s", window["wall"] - sampler.t0)

    await _prime(runner)
    if settings.client == "raw":
        await provider.warm()  # every connection of its pool open before the clock starts
    sampler.sample()  # psutil's first reads are slow; do them before the clock too
    retained = [_retained_point(runner, sampler)]  # loadgen.memory fits fixed cost and growth to these
    soak = profile.soak
    probe = WindowProbe(runner, arm, sampler, soak.tracemalloc, soak.warmup_windows) if soak else None
    runner.on_first_send = mark_block_start
    watcher = asyncio.get_running_loop().create_task(watch())
    started_wall = time.time()
    blocks: list[dict] = []
    last_flush_s: float | None = None  # the wall time of the flush after the latest block
    busy = {"cpu": 0.0, "wall": 0.0, "flush_cpu": 0.0}
    settle()  # e.g. pin to its core: the imports and the priming call above used any free core
    messages.put(("ready", (label, spec.worker)))
    try:
        while (command := await _next_command(commands, stop_event)) is not None and command[0] == "block":
            _, block, start_at_ns = command
            window.pop("cpu", None)
            window["active"] = True
            if probe is not None:
                probe.begin()
            figures = await _run_block(runner, block, start_at_ns)
            window["active"] = False
            if "cpu" in window:
                # Less the CPU of loadgen's own instruments in the worker (the sync client's GIL probe).
                busy["cpu"] += sampler.cpu_seconds() - runner.instrument_cpu_s() - window["cpu"]
                busy["wall"] += time.monotonic() - window["wall"]
            # Each block ends with its spans flushed, so no arm's exports spill into the
            # next arm's block on a shared core. The flush is tracing work: it counts in
            # CPU per operation, though not in the worker's busy share.
            flush_start, flush_wall = sampler.cpu_seconds(), time.monotonic()
            arm.flush()
            busy["flush_cpu"] += sampler.cpu_seconds() - flush_start
            last_flush_s = time.monotonic() - flush_wall
            blocks.append({**figures, "replica": spec.replica})
            # A soak's window figures travel with the block's end, so the orchestrator can
            # write the window before the next one starts.
            if probe is not None:
                window_figures = probe.end(block.index)
            else:
                window_figures = None
                retained.append(_retained_point(runner, sampler))  # releases memory first
            messages.put(("block_done", (label, spec.worker, block.index, window_figures)))
            if runner.stopping:
                break
    finally:
        watcher.cancel()
        runner.close()
        await provider.aclose()
    # The final flush: after it every span that ended is exported or dropped for a reason.
    flush_start, shutdown_wall = sampler.cpu_seconds(), time.monotonic()
    spans = arm.shutdown()  # None: the arm traces nothing
    busy["flush_cpu"] += sampler.cpu_seconds() - flush_start
    # The last block's flush and the shutdown: what an application's exit waits for (not the wait
    # in between for the other arms' blocks and the orchestrator's word to finish).
    shutdown_s = last_flush_s + time.monotonic() - shutdown_wall if last_flush_s is not None else None
    sampler.sample()
    report_progress()  # the final figures, so the display ends at what was done
    cpu_percent = busy["cpu"] / busy["wall"] * 100 if busy["wall"] > 0 else 0.0
    result = _result(spec, profile, runner, sampler, started_wall, cpu_percent, sampler.cpu_seconds())
    result.blocks = blocks
    result.spans = spans
    result.rss_retained = retained
    result.soak = probe.finish() if probe is not None else None
    result.timeline = timeline
    result.shutdown_s = round(shutdown_s, 3) if shutdown_s is not None else None
    result.run_id = spec.tracing.run_id if spec.tracing else None
    # The calibration arm's known answer: how long its hook really held the loop per call.
    result.calibration = arm.known_answer()
    # RSS samples from the first measured send on are the steady state (warm-up is over).
    result.measure_start_s = round(window["measure_start_s"], 3) if "measure_start_s" in window else None
    # CPU per operation counts every flush too: exporting the spans is tracing work.
    result.cpu_seconds_measured = round(busy["cpu"] + busy["flush_cpu"], 4)
    return result


def _rendered_requests(runner: Runner, client):
    """The raw client's requests for this shard's operations, rendered now, before the clock starts."""
    from loadgen.providers.raw import RequestTable

    table = RequestTable(client, runner.prompt)
    profile, shard, shards = runner.profile, runner.shard, runner.shards
    if profile.soak is not None:
        measured = None  # streamed window by window: each request is rendered when sent
    elif profile.open_loop:
        measured = range(shard, len(runner.offsets), shards)
    else:
        measured = range(shard, profile.operations, shards) if profile.operations else None
    table.prepare(measured, range(shard, profile.warmup_operations, shards))
    return table


def _retained_point(runner: Runner, sampler: Sampler) -> tuple[int, int]:
    """(calls made so far — the priming call, warm-up and measured — , retained RSS bytes).

    Called after the garbage is collected and free heap pages are returned to the system
    (loadgen.processes.release_memory), so the RSS is memory the process keeps. Every call through
    the arm counts, warm-up included, since a tracer that keeps something per call keeps it
    for those calls too.
    """
    release_memory()
    return 1 + runner.warmup_done + runner.stats.completed, sampler.process.memory_info().rss


async def _run_block(runner: Runner, block, start_at_ns: int) -> dict:
    """One block; asked to stop, in-flight calls get a short grace and are then cancelled."""
    dispatch = asyncio.get_running_loop().create_task(runner.run_block(block, start_at_ns))
    while not dispatch.done():
        await asyncio.wait({dispatch}, timeout=0.2)
        if runner.stopping and not dispatch.done():
            await runner.drain(grace_s=2.0)
            dispatch.cancel()
            await asyncio.gather(dispatch, return_exceptions=True)
            return {**runner.block_figures(block), "stopped": True}
    return dispatch.result()


async def _prime(runner: Runner) -> None:
    """One call, awaited, before the clock starts: the SDK's lazy imports and caches
    are built here, not in the middle of the measured phase. Then freeze what exists
    so the collector does not walk the interpreter's start-up objects on every pass."""
    rec = CallRecord(-1, time.perf_counter_ns(), None)
    try:
        await runner.prime_call(runner.prompt(0, warmup=True), rec)
    except Exception as exc:  # the run itself will count and report errors
        runner.prime_error = error_class(exc)
    gc.collect()
    gc.freeze()


def _result(spec, profile: Profile, runner: Runner, sampler: Sampler, started_wall, cpu_percent,
            cpu_total) -> WorkerResult:
    stats = runner.stats
    return WorkerResult(
        provider=spec.provider,
        arm=spec.label,
        shard=spec.shard,
        shards=spec.shards,
        replica=spec.replica,
        worker=spec.worker,
        mode=spec.mode,
        load_kind=profile.load.kind,
        stream=profile.stream,
        model=spec.settings.model,
        pool_size=spec.settings.pool_size,
        operations_fixed=profile.operations is not None,
        started_at=started_wall,
        interrupted=runner.stopping,
        warmup_operations=runner.warmup_done,
        warmup_errors=runner.warmup_errors,
        prime_error=runner.prime_error,
        peak_in_flight=runner.peak_in_flight,
        offsets_first_ns=runner.offsets[0] if len(runner.offsets) else None,
        offsets_last_ns=runner.offsets[-1] if len(runner.offsets) else None,
        measure_start_ns=runner.measure_start_ns,
        error_examples={k: redact(v) for k, v in stats.error_examples.items()},
        cpu_percent=round(cpu_percent, 2),
        cpu_seconds_total=round(cpu_total, 3),
        rss_samples=sampler.rss_samples,
        paired_with=spec.arm.pairs_with,
        client=spec.settings.client,
        threads=runner.threads,
        tracer_version=installed_version(spec.arm.arm),
        **stats.measured(),
    )


def worker_main(spec: WorkerSpec, messages, commands, stop_event) -> None:
    """Process entry point (the local engine): set the process up, then `serve`."""
    # Ctrl-C reaches the whole process group; the orchestrator decides, and tells us
    # through stop_event, so that results so far are still returned.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent()
    # Some tracers (HoneyHive) log JSON lines to stdout; the report owns the terminal.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    quiet_logs(faulted=spec.profile.faults is not None)
    # Pinned once set up: arms that start together (a soak's, a fault scenario's) import their
    # tracers on every core, not one after another on theirs.
    serve(spec, messages, commands, stop_event, settle=lambda: pin_to(spec.cpu))


def quiet_logs(faulted: bool = False) -> None:
    """Third-party import-time warnings (OpenLIT's OTel 0.48 on pkg_resources, once per process)
    would bury the progress display; a failure still reaches stderr and the report. In a fault
    scenario the exporters' errors are the point, counted by the span accounting: their log
    lines (one per failed export, every arm) are not printed."""
    warnings.simplefilter("ignore")
    # Laminar logs every exporter it builds, at INFO, to stderr.
    logging.disable(logging.ERROR if faulted else logging.INFO)


def serve(spec: WorkerSpec, messages, commands, stop_event, settle=lambda: None) -> None:
    """Prime, then run the blocks the orchestrator sends until told to finish; put
    ('result', WorkerResult.to_wire()) or ('error', (label, worker, message)) on `messages`.

    Any host calls it: a local process (worker_main) or a Ray actor's thread
    (loadgen.ray_actor). `messages` and `commands` need put and get(block, timeout),
    `stop_event` is_set: multiprocessing's or threading's queues and events alike.
    """
    label = spec.label
    try:
        result = clock.run(_run(spec, messages, commands, stop_event, settle))
        messages.put(("result", result.to_wire()))
    except Exception as exc:  # reported by the orchestrator as one clear line
        messages.put(("error", (label, spec.worker,
                                redact(f"{spec.provider}/{label} worker failed: {type(exc).__name__}: {exc}"))))
