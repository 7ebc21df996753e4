"""Validity rules and summaries, on synthetic worker results."""

from array import array

import pytest

from loadgen.histograms import Recorder
from loadgen.metrics import achieved_rate, check_validity, schedule_rate, summarize
from loadgen.runner import BY_OP, HISTOGRAMS

NS = 1_000_000_000


def result(**changes):
    lag = Recorder()
    for _ in range(1000):
        lag.record_ns(200_000)  # 0.2 ms
    base = {
        "provider": "openai", "arm": "baseline", "mode": "rate 100/s constant", "load_kind": "constant",
        "stream": False, "model": "m", "interrupted": False,
        "operations_planned": 1000, "operations_fixed": False, "operations_sent": 1000, "operations_completed": 1000,
        "operations_ok": 1000, "shed": 0, "attempts": 1000, "warmup_operations": 0, "peak_in_flight": 3,
        "pool_size": 16, "output_tokens": 0, "warmup_errors": 0, "cpu_percent": 40.0, "errors": {}, "error_examples": {},
        "offsets_first_ns": 0, "offsets_last_ns": 999 * NS // 100,
        "first_sent_ns": 5 * NS, "last_sent_ns": 5 * NS + 999 * NS // 100,
        "histograms": {name: Recorder().encode() for name in HISTOGRAMS},
    }
    base["histograms"]["dispatch_lag"] = lag.encode()
    base.update(changes)
    return base


def rules(res):
    from loadgen.metrics import histograms

    return [v.rule for v in check_validity(res, histograms(res))]


def test_a_clean_run_is_valid():
    assert rules(result()) == []
    assert schedule_rate(result()) == pytest.approx(100)
    assert achieved_rate(result()) == pytest.approx(100)


def test_slow_sends_break_the_rate_rule():
    # 1,000 sends stretched over 11 s instead of 9.99 s → 90.8/s < 99/s
    assert "send_rate" in rules(result(last_sent_ns=5 * NS + 11 * NS))


