"""Soak runs: time windows, each appended to a JSONL file as it closes, and a leak verdict.

In a soak every arm runs at once, window by window, for as long as the profile says. In
each worker a `WindowProbe` gives each window fresh histograms and reads the process's
figures when it closes (RSS, CPU, open files, threads, GC, the span pipeline); the
orchestrator side (`SoakLog`) merges a window's shards and appends one line per window and
arm, flushed and fsynced, so a soak killed at any moment keeps every finished window.
At the end the RSS slope after warm-up (MiB per hour, 95 % CI over the windows' retained RSS)
says whether the traced process leaks. A pile-up of calls in flight leaves a process's RSS a
step higher for good (a high-water mark: the allocator keeps the arenas those calls
fragmented); such steps are reported on their own and the slope is fitted between them.

Nothing here keeps per-request state: a soak's memory does not grow with its length.
"""

from __future__ import annotations

import gc
import json
import math
import os
import statistics
import time
import tracemalloc
from pathlib import Path
from typing import Callable

from loadgen.histograms import Recorder
from loadgen.overhead import t975
from loadgen.processes import release_memory
from loadgen.redact import redact_data
from loadgen.results import WorkerResult
from loadgen.settings import TracingSettings

WINDOW_HISTOGRAMS = ("latency", "ttft", "dispatch_lag")
TRACEMALLOC_TOP = 10
PILE_UP_FACTOR = 1.5  # a pile-up: calls in flight reach 1.5 times their earlier high…
PILE_UP_MIN_CALLS = 20  # …and at least 20 more


class WindowProbe:
    """In a worker: per-window histograms and process figures; bounded memory."""

    def __init__(self, runner, arm, sampler, trace_allocations: bool, warmup_windows: int) -> None:
        self.runner = runner
        self.arm = arm
        self.sampler = sampler
        self.total = runner.stats.h  # cumulative histograms, for the final summary
        self.window = {name: Recorder() for name in self.total}  # reused window after window
        self.errors: dict[str, int] = {}
        self.counts = (0, 0, 0)
        self.spans: dict | None = None
        self.cpu = sampler.cpu_seconds()
        self.wall = time.monotonic()
        # (window end in s since start, RSS then, calls in flight at their highest so far):
        # RSS sampled after the garbage is collected and free heap pages are returned, so it
        # is memory the process keeps.
        self.retained: list[tuple[float, int, int]] = []
        self.warmup_windows = warmup_windows
        self.baseline_snapshot = None  # after the warm-up windows, to compare the end with
        if trace_allocations:
            tracemalloc.start()

    def begin(self) -> None:
        stats = self.runner.stats
        for recorder in self.window.values():
            recorder.reset()
        stats.h = self.window
        self.counts = (stats.sent, stats.completed, stats.ok)
        self.errors = dict(stats.errors)
        self.cpu = self.sampler.cpu_seconds()
        self.wall = time.monotonic()
        del self.sampler.rss_samples[:]  # the window's own RSS samples

    def end(self, index: int) -> dict:
        stats = self.runner.stats
        window_h = stats.h
        for name, recorder in window_h.items():
            self.total[name].add(recorder)
        stats.h = self.total
        release_memory()
        self.sampler.sample()
        rss = [value for _, value in self.sampler.rss_samples]
        median = statistics.median(rss)
        self.retained.append((round(time.monotonic() - self.sampler.t0, 3), rss[-1], self.runner.peak_in_flight))
        process = self.sampler.process
        sent0, completed0, ok0 = self.counts
        wall = time.monotonic() - self.wall
        cpu = self.sampler.cpu_seconds() - self.cpu
        figures = {
            "index": index,
            "wall_s": round(wall, 3),
            "sent": stats.sent - sent0,
            "completed": stats.completed - completed0,
            "ok": stats.ok - ok0,
            "errors": {name: count - self.errors.get(name, 0) for name, count in stats.errors.items()
                       if count - self.errors.get(name, 0)},
            "histograms": {name: window_h[name].encode() for name in WINDOW_HISTOGRAMS},
            "rss_bytes": rss[-1],
            "rss_median_bytes": median,
            "in_flight_high_water": self.runner.peak_in_flight,
            "cpu_seconds": round(cpu, 4),
            "cpu_percent": round(100 * cpu / wall, 2) if wall > 0 else None,
            "open_fds": process.num_fds() if hasattr(process, "num_fds") else None,
            "threads": process.num_threads(),
            "gc_collections": [generation["collections"] for generation in gc.get_stats()],
            "spans": self._spans(),
        }
        if self.baseline_snapshot is None and tracemalloc.is_tracing() and index + 1 >= max(1, self.warmup_windows):
            self.baseline_snapshot = tracemalloc.take_snapshot()
        return figures

    def _spans(self) -> dict | None:
        accounting = getattr(self.arm, "accounting", None)
        if accounting is None:
            return None
        now = accounting.snapshot()
        before = self.spans or {"ended": 0, "exported": 0, "dropped": dict.fromkeys(now["dropped"], 0)}
        self.spans = now
        return {
            "ended": now["ended"] - before["ended"],
            "exported": now["exported"] - before["exported"],
            "dropped": {reason: count - before["dropped"].get(reason, 0) for reason, count in now["dropped"].items()},
            "queue_depth": now["in_queue"],
            "live": now["started"] - now["ended"],
        }

    def finish(self) -> dict:
        """What the worker's result carries: each window's retained RSS and the growth sites."""
        top = None
        if tracemalloc.is_tracing():
            current = tracemalloc.take_snapshot()
            if self.baseline_snapshot is not None:
                top = [
                    {"site": f"{stat.traceback[0].filename}:{stat.traceback[0].lineno}",
                     "size_diff_kib": round(stat.size_diff / 1024, 1), "count_diff": stat.count_diff}
                    for stat in sorted(current.compare_to(self.baseline_snapshot, "lineno"),
                                       key=lambda stat: stat.size_diff, reverse=True)[:TRACEMALLOC_TOP]
                ]
            tracemalloc.stop()
        return {"rss_retained": self.retained, "tracemalloc_top": top}


