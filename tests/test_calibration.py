"""The calibration arm's known answer: held time per measured call, where the hook runs, and the
plumbing from profile and flags to the run summary. Unit tests run the arm on a fake provider
and a fake clock; the one real-clock check is held ≥ nominal. The e2e tests (marked) run it
through the CLI against the embedded mock."""

import asyncio
import json

import pytest

from loadgen.histograms import Recorder
from loadgen.known_answer import FIGURES, HeldTime, held_figures, merge_held
from loadgen.profile_files import ProfileError, load_profile
from loadgen.results import CallRecord
from loadgen.arms import make_arm
from loadgen.settings import CalibrationSettings
from loadgen.tracers import calibration as calibration_module
from loadgen.tracers.calibration import CalibrationArm
from tests.conftest import run_cli

SLACK_NS = 50_000  # the fake clock's sleep overshoots by this, as a kernel timer does


class FakeClock:
    """perf_counter_ns and sleep for the arm: each read advances 1 µs, a sleep its time plus
    SLACK_NS; the events list records each sleep beside the provider's events."""

    def __init__(self, events: list) -> None:
        self.now = 1_000_000_000
        self.events = events

    def perf_counter_ns(self) -> int:
        self.now += 1_000
        return self.now

    def sleep(self, seconds: float) -> None:
        self.events.append("hold")
        self.now += round(seconds * 1e9) + SLACK_NS


class FakeProvider:
    """Records when it is called and when it returns; fills nothing."""

    name = "fake"

    def __init__(self, events: list) -> None:
        self.events = events

    async def call(self, prompt, rec: CallRecord) -> None:
        self.events.append("call")
        await asyncio.sleep(0)
        self.events.append("return")


def run_calls(arm: CalibrationArm, provider, op_ids) -> None:
    held = arm.wrap(provider)

    async def calls() -> None:
        for op_id in op_ids:
            await held.call(None, CallRecord(op_id, 0, None))

    asyncio.run(calls())


@pytest.fixture
def events(monkeypatch) -> list:
    events: list = []
    monkeypatch.setattr(calibration_module, "time", FakeClock(events))
    return events


@pytest.mark.parametrize("at, order", [
    ("before", ["hold", "call", "return"] * 2),  # the hook's time is client time before the wire
    ("after", ["call", "return", "hold"] * 2),  # … or after the response
])
def test_the_hook_runs_where_it_is_told(events, at, order):
    arm = CalibrationArm(CalibrationSettings(hold_us=200, kind="sleep", at=at))
    run_calls(arm, FakeProvider(events), [0, 1])
    assert events == order


def test_held_time_is_measured_around_the_hold_for_measured_calls_only(events):
    arm = CalibrationArm(CalibrationSettings(hold_us=200, kind="sleep"))
    # The priming call (−1) and warm-up calls (−2, −3) are held too, but not counted.
    run_calls(arm, FakeProvider(events), [-1, -2, -3, 0, 1, 2])
    assert events.count("hold") == 6
    known = held_figures(arm.known_answer())
    # Held = the sleep (200 µs) + its overshoot (50 µs) + one clock read (1 µs): measured, not nominal.
    assert known == {"kind": "sleep", "at": "before", "nominal_us": 200, "calls": 3, "held_mean_ms": 0.251,
                     "held_p50_ms": 0.251, "held_p99_ms": 0.251, "held_max_ms": 0.251}


def test_spin_busy_waits_without_sleeping(events):
    arm = CalibrationArm(CalibrationSettings(hold_us=200, kind="spin"))
    run_calls(arm, FakeProvider(events), [0])
    assert "hold" not in events
    # The fake clock moves 1 µs a read: the spin stops at the first read at or past 200 µs.
    assert arm.known_answer()["held_mean_ms"] == 0.201


def test_no_hold_is_no_held_time(events):
    arm = CalibrationArm(CalibrationSettings(hold_us=0, mib=1))
    run_calls(arm, FakeProvider(events), [0, 1])
    assert events == ["call", "return"] * 2
    known = arm.known_answer()
    assert known["calls"] == 0 and known["held_mean_ms"] is None and known["held_p99_ms"] is None


@pytest.mark.parametrize("kind", ["sleep", "spin"])
def test_on_the_real_clock_the_loop_is_held_at_least_the_nominal_time(kind):
    arm = CalibrationArm(CalibrationSettings(hold_us=200, kind=kind))
    run_calls(arm, FakeProvider([]), range(5))
    known = arm.known_answer()
    assert known["calls"] == 5 and known["held_total_ns"] >= 5 * 200_000
    assert 0.2 <= known["held_mean_ms"] <= known["held_max_ms"]


def held(values_ns: list[int], kind: str = "sleep") -> dict:
    recorder = HeldTime()
    for value in values_ns:
        recorder.record_ns(value)
    return recorder.entry(kind, "before", 2000)


