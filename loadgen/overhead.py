"""What tracing costs against the baseline: latency paired by op_id (with a 95 % CI), and memory.

Arms run the same schedule and prompts, so op_id k was intended at the same offset with
the same request in every arm; pairing by op_id removes the variation between requests
(prompt size, output length) and leaves the tracer's cost plus noise. Only operations
that succeeded in both arms are paired.
"""

from __future__ import annotations

import math
import statistics
from array import array

# Two-sided 97.5 % quantiles of Student's t for small samples; past 30 the normal's 1.96.
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
         10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
         18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060,
         26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042}


def t975(degrees_of_freedom: int) -> float:
    return _T975.get(degrees_of_freedom, 1.96)


def latencies(encoded: str | None) -> array:
    """A worker's per-op latencies (ns; −1 = not done or failed) from their hex form."""
    values = array("q")
    if encoded:
        values.frombytes(bytes.fromhex(encoded))
    return values


def merge_latencies(parts: list[array]) -> array:
    """Shards fill disjoint op_ids; the merged array has each op's value from its shard."""
    size = max((len(p) for p in parts), default=0)
    merged = array("q", [-1]) * size
    for part in parts:
        for op_id, value in enumerate(part):
            if value >= 0:
                merged[op_id] = value
    return merged


def paired_overhead(baseline: array, arm: array) -> dict:
    """Mean Δ (ms) with its 95 % CI, and as % of the baseline mean, over ops done in both."""
    deltas, base = [], []
    for b, a in zip(baseline, arm):
        if b >= 0 and a >= 0:
            deltas.append((a - b) / 1e6)
            base.append(b / 1e6)
    n = len(deltas)
    if n < 2:
        return {"overhead_latency_ms": None, "overhead_latency_ci95_ms": None, "overhead_latency_percent": None,
                "overhead_pairs": n}
    mean = statistics.fmean(deltas)
    half = t975(n - 1) * statistics.stdev(deltas) / math.sqrt(n)
    base_mean = statistics.fmean(base)
    return {
        "overhead_latency_ms": round(mean, 4),
        "overhead_latency_ci95_ms": [round(mean - half, 4), round(mean + half, 4)],
        "overhead_latency_percent": round(100 * mean / base_mean, 3) if base_mean else None,
        "overhead_pairs": n,
    }


def steady_rss(samples: list, measure_start_s: float | None) -> tuple[float | None, int | None]:
    """(median RSS after warm-up, peak RSS) of one worker, in bytes."""
    if not samples:
        return None, None
    steady = [rss for t, rss in samples if measure_start_s is not None and t >= measure_start_s]
    return (statistics.median(steady) if steady else None), max(rss for _, rss in samples)


def memory_figures(result: dict) -> dict:
    """A run's steady-state RSS (mean over its workers of each one's median) and peak."""
    per_worker = result.get("rss_samples_by_worker") or [result.get("rss_samples") or []]
    starts = result.get("measure_start_s_by_worker") or [result.get("measure_start_s")]
    medians, peaks = [], []
    for samples, start in zip(per_worker, starts):
        median, peak = steady_rss(samples, start)
        if median is not None:
            medians.append(median)
        if peak is not None:
            peaks.append(peak)
    return {
        "rss_steady_mib": round(statistics.fmean(medians) / 2**20, 2) if medians else None,
        "rss_peak_mib": round(max(peaks) / 2**20, 2) if peaks else None,
    }


def memory_overhead(baseline: dict, arm: dict) -> dict:
    base, mine = memory_figures(baseline)["rss_steady_mib"], memory_figures(arm)["rss_steady_mib"]
    if base is None or mine is None:
        return {"memory_overhead_mib": None, "memory_overhead_percent": None}
    return {"memory_overhead_mib": round(mine - base, 2), "memory_overhead_percent": round(100 * (mine - base) / base, 3)}
