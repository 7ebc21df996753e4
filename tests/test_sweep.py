"""The rate sweep: the climb with a fake step runner, and one tiny sweep against the embedded mock."""

import json

import pytest
from rich.console import Console

from conftest import run_cli
from loadgen.console import print_sweep
from loadgen.document import validate_document
from loadgen.limits import Validity
from loadgen.profile_runs import Sweep
from loadgen.profile_files import build_profile
from loadgen.sweep import (ArmTrack, StepOutcome, budget_modes, next_arms, run_sweep, step_profile,
                           step_rates, sweep_document)


# A figure that breaks each rule at the default [validity] limits, on a step of 100/s.
BREAK = {
    "rate": {"achieved_rate_rps": 90.0},              # under 99 % of the schedule's 100/s
    "unsent": {"operations_unsent": 5},
    "shed": {"shed": 3},
    "cpu": {"cpu_percent": 95.0},                     # over 90 %
    "lag": {"dispatch_lag_ms": {"p99": 5.0}},         # over max(2 ms, 2.5 ms): shown, stops nothing
}


def summary(provider: str, arm: str, *, broken: str | tuple | None = None, p99: float = 80.0) -> dict:
    """The fields of a metrics.summarize entry the sweep reads; `broken` names the BREAK figures to lay over it."""
    run = {"provider": provider, "arm": arm, "load_kind": "constant", "target_rate_rps": 100.0,
           "achieved_rate_rps": 100.0, "operations_planned": 1000, "operations_unsent": 0, "shed": 0,
           "cpu_percent": 40.0, "latency_ms": {"p50": p99 / 2, "p99": p99}, "dispatch_lag_ms": {"p99": 0.3}}
    for name in (broken,) if isinstance(broken, str) else broken or ():
        run.update(BREAK[name])
    return run


def fake_runner(verdicts: dict, calls: list | None = None, interrupt_at: float | None = None):
    """A step runner from {(rate, arm): BREAK name(s) | ('p99', ms)}; other arms keep the schedule at p99 80 ms."""

    def run_step(rate, plan):
        if calls is not None:
            calls.append((rate, {provider: list(arms) for provider, arms in plan.items()}))
        if rate == interrupt_at:
            raise KeyboardInterrupt
        runs = []
        for provider, arms in plan.items():
            for arm in arms:
                verdict = verdicts.get((rate, arm))
                if isinstance(verdict, tuple) and verdict[0] == "p99":
                    runs.append(summary(provider, arm, p99=verdict[1]))
                else:
                    runs.append(summary(provider, arm, broken=verdict))
        return StepOutcome(runs=runs, target="fake")

    return run_step


def tracks(*arms: str, provider: str = "openai") -> list[ArmTrack]:
    return [ArmTrack(provider, arm) for arm in arms]


def by_arm(result) -> dict:
    """arm → (highest sustainable rate, the rule that stopped it or how its climb ended, the step that stopped it)."""
    return {track.arm: (track.rate, *((track.stopped_by["rule"], track.stopped_by["step_rate"]) if track.stopped_by
                                      else (track.ended_by, None))) for track in result.tracks}


RATES = [50.0, 100.0, 150.0, 200.0]


def test_step_rates_stop_at_max_rate():
    # 50 + 50·k ≤ 175 → 50, 100, 150
    assert step_rates(Sweep(start_rate=50, step=50, max_rate=175)) == [50, 100, 150]
    # 0.1 steps do not gain or lose a step to float drift: 0.1 … 0.3
    assert step_rates(Sweep(start_rate=0.1, step=0.1, max_rate=0.3)) == pytest.approx([0.1, 0.2, 0.3])
    # max_rate = start_rate → one step
    assert step_rates(Sweep(start_rate=10, step=5, max_rate=10)) == [10]