def rss_slope(points: list[tuple[float, float]], steps: list[int] = ()) -> dict:
    """Least-squares slope of RSS (MiB) over time (hours), with a 95 % CI; None when too few points.

    `steps` are the indices where the level may jump (pile-ups): one common slope is fitted
    with a level of its own for each segment between them, so a jump is not read as growth.
    """
    n = len(points)
    cuts = [0, *sorted(set(steps) - {0}), n]
    segments = [points[a:b] for a, b in zip(cuts, cuts[1:])]
    dof = n - len(segments) - 1
    centred = []  # (x − segment mean, y − segment mean)
    for segment in segments:
        mx = statistics.fmean(x for x, _ in segment)
        my = statistics.fmean(y for _, y in segment)
        centred += [(x - mx, y - my) for x, y in segment]
    sxx = sum(dx * dx for dx, _ in centred)
    if dof < 1 or sxx == 0:
        return {"slope_mib_per_hour": None, "ci95": None, "points": n}
    slope = sum(dx * dy for dx, dy in centred) / sxx
    se = math.sqrt(sum((dy - slope * dx) ** 2 for dx, dy in centred) / dof / sxx)
    half = t975(dof) * se
    return {"slope_mib_per_hour": round(slope, 3), "ci95": [round(slope - half, 3), round(slope + half, 3)],
            "points": n}


def pile_ups(high_water: list[int], before: int) -> list[int]:
    """The windows (indices after the first) whose calls in flight rose to a new high.

    `high_water[k]` is the most calls in flight up to the end of window k, `before` that
    before the first. A pile-up (the target or the loop stalled) leaves the RSS a step higher
    for good; these are where the slope allows a step.
    """
    found, high = [], before
    for k, peak in enumerate(high_water):
        if k and peak >= max(high * PILE_UP_FACTOR, high + PILE_UP_MIN_CALLS):
            found.append(k)
        high = max(high, peak)
    return found


def leak_verdict(slope: dict, limit_mib_per_hour: float) -> str:
    """'leak' when the whole CI is above the limit, 'no leak' when it is below, else 'inconclusive'."""
    ci = slope["ci95"]
    if ci is None:
        return "inconclusive"
    if ci[0] > limit_mib_per_hour:
        return "leak"
    if ci[1] <= limit_mib_per_hour:
        return "no leak"
    return "inconclusive"


def memory_verdicts(results: list[WorkerResult], warmup_windows: int, limit_mib_per_hour: float) -> list[dict]:
    """Per provider/arm: the RSS slope over the windows after warm-up, and the verdict.

    With several workers per arm the RSS is their sum at each window (a leak in any shows),
    and so are their calls in flight. Pile-ups are listed with the RSS step each made.
    """
    verdicts = []
    for result in results:
        per_worker = [figures for figures in result.soak_by_worker if figures]
        series = [worker["rss_retained"] for worker in per_worker]
        length = min((len(s) for s in series), default=0)
        points = [(series[0][k][0] / 3600, sum(s[k][1] for s in series) / 2**20) for k in range(warmup_windows, length)]
        high_water = [sum(s[k][2] for s in series) for k in range(length)]
        before = high_water[warmup_windows - 1] if 0 < warmup_windows <= length else 0
        steps = pile_ups(high_water[warmup_windows:], before)
        slope = rss_slope(points, steps)
        verdicts.append({
            "provider": result.provider, "arm": result.arm, **slope,
            "limit_mib_per_hour": limit_mib_per_hour, "verdict": leak_verdict(slope, limit_mib_per_hour),
            "pile_ups": [{"window": warmup_windows + k, "in_flight_high_water": high_water[warmup_windows + k],
                          "rss_step_mib": round(points[k][1] - points[k - 1][1], 2)} for k in steps],
            "tracemalloc_top": next((w["tracemalloc_top"] for w in per_worker if w.get("tracemalloc_top")), None),
        })
    return verdicts


