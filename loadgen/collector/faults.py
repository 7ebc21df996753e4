"""Which faults hit an export request: windows placed at the first export, one seeded draw per fault.

Fault windows are relative to the first export the collector receives, so they become
absolute monotonic times only when it arrives (`FaultPlan.arm`). Whether a fault hits a
request is one draw per fault from an RNG seeded by (seed, request sequence number): a
given request sees the same faults on every run, and a fault added to the config does
not change which requests the others hit.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .config import CollectorConfig, CollectorFault

# An open-ended window (duration_s None) ends at this "time": later than any run.
FOREVER_NS = 1 << 62


@dataclass(frozen=True, slots=True)
class Drawn:
    """What one request drew: a delay before answering, and at most one fault that decides the answer."""

    delay_s: float  # the sum of the delays of the delay faults that hit
    fault: CollectorFault | None  # the first non-delay fault that hit, in config order


NO_FAULTS = Drawn(0.0, None)


class FaultPlan:
    """The configured faults, placed in time once the first export has arrived."""

    __slots__ = ("_faults", "_seed", "_draw_rng", "_windows", "_down")

    def __init__(self, config: CollectorConfig) -> None:
        self._faults = tuple(config.faults)
        self._seed = config.seed
        # Only when some fault is probabilistic is an RNG needed at all.
        self._draw_rng = any(f.probability < 1.0 for f in self._faults if f.kind != "down")
        self._windows: tuple[tuple[CollectorFault, int, int], ...] = ()
        self._down: tuple[tuple[int, int], ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self._faults)

    @property
    def armed(self) -> bool:
        return bool(self._windows)

    def arm(self, first_export_ns: int) -> None:
        """Place every fault window relative to the first export's arrival."""
        windows = []
        for fault in self._faults:
            start = first_export_ns + int(fault.start_s * 1e9)
            end = FOREVER_NS if fault.duration_s is None else start + int(fault.duration_s * 1e9)
            windows.append((fault, start, end))
        self._windows = tuple(windows)
        self._down = tuple((start, end) for fault, start, end in windows if fault.kind == "down")

    def disarm(self) -> None:
        """Forget the placement: the next export places the windows again (after a reset)."""
        self._windows = ()
        self._down = ()

    def down(self, now_ns: int) -> bool:
        """Whether a down window holds `now_ns` (down ignores probability: it is the whole window)."""
        return any(start <= now_ns < end for start, end in self._down)

    def draw(self, seq: int, arrival_ns: int) -> Drawn:
        """The faults export number `seq`, arriving at `arrival_ns`, is subject to (down excluded)."""
        if not self._windows:
            return NO_FAULTS
        rng = random.Random(f"collector-faults/{self._seed}/{seq}") if self._draw_rng else None
        delay_s = 0.0
        hit: CollectorFault | None = None
        for fault, start, end in self._windows:
            # Draw for every fault, in window or not, so each one's outcome is independent.
            drawn = rng.random() < fault.probability if rng is not None else True
            if fault.kind == "down" or not drawn or not start <= arrival_ns < end:
                continue
            if fault.kind == "delay":
                delay_s += fault.delay_ms / 1000
            elif hit is None:
                hit = fault
        if hit is None and not delay_s:
            return NO_FAULTS
        return Drawn(delay_s, hit)