def test_each_arm_stops_at_its_first_step_off_the_schedule():
    # otel's worker passes 90 % CPU at 100, honeyhive sheds at 150, the baseline falls behind at 200
    # → highest sustainable 50, 100, 150; a tracer's CPU stops its climb like any arm's
    verdicts = {(100.0, "otel"): "cpu", (150.0, "honeyhive"): "shed", (200.0, "baseline"): "rate"}
    result = run_sweep(tracks("baseline", "otel", "honeyhive"), RATES, fake_runner(verdicts), None)
    assert by_arm(result) == {"baseline": (150.0, "rate", 200.0), "otel": (50.0, "cpu", 100.0),
                              "honeyhive": (100.0, "unsent", 150.0)}
    assert [step["rate"] for step in result.steps] == RATES
    assert [track.ended_by for track in result.tracks] == ["stopped"] * 3
    assert result.tracks[1].stopped_by["detail"] == "worker CPU 95.0% exceeds 90%"
    assert result.tracks[2].stopped_by["detail"] == "3 operations shed at the in-flight cap"
    assert result.tracks[0].stopped_by["detail"] == "achieved send rate 90.0/s is under 99% of the schedule's 100.0/s"


@pytest.mark.parametrize("broken, rule, detail", [
    ("unsent", "unsent", "5 of 1000 scheduled operations were never sent"),
    # several broken at once: the first of rate, unsent, cpu names the stop; the detail has each measured value
    (("cpu", "rate"), "rate", "achieved send rate 90.0/s is under 99% of the schedule's 100.0/s; "
                              "worker CPU 95.0% exceeds 90%"),
])
def test_stop_reasons_name_the_rule_and_its_measured_value(broken, rule, detail):
    result = run_sweep(tracks("otel"), RATES, fake_runner({(50.0, "otel"): broken}), None)
    assert result.tracks[0].stopped_by == {"rule": rule, "detail": detail, "step_rate": 50.0}


def test_dispatch_lag_stops_nothing():
    # otel's loop delay (5 ms p99, over the 2.5 ms limit) at every step, the baseline's too: both climb to max_rate
    verdicts = {(rate, arm): "lag" for rate in RATES for arm in ("baseline", "otel")}
    result = run_sweep(tracks("baseline", "otel"), RATES, fake_runner(verdicts), None)
    assert by_arm(result) == {"baseline": (200.0, "max_rate", None), "otel": (200.0, "max_rate", None)}
    assert all(track.stopped_by is None for track in result.tracks)


def test_the_cpu_limit_comes_from_the_validity_table():
    # the same 95 % CPU stops otel under the default 90 % limit, not under a profile's 96 %
    verdicts = {(100.0, "otel"): "cpu"}
    assert by_arm(run_sweep(tracks("otel"), RATES, fake_runner(verdicts), None))["otel"] == (50.0, "cpu", 100.0)
    lenient = run_sweep(tracks("otel"), RATES, fake_runner(verdicts), None, Validity(max_worker_cpu_percent=96))
    assert by_arm(lenient)["otel"] == (200.0, "max_rate", None)


def test_slo_breach_stops_an_arm():
    # a valid run whose p99 (300 ms) is over the 250 ms SLO stops otel at 100; at 250 ms exactly it passes
    verdicts = {(100.0, "otel"): ("p99", 300.0), (50.0, "baseline"): ("p99", 250.0)}
    result = run_sweep(tracks("baseline", "otel"), RATES[:2], fake_runner(verdicts), 250.0)
    assert by_arm(result)["otel"] == (50.0, "slo", 100.0)
    assert "p99 300.0 ms exceeds the SLO of 250 ms" in result.tracks[1].stopped_by["detail"]
    assert by_arm(result)["baseline"] == (100.0, "max_rate", None)


def test_max_rate_ends_a_sweep_no_arm_broke():
    # nothing breaks: every arm's highest valid rate is the last step, stopped by max_rate
    calls = []
    result = run_sweep(tracks("baseline", "otel"), RATES[:3], fake_runner({}, calls), None)
    assert [rate for rate, _ in calls] == RATES[:3]
    assert by_arm(result) == {"baseline": (150.0, "max_rate", None), "otel": (150.0, "max_rate", None)}


def test_baseline_keeps_running_while_others_climb():
    # the baseline breaks at 50 but runs on (for overheads) until otel breaks at 150; its rate stays none
    calls = []
    verdicts = {(50.0, "baseline"): "cpu", (150.0, "otel"): "cpu"}
    result = run_sweep(tracks("baseline", "otel"), RATES, fake_runner(verdicts, calls), None)
    assert calls == [(50.0, {"openai": ["baseline", "otel"]}), (100.0, {"openai": ["baseline", "otel"]}),
                     (150.0, {"openai": ["baseline", "otel"]})]
    assert by_arm(result) == {"baseline": (None, "cpu", 50.0), "otel": (100.0, "cpu", 150.0)}