def test_lag_rule_uses_max_of_1ms_and_10_percent_of_interval():
    lag = Recorder()
    for _ in range(1000):
        lag.record_ns(3_000_000)  # 3 ms
    histos = result()["histograms"] | {"dispatch_lag": lag.encode()}
    # 100/s: mean interval 10 ms → limit 1 ms → 3 ms breaks it
    assert "dispatch_lag" in rules(result(histograms=histos))
    # 10/s: mean interval 100 ms → limit 10 ms → 3 ms is fine
    slow = result(histograms=histos, operations_planned=1000, offsets_last_ns=999 * NS // 10,
                  last_sent_ns=5 * NS + 999 * NS // 10)
    assert "dispatch_lag" not in rules(slow)


def test_cpu_rule():
    assert rules(result(cpu_percent=95.0)) == ["worker_cpu"]


def test_unsent_and_shed_operations():
    assert "unsent_operations" in rules(result(operations_sent=990, last_sent_ns=5 * NS + 989 * NS // 100))
    assert "unsent_operations" in rules(result(shed=3))


def test_closed_loop_skips_rate_and_lag_rules():
    res = result(load_kind="concurrency", offsets_first_ns=None, offsets_last_ns=None,
                 last_sent_ns=5 * NS + 50 * NS)
    assert rules(res) == []


def test_summary_has_the_contract_keys():
    summary = summarize(result())
    for key in ("provider", "arm", "mode", "operations_sent", "achieved_rate_rps", "errors", "histograms"):
        assert key in summary
    for key in ("latency_ms", "service_time_ms", "dispatch_lag_ms", "ttft_ms", "itl_ms"):
        assert set(summary[key]) >= {"count", "mean", "p50", "p90", "p99", "p99_9", "max"}
    assert summary["dispatch_lag_ms"]["p50"] == pytest.approx(0.2, rel=0.01)


def test_merge_shards_adds_counters_and_histograms_and_keeps_the_busiest_cpu():
    from loadgen.metrics import merge_shards

    a = result(shard=0, operations_planned=500, operations_sent=500, operations_completed=500, operations_ok=500,
               cpu_percent=40.0, rss_samples=[], cpu_seconds_total=1.0, errors={"timeout": 1},
               last_sent_ns=5 * NS + 998 * NS // 100, last_done_ns=1)
    b = result(shard=1, operations_planned=500, operations_sent=500, operations_completed=500, operations_ok=500,
               cpu_percent=70.0, rss_samples=[], cpu_seconds_total=2.0, errors={"timeout": 2, "http_500": 1},
               first_sent_ns=5 * NS + NS // 100, last_done_ns=2)
    merged = merge_shards([b, a])
    assert merged["operations_sent"] == 1000 and merged["operations_planned"] == 1000
    assert merged["errors"] == {"timeout": 3, "http_500": 1}
    assert merged["cpu_percent"] == 70.0 and merged["cpu_percent_by_worker"] == [40.0, 70.0]
    assert merged["first_sent_ns"] == 5 * NS and merged["last_sent_ns"] == 5 * NS + 999 * NS // 100
    summary = summarize(merged)
    assert summary["dispatch_lag_ms"]["count"] == 2000 and summary["workers"] == 2
    assert summary["achieved_rate_rps"] == pytest.approx(100, rel=0.001)


def test_merge_shards_merges_every_per_op_array_by_op_id():
    # Two shards took alternate op_ids of 6: each per-op array merges like latency_by_op.
    from loadgen.metrics import merge_shards
    from loadgen.overhead import latencies

    def shard(k):
        values = {name: array("q", [-1] * 6) for name in BY_OP}
        for op_id in range(k, 6, 2):
            for n, name in enumerate(BY_OP):
                values[name][op_id] = 1000 * (n + 1) + op_id
        return result(shard=k, cpu_percent=40.0, rss_samples=[], cpu_seconds_total=1.0, last_done_ns=1,
                      **{name: v.tobytes().hex() for name, v in values.items()})

    merged = merge_shards([shard(1), shard(0)])
    for n, name in enumerate(BY_OP):
        assert list(latencies(merged[name])) == [1000 * (n + 1) + op_id for op_id in range(6)]


def test_the_timeline_split_is_summarised_or_unmeasured():
    # A worker with the split recorded reports its parts in ms; one on httpx2's own pool
    # (nothing recorded) reports count 0 and None, not zeros.
    parts = {name: Recorder() for name in ("before_wire", "wire", "after_response")}
    for name, ms in (("before_wire", 2), ("wire", 20), ("after_response", 1)):
        for _ in range(10):
            parts[name].record_ns(ms * 1_000_000)
    measured = summarize(result(histograms=result()["histograms"] | {k: v.encode() for k, v in parts.items()}))
    assert [measured[k]["p50"] for k in ("before_wire_ms", "wire_ms", "after_response_ms")] == pytest.approx(
        [2.0, 20.0, 1.0], rel=0.001)  # HDR's 3 significant digits
    unmeasured = summarize(result())
    for key in ("before_wire_ms", "wire_ms", "after_response_ms"):
        assert unmeasured[key]["count"] == 0 and unmeasured[key]["mean"] is None


def test_span_figures_reconcile_with_the_collector_or_say_unmeasured():
    from loadgen.metrics import span_figures

    latency = Recorder()
    for ms in range(1, 91):
        latency.record_ns(ms * 1_000_000)
    spans = {"started": 100, "ended": 100, "exported": 90, "in_queue": 0, "export_calls": 3,
             "dropped": {"queue_full": 10, "export_failed": 0, "rejected": 0, "after_shutdown": 0},
             "export_latency": latency.encode()}
    collector = {"spans_received": 89, "duplicates": 1, "covered_operations": 40, "bytes": 50_000,
                 "attribute_completeness_percent": 97.5, "missing_attributes": {"gen_ai.response.model": 1}}
    base = result(operations_sent=45, warmup_operations=4, shards=1, spans=spans)
    measured = span_figures({**base, "collector": collector})
    assert measured["spans"]["unaccounted"] == 1 and measured["spans"]["duplicates"] == 1
    assert measured["dropped_span_rate_percent"] == 10.0
    assert measured["trace_coverage_percent"] == pytest.approx(100 * 40 / 45, abs=0.001)
    assert measured["export_bytes_per_operation"] == pytest.approx(50_000 / 50)
    assert measured["export_latency_ms"]["count"] == 90
    unmeasured = span_figures(base)
    assert unmeasured["spans"]["received"] is None and unmeasured["spans"]["unaccounted"] is None
    assert unmeasured["trace_coverage_percent"] is None and unmeasured["attribute_completeness_percent"] is None
    assert span_figures(result())["spans"] is None


@pytest.mark.parametrize("received, unaccounted", [(90, 0), (85, 5), (None, None)])
def test_reconcile(received, unaccounted):
    from loadgen.metrics import reconcile

    snap = {"started": 100, "ended": 100, "exported": 90, "dropped": {"queue_full": 10, "export_failed": 0,
            "rejected": 0, "after_shutdown": 0}}
    assert reconcile(snap, received, 0)["unaccounted"] == unaccounted
