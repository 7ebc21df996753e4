"""The assessment on synthetic run summaries: verdict boundaries, and advice only when a figure calls for it."""

import re

import pytest

from loadgen.assessment import configuration_summary, grade, overall, recommendations, verdicts
from loadgen.profile import AtLeast, AtMost, Profile, ProfileError, Thresholds, build_profile

DEFAULTS = Thresholds()
PROFILE = Profile(tracing={"arms": ["baseline", "otel"]}).model_dump(mode="json")


def spans(**dropped):
    return {"started": 100, "ended": 100, "exported": 100 - sum(dropped.values()), "received": 100,
            "dropped": {"queue_full": 0, "export_failed": 0, "rejected": 0, "after_shutdown": 0, **dropped},
            "unaccounted": 0, "duplicates": 0}


def run(arm="otel", **figures):
    """A run whose every figure is within the default pass limits and calls for no advice."""
    base = {"provider": "openai", "arm": arm, "mode": "rate 10/s constant", "workers": 1, "valid": True,
            "invalid_reasons": [], "success_rate_percent": 100.0, "errors": {},
            "latency_ms": {"p95": 200.0}, "service_time_ms": {"p95": 190.0}, "dispatch_lag_ms": {"p99": 0.5},
            "overhead_latency_ms": 0.2, "overhead_latency_ci95_ms": [0.1, 0.3], "overhead_latency_percent": 0.1,
            "overhead_pairs": 100, "memory_overhead_mib": 1.0, "memory_overhead_percent": 1.0,
            "spans": spans(), "trace_coverage_percent": 100.0, "attribute_completeness_percent": 100.0,
            "missing_attributes": {}}
    if arm == "baseline":
        base.update(dict.fromkeys(("overhead_latency_ms", "overhead_latency_ci95_ms", "overhead_latency_percent",
                                   "overhead_pairs", "memory_overhead_mib", "memory_overhead_percent", "spans",
                                   "trace_coverage_percent", "attribute_completeness_percent", "missing_attributes")))
    base.update(figures)
    return base


@pytest.mark.parametrize("limits, value, expected", [
    (AtLeast(pass_=99, warn=95), 100.0, "pass"),
    (AtLeast(pass_=99, warn=95), 99.0, "pass"),        # exactly at the pass limit passes
    (AtLeast(pass_=99, warn=95), 97.0, "warn"),        # between the limits
    (AtLeast(pass_=99, warn=95), 95.0, "warn"),        # exactly at the warn limit warns
    (AtLeast(pass_=99, warn=95), 94.9, "fail"),        # beyond warn
    (AtMost(pass_=5000, warn=10000), 5000.0, "pass"),
    (AtMost(pass_=5000, warn=10000), 5000.1, "warn"),
    (AtMost(pass_=5000, warn=10000), 10000.0, "warn"),
    (AtMost(pass_=5000, warn=10000), 10000.1, "fail"),
    (AtMost(pass_=2, warn=5), -0.3, "pass"),           # a tracer that measured faster than the baseline
    (AtMost(pass_=2, warn=5), None, "unmeasured"),     # never guessed
    (AtMost(pass_=2, warn=2), 2.5, "fail"),            # equal limits: no warn band
])
def test_grade_boundaries(limits, value, expected):
    assert grade(value, limits) == expected


def test_a_baseline_has_no_overhead_checks_and_a_missing_figure_is_unmeasured():
    rows = verdicts([run("baseline"), run(overhead_latency_percent=None, memory_overhead_percent=7.0)], DEFAULTS)
    assert [(r["arm"], r["check"]) for r in rows] == [
        ("baseline", "success_rate_percent"), ("baseline", "latency_p95_ms"),
        ("otel", "success_rate_percent"), ("otel", "latency_p95_ms"),
        ("otel", "memory_overhead_percent"), ("otel", "tracer_overhead_percent")]
    by_check = {r["check"]: r for r in rows[2:]}
    assert by_check["memory_overhead_percent"] == {
        "provider": "openai", "arm": "otel", "mode": "rate 10/s constant", "check": "memory_overhead_percent",
        "value": 7.0, "pass_limit": 5.0, "warn_limit": 10.0, "verdict": "warn"}
    assert by_check["tracer_overhead_percent"]["verdict"] == "unmeasured"
    assert by_check["latency_p95_ms"]["value"] == 200.0


@pytest.mark.parametrize("graded, expected", [
    (["pass", "warn", "pass"], "warn"),
    (["pass", "unmeasured", "fail", "warn"], "fail"),
    (["unmeasured", "pass"], "pass"),      # unmeasured is ignored, not counted as a pass or a failure
    (["unmeasured"], "unmeasured"),        # nothing graded
    ([], "unmeasured"),
])
def test_overall_is_the_worst_measured_verdict(graded, expected):
    assert overall([{"verdict": v} for v in graded]) == expected


@pytest.mark.parametrize("data, message", [
    ({"latency_p95_ms": {"pass": 5000, "warn": 4000}}, "thresholds.latency_p95_ms: warn (4000) is stricter than pass (5000)"),
    ({"success_rate_percent": {"pass": 95, "warn": 99}}, "thresholds.success_rate_percent: warn (99) is stricter than pass (95)"),
    ({"tracer_overhead_percent": {"pass": 2}}, "thresholds.tracer_overhead_percent.warn: Field required"),
    ({"latency_p99_ms": {"pass": 1, "warn": 2}}, "thresholds.latency_p99_ms: unknown key"),
])
def test_thresholds_in_the_wrong_order_are_a_profile_error(data, message):
    with pytest.raises(ProfileError, match=re.escape(message)):
        build_profile({"thresholds": data}, "p.toml")


