"""`loadgen compare BASE.json NEW.json`: did a figure get better, worse, or stay within noise?

Runs are matched by provider, arm and mode. For each matched run and each compared figure, the
change (new − base) gets a 95 % CI from the two figures' own CIs (Welch: the standard errors add
in quadrature, Satterthwaite's degrees of freedom where a figure has them). Each figure has a
**floor**, the smallest change that matters (FIGURES below). A change is **worse** (or
**better**) only when its whole CI lies beyond the floor: the figure moved by more than the floor,
beyond both runs' noise — a minimum-effect test. Testing against the floor rather than against
zero is what keeps an A/A comparison quiet however many rows it has: a row of two runs of the same
profile reads worse only if its change overshoots the floor by two standard errors (0 of 486
A/A rows did, benchmarks/RESULTS.md), while a real change well past the floor still shows.

Otherwise it is **within noise**. A figure missing on either side, or without a CI to test it
with, is **unmeasured**: never guessed. The gate (loadgen.comparison) turns the rows into a pass
or fail, with the same test against each limit it is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from loadgen.intervals import standard_error, welch_df
from loadgen.overhead import t975

METHOD = ("change = new − base; its 95 % CI from the two figures' CIs (standard errors in quadrature, "
          "Satterthwaite df); worse or better only when the whole CI lies beyond the figure's floor")


@dataclass(frozen=True)
class Figure:
    """One compared figure of a run: where its value and CI are, which way is better, its floor."""

    metric: str
    label: str
    unit: str
    value: Callable[[dict], float | None]
    ci95: Callable[[dict], list[float] | None]
    df: Callable[[dict], float | None]
    lower_is_better: bool
    floor: float  # the smallest change that matters, in the unit (or a share of the base, `relative`)
    relative: bool = False

    def floor_for(self, base: float) -> float:
        return abs(base) * self.floor if self.relative else self.floor


def _key(name: str) -> Callable[[dict], object]:
    return lambda run: run.get(name)


def _nested(outer: str, inner: str) -> Callable[[dict], object]:
    return lambda run: (run.get(outer) or {}).get(inner)


def _none(run: dict) -> None:
    return None


FIGURES: tuple[Figure, ...] = (
    Figure("overhead_latency_ms", "overhead", "ms", _key("overhead_latency_ms"), _key("overhead_latency_ci95_ms"),
           _key("overhead_ci_df"), True, 0.2),
    Figure("loop_delay_ms", "loop delay", "ms", _key("overhead_loop_delay_ms"), _key("overhead_loop_delay_ci95_ms"),
           _key("overhead_ci_df"), True, 0.2),
    Figure("memory_fixed_mib", "memory, fixed", "MiB", _key("memory_fixed_mib"), _key("memory_fixed_ci95_mib"),
           _none, True, 2.0),
    Figure("memory_growth_mib_per_1k_ops", "memory, growth", "MiB/1k ops", _key("memory_growth_mib_per_1k_ops"),
           _key("memory_growth_ci95_mib_per_1k_ops"), _none, True, 0.5),
    Figure("dropped_span_rate_percent", "drop rate", "%", _key("dropped_span_rate_percent"),
           _key("dropped_span_rate_ci95_percent"), _none, True, 0.5),
    Figure("export_latency_p95_ms", "export p95", "ms", _nested("export_latency_ms", "p95"),
           _key("export_latency_p95_ci95_ms"), _none, True, 0.10, relative=True),
    Figure("throughput_rps", "throughput", "calls/s", _key("achieved_rate_rps"), _key("achieved_rate_ci95_rps"),
           _none, False, 0.01, relative=True),
)
BY_METRIC = {figure.metric: figure for figure in FIGURES}


def run_key(run: dict) -> tuple[str, str, str]:
    return run["provider"], run["arm"], run["mode"]


def compare_runs(base_runs: list[dict], new_runs: list[dict]) -> tuple[list[dict], list[dict]]:
    """Every matched run's rows, and the runs found on one side only."""
    base = {run_key(run): run for run in base_runs}
    new = {run_key(run): run for run in new_runs}
    rows = [compare_figure(figure, base[key], new[key]) for key in base if key in new for figure in FIGURES
            if figure.value(base[key]) is not None or figure.value(new[key]) is not None]
    unmatched = ([{"side": "base", **dict(zip(("provider", "arm", "mode"), key))} for key in base if key not in new]
                 + [{"side": "new", **dict(zip(("provider", "arm", "mode"), key))} for key in new if key not in base])
    return rows, unmatched


Spread = tuple[float, float | None]  # the change's standard error and its degrees of freedom (None: normal)


def compare_figure(figure: Figure, base: dict, new: dict) -> dict:
    b, n = figure.value(base), figure.value(new)
    row = {
        "provider": new["provider"], "arm": new["arm"], "mode": new["mode"],
        "metric": figure.metric, "label": figure.label, "unit": figure.unit,
        "better": "lower" if figure.lower_is_better else "higher",
        "base": b, "base_ci95": figure.ci95(base), "new": n, "new_ci95": figure.ci95(new),
        "change": None, "change_ci95": None, "floor": None, "verdict": "unmeasured", "why": None,
    }
    if b is None or n is None:
        row["why"] = f"not measured in {'base' if b is None else 'new'}"
        return row
    row["change"] = _round(n - b)
    row["floor"] = _round(figure.floor_for(b))
    spread = change_spread(row["base_ci95"], figure.df(base), row["new_ci95"], figure.df(new))
    if spread is not None:
        ci = change_ci(n - b, spread)
        row["change_ci95"] = [_round(ci[0]), _round(ci[1])]
        row["verdict"] = verdict(ci, row["floor"], figure.lower_is_better)
    elif n == b:
        row["verdict"] = "within noise"  # the same figure: no change to test
    else:
        row["why"] = f"no CI in {'base' if row['base_ci95'] is None else 'new'} to tell the change from noise"
    return row


def change_spread(base_ci: list[float] | None, base_df: float | None,
                  new_ci: list[float] | None, new_df: float | None) -> Spread | None:
    """The change's standard error and df from the two figures' 95 % CIs (None when either has none)."""
    se_b, se_n = standard_error(base_ci, base_df), standard_error(new_ci, new_df)
    if se_b is None or se_n is None:
        return None
    return math.hypot(se_b, se_n), welch_df(se_b, base_df, se_n, new_df)


def change_ci(change: float, spread: Spread) -> list[float]:
    se, df = spread
    half = t975(df) * se
    return [change - half, change + half]


def beyond(ci: list[float], limit: float, lower_is_better: bool) -> bool:
    """The whole CI is on the worse side of +limit (a change worse by more than the limit, beyond noise)."""
    return ci[0] > limit if lower_is_better else ci[1] < -limit


def verdict(ci: list[float], floor: float, lower_is_better: bool) -> str:
    if beyond(ci, floor, lower_is_better):
        return "worse"
    if beyond(ci, floor, not lower_is_better):
        return "better"
    return "within noise"


def _round(value: float) -> float:
    return round(value, 4)
