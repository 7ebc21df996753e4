"""Which faults hit a request; the stall gate that freezes the mock; the pacer that honours both;
the log of what the faults did.

Fault windows are relative to a time zero, so they are turned into absolute monotonic
times only once it is known (`FaultPlan.arm`): the first API request's arrival, or the
t0 the harness posts to `/_mock/arm` (`MockConfig.faults_from`). Whether a fault hits a request is one draw per fault spec from an RNG seeded by
(seed, request sequence number): a given request sees the same faults on every run,
and the draws do not share state with the latency RNG, so adding a fault never changes
the latencies of the requests it misses.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic_ns
from typing import Any

from .config import FAULT_KINDS, FaultSpec, MockConfig

# An open-ended window (duration_s None) ends at this "time": later than any run.
FOREVER_NS = 1 << 62
# A stall is slept in slices of at most this, so a stall that is ended early (reset) or
# extended (another POST /_mock/stall) is noticed soon.
_STALL_SLICE_NS = 250_000_000
# Waking this close to a deadline counts as on time; sleeping for less would spin the loop.
_WAKE_SLACK_NS = 100_000
# Entries the fault log keeps; older ones fall off and are counted as dropped.
MAX_FAULT_LOG = 100_000

Window = tuple[int, int]  # [start_ns, end_ns) in the app's clock (time.monotonic_ns() unless a test's)
Request = tuple[int, int, str, bool]  # what the fault log says of a request: (seq, arrival_ns, api, stream)


@dataclass(frozen=True, slots=True)
class Drawn:
    """The faults one request drew: at most one that changes its response, plus stall windows."""

    fault: FaultSpec | None  # any kind but stall
    stalls: tuple[Window, ...]  # windows of stall faults this request is subject to


NO_FAULTS = Drawn(None, ())


class FaultPlan:
    """The configured faults, placed in time once their time zero is known."""

    __slots__ = ("_specs", "_seed", "_draw_rng", "_windows")

    def __init__(self, config: MockConfig) -> None:
        self._specs = tuple(config.faults)
        self._seed = config.seed
        # Only when some fault is probabilistic is an RNG needed at all.
        self._draw_rng = any(spec.probability < 1.0 for spec in self._specs)
        self._windows: tuple[tuple[FaultSpec, int, int], ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self._specs)

    @property
    def armed(self) -> bool:
        return bool(self._windows)

    def arm(self, t0_ns: int) -> None:
        """Place every fault window relative to `t0_ns` (again, if already placed)."""
        windows = []
        for spec in self._specs:
            start = t0_ns + int(spec.start_s * 1e9)
            end = FOREVER_NS if spec.duration_s is None else start + int(spec.duration_s * 1e9)
            windows.append((spec, start, end))
        self._windows = tuple(windows)

    def disarm(self) -> None:
        """Forget the placement: no request is faulted until the windows are placed again."""
        self._windows = ()

    def windows(self) -> list[dict[str, Any]]:
        """The placed windows in config order, [] before placing; end_ns None when open-ended."""
        return [{"kind": spec.kind, "start_ns": start, "end_ns": None if end == FOREVER_NS else end}
                for spec, start, end in self._windows]

    def draw(self, seq: int, arrival_ns: int) -> Drawn:
        """The faults request number `seq`, arriving at `arrival_ns`, is subject to.

        The response-changing fault is the first one, in config order, whose window holds
        the arrival and whose draw hits. A stall fault that hits applies whenever its
        window is open while this request is waiting or being answered.
        """
        if not self._windows:
            return NO_FAULTS
        rng = random.Random(f"faults/{self._seed}/{seq}") if self._draw_rng else None
        fault: FaultSpec | None = None
        stalls: list[Window] = []
        for spec, start, end in self._windows:
            # Draw for every spec, hit or not, so each spec's outcome is independent of the others.
            hit = rng.random() < spec.probability if rng is not None else True
            if not hit:
                continue
            if spec.kind == "stall":
                if arrival_ns < end:
                    stalls.append((start, end))
            elif fault is None and start <= arrival_ns < end:
                fault = spec
        if fault is None and not stalls:
            return NO_FAULTS
        return Drawn(fault, tuple(stalls))


class StallGate:
    """Holds responses while a stall is on: one started by `POST /_mock/stall`, or a stall fault.

    A stalled response sends nothing until the stall ends and then proceeds normally: its
    remaining schedule is shifted by the time it was held.
    """

    __slots__ = ("until_ns", "now_ns")

    def __init__(self, now_ns: Callable[[], int] = monotonic_ns) -> None:
        self.until_ns = 0  # end of the stall started through the control API; 0 = none
        self.now_ns = now_ns  # the app's clock, which the pacers of its responses share

    def start(self, seconds: float) -> None:
        """Stall everything for `seconds` from now (extends, never shortens, a running stall)."""
        self.until_ns = max(self.until_ns, self.now_ns() + int(seconds * 1e9))

    def clear(self) -> None:
        self.until_ns = 0

    def stalled(self, stalls: tuple[Window, ...]) -> bool:
        """Cheap check whether `hold` might wait: a control stall is set or fault stalls apply."""
        return self.until_ns != 0 or bool(stalls)

    async def hold(self, stalls: tuple[Window, ...]) -> int:
        """Wait while any stall that applies is open; return the nanoseconds waited."""
        waited = 0
        now_ns = self.now_ns
        while True:
            now = now_ns()
            end = self.until_ns
            if end <= now:
                end = 0
                self.until_ns = 0
            for start, stop in stalls:
                if start <= now < stop and stop > end:
                    end = stop
            if end <= now:
                return waited
            await asyncio.sleep(min(end - now, _STALL_SLICE_NS) / 1e9)
            waited += now_ns() - now


class FaultLog:
    """The faults counted by kind, and a bounded log of the requests they hit.

    `add` both counts and logs, so the log and the counters agree exactly (but for the
    entries that fell off the log, which `dropped` counts): a test can compare the log,
    request for request, with the errors a client saw.
    """

    __slots__ = ("counts", "_entries")

    def __init__(self) -> None:
        self.counts = dict.fromkeys(FAULT_KINDS, 0)
        self._entries: deque[tuple[str, Request]] = deque(maxlen=MAX_FAULT_LOG)

    def add(self, kind: str, request: Request) -> None:
        self.counts[kind] += 1
        self._entries.append((kind, request))

    def to_json(self) -> dict[str, Any]:
        """`{"faults": [{"seq", "arrival_ns", "kind", "api", "stream"}, ...], "dropped": n}`, oldest first."""
        entries = [{"seq": seq, "arrival_ns": arrival, "kind": kind, "api": api, "stream": stream}
                   for kind, (seq, arrival, api, stream) in self._entries]
        return {"faults": entries, "dropped": sum(self.counts.values()) - len(entries)}


class Pacer:
    """Sleeps one response to each deadline on its schedule and holds it through stalls."""

    __slots__ = ("_gate", "_stalls", "_log", "_request", "_held")

    def __init__(self, gate: StallGate, stalls: tuple[Window, ...], log: FaultLog, request: Request) -> None:
        self._gate = gate
        self._stalls = stalls
        self._log = log
        self._request = request  # logged, as a "stall", if this response is held
        self._held = False

    async def wait(self, deadline: int) -> int:
        """Sleep until `deadline` (ns in the gate's clock), then through any stall; return the ns stalled."""
        now_ns = self._gate.now_ns
        remaining = deadline - now_ns()
        while remaining > _WAKE_SLACK_NS:  # the loop's millisecond timers may wake a little early
            await asyncio.sleep(remaining / 1e9)
            remaining = deadline - now_ns()
        if not self._gate.stalled(self._stalls):
            return 0
        held = await self._gate.hold(self._stalls)
        if held and not self._held:
            self._held = True
            self._log.add("stall", self._request)  # responses held by a stall, each counted once
        return held