def test_thresholds_are_written_pass_and_warn_and_survive_the_trip_to_the_workers():
    profile = build_profile({"thresholds": {"latency_p95_ms": {"pass": 300, "warn": 900}}})
    dumped = profile.model_dump(mode="json")
    assert dumped["thresholds"]["latency_p95_ms"] == {"pass": 300.0, "warn": 900.0}
    assert dumped["thresholds"]["success_rate_percent"] == {"pass": 99.0, "warn": 95.0}
    assert Profile.model_validate(dumped) == profile


def test_a_run_within_every_limit_calls_for_no_advice():
    assert recommendations([run("baseline"), run()], DEFAULTS, PROFILE) == []
    # Exactly at the pass limits is still a pass.
    at_limits = run(success_rate_percent=99.0, latency_ms={"p95": 5000.0}, overhead_latency_percent=2.0,
                    memory_overhead_percent=5.0)
    assert recommendations([at_limits], DEFAULTS, PROFILE) == []


@pytest.mark.parametrize("kind, figures, quoted", [
    # 30 of 100 spans evicted from a full queue → name both batch settings with their values
    ("queue_full", {"spans": spans(queue_full=30)},
     ["30 spans", "30.00%", "tracing.max_queue_size (now 2048)", "tracing.schedule_delay_ms (now 5000 ms)"]),
    ("export_failed", {"spans": spans(export_failed=7)}, ["7 spans", "export_failed", "the embedded collector"]),
    ("rejected", {"spans": spans(rejected=3)}, ["3 spans", "rejected", "partial success"]),
    ("missing_attributes", {"missing_attributes": {"gen_ai.usage.input_tokens": 12, "gen_ai.request.model": 4},
                            "attribute_completeness_percent": 88.0},
     ["gen_ai.usage.input_tokens (12 spans)", "gen_ai.request.model (4 spans)", "88.0%"]),
    ("generator_saturated", {"valid": False, "workers": 2,
                             "invalid_reasons": [{"rule": "send_rate", "detail": "achieved send rate 9.0/s"}]},
     ["achieved send rate 9.0/s", "rate 10/s constant", "`workers` (this run used 2)"]),
    # late sends only with the tracer, the baseline on time: the tracer's own work on the loop
    ("tracer_blocks_loop", {"valid": False, "dispatch_lag_ms": {"p99": 9.5}, "cpu_per_operation_delta_us": 3400.0,
                            "invalid_reasons": [{"rule": "dispatch_lag", "detail": "dispatch-lag p99 9.500 ms"}]},
     ["dispatch-lag p99 9.50 ms vs 0.50 ms", "+3400 µs of CPU per operation", "that delay is in its overhead"]),
    ("coverage", {"trace_coverage_percent": 97.5}, ["97.5%"]),
    # 90 % succeeded: the error classes, most frequent first
    ("errors", {"success_rate_percent": 90.0, "errors": {"timeout": 2, "http_429": 8}},
     ["90.0%", "pass limit 99%", "http_429 8, timeout 2"]),
    ("overhead", {"overhead_latency_ms": 3.0, "overhead_latency_ci95_ms": [2.5, 3.5], "overhead_latency_percent": 2.5},
     ["+3.000 ms [+2.500, +3.500] (+2.50%)", "pass limit 2%"]),
    ("memory", {"memory_overhead_mib": 8.0, "memory_overhead_percent": 6.0}, ["+8.0 MiB (+6.0%)", "pass limit 5%"]),
    # a CI of [−0.1, +0.5] ms contains 0
    ("overhead_unresolved", {"overhead_latency_ci95_ms": [-0.1, 0.5], "overhead_pairs": 40},
     ["[-0.100, +0.500]", "not distinguishable from zero", "40 pairs"]),
    ("latency", {"latency_ms": {"p95": 6000.0}, "service_time_ms": {"p95": 5900.0}}, ["6000.0 ms", "5900.0 ms"]),
])
def test_each_recommendation_appears_when_its_figure_triggers_it(kind, figures, quoted):
    found = recommendations([run("baseline"), run(**figures)], DEFAULTS, PROFILE)
    assert [item["kind"] for item in found] == [kind]
    assert {key: found[0][key] for key in ("provider", "arm", "mode")} == {
        "provider": "openai", "arm": "otel", "mode": "rate 10/s constant"}
    for text in quoted:
        assert text in found[0]["text"]


def test_advice_follows_the_profile_thresholds_and_settings():
    strict = Thresholds(memory_overhead_percent=AtMost(pass_=0.5, warn=1))
    assert [item["kind"] for item in recommendations([run()], strict, PROFILE)] == ["memory"]
    profile = Profile(tracing={"arms": ["otel"], "collector_url": "http://otel:4318", "max_queue_size": 64})
    found = recommendations([run(spans=spans(queue_full=5, export_failed=1))], DEFAULTS, profile.model_dump(mode="json"))
    assert "(now 64)" in found[0]["text"] and "http://otel:4318" in found[1]["text"]


def test_configuration_summary_is_what_the_profile_asked_for_and_the_modes_that_ran():
    config = configuration_summary(PROFILE, [run("baseline", workers=2), run(workers=2)], "embedded mock")
    assert config == {
        "providers": ["openai", "anthropic"],
        "models": {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-latest"},
        "target": "embedded mock", "modes": ["rate 10/s constant"], "stream": False, "duration_s": 10.0,
        "operations": None, "warmup_operations": 0, "arms": ["baseline", "otel"], "workers": "auto",
        "workers_used": [2], "seed": 42,
        "tracing": {"max_queue_size": 2048, "schedule_delay_ms": 5000, "max_export_batch_size": 512,
                    "export_timeout_ms": 30000, "collector_url": None},
    }
