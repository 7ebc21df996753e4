"""How late the sync client's dispatcher hands calls over (issue 16): its sleep, on one core.

The thread runner (loadgen/sync_runner.py) at 50 calls/s for 4 s on a fake provider whose call
is 1 ms of Python work (holding the GIL, as the SDK's request building does) and then 170 ms of
sleep (the server), 18 threads, pinned to one core as a worker is. Printed: the dispatch lag
(intended start → a pool thread has the call) p50/p99, for the runner as shipped (the
dispatcher sleeps with `time.sleep`) and for the same runner sleeping with a timed
`threading.Event.wait`, in one run, alternating, so the ratio is what to read.

Why it matters: CPython fixes a `time.sleep` deadline before it lets the GIL go; a timed lock
wait computes its deadline after. A pool thread just handed a call takes the GIL in between
and holds it for its whole turn, so the timed wait ends late by that turn, every call.

    .venv/bin/python benchmarks/bench_sync_dispatch.py [--rounds 2] [--work-ms 1] [--core 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import threading
import time

from _common import command_line

from loadgen.profile_files import load_profile
from loadgen.sync_runner import GilProbe, ThreadRunner


class Work:
    """A sync provider: `work_s` of Python work holding the GIL, then a 170 ms wait for the 'server'."""

    name = "fake"

    def __init__(self, work_s: float) -> None:
        self.work_s = work_s

    def call_sync(self, prompt, rec) -> None:
        deadline = time.perf_counter() + self.work_s
        while time.perf_counter() < deadline:
            pass
        time.sleep(0.17)
        rec.output_tokens = 3

    def close(self) -> None:
        pass


class EventWaitRunner(ThreadRunner):
    """The same runner with the dispatcher sleeping in a timed Event.wait (the first version)."""

    _never = threading.Event()

    def _wait_until(self, t_ns: int) -> bool:
        delay = t_ns - self.now_ns()
        if delay > 0:
            self._never.wait(delay / 1e9)
        return self.stopping


def lag(runner_class, work_s: float) -> tuple[float, float]:
    profile = load_profile(None, {"provider": "openai", "load": {"kind": "constant", "rate": 50}, "duration": 4})
    runner = runner_class(profile, Work(work_s), threads=18)
    asyncio.run(runner.run())
    runner.close()
    summary = runner.stats.h["dispatch_lag"].summary_ms()
    return summary["p50"], summary["p99"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work-ms", type=float, default=1.0)
    parser.add_argument("--core", type=int, default=1)
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.core})
    GilProbe.start = lambda self: None  # the probe's own wake-ups are not what is measured here
    GilProbe.cpu_ns = lambda self: 0
    rows = {"time.sleep (shipped)": [], "Event.wait (timed)": []}
    for _ in range(args.rounds):
        rows["time.sleep (shipped)"].append(lag(ThreadRunner, args.work_ms / 1000))
        rows["Event.wait (timed)"].append(lag(EventWaitRunner, args.work_ms / 1000))
    print(f"dispatch lag, 50 calls/s × 4 s, {args.work_ms:g} ms of GIL-holding work a call, 18 threads, core {args.core}")
    for name, figures in rows.items():
        cells = ", ".join(f"p50 {p50:.3f} p99 {p99:.3f} ms" for p50, p99 in figures)
        print(f"  {name:<22} {cells}")
    shipped = max(p50 for p50, _ in rows["time.sleep (shipped)"])
    timed = min(p50 for p50, _ in rows["Event.wait (timed)"])
    print(f"p50 ratio (timed wait ÷ sleep, worst against best): {timed / shipped:.1f}")
    print(f"reproduce: {command_line()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
