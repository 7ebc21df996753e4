"""The dispatch loop inside a worker: intended times → calls → records → histograms.

Open loop: the dispatcher sleeps until each operation's intended time and starts the
call as a task; it never waits for a completion before the next send. Latency is
t_done − t_intended, so when the generator (or a stalled server, or a full connection
pool) makes a call late, that lateness is in the figure — coordinated omission cannot
hide it. The uncorrected view, t_done − t_start (service time), is kept beside it.

One timeline per call (results.CallRecord): t_intended → t_start (the call's task starts
running) → t_wire → t_response_end (stamped by loadgen's transport) → t_done. So per call,
exactly: latency = dispatch lag + before the wire + wire and server + after the response.

Closed loop: N virtual users; each call is intended the moment the user's previous call
ended, so its latency equals its service time plus the generator's own delay.

The hot path allocates one small record per call and logs nothing.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from typing import Callable

from loadgen.profile import Profile
from loadgen.prompts import Prompt, profile_prompt
from loadgen.providers.base import CURRENT_CALL, Provider, error_class
from loadgen.results import CallRecord, Stats
from loadgen.closed_loop import ClosedLoop
from loadgen.raw_dispatch import MAX_SENDS_UNYIELDED, RawDispatch
from loadgen.schedule import Block, OffsetStream, blocks, closed_loop_plan, profile_offsets, warmup_offsets

START_DELAY_NS = 100_000_000  # time to get the loop going before the first intended start
MAX_ERROR_EXAMPLES = 8


class Runner(ClosedLoop, RawDispatch):
    """Runs one shard of the schedule: op_ids with op_id % shards == shard.

    With several worker processes per provider (one per core), each runs every K-th
    operation of the same schedule from a common start time, so together they send
    the whole plan while no single event loop queues one call behind another.
    """

    def __init__(self, profile: Profile, provider: Provider, shard: int = 0, shards: int = 1,
                 start_at_ns: int | None = None,
                 now_ns: Callable[[], int] = time.perf_counter_ns) -> None:
        # The clock of every stamp: perf_counter_ns, as the providers' (a VirtualClock's in tests).
        self.now_ns = now_ns
        self.profile = profile
        self.provider = provider  # as the arm wraps it (loadgen.arms): its call is the traced call
        self.shard = shard
        self.shards = shards
        self.start_at_ns = start_at_ns
        # What the provider is handed for an op_id: its prompt, or (the raw client: the worker sets
        # it) its request rendered before the clock started.
        self.request_for: Callable[[int, bool], object] = self.prompt
        # The raw client writes a request in the dispatcher and ends its calls by callback
        # (loadgen.providers.raw_wire): no task per call. None: calls are tasks.
        self._send_raw = getattr(provider, "send_raw", None)
        self._drained: asyncio.Event | None = None  # set when the last call in flight ends, while draining
        self._pump_at: list | None = None  # the raw client's open-loop block under way: [k, first, base, offsets]
        self.in_flight = 0
        self.peak_in_flight = 0
        self.stopping = False
        self.threads: int | None = None  # OS threads making the calls (loadgen.sync_runner); None: the event loop
        self.warmup_done = 0
        self.warmup_errors = 0
        self.prime_error: str | None = None
        self.on_first_send: Callable[[], None] | None = None  # a block's first measured send
        self._block_first_sent_ns = 0
        self._blocks_run = 0
        self._next_closed_op = shard  # closed loop by time: op_ids continue across blocks
        self._block_ops = (shard, shard)  # a time slice's op_ids, [first, last) of this shard
        self._block_before = (0, 0)
        self._tasks: set[asyncio.Task] = set()
        self._block_offsets: tuple[int, int, array] = (0, 0, array("q"))
        if profile.open_loop and profile.soak is not None:
            # A soak streams its schedule window by window and keeps no per-operation
            # array: its memory must not grow with its length.
            self.stream = OffsetStream(profile.load, profile.seed)
            self.offsets = array("q")
            self.warmup = warmup_offsets(profile.load, profile.warmup_operations)
            planned = 0
        elif profile.open_loop:
            self.offsets = profile_offsets(profile)
            self.warmup = warmup_offsets(profile.load, profile.warmup_operations)
            planned = len(range(shard, len(self.offsets), shards))
        else:
            self.offsets = array("q")
            self.warmup = array("q")
            self.closed_loop = closed_loop_plan(profile, shard, shards)
            planned = self.closed_loop.operations or 0
        total = len(self.offsets) if profile.open_loop else (profile.operations or 0)
        if profile.soak is not None:
            total = 0  # no pairing by op_id in a soak: histograms only
        self.stats = Stats(planned, total)
        self.measure_start_ns = 0

    # -- prompts -------------------------------------------------------------------
    def prompt(self, op_id: int, warmup: bool) -> Prompt:
        return profile_prompt(self.profile, op_id, warmup=warmup)

    # -- one call ------------------------------------------------------------------
    def _record(self, op_id: int, t_intended: int, warmup: bool, t_start: int) -> CallRecord:
        # Warm-up calls carry negative op_ids (−2, −3, …; the priming call is −1) so their
        # root spans are never taken for a measured operation's.
        rec = CallRecord(-(op_id + 2) if warmup else op_id, t_intended, None if warmup else self.stats.h["itl"])
        rec.t_start = t_start
        return rec

    async def _call(self, op_id: int, t_intended: int, warmup: bool, t_start: int) -> None:
        # t_start is when the dispatcher handed the call over: dispatch lag ends there. The
        # wait for the task to run and building the prompt are client time before the wire.
        rec = self._record(op_id, t_intended, warmup, t_start)
        request = self.request_for(op_id, warmup)
        CURRENT_CALL.set(rec)
        await self._finish(rec, warmup, self.provider.call(request, rec))

    async def _finish(self, rec: CallRecord, warmup: bool, call) -> None:
        message = None
        try:
            async with asyncio.timeout(self.profile.timeout):
                await call
        except asyncio.CancelledError:
            rec.error = "cancelled"
        except Exception as exc:  # every failure is a counted class, never a crash
            rec.error = error_class(exc)
            message = f"{type(exc).__name__}: {exc}"
        self._settle(rec, warmup, message)

    def _settle(self, rec: CallRecord, warmup: bool, message: str | None) -> None:
        """A call is over, failed or not: stamp its end and count it."""
        rec.t_done = self.now_ns()
        self.in_flight -= 1
        if warmup:
            self.warmup_done += 1
            self.warmup_errors += rec.error is not None
        else:
            stats = self.stats
            stats.add(rec)
            error = rec.error
            if error is not None and message and error not in stats.error_examples \
                    and len(stats.error_examples) < MAX_ERROR_EXAMPLES:
                stats.error_examples[error] = message[:300]
        if self._drained is not None and self.in_flight == 0:
            self._drained.set()
        if self._pump_at is not None:
            self._pump()

    def _start(self, op_id: int, t_intended: int, warmup: bool, t_start: int) -> None:
        self.in_flight += 1
        if self.in_flight > self.peak_in_flight:
            self.peak_in_flight = self.in_flight
        if self._send_raw is not None:
            self._send(op_id, t_intended, warmup, t_start)
            return
        task = asyncio.get_running_loop().create_task(self._call(op_id, t_intended, warmup, t_start))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _mark_sent(self) -> int:
        """Count a measured send and return its time, t_start: when the generator hands the
        call over. It ends the dispatch lag and opens the send window (achieved rate, CPU)."""
        # One stamp for both: the lag is judged where the generator's own lateness ends;
        # the wait for the new task to run (behind callbacks already due) is the call's
        # client time before the wire, like the SDK's work — it is in the latency either way.
        stats = self.stats
        now = self.now_ns()
        stats.sent += 1
        if self._block_first_sent_ns == 0:
            self._block_first_sent_ns = now
            if stats.first_sent_ns == 0:
                stats.first_sent_ns = now
            if self.on_first_send is not None:
                self.on_first_send()
        stats.last_sent_ns = now
        return now

    # -- open loop -----------------------------------------------------------------
    def _open_block_offsets(self, block: Block) -> tuple[int, int, array]:
        """(first op_id, the offset op `first` is aligned to, the block's offsets)."""
        if block.first is None:  # a time window of a streamed schedule (a soak)
            first, offsets = self.stream.until(block.start_ns + block.duration_ns)
            self.stats.planned += len(range((self.shard - first) % self.shards, len(offsets), self.shards))
            return first, block.start_ns, offsets
        offsets = self.offsets[block.first:block.last]
        return block.first, offsets[0] if len(offsets) else 0, offsets

    def _open_schedule(self, block: Block, start: int, warm: bool) -> tuple[list[tuple[int, int]], int, int, array]:
        """An open-loop block's plan for this shard: its warm-up calls as (k, t_intended) (the first
        block's), and (first, base, offsets): op_id first + k is intended at base + offsets[k]."""
        first, origin, offsets = self._block_offsets = self._open_block_offsets(block)
        warmup = self.warmup if warm else array("q")
        lead = -warmup[0] if len(warmup) else 0
        if warm:
            self.measure_start_ns = start + lead
        warm_calls = [(k, start + lead + warmup[k]) for k in range(self.shard, len(warmup), self.shards)]
        # The block's origin is intended at start + lead; its operations keep their distance to it.
        return warm_calls, first, start + lead - origin, offsets

    async def _open_block(self, block: Block, start: int, warm: bool) -> None:
        now_ns = self.now_ns
        cap = self.profile.max_in_flight
        shard, shards = self.shard, self.shards
        warm_calls, first, base, offsets = self._open_schedule(block, start, warm)
        for k, t_intended in warm_calls:
            await self._sleep_until(t_intended)
            if self.stopping:
                return
            if self.in_flight < cap:
                self._start(k, t_intended, True, self.now_ns())
        if self._send_raw is not None:
            await self._paced_by_every_callback(first, base, offsets)
            return
        stats = self.stats
        unyielded = 0
        for k in range((shard - first) % shards, len(offsets), shards):
            t_intended = base + offsets[k]
            delay = t_intended - now_ns()
            if delay > 0:
                await asyncio.sleep(delay / 1e9)
                unyielded = 0
            elif unyielded >= MAX_SENDS_UNYIELDED:
                # Behind the plan, every send is due at once: let the loop run the calls (and
                # read their responses) between bursts, or a dispatcher that never yields starves them.
                await asyncio.sleep(0)
                unyielded = 0
            unyielded += 1
            if self.stopping:
                return
            if self.in_flight >= cap:
                stats.shed += 1  # counted and reported, never silent waiting
                continue
            self._start(first + k, t_intended, False, self._mark_sent())

    async def _sleep_until(self, t_ns: int) -> None:
        delay = t_ns - self.now_ns()
        if delay > 0:
            await asyncio.sleep(delay / 1e9)

    # -- closed loop ---------------------------------------------------------------
    async def _closed_block(self, block: Block, start: int, warm: bool) -> None:
        """N virtual users take this block's op_ids (or run for its time slice) in turn."""
        await self._sleep_until(start)
        turns = self._closed_turns(block, warm)
        call = self._call if self._send_raw is None else self._send_and_wait

        async def user() -> None:
            while not self.stopping:
                next_call = self._next_closed_call(block, *turns)
                if next_call is None:
                    return
                await call(*next_call)

        await asyncio.gather(*(user() for _ in range(self.closed_loop.users)))
        self._closed_block_done(block)

    # -- a block, and the whole run ------------------------------------------------
    async def run_block(self, block: Block, start_at_ns: int | None = None) -> dict:
        """Run one block of the schedule (after the warm-up, if it is the first), drain,
        and return its send window: the validity rules judge each block on its own."""
        warm = not self._blocks_run
        self._blocks_run += 1
        start = start_at_ns if start_at_ns is not None else self.now_ns() + START_DELAY_NS
        self._block_before = (self.stats.sent, self.stats.shed)
        self._block_ops = (self._next_closed_op, self._next_closed_op)
        self._block_first_sent_ns = 0
        await self._dispatch(block, start, warm)
        await self.drain()
        return self.block_figures(block)

    async def _dispatch(self, block: Block, start: int, warm: bool) -> None:
        """Send the block's calls (the warm-up first, if `warm`); calls may still be in flight after."""
        if self.profile.open_loop:
            await self._open_block(block, start, warm)
        else:
            await self._closed_block(block, start, warm)

    def block_figures(self, block: Block) -> dict:
        """The block's plan and what was sent of it (also for a block cut short by a stop)."""
        planned = span = None
        if self.profile.open_loop and len(self._block_offsets[2]):
            # The whole block's plan (every shard's operations), so shards merge by adding sends.
            offsets = self._block_offsets[2]
            planned = len(offsets)
            span = offsets[-1] - offsets[0]
        sent_before, shed_before = self._block_before
        first_op, last_op = (block.first, block.last) if block.first is not None else self._block_ops
        return {
            "index": block.index,
            # The block's op_ids [first_op, last_op): the unit the overhead CI is taken over.
            "first_op": first_op,
            "last_op": last_op,
            "planned": planned,
            "plan_span_ns": span,
            "sent": self.stats.sent - sent_before,
            "shed": self.stats.shed - shed_before,
            "first_sent_ns": self._block_first_sent_ns,
            "last_sent_ns": self.stats.last_sent_ns if self._block_first_sent_ns else 0,
        }

    async def run(self) -> None:
        """The whole schedule as one block."""
        await self.run_block(blocks(self.profile, 1)[0], self.start_at_ns)

    async def drain(self, grace_s: float | None = None) -> None:
        """Wait for calls in flight; past the grace period cancel them (counted)."""
        grace = self.profile.timeout + 5 if grace_s is None else grace_s
        if self._send_raw is not None and self.in_flight > 0:
            self._drained = asyncio.Event()
            try:
                await asyncio.wait_for(self._drained.wait(), timeout=grace)
            except TimeoutError:
                self.provider.abort_all("cancelled")  # each call ends, counted as cancelled
            finally:
                self._drained = None
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)

    def stop(self) -> None:
        self.stopping = True

    async def prime_call(self, prompt: Prompt, rec: CallRecord) -> None:
        """One call outside the schedule (the worker's priming call), within the profile's timeout."""
        async with asyncio.timeout(self.profile.timeout):
            await self.provider.call(prompt, rec)

    def close(self) -> None:
        """Release what the runner itself holds once the worker is done (nothing, on the event loop)."""

    def instrument_cpu_s(self) -> float:
        """CPU seconds the runner's own instruments have taken so far (none here): not the calls' cost,
        so the worker leaves it out of its busy share and CPU per operation."""
        return 0.0

    def progress(self) -> dict:
        stats = self.stats
        return {
            "planned": stats.planned,
            "sent": stats.sent,
            "completed": stats.completed,
            "errors": sum(stats.errors.values()),
            "shed": stats.shed,
            "in_flight": self.in_flight,
            "warmup_done": self.warmup_done,
            "elapsed_s": max(0.0, (self.now_ns() - self.measure_start_ns) / 1e9) if self.measure_start_ns else 0.0,
        }