def test_worker_results_merge_by_adding_sums_counts_and_histograms():
    # Three workers (shards or replicas) and one with no entry: 2.0, 2.1, 2.2, 2.3 and 2.9 ms.
    merged = merge_held([held([2_000_000, 2_100_000]), None, held([2_200_000]), held([2_300_000, 2_900_000])])
    assert merged["calls"] == 5 and merged["held_total_ns"] == 11_500_000
    assert merged["held_mean_ms"] == 2.3 and merged["held_max_ms"] == 2.9
    assert merged["held_p50_ms"] == pytest.approx(2.2, abs=0.002)  # HDR: 3 significant digits
    assert Recorder.decode(merged["held_histogram"]).count == 5
    assert merge_held([None, None]) is None and held_figures(None) is None
    assert list(held_figures(merged)) == list(FIGURES)


def test_merge_and_summarize_carry_the_known_answer():
    from tests.test_metrics import result, worker

    from loadgen.metrics import summarize
    from loadgen.results import merge

    shard = dict(rss_samples=[], cpu_seconds_total=1.0, last_done_ns=1, arm="calibration")
    merged = merge([worker(shard=0, calibration=held([2_000_000]), **shard),
                    worker(shard=1, calibration=held([3_000_000]), **shard)])
    assert summarize(merged)["calibration"]["held_mean_ms"] == 2.5
    assert summarize(merged)["calibration"]["calls"] == 2
    assert summarize(result())["calibration"] is None  # other arms: None


def test_make_arm_passes_the_settings_through():
    settings = CalibrationSettings(hold_us=300, kind="sleep", at="after")
    arm = make_arm("calibration", None, "openai", "m", calibration=settings)
    assert arm.known_answer()["kind"] == "sleep" and arm.before is False and arm.hold_ns == 300_000


def test_profile_keys_default_and_validate(tmp_path):
    tracing = load_profile(None).tracing
    assert (tracing.calibrate_kind, tracing.calibrate_at) == ("spin", "before")
    path = tmp_path / "p.toml"
    path.write_text('[tracing]\ncalibrate_kind = "warm"\n')
    with pytest.raises(ProfileError, match=r"p.toml:2: tracing.calibrate_kind: Input should be 'spin' or 'sleep'"):
        load_profile(path)
    with pytest.raises(ProfileError, match=r"tracing.calibrate_at: Input should be 'before' or 'after'"):
        load_profile(None, sets=["tracing.calibrate_at=during"])


def test_flags_reach_the_profile(monkeypatch):
    import signal

    from click.testing import CliRunner

    import loadgen.run_command
    from loadgen.cli import main

    seen = {}

    def run_command(profile, **_):
        seen["tracing"] = profile.tracing
        return 0

    monkeypatch.setattr(loadgen.run_command, "run_command", run_command)
    monkeypatch.setattr(signal, "signal", lambda *_: None)  # the command's handlers stay out of pytest
    done = CliRunner().invoke(main, ["run", "--arms", "baseline,calibration", "--calibrate-us", "300",
                                     "--calibrate-kind", "sleep", "--calibrate-at", "after"])
    assert done.exit_code == 0, done.output
    tracing = seen["tracing"]
    assert (tracing.calibrate_us, tracing.calibrate_kind, tracing.calibrate_at) == (300, "sleep", "after")
    bad = CliRunner().invoke(main, ["run", "--calibrate-kind", "warm"])
    assert bad.exit_code == 2 and "--calibrate-kind" in bad.output


@pytest.mark.e2e
@pytest.mark.parametrize("at, part", [("before", "before_wire_ms"), ("after", "after_response_ms")])
def test_a_2ms_sleep_is_recovered_where_the_hook_ran(tmp_path, at, part):
    out = tmp_path / "r.json"
    # Two replicas per arm (not 4): the means are over every call, whichever process made it.
    done = run_cli("run", "--provider", "openai", "--arms", "baseline,calibration", "--rate", "20",
                   "--duration", "4s", "--calibrate-kind", "sleep", "--calibrate-us", "2000", "--calibrate-at", at,
                   "--replicas", "2", "--quiet", "--export-json", str(out))
    assert done.returncode in (0, 3), done.stdout + done.stderr
    runs = {run["arm"]: run for run in json.loads(out.read_text())["runs"]}
    known = runs["calibration"]["calibration"]
    assert runs["baseline"]["calibration"] is None
    assert known["kind"] == "sleep" and known["at"] == at and known["calls"] == runs["calibration"]["operations_sent"]
    assert 2.0 <= known["held_mean_ms"] <= 2.5
    # The held time lands in the part of the timeline where the hook ran, not the other.
    other = "after_response_ms" if part == "before_wire_ms" else "before_wire_ms"
    assert runs["calibration"][part]["mean"] - runs["baseline"][part]["mean"] >= 1.8
    assert abs(runs["calibration"][other]["mean"] - runs["baseline"][other]["mean"]) < 0.5
    assert f"openai/calibration: held the loop {known['held_mean_ms']:.3f} ms per call (sleep, {at} the call" in done.stdout
