"""Which faults hit an export request: windows placed at a time zero, one seeded draw per fault.

Fault windows are relative to a time zero, so they become absolute monotonic times only
once it is known (`FaultPlan.arm`): the first export's arrival, or the t0 the harness
posts to `/_collector/arm` (`CollectorConfig.faults_from`). Whether a fault hits a
request is one draw per fault from an RNG seeded by (seed, request sequence number): a
given request sees the same faults on every run, and a fault added to the config does
not change which requests the others hit.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

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
    """The configured faults, placed in time once their time zero is known."""

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

    def arm(self, t0_ns: int) -> None:
        """Place every fault window relative to `t0_ns` (again, if already placed)."""
        windows = []
        for fault in self._faults:
            start = t0_ns + int(fault.start_s * 1e9)
            end = FOREVER_NS if fault.duration_s is None else start + int(fault.duration_s * 1e9)
            windows.append((fault, start, end))
        self._windows = tuple(windows)
        self._down = tuple((start, end) for fault, start, end in windows if fault.kind == "down")

    def disarm(self) -> None:
        """Forget the placement: no export is faulted until the windows are placed again (after a reset)."""
        self._windows = ()
        self._down = ()

    def windows(self) -> list[dict[str, Any]]:
        """The placed windows in config order, [] before placing; end_ns None when open-ended."""
        return [{"kind": fault.kind, "start_ns": start, "end_ns": None if end == FOREVER_NS else end}
                for fault, start, end in self._windows]

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
