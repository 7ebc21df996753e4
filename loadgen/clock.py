"""An asyncio event loop whose timers wake within microseconds, not milliseconds.

asyncio's epoll selector converts its timeout to whole milliseconds, rounding up, so a
timer can fire up to 1 ms late. At 500 calls/s the mean interval is 2 ms and the
validity rule allows a dispatch-lag p99 of 1 ms, so that rounding alone would break it.
`select()` takes a timeout in microseconds, and an epoll instance's own descriptor is
readable when any descriptor it watches is ready; so we wait with `select()` on the
epoll descriptor, then collect the ready events with a zero-timeout epoll poll.
"""

from __future__ import annotations

import asyncio
import select
import selectors


class PreciseEpollSelector(selectors.EpollSelector):
    """EpollSelector with a microsecond-precise timeout."""

    def select(self, timeout: float | None = None):  # type: ignore[override]
        if timeout is not None and timeout > 0:
            # Wait on the epoll descriptor itself with select()'s µs timeout.
            select.select([self._selector.fileno()], [], [], timeout)
            timeout = 0
        return super().select(timeout)


def new_event_loop() -> asyncio.AbstractEventLoop:
    return asyncio.SelectorEventLoop(PreciseEpollSelector())


def run(coro):
    """asyncio.run on the precise loop."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(coro)


# -- virtual time, for tests ---------------------------------------------------------------
#
# A test of pacing (the runner's dispatch, the mock's TTFT and stalls, the collector's delay
# fault) should not depend on how busy the machine is. On the virtual loop, time stands
# still while code runs and, when every task waits for a timer, jumps straight to the next
# one (trio's MockClock with autojump, for asyncio): a 0.3 s stall takes 0.3 s of virtual
# time exactly and almost no real time, however slow the machine. Code under test reads
# the same time through `VirtualClock.now_ns`, which is what `Runner(now_ns=...)` and the
# mock's and collector's `create_app(now_ns=...)` take.
#
# It is for code that runs in this one loop: in-process apps (httpx2.ASGITransport), fake
# providers. It waits for real for what only the outside world can end: jobs in threads
# started by `run_in_executor` (the SDKs' `asyncio.to_thread`), during which time stands
# still, and I/O when no timer is pending. A socket to another process may answer after a
# jump, so tests on real servers keep the real loop.

VIRTUAL_START_NS = 1_000_000_000  # not 0, so code that takes 0 for "not yet" is tested as run


class VirtualClock:
    """Virtual time in integer nanoseconds, and the event loops that run on it."""

    def __init__(self, start_ns: int = VIRTUAL_START_NS) -> None:
        self._ns = start_ns

    def now_ns(self) -> int:
        return self._ns

    def time(self) -> float:
        """The virtual time in seconds, as asyncio's loop.time() reports it."""
        return self._ns / 1e9

    def advance(self, seconds: float) -> None:
        # Rounded, not truncated: a timer set `d` seconds ahead, whose float deadline is
        # a hair off, wakes at exactly round(d * 1e9) ns later.
        self._ns += max(0, round(seconds * 1e9))

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return _VirtualTimeLoop(self)

    def run(self, coro):
        """asyncio.run on a loop in this clock's time."""
        with asyncio.Runner(loop_factory=self.new_event_loop) as runner:
            return runner.run(coro)


class _JumpingSelector(selectors.DefaultSelector):
    """Polls for I/O without waiting; when the loop would wait for a timer, moves the clock to it."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__()
        self.clock = clock
        self.threads = 0  # executor jobs under way: time stands still until they end

    def select(self, timeout: float | None = None):  # type: ignore[override]
        events = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None or self.threads:
            # Nothing to jump to, or a thread's result is still to come (it arrives through
            # the loop's self-pipe): wait for real.
            return super().select(None)
        # The loop asked to sleep `timeout`, the distance to its next timer: skip it.
        self.clock.advance(timeout)
        return []


class _VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self, clock: VirtualClock) -> None:
        self._jumping = _JumpingSelector(clock)
        super().__init__(self._jumping)

    def time(self) -> float:
        return self._jumping.clock.time()

    def run_in_executor(self, executor, func, *args):
        future = super().run_in_executor(executor, func, *args)
        self._jumping.threads += 1
        future.add_done_callback(self._thread_done)
        return future

    def _thread_done(self, _future) -> None:
        self._jumping.threads -= 1
