"""Validity rules and summaries, on synthetic worker results."""

from array import array
from dataclasses import replace

import pytest

from loadgen.histograms import Recorder
from loadgen.metrics import achieved_rate, schedule_rate, summarize, summarize_all
from loadgen.limits import Validity
from loadgen.profile_files import build_profile
from loadgen.results import BY_OP, HISTOGRAMS, WorkerResult, merge

NS = 1_000_000_000


def worker(**changes) -> WorkerResult:
    """One worker's result: 1,000 calls at 100/s, 0.2 ms dispatch lag each."""
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
    # Paired as the plan pairs it: a tracer arm (and a second baseline) against "baseline".
    base.setdefault("paired_with", None if base["arm"] in ("baseline", "baseline@otel") else "baseline")
    return WorkerResult(**base)


def result(**changes) -> WorkerResult:
    """A run of one worker, merged as the fleet merges every run."""
    return merge([worker(**changes)])


def lagging(ms: float) -> dict:
    """Histograms whose dispatch lag is `ms` on every one of 1,000 calls."""
    lag = Recorder()
    for _ in range(1000):
        lag.record_ns(int(ms * 1_000_000))
    return result().histograms | {"dispatch_lag": lag.encode()}


def rules(res, validity: Validity = Validity(), saturation_judged: bool = True) -> list[str]:
    return [reason["rule"] for reason in summarize(res, validity, saturation_judged)["invalid_reasons"]]


def verdicts(*results, validity: Validity = Validity()) -> dict:
    """(arm, mode) → the rules that made it invalid, as summarize_all judges a run's results together."""
    return {(s["arm"], s["mode"]): [r["rule"] for r in s["invalid_reasons"]]
            for s in summarize_all(list(results), validity)}


def test_a_clean_run_is_valid():
    assert rules(result()) == []
    assert schedule_rate(result()) == pytest.approx(100)
    assert achieved_rate(result()) == pytest.approx(100)


def test_slow_sends_break_the_rate_rule():
    # 1,000 sends stretched over 11 s instead of 9.99 s → 90.8/s < 99/s
    assert "send_rate" in rules(result(last_sent_ns=5 * NS + 11 * NS))