def test_baseline_climbs_alone_once_the_others_stopped():
    # otel breaks at 50; the baseline goes on alone until it breaks at 150
    calls = []
    verdicts = {(50.0, "otel"): "cpu", (150.0, "baseline"): "rate"}
    run_sweep(tracks("baseline", "otel"), RATES, fake_runner(verdicts, calls), None)
    assert [plan["openai"] for _, plan in calls] == [["baseline", "otel"], ["baseline"], ["baseline"]]


def test_providers_climb_apart():
    # anthropic's otel breaks at 50, openai's does not: the next step runs otel for openai only
    both = tracks("baseline", "otel") + tracks("baseline", "otel", provider="anthropic")
    calls = []

    def run_step(rate, plan):
        calls.append(plan)
        return StepOutcome(runs=[summary(p, a, broken="cpu" if (p, a) == ("anthropic", "otel") else None)
                                 for p, arms in plan.items() for a in arms])

    run_sweep(both, RATES[:2], run_step, None)
    assert calls[1] == {"openai": ["baseline", "otel"], "anthropic": ["baseline"]}


def test_interrupt_mid_sweep_keeps_what_was_measured():
    # Ctrl-C during the 150 step: the 50 and 100 steps stand, every arm is marked interrupted
    result = run_sweep(tracks("baseline", "otel"), RATES, fake_runner({}, interrupt_at=150.0), None)
    assert result.interrupted and [step["rate"] for step in result.steps] == [50.0, 100.0]
    assert by_arm(result) == {"baseline": (100.0, "interrupted", None), "otel": (100.0, "interrupted", None)}


def test_step_cut_short_is_kept_but_not_judged():
    # the orchestrator reports an interrupted step: its runs are kept, the arms not stopped by its missing calls
    def run_step(rate, plan):
        cut = rate == 100.0
        runs = [summary("openai", "otel", broken="unsent" if cut else None)]
        return StepOutcome(runs=runs, interrupted=cut)

    result = run_sweep(tracks("otel"), RATES, run_step, None)
    assert [(step["rate"], step["complete"]) for step in result.steps] == [(50.0, True), (100.0, False)]
    assert by_arm(result) == {"otel": (50.0, "interrupted", None)}
    assert result.interrupted


def test_worker_error_ends_the_sweep():
    def run_step(rate, plan):
        errors = ["openai/otel worker 0 exited"] if rate == 100 else []
        return StepOutcome(runs=[summary("openai", "otel")], errors=errors)

    result = run_sweep(tracks("otel"), RATES, run_step, None)
    assert result.errors == ["openai/otel worker 0 exited"] and len(result.steps) == 2
    assert by_arm(result) == {"otel": (50.0, "error", None)}


def test_first_step_failing_leaves_no_sustainable_rate():
    result = run_sweep(tracks("baseline", "otel"), RATES, fake_runner({(50.0, "baseline"): "rate",
                                                                       (50.0, "otel"): "rate"}), None)
    assert len(result.steps) == 1
    assert by_arm(result) == {"baseline": (None, "rate", 50.0), "otel": (None, "rate", 50.0)}


def test_next_arms_without_a_baseline():
    # no baseline arm: only the climbing arms run; none left → an empty plan
    ts = tracks("otel", "honeyhive")
    ts[0].ended_by = "stopped"
    assert next_arms(ts) == {"openai": ["honeyhive"]}
    ts[1].ended_by = "stopped"
    assert next_arms(ts) == {}


def test_report_marks_stopped_steps_and_says_why():
    # otel: CPU over the limit at 50 → "none sustained"; baseline: over the SLO at 100 → highest sustainable 50/s
    verdicts = {(50.0, "otel"): ("cpu", "lag"), (100.0, "baseline"): ("p99", 900.0)}
    result = run_sweep(tracks("baseline", "otel"), RATES, fake_runner(verdicts), 500.0)
    document = sweep_document({"sweep": {"slo_latency_p99_ms": 500.0}}, result)
    console = Console(record=True, width=200)
    print_sweep(console, document)
    text = console.export_text()
    assert "✗ cpu" in text and "✗ slo" in text and "none sustained" in text
    assert "lag 5.00" in text and "lag 0.30" in text  # each step's dispatch-lag p99, shown whatever stopped it
    assert "openai/baseline: highest sustainable rate 50/s; stopped at 100/s by slo: latency p99 900.0 ms" in text
    assert "openai/otel: highest sustainable rate none sustained; stopped at 50/s by cpu: worker CPU 95.0%" in text
    assert document["kind"] == "sweep" and [s["rate"] for s in document["sweep"]["steps"]] == [50.0, 100.0]


