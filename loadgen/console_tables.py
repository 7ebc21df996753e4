"""The console's tables: a finished run's, a soak's and a sweep's figures as rich tables, and their cells.

Functions of documents (`loadgen.document`), as every reporter is; `loadgen.console` prints them.
"""

from __future__ import annotations

from rich.table import Table

from loadgen.arms import is_baseline
from loadgen.assessment import format_overhead
from loadgen.limits import Validity
from loadgen.sweep import judge


def format_ms(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= 1000:
        return f"{value / 1000:.2f}s"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _unmeasured(value, fmt: str = "{}") -> str:
    return "unmeasured" if value is None else fmt.format(value)


def summary_table(runs: list[dict]) -> Table:
    table = Table(title="loadgen summary — latency from intended start (ms)", show_lines=False)
    for column in ("Provider/Arm", "Mode", "Sent", "Rate/s", "OK %", "p50", "p90", "p99", "p99.9", "max",
                   "TTFT p50", "Lag p99", "CPU %", "Valid"):
        table.add_column(column, justify="left" if column in ("Provider/Arm", "Mode", "Valid") else "right")
    for run in runs:
        lat, ttft, lag = run["latency_ms"], run["ttft_ms"], run["dispatch_lag_ms"]
        rate = run["achieved_rate_rps"]
        ok = run["success_rate_percent"]
        table.add_row(
            f"{run['provider']}/{run['arm']}", run["mode"] + (" stream" if run["stream"] else ""),
            str(run["operations_sent"]), "–" if rate is None else f"{rate:.1f}", "–" if ok is None else f"{ok:.1f}",
            format_ms(lat["p50"]), format_ms(lat["p90"]), format_ms(lat["p99"]), format_ms(lat["p99_9"]), format_ms(lat["max"]),
            format_ms(ttft["p50"]), format_ms(lag["p99"]), f"{run['cpu_percent']:.0f}",
            "yes" if run["valid"] else "[bold red]NO[/]",
        )
    return table


# (group, column): the three assessments a tracer is judged on, then the CPU each arm spent.
_NORTH_STAR_COLUMNS = (("cost", "Overhead (ms ± CI, %)"), ("cost", "Loop delay p99 (Δ)"), ("cost", "Memory"),
                       ("fidelity", "Coverage"), ("fidelity", "Complete"), ("reliability", "Drops"),
                       ("reliability", "Export p95"), ("", "CPU/op"))


def by_overhead(rows: list[dict]) -> list[dict]:
    """Each provider and mode's rows with its baselines first, then its arms by latency overhead,
    lowest first (unmeasured last); providers and modes keep their order."""
    groups = list(dict.fromkeys((row["provider"], row["mode"]) for row in rows))

    def rank(row: dict) -> tuple:
        overhead = row.get("overhead_latency_ms")
        return (groups.index((row["provider"], row["mode"])), not is_baseline(row["arm"]), overhead is None,
                overhead or 0.0)

    return sorted(rows, key=rank)


def north_star_table(rows: list[dict], order: str = "arms") -> Table:
    table = Table(title="north-star metrics — what tracing costs, how faithful and how reliable it is"
                  + (" (arms by overhead)" if order == "overhead" else ""))
    if order == "overhead":
        rows = by_overhead(rows)
    for column in ("Provider", "Arm", "Mode"):
        table.add_column(column)
    for group, column in _NORTH_STAR_COLUMNS:
        table.add_column(f"[dim]{group}[/]\n{column}", justify="right")
    for row in rows:
        baseline = is_baseline(row["arm"])
        table.add_row(
            row["provider"], row["arm"], row["mode"],
            "—" if baseline else format_overhead(row, plus_minus=True),
            _loop_delay_cell(row),
            "—" if baseline else _memory_cell(row),
            "—" if baseline else _unmeasured(row["trace_coverage_percent"], "{:.1f}%"),
            "—" if baseline else _unmeasured(row["attribute_completeness_percent"], "{:.1f}%"),
            "—" if baseline else _unmeasured(row["dropped_span_rate_percent"], "{:.2f}%"),
            "—" if baseline else _unmeasured(row["export_latency_p95_ms"], "{:.1f} ms"),
            _unmeasured(row["cpu_per_operation_us"], "{:.0f} µs"),
        )
    table.caption = ("Cost of tracing: Overhead (latency vs the baseline, paired by op_id: mean ± 95% CI, and % of "
                     "the baseline mean), Loop delay (dispatch-lag p99, ms, and its Δ vs the baseline: the delay the "
                     "tracer's work on the event loop adds to every call; with the sync client the dispatcher's "
                     "lateness plus the wait for a free thread, and under it GIL, the p99 of a probe thread's "
                     "wake-up lateness and its Δ: what the tracer's threads take from the others; 'saturated': its "
                     "worker passed 90% CPU while the baseline's did not), Memory (fixed cost vs the baseline, MiB, and growth per 1,000 "
                     "operations; or steady-state RSS vs the baseline, %). Fidelity of data: Coverage "
                     "(operations with root + LLM span in one trace), Complete (LLM spans with every required "
                     "attribute). Reliability of pipeline: Drops (dropped ÷ exported + dropped), Export p95 (span "
                     "end → collector ACK). CPU/op: the worker's CPU per operation. 'unmeasured': not measurable here.")
    return table


def _loop_delay_cell(row: dict) -> str:
    """'5.21 ms (+4.60)': the arm's dispatch-lag p99 and its Δ vs the baseline; a baseline's p99 alone.
    With the sync client a second line, 'GIL 2.77 (+2.63)': its probe thread's wake-up lateness p99 and Δ."""
    p99, delta = row["loop_delay_p99_ms"], row["loop_delay_delta_p99_ms"]
    if p99 is None:
        return "unmeasured"
    text = f"{p99:.2f} ms" + ("" if delta is None else f" ({delta:+.2f})")
    gil, gil_delta = row.get("gil_wait_p99_ms"), row.get("gil_wait_delta_p99_ms")
    if gil is not None:
        text += f"\nGIL {gil:.2f}" + ("" if gil_delta is None else f" ({gil_delta:+.2f})")
    return text + (" [bold red]saturated[/]" if row["saturated"] else "")


def _memory_cell(row: dict) -> str:
    """The fixed cost in MiB (and the growth) when measured, else the steady-state RSS difference in %."""
    fixed, growth = row["memory_fixed_mib"], row["memory_growth_mib_per_1k_ops"]
    if fixed is None:
        return _unmeasured(row["memory_overhead_percent"], "{:+.1f}%")
    return f"{fixed:+.1f} MiB" + ("" if growth is None else f", {growth:+.3f}/1k ops")


def tracing_table(runs: list[dict]) -> Table | None:
    traced = [run for run in runs if run.get("spans")]
    if not traced:
        return None
    table = Table(title="tracing pipelines — spans from end to collector ACK")
    for column in ("Provider/Arm", "Ended", "Exported", "Received", "Dropped (reason)", "Unaccounted", "Dup",
                   "Export p50", "p95", "p99", "Coverage %", "Complete %", "Bytes/op"):
        table.add_column(column, justify="left" if column in ("Provider/Arm", "Dropped (reason)") else "right")
    for run in traced:
        spans, latency = run["spans"], run["export_latency_ms"]
        dropped = ", ".join(f"{reason} {n}" for reason, n in spans["dropped"].items() if n) or "0"
        table.add_row(
            f"{run['provider']}/{run['arm']}", str(spans["ended"]), str(spans["exported"]),
            _unmeasured(spans["received"]), dropped, _unmeasured(spans["unaccounted"]), _unmeasured(spans["duplicates"]),
            format_ms(latency["p50"]), format_ms(latency["p95"]), format_ms(latency["p99"]),
            _unmeasured(run["trace_coverage_percent"], "{:.1f}"), _unmeasured(run["attribute_completeness_percent"], "{:.1f}"),
            _unmeasured(run["export_bytes_per_operation"], "{:.0f}"),
        )
    return table


# check → (column header, value format) in the assessment table: every check, headers kept short.
_CHECK_COLUMNS = {
    "success_rate_percent": ("Success %", "{:.1f}"),
    "latency_p95_ms": ("Latency p95 ms", "{:.1f}"),
    "tracer_overhead_percent": ("Overhead %", "{:+.2f}"),
    "loop_delay_p99_ms": ("Loop Δp99 ms", "{:+.2f}"),
    "saturated": ("Saturated", "{}"),
    "memory_overhead_percent": ("Memory %", "{:+.1f}"),
    "memory_overhead_mib": ("Memory MiB", "{:+.1f}"),
    "trace_coverage_percent": ("Coverage %", "{:.1f}"),
    "attribute_completeness_percent": ("Complete %", "{:.1f}"),
    "dropped_span_rate_percent": ("Drops %", "{:.2f}"),
    "export_latency_p95_ms": ("Export p95 ms", "{:.0f}"),
}
_VERDICT_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "unmeasured": "dim"}


