"""Confidence intervals for the figures that are not paired per op: export p95, drop rate, throughput.

The overhead and memory figures carry their own CIs (loadgen.overhead, loadgen.memory); these
give the rest of the north-star figures one, so that `loadgen compare` can tell a change from
noise for every figure it compares.

Spans are not independent draws: a batch span processor exports them together, so every span
of a batch shares its export moment, and a failed export drops the whole batch. The CIs here
count export calls as the independent units, not spans — wider than a per-span CI, honest for
figures that move a batch at a time.
"""

from __future__ import annotations

import math
import statistics

from loadgen.overhead import Z975, t975


def quantile_ci(value_at, p: float, units: int) -> list[float] | None:
    """The 95 % CI of the p-quantile (0 < p < 1) from `units` independent units: the values at the
    order statistics' binomial bounds p ± z·√(p(1 − p)/n), read off the distribution by `value_at(p)`.
    None with fewer than two units."""
    if units < 2:
        return None
    half = Z975 * math.sqrt(p * (1 - p) / units)
    return [value_at(max(0.0, p - half)), value_at(min(1.0, p + half))]


def wilson(share: float, units: int) -> list[float] | None:
    """Wilson's 95 % interval of a proportion (0..1) observed over `units` independent units."""
    if units < 1:
        return None
    z2 = Z975**2
    centre = (share + z2 / (2 * units)) / (1 + z2 / units)
    half = Z975 * math.sqrt(share * (1 - share) / units + z2 / (4 * units**2)) / (1 + z2 / units)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def rate_ci(blocks: list[dict], ns: float = 1e9) -> list[float] | None:
    """The 95 % CI of the achieved rate (calls/s) over a run's blocks: Student t on the blocks' own
    rates, (sent − 1) / send window; None with fewer than two blocks that sent."""
    rates = [(b["sent"] - 1) * ns / (b["last_sent_ns"] - b["first_sent_ns"]) for b in blocks
             if b.get("sent", 0) > 1 and b.get("last_sent_ns") and b["last_sent_ns"] > b["first_sent_ns"]]
    if len(rates) < 2:
        return None
    mean = statistics.fmean(rates)
    half = t975(len(rates) - 1) * statistics.stdev(rates) / math.sqrt(len(rates))
    return [mean - half, mean + half]


def standard_error(ci95: list[float] | None, df: float | None = None) -> float | None:
    """The standard error a symmetric-or-not 95 % CI implies: its half-width over t (z without a df)."""
    if ci95 is None:
        return None
    return (ci95[1] - ci95[0]) / 2 / t975(df)


def welch_df(se_a: float, df_a: float | None, se_b: float, df_b: float | None) -> float | None:
    """Satterthwaite's degrees of freedom of a difference of two estimates (None: normal, both large)."""
    if df_a is None and df_b is None:
        return None
    terms = [se**4 / df for se, df in ((se_a, df_a), (se_b, df_b)) if df and se > 0]
    total = (se_a**2 + se_b**2) ** 2
    if not terms or total == 0:
        return None
    return max(1.0, total / sum(terms))
