"""Reporters: functions of finished results — the summary table and the JSON document.

No reporter reaches back into the engine. Every string that leaves here passes through
redaction, so an API key that found its way into an error message is masked.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.table import Table

from loadgen import __version__
from loadgen.assessment import (
    OVERHEAD_SPLIT,
    configuration_summary,
    format_overhead,
    overall,
    recommendations,
    verdicts,
)
from loadgen.limits import Thresholds
from loadgen.redact import redact_data

SCHEMA_VERSION = "1.1"  # 1.1: the summary (assessment), rounds and blocks


def north_star_metrics(runs: list[dict]) -> list[dict]:
    """The six north-star metrics per provider/arm/mode (None: not measured for that run)."""
    rows = []
    for run in runs:
        latency = run.get("export_latency_ms") or {}
        rows.append({
            "provider": run["provider"],
            "arm": run["arm"],
            "mode": run["mode"],
            "overhead_latency_ms": run.get("overhead_latency_ms"),
            "overhead_latency_ci95_ms": run.get("overhead_latency_ci95_ms"),
            "overhead_latency_percent": run.get("overhead_latency_percent"),
            "dropped_span_rate_percent": run.get("dropped_span_rate_percent"),
            "export_latency_p95_ms": latency.get("p95"),
            "trace_coverage_percent": run.get("trace_coverage_percent"),
            "attribute_completeness_percent": run.get("attribute_completeness_percent"),
            "memory_overhead_percent": run.get("memory_overhead_percent"),
            "memory_fixed_mib": run.get("memory_fixed_mib"),
            "memory_growth_mib_per_1k_ops": run.get("memory_growth_mib_per_1k_ops"),
            "loop_delay_p99_ms": run.get("loop_delay_p99_ms"),
            "loop_delay_delta_p99_ms": run.get("loop_delay_delta_p99_ms"),
            "saturated": run.get("saturated"),
            "overhead_before_wire_ms": run.get("overhead_before_wire_ms"),
            "overhead_after_response_ms": run.get("overhead_after_response_ms"),
            "cpu_per_operation_us": run.get("cpu_per_operation_us"),
        })
    return rows


# (group, column): the three assessments a tracer is judged on, then the CPU each arm spent.
_NORTH_STAR_COLUMNS = (("cost", "Overhead (ms ± CI, %)"), ("cost", "Loop delay p99 (Δ)"), ("cost", "Memory"),
                       ("fidelity", "Coverage"), ("fidelity", "Complete"), ("reliability", "Drops"),
                       ("reliability", "Export p95"), ("", "CPU/op"))


def north_star_table(rows: list[dict]) -> Table:
    table = Table(title="north-star metrics — what tracing costs, how faithful and how reliable it is")
    for column in ("Provider", "Arm", "Mode"):
        table.add_column(column)
    for group, column in _NORTH_STAR_COLUMNS:
        table.add_column(f"[dim]{group}[/]\n{column}", justify="right")
    for row in rows:
        baseline = row["arm"] == "baseline"
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
                     "tracer's work on the event loop adds to every call; 'saturated': its worker passed 90% CPU "
                     "while the baseline's did not), Memory (fixed cost vs the baseline, MiB, and growth per 1,000 "
                     "operations; or steady-state RSS vs the baseline, %). Fidelity of data: Coverage "
                     "(operations with root + LLM span in one trace), Complete (LLM spans with every required "
                     "attribute). Reliability of pipeline: Drops (dropped ÷ exported + dropped), Export p95 (span "
                     "end → collector ACK). CPU/op: the worker's CPU per operation. 'unmeasured': not measurable here.")
    return table


def _loop_delay_cell(row: dict) -> str:
    """'5.21 ms (+4.60)': the arm's dispatch-lag p99 and its Δ vs the baseline; a baseline's p99 alone."""
    p99, delta = row["loop_delay_p99_ms"], row["loop_delay_delta_p99_ms"]
    if p99 is None:
        return "unmeasured"
    text = f"{p99:.2f} ms" + ("" if delta is None else f" ({delta:+.2f})")
    return text + (" [bold red]saturated[/]" if row["saturated"] else "")


def _memory_cell(row: dict) -> str:
    """The fixed cost in MiB (and the growth) when measured, else the steady-state RSS difference in %."""
    fixed, growth = row["memory_fixed_mib"], row["memory_growth_mib_per_1k_ops"]
    if fixed is None:
        return _unmeasured(row["memory_overhead_percent"], "{:+.1f}%")
    return f"{fixed:+.1f} MiB" + ("" if growth is None else f", {growth:+.3f}/1k ops")


def assessment_summary(profile_data: dict, runs: list[dict], target: str) -> dict:
    """The document's `summary`: the setup in brief, each run graded, and what the figures call for."""
    thresholds = Thresholds.model_validate(profile_data.get("thresholds") or {})
    graded = verdicts(runs, thresholds)
    return {
        "configuration": configuration_summary(profile_data, runs, target),
        "overall": overall(graded),
        "verdicts": graded,
        "recommendations": recommendations(runs, thresholds, profile_data),
        "thresholds": thresholds.model_dump(mode="json"),
    }


