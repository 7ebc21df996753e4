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
from typing import Callable

from rich.console import Console
from rich.table import Table

from loadgen.errors import ExitCode, UserError
from loadgen.metrics import check_validity, summarize_all
from loadgen.orchestrator import Orchestrator
from loadgen.limits import Validity
from loadgen.profile import Profile, Sweep
from loadgen.redact import redact_data
from loadgen.report import document_header, format_ms
from loadgen.session import LiveProgress, confirm_real_run, export

Plan = dict[str, list[str]]  # provider → arm labels that run a step
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


StepRunner = Callable[[float, Plan], StepOutcome]


def step_rates(sweep: Sweep) -> list[float]:
    """start_rate, start_rate + step, … up to max_rate (by multiplication, so no float drift adds a step)."""
    count = int((sweep.max_rate - sweep.start_rate) / sweep.step + 1e-9) + 1
    return [sweep.start_rate + index * sweep.step for index in range(count)]


def initial_tracks(profile: Profile) -> list[ArmTrack]:
    """Every provider/arm pair the profile runs (anthropic-native traces Anthropic calls only)."""
    return [ArmTrack(provider, label) for provider in profile.providers
            for arm, label in zip(profile.tracing.arms, profile.tracing.arm_labels)
            if arm != "anthropic-native" or provider == "anthropic"]


def next_plan(tracks: list[ArmTrack]) -> Plan:
    """Arms that run the next step: those still climbing, and the baseline while any other arm climbs."""
    plan: Plan = {}
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
        plan = next_plan(tracks)
        if not plan:
            break
        try:
            outcome = run_step(rate, plan)
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


def step_profile(profile: Profile, rate: float, provider: str, labels: list[str]) -> Profile:
    """The profile of one step: the arrival process at `rate` for step_duration, with these arms only."""
    arm_of = dict(zip(profile.tracing.arm_labels, profile.tracing.arms))
    data = profile.model_dump(mode="json")
    data.update(load={"kind": "poisson" if profile.load.kind == "poisson" else "constant", "rate": rate},
                modes=[], duration=profile.sweep.step_duration, operations=None, sweep=None, provider=provider)
    data["tracing"]["arms"] = [arm_of[label] for label in labels]
    return Profile.model_validate(data)


def budget_profile(profile: Profile) -> Profile:
    """Every step with every arm as modes of one profile: an upper bound of what the sweep sends."""
    first, *rest = step_rates(profile.sweep)
    budget = step_profile(profile, first, profile.provider, profile.tracing.arm_labels)
    return budget.model_copy(update={"modes": [budget.load.model_copy(update={"rate": rate}) for rate in rest]})


def orchestrated_step(profile: Profile, progress: LiveProgress) -> StepRunner:
    """Run a step through the orchestrator: providers with the same arms left run together."""

    def run_step(rate: float, plan: Plan) -> StepOutcome:
        progress.prefix = f"{rate:g}/s · "
        groups: dict[tuple[str, ...], list[str]] = {}
        for provider, labels in plan.items():
            groups.setdefault(tuple(labels), []).append(provider)
        step = StepOutcome(runs=[])
        for labels, providers in groups.items():
            if step.interrupted or step.errors:
                break
            provider = providers[0] if len(providers) == 1 else "both"
            try:
                done = Orchestrator(step_profile(profile, rate, provider, list(labels)),
                                    on_progress=progress.update).run()
            except UserError as exc:
                step.failure = exc
                break
            runs = summarize_all(done.results, profile.validity)
            step.runs += [{key: value for key, value in run.items() if key != "histograms"} for run in runs]
            step.errors += done.errors
            step.interrupted = done.interrupted
            step.target = done.target
        unreachable = [run["provider"] for run in step.runs if run["operations_completed"]
                       and not run["operations_ok"] and set(run["errors"]) <= {"connection", "timeout"}]
        if unreachable and not step.failure:
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


def _limits(document: dict) -> tuple[Validity, float | None]:
    """The limits the sweep judged by: the profile's [validity] and its SLO."""
    profile = document["profile"]
    return Validity.model_validate(profile.get("validity") or {}), profile["sweep"]["slo_latency_p99_ms"]


def _cell(run: dict | None, validity: Validity, slo_ms: float | None, complete: bool) -> str:
    """p50 / p99, the dispatch-lag p99, and what stopped the arm; a step cut short is not judged (its missing
    calls are not the rate's)."""
    if run is None:
        return "—"
    latency = run["latency_ms"]
    reason = judge(run, validity, slo_ms) if complete else None
    mark = "" if reason is None else f"\n[{'yellow' if reason['rule'] == 'slo' else 'red'}]✗ {reason['rule']}[/]"
    lag = format_ms(run["dispatch_lag_ms"]["p99"])
    return f"{format_ms(latency['p50'])} / {format_ms(latency['p99'])}\nlag {lag}{mark}"


