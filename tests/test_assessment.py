"""The assessment on synthetic run summaries: verdict boundaries, and advice only when a figure calls for it."""

import re

import pytest

from loadgen.assessment import CHECKS, configuration_summary, grade, overall, recommendations, verdicts
from loadgen.limits import AtLeast, AtMost, Thresholds
from loadgen.settings import TracingSettings
from loadgen.profile import Profile, ProfileError
from loadgen.profile_files import build_profile

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
            "missing_attributes": {}, "dropped_span_rate_percent": 0.0, "export_latency_ms": {"p95": 5200.0},
            "export_endpoint": "http://127.0.0.1:4318/v1/traces",
            "loop_delay_p50_ms": 0.2, "loop_delay_p99_ms": 0.6, "loop_delay_delta_p99_ms": 0.1,
            "saturated": False, "saturation_detail": None, "memory_fixed_mib": 1.0,
            "memory_growth_mib_per_1k_ops": 0.0}
    if arm in ("baseline", "baseline-2", "calibration"):
        # An arm without a tracer exports nothing: its span figures are unmeasured.
        base.update(dict.fromkeys(("spans", "trace_coverage_percent", "attribute_completeness_percent",
                                   "missing_attributes", "dropped_span_rate_percent", "export_latency_ms",
                                   "export_endpoint")))
    if arm in ("baseline", "baseline-2"):
        base.update(dict.fromkeys(("overhead_latency_ms", "overhead_latency_ci95_ms", "overhead_latency_percent",
                                   "overhead_pairs", "memory_overhead_mib", "memory_overhead_percent",
                                   "loop_delay_delta_p99_ms", "saturated", "memory_fixed_mib")))
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
        *(("otel", check) for check in CHECKS)]
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
                    memory_overhead_percent=5.0, loop_delay_delta_p99_ms=1.0, memory_fixed_mib=20.0,
                    trace_coverage_percent=99.9, export_latency_ms={"p95": 10000.0})
    assert recommendations([at_limits], DEFAULTS, PROFILE) == []


