"""The thread runner: the SDKs' sync clients, called from a pool of OS threads.

Most applications call `openai.OpenAI` and `anthropic.Anthropic` from threads (web views, task
queues, thread pools). Tracers patch those methods apart from the async ones, and their batch
threads compete with the application's threads for the GIL. This runner drives the same
schedule, prompts and arms as `Runner`, with each call made by the provider's `call_sync` on a
pool thread. The worker's event loop only waits for the threads.

Open loop: a dispatcher thread sleeps until each operation's intended time and hands it to the
pool. The thread that picks it up stamps t_start, so the dispatch lag is the dispatcher's own
lateness plus the wait for a free thread — counted, never hidden. Past `max_in_flight` (queued
and running) an operation is shed, as on the async path. Latency is from the intended start.

Closed loop: N threads, each making its next call when its last one ends (the seed's
`--concurrent-threads N`).

GIL wait: while a block runs, a probe thread sleeps 1 ms over and over and records how late it
woke (histogram `gil_wait`): the time the kernel and the GIL kept a due thread from running,
which is what a tracer's threads add to the application's. It is the sync client's figure beside
the dispatch lag; its floor here is ~0.1 ms at p99 (docs/sync-client.md §4).

Threads cannot be cancelled. A stop, or calls still running past the drain's grace period,
aborts the provider's connections (`provider.abort()`): blocked reads fail at once and those
calls count as cancelled. The SDK's own timeout bounds each read, not the whole call.

The counters and histograms the threads share (Stats, in flight, sent) change under one lock,
held only to count. Each thread keeps its own inter-token histogram, merged at the block's end.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from typing import Callable

from loadgen.histograms import Recorder
from loadgen.profile import Profile
from loadgen.prompts import Prompt
from loadgen.providers.base import CURRENT_CALL, error_class
from loadgen.results import CallRecord
from loadgen.runner import Runner
from loadgen.schedule import Block

PROBE_SLEEP_S = 0.001
AFTER_ABORT_S = 5.0  # how long calls get to fail once their connections are closed
WAKE_S = 0.05  # a sleeping dispatcher looks for a stop this often
CLOSE_S = 2.0  # how long closing waits for the pool's threads, all together


class GilProbe:
    """A thread that sleeps PROBE_SLEEP_S again and again while a block runs and records how late
    it woke into the runner's current `gil_wait` histogram (a soak swaps the histograms per window)."""

    def __init__(self, runner: "ThreadRunner") -> None:
        self.runner = runner
        self.running = threading.Event()
        self.thread: threading.Thread | None = None
        self._clock: int | None = None  # the probe thread's CPU clock, readable from any thread
        self._cpu_ns = 0  # its CPU time when it ended

    def start(self) -> None:
        self.running.set()
        self.thread = threading.Thread(target=self._probe, name="loadgen-gil-probe", daemon=True)
        self.thread.start()
        self._clock = time.pthread_getcpuclockid(self.thread.ident)

    def stop(self) -> None:
        self.running.clear()
        if self.thread is not None:
            self.thread.join(timeout=1.0)
            self.thread = None

    def cpu_ns(self) -> int:
        """The CPU time the probe has taken (~1.8 % of a core: its 1,000 wake-ups a second)."""
        if self.thread is not None and self._clock is not None:
            try:
                return time.clock_gettime_ns(self._clock)
            except OSError:  # it has just ended
                pass
        return self._cpu_ns

    def _probe(self) -> None:
        now = time.perf_counter_ns
        sleep_ns = int(PROBE_SLEEP_S * 1e9)
        try:
            while self.running.is_set():
                due = now() + sleep_ns
                time.sleep(PROBE_SLEEP_S)
                self.runner.stats.h["gil_wait"].record_ns(now() - due)
        finally:
            self._cpu_ns = time.thread_time_ns()