def assessment_table(summary: dict) -> Table:
    """Run × check, each cell the verdict and the value it was graded on."""
    verdict = summary["overall"]
    table = Table(title=f"assessment against the thresholds — overall: [{_VERDICT_STYLE[verdict]}]{verdict}[/]")
    # One column for the run, its mode under it: every check column gets the width.
    table.add_column("Provider/Arm\n[dim]mode[/]", no_wrap=True)
    for check, (header, _) in _CHECK_COLUMNS.items():
        limits = summary["thresholds"].get(check)
        bounds = "fail if so" if limits is None else f"{limits['pass']:g} / {limits['warn']:g}"
        # min_width: each header's longest word stays whole however narrow the terminal.
        table.add_column(f"{header}\n[dim]{bounds}[/]", justify="right", min_width=max(map(len, header.split())))
    cells: dict[tuple, dict] = {}
    for row in summary["verdicts"]:
        cells.setdefault((row["provider"], row["arm"], row["mode"]), {})[row["check"]] = row
    for (provider, arm, mode), checks in cells.items():
        table.add_row(f"{provider}/{arm}\n[dim]{mode}[/]",
                      *(_verdict_cell(checks.get(check)) for check in _CHECK_COLUMNS))
    table.caption = ("Under each check: its pass / warn limits (\\[thresholds] in the profile). pass: within the pass "
                     "limit (inclusive); warn: within the warn limit; fail: beyond it; n/m: unmeasured, no figure to "
                     "grade (span checks of an arm that exports no spans); —: not graded (a baseline is graded on "
                     "success and latency only). Loop Δp99: the arm's dispatch-lag p99 minus the baseline's. "
                     "Memory MiB: the fixed cost when measured.")
    return table


