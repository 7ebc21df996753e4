"""`loadgen compare BASE.json NEW.json`: did a figure get better, worse, or stay within noise?

Runs are matched by provider, arm and mode. For each matched run and each compared figure, the
change (new − base) gets a CI from the two figures' own CIs (Welch: the standard errors add in
quadrature, Satterthwaite's degrees of freedom where a figure has them). The CIs are
**simultaneous** over every row of the comparison (Bonferroni: each row's at 1 − 0.05/m for m
rows tested), so an A/A comparison — two runs of the same profile — reads any row worse or
better with at most 5 % probability, however many arms and figures it has. A change is
**worse** (or **better**) only when

1. its CI excludes zero — the difference is not the runs' own noise, and
2. it is larger than the figure's floor (FIGURES below) — the smallest change that matters;
   a few microseconds can be significant over many pairs and still not be a regression.

Otherwise it is **within noise**. A figure missing on either side, or without a CI to test it
with, is **unmeasured**: never guessed. The gate (loadgen.comparison) turns the rows into a
pass or fail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from scipy.stats import norm, t

from loadgen.intervals import standard_error, welch_df

FAMILY_ALPHA = 0.05  # the chance, over a whole A/A comparison, that any row reads worse or better

METHOD = ("change = new − base; its CI from the two figures' 95 % CIs (standard errors in quadrature, "
          "Satterthwaite df), simultaneous over the comparison's rows (Bonferroni); worse or better only when "
          "the CI excludes 0 and the change is larger than the figure's floor")


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
    """Every matched run's rows, with CIs simultaneous over all of them, and the runs found on one side only."""
    base = {run_key(run): run for run in base_runs}
    new = {run_key(run): run for run in new_runs}
    measured = [compare_figure(figure, base[key], new[key]) for key in base if key in new for figure in FIGURES
                if figure.value(base[key]) is not None or figure.value(new[key]) is not None]
    tested = sum(spread is not None for _, spread in measured)
    for row, spread in measured:
        if spread is not None:
            judge_change(row, spread, tested)
    unmatched = ([{"side": "base", **dict(zip(("provider", "arm", "mode"), key))} for key in base if key not in new]
                 + [{"side": "new", **dict(zip(("provider", "arm", "mode"), key))} for key in new if key not in base])
    return [row for row, _ in measured], unmatched


Spread = tuple[float, float | None]  # the change's standard error and its degrees of freedom (None: normal)


def compare_figure(figure: Figure, base: dict, new: dict) -> tuple[dict, Spread | None]:
    """The row of one figure, and the spread of its change when both sides have a CI to test it with."""
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
        return row, None
    row["change"] = _round(n - b)
    row["floor"] = _round(figure.floor_for(b))
    spread = change_spread(row["base_ci95"], figure.df(base), row["new_ci95"], figure.df(new))
    if spread is None and n == b:
        row["verdict"] = "within noise"  # the same figure: no change to test
    elif spread is None:
        row["why"] = f"no CI in {'base' if row['base_ci95'] is None else 'new'} to tell the change from noise"
    return row, spread


def change_spread(base_ci: list[float] | None, base_df: float | None,
                  new_ci: list[float] | None, new_df: float | None) -> Spread | None:
    """The change's standard error and df from the two figures' 95 % CIs (None when either has none)."""
    se_b, se_n = standard_error(base_ci, base_df), standard_error(new_ci, new_df)
    if se_b is None or se_n is None:
        return None
    return math.hypot(se_b, se_n), welch_df(se_b, base_df, se_n, new_df)


def change_ci(change: float, spread: Spread, rows: int = 1) -> list[float]:
    """The change's CI, simultaneous over `rows` rows: each at 1 − FAMILY_ALPHA/rows (two-sided)."""
    se, df = spread
    level = 1 - FAMILY_ALPHA / 2 / max(1, rows)
    quantile = t.ppf(level, df) if df else norm.ppf(level)
    return [change - quantile * se, change + quantile * se]


def judge_change(row: dict, spread: Spread, rows: int) -> None:
    ci = change_ci(row["change"], spread, rows)
    row["change_ci95"] = [_round(ci[0]), _round(ci[1])]
    row["verdict"] = verdict(row["change"], ci, row["floor"], row["better"] == "lower")


def verdict(change: float, ci: list[float], floor: float, lower_is_better: bool) -> str:
    if ci[0] <= 0 <= ci[1] or abs(change) <= floor:
        return "within noise"
    return "worse" if (change > 0) == lower_is_better else "better"


def _round(value: float) -> float:
    return round(value, 4)
