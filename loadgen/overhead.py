"""What tracing costs against the baseline: paired by op_id, with an honest 95 % CI; and memory.

Arms run the same schedule and prompts, so op_id k was intended at the same offset with
the same request in every arm; pairing by op_id removes the variation between requests
(prompt size, output length) and leaves the tracer's cost plus noise. Only operations
that succeeded in both arms are paired.

Why the interval is not over the pairs. Pairs that ran in one block share its conditions
(the machine's state for those seconds, the two processes that ran them), so they are not
independent: in A/A runs here the block means of Δ spread with sd 0.1–0.4 ms where pairs
alone predict 0.04–0.07, and an interval over pairs excluded 0 in 16 of 22 runs. The unit
is therefore the block: each block's mean Δ is one observation ("batch means"). Two
processes doing the same work also differ (one A/A worker used 12.3 % CPU where its twin
used 10.6 %), so each arm has several worker processes ("replicas") taking the blocks in
rotation, replica i of every arm paired with replica i of the baseline (fleet.replica_for):
the R process pairs share no process, so their effects are independent draws. The blocks
are grouped by the process pair that ran them and the variance of the mean is estimated
with a one-way random-effects model (blocks within process pairs), with Satterthwaite's
degrees of freedom. When the process pairs differ no more than the blocks within them,
that reduces to the plain batch-means interval with (blocks − 1) degrees of freedom.
"""

from __future__ import annotations

import math
import statistics
from array import array
from dataclasses import dataclass
from typing import Hashable, Sequence

from loadgen.results import WorkerResult

# Two-sided 97.5 % quantiles of Student's t for small samples; past 30 a Cornish–Fisher expansion.
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
         10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
         18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060,
         26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042}
Z975 = 1.959964  # the normal 97.5 % quantile: t975 with unlimited degrees of freedom


def t975(degrees_of_freedom: float | None) -> float:
    """Student's t 97.5 % quantile; a fractional df (Satterthwaite) is interpolated in 1/df; None
    (an estimate with no stated df, taken as normal): z."""
    if degrees_of_freedom is None:
        return Z975
    df = max(1.0, float(degrees_of_freedom))
    if df > 30:
        z = Z975
        return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
    low, high = math.floor(df), math.ceil(df)
    if low == high:
        return _T975[low]
    # Quantiles are close to linear in 1/df between neighbouring integers.
    w = (1 / low - 1 / df) / (1 / low - 1 / high)
    return _T975[low] + w * (_T975[high] - _T975[low])


@dataclass(frozen=True)
class Unit:
    """One block of op_ids [first, last) and the pair of processes (arm's, baseline's) that ran it."""

    first: int
    last: int
    processes: Hashable = None


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    df: float
    method: str


SINGLE_BLOCK_BATCHES = 10


def block_interval(means: Sequence[float], groups: Sequence[Hashable]) -> Interval | None:
    """Mean of the block means and its 95 % CI, blocks nested in process pairs (see the docstring).

    One-way random effects: x_b = μ + u_g + e_b. MSW estimates var(e); (MSB − MSW)/n0 estimates
    var(u) (truncated at 0). var(mean) = MSW/N + var(u)·Σn_g²/N²; its df by Satterthwaite.
    """
    n = len(means)
    if n < 2:
        return None
    mean = statistics.fmean(means)
    by_group: dict[Hashable, list[float]] = {}
    for value, group in zip(means, groups):
        by_group.setdefault(group, []).append(value)
    k = len(by_group)
    sizes = [len(values) for values in by_group.values()]
    plain_var = statistics.variance(means) / n
    method = f"batch means over {n} blocks"
    if k < 2:
        # One pair of processes ran every block: how much another pair would differ is unknown.
        return _interval(mean, plain_var, n - 1, f"{method} of one process pair (between-process variation "
                                                 f"not included)")
    if n - k < 1:
        return _interval(mean, plain_var, n - 1, method)
    msw = sum((x - statistics.fmean(values)) ** 2 for values in by_group.values() for x in values) / (n - k)
    msb = sum(len(values) * (statistics.fmean(values) - mean) ** 2 for values in by_group.values()) / (k - 1)
    n0 = (n - sum(size * size for size in sizes) / n) / (k - 1)
    if msb <= msw or n0 <= 0:
        # The process pairs differ no more than blocks do: the blocks are exchangeable.
        return _interval(mean, plain_var, n - 1, f"{method} ({k} process pairs, no process effect)")
    c = sum(size * size for size in sizes) / (n * n)
    a, b = 1 / n - c / n0, c / n0  # var(mean) = a·MSW + b·MSB
    var = a * msw + b * msb
    df = var * var / ((a * msw) ** 2 / (n - k) + (b * msb) ** 2 / (k - 1))
    return _interval(mean, var, df, f"{method} in {k} process pairs (random effects)")


