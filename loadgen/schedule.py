"""The schedule: arrival process + seed → intended start offsets. Pure, like vegeta's pacer.

Nothing here touches a clock, a socket or an event loop, so every rate is tested with
plain arithmetic. Offsets are integer nanoseconds from the start of the measured phase;
operation `op_id` is the index into the offsets, so the same profile and seed give every
process and every provider the same op_id → offset mapping.

Closed-loop load (concurrency, sequential) has no offsets: a virtual user's next call is
intended the moment its last one ends, which only the runner can know.
"""

from __future__ import annotations

import math
import random
from array import array
from dataclasses import dataclass

from loadgen.profile import ConstantLoad, PoissonLoad, Profile, RampLoad

NS = 1_000_000_000


@dataclass(frozen=True)
class ClosedLoopPlan:
    """N virtual users share one budget of operations (or one deadline)."""

    users: int
    operations: int | None
    duration_ns: int | None


def open_loop_offsets(
    load: ConstantLoad | PoissonLoad | RampLoad,
    *,
    seed: int,
    duration_s: float | None = None,
    operations: int | None = None,
) -> array:
    """Intended offsets (ns, ascending, first at 0) for the measured operations."""
    if (duration_s is None) == (operations is None):
        raise ValueError("give exactly one of duration_s or operations")
    if isinstance(load, ConstantLoad):
        return _constant(load.rate, duration_s, operations)
    if isinstance(load, PoissonLoad):
        return _poisson(load.rate, seed, duration_s, operations)
    if isinstance(load, RampLoad):
        return _ramp(load.rate, load.rate_end, duration_s, operations)
    raise TypeError(f"not an open-loop load: {load!r}")


def _constant(rate: float, duration_s: float | None, operations: int | None) -> array:
    # 200/s for 30 s → 6,000 operations at 0, 5 ms, … 29.995 s; the epsilon keeps
    # 0.1 × 30 from becoming 2.9999… → 2 operations.
    count = operations if operations is not None else math.floor(rate * duration_s + 1e-9)
    interval = NS / rate
    return array("q", (round(k * interval) for k in range(count)))


def _poisson(rate: float, seed: int, duration_s: float | None, operations: int | None) -> array:
    # A string seed is hashed with SHA-512 by `random`, so it is the same in every
    # process whatever PYTHONHASHSEED is.
    rng = random.Random(f"loadgen-schedule:{seed}")
    offsets = array("q")
    limit_ns = None if duration_s is None else duration_s * NS
    t = 0.0
    while True:
        if operations is not None and len(offsets) >= operations:
            break
        if limit_ns is not None and t >= limit_ns:
            break
        offsets.append(round(t))
        t += rng.expovariate(rate) * NS
    return offsets


def _ramp(rate0: float, rate1: float, duration_s: float | None, operations: int | None) -> array:
    # The rate rises linearly: r(t) = r0 + (r1 - r0)·t/D, so the expected count by t is
    # Λ(t) = r0·t + (r1 - r0)·t²/(2D); operation k is intended where Λ(t) = k.
    if duration_s is None:
        duration_s = 2 * operations / (rate0 + rate1)
    total = (rate0 + rate1) * duration_s / 2
    count = operations if operations is not None else math.floor(total + 1e-9)
    a = (rate1 - rate0) / (2 * duration_s)
    b = rate0
    offsets = array("q")
    for k in range(count):
        if abs(a) < 1e-12:
            t = k / b
        else:
            disc = max(0.0, b * b + 4 * a * k)
            t = (-b + math.sqrt(disc)) / (2 * a)
        offsets.append(round(t * NS))
    return offsets


def warmup_offsets(load: ConstantLoad | PoissonLoad | RampLoad, count: int) -> array:
    """Warm-up operations run before offset 0 at the starting rate, evenly spaced.

    They are negative offsets so that the measured schedule is the same whatever the
    warm-up: op_id k always has the same intended offset.
    """
    interval = NS / load.rate
    return array("q", (-round((count - k) * interval) for k in range(count)))


