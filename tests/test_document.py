"""The exported document: the north-star rows and the graded summary, built from finished runs."""

import json
import os

from loadgen.document import build_document, north_star_metrics
from tests.test_console import OTEL, run

NORTH_STAR_KEYS = {"provider", "arm", "mode", "overhead_latency_ms", "overhead_latency_ci95_ms",
                   "overhead_latency_percent", "dropped_span_rate_percent", "export_latency_p95_ms",
                   "trace_coverage_percent", "attribute_completeness_percent", "memory_overhead_percent",
                   "memory_fixed_mib", "memory_growth_mib_per_1k_ops", "loop_delay_p99_ms", "loop_delay_delta_p99_ms",
                   "saturated", "overhead_before_wire_ms", "overhead_after_response_ms", "cpu_per_operation_us",
                   "threads", "gil_wait_p99_ms", "gil_wait_delta_p99_ms"}


def test_north_star_rows_have_the_contract_keys_and_unmeasured_is_none():
    rows = north_star_metrics([run("baseline", cpu_per_operation_us=900.0),
                               run("otel", overhead_latency_ms=0.4, overhead_latency_ci95_ms=[0.2, 0.6],
                                   overhead_latency_percent=0.3, export_latency_ms={"p95": 12.0},
                                   trace_coverage_percent=100.0, cpu_per_operation_us=1000.0)])
    assert all(set(row) == NORTH_STAR_KEYS for row in rows)
    assert rows[1]["export_latency_p95_ms"] == 12.0 and rows[1]["memory_overhead_percent"] is None


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


def test_a_written_document_gets_the_mode_open_would_give_it_not_0600(tmp_path):
    from loadgen.document import write_json

    old = os.umask(0o022)
    try:
        write_json({"a": 1}, tmp_path / "r.json")
    finally:
        os.umask(old)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left
