"""The fault matrix's runner, phases and verdicts on synthetic scenario runs (no processes, no clock)."""

from array import array

import pytest

from loadgen.document import validate_document
from loadgen.errors import ExitCode
from loadgen.fault_scenarios import SCENARIOS
from loadgen.fault_cells import build_cells
from loadgen.fault_phases import ScenarioRun, phase_bounds, phase_figures, scenario_profile
from loadgen.faults import faults_document, run_matrix
from loadgen.limits import Validity
from loadgen.metrics import summarize_all
from loadgen.profile import Profile
from loadgen.schedule import NS, profile_offsets
from tests.conftest import run_cli
from tests.test_metrics import result as worker_result

T0 = 10 * NS  # the measured schedule's start on the shared monotonic clock
MIB = 2**20


def matrix_profile(**faults) -> Profile:
    return Profile(provider="openai", load={"kind": "constant", "rate": 50}, warmup_operations=0,
                   tracing={"arms": ["baseline", "otel"], "schedule_delay_ms": 500},
                   faults={"before": 2, "during": 2, "after": 2, **faults})


def synthetic(arm: str, profile: Profile, scenario: str, *, extra_ms: float = 0.0, lost: int = 0,
              rss_after_mib: float = 100.0, queue_full: int = 0, retried: int = 0, failed: int = 0,
              error_spans: int = 0) -> tuple:
    """(a worker result, its collector attempt log) for one arm of a scenario: 2 s per phase at 50/s;
    during the fault calls of the tracing arm take `extra_ms` longer; `lost` spans end in no bucket;
    `failed` calls failed, `error_spans` of them reached the collector as ERROR spans."""
    sprofile = scenario_profile(profile, SCENARIOS[scenario], "openai")
    offsets = profile_offsets(sprofile)
    bounds = phase_bounds(profile, SCENARIOS[scenario])
    during = bounds["during"]
    latency = array("q", [100_000_000 + (int(extra_ms * 1e6) if during[0] <= offset < during[1] else 0)
                          for offset in offsets])
    traced = arm != "baseline"
    # Twice a second: RSS, spans ended / exported / dropped, queue; the queue grows during the fault.
    timeline = []
    samples = 2 * bounds["after"][1] // NS + 1
    for k in range(samples):
        t = T0 + k * NS // 2
        in_fault = during[0] <= t - T0 < during[1]
        rss = (rss_after_mib if t - T0 >= during[1] else 100.0) * MIB
        ended = 100 * k if traced else 0
        timeline.append((t, int(rss), ended, ended - (80 if in_fault else 0) if traced else 0,
                         {"queue_full": queue_full if t - T0 >= during[1] else 0, "export_failed": 0,
                          "rejected": 0, "after_shutdown": 0}, 80 if in_fault else 10))
    ended = 1200 if traced else 0
    spans = None if not traced else {
        "started": ended, "ended": ended, "exported": ended - queue_full - lost, "in_queue": 0, "export_calls": 12,
        "dropped": {"queue_full": queue_full, "export_failed": 0, "rejected": 0, "after_shutdown": 0},
        "export_latency": worker_result().histograms["latency"]}
    collector = None if not traced else {
        "spans_received": ended - queue_full - lost, "duplicates": 0, "covered_operations": len(offsets), "bytes": 1000,
        "attribute_completeness_percent": 100.0, "missing_attributes": {}, "rejected_spans": 0,
        "attempts": 12 + retried, "attempts_by_outcome": {"accepted": 12, "down": retried}, "error_llm_spans": error_spans,
        "spans_by_outcome": {"accepted": ended - queue_full - lost}, "error_roots": error_spans}
    result = worker_result(arm=arm, latency_by_op=latency, lag_by_op=array("q", [50_000] * len(offsets)),
                           timeline=timeline, shutdown_s=0.2, run_id=f"run-{arm}" if traced else None,
                           spans=spans, collector=collector, operations_sent=len(offsets),
                           operations_completed=len(offsets), operations_ok=len(offsets) - failed)
    # One export a second; none accepted while the collector is down; the first back 0.3 s after it.
    attempts = [[T0 + s * NS // 2, "accepted", 100] for s in range(samples) if not during[0] <= s * NS // 2 <= during[1]]
    attempts.append([T0 + during[1] + 3 * NS // 10, "accepted", 100])
    attempts += [[T0 + during[0] + s * NS // 4, "down", 100] for s in range(retried)]
    return result, sorted(attempts) if traced else None


def fake_runner(profile: Profile, **changes):
    """A ScenarioRunner that makes synthetic runs: the otel arm with `changes` in every scenario."""
    calls = []

    def run(scenario, provider) -> ScenarioRun:
        calls.append((scenario.name, provider))
        pairs = [synthetic("baseline", profile, scenario.name), synthetic("otel", profile, scenario.name, **changes)]
        results = [result for result, _ in pairs]
        runs = [{k: v for k, v in summary.items() if k != "histograms"}
                for summary in summarize_all(results, Validity())]
        return ScenarioRun(scenario.name, provider, results=results, runs=runs, t0_ns=T0,
                           attempts={result.run_id: attempts for result, attempts in pairs if result.run_id})

    run.calls = calls
    return run


def test_a_scenario_profile_puts_the_fault_in_the_middle_phase_armed_at_the_schedule():
    profile = matrix_profile()
    down = scenario_profile(profile, SCENARIOS["collector_down"], "openai")
    assert down.duration == pytest.approx(2 + 30 + 2)  # the outage is 30 s whatever `during` says
    (fault,) = down.collector.faults
    assert (fault.kind, fault.start_s, fault.duration_s) == ("down", 2, 30)
    assert down.collector.faults_from == "armed" and down.mock.faults == []
    assert (down.rounds, down.replicas, down.workers) == (1, 1, 1)
    at_exit = scenario_profile(profile, SCENARIOS["collector_down_at_exit"], "openai")
    assert at_exit.collector.faults[0].duration_s is None  # still down at shutdown
    cut = scenario_profile(profile, SCENARIOS["llm_stream_cut"], "anthropic")
    assert cut.stream and cut.provider == "anthropic" and cut.mock.faults[0].kind == "stream_cut"
    assert scenario_profile(profile, SCENARIOS["llm_timeout"], "openai").timeout == 1.0


def test_calls_fall_in_phases_by_intended_start_and_the_timeline_gives_rss_and_spans():
    profile = matrix_profile()
    result, attempts = synthetic("otel", profile, "collector_down", extra_ms=7, rss_after_mib=130, queue_full=40)
    scenario = SCENARIOS["collector_down"]
    offsets = profile_offsets(scenario_profile(profile, scenario, "openai"))
    phases = phase_figures(result, offsets, phase_bounds(profile, scenario), T0, attempts)
    assert [phases[name]["calls"] for name in ("before", "during", "after")] == [100, 1500, 100]
    assert phases["during"]["latency_p50_ms"] == pytest.approx(107, rel=0.01)
    assert phases["before"]["latency_p50_ms"] == pytest.approx(100, rel=0.01)
    assert phases["after"]["rss_end_mib"] == pytest.approx(130)
    assert phases["before"]["rss_end_mib"] == pytest.approx(100)
    assert phases["during"]["queue_peak"] == 80
    assert phases["during"]["spans"]["ended"] == 6000  # 30 s of samples, 100 spans each half second
    assert phases["during"]["export_attempts"] == {}
    assert phases["during"]["spans"]["dropped"]["queue_full"] == 40  # by the sample at its end
    assert phases["after"]["spans"]["dropped"]["queue_full"] == 0


def test_a_cell_passes_warns_or_fails_by_its_worst_figure():
    profile = matrix_profile(scenarios=["llm_500"])

    def cell(**changes) -> dict:
        run = fake_runner(profile, **changes)(SCENARIOS["llm_500"], "openai")
        cells, baselines = build_cells(run, profile)
        assert [b["arm"] for b in baselines] == ["baseline"]
        (only,) = cells
        return only

    clean = cell()
    assert clean["verdict"] == "pass", clean["checks"]
    assert clean["latency_delta_p99_ms"] == pytest.approx(0, abs=0.1)
    slow = cell(extra_ms=12)
    assert slow["verdict"] == "warn" and "latency p99 during" in slow["worst"]
    assert slow["latency_delta_p99_ms"] == pytest.approx(12, rel=0.02)
    grown = cell(rss_after_mib=125)
    assert grown["verdict"] == "warn" and grown["rss_back_percent"] == pytest.approx(25)
    assert grown["baseline_rss_back_percent"] == 0 and grown["rss_back_delta_percent"] == pytest.approx(25)
    untraced = cell(failed=20, error_spans=15)
    assert untraced["verdict"] == "warn" and "15 of 20 failed calls" in untraced["worst"]
    assert cell(failed=20, error_spans=20)["verdict"] == "pass"
    lost = cell(lost=3, extra_ms=12)
    assert lost["verdict"] == "fail" and lost["spans"]["unaccounted"] == 3 and "unaccounted" in lost["worst"]


def test_recovery_is_timed_from_the_fault_end_and_retries_are_counted_at_the_collector():
    profile = matrix_profile(scenarios=["collector_down"])
    run = fake_runner(profile, retried=5, queue_full=30)(SCENARIOS["collector_down"], "openai")
    (cell,), _ = build_cells(run, profile)
    assert cell["recovery"]["first_accepted_export_s"] == pytest.approx(0.3)
    assert cell["recovery"]["queue_drained_s"] == pytest.approx(0.0)
    assert cell["recovery_s"] == pytest.approx(0.3)
    assert cell["exporter_retries"] == 5
    assert cell["spans"]["dropped"]["queue_full"] == 30
    assert any("max_queue_size = 2048" in text for text in cell["recommendations"])


def test_the_matrix_runs_every_scenario_on_every_provider_and_keeps_what_an_interrupt_left():
    profile = matrix_profile(scenarios=["collector_503", "llm_529"]).model_copy(update={"provider": "both"})
    runner = fake_runner(profile)
    result = run_matrix(profile, runner)
    assert runner.calls == [("collector_503", "openai"), ("collector_503", "anthropic"),
                            ("llm_529", "openai"), ("llm_529", "anthropic")]
    assert [(c["scenario"], c["provider"], c["arm"]) for c in result.cells] == [
        (s, p, "otel") for s in ("collector_503", "llm_529") for p in ("openai", "anthropic")]
    assert len(result.baselines) == 4 and not result.interrupted

    def interrupted(scenario, provider):
        if scenario.name == "llm_529":
            raise KeyboardInterrupt
        return runner(scenario, provider)

    kept = run_matrix(profile, interrupted)
    assert kept.interrupted and {c["scenario"] for c in kept.cells} == {"collector_503"}


def test_the_matrix_document_validates_against_the_schema():
    profile = matrix_profile(scenarios=["collector_down", "llm_500"])
    result = run_matrix(profile, fake_runner(profile, queue_full=10, retried=2))
    document = faults_document(profile.model_dump(mode="json"), result, "embedded")
    assert validate_document(document) == []
    assert document["kind"] == "faults"
    for cell in document["cells"]:
        assert {"scenario", "provider", "arm", "verdict", "spans", "recovery_s", "shutdown_s",
                "latency_delta_p99_ms", "rss_peak_mib"} <= set(cell)


def test_phases_too_short_for_two_exports_are_refused_naming_the_key():
    with pytest.raises(ValueError, match="faults.before .* two schedule delays"):
        Profile(tracing={"schedule_delay_ms": 5000}, faults={"before": 3})
    with pytest.raises(ValueError, match="unknown scenario"):
        Profile(tracing={"schedule_delay_ms": 500}, faults={"scenarios": ["collector_gone"]})


def test_the_cli_names_an_unknown_scenario_and_run_refuses_a_fault_profile():
    done = run_cli("faults", "--scenarios", "collector_gone")
    assert done.returncode == ExitCode.USAGE and "collector_gone" in done.stderr and "collector_down" in done.stderr
    done = run_cli("run", "profiles/faults.toml")
    assert done.returncode == ExitCode.USAGE and "loadgen faults" in done.stderr
    done = run_cli("faults", "--set", "target.kind=url", "--set", "target.base_url=http://127.0.0.1:9")
    assert done.returncode == ExitCode.USAGE and "embedded" in done.stderr


def test_rss_kept_after_the_fault_is_judged_beyond_what_the_baseline_kept():
    # The sync client's threads keep ~30 % more RSS after a stall, the baseline's as much as the arm's:
    # that is the client's, not the tracer's. Both grow 30 %: pass; the arm 45 %: 15 points beyond, warn.
    profile = matrix_profile(scenarios=["llm_500"])

    def cell(arm_mib: float) -> dict:
        pairs = [synthetic("baseline", profile, "llm_500", rss_after_mib=130),
                 synthetic("otel", profile, "llm_500", rss_after_mib=arm_mib)]
        results = [result for result, _ in pairs]
        runs = [{k: v for k, v in summary.items() if k != "histograms"}
                for summary in summarize_all(results, Validity())]
        run = ScenarioRun("llm_500", "openai", results=results, runs=runs, t0_ns=T0,
                          attempts={result.run_id: attempts for result, attempts in pairs if result.run_id})
        (only,), _ = build_cells(run, profile)
        return only

    same = cell(130)
    assert same["rss_back_percent"] == pytest.approx(30) and same["rss_back_delta_percent"] == pytest.approx(0)
    assert same["verdict"] == "pass", same["checks"]
    more = cell(145)
    assert more["rss_back_delta_percent"] == pytest.approx(15) and more["verdict"] == "warn"
    assert "15.00 points beyond the baseline's +30.00 %" in more["worst"]