def _rate(rate: float | None) -> str:
    return "none sustained" if rate is None else f"{rate:g}/s"


def sweep_tables(document: dict) -> list[Table]:
    """Per provider: each arm's latency and dispatch lag at each step, what stopped it, its highest sustainable rate."""
    validity, slo_ms = _limits(document)
    steps, tracks = document["sweep"]["steps"], document["sweep"]["highest_sustainable_rate"]
    runs_at = [{(run["provider"], run["arm"]): run for run in step["runs"]} for step in steps]
    tables = []
    for provider in dict.fromkeys(track["provider"] for track in tracks):
        table = Table(title=f"{provider} rate sweep — latency p50 / p99 from intended start, dispatch-lag p99 (ms)")
        table.add_column("Arm")
        for step in steps:
            table.add_column(f"{step['rate']:g}/s" + ("" if step["complete"] else " (cut short)"), justify="right")
        table.add_column("highest sustainable rate", justify="right")
        for track in (t for t in tracks if t["provider"] == provider):
            cells = [_cell(runs.get((provider, track["arm"])), validity, slo_ms, step["complete"])
                     for step, runs in zip(steps, runs_at)]
            table.add_row(track["arm"], *cells, _rate(track["rate"]))
        tables.append(table)
    return tables


def step_line(step: dict, validity: Validity, slo_ms: float | None) -> str:
    """One stderr line per finished step: each arm's verdict, latency p99 and dispatch-lag p99."""
    parts = []
    for run in step["runs"]:
        reason = judge(run, validity, slo_ms) if step["complete"] else None
        verdict = "ok" if reason is None else f"stop ({reason['rule']})"
        parts.append(f"{run['provider']}/{run['arm']}{f' {verdict}' if step['complete'] else ''} "
                     f"p99 {format_ms(run['latency_ms']['p99'])} ms, "
                     f"lag p99 {format_ms(run['dispatch_lag_ms']['p99'])} ms")
    return f"sweep {step['rate']:g}/s{'' if step['complete'] else ' (cut short)'}: " + " · ".join(parts)


_ENDED = {
    "max_rate": "kept the schedule at every step, up to max_rate",
    "interrupted": "the sweep was interrupted before this arm stopped",
    "error": "the sweep ended on an error before this arm stopped",
}


def print_sweep(console: Console, document: dict) -> None:
    for table in sweep_tables(document):
        console.print(table)
    for track in document["sweep"]["highest_sustainable_rate"]:
        stop = track["stopped_by"]
        how = (f"stopped at {stop['step_rate']:g}/s by {stop['rule']}: {stop['detail']}" if stop
               else _ENDED[track["ended_by"]])
        console.print(f"  {track['provider']}/{track['arm']}: highest sustainable rate {_rate(track['rate'])}; {how}",
                      highlight=False)
    for error in document["errors"]:
        console.print(f"[red]error:[/] {error}")
    if document["interrupted"]:
        console.print("[yellow]interrupted: the sweep covers the steps finished before the stop[/]")


def run_sweep_session(profile: Profile, *, export_json: str | None, out: Console, err: Console, live: bool = True,
                      confirmed: bool = False) -> int:
    """`loadgen run` for a profile with [sweep]: finding where arms stop is the point; only a cut-short sweep fails."""
    if profile.modes:
        raise UserError("sweep: a sweep steps `load` alone; remove `modes` from the profile", ExitCode.USAGE)
    rates = step_rates(profile.sweep)
    slo_ms = profile.sweep.slo_latency_p99_ms
    err.print(f"loadgen: {profile.name}: sweep {', '.join(profile.providers)} · {profile.load.kind} "
              f"{rates[0]:g}→{rates[-1]:g}/s in {len(rates)} steps of {profile.sweep.step_duration:g} s"
              f"{f' · SLO p99 {slo_ms:g} ms' if slo_ms else ''} · target {profile.target.kind}", highlight=False)
    if profile.target.kind == "real":
        err.print("sweep: the plan below is an upper bound, every arm through every step", highlight=False)
        confirm_real_run(budget_profile(profile), err, confirmed)
    with LiveProgress(err, enabled=live) as progress:
        result = run_sweep(initial_tracks(profile), rates, orchestrated_step(profile, progress), slo_ms,
                           profile.validity,
                           on_step=lambda step: err.print(step_line(step, profile.validity, slo_ms), highlight=False))
    document = sweep_document(profile.model_dump(mode="json"), result)
    print_sweep(out, document)
    export(document, export_json, err)
    if result.interrupted:
        return ExitCode.INTERRUPTED
    if result.errors:
        return ExitCode.FAILURE
    if result.failure:
        return result.failure.code
    return ExitCode.OK