def _verdict_cell(row: dict | None) -> str:
    if row is None:
        return "—"
    verdict = row["verdict"]
    value = row["value"]
    if isinstance(value, bool):  # saturated: the verdict says it all
        value = None
    value = "" if value is None else " " + _CHECK_COLUMNS[row["check"]][1].format(value)
    # "n/m": a narrow column keeps the word whole; the caption spells it out.
    return f"[{_VERDICT_STYLE[verdict]}]{'n/m' if verdict == 'unmeasured' else verdict}[/]{value}"


def soak_memory_table(summary: dict) -> Table:
    table = Table(title=f"soak — RSS slope after {summary['warmup_windows']} warm-up window(s), "
                        f"{summary['window_s']:g} s windows ({summary['jsonl']})")
    for column in ("Provider/Arm", "RSS slope MiB/h [95% CI]", "Windows", "Pile-ups (RSS step)", "Limit MiB/h",
                   "Verdict"):
        table.add_column(column, justify="left" if column in ("Provider/Arm", "Verdict") else "right")
    colour = {"leak": "bold red", "no leak": "green", "inconclusive": "yellow"}
    for row in summary["memory"]:
        slope, ci, steps = row["slope_mib_per_hour"], row["ci95"], row["pile_ups"]
        if slope is not None:
            fitted = f"{slope:+.1f} [{ci[0]:+.1f}, {ci[1]:+.1f}]"
        else:
            fitted = "unmeasured (" + ("a pile-up in nearly every window" if steps else "fewer than 3 windows") + ")"
        piled = f"{len(steps)} ({sum(step['rss_step_mib'] for step in steps):+.1f} MiB)" if steps else "0"
        table.add_row(f"{row['provider']}/{row['arm']}", fitted, str(row["points"]), piled,
                      f"{row['limit_mib_per_hour']:g}",
                      f"[{colour[row['verdict']]}]{row['verdict']}[/]")
    return table