@pytest.mark.parametrize("lag_ms, rate, broken", [
    (3.0, 100, True),    # 100/s: 25 % of the 10 ms interval is 2.5 ms → 3 ms breaks it
    (2.4, 100, False),   # … and 2.4 ms keeps it (under the old 1 ms limit it broke)
    (2.2, 400, True),    # 400/s: 25 % of 2.5 ms is 0.625 ms, under the 2 ms floor → 2.2 ms breaks it
    (1.9, 400, False),   # … and 1.9 ms keeps it
    (3.0, 10, False),    # 10/s: 25 ms → 3 ms is fine
])
def test_lag_limit_is_max_of_2ms_and_a_quarter_of_the_interval(lag_ms, rate, broken):
    res = result(histograms=lagging(lag_ms), offsets_last_ns=999 * NS // rate, last_sent_ns=5 * NS + 999 * NS // rate)
    assert ("dispatch_lag" in rules(res)) is broken


def test_the_lag_detail_names_the_limit_it_computed():
    # 3 ms at 100/s; HDR keeps 3 significant digits, so the measured p99 reads 3.00x
    [reason] = summarize(result(histograms=lagging(3.0)))["invalid_reasons"]
    assert reason["rule"] == "dispatch_lag" and reason["detail"].startswith("dispatch-lag p99 3.00")
    assert reason["detail"].endswith("ms exceeds 2.500 ms (max of 2 ms and 25% of the 10.000 ms mean interval)")


def test_cpu_rule():
    assert rules(result(cpu_percent=95.0)) == ["worker_cpu"]


def test_unsent_and_shed_operations():
    assert "unsent_operations" in rules(result(operations_sent=990, last_sent_ns=5 * NS + 989 * NS // 100))
    assert "unsent_operations" in rules(result(shed=3))


def test_closed_loop_skips_rate_and_lag_rules():
    res = result(load_kind="concurrency", offsets_first_ns=None, offsets_last_ns=None,
                 last_sent_ns=5 * NS + 50 * NS, histograms=lagging(50.0))
    assert rules(res) == []
    # a closed loop for a duration plans nothing up front: fewer sent is not unsent; a fixed count is
    assert rules(replace(res, operations_sent=400)) == []
    assert rules(replace(res, operations_sent=400, operations_fixed=True)) == ["unsent_operations"]


def test_limits_come_from_the_validity_table():
    # each [validity] setting moves its rule's verdict on the same figures
    assert rules(result(histograms=lagging(3.0)), Validity(max_lag_floor_ms=4)) == []
    assert rules(result(histograms=lagging(3.0)), Validity(max_lag_share_of_interval=0.5)) == []
    assert rules(result(cpu_percent=40.0), Validity(max_worker_cpu_percent=30)) == ["worker_cpu"]
    assert rules(result(last_sent_ns=5 * NS + 11 * NS), Validity(min_rate_ratio=0.9)) == []
    # a profile's [validity] reaches them
    profile = build_profile({"validity": {"max_worker_cpu_percent": 30}})
    assert rules(result(cpu_percent=40.0), profile.validity) == ["worker_cpu"]


def test_the_summary_says_which_limits_applied():
    # 100/s: rate floor 99/s, lag ceiling 2.5 ms; a closed loop has neither
    assert summarize(result())["validity_limits"] == {
        "saturation_judged": True, "min_rate_rps": 99.0, "max_worker_cpu_percent": 90, "max_dispatch_lag_p99_ms": 2.5}
    closed = summarize(result(load_kind="sequential", offsets_first_ns=None, offsets_last_ns=None), Validity(), False)
    assert closed["validity_limits"] == {
        "saturation_judged": False, "min_rate_rps": None, "max_worker_cpu_percent": 90, "max_dispatch_lag_p99_ms": None}


def test_a_tracers_loop_delay_and_cpu_are_its_cost_not_an_invalid_run():
    # tracer lag p99 5 ms, its baseline's 0.5 ms: both valid; a tracer at 95 % CPU, baseline 20 %: valid
    baseline = result(histograms=lagging(0.5), cpu_percent=20.0)
    assert verdicts(baseline, result(arm="otel", histograms=lagging(5.0))) == {
        ("baseline", "rate 100/s constant"): [], ("otel", "rate 100/s constant"): []}
    assert verdicts(baseline, result(arm="honeyhive", cpu_percent=95.0))[("honeyhive", "rate 100/s constant")] == []
    # the calibration arm stands in for a tracer: not judged for saturation beside a baseline
    assert verdicts(baseline, result(arm="calibration", histograms=lagging(5.0)))[
        ("calibration", "rate 100/s constant")] == []


def test_a_baseline_over_a_limit_makes_the_run_invalid():
    # the generator could not keep up on its own: baseline (or baseline-2) over the lag or CPU limit
    assert verdicts(result(histograms=lagging(3.0)), result(arm="otel"))[("baseline", "rate 100/s constant")] == [
        "dispatch_lag"]
    assert verdicts(result(), result(arm="baseline-2", cpu_percent=95.0))[("baseline-2", "rate 100/s constant")] == [
        "worker_cpu"]


def test_the_schedule_rules_judge_every_arm():
    # a tracer arm that shed calls, or sent too slowly, did not get the load asked for
    found = verdicts(result(), result(arm="otel", shed=3), result(arm="honeyhive", last_sent_ns=5 * NS + 11 * NS))
    assert found[("otel", "rate 100/s constant")] == ["unsent_operations"]
    assert found[("honeyhive", "rate 100/s constant")] == ["send_rate"]


def test_without_a_baseline_in_the_mode_every_arm_is_judged():
    # mode A has a baseline, mode B none: B's otel and calibration are judged for saturation
    a, b = "rate 100/s constant", "rate 100/s poisson"
    found = verdicts(result(), result(arm="otel", histograms=lagging(5.0)),
                     result(arm="otel", mode=b, histograms=lagging(5.0)),
                     result(arm="calibration", mode=b, cpu_percent=95.0))
    assert found == {("baseline", a): [], ("otel", a): [],
                     ("otel", b): ["dispatch_lag"], ("calibration", b): ["worker_cpu"]}


def test_summary_has_the_contract_keys():
    summary = summarize(result())
    for key in ("provider", "arm", "mode", "operations_sent", "achieved_rate_rps", "errors", "histograms"):
        assert key in summary
    for key in ("latency_ms", "service_time_ms", "dispatch_lag_ms", "ttft_ms", "itl_ms"):
        assert set(summary[key]) >= {"count", "mean", "p50", "p90", "p99", "p99_9", "max"}
    assert summary["dispatch_lag_ms"]["p50"] == pytest.approx(0.2, rel=0.01)


def test_merge_adds_counters_and_histograms_and_keeps_the_busiest_cpu():
    a = worker(shard=0, operations_planned=500, operations_sent=500, operations_completed=500, operations_ok=500,
               cpu_percent=40.0, rss_samples=[], cpu_seconds_total=1.0, errors={"timeout": 1},
               last_sent_ns=5 * NS + 998 * NS // 100, last_done_ns=1)
    b = worker(shard=1, operations_planned=500, operations_sent=500, operations_completed=500, operations_ok=500,
               cpu_percent=70.0, rss_samples=[], cpu_seconds_total=2.0, errors={"timeout": 2, "http_500": 1},
               first_sent_ns=5 * NS + NS // 100, last_done_ns=2)
    merged = merge([b, a])
    assert merged.operations_sent == 1000 and merged.operations_planned == 1000
    assert merged.errors == {"timeout": 3, "http_500": 1}
    assert merged.cpu_percent == 70.0 and merged.cpu_percent_by_worker == [40.0, 70.0]
    assert merged.first_sent_ns == 5 * NS and merged.last_sent_ns == 5 * NS + 999 * NS // 100
    summary = summarize(merged)
    assert summary["dispatch_lag_ms"]["count"] == 2000 and summary["workers"] == 2
    assert summary["achieved_rate_rps"] == pytest.approx(100, rel=0.001)


def test_merge_merges_every_per_op_array_by_op_id():
    # Two shards took alternate op_ids of 6: each per-op array merges like latency_by_op.
    def shard(k):
        values = {name: array("q", [-1] * 6) for name in BY_OP}
        for op_id in range(k, 6, 2):
            for n, name in enumerate(BY_OP):
                values[name][op_id] = 1000 * (n + 1) + op_id
        return worker(shard=k, cpu_percent=40.0, rss_samples=[], cpu_seconds_total=1.0, last_done_ns=1, **values)

    merged = merge([shard(1), shard(0)])
    for n, name in enumerate(BY_OP):
        assert list(getattr(merged, name)) == [1000 * (n + 1) + op_id for op_id in range(6)]


def test_the_timeline_split_is_summarised_or_unmeasured():
    # A worker with the split recorded reports its parts in ms; one on httpx2's own pool
    # (nothing recorded) reports count 0 and None, not zeros.
    parts = {name: Recorder() for name in ("before_wire", "wire", "after_response")}
    for name, ms in (("before_wire", 2), ("wire", 20), ("after_response", 1)):
        for _ in range(10):
            parts[name].record_ns(ms * 1_000_000)
    measured = summarize(result(histograms=result().histograms | {k: v.encode() for k, v in parts.items()}))
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
    base = result(operations_sent=45, warmup_operations=4, spans=spans)
    measured = span_figures(replace(base, collector=collector))
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


def test_an_arm_with_a_baseline_of_its_own_environment_is_paired_with_that_one():
    # Its environment's SDKs differ from loadgen's: its baseline@ runs 10 ms slower, and the arm
    # costs 0.4 ms against that one — never 10.4 ms against the other.
    from array import array

    def run(arm: str, latency_ms: float, paired_with: str | None) -> WorkerResult:
        ops = array("q", [round(latency_ms * 1e6) + i % 7 * 1000 for i in range(1000)])
        return result(arm=arm, latency_by_op=ops, paired_with=paired_with, cpu_seconds_measured=1.0)

    runs = {s["arm"]: s for s in summarize_all([
        run("baseline", 100.0, None), run("openlit@1.45.0", 110.4, "baseline@openlit@1.45.0"),
        run("baseline@openlit@1.45.0", 110.0, None), run("otel", 100.4, "baseline"),
    ], Validity())}
    assert runs["openlit@1.45.0"]["overhead_latency_ms"] == pytest.approx(0.4, abs=1e-6)
    assert runs["openlit@1.45.0"]["paired_with"] == "baseline@openlit@1.45.0"
    assert runs["otel"]["overhead_latency_ms"] == pytest.approx(0.4, abs=1e-6)
    assert runs["baseline@openlit@1.45.0"]["overhead_latency_ms"] is None  # a baseline is paired with no one
