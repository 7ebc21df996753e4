"""The `calibration` arm: a known cost, to show what the metrics resolve on this machine.

Per call it holds the event loop for a chosen number of microseconds, synchronously, as a
tracer's hook would: busy-waiting (`spin`, CPU) or in `time.sleep` (`sleep`, no CPU), before
the provider call (its time is client time before the wire) or after it returns (client
time after the response). For the whole run it holds a chosen amount of memory (written, so
it is resident); it can also leak a chosen amount per call, which a soak must flag.

The known answer is the time the hook actually held the loop, measured around each
spin or sleep — not the nominal figure, which a sleep overshoots by the kernel's wake-up
slack. The hook keeps it for measured calls only (op_id ≥ 0; warm-up and priming calls
have negative op_ids), in loadgen.known_answer.HeldTime: no per-call list.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from loadgen.known_answer import HeldTime
from loadgen.prompts import Prompt
from loadgen.providers.base import Provider
from loadgen.results import CallRecord

PAGE = 4096


@dataclass(frozen=True)
class CalibrationSettings:
    """The known costs, from the profile's tracing table; plain data, so it crosses into workers."""

    hold_us: int = 0  # the loop is held this long per call (nominal)
    kind: Literal["spin", "sleep"] = "spin"  # spin: busy-wait (CPU); sleep: time.sleep (no CPU)
    at: Literal["before", "after"] = "before"  # before the provider call, or after it returns
    mib: int = 0  # held for the whole run
    leak_kib: float = 0  # held more after every call, never freed


class CalibrationArm:
    name = "calibration"
    accounting = None

    def __init__(self, settings: CalibrationSettings = CalibrationSettings()) -> None:
        self.settings = settings
        self.hold_ns = settings.hold_us * 1000
        self.spin = settings.kind == "spin"
        self.before = settings.at == "before"
        # The known answer, for measured calls: how long the hook held the loop.
        self.held = HeldTime()
        self.leak = round(settings.leak_kib * 1024)
        self.leaked: list[bytes] = []  # a known leak: grows by `leak` bytes a call, never freed
        self.memory = bytearray(settings.mib * 2**20)
        # Touch every page so the memory is resident, not a lazily mapped zero page.
        for offset in range(0, len(self.memory), PAGE):
            self.memory[offset] = 1

    async def call(self, provider: Provider, prompt: Prompt, rec: CallRecord) -> None:
        if self.leak:
            self.leaked.append(b"\x01" * self.leak)  # written, so resident
        if self.hold_ns and self.before:
            self._hold(rec.op_id)
        await provider.call(prompt, rec)
        # After the response, as a tracer's span-end hook: a call that raised has no latency
        # to carry it, so it is not held (nor counted in the held time).
        if self.hold_ns and not self.before:
            self._hold(rec.op_id)

    def _hold(self, op_id: int) -> None:
        """Block the event loop for hold_ns, as a tracer's synchronous hook would, and keep
        how long it really was held: the stamps sit right around the spin or the sleep."""
        start = time.perf_counter_ns()
        if self.spin:
            deadline = start + self.hold_ns
            while time.perf_counter_ns() < deadline:
                pass
        else:
            time.sleep(self.hold_ns / 1e9)
        held = time.perf_counter_ns() - start
        if op_id >= 0:
            self.held.record_ns(held)

    def known_answer(self) -> dict:
        """The worker result's `calibration` (loadgen.known_answer merges and summarises it)."""
        return self.held.entry(self.settings.kind, self.settings.at, self.settings.hold_us)

    def provider_options(self) -> dict:
        return {}

    def flush(self) -> None:
        return None

    def shutdown(self) -> None:
        return None
