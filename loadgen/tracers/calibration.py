"""The `calibration` arm: a known cost, to show what the metrics resolve on this machine.

Per call it spins for a chosen number of microseconds on the event loop, synchronously,
as a tracer's hook would, and for the whole run it holds a chosen amount of memory
(written, so it is resident); it can also leak a chosen amount per call, which a soak
must flag. The overhead and memory figures must then report that cost;
issue 4's acceptance uses it to prove them.
"""

from __future__ import annotations

import time

from loadgen.prompts import Prompt
from loadgen.providers.base import CallRecord, Provider

PAGE = 4096


class CalibrationArm:
    name = "calibration"
    accounting = None

    def __init__(self, cpu_us: int = 0, mib: int = 0, leak_kib: float = 0) -> None:
        self.cpu_ns = cpu_us * 1000
        self.leak = round(leak_kib * 1024)
        self.leaked: list[bytes] = []  # a known leak: grows by `leak` bytes a call, never freed
        self.held = bytearray(mib * 2**20)
        # Touch every page so the memory is resident, not a lazily mapped zero page.
        for offset in range(0, len(self.held), PAGE):
            self.held[offset] = 1

    async def call(self, provider: Provider, prompt: Prompt, rec: CallRecord) -> None:
        if self.cpu_ns:
            deadline = time.perf_counter_ns() + self.cpu_ns
            while time.perf_counter_ns() < deadline:
                pass
        if self.leak:
            self.leaked.append(b"\x01" * self.leak)  # written, so resident
        await provider.call(prompt, rec)

    def provider_options(self) -> dict:
        return {}

    def flush(self) -> None:
        return None

    def shutdown(self) -> None:
        return None
