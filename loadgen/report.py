"""Reporters: functions of finished results — the summary table and the JSON document.

No reporter reaches back into the engine. Every string that leaves here passes through
redaction, so an API key that found its way into an error message is masked.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from loadgen import __version__
from loadgen.redact import redact_data

SCHEMA_VERSION = "1.0"


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
            "cpu_per_operation_us": run.get("cpu_per_operation_us"),
        })
    return rows


def north_star_table(rows: list[dict]) -> Table:
    table = Table(title="north-star metrics — what tracing costs, how faithful and how reliable it is")
    for column in ("Provider", "Arm", "Mode", "Overhead ms [95% CI] (%)", "Memory", "Coverage", "Complete",
                   "Drops", "Export p95", "CPU/op µs"):
        table.add_column(column, justify="left" if column in ("Provider", "Arm", "Mode") else "right")
    for row in rows:
        baseline = row["arm"] == "baseline"
        table.add_row(
            row["provider"], row["arm"], row["mode"],
            "—" if baseline else _overhead(row),
            "—" if baseline else _unmeasured(row["memory_overhead_percent"], "{:+.1f}%"),
            "—" if baseline else _unmeasured(row["trace_coverage_percent"], "{:.1f}%"),
            "—" if baseline else _unmeasured(row["attribute_completeness_percent"], "{:.1f}%"),
            "—" if baseline else _unmeasured(row["dropped_span_rate_percent"], "{:.2f}%"),
            "—" if baseline else _unmeasured(row["export_latency_p95_ms"], "{:.1f} ms"),
            _unmeasured(row["cpu_per_operation_us"], "{:.0f}"),
        )
    table.caption = ("Cost of tracing: Overhead (latency vs the baseline, paired by op_id), Memory (steady-state RSS "
                     "vs baseline). Fidelity of data: Coverage (operations with root + LLM span in one trace), "
                     "Complete (LLM spans with every required attribute). Reliability of pipeline: Drops (dropped ÷ "
                     "exported + dropped), Export p95 (span end → collector ACK). 'unmeasured': not measurable here.")
    return table


def build_document(profile_data: dict, runs: list[dict], *, target: str, interrupted: bool, errors: list[str]) -> dict:
    invalid = [
        {"provider": run["provider"], "arm": run["arm"], "mode": run["mode"], **reason}
        for run in runs
        for reason in run["invalid_reasons"]
    ]
    document = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "loadgen", "version": __version__},
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "target": target,
        "valid": not invalid and not errors and not interrupted and bool(runs),
        "invalid_reasons": invalid,
        "interrupted": interrupted,
        "errors": errors,
        "profile": profile_data,
        "north_star_metrics": north_star_metrics(runs),
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


def _ms(value: float | None) -> str:
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
            _ms(lat["p50"]), _ms(lat["p90"]), _ms(lat["p99"]), _ms(lat["p99_9"]), _ms(lat["max"]),
            _ms(ttft["p50"]), _ms(lag["p99"]), f"{run['cpu_percent']:.0f}",
            "yes" if run["valid"] else "[bold red]NO[/]",
        )
    return table


def _unmeasured(value, fmt: str = "{}") -> str:
    return "unmeasured" if value is None else fmt.format(value)


def _overhead(run: dict) -> str:
    mean, ci, pct = run.get("overhead_latency_ms"), run.get("overhead_latency_ci95_ms"), run.get("overhead_latency_percent")
    if mean is None:
        return "unmeasured"
    return f"{mean:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}] ({pct:+.2f}%)"


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
            _ms(latency["p50"]), _ms(latency["p95"]), _ms(latency["p99"]),
            _unmeasured(run["trace_coverage_percent"], "{:.1f}"), _unmeasured(run["attribute_completeness_percent"], "{:.1f}"),
            _unmeasured(run["export_bytes_per_operation"], "{:.0f}"),
        )
    return table


def print_summary(console: Console, document: dict) -> None:
    runs = document["runs"]
    if runs:
        console.print(summary_table(runs))
        if any(row["arm"] != "baseline" for row in document["north_star_metrics"]):
            console.print(north_star_table(document["north_star_metrics"]))
        for run in runs:
            if run.get("overhead_pairs"):
                memory = run.get("memory_overhead_mib")
                memory_text = "unmeasured" if memory is None else f"{memory:+.1f} MiB ({run['memory_overhead_percent']:+.1f}%)"
                console.print(f"  {run['provider']}/{run['arm']} vs baseline: latency {_overhead(run)} ms "
                              f"(paired by op_id, {run['overhead_pairs']} pairs); memory {memory_text}", highlight=False)
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
            f"  {run['provider']}/{run['arm']}: service time p50 {_ms(unc['p50'])} p99 {_ms(unc['p99'])} ms; "
            f"errors: {errors}; shed {run['shed']}; peak in flight {run['peak_in_flight']} (pool {run['pool_size']})"
        )
    for error in document["errors"]:
        console.print(f"[red]error:[/] {error}")
    if document["interrupted"]:
        console.print("[yellow]interrupted: the figures cover the operations finished before the stop[/]")
    for reason in document["invalid_reasons"]:
        console.print(f"[bold red]INVALID[/] {reason['provider']}/{reason['arm']} ({reason['rule']}): {reason['detail']}")
    if runs and document["valid"]:
        console.print("[green]run valid[/]")
