"""Reporters are functions of finished results: the north-star rows and tables, redaction."""

from io import StringIO

from rich.console import Console

from loadgen.report import build_document, north_star_metrics, north_star_table, print_summary

NORTH_STAR_KEYS = {"provider", "arm", "mode", "overhead_latency_ms", "overhead_latency_ci95_ms",
                   "overhead_latency_percent", "dropped_span_rate_percent", "export_latency_p95_ms",
                   "trace_coverage_percent", "attribute_completeness_percent", "memory_overhead_percent",
                   "cpu_per_operation_us"}


def run(arm, **figures):
    pct = {k: 1.0 for k in ("count", "mean", "p50", "p90", "p95", "p99", "p99_9", "max")}
    base = {"provider": "openai", "arm": arm, "mode": "rate 10/s constant", "stream": False, "valid": True,
            "invalid_reasons": [], "operations_sent": 10, "achieved_rate_rps": 10.0, "target_rate_rps": 10.0,
            "success_rate_percent": 100.0, "cpu_percent": 5.0, "errors": {}, "shed": 0, "peak_in_flight": 1,
            "pool_size": 4, "latency_ms": pct, "service_time_ms": pct, "ttft_ms": pct, "dispatch_lag_ms": pct,
            "spans": None, "export_latency_ms": None}
    base.update(figures)
    return base


def test_north_star_rows_have_the_contract_keys_and_unmeasured_is_none():
    rows = north_star_metrics([run("baseline", cpu_per_operation_us=900.0),
                               run("otel", overhead_latency_ms=0.4, overhead_latency_ci95_ms=[0.2, 0.6],
                                   overhead_latency_percent=0.3, export_latency_ms={"p95": 12.0},
                                   trace_coverage_percent=100.0, cpu_per_operation_us=1000.0)])
    assert all(set(row) == NORTH_STAR_KEYS for row in rows)
    assert rows[1]["export_latency_p95_ms"] == 12.0 and rows[1]["memory_overhead_percent"] is None


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


def printed(document, **options) -> str:
    out = StringIO()
    print_summary(Console(file=out, width=250), document, **options)
    return out.getvalue()


OTEL = {"overhead_latency_ms": 3.0, "overhead_latency_ci95_ms": [2.0, 4.0], "overhead_latency_percent": 3.0,
        "overhead_pairs": 10, "memory_overhead_mib": 1.0, "memory_overhead_percent": 1.0}


def test_the_summary_grades_each_run_against_the_profile_thresholds_or_the_defaults():
    runs = [run("baseline"), run("otel", **OTEL)]
    default = build_document({}, runs, target="t", interrupted=False, errors=[])["summary"]
    assert set(default) == {"configuration", "overall", "verdicts", "recommendations", "thresholds"}
    assert default["thresholds"]["tracer_overhead_percent"] == {"pass": 2.0, "warn": 5.0}
    # 3 % overhead: between the default pass (2) and warn (5) limits
    assert default["overall"] == "warn" and [r["kind"] for r in default["recommendations"]] == ["overhead"]
    lenient = {"thresholds": {"tracer_overhead_percent": {"pass": 3, "warn": 6}}}
    summary = build_document(lenient, runs, target="t", interrupted=False, errors=[])["summary"]
    assert summary["overall"] == "pass" and summary["recommendations"] == []
    assert summary["thresholds"]["tracer_overhead_percent"] == {"pass": 3.0, "warn": 6.0}


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
    assert [h[-1] for h in headers] == ["Provider", "Arm", "Mode", "Overhead (ms ± CI, %)", "Memory", "Coverage",
                                        "Complete", "Drops", "Export p95", "CPU/op"]
    assert [h[0] for h in headers[3:9]] == ["[dim]cost[/]"] * 2 + ["[dim]fidelity[/]"] * 2 + ["[dim]reliability[/]"] * 2
