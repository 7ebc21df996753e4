"""The calibration arm's known answer: how long its hook really held the event loop per call.

The hook (loadgen/tracers/calibration.py) stamps perf_counter_ns right around each spin or
sleep; that held time, not the nominal figure, is what the overhead must recover. It is
kept for measured calls only, as a sum, a count, a maximum and an HDR histogram (no
per-call list), so any number of worker results (shards, replicas) merge by adding.

This module is plain data and arithmetic, apart from the tracers package, so the
metrics stage can merge and summarise it without importing a tracer's pipeline.
"""

from __future__ import annotations

from loadgen.histograms import Recorder

# What the run summary's `calibration` shows (the rest of a worker's entry is for merging).
FIGURES = ("kind", "at", "nominal_us", "calls", "held_mean_ms", "held_p50_ms", "held_p99_ms", "held_max_ms")


class HeldTime:
    """Held time per measured call: O(1) per call, no per-call list."""

    __slots__ = ("calls", "total_ns", "max_ns", "histogram")

    def __init__(self) -> None:
        self.calls = 0
        self.total_ns = 0
        self.max_ns = 0
        self.histogram = Recorder()

    def record_ns(self, held_ns: int) -> None:
        self.calls += 1
        self.total_ns += held_ns
        if held_ns > self.max_ns:
            self.max_ns = held_ns
        self.histogram.record_ns(held_ns)

    def entry(self, kind: str, at: str, nominal_us: int) -> dict:
        """The worker result's `calibration`: the figures, and the sums merging needs."""
        return _with_figures({"kind": kind, "at": at, "nominal_us": nominal_us, "calls": self.calls,
                              "held_total_ns": self.total_ns, "held_max_ns": self.max_ns,
                              "held_histogram": self.histogram.encode()})


def _with_figures(raw: dict) -> dict:
    """The raw sums plus the figures in ms: mean (exact, from the sum), p50 and p99 (HDR, 3
    significant digits) and max (exact); None when no measured call was held."""
    calls = raw["calls"]
    summary = Recorder.decode(raw["held_histogram"]).summary_ms()
    return {
        **raw,
        "held_mean_ms": round(raw["held_total_ns"] / calls / 1e6, 4) if calls else None,
        "held_p50_ms": summary["p50"],
        "held_p99_ms": summary["p99"],
        "held_max_ms": round(raw["held_max_ns"] / 1e6, 4) if calls else None,
    }


def merge_held(entries: list[dict | None]) -> dict | None:
    """One arm's known answer from any number of worker results: sums and counts add, the
    maximum is the largest, the histograms merge. None when no worker carried one."""
    present = [entry for entry in entries if entry]
    if not present:
        return None
    histogram = Recorder()
    for entry in present:
        histogram.add_encoded(entry["held_histogram"])
    first = present[0]
    return _with_figures({
        "kind": first["kind"],
        "at": first["at"],
        "nominal_us": first["nominal_us"],
        "calls": sum(entry["calls"] for entry in present),
        "held_total_ns": sum(entry["held_total_ns"] for entry in present),
        "held_max_ns": max(entry["held_max_ns"] for entry in present),
        "held_histogram": histogram.encode(),
    })


def held_figures(entry: dict | None) -> dict | None:
    """The run summary's `calibration` (None for an arm that is not the calibration arm)."""
    return None if entry is None else {key: entry[key] for key in FIGURES}