class ThreadRunner(Runner):
    """Runs one shard of the schedule, like `Runner`, with calls made on `threads` OS threads."""

    def __init__(self, profile: Profile, provider, threads: int, shard: int = 0, shards: int = 1,
                 start_at_ns: int | None = None,
                 now_ns: Callable[[], int] = time.perf_counter_ns) -> None:
        super().__init__(profile, provider, shard, shards, start_at_ns, now_ns)
        if not profile.open_loop:
            threads = max(threads, self.closed_loop.users)  # one thread per user
        self.threads = threads
        self._lock = threading.Lock()
        self._quiet = threading.Condition(self._lock)  # notified when no call is in flight
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._pool: list[threading.Thread] = []
        self._local = threading.local()
        self._itl: list[Recorder] = []  # each pool thread's inter-token histogram
        self._aborted = False
        self._probe: GilProbe | None = None  # the block's, while it runs
        self._probe_cpu_ns = 0  # the CPU of the blocks' probes that have ended

    # -- the pool ----------------------------------------------------------------------
    def _start_pool(self) -> None:
        for index in range(len(self._pool), self.threads):
            thread = threading.Thread(target=self._serve, name=f"loadgen-sync-{index}", daemon=True)
            thread.start()
            self._pool.append(thread)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            function, args = job
            function(*args)

    def close(self) -> None:
        """End the pool's threads (each finishes the job it has) and wait for them, CLOSE_S at most in
        all: a thread still blocked in a call after a stop is a daemon and does not hold the exit."""
        for _ in self._pool:
            self._jobs.put(None)
        deadline = time.monotonic() + CLOSE_S
        for thread in self._pool:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._pool.clear()

    async def _in_thread(self, function, *args, pool: bool = False) -> None:
        """Run `function(*args)` on a thread of its own (or a pool thread), awaited from the loop."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def settle(error: BaseException | None) -> None:
            if done.done():  # the awaiting coroutine was cancelled (a stop)
                return
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(None)

        def run() -> None:
            error = None
            try:
                function(*args)
            except BaseException as exc:  # handed to the awaiting coroutine, raised there
                error = exc
            loop.call_soon_threadsafe(settle, error)

        if pool:
            self._start_pool()
            self._jobs.put((run, ()))
        else:
            threading.Thread(target=run, name="loadgen-dispatcher", daemon=True).start()
        await done

    async def prime_call(self, prompt: Prompt, rec: CallRecord) -> None:
        """The priming call on a pool thread, so that thread's first-use costs are paid before the clock too."""
        await self._in_thread(self.provider.call_sync, prompt, rec, pool=True)

    # -- one call ----------------------------------------------------------------------
    def _thread_itl(self) -> Recorder:
        itl = getattr(self._local, "itl", None)
        if itl is None:
            itl = self._local.itl = Recorder()
            with self._lock:
                self._itl.append(itl)
        return itl

    def _record(self, op_id: int, t_intended: int, warmup: bool, t_start: int) -> CallRecord:
        rec = CallRecord(-(op_id + 2) if warmup else op_id, t_intended, None if warmup else self._thread_itl())
        rec.t_start = t_start
        return rec

    def _call_sync(self, op_id: int, t_intended: int, warmup: bool, t_start: int) -> None:
        """Make one call on this thread and count it (it is in flight already)."""
        rec = self._record(op_id, t_intended, warmup, t_start)
        request = self.request_for(op_id, warmup)
        CURRENT_CALL.set(rec)  # per thread: the transport and the attempt hook find the record here
        message = None
        try:
            self.provider.call_sync(request, rec)
        except Exception as exc:  # every failure is a counted class, never a crash
            rec.error = "cancelled" if self._aborted else error_class(exc)
            message = f"{type(exc).__name__}: {exc}"
        CURRENT_CALL.set(None)
        with self._lock:
            self._settle(rec, warmup, message)
            if self.in_flight == 0:
                self._quiet.notify_all()

    def _picked_up(self, op_id: int, t_intended: int, warmup: bool) -> None:
        """A pool thread takes a handed-over operation: its dispatch lag ends now."""
        with self._lock:
            if self.stopping:
                self.in_flight -= 1  # handed over but never sent: neither sent nor shed
                if self.in_flight == 0:
                    self._quiet.notify_all()
                return
            t_start = self.now_ns() if warmup else self._mark_sent()
        self._call_sync(op_id, t_intended, warmup, t_start)

    def _hand_over(self, op_id: int, t_intended: int, warmup: bool) -> None:
        with self._lock:
            if self.in_flight >= self.profile.max_in_flight:
                if not warmup:
                    self.stats.shed += 1  # counted and reported, never silent waiting
                return
            self.in_flight += 1
            if self.in_flight > self.peak_in_flight:
                self.peak_in_flight = self.in_flight
        self._jobs.put((self._picked_up, (op_id, t_intended, warmup)))

    def _wait_until(self, t_ns: int) -> bool:
        """Sleep until t_ns, looking for a stop every WAKE_S; True when the run is stopping.

        `time.sleep`, not a timed `Event.wait`: CPython fixes a sleep's deadline before it lets
        the GIL go, but a timed lock acquire computes its deadline after, so when a pool thread
        takes the GIL in between (it was just handed a call) the wait ends late by that
        thread's whole turn — measured on one core: 1.2 ms late per 1 ms of the SDK's work.
        """
        while not self.stopping:
            delay = t_ns - self.now_ns()
            if delay <= 0:
                break
            time.sleep(min(delay / 1e9, WAKE_S))
        return self.stopping

    # -- a block -----------------------------------------------------------------------
    async def run_block(self, block: Block, start_at_ns: int | None = None) -> dict:
        self._start_pool()
        self._probe = probe = GilProbe(self)
        probe.start()
        try:
            return await super().run_block(block, start_at_ns)
        finally:
            probe.stop()
            self._probe_cpu_ns += probe.cpu_ns()
            self._probe = None
            self._merge_itl()

    def instrument_cpu_s(self) -> float:
        """The GIL probes' CPU so far: loadgen's instrument, not the calls' cost."""
        probe = self._probe
        return (self._probe_cpu_ns + (probe.cpu_ns() if probe is not None else 0)) / 1e9

    def _merge_itl(self) -> None:
        with self._lock:
            for itl in self._itl:
                self.stats.h["itl"].add(itl)
                itl.reset()

    async def _dispatch(self, block: Block, start: int, warm: bool) -> None:
        if self.profile.open_loop:
            await self._in_thread(self._open_block_sync, block, start, warm)
        else:
            await self._in_thread(self._closed_block_sync, block, start, warm)

    def _open_block_sync(self, block: Block, start: int, warm: bool) -> None:
        """The dispatcher thread: each operation handed to the pool at its intended time."""
        warm_calls, first, base, offsets = self._open_schedule(block, start, warm)
        for k, t_intended in warm_calls:
            if self._wait_until(t_intended):
                return
            self._hand_over(k, t_intended, True)
        shard, shards = self.shard, self.shards
        for k in range((shard - first) % shards, len(offsets), shards):
            t_intended = base + offsets[k]
            if self._wait_until(t_intended):
                return
            self._hand_over(first + k, t_intended, False)

    def _closed_block_sync(self, block: Block, start: int, warm: bool) -> None:
        """N threads, each making its next call when its last one ends; this thread waits for them."""
        if self._wait_until(start):
            return
        turns = self._closed_turns(block, warm)
        users = self.closed_loop.users
        left = [users]
        finished = threading.Event()

        def user() -> None:
            try:
                while not self.stopping:
                    with self._lock:
                        call = self._next_closed_call(block, *turns)
                    if call is None:
                        return
                    self._call_sync(*call)
            finally:
                with self._lock:
                    left[0] -= 1
                    if not left[0]:
                        finished.set()

        for _ in range(users):
            self._jobs.put((user, ()))
        finished.wait()
        self._closed_block_done(block)

    # -- drain and stop ----------------------------------------------------------------
    def _wait_quiet(self, timeout_s: float) -> bool:
        with self._lock:
            return self._quiet.wait_for(lambda: self.in_flight == 0, timeout=timeout_s)

    async def drain(self, grace_s: float | None = None) -> None:
        """Wait for calls in flight; past the grace period close their connections (counted as cancelled)."""
        grace = self.profile.timeout + 5 if grace_s is None else grace_s
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, self._wait_quiet, grace):
            self._aborted = True
            abort = getattr(self.provider, "abort", None)
            if abort is not None:
                # A stop takes no more calls; calls stuck past the grace of a run that goes on
                # leave the client able to open new connections for the next block.
                abort(reopen=not self.stopping)
            await loop.run_in_executor(None, self._wait_quiet, AFTER_ABORT_S)
            self._aborted = self.stopping