class SoakLog:
    """The orchestrator's side: merge each window's shards, append one JSONL line per window and arm.

    Each line is flushed and fsynced as it is written: a soak killed with SIGKILL keeps
    every window that closed before it.
    """

    def __init__(self, path: str | Path, collector_figures: Callable[[str, str], dict | None]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.collector_figures = collector_figures
        self.pending: dict[tuple[str, str, int], list[dict]] = {}
        self.received: dict[str, int] = {}  # run_id → spans received so far, for per-window deltas
        self.lines = 0
        self.windows: list[dict] = []  # every window line, for the document (its charts need no JSONL)

    def add(self, provider: str, arm: str, shards: int, figures: dict, tracing: TracingSettings | None) -> dict | None:
        """One worker's window; once every shard of it is in, the merged line is written and returned."""
        key = (provider, arm, figures["index"])
        parts = self.pending.setdefault(key, [])
        parts.append(figures)
        if len(parts) < shards:
            return None
        del self.pending[key]
        line = merge_window(provider, arm, parts)
        gc.collect()  # the merged histograms' cycles (see WindowProbe.end)
        if line["spans"] is not None and tracing is not None and tracing.collector_url:
            # Each window ends with its spans flushed and ACKed, so the collector's count
            # is complete for it.
            totals = self.collector_figures(tracing.collector_url, tracing.run_id)
            if totals is not None:
                run_id = tracing.run_id
                line["spans"]["received"] = totals["spans_received"] - self.received.get(run_id, 0)
                self.received[run_id] = totals["spans_received"]
        self.write(line)
        self.windows.append(redact_data(line))
        return line

    def write(self, record: dict) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(redact_data(record)) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.lines += 1


def merge_window(provider: str, arm: str, parts: list[dict]) -> dict:
    """One line: the window's shards added up (histograms merged, process figures summed)."""
    histograms = {name: Recorder() for name in WINDOW_HISTOGRAMS}
    errors: dict[str, int] = {}
    for part in parts:
        for name in WINDOW_HISTOGRAMS:
            histograms[name].add_encoded(part["histograms"][name])
        for name, count in part["errors"].items():
            errors[name] = errors.get(name, 0) + count
    spans = [part["spans"] for part in parts if part["spans"]]
    line = {
        "type": "window",
        "provider": provider,
        "arm": arm,
        "window": parts[0]["index"],
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_s": max(part["wall_s"] for part in parts),
        "sent": sum(part["sent"] for part in parts),
        "completed": sum(part["completed"] for part in parts),
        "ok": sum(part["ok"] for part in parts),
        "errors": errors,
        "latency_ms": histograms["latency"].summary_ms(),
        "ttft_ms": histograms["ttft"].summary_ms(),
        "dispatch_lag_ms": histograms["dispatch_lag"].summary_ms(),
        "rss_mib": round(sum(part["rss_bytes"] for part in parts) / 2**20, 2),
        "rss_median_mib": round(sum(part["rss_median_bytes"] for part in parts) / 2**20, 2),
        "in_flight_high_water": sum(part["in_flight_high_water"] for part in parts),
        "cpu_seconds": round(sum(part["cpu_seconds"] for part in parts), 3),
        "cpu_percent_by_worker": [part["cpu_percent"] for part in parts],
        "open_fds": _sum(part["open_fds"] for part in parts),
        "threads": sum(part["threads"] for part in parts),
        "gc_collections": [sum(gens) for gens in zip(*(part["gc_collections"] for part in parts))],
        "spans": None,
    }
    if spans:
        line["spans"] = {
            "ended": sum(s["ended"] for s in spans),
            "exported": sum(s["exported"] for s in spans),
            "dropped": {reason: sum(s["dropped"][reason] for s in spans) for reason in spans[0]["dropped"]},
            "queue_depth": sum(s["queue_depth"] for s in spans),
            "live": sum(s["live"] for s in spans),
            "received": None,  # filled in from the collector when it can tell
        }
    return line


def _sum(values) -> int | None:
    values = list(values)
    return None if any(v is None for v in values) else sum(values)


def finish(log: SoakLog, results: list[WorkerResult], soak) -> dict:
    """The soak's verdicts, appended to the JSONL as its last line and returned for the document."""
    verdicts = memory_verdicts(results, soak.warmup_windows, soak.leak_mib_per_hour)
    summary = {"jsonl": str(log.path), "window_s": soak.window, "warmup_windows": soak.warmup_windows,
               "window_lines": log.lines, "memory": verdicts}
    log.write({"type": "summary", **summary})
    return {**summary, "windows": log.windows}

