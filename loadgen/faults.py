"""The fault matrix: what tracing does to an application when its backend or its LLM fails.

`loadgen faults` runs each scenario (`loadgen.fault_scenarios`) once per provider. In a
scenario every arm runs at once, the baseline included, on one open-loop schedule in three
phases: before, during and after the fault. The fault is on the embedded collector or the
embedded mock LLM, its window placed at the measured schedule's start (the servers'
`faults_from = "armed"`, armed by the orchestrator's `HarnessWatch` at the block's start), so
both servers and every worker share one clock: CLOCK_MONOTONIC, system-wide on Linux.

Each run is cut into its phases by `loadgen.fault_phases`; each tracing arm of it becomes a
cell, a scenario × provider × arm judged against [faults.thresholds] with the baseline of the
same scenario as its reference, by `loadgen.fault_cells`. The matrix runner (`run_matrix`) is separate
from running one scenario (`orchestrated_scenario`), so it is tested with a fake runner.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Callable
from urllib.parse import urlencode

from loadgen.document import document_header
from loadgen.errors import ExitCode, UserError
from loadgen.fault_cells import build_cells
from loadgen.fault_phases import ScenarioRun, measured_lead_ns, phase_bounds, scenario_profile
from loadgen.fault_scenarios import SCENARIOS, Scenario
from loadgen.harness import control
from loadgen.metrics import summarize_all
from loadgen.orchestrator import Orchestrator
from loadgen.plan import arm_plans, plan_mode
from loadgen.processes import Engine
from loadgen.profile import Profile
from loadgen.redact import redact_data
from loadgen.results import WorkerResult
from loadgen.schedule import NS

# The rules whose breaking, by a baseline, means the generator itself failed: it did not send the
# schedule (rate, unsent) or its worker was saturated. Dispatch lag is not among them: in a
# scenario every arm's worker shares one core, so a tracer's export work delays the others'
# wake-ups by milliseconds; each phase reports it as loop delay, against the baseline's.
GENERATOR_RULES = ("send_rate", "unsent_operations", "worker_cpu")


class ScenarioWatch:
    """The orchestrator's HarnessWatch for one scenario: arms the fault windows, reads the servers' logs."""

    def __init__(self, run: ScenarioRun, lead_ns: int) -> None:
        self.run = run
        self.lead_ns = lead_ns

    def block_started(self, urls: dict[str, str | None], start_at_ns: int) -> None:
        t0 = start_at_ns + self.lead_ns
        self.run.t0_ns = t0
        for server, url in urls.items():
            if url is not None:
                answer = control(url, f"/_{server}/arm", {"t0_ns": t0})
                if answer is None:
                    raise UserError(f"the embedded {server} at {url} did not arm its fault windows", ExitCode.FAILURE)
                self.run.windows[server] = answer.get("windows")

    def fleet_done(self, urls: dict[str, str | None], results: list[WorkerResult]) -> None:
        if urls["mock"] is not None:
            log = control(urls["mock"], "/_mock/faults")
            self.run.mock_faults = log["faults"] if log is not None else None
        if urls["collector"] is not None:
            for result in results:
                if result.run_id:
                    log = control(urls["collector"], f"/_collector/attempts?{urlencode({'run_id': result.run_id})}")
                    self.run.attempts[result.run_id] = log["attempts"] if log is not None else []


ScenarioRunner = Callable[[Scenario, str], ScenarioRun]


def orchestrated_scenario(profile: Profile, progress, cores: int, engine: Engine | None = None) -> ScenarioRunner:
    """Run one scenario on one provider through the orchestrator: every arm at once, one block."""

    def run_scenario(scenario: Scenario, provider: str) -> ScenarioRun:
        progress.prefix = f"{scenario.name} · {provider} · "
        sprofile = scenario_profile(profile, scenario, provider)
        plan = plan_mode(sprofile, cores, arm_plans(sprofile, (provider,)))
        fleets = tuple(replace(fleet, together=True, off_harness_core=True) for fleet in plan.fleets)
        plan = replace(plan, fleets=fleets)
        run = ScenarioRun(scenario.name, provider)
        try:
            done = Orchestrator(plan, on_progress=progress.update, engine=engine,
                                watch=ScenarioWatch(run, measured_lead_ns(sprofile))).run()
        except UserError as exc:
            run.failure = exc
            return run
        run.results = done.results
        run.runs = [{key: value for key, value in summary.items() if key != "histograms"}
                    for summary in summarize_all(done.results, sprofile.validity)]
        run.errors, run.interrupted = done.errors, done.interrupted
        return run

    return run_scenario


# --- the matrix ----------------------------------------------------------------------------------------------------

@dataclass
class MatrixResult:
    cells: list[dict] = field(default_factory=list)
    baselines: list[dict] = field(default_factory=list)
    scenarios: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False
    failure: UserError | None = None
    generator_invalid: list[str] = field(default_factory=list)  # baselines that did not keep their schedule


def run_matrix(profile: Profile, run_scenario: ScenarioRunner,
               on_scenario: Callable[[list[dict]], None] = lambda cells: None) -> MatrixResult:
    """Every scenario on every provider, in turn; an interrupt or failure keeps what was measured."""
    result = MatrixResult()
    for name in profile.faults.scenarios:
        scenario = SCENARIOS[name]
        for provider in profile.providers:
            try:
                run = run_scenario(scenario, provider)
            except KeyboardInterrupt:
                result.interrupted = True
                return result
            result.errors += run.errors
            if run.failure is not None:
                result.failure = run.failure
                return result
            cells, baselines = build_cells(run, profile)
            result.cells += cells
            result.baselines += baselines
            result.scenarios.append(_scenario_entry(run, scenario, profile))
            for base in baselines:
                broken = [reason for reason in base["invalid_reasons"] if reason["rule"] in GENERATOR_RULES]
                if broken:
                    reasons = "; ".join(reason["detail"] for reason in broken)
                    result.generator_invalid.append(f"{name} · {provider} · {base['arm']}: {reasons}")
            on_scenario(cells)
            if run.interrupted:
                result.interrupted = True
                return result
    return result


def _scenario_entry(run: ScenarioRun, scenario: Scenario, profile: Profile) -> dict:
    injected = Counter(entry["kind"] for entry in run.mock_faults or ())
    return {
        "scenario": scenario.name, "provider": run.provider, "about": scenario.about, "target": scenario.target,
        "phases_s": {name: [start / NS, end / NS] for name, (start, end) in phase_bounds(profile, scenario).items()},
        "fault": scenario.fault, "fault_lasts_to_the_end": not scenario.back,
        "fault_windows": run.windows,
        "mock_faults_injected": dict(injected) if run.mock_faults is not None else None,
        "errors_by_arm": {result.arm: result.errors for result in run.results},
        "attempts_by_arm": {result.arm: result.attempts for result in run.results},
    }


def faults_document(profile_data: dict, result: MatrixResult, target: str) -> dict:
    document = {
        **document_header(),
        "kind": "faults",
        "target": target,
        "profile": profile_data,
        "cells": result.cells,
        "baselines": result.baselines,
        "scenarios": result.scenarios,
        "generator_invalid": result.generator_invalid,
        "interrupted": result.interrupted,
        "errors": result.errors + ([str(result.failure)] if result.failure else []),
    }
    return redact_data(document)