def document_header() -> dict:
    """What every results document starts with, a run's or a sweep's."""
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "loadgen", "version": __version__},
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def build_document(profile_data: dict, runs: list[dict], *, target: str, interrupted: bool, errors: list[str]) -> dict:
    invalid = [
        {"provider": run["provider"], "arm": run["arm"], "mode": run["mode"], **reason}
        for run in runs
        for reason in run["invalid_reasons"]
    ]
    document = {
        **document_header(),
        "target": target,
        "valid": not invalid and not errors and not interrupted and bool(runs),
        "invalid_reasons": invalid,
        "interrupted": interrupted,
        "errors": errors,
        "profile": profile_data,
        "north_star_metrics": north_star_metrics(runs),
        "summary": assessment_summary(profile_data, runs, target),
        "runs": runs,
    }
    return redact_data(document)


def write_json(document: dict, path: str | Path) -> None:
    """Write atomically: a reader never sees half a file, an interrupted write loses nothing old."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
    os.replace(tmp, path)


def format_ms(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= 1000:
        return f"{value / 1000:.2f}s"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


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


def _unmeasured(value, fmt: str = "{}") -> str:
    return "unmeasured" if value is None else fmt.format(value)


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


def configuration_line(config: dict) -> str:
    """The setup in one line, leaving out what the profile did not say."""
    parts = [", ".join(f"{name} {model}" for name, model in config["models"].items()),
             f"target {config['target']}", ", ".join(config["modes"])]
    if config["stream"] is not None:
        parts.append("stream" if config["stream"] else "no stream")
    length = (f"{config['duration_s']:g} s" if config["duration_s"] is not None
              else f"{config['operations']} operations" if config["operations"] is not None else None)
    if length:
        parts.append(f"{length} + {config['warmup_operations'] or 0} warm-up")
    if config["arms"]:
        parts.append("arms " + ", ".join(config["arms"]))
    if config["workers"] is not None:
        used = "/".join(str(n) for n in config["workers_used"])
        parts.append(f"workers {config['workers']}" + (f" ({used})" if used else ""))
    if config["seed"] is not None:
        parts.append(f"seed {config['seed']}")
    batch = config["tracing"]
    if batch["max_queue_size"] is not None:
        parts.append(f"batch: queue {batch['max_queue_size']}, delay {batch['schedule_delay_ms']} ms, "
                     f"size {batch['max_export_batch_size']}")
    return "configuration: " + " · ".join(part for part in parts if part)


def versus_baseline(run: dict) -> str:
    """An arm's lines vs its baseline: the overhead with its CI method, memory; then where the overhead lands."""
    method, df = run.get("overhead_ci_method"), run.get("overhead_ci_df")
    ci = "" if method is None else f"; CI: {method}" + ("" if df is None else f", df {df}")
    text = (f"  {run['provider']}/{run['arm']} vs baseline: latency {format_overhead(run)} "
            f"(paired by op_id, {run['overhead_pairs']} pairs{ci})")
    memory = run.get("memory_overhead_mib")
    percent = run.get("memory_overhead_percent")
    text += "; memory " + ("unmeasured" if memory is None else f"{memory:+.1f} MiB ({percent:+.1f}%)")
    if run.get("memory_fixed_mib") is not None:
        text += f", fixed {run['memory_fixed_mib']:+.1f} MiB"
    growth, growth_ci = run.get("memory_growth_mib_per_1k_ops"), run.get("memory_growth_ci95_mib_per_1k_ops")
    if growth is not None:
        text += f", growth {growth:+.3f}" + ("" if not growth_ci else f" [{growth_ci[0]:+.3f}, {growth_ci[1]:+.3f}]")
        text += " MiB per 1,000 ops"
    split = [f"{words} {_mean_ci(run, key)}" for key, words in OVERHEAD_SPLIT if run.get(key) is not None]
    return text + ("\n    of which " + ", ".join(split) if split else "")


