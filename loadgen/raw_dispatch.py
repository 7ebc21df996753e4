"""The raw client's side of the dispatch loop: sends written in the dispatcher, calls ended by callback.

A provider with `send_raw` (loadgen.providers.raw) takes a request and a `done(rec, message)`
callback: no task per call. The runner (loadgen.runner) mixes this in; its open-loop blocks
go through `_paced_by_every_callback`, its closed-loop users through `_send_and_wait`, and
every call ends in `Runner._settle`, which also pumps any send that fell due meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from array import array

from loadgen.results import CallRecord

# A dispatcher behind its plan yields to the loop after this many sends in a row, so the calls
# it started (and their responses) get to run.
MAX_SENDS_UNYIELDED = 16
# The raw client's dispatcher wakes this long before a send is due. The loop's wake-up takes
# ~30 µs here (dispatch-lag p50 at 10,000/s with timer slack 1 ns); waking 35 µs early cut the
# server's inter-arrival CV of a Poisson 10,000/s from 1.06 to 1.03, and at 20,000/s from
# 1.13 to 1.00, for 5–7 points of CPU (benchmarks/RESULTS.md).
EARLY_WAKE_NS = 40_000


class RawDispatch:
    """The raw path's methods of `Runner` (which holds the state they use)."""

    def _send(self, op_id: int, t_intended: int, warmup: bool, t_start: int) -> None:
        """The raw client's call: its request is written now, in the dispatcher at t_start (a task
        would write it only after the loop's other work, bunching the sends); it ends in `_settle`."""
        rec = self._record(op_id, t_intended, warmup, t_start)
        self._send_raw(self.request_for(op_id, warmup), rec,
                       self._settle_warmup if warmup else self._settle_measured)

    async def _send_and_wait(self, op_id: int, t_intended: int, warmup: bool, t_start: int) -> None:
        """`_send`, awaited: a closed-loop user's next call starts when this one ends."""
        ended = asyncio.get_running_loop().create_future()

        def settle(rec: CallRecord, message: str | None) -> None:
            self._settle(rec, warmup, message)
            ended.set_result(None)

        self._send_raw(self.request_for(op_id, warmup), self._record(op_id, t_intended, warmup, t_start), settle)
        await ended

    def _settle_measured(self, rec: CallRecord, message: str | None) -> None:
        self._settle(rec, False, message)

    def _settle_warmup(self, rec: CallRecord, message: str | None) -> None:
        self._settle(rec, True, message)

    async def _paced_by_every_callback(self, first: int, base: int, offsets: array) -> None:
        """The raw client's dispatch: a send goes out from whichever runs first once it is due,
        this coroutine (woken at the time) or the end of any call (`_settle` pumps too).

        A loop that wakes to a batch of responses runs them all before its timers; at 10,000
        calls/s sends due meanwhile would leave together after the batch. Pumped from each
        response, a due send waits for one response's work at most (~20 µs), not the batch's.
        And a timer wakes the loop ~30 µs after its time, so this coroutine asks to be woken
        EARLY_WAKE_NS before a send and busy-waits the rest (a few µs on average)."""
        self._pump_at = [(self.shard - first) % self.shards, first, base, offsets]
        try:
            now_ns = self.now_ns
            # On a virtual clock (tests) time stands still while code runs: no busy-wait there.
            early = EARLY_WAKE_NS if now_ns is time.perf_counter_ns else 0
            while not self.stopping and (due := self._pump()) is not None:
                delay = due - now_ns()
                await asyncio.sleep((delay - early) / 1e9 if delay > early else 0)
                while now_ns() < due:  # woken early on purpose: wait out the last µs here
                    pass
        finally:
            self._pump_at = None

    def _pump(self) -> int | None:
        """Send every operation due now (at most a burst's worth); the next one's intended time, or None at the end."""
        at = self._pump_at
        k, first, base, offsets = at
        cap, shards, stats, now_ns = self.profile.max_in_flight, self.shards, self.stats, self.now_ns
        end = len(offsets)
        burst = 0
        while k < end and not self.stopping:
            t_intended = base + offsets[k]
            if t_intended > now_ns() or burst == MAX_SENDS_UNYIELDED:
                break
            if self.in_flight >= cap:
                stats.shed += 1  # counted and reported, never silent waiting
            else:
                self._start(first + k, t_intended, False, self._mark_sent())
            k += shards
            burst += 1
        at[0] = k
        return base + offsets[k] if k < end else None