SWEEP_PROFILE = {
    "provider": "both", "load": {"kind": "ramp", "rate": 5, "rate_end": 50},
    "tracing": {"arms": ["baseline", "baseline", "otel"]},
    "sweep": {"start_rate": 10, "step": 10, "max_rate": 30, "step_duration": "2s"},
}


def test_step_profile_replaces_rate_and_duration():
    # a ramp becomes constant at the step's rate
    profile = build_profile(SWEEP_PROFILE)
    step = step_profile(profile, 20.0)
    assert (step.load.kind, step.load.rate, step.duration, step.operations) == ("constant", 20.0, 2.0, None)
    assert step.sweep is None and step.modes == []
    poisson = build_profile({**SWEEP_PROFILE, "load": {"kind": "poisson", "rate": 5}})
    assert step_profile(poisson, 30.0).load.kind == "poisson"


def test_budget_modes_cover_every_step_and_arm():
    # the real-API budget: every step as a mode, with every arm
    modes = budget_modes(build_profile(SWEEP_PROFILE), cores=2)
    assert [mode.profile.load.rate for mode in modes] == [10, 20, 30]
    assert all([arm.label for arm in mode.arms] == ["baseline", "baseline-2", "otel"] * 2 for mode in modes)


@pytest.mark.e2e
def test_tiny_sweep_against_the_embedded_mock(tmp_path):
    profile = tmp_path / "sweep.toml"
    profile.write_text(
        'provider = "openai"\nwarmup_operations = 4\nmax_tokens = 16\n'
        '[load]\nkind = "constant"\nrate = 10\n'
        '[tracing]\narms = ["baseline", "otel"]\n'
        '[sweep]\nstart_rate = 10\nstep = 10\nmax_rate = 20\nstep_duration = "2s"\n'
    )
    out = tmp_path / "sweep.json"
    done = run_cli("run", str(profile), "--export-json", str(out), "--quiet", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(out.read_text())
    assert doc["kind"] == "sweep" and doc["interrupted"] is False and doc["errors"] == []
    assert [step["rate"] for step in doc["sweep"]["steps"]] == [10, 20]
    assert all("histograms" not in run for step in doc["sweep"]["steps"] for run in step["runs"])
    assert [(entry["provider"], entry["arm"]) for entry in doc["sweep"]["highest_sustainable_rate"]] == [
        ("openai", "baseline"), ("openai", "otel")]
    assert "highest sustainable rate" in done.stdout
    assert validate_document(doc) == []
    del doc["sweep"]["steps"][0]["runs"][0]["latency_ms"]
    # dispatch lag stops nothing, so it is no stop rule
    doc["sweep"]["highest_sustainable_rate"][0]["stopped_by"] = {"rule": "dispatch_lag", "detail": "", "step_rate": 1}
    errors = validate_document(doc)
    assert errors[-1] == "sweep/steps/0/runs/0: 'latency_ms' is a required property"
    assert errors[:-1] and all(e.startswith("sweep/highest_sustainable_rate/0/stopped_by") for e in errors[:-1])


@pytest.mark.e2e
def test_sweep_against_an_unreachable_target_exits_4(tmp_path):
    profile = tmp_path / "sweep.toml"
    profile.write_text('provider = "openai"\n[sweep]\nstart_rate = 10\nstep = 10\nmax_rate = 20\nstep_duration = "2s"\n')
    out = tmp_path / "sweep.json"
    done = run_cli("run", str(profile), "--base-url", "http://127.0.0.1:9/v1", "--export-json", str(out), "--quiet")
    assert done.returncode == 4, done.stdout + done.stderr
    doc = json.loads(out.read_text())
    assert doc["sweep"]["steps"] == [] and "unreachable" in doc["errors"][0]
    assert doc["sweep"]["highest_sustainable_rate"][0]["ended_by"] == "error"