@pytest.mark.parametrize("kind, figures, quoted", [
    # 30 of 100 spans evicted from a full queue → name both batch settings with their values
    ("queue_full", {"spans": spans(queue_full=30)},
     ["30 spans", "30.00%", "tracing.max_queue_size (now 2048)", "tracing.schedule_delay_ms (now 5000 ms)"]),
    # the export calls failed: name where they went
    ("export_failed", {"spans": spans(export_failed=7)},
     ["7 spans", "export_failed", "http://127.0.0.1:4318/v1/traces", "check that endpoint"]),
    ("rejected", {"spans": spans(rejected=3)}, ["3 spans", "rejected", "partial success"]),
    ("missing_attributes", {"missing_attributes": {"gen_ai.usage.input_tokens": 12, "gen_ai.request.model": 4},
                            "attribute_completeness_percent": 88.0},
     ["gen_ai.usage.input_tokens (12 spans)", "gen_ai.request.model (4 spans)", "88.0%"]),
    ("generator_saturated", {"valid": False, "workers": 2,
                             "invalid_reasons": [{"rule": "send_rate", "detail": "achieved send rate 9.0/s"}]},
     ["achieved send rate 9.0/s", "rate 10/s constant", "`workers` (this run used 2)"]),
    # the tracer's loop delay is a cost: quoted with the baseline's, the CPU it adds and where the overhead lands
    ("loop_delay", {"loop_delay_p99_ms": 5.21, "loop_delay_delta_p99_ms": 4.6, "cpu_per_operation_delta_us": 3400.0,
                    "overhead_before_wire_ms": 0.41, "overhead_after_response_ms": 0.02, "overhead_loop_delay_ms": 1.2},
     ["loop delay p99 5.21 ms, +4.60 ms vs the baseline's 0.61 ms", "pass limit 1 ms", "+3400 µs of CPU",
      "of the overhead: before wire +0.410 ms, after response +0.020 ms, loop delay +1.200 ms",
      "not an invalid run"]),
    ("saturated", {"saturated": True, "workers": 2,
                   "saturation_detail": "worker CPU 96% with the tracer vs 41% for the baseline"},
     ["worker CPU 96% with the tracer vs 41% for the baseline", "`workers` (this run used 2)"]),
    # export p95 of 12 s: over the 10 s pass limit; the batch delay is the first suspect
    ("export_latency", {"export_latency_ms": {"p95": 12000.0}},
     ["12000 ms", "pass limit 10000 ms", "tracing.schedule_delay_ms (now 5000 ms)", "http://127.0.0.1:4318/v1/traces"]),
    # a fixed cost of 30 MiB is over the 20 MiB pass limit though 3 % is within 5 %
    ("memory", {"memory_fixed_mib": 30.0, "memory_overhead_mib": 31.0, "memory_overhead_percent": 3.0,
                "memory_growth_mib_per_1k_ops": 0.05},
     ["+31.0 MiB (+3.0%)", "fixed cost +30.0 MiB", "growth +0.050 MiB per 1,000 operations", "pass limit 20 MiB"]),
    ("coverage", {"trace_coverage_percent": 97.5}, ["97.5%"]),
    # 90 % succeeded: the error classes, most frequent first
    ("errors", {"success_rate_percent": 90.0, "errors": {"timeout": 2, "http_429": 8}},
     ["90.0%", "pass limit 99%", "http_429 8, timeout 2"]),
    ("overhead", {"overhead_latency_ms": 3.0, "overhead_latency_ci95_ms": [2.5, 3.5], "overhead_latency_percent": 2.5},
     ["+3.000 ms [+2.500, +3.500] (+2.50%)", "pass limit 2%"]),
    ("memory", {"memory_overhead_mib": 8.0, "memory_overhead_percent": 6.0}, ["+8.0 MiB (+6.0%)", "pass limit 5%"]),
    # 99.5 % coverage: within warn, beyond pass
    ("coverage", {"trace_coverage_percent": 99.5}, ["99.5%", "0.5% of operations"]),
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
    found = recommendations([run(spans=spans(queue_full=5, export_failed=1), export_endpoint=None)], DEFAULTS,
                            profile.model_dump(mode="json"))
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
        "client": "async", "arms_left_out": [], "clients": None, "threads": "auto", "threads_used": [],
    }


def test_with_the_raw_client_every_arm_but_the_baseline_is_reported_left_out():
    profile = Profile(client="raw", tracing={"arms": ["baseline", "otel", "openinference"]}).model_dump(mode="json")
    config = configuration_summary(profile, [run("baseline")], "embedded mock")
    assert config["client"] == "raw"
    assert [item["arm"] for item in config["arms_left_out"]] == ["otel", "openinference"]
    assert "SDK" in config["arms_left_out"][0]["reason"]


# Every check on a tracer arm: (check, figures, value graded, verdict), at and across each limit.
@pytest.mark.parametrize("check, figures, value, verdict", [
    ("success_rate_percent", {"success_rate_percent": 96.0}, 96.0, "warn"),
    ("latency_p95_ms", {"latency_ms": {"p95": 12000.0}}, 12000.0, "fail"),
    ("tracer_overhead_percent", {"overhead_latency_percent": 2.0}, 2.0, "pass"),
    # loop delay is graded on the Δ vs the baseline (4.6 ms), not on the p99 itself (5.21 ms)
    ("loop_delay_p99_ms", {"loop_delay_p99_ms": 5.21, "loop_delay_delta_p99_ms": 4.6}, 4.6, "warn"),
    ("loop_delay_p99_ms", {"loop_delay_delta_p99_ms": 5.1}, 5.1, "fail"),
    ("saturated", {"saturated": True}, True, "fail"),
    ("saturated", {"saturated": False}, False, "pass"),
    ("memory_overhead_percent", {"memory_overhead_percent": 11.0}, 11.0, "fail"),
    # the fixed cost when measured, else the steady-state difference
    ("memory_overhead_mib", {"memory_fixed_mib": 20.0, "memory_overhead_mib": 60.0}, 20.0, "pass"),
    ("memory_overhead_mib", {"memory_fixed_mib": None, "memory_overhead_mib": 21.0}, 21.0, "warn"),
    ("trace_coverage_percent", {"trace_coverage_percent": 99.9}, 99.9, "pass"),
    ("trace_coverage_percent", {"trace_coverage_percent": 98.9}, 98.9, "fail"),
    ("attribute_completeness_percent", {"attribute_completeness_percent": 95.0}, 95.0, "warn"),
    ("dropped_span_rate_percent", {"dropped_span_rate_percent": 0.0}, 0.0, "pass"),
    ("dropped_span_rate_percent", {"dropped_span_rate_percent": 0.5}, 0.5, "warn"),
    ("export_latency_p95_ms", {"export_latency_ms": {"p95": 30001.0}}, 30001.0, "fail"),
    # collector figures of spans sent where nothing reports them: unmeasured, not a failure
    ("trace_coverage_percent", {"trace_coverage_percent": None}, None, "unmeasured"),
])
def test_every_check_is_graded_on_a_tracer_arm(check, figures, value, verdict):
    (row,) = [row for row in verdicts([run(**figures)], DEFAULTS) if row["check"] == check]
    assert (row["value"], row["verdict"]) == (value, verdict)


def test_default_limits_of_the_new_checks():
    limits = {check: (getattr(DEFAULTS, check).pass_, getattr(DEFAULTS, check).warn)
              for check in CHECKS if check != "saturated"}
    assert limits == {
        "success_rate_percent": (99, 95), "latency_p95_ms": (5000, 10000), "tracer_overhead_percent": (2, 5),
        "loop_delay_p99_ms": (1, 5), "memory_overhead_percent": (5, 10), "memory_overhead_mib": (20, 50),
        "trace_coverage_percent": (99.9, 99), "attribute_completeness_percent": (99, 90),
        "dropped_span_rate_percent": (0, 1), "export_latency_p95_ms": (10000, 30000)}
    # Each is documented where a user reads the profile's settings.
    assert all(Thresholds.model_fields[check].description for check in limits)


def test_a_run_with_every_span_dropped_fails_on_drops_and_names_where_the_exports_went():
    endpoint = "HoneyHive's server (https://api.dp1.us.honeyhive.ai/opentelemetry/v1/traces)"
    all_52 = {**spans(export_failed=52), "started": 52, "ended": 52, "exported": 0, "received": None}
    lost = run("honeyhive", spans=all_52, dropped_span_rate_percent=100.0, export_endpoint=endpoint,
               export_latency_ms={"p95": None}, trace_coverage_percent=None, attribute_completeness_percent=None)
    graded = {row["check"]: row["verdict"] for row in verdicts([lost], DEFAULTS)}
    assert graded["dropped_span_rate_percent"] == "fail" and overall(verdicts([lost], DEFAULTS)) == "fail"
    assert graded["export_latency_p95_ms"] == graded["trace_coverage_percent"] == "unmeasured"
    (advice,) = recommendations([lost], DEFAULTS, PROFILE)
    assert advice["kind"] == "all_dropped"
    assert "every span was dropped (52 of 52: export_failed 52)" in advice["text"] and endpoint in advice["text"]
    assert "embedded collector" not in advice["text"]


def test_the_calibration_arm_has_its_span_checks_unmeasured_and_the_rest_graded():
    calibration = run("calibration", loop_delay_p99_ms=2.6, loop_delay_delta_p99_ms=2.0)
    graded = {row["check"]: row["verdict"] for row in verdicts([calibration], DEFAULTS)}
    assert set(graded) == set(CHECKS)
    assert {check: graded[check] for check in ("trace_coverage_percent", "attribute_completeness_percent",
                                               "dropped_span_rate_percent", "export_latency_p95_ms")} == dict.fromkeys(
        ("trace_coverage_percent", "attribute_completeness_percent", "dropped_span_rate_percent",
         "export_latency_p95_ms"), "unmeasured")
    assert graded["loop_delay_p99_ms"] == "warn" and overall(verdicts([calibration], DEFAULTS)) == "warn"
    # Span figures that somehow came with no spans are still not graded.
    stray = run("calibration", dropped_span_rate_percent=100.0)
    assert {r["check"]: r["verdict"] for r in verdicts([stray], DEFAULTS)}["dropped_span_rate_percent"] == "unmeasured"


def test_a_second_baseline_gets_the_baseline_checks_only():
    rows = verdicts([run("baseline-2")], DEFAULTS)
    assert [row["check"] for row in rows] == ["success_rate_percent", "latency_p95_ms"]


def test_the_generator_saturated_on_the_baseline_is_advice_for_that_run_only():
    busy = run("baseline", valid=False, invalid_reasons=[{"rule": "worker_cpu", "detail": "worker CPU 95% > 90%"}])
    found = recommendations([busy, run()], DEFAULTS, PROFILE)
    assert [(item["arm"], item["kind"]) for item in found] == [("baseline", "generator_saturated")]
    assert "worker CPU 95% > 90%" in found[0]["text"]


def test_the_loop_delay_limits_are_settable_from_a_profile():
    profile = build_profile({"thresholds": {"loop_delay_p99_ms": {"pass": 5, "warn": 10},
                                            "dropped_span_rate_percent": {"pass": 1, "warn": 2}}}, "p.toml")
    assert profile.model_dump(mode="json")["thresholds"]["loop_delay_p99_ms"] == {"pass": 5.0, "warn": 10.0}
    slow = run(loop_delay_p99_ms=5.21, loop_delay_delta_p99_ms=4.6)
    graded = {row["check"]: row for row in verdicts([slow], profile.thresholds)}
    assert (graded["loop_delay_p99_ms"]["verdict"], graded["loop_delay_p99_ms"]["pass_limit"]) == ("pass", 5.0)
    assert recommendations([slow], profile.thresholds, PROFILE) == []
    assert [item["kind"] for item in recommendations([slow], DEFAULTS, PROFILE)] == ["loop_delay"]


@pytest.mark.parametrize("arm, tracing, env, expected", [
    ("baseline", None, {}, None),  # no tracer, no spans
    ("otel", {"collector_url": "http://127.0.0.1:4318/"}, {}, "http://127.0.0.1:4318/v1/traces"),
    # HoneyHive posts to its own path on any server
    ("honeyhive", {"collector_url": "http://otel:4318"}, {}, "http://otel:4318/opentelemetry/v1/traces"),
    # --target real with HH_API_KEY: HoneyHive's server, its default or HH_API_URL
    ("honeyhive", {"collector_url": None}, {}, "HoneyHive's server (https://api.dp1.us.honeyhive.ai/opentelemetry/v1/traces)"),
    ("honeyhive", {"collector_url": None}, {"HH_API_URL": "https://hh.example/"},
     "HoneyHive's server (https://hh.example/opentelemetry/v1/traces)"),
])
def test_export_endpoint_names_where_the_arm_sends_its_spans(monkeypatch, arm, tracing, env, expected):
    from loadgen.orchestrator import export_endpoint

    monkeypatch.delenv("HH_API_URL", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert export_endpoint(arm, None if tracing is None else TracingSettings(run_id="r", **tracing)) == expected
