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
# The raw client's dispatcher asks to be woken before a send by as much as the loop's wake-ups
# have lately been late (a running mean, at most MAX_EARLY_WAKE_NS) plus a margin, and
# busy-waits the rest. The loop wakes ~30 µs after a timer's time when busy (dispatch-lag p50
# at 10,000/s with timer slack 1 ns), less when idle; waking early cut the server's
# inter-arrival CV of a Poisson 10,000/s from 1.06 to 1.01 (benchmarks/RESULTS.md).
WAKE_MARGIN_NS = 5_000
MAX_EARLY_WAKE_NS = 60_000


class RawDispatch:
    """The raw path's methods of `Runner` (which holds the state they use)."""

    def _send(self, op_id: int, t_intended: int, warmup: bool, t_start: int, done=None) -> None:
        """The raw client's call: its request is written now, in the dispatcher at t_start (a task
        would write it only after the loop's other work, bunching the sends); it ends in `_settle`
        (through `done`, when given)."""
        rec = self._record(op_id, t_intended, warmup, t_start)
        self._send_raw(self.request_for(op_id, warmup), rec,
                       done or (self._settle_warmup if warmup else self._settle_measured))

    async def _send_and_wait(self, op_id: int, t_intended: int, warmup: bool, t_start: int) -> None:
        """`_send`, awaited: a closed-loop user's next call starts when this one ends."""
        ended = asyncio.get_running_loop().create_future()

        def settle(rec: CallRecord, message: str | None) -> None:
            self._settle(rec, warmup, message)
            ended.set_result(None)

        self._send(op_id, t_intended, warmup, t_start, settle)
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
        as early as its wake-ups have lately been late, and busy-waits the rest."""
        self._pump_at = [(self.shard - first) % self.shards, first, base, offsets]
        try:
            now_ns = self.now_ns
            # On a virtual clock (tests) time stands still while code runs: no busy-wait there.
            adapt = now_ns is time.perf_counter_ns
            early = WAKE_MARGIN_NS if adapt else 0
            while not self.stopping and (due := self._pump()) is not None:
                delay = due - now_ns()
                if delay > early:
                    wake_at = due - early
                    await asyncio.sleep((wake_at - now_ns()) / 1e9)
                    if adapt:
                        # How late the loop woke, as a running mean: ask that much (and a
                        # margin) before the next send, so the wait below stays a few µs.
                        late = min(now_ns() - wake_at, MAX_EARLY_WAKE_NS)
                        early += (max(late, 0) + WAKE_MARGIN_NS - early) >> 3
                else:
                    await asyncio.sleep(0)
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
