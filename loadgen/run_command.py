"""One `loadgen run`: orchestrate with a live progress display, then report and export.

A profile with [sweep] climbs step by step instead (the climb is `loadgen.sweep`); it is
shown, reported and exported the same way. `loadgen faults` runs the fault matrix
(`loadgen.faults`) the same way too.

Results are written whatever happens — an invalid run, an interrupted run, a worker
that failed — so nothing measured is lost: the JSON first, then the report outputs
(`[outputs]` html, plots, csv, or their flags).
"""

from __future__ import annotations

import time

from rich.console import Console

from loadgen import envs, soak
from loadgen.budget import confirm_real_run
from loadgen.console import (LiveProgress, ScenarioProgress, describe_soak_window, engine_line, export,
                             fault_scenario_line, print_engine, print_fault_matrix, print_soak_summary, print_summary,
                             print_sweep, sweep_step_line)
from loadgen.document import build_document
from loadgen.errors import ExitCode, UserError
from loadgen.faults import faults_document, orchestrated_scenario, run_matrix
from loadgen.metrics import summarize_all, with_thread_bases
from loadgen.orchestrator import Orchestrator, RunOutcome, collector_figures, open_engine, worker_cores
from loadgen.plan import ModePlan, arm_plans, plan_run, thread_bases
from loadgen.profile import Profile
from loadgen.report.outputs import write_outputs
from loadgen.sweep import budget_modes, initial_tracks, orchestrated_step, run_sweep, step_rates, sweep_document


def run_command(profile: Profile, *, export_json: str | None, out: Console, err: Console, live: bool = True,
                confirmed: bool = False, north_star_only: bool = False) -> int:
    if profile.faults is not None:
        raise UserError(f"{profile.name}: a profile with [faults] is a fault matrix; run it with `loadgen faults`",
                        ExitCode.USAGE)
    if profile.sweep is not None:
        return sweep_command(profile, export_json=export_json, out=out, err=err, live=live, confirmed=confirmed)
    with open_engine(profile) as engine:
        modes, outcome, log = _run_modes(profile, engine, err=err, live=live, confirmed=confirmed)
        described = engine.describe()
    return _report(profile, modes, outcome, log, described, export_json=export_json, out=out, err=err,
                   north_star_only=north_star_only)


def _run_modes(profile: Profile, engine, *, err: Console, live: bool, confirmed: bool
               ) -> tuple[list[ModePlan], RunOutcome, soak.SoakLog | None]:
    modes = plan_run(profile, engine.cores())
    err.print(f"loadgen: {profile.name}: {', '.join(profile.providers)} · "
              f"{', '.join(mode.mode for mode in modes)}"
              f"{' · stream' if profile.stream else ''} · target {profile.target.kind}", highlight=False)
    if engine.describe() is not None:
        err.print(engine_line(engine.describe()), highlight=False)
    for mode, basis in dict.fromkeys((mode, basis) for (_, mode), basis in thread_bases(modes).items()):
        err.print(f"loadgen: {mode}: {basis}", highlight=False)
    if profile.target.kind == "real":
        confirm_real_run(modes, profile, err, confirmed)
    envs.ensure_all((arm.env for mode in modes for arm in mode.arms), say=lambda line: err.print(line, highlight=False))
    outcome = RunOutcome()
    log = _soak_log(profile, err)
    with LiveProgress(err, enabled=live) as progress:
        for mode in modes:
            if outcome.interrupted:
                break
            progress.prefix = f"{mode.mode} · " if len(modes) > 1 else ""
            done = Orchestrator(mode, on_progress=progress.update, on_window=_window_printer(log, err),
                                engine=engine).run()
            outcome.results += done.results
            outcome.errors += done.errors
            outcome.interrupted = done.interrupted
            outcome.target = done.target
    return modes, outcome, log


def _report(profile: Profile, modes: list[ModePlan], outcome: RunOutcome, log: soak.SoakLog | None,
            engine: dict | None, *, export_json: str | None, out: Console, err: Console, north_star_only: bool) -> int:
    runs = with_thread_bases(summarize_all(outcome.results, profile.validity), thread_bases(modes))
    document = build_document(
        profile.model_dump(mode="json"), runs, target=outcome.target,
        interrupted=outcome.interrupted, errors=outcome.errors,
    )
    if log is not None:
        document["soak"] = soak.finish(log, outcome.results, profile.soak)
    if engine is not None:
        document["engine"] = engine
    print_summary(out, document, north_star_only=north_star_only)
    if engine is not None:
        print_engine(out, engine)
    if log is not None:
        print_soak_summary(out, document["soak"])
    _export(document, profile, export_json, err)
    if outcome.interrupted:
        return ExitCode.INTERRUPTED
    if outcome.errors:
        return ExitCode.FAILURE
    unreachable = [run for run in runs if run["operations_completed"] and not run["operations_ok"]
                   and set(run["errors"]) <= {"connection", "timeout"}]
    if unreachable:
        err.print(f"[bold red]loadgen:[/] target unreachable: every call of "
                  f"{', '.join(r['provider'] for r in unreachable)} failed to connect or timed out ({outcome.target})")
        return ExitCode.UNREACHABLE
    if not document["valid"]:
        return ExitCode.INVALID_RUN
    return ExitCode.OK


def _export(document: dict, profile: Profile, export_json: str | None, err: Console) -> None:
    """The results JSON, then the page, plots and CSV files the profile or the command line asked for."""
    export(document, export_json, err)
    outputs = profile.outputs
    write_outputs(document, html=outputs.html, plots=outputs.plots, csv=outputs.csv, beside=export_json,
                  say=lambda line: err.print(line, highlight=False, soft_wrap=True))