def known_answer_line(run: dict) -> str:
    """The calibration arm's known answer (the held time) beside the overhead and the part it should land in."""
    known = run["calibration"]
    held = "unmeasured" if known["held_mean_ms"] is None else f"{known['held_mean_ms']:.3f} ms"
    where = "overhead_before_wire_ms" if known["at"] == "before" else "overhead_after_response_ms"
    measured = f"overhead {format_overhead(run)}"
    if run.get(where) is not None:
        measured += f", {dict(OVERHEAD_SPLIT)[where]} {_mean_ci(run, where)}"
    return (f"  {run['provider']}/{run['arm']}: held the loop {held} per call ({known['kind']}, {known['at']} "
            f"the call; nominal {known['nominal_us']:,} µs) — {measured}")


def _mean_ci(run: dict, key: str) -> str:
    """'+0.412 ms [+0.301, +0.523]' for a mean Δ and its `_ci95_ms`."""
    ci = run.get(key.removesuffix("_ms") + "_ci95_ms")
    return f"{run[key]:+.3f} ms" + ("" if not ci else f" [{ci[0]:+.3f}, {ci[1]:+.3f}]")


def print_summary(console: Console, document: dict, north_star_only: bool = False) -> None:
    """The comprehensive report, or with north_star_only the north-star table alone; the status lines always."""
    runs = document["runs"]
    if north_star_only:
        if runs:
            console.print(north_star_table(document["north_star_metrics"]))
        _print_status(console, document)
        return
    if runs:
        console.print(configuration_line(document["summary"]["configuration"]), highlight=False)
        console.print(summary_table(runs))
        if any(row["arm"] != "baseline" for row in document["north_star_metrics"]):
            console.print(north_star_table(document["north_star_metrics"]))
        for run in runs:
            if run.get("overhead_pairs"):
                console.print(versus_baseline(run), highlight=False)
            if run.get("calibration"):
                console.print(known_answer_line(run), highlight=False)
        tracing = tracing_table(runs)
        if tracing is not None:
            console.print(tracing)
            for run in runs:
                missing = run.get("missing_attributes")
                if missing:
                    listed = ", ".join(f"{name} ({count})" for name, count in missing.items())
                    console.print(f"  {run['provider']}/{run['arm']} LLM spans missing: {listed}", highlight=False)
        console.print(
            "[dim]Latency is measured from each call's intended start; the uncorrected view "
            "(from the actual send) is service_time_ms in the JSON.[/]"
        )
    for run in runs:
        unc = run["service_time_ms"]
        errors = ", ".join(f"{name} {count}" for name, count in sorted(run["errors"].items())) or "none"
        console.print(
            f"  {run['provider']}/{run['arm']}: service time p50 {format_ms(unc['p50'])} p99 {format_ms(unc['p99'])} ms; "
            f"errors: {errors}; shed {run['shed']}; peak in flight {run['peak_in_flight']} (pool {run['pool_size']})"
        )
    if runs:
        summary = document["summary"]
        console.print(assessment_table(summary))
        if summary["recommendations"]:
            console.print("recommendations:")
        for item in summary["recommendations"]:
            console.print(f"  {item['provider']}/{item['arm']} [dim]({item['kind']})[/]: {item['text']}", highlight=False)
    _print_status(console, document)


def _print_status(console: Console, document: dict) -> None:
    for error in document["errors"]:
        console.print(f"[red]error:[/] {error}")
    if document["interrupted"]:
        console.print("[yellow]interrupted: the figures cover the operations finished before the stop[/]")
    for reason in document["invalid_reasons"]:
        console.print(f"[bold red]INVALID[/] {reason['provider']}/{reason['arm']} ({reason['rule']}): {reason['detail']}")
    if document["runs"] and document["valid"]:
        console.print("[green]run valid[/]")


def schema() -> dict:
    """The JSON Schema (draft 2020-12) of the document build_document returns, shipped as package data."""
    return json.loads(resources.files("loadgen").joinpath("schemas/results.schema.json").read_text(encoding="utf-8"))


def validate_document(document: dict) -> list[str]:
    """Every way the document breaks the schema, as 'path: message' (empty: it conforms).

    jsonschema is a test dependency, not a runtime one: imported here, only when asked for.
    """
    try:
        from jsonschema import Draft202012Validator
    except ImportError:
        raise RuntimeError("validating a results document needs jsonschema: pip install 'jsonschema>=4'") from None
    errors = Draft202012Validator(schema()).iter_errors(document)
    return [f"{'/'.join(str(part) for part in error.absolute_path) or '(document)'}: {error.message}"
            for error in sorted(errors, key=lambda error: list(map(str, error.absolute_path)))]
