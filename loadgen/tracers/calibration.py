"""The `calibration` arm: a known cost, to show what the metrics resolve on this machine.

Per call it holds the event loop (with the sync client, the calling thread: see `Held`) for
a chosen number of microseconds, synchronously, as a tracer's hook would: busy-waiting
(`spin`, CPU) or in `time.sleep` (`sleep`, no CPU), before the provider call (its time is
client time before the wire) or after it returns (client time after the response). For
the whole run it holds a chosen amount of memory (written, so it is resident); it can also
leak a chosen amount per call, which a soak must flag.

The known answer is the time the hook actually held the loop, measured around each
spin or sleep — not the nominal figure, which a sleep overshoots by the kernel's wake-up
slack. The hook keeps it for measured calls only (op_id ≥ 0; warm-up and priming calls
have negative op_ids), in loadgen.known_answer.HeldTime: no per-call list.
"""

from __future__ import annotations

import time

from loadgen.known_answer import HeldTime
from loadgen.prompts import Prompt
from loadgen.providers.base import Provider, SyncProvider
from loadgen.results import CallRecord
from loadgen.settings import CalibrationSettings, TracingSettings
from loadgen.tracers.base import NoTracing, Traced

PAGE = 4096


class CalibrationArm(NoTracing):
    """A known cost in place of a tracer; like the baseline, it exports nothing (no flush,
    no span accounting)."""
    name = "calibration"

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

    def wrap(self, provider: Provider) -> Provider:
        return Held(provider, self)

    def hold(self, op_id: int) -> None:
        """Block the event loop (with the sync client, the calling thread) for hold_ns, as a
        tracer's synchronous hook would, and keep how long it really was held: the stamps
        sit right around the spin or the sleep."""
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


class Held(Traced):
    """Each call with the arm's known costs: the leak, and the hold before or after it.

    With the sync client (`call_sync`, in a pool thread) the hold holds that thread, not an
    event loop: a `sleep` hold releases the GIL, so the other threads run on (a hook that
    waits, as on I/O); a `spin` hold keeps the GIL, handing it over at most once per switch
    interval (5 ms), so the other threads wait too (a hook that computes in Python)."""

    def __init__(self, provider: Provider | SyncProvider, arm: CalibrationArm) -> None:
        super().__init__(provider)
        self.arm = arm

    async def call(self, prompt: Prompt, rec: CallRecord) -> None:
        self.before(rec)
        await self.provider.call(prompt, rec)
        self.after(rec)

    def call_sync(self, prompt: Prompt, rec: CallRecord) -> None:
        self.before(rec)
        self.provider.call_sync(prompt, rec)
        self.after(rec)

    def before(self, rec: CallRecord) -> None:
        arm = self.arm
        if arm.leak:
            arm.leaked.append(b"\x01" * arm.leak)  # written, so resident
        if arm.hold_ns and arm.before:
            arm.hold(rec.op_id)

    def after(self, rec: CallRecord) -> None:
        # After the response, as a tracer's span-end hook: a call that raised has no latency
        # to carry it, so it is not held (nor counted in the held time).
        if self.arm.hold_ns and not self.arm.before:
            self.arm.hold(rec.op_id)


def calibration_arm(settings: TracingSettings | None, provider_name: str, model: str,
                    calibration: CalibrationSettings | None) -> CalibrationArm:
    """The `calibration` arm's factory (loadgen.arms)."""
    return CalibrationArm(calibration or CalibrationSettings())