def closed_loop_plan(profile: Profile, shard: int = 0, shards: int = 1) -> ClosedLoopPlan:
    """Shard `shard` of K gets every K-th user and every K-th operation."""
    users = profile.load.users if profile.load.kind == "concurrency" else 1
    duration_ns = None if profile.duration is None else round(profile.duration * NS)
    operations = None if profile.operations is None else len(range(shard, profile.operations, shards))
    return ClosedLoopPlan(users=len(range(shard, users, shards)), operations=operations, duration_ns=duration_ns)


@dataclass(frozen=True)
class Block:
    """One round's share of the schedule: op_ids [first, last), or a closed-loop time slice."""

    index: int
    first: int | None
    last: int | None
    duration_ns: int | None = None
    start_ns: int = 0  # a time window's start in the schedule (streamed open loop)


class OffsetStream:
    """The open-loop schedule produced window by window, for runs of any length.

    A soak cannot hold its whole schedule (8 bytes an operation, for hours): the stream
    yields the same offsets as `open_loop_offsets` would, in order, and forgets them.
    """

    def __init__(self, load: ConstantLoad | PoissonLoad, seed: int) -> None:
        if not isinstance(load, (ConstantLoad, PoissonLoad)):
            raise ValueError("a streamed schedule needs a constant or poisson load")
        self.load = load
        self.rng = random.Random(f"loadgen-schedule:{seed}")
        self.next_op = 0
        self._t = 0.0  # the next offset, ns (poisson)

    def until(self, end_ns: int) -> tuple[int, array]:
        """(first op_id, offsets) of the operations intended before end_ns that are not yet taken."""
        first = self.next_op
        offsets = array("q")
        if isinstance(self.load, ConstantLoad):
            interval = NS / self.load.rate
            k = first
            while (t := round(k * interval)) < end_ns:
                offsets.append(t)
                k += 1
        else:
            while self._t < end_ns:
                offsets.append(round(self._t))
                self._t += self.rng.expovariate(self.load.rate) * NS
        self.next_op = first + len(offsets)
        return first, offsets


def windows(profile: Profile, window_s: float) -> list[Block]:
    """Consecutive time windows over the measured phase (a soak's); the last may be shorter."""
    total_ns = round(profile.duration * NS)
    window_ns = round(window_s * NS)
    count = max(1, math.ceil(total_ns / window_ns - 1e-9))
    return [Block(r, None, None, min(window_ns, total_ns - r * window_ns), start_ns=r * window_ns)
            for r in range(count)]


def blocks(profile: Profile, rounds: int) -> list[Block]:
    """Cut the measured operations into `rounds` consecutive blocks of (nearly) equal size.

    Every arm runs block r before any arm runs block r + 1, so slow drift on a shared
    machine lands on every arm alike. Closed-loop runs bounded by time get time slices.
    """
    if profile.open_loop:
        total = len(profile_offsets(profile))
    elif profile.operations is not None:
        total = profile.operations
    else:
        duration_ns = round(profile.duration * NS)
        return [Block(r, None, None, duration_ns * (r + 1) // rounds - duration_ns * r // rounds) for r in range(rounds)]
    rounds = max(1, min(rounds, total))
    return [Block(r, total * r // rounds, total * (r + 1) // rounds) for r in range(rounds)]


def profile_offsets(profile: Profile) -> array:
    """The measured offsets a profile implies (open loop only)."""
    return open_loop_offsets(
        profile.load, seed=profile.seed, duration_s=profile.duration, operations=profile.operations
    )


def planned_rate(offsets: array) -> float:
    """The schedule's own rate: (n − 1) / (last − first); what 'achieved' is compared to."""
    if len(offsets) < 2 or offsets[-1] == offsets[0]:
        return 0.0
    return (len(offsets) - 1) * NS / (offsets[-1] - offsets[0])
