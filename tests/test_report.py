"""Reporters are functions of finished results: the north-star rows and tables, redaction."""

from io import StringIO

from rich.console import Console

from loadgen.report import build_document, north_star_metrics, print_summary

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
