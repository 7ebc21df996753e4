"""The rate sweep: each arm's highest sustainable open-loop rate — the throughput cost of tracing.

Steps climb from `sweep.start_rate` by `sweep.step` up to `sweep.max_rate`. At each step
the arms still climbing run together (interleaved rounds, as in any run) at that rate for
`sweep.step_duration`. An arm stops at its first step where its run did not keep the
schedule — `rate` (achieved under [validity] min_rate_ratio of the plan), `unsent`
(operations unsent or shed), `cpu` (its worker over max_worker_cpu_percent: for every arm,
since a tracer whose worker is saturated cannot sustain the rate) — or broke the latency
SLO (`slo`); its highest sustainable rate is the step before. Dispatch lag (a tracer's
loop delay) is shown at every step and stops nothing. The baseline keeps running while
any other arm climbs, because their overheads are paired with it, but its own highest
sustainable rate is fixed at its first stop like any arm's.

A step keeps the profile's arrival process (constant or poisson) at the step's rate; a
ramp becomes constant, since the sweep is itself the ramp. The climb (`run_sweep`) is
separate from running a step (`orchestrated_step`), so it is tested with a fake runner.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Protocol

from loadgen.document import document_header
from loadgen.errors import ExitCode, UserError
from loadgen.metrics import check_validity, summarize_all
from loadgen.orchestrator import Orchestrator
from loadgen.processes import Engine
from loadgen.plan import ModePlan, arm_plans, plan_mode
from loadgen.limits import Validity
from loadgen.profile import ConstantLoad, PoissonLoad, Profile
from loadgen.profile_runs import Sweep
from loadgen.redact import redact_data

StepArms = dict[str, list[str]]  # provider → the labels of the arms that run a step
# The validity rules that stop a climb, and the name each stop goes by; the SLO is `slo`.
STOP_RULES = {"send_rate": "rate", "unsent_operations": "unsent", "worker_cpu": "cpu"}


@dataclass
class ArmTrack:
    """One provider/arm's climb: the highest rate it sustained, and how its climb ended (None: climbing).

    `ended_by` is "stopped" (a rule stopped it: `stopped_by` says which, with the measured
    value), "max_rate" (it kept the schedule at every step), "interrupted" or "error".
    """

    provider: str
    arm: str
    rate: float | None = None
    stopped_by: dict | None = None
    ended_by: str | None = None


@dataclass
class StepOutcome:
    """What one step measured: summaries without histograms, and whatever cut it short."""

    runs: list[dict]
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False
    failure: UserError | None = None  # e.g. the target unreachable
    target: str = ""


@dataclass
class SweepResult:
    tracks: list[ArmTrack]
    steps: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False
    failure: UserError | None = None
    target: str = ""


StepRunner = Callable[[float, StepArms], StepOutcome]


class StepProgress(Protocol):
    """Where a step's progress goes (the console's LiveProgress): the step in a prefix, then each message."""

    prefix: str

    def update(self, message: dict) -> None: ...


def step_rates(sweep: Sweep) -> list[float]:
    """start_rate, start_rate + step, … up to max_rate (by multiplication, so no float drift adds a step)."""
    count = int((sweep.max_rate - sweep.start_rate) / sweep.step + 1e-9) + 1
    return [sweep.start_rate + index * sweep.step for index in range(count)]


def initial_tracks(profile: Profile) -> list[ArmTrack]:
    """Every row the profile runs (the run plan's)."""
    return [ArmTrack(arm.provider, arm.label) for arm in arm_plans(profile)]


def next_arms(tracks: list[ArmTrack]) -> StepArms:
    """Arms that run the next step: those still climbing, and the baseline while any other arm climbs."""
    plan: StepArms = {}
    for provider in dict.fromkeys(track.provider for track in tracks):
        mine = [track for track in tracks if track.provider == provider]
        others_climb = any(track.ended_by is None for track in mine if track.arm != "baseline")
        arms = [track.arm for track in mine if track.ended_by is None or (track.arm == "baseline" and others_climb)]
        if arms:
            plan[provider] = arms
    return plan


def judge(run: dict, validity: Validity, slo_ms: float | None) -> dict | None:
    """Why this step ends the arm's climb — rate, unsent, cpu or slo, the first broken, with every broken
    rule's measured value — or None. Dispatch lag stops nothing, so a run invalid by lag alone climbs on."""
    broken = check_validity(run, validity, tuple(STOP_RULES))
    if broken:
        return {"rule": STOP_RULES[broken[0].rule], "detail": "; ".join(v.detail for v in broken)}
    p99 = run["latency_ms"]["p99"]
    if slo_ms is not None and p99 is not None and p99 > slo_ms:
        return {"rule": "slo", "detail": f"latency p99 {p99:.1f} ms exceeds the SLO of {slo_ms:g} ms"}
    return None


def record_step(tracks: list[ArmTrack], rate: float, runs: list[dict], validity: Validity,
                slo_ms: float | None) -> None:
    """Raise each climbing arm's highest sustainable rate, or stop it at this step."""
    by_key = {(track.provider, track.arm): track for track in tracks}
    for run in runs:
        track = by_key[(run["provider"], run["arm"])]
        if track.ended_by is not None:
            continue  # a baseline past its own stop, running for the others' overheads
        reason = judge(run, validity, slo_ms)
        if reason is None:
            track.rate = rate
        else:
            track.stopped_by, track.ended_by = {**reason, "step_rate": rate}, "stopped"


def run_sweep(tracks: list[ArmTrack], rates: list[float], run_step: StepRunner, slo_ms: float | None,
              validity: Validity = Validity(), on_step: Callable[[dict], None] = lambda step: None) -> SweepResult:
    """Climb until every arm has stopped or the rates run out; an interrupt or failure keeps what was measured.

    A step cut short (interrupted, a worker lost, the target gone) is kept but not judged:
    its runs are missing operations that have nothing to do with the rate.
    """
    result = SweepResult(tracks)
    for rate in rates:
        step_arms = next_arms(tracks)
        if not step_arms:
            break
        try:
            outcome = run_step(rate, step_arms)
        except KeyboardInterrupt:
            result.interrupted = True
            break
        complete = not (outcome.interrupted or outcome.errors or outcome.failure)
        result.errors += outcome.errors
        result.interrupted, result.failure = outcome.interrupted, outcome.failure
        result.target = outcome.target or result.target
        if outcome.runs:
            step = {"rate": rate, "complete": complete, "runs": outcome.runs}
            result.steps.append(step)
            on_step(step)
        if not complete:
            break
        record_step(tracks, rate, outcome.runs, validity, slo_ms)
    for track in tracks:
        if track.ended_by is None:
            track.ended_by = "interrupted" if result.interrupted else "error" if result.errors or result.failure \
                else "max_rate"
    return result


def step_profile(profile: Profile, rate: float) -> Profile:
    """The profile of one step: the arrival process at `rate` for step_duration (a ramp becomes constant)."""
    kind = "poisson" if profile.load.kind == "poisson" else "constant"
    load = PoissonLoad(kind=kind, rate=rate) if kind == "poisson" else ConstantLoad(rate=rate)
    return profile.model_copy(update={"load": load, "modes": [], "duration": profile.sweep.step_duration,
                                      "operations": None, "sweep": None})


def budget_modes(profile: Profile, cores: int) -> list[ModePlan]:
    """Every step with every arm: an upper bound of what the sweep sends."""
    return [plan_mode(step_profile(profile, rate), cores) for rate in step_rates(profile.sweep)]


def orchestrated_step(profile: Profile, progress: StepProgress, cores: int,
                      engine: Engine | None = None) -> StepRunner:
    """Run a step through the orchestrator: the step's arms of every provider, in one plan, on `engine`
    (default: local processes)."""
    rows = {(arm.provider, arm.label): arm for arm in arm_plans(profile)}

    def run_step(rate: float, step_arms: StepArms) -> StepOutcome:
        progress.prefix = f"{rate:g}/s · "
        arms = [rows[(provider, label)] for provider, labels in step_arms.items() for label in labels]
        step = StepOutcome(runs=[])
        try:
            done = Orchestrator(plan_mode(step_profile(profile, rate), cores, arms), on_progress=progress.update,
                                engine=engine).run()
        except UserError as exc:
            step.failure = exc
            return step
        runs = summarize_all(done.results, profile.validity)
        step.runs += [{key: value for key, value in run.items() if key != "histograms"} for run in runs]
        step.errors += done.errors
        step.interrupted = done.interrupted
        step.target = done.target
        unreachable = [run["provider"] for run in step.runs if run["operations_completed"]
                       and not run["operations_ok"] and set(run["errors"]) <= {"connection", "timeout"}]
        if unreachable:
            step.failure = UserError(f"target unreachable: every call of {', '.join(dict.fromkeys(unreachable))} "
                                     f"failed to connect or timed out ({step.target})", ExitCode.UNREACHABLE)
        return step

    return run_step


def sweep_document(profile_data: dict, result: SweepResult) -> dict:
    document = {
        **document_header(),
        "kind": "sweep",
        "target": result.target,
        "profile": profile_data,
        "sweep": {"steps": result.steps, "highest_sustainable_rate": [asdict(track) for track in result.tracks]},
        "interrupted": result.interrupted,
        "errors": result.errors + ([str(result.failure)] if result.failure else []),
    }
    return redact_data(document)