def _interval(mean: float, var: float, df: float, method: str) -> Interval:
    half = t975(df) * math.sqrt(max(var, 0.0))
    return Interval(mean, mean - half, mean + half, round(df, 1), method)


def paired_interval(baseline: array, arm: array, units: Sequence[Unit] | None) -> tuple[Interval | None, int, float]:
    """(interval of the mean Δ in ms, pairs, baseline mean in ms) over ops done in both arms.

    Without block units (a run of one block) the pairs are cut into consecutive batches of
    op_ids; that interval cannot see between-process variation, and its method says so.
    """
    if not units or len(units) < 2:
        size = min(len(baseline), len(arm))
        step = max(1, -(-size // SINGLE_BLOCK_BATCHES))
        units = [Unit(first, min(size, first + step), "one block") for first in range(0, size, step)]
        single = True
    else:
        single = False
    means, groups = [], []
    pairs = 0
    base_total = 0
    for unit in units:
        total = count = 0
        for op_id in range(unit.first, min(unit.last, len(baseline), len(arm))):
            b, a = baseline[op_id], arm[op_id]
            if b >= 0 and a >= 0:
                total += a - b
                base_total += b
                count += 1
        if count:
            means.append(total / count / 1e6)
            groups.append(unit.processes)
            pairs += count
    interval = block_interval(means, groups)
    if interval is not None and single:
        interval = Interval(interval.mean, interval.low, interval.high, interval.df,
                            f"batch means over {len(means)} op batches of one block (between-process "
                            f"variation not included)")
    return interval, pairs, (base_total / pairs / 1e6 if pairs else 0.0)


def paired_overhead(baseline: array, arm: array, units: Sequence[Unit] | None = None) -> dict:
    """Mean Δ latency (ms) with its 95 % CI, and as % of the baseline mean, over ops done in both."""
    interval, pairs, base_mean = paired_interval(baseline, arm, units)
    if interval is None:
        return {"overhead_latency_ms": None, "overhead_latency_ci95_ms": None, "overhead_latency_percent": None,
                "overhead_pairs": pairs, "overhead_ci_method": None, "overhead_ci_df": None}
    return {
        "overhead_latency_ms": round(interval.mean, 4),
        "overhead_latency_ci95_ms": [round(interval.low, 4), round(interval.high, 4)],
        "overhead_latency_percent": round(100 * interval.mean / base_mean, 3) if base_mean else None,
        "overhead_pairs": pairs,
        "overhead_ci_method": interval.method,
        "overhead_ci_df": interval.df,
    }


def paired_part(name: str, baseline: array, arm: array, units: Sequence[Unit] | None) -> dict:
    """One part of the timeline (before wire, after response, loop delay): mean Δ ms and its CI."""
    interval, _, _ = paired_interval(baseline, arm, units)
    if interval is None:
        return {f"overhead_{name}_ms": None, f"overhead_{name}_ci95_ms": None}
    return {f"overhead_{name}_ms": round(interval.mean, 4),
            f"overhead_{name}_ci95_ms": [round(interval.low, 4), round(interval.high, 4)]}


def steady_rss(samples: list, measure_start_s: float | None) -> tuple[float | None, int | None]:
    """(median RSS after warm-up, peak RSS) of one worker, in bytes."""
    if not samples:
        return None, None
    steady = [rss for t, rss in samples if measure_start_s is not None and t >= measure_start_s]
    return (statistics.median(steady) if steady else None), max(rss for _, rss in samples)


def memory_figures(result: WorkerResult) -> dict:
    """A run's steady-state RSS (mean over its workers of each one's median) and peak."""
    medians, peaks = [], []
    for samples, start in zip(result.rss_samples_by_worker, result.measure_start_s_by_worker):
        median, peak = steady_rss(samples, start)
        if median is not None:
            medians.append(median)
        if peak is not None:
            peaks.append(peak)
    return {
        "rss_steady_mib": round(statistics.fmean(medians) / 2**20, 2) if medians else None,
        "rss_peak_mib": round(max(peaks) / 2**20, 2) if peaks else None,
    }


def memory_overhead(baseline: WorkerResult, arm: WorkerResult) -> dict:
    base, mine = memory_figures(baseline)["rss_steady_mib"], memory_figures(arm)["rss_steady_mib"]
    if base is None or mine is None:
        return {"memory_overhead_mib": None, "memory_overhead_percent": None}
    return {"memory_overhead_mib": round(mine - base, 2), "memory_overhead_percent": round(100 * (mine - base) / base, 3)}