def _sweep_limits(document: dict) -> tuple[Validity, float | None]:
    """The limits the sweep judged by: the profile's [validity] and its SLO."""
    profile = document["profile"]
    return Validity.model_validate(profile.get("validity") or {}), profile["sweep"]["slo_latency_p99_ms"]


def _sweep_cell(run: dict | None, validity: Validity, slo_ms: float | None, complete: bool) -> str:
    """p50 / p99, the dispatch-lag p99, and what stopped the arm; a step cut short is not judged (its missing
    calls are not the rate's)."""
    if run is None:
        return "—"
    latency = run["latency_ms"]
    reason = judge(run, validity, slo_ms) if complete else None
    mark = "" if reason is None else f"\n[{'yellow' if reason['rule'] == 'slo' else 'red'}]✗ {reason['rule']}[/]"
    lag = format_ms(run["dispatch_lag_ms"]["p99"])
    return f"{format_ms(latency['p50'])} / {format_ms(latency['p99'])}\nlag {lag}{mark}"


def sustained_rate(rate: float | None) -> str:
    return "none sustained" if rate is None else f"{rate:g}/s"


def sweep_tables(document: dict) -> list[Table]:
    """Per provider: each arm's latency and dispatch lag at each step, what stopped it, its highest sustainable rate."""
    validity, slo_ms = _sweep_limits(document)
    steps, tracks = document["sweep"]["steps"], document["sweep"]["highest_sustainable_rate"]
    runs_at = [{(run["provider"], run["arm"]): run for run in step["runs"]} for step in steps]
    tables = []
    for provider in dict.fromkeys(track["provider"] for track in tracks):
        table = Table(title=f"{provider} rate sweep — latency p50 / p99 from intended start, dispatch-lag p99 (ms)")
        table.add_column("Arm")
        for step in steps:
            table.add_column(f"{step['rate']:g}/s" + ("" if step["complete"] else " (cut short)"), justify="right")
        table.add_column("highest sustainable rate", justify="right")
        for track in (t for t in tracks if t["provider"] == provider):
            cells = [_sweep_cell(runs.get((provider, track["arm"])), validity, slo_ms, step["complete"])
                     for step, runs in zip(steps, runs_at)]
            table.add_row(track["arm"], *cells, sustained_rate(track["rate"]))
        tables.append(table)
    return tables


_FAULT_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red"}


def fault_cell(cell: dict | None) -> str:
    """The verdict, then Δp99 during the fault, recovery and shutdown, and what went wrong if anything did."""
    if cell is None:
        return "—"
    delta = cell["latency_delta_p99_ms"]
    lines = [f"[{_FAULT_STYLE[cell['verdict']]}]{cell['verdict']}[/] Δp99 "
             + ("n/m" if delta is None else f"{delta:+.1f}")]
    drops = {reason: count for reason, count in ((cell["spans"] or {}).get("dropped") or {}).items() if count}
    if drops:
        lines.append("drop " + " ".join(f"{reason} {count}" for reason, count in drops.items()))
    if cell["recovery_s"] is not None:
        lines.append(f"recover {cell['recovery_s']:.1f}s")
    if cell["shutdown_s"] is not None and cell["shutdown_s"] >= 1:
        lines.append(f"exit {cell['shutdown_s']:.1f}s")
    if cell["verdict"] != "pass" and cell["worst"]:
        lines.append(f"[dim]{cell['worst']}[/]")
    return "\n".join(lines)


def fault_matrix_tables(document: dict) -> list[Table]:
    """Per provider: scenarios down, tracing arms across, each cell its verdict and worst figure."""
    cells = document["cells"]
    tables = []
    for provider in dict.fromkeys(cell["provider"] for cell in cells):
        mine = [cell for cell in cells if cell["provider"] == provider]
        arms = list(dict.fromkeys(cell["arm"] for cell in mine))
        by_key = {(cell["scenario"], cell["arm"]): cell for cell in mine}
        table = Table(title=f"{provider} fault matrix — verdict, latency p99 during the fault against the baseline "
                            f"(ms), spans dropped, recovery and exit times", show_lines=True)
        table.add_column("Scenario")
        for arm in arms:
            table.add_column(arm)
        for scenario in dict.fromkeys(cell["scenario"] for cell in mine):
            table.add_row(scenario, *(fault_cell(by_key.get((scenario, arm))) for arm in arms))
        tables.append(table)
    return tables
