"""The console: the report printed from a finished document — its tables, its lines, no secrets."""

from io import StringIO

from rich.console import Console

from loadgen.assessment import CHECKS
from loadgen.console import print_summary
from loadgen.console_tables import assessment_table, north_star_table
from loadgen.document import build_document, north_star_metrics


def run(arm, **figures):
    pct = {k: 1.0 for k in ("count", "mean", "p50", "p90", "p95", "p99", "p99_9", "max")}
    base = {"provider": "openai", "arm": arm, "mode": "rate 10/s constant", "stream": False, "valid": True,
            "invalid_reasons": [], "operations_sent": 10, "achieved_rate_rps": 10.0, "target_rate_rps": 10.0,
            "success_rate_percent": 100.0, "cpu_percent": 5.0, "errors": {}, "shed": 0, "peak_in_flight": 1,
            "pool_size": 4, "latency_ms": pct, "service_time_ms": pct, "ttft_ms": pct, "dispatch_lag_ms": pct,
            "spans": None, "export_latency_ms": None}
    base.update(figures)
    return base


def test_the_summary_prints_the_north_star_table_and_secrets_never(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-never-print-123456")
    runs = [run("baseline"), run("otel", overhead_latency_ms=0.4, overhead_latency_ci95_ms=[0.2, 0.6],
                                 overhead_latency_percent=0.3, overhead_pairs=10,
                                 errors={"http_401": 1}, error_examples={"http_401": "bad key sk-should-never-print-123456"})]
    document = build_document({}, runs, target="t", interrupted=False, errors=[])
    out = StringIO()
    print_summary(Console(file=out, width=200), document)
    text = out.getvalue()
    assert "north-star metrics" in text and "unmeasured" in text and "+0.400" in text
    assert "sk-should-never-print" not in str(document) and "sk-should-never-print" not in text


def printed(document, width=250, **options) -> str:
    out = StringIO()
    print_summary(Console(file=out, width=width), document, **options)
    return out.getvalue()


OTEL = {"overhead_latency_ms": 3.0, "overhead_latency_ci95_ms": [2.0, 4.0], "overhead_latency_percent": 3.0,
        "overhead_pairs": 10, "memory_overhead_mib": 1.0, "memory_overhead_percent": 1.0}


def test_the_comprehensive_report_ends_with_the_assessment_and_the_advice():
    document = build_document({}, [run("baseline"), run("otel", **OTEL)], target="t", interrupted=False, errors=[])
    text = printed(document)
    order = ["configuration:", "loadgen summary", "north-star metrics", "vs baseline", "assessment against the thresholds",
             "recommendations:", "run valid"]
    assert [text.index(marker) for marker in order] == sorted(text.index(marker) for marker in order)
    assert "overall: warn" in text and "warn +3.00" in text and "+3.000 ms [+2.000, +4.000] (+3.00%)" in text


def test_north_star_only_prints_the_north_star_table_and_the_status_lines():
    invalid = run("otel", valid=False, invalid_reasons=[{"rule": "worker_cpu", "detail": "worker CPU 95% exceeds 90%"}],
                  **OTEL)
    document = build_document({}, [run("baseline"), invalid], target="t", interrupted=False, errors=["worker 2 died"])
    text = printed(document, north_star_only=True)
    assert "north-star metrics" in text and "Cost of tracing" in text
    assert "INVALID openai/otel (worker_cpu)" in text and "error: worker 2 died" in text
    for elsewhere in ("loadgen summary", "assessment", "recommendations", "configuration", "service time"):
        assert elsewhere not in text


def test_north_star_columns_are_grouped_by_assessment():
    table = north_star_table(north_star_metrics([run("otel", **OTEL)]))
    headers = [str(column.header).split("\n") for column in table.columns]
    assert [h[-1] for h in headers] == ["Provider", "Arm", "Mode", "Overhead (ms ± CI, %)", "Loop delay p99 (Δ)",
                                        "Memory", "Coverage", "Complete", "Drops", "Export p95", "CPU/op"]
    assert [h[0] for h in headers[3:10]] == ["[dim]cost[/]"] * 3 + ["[dim]fidelity[/]"] * 2 + ["[dim]reliability[/]"] * 2


def cells(table) -> list[list[str]]:
    """The table's rows as the strings in its cells."""
    columns = [list(column.cells) for column in table.columns]
    return [list(row) for row in zip(*columns)]


TRACER = {**OTEL, "loop_delay_p99_ms": 5.21, "loop_delay_delta_p99_ms": 4.6, "saturated": False,
          "memory_fixed_mib": 6.9, "memory_growth_mib_per_1k_ops": 0.012,
          "overhead_before_wire_ms": 0.41, "overhead_before_wire_ci95_ms": [0.3, 0.52],
          "overhead_after_response_ms": 0.02, "overhead_after_response_ci95_ms": [-0.01, 0.05],
          "overhead_loop_delay_ms": 2.5, "overhead_loop_delay_ci95_ms": [2.1, 2.9],
          "overhead_ci_method": "batch means over 12 blocks", "overhead_ci_df": 11}


def test_every_tracer_row_shows_its_loop_delay_and_delta_and_memory_its_fixed_cost():
    rows = north_star_metrics([run("baseline", loop_delay_p99_ms=0.61),
                               run("otel", **TRACER),
                               run("honeyhive", **{**TRACER, "saturated": True, "memory_growth_mib_per_1k_ops": None}),
                               run("openinference", **OTEL)])
    assert rows[1]["loop_delay_delta_p99_ms"] == 4.6 and rows[1]["overhead_before_wire_ms"] == 0.41
    table = cells(north_star_table(rows))
    loop, memory = 4, 5  # columns after Provider, Arm, Mode, Overhead
    assert [row[loop] for row in table] == ["0.61 ms", "5.21 ms (+4.60)", "5.21 ms (+4.60) [bold red]saturated[/]",
                                            "unmeasured"]
    # The fixed cost in MiB (with growth when measured); without it, the % of the baseline's RSS.
    assert [row[memory] for row in table] == ["—", "+6.9 MiB, +0.012/1k ops", "+6.9 MiB", "+1.0%"]


def test_the_assessment_table_shows_every_check():
    document = build_document({}, [run("baseline"), run("otel", **TRACER)], target="t", interrupted=False, errors=[])
    table = assessment_table(document["summary"])
    headers = [str(column.header) for column in table.columns]
    assert len(headers) == 1 + len(CHECKS)
    assert "Loop Δp99 ms\n[dim]1 / 5[/]" in headers and "Saturated\n[dim]fail if so[/]" in headers
    baseline, otel = cells(table)
    assert baseline.count("—") == len(CHECKS) - 2  # a baseline: success and latency only
    assert "[yellow]warn[/] +4.60" in otel and "[green]pass[/]" in otel  # loop delay Δ; not saturated


def test_the_vs_baseline_line_names_the_ci_method_and_where_the_overhead_lands():
    document = build_document({}, [run("baseline"), run("otel", **TRACER)], target="t", interrupted=False, errors=[])
    lines = printed(document, width=400).splitlines()
    at = next(k for k, line in enumerate(lines) if "vs baseline" in line)
    line, split = lines[at], lines[at + 1]
    for part in ("+3.000 ms [+2.000, +4.000] (+3.00%)", "10 pairs; CI: batch means over 12 blocks, df 11",
                 "fixed +6.9 MiB", "growth +0.012 MiB per 1,000 ops"):
        assert part in line, (part, line)
    assert split == ("    of which before wire +0.410 ms [+0.300, +0.520], after response +0.020 ms [-0.010, +0.050], "
                     "loop delay +2.500 ms [+2.100, +2.900]")
    # Without the split and the method (an older document), the line is as it was.
    plain = build_document({}, [run("baseline"), run("otel", **OTEL)], target="t", interrupted=False, errors=[])
    (line,) = [line for line in printed(plain).splitlines() if "vs baseline" in line]
    assert line.endswith("(paired by op_id, 10 pairs); memory +1.0 MiB (+1.0%)")


def test_the_north_star_rows_by_overhead_keep_baselines_first_and_groups_in_order():
    from loadgen.console_tables import by_overhead

    def row(provider, arm, overhead, mode="m"):
        return {"provider": provider, "arm": arm, "mode": mode, "overhead_latency_ms": overhead}

    rows = [row("openai", "baseline", None), row("openai", "otel", 2.0), row("openai", "honeyhive@1.7.0", 0.5),
            row("openai", "langfuse", None), row("anthropic", "otel", 1.0), row("anthropic", "baseline", None)]
    assert [(r["provider"], r["arm"]) for r in by_overhead(rows)] == [
        ("openai", "baseline"), ("openai", "honeyhive@1.7.0"), ("openai", "otel"), ("openai", "langfuse"),
        ("anthropic", "baseline"), ("anthropic", "otel")]