def _soak_log(profile: Profile, err: Console) -> soak.SoakLog | None:
    if profile.soak is None:
        return None
    path = profile.soak.jsonl or f"soak-{time.strftime('%Y%m%dT%H%M%S')}.jsonl"
    err.print(f"soak: {profile.soak.window:g} s windows, each appended to {path} as it closes", highlight=False)
    return soak.SoakLog(path, collector_figures)


def _window_printer(log: soak.SoakLog | None, err: Console):
    if log is None:
        return None

    def on_window(provider: str, arm: str, shards: int, figures: dict, tracing: dict | None) -> None:
        line = log.add(provider, arm, shards, figures, tracing)
        if line is not None:
            err.print(describe_soak_window(line), highlight=False, soft_wrap=True)

    return on_window


def sweep_command(profile: Profile, *, export_json: str | None, out: Console, err: Console, live: bool = True,
                      confirmed: bool = False) -> int:
    """`loadgen run` for a profile with [sweep]: finding where arms stop is the point; only a cut-short sweep fails."""
    if profile.modes:
        raise UserError("sweep: a sweep steps `load` alone; remove `modes` from the profile", ExitCode.USAGE)
    if len(profile.run_clients) > 1:
        raise UserError("sweep: a sweep steps one client; set `client` instead of `clients`", ExitCode.USAGE)
    rates = step_rates(profile.sweep)
    slo_ms = profile.sweep.slo_latency_p99_ms
    err.print(f"loadgen: {profile.name}: sweep {', '.join(profile.providers)} · {profile.load.kind} "
              f"{rates[0]:g}→{rates[-1]:g}/s in {len(rates)} steps of {profile.sweep.step_duration:g} s"
              f"{f' · SLO p99 {slo_ms:g} ms' if slo_ms else ''} · target {profile.target.kind}", highlight=False)
    if profile.target.kind == "real":
        err.print("sweep: the plan below is an upper bound, every arm through every step", highlight=False)
        confirm_real_run(budget_modes(profile, worker_cores()), profile, err, confirmed)
    envs.ensure_all((arm.env for arm in arm_plans(profile)), say=lambda line: err.print(line, highlight=False))
    with open_engine(profile) as engine, LiveProgress(err, enabled=live) as progress:
        result = run_sweep(initial_tracks(profile), rates, orchestrated_step(profile, progress, engine.cores(), engine),
                           slo_ms, profile.validity,
                           on_step=lambda step: err.print(sweep_step_line(step, profile.validity, slo_ms), highlight=False))
    document = sweep_document(profile.model_dump(mode="json"), result)
    print_sweep(out, document)
    _export(document, profile, export_json, err)
    return _cut_short(result) or ExitCode.OK


def _cut_short(result) -> int | None:
    """A sweep's or a fault matrix's exit code when it did not run to its end: interrupted (130), a
    worker lost (1), or the failure's own (e.g. 4, the target unreachable); None when it did."""
    if result.interrupted:
        return ExitCode.INTERRUPTED
    if result.errors:
        return ExitCode.FAILURE
    if result.failure:
        return result.failure.code
    return None


def faults_command(profile: Profile, *, export_json: str | None, out: Console, err: Console,
                   live: bool = True) -> int:
    """`loadgen faults`: the matrix's verdicts are its findings; only the generator failing fails the command."""
    refused = _faults_refusal(profile)
    if refused:
        raise UserError(f"faults: {refused}", ExitCode.USAGE)
    scenarios = profile.faults.scenarios
    arms = list(dict.fromkeys(arm.label for arm in arm_plans(profile)))
    err.print(f"loadgen: {profile.name}: fault matrix · {len(scenarios)} scenario(s) × "
              f"{', '.join(profile.providers)} × {', '.join(arms)} · {profile.load.kind} {profile.load.rate:g}/s · "
              f"phases {profile.faults.before:g} s / {profile.faults.during:g} s / {profile.faults.after:g} s",
              highlight=False)
    with open_engine(profile) as engine, ScenarioProgress(err, enabled=live) as progress:
        result = run_matrix(profile, orchestrated_scenario(profile, progress, engine.cores(), engine),
                            on_scenario=lambda cells: err.print(fault_scenario_line(cells), highlight=False))
    document = faults_document(profile.model_dump(mode="json"), result, "embedded mock and collector")
    print_fault_matrix(out, document)
    _export(document, profile, export_json, err)
    return _cut_short(result) or (ExitCode.INVALID_RUN if result.generator_invalid else ExitCode.OK)


def _faults_refusal(profile: Profile) -> str | None:
    """Why this profile cannot run the matrix: the faults are injected by the embedded servers."""
    if profile.target.kind != "embedded":
        return "the faults are injected by the embedded mock LLM; target must be 'embedded'"
    if profile.tracing.collector_url:
        return "the faults are injected by the embedded collector; remove tracing.collector_url"
    if profile.load.kind not in ("constant", "poisson"):
        return "each scenario is an open-loop run at one rate; load.kind must be constant or poisson"
    if profile.scale.engine != "local":
        return "a scenario runs every arm at once on this machine; scale.engine must be 'local'"
    if len(profile.run_clients) != 1 or profile.client == "raw":
        return ("a matrix runs one SDK client (a tracer needs one): client 'async' or 'sync', and no clients list; "
                "run the matrix once per client")
    return None
