"""Memory: an arm's fixed cost (MiB) and its growth (MiB per 1,000 operations), from retained RSS.

After priming and after every block a worker records one point: (calls made so far, retained
RSS) — the RSS after the garbage is collected and free heap pages are returned, so it is
memory the process keeps (loadgen.worker). Each arm's points are fitted with one common
slope and one level per worker process (shards, replicas): a worker that starts higher is a
step between processes, not growth. The growth is the slope; the fixed cost is the level the
line has before the first call, so a leak does not inflate the fixed cost and a one-time
import does not read as growth.

Each worker's first point (after the priming call, before any block) is left out of the fit:
its first block carries one-time costs — connections opened, the first spans exported, lazy
imports of the warm-up — that are not per-call growth (+1.1 MiB over the first 385 calls of a
baseline worker, then +0.03 MiB per 1,000 calls, measured here).

The arm's cost is taken against the baseline, like the latency overhead: a baseline process
itself keeps growing for its first thousand or two calls (0.18–0.34 MiB per 1,000 calls over a
1,000-call run here, then ~0.03; caches or allocator pools filling, not pinned down), and
that is not the tracer's.

| key | meaning |
| --- | --- |
| rss_growth_mib_per_1k_ops, rss_growth_ci95_mib_per_1k_ops | the arm's own retained-RSS slope (every arm) |
| memory_growth_mib_per_1k_ops, memory_growth_ci95_mib_per_1k_ops | that slope minus the baseline's |
| memory_fixed_mib | the arm's level before its first call minus the baseline's (mean over workers) |
| memory_fixed_ci95_mib | its CI: Welch's over the two arms' worker levels (two workers a side or more) |
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from loadgen.intervals import welch_df
from loadgen.overhead import memory_overhead, t975
from loadgen.results import WorkerResult

MIB = 2**20
OPS = 1000.0  # growth is per 1,000 operations


@dataclass(frozen=True)
class GrowthFit:
    """A least-squares line through each worker's points: one slope, one level per worker."""

    slope: float  # MiB per 1,000 calls
    levels: list[float]  # each worker's fitted RSS (MiB) before its first call
    sxx: float  # Σ (x − its worker's mean x)², in (1,000 calls)²
    residual: float  # Σ squared residuals, MiB²
    dof: int  # points − workers − 1

    def ci95(self) -> list[float] | None:
        """Student t on the slope's standard error, n − k − 1 degrees of freedom."""
        if self.dof < 1:
            return None
        half = t975(self.dof) * math.sqrt(self.residual / self.dof / self.sxx)
        return [self.slope - half, self.slope + half]


def fit_growth(workers: list[list[tuple[float, float]]]) -> GrowthFit | None:
    """One common slope through every worker's (calls, RSS bytes) points, a level per worker.

    None when no worker has two points at different call counts (no slope to fit).
    """
    series = [[(calls / OPS, rss / MIB) for calls, rss in points] for points in workers if points]
    means = [(statistics.fmean(x for x, _ in s), statistics.fmean(y for _, y in s)) for s in series]
    centred = [(x - mx, y - my) for s, (mx, my) in zip(series, means) for x, y in s]
    sxx = sum(dx * dx for dx, _ in centred)
    if sxx == 0:
        return None
    slope = sum(dx * dy for dx, dy in centred) / sxx
    residual = sum((dy - slope * dx) ** 2 for dx, dy in centred)
    return GrowthFit(slope=slope, levels=[my - slope * mx for mx, my in means], sxx=sxx, residual=residual,
                     dof=len(centred) - len(series) - 1)


def growth_points(result: WorkerResult) -> list[list[tuple[int, int]]]:
    """Each worker's retained-RSS points after its blocks (the priming point left out: see above)."""
    return [list(points[1:]) for points in result.rss_retained_by_worker]


def growth_delta(base: GrowthFit, arm: GrowthFit) -> tuple[float, list[float] | None]:
    """arm − baseline slope, with a CI from the two fits' pooled residual variance.

    The two arms' processes are independent; pooling their residuals (the noise of a retained
    RSS reading is the allocator's page granularity in both) gives n − k − 2 degrees of freedom
    over both arms' points, more than either fit alone.
    """
    delta = arm.slope - base.slope
    dof = base.dof + arm.dof
    if dof < 1:
        return delta, None
    variance = (base.residual + arm.residual) / dof
    half = t975(dof) * math.sqrt(variance * (1 / base.sxx + 1 / arm.sxx))
    return delta, [delta - half, delta + half]


def fixed_ci(base_levels: list[float], arm_levels: list[float]) -> list[float] | None:
    """The fixed cost's 95 % CI: Welch's, over the two arms' worker levels (processes differ in
    where they start; that spread is the fixed cost's noise). None without two workers a side."""
    if len(base_levels) < 2 or len(arm_levels) < 2:
        return None
    se_b, se_a = (statistics.stdev(levels) / math.sqrt(len(levels)) for levels in (base_levels, arm_levels))
    delta = statistics.fmean(arm_levels) - statistics.fmean(base_levels)
    df = welch_df(se_a, len(arm_levels) - 1, se_b, len(base_levels) - 1)
    if df is None:  # no spread on either side
        return [delta, delta]
    half = t975(df) * math.hypot(se_a, se_b)
    return [delta - half, delta + half]


def memory_cost(baseline_result: WorkerResult | None, arm_result: WorkerResult) -> dict:
    """An arm's memory figures: its own growth, and with a baseline its fixed cost and growth
    against it (plus loadgen.overhead's steady-state overhead); None where not measurable."""
    own = fit_growth(growth_points(arm_result))
    figures = {
        "rss_growth_mib_per_1k_ops": _round(own.slope if own else None, 3),
        "rss_growth_ci95_mib_per_1k_ops": _round_pair(own.ci95() if own else None, 3),
        "memory_fixed_mib": None,
        "memory_fixed_ci95_mib": None,
        "memory_growth_mib_per_1k_ops": None,
        "memory_growth_ci95_mib_per_1k_ops": None,
        "memory_overhead_mib": None,
        "memory_overhead_percent": None,
    }
    if baseline_result is None:
        return figures
    figures.update(memory_overhead(baseline_result, arm_result))
    base = fit_growth(growth_points(baseline_result))
    if own is None or base is None:
        return figures
    delta, ci = growth_delta(base, own)
    figures["memory_fixed_mib"] = round(statistics.fmean(own.levels) - statistics.fmean(base.levels), 2)
    figures["memory_fixed_ci95_mib"] = _round_pair(fixed_ci(base.levels, own.levels), 2)
    figures["memory_growth_mib_per_1k_ops"] = round(delta, 3)
    figures["memory_growth_ci95_mib_per_1k_ops"] = _round_pair(ci, 3)
    return figures


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _round_pair(pair: list[float] | None, digits: int) -> list[float] | None:
    return None if pair is None else [round(pair[0], digits), round(pair[1], digits)]
