"""The fault matrix: what tracing does to an application when its backend or its LLM fails.

`loadgen faults` runs each scenario (`loadgen.fault_scenarios`) once per provider. In a
scenario every arm runs at once, the baseline included, on one open-loop schedule in three
phases: before, during and after the fault. The fault is on the embedded collector or the
embedded mock LLM, its window placed at the measured schedule's start (the servers'
`faults_from = "armed"`, armed by the orchestrator's `HarnessWatch` at the block's start), so
both servers and every worker share one clock: CLOCK_MONOTONIC, system-wide on Linux.

What each phase shows is cut from what was measured, nothing estimated:
- calls by their intended start: latency and loop delay (dispatch lag) from the per-op arrays,
  calls that did not succeed;
- the worker's timeline, sampled twice a second: RSS, spans ended, exported and dropped by
  reason, the queue (`loadgen.worker`);
- the collector's log of export attempts for the arm's run id, each with its outcome: the
  exporter's retries as the backend saw them.

A cell is a scenario × provider × tracing arm, judged against [faults.thresholds]; the
baseline of the same scenario is its reference. The matrix runner (`run_matrix`) is separate
from running one scenario (`orchestrated_scenario`), so it is tested with a fake runner.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace
from typing import Callable
from urllib.parse import urlencode

from loadgen.arms import is_baseline
from loadgen.collector.config import CollectorFault
from loadgen.document import document_header
from loadgen.errors import ExitCode, UserError
from loadgen.fault_scenarios import SCENARIOS, Scenario
from loadgen.harness import control
from loadgen.histograms import Recorder
from loadgen.metrics import summarize_all
from loadgen.mock_llm.config import FaultSpec
from loadgen.orchestrator import Orchestrator
from loadgen.plan import arm_plans, plan_mode
from loadgen.processes import Engine
from loadgen.profile import ConstantLoad, Profile
from loadgen.redact import redact_data
from loadgen.results import WorkerResult
from loadgen.schedule import NS, profile_offsets, warmup_offsets

PHASES = ("before", "during", "after")
# The rules whose breaking, by a baseline, means the generator itself failed: it did not send the
# schedule (rate, unsent) or its worker was saturated. Dispatch lag is not among them: in a
# scenario every arm's worker shares one core, so a tracer's export work delays the others'
# wake-ups by milliseconds; each phase reports it as loop delay, against the baseline's.
GENERATOR_RULES = ("send_rate", "unsent_operations", "worker_cpu")
MIB = 2**20


# --- one scenario's profile and phases ------------------------------------------------------------------------------

def during_s(profile: Profile, scenario: Scenario) -> float:
    return scenario.during_s if scenario.during_s is not None else profile.faults.during


def phase_bounds(profile: Profile, scenario: Scenario) -> dict[str, tuple[int, int]]:
    """Each phase's [start, end) in ns from the measured schedule's start."""
    faults = profile.faults
    edges = [0.0, faults.before, faults.before + during_s(profile, scenario),
             faults.before + during_s(profile, scenario) + faults.after]
    return {name: (round(edges[k] * NS), round(edges[k + 1] * NS)) for k, name in enumerate(PHASES)}


def scenario_profile(profile: Profile, scenario: Scenario, provider: str) -> Profile:
    """The run of one scenario on one provider: its three phases as one block, one worker per arm,
    the fault in the middle phase on the server it is about, placed when the block starts."""
    faults = profile.faults
    window = {**scenario.fault, "start_s": faults.before,
              "duration_s": during_s(profile, scenario) if scenario.back else None}
    on_llm = scenario.target == "llm"
    mock = profile.mock.model_copy(update={"faults": [FaultSpec(**window)] if on_llm else [], "faults_from": "armed"})
    collector = profile.collector.model_copy(
        update={"faults": [] if on_llm else [CollectorFault(**window)], "faults_from": "armed"})
    load = profile.load
    if load.kind not in ("constant", "poisson"):
        load = ConstantLoad(rate=load.rate)
    update = {
        "provider": provider, "load": load, "modes": [], "operations": None, "rounds": 1, "replicas": 1, "workers": 1,
        "duration": sum(end - start for start, end in phase_bounds(profile, scenario).values()) / NS,
        "mock": mock, "collector": collector,
    }
    if scenario.stream:
        update["stream"] = True
    if scenario.timeout_s is not None:
        update["timeout"] = scenario.timeout_s
    return profile.model_copy(update=update)


def measured_lead_ns(profile: Profile) -> int:
    """How long after a block's start its measured schedule begins: the warm-up's lead."""
    warmup = warmup_offsets(profile.load, profile.warmup_operations)
    return -warmup[0] if len(warmup) else 0


# --- what one scenario measured ------------------------------------------------------------------------------------

@dataclass
class ScenarioRun:
    """One scenario on one provider: every arm's result and summary, and what the servers logged."""

    scenario: str
    provider: str
    results: list[WorkerResult] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)  # summarize_all's, without histograms
    t0_ns: int | None = None  # the measured schedule's start (CLOCK_MONOTONIC)
    windows: dict = field(default_factory=dict)  # server → the fault windows it placed
    mock_faults: list[dict] | None = None  # the mock's log: one entry per request a fault changed
    attempts: dict[str, list] = field(default_factory=dict)  # run id → the collector's attempt log
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False
    failure: UserError | None = None


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


# --- a run's phases ------------------------------------------------------------------------------------------------

def _sample_at(timeline: list[tuple], t_ns: int) -> tuple | None:
    """The last sample at or before t_ns (the first one when none is)."""
    if not timeline:
        return None
    index = bisect.bisect_right([sample[0] for sample in timeline], t_ns) - 1
    return timeline[max(0, index)]


def _span_delta(start: tuple | None, end: tuple | None) -> dict | None:
    if start is None or end is None:
        return None
    _, _, ended0, exported0, dropped0, _ = start
    _, _, ended1, exported1, dropped1, _ = end
    return {"ended": ended1 - ended0, "exported": exported1 - exported0,
            "dropped": {reason: count - dropped0.get(reason, 0) for reason, count in dropped1.items()}}


def phase_figures(result: WorkerResult, offsets, bounds: dict[str, tuple[int, int]], t0_ns: int,
                  attempts: list | None) -> dict[str, dict]:
    """Per phase: calls by intended start (latency, loop delay, failed), the timeline's RSS and spans,
    and the collector's export attempts by outcome."""
    figures = {}
    origin = offsets[0] if len(offsets) else 0
    timeline = result.timeline or []
    for name, (start, end) in bounds.items():
        first = bisect.bisect_left(offsets, origin + start)
        last = bisect.bisect_left(offsets, origin + end)
        latency, lag = Recorder(), Recorder()
        ok = 0
        for op_id in range(first, min(last, len(result.latency_by_op))):
            value = result.latency_by_op[op_id]
            if value >= 0:
                ok += 1
                latency.record_ns(value)
            if result.lag_by_op[op_id] >= 0:  # every call done, failed or not
                lag.record_ns(result.lag_by_op[op_id])
        lat, delay = latency.summary_ms(), lag.summary_ms()
        inside = [sample for sample in timeline if t0_ns + start <= sample[0] < t0_ns + end]
        outcomes: dict[str, int] = {}
        for arrival, outcome, _spans in attempts or ():
            if t0_ns + start <= arrival < t0_ns + end:
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
        figures[name] = {
            "calls": last - first,
            "calls_failed": last - first - ok,
            "latency_p50_ms": lat["p50"], "latency_p99_ms": lat["p99"],
            "loop_delay_p50_ms": delay["p50"], "loop_delay_p99_ms": delay["p99"],
            "rss_peak_mib": _mib(max((s[1] for s in inside), default=None)),
            "rss_end_mib": _mib(inside[-1][1] if inside else None),
            "queue_peak": max((s[5] for s in inside), default=None),
            "spans": _span_delta(_sample_at(timeline, t0_ns + start), _sample_at(timeline, t0_ns + end)),
            "export_attempts": outcomes if attempts is not None else None,
        }
    return figures


def _mib(value: int | None) -> float | None:
    return None if value is None else round(value / MIB, 2)


def recovery(result: WorkerResult, scenario: Scenario, bounds: dict, t0_ns: int, attempts: list | None) -> dict:
    """From the fault's end: the first accepted export, and the queue back to its level before the fault.

    None where it did not happen before the run ended (or, for the first export, where the
    collector had no fault or cannot tell); the shutdown then meets the backlog.
    """
    fault_end = t0_ns + bounds["during"][1]
    timeline = result.timeline or []
    before = [s[5] for s in timeline if t0_ns <= s[0] < t0_ns + bounds["before"][1]]
    level = max(before, default=0)
    drained = next((s[0] for s in timeline if s[0] >= fault_end and s[5] <= level), None)
    accepted = None
    if scenario.target == "collector" and scenario.back and attempts is not None:
        accepted = next((arrival for arrival, outcome, _ in sorted(attempts)
                         if arrival >= fault_end and outcome == "accepted"), None)
    back = scenario.back
    return {
        "first_accepted_export_s": _seconds(accepted - fault_end) if accepted is not None else None,
        "queue_drained_s": _seconds(drained - fault_end) if drained is not None and back else None,
        "queue_level_before": level,
    }


def _seconds(ns: int) -> float:
    return round(ns / NS, 3)


# --- cells and verdicts --------------------------------------------------------------------------------------------

def _delta(mine: float | None, base: float | None) -> float | None:
    return None if mine is None or base is None else round(mine - base, 3)


def build_cells(run: ScenarioRun, profile: Profile) -> tuple[list[dict], list[dict]]:
    """(cells, baselines) of one scenario run: each tracing arm judged against the baseline beside it."""
    scenario = SCENARIOS[run.scenario]
    sprofile = scenario_profile(profile, scenario, run.provider)
    offsets = profile_offsets(sprofile)
    bounds = phase_bounds(profile, scenario)
    summaries = {summary["arm"]: summary for summary in run.runs}
    phases, baselines = {}, []
    for result in run.results:
        attempts = run.attempts.get(result.run_id) if result.run_id else None
        phases[result.arm] = phase_figures(result, offsets, bounds, run.t0_ns or 0, attempts)
    base = next((r for r in run.results if is_baseline(r.arm)), None)
    base_phases = phases.get(base.arm) if base is not None else None
    cells = []
    for result in run.results:
        summary = summaries.get(result.arm, {})
        if is_baseline(result.arm):
            baselines.append({"scenario": run.scenario, "provider": run.provider, "arm": result.arm,
                              "phases": phases[result.arm], "errors": summary.get("errors"),
                              "valid": summary.get("valid"), "invalid_reasons": summary.get("invalid_reasons") or []})
            continue
        attempts = run.attempts.get(result.run_id) if result.run_id else None
        cell = _cell(run, scenario, profile, result, summary, phases[result.arm], base_phases,
                     summaries.get(base.arm) if base is not None else None, bounds, attempts)
        cells.append(cell)
    return cells, baselines


def _cell(run: ScenarioRun, scenario: Scenario, profile: Profile, result: WorkerResult, summary: dict,
          phases: dict, base_phases: dict | None, base_summary: dict | None, bounds: dict,
          attempts: list | None) -> dict:
    for name, figures in phases.items():
        base = (base_phases or {}).get(name, {})
        figures["latency_delta_p50_ms"] = _delta(figures["latency_p50_ms"], base.get("latency_p50_ms"))
        figures["latency_delta_p99_ms"] = _delta(figures["latency_p99_ms"], base.get("latency_p99_ms"))
        figures["loop_delay_delta_p99_ms"] = _delta(figures["loop_delay_p99_ms"], base.get("loop_delay_p99_ms"))
    collector = result.collector or {}
    spans = summary.get("spans")
    failed_calls = result.operations_completed - result.operations_ok
    rss_before = phases["before"]["rss_end_mib"]
    rss_end = phases["after"]["rss_end_mib"]
    cell = {
        "scenario": run.scenario,
        "provider": run.provider,
        "arm": result.arm,
        "verdict": None,
        "worst": None,
        "spans": spans,
        "recovery_s": None,
        "shutdown_s": result.shutdown_s,
        "latency_delta_p99_ms": phases["during"]["latency_delta_p99_ms"],
        "rss_peak_mib": max((p["rss_peak_mib"] for p in phases.values() if p["rss_peak_mib"] is not None),
                            default=None),
        "rss_end_mib": rss_end,
        "rss_back_percent": (round(100 * (rss_end - rss_before) / rss_before, 2)
                             if rss_end is not None and rss_before else None),
        "phases": phases,
        "recovery": recovery(result, scenario, bounds, run.t0_ns or 0, attempts),
        "errors": result.errors,
        "baseline_errors": (base_summary or {}).get("errors"),
        "coverage": {
            "operations": result.operations_sent,
            "covered": collector.get("covered_operations"),
            "coverage_percent": summary.get("trace_coverage_percent"),
            "failed_calls": failed_calls,
            # The tracer's LLM span of a failed call, received with status ERROR; and the
            # application's root span around it (loadgen's: a timeout cancels it, which OTel
            # does not record as an error).
            "error_llm_spans": collector.get("error_llm_spans"),
            "error_roots": collector.get("error_roots"),
            "failed_calls_traced_with_error": _at_most(collector.get("error_llm_spans"), failed_calls),
            "failed_calls_with_error_root": _at_most(collector.get("error_roots"), failed_calls),
        },
        "collector": _collector_check(result, collector, spans),
        "exporter_retries": None,
        "valid": summary.get("valid"),
        "invalid_reasons": summary.get("invalid_reasons"),
    }
    if collector.get("attempts") is not None and result.spans:
        cell["exporter_retries"] = max(0, collector["attempts"] - result.spans.get("export_calls", 0))
    rec = cell["recovery"]
    waits = [value for value in (rec["first_accepted_export_s"], rec["queue_drained_s"]) if value is not None]
    cell["recovery_s"] = max(waits) if waits else None
    cell["checks"] = checks(cell, scenario, profile)
    cell["verdict"], cell["worst"] = verdict(cell["checks"])
    cell["recommendations"] = recommendations(cell, scenario, profile)
    return cell


def _at_most(count: int | None, limit: int) -> int | None:
    return None if count is None else min(count, limit)


def _collector_check(result: WorkerResult, collector: dict, spans: dict | None) -> dict | None:
    """The worker's span buckets against the collector's own counts (None: it cannot tell)."""
    if not collector or not spans:
        return None
    by_outcome = collector.get("spans_by_outcome") or {}
    return {
        "attempts": collector.get("attempts"),
        "attempts_by_outcome": collector.get("attempts_by_outcome"),
        "spans_by_outcome": by_outcome,
        "exported_minus_received": spans["exported"] - collector["spans_received"],
        "rejected_minus_collector_rejected": spans["dropped"].get("rejected", 0) - collector.get("rejected_spans", 0),
    }


def checks(cell: dict, scenario: Scenario, profile: Profile) -> list[dict]:
    """Each figure against its limit: (name, level it fails at, figure, limit, passed); None figures are unmeasured."""
    limits = profile.faults.thresholds
    delay_s = profile.tracing.schedule_delay_ms / 1000
    found = []

    def check(name: str, level: str, figure, limit, passed: bool | None, text: str) -> None:
        found.append({"check": name, "level": level, "figure": figure, "limit": limit, "passed": passed,
                      "text": text})

    spans = cell["spans"] or {}
    unaccounted = spans.get("unaccounted")
    check("unaccounted", "fail", unaccounted, limits.unaccounted,
          None if unaccounted is None else unaccounted <= limits.unaccounted, f"unaccounted spans {unaccounted}")
    collector = cell["collector"]
    if collector is not None:
        gap = collector["exported_minus_received"]
        check("collector_agrees", "fail", gap, 0, gap == 0 and collector["rejected_minus_collector_rejected"] == 0,
              f"exported − received at the collector {gap:+d}, rejected − the collector's rejected "
              f"{collector['rejected_minus_collector_rejected']:+d}")
    unexpected = {reason: count for reason, count in (spans.get("dropped") or {}).items()
                  if count and reason not in scenario.drops}
    check("drops_match_fault", "warn", sum(unexpected.values()), 0, not unexpected,
          "spans dropped for reasons the fault does not explain: "
          + (", ".join(f"{reason} {count}" for reason, count in unexpected.items()) or "none"))
    base_classes = set(cell["baseline_errors"] or {})
    extra = sorted(set(cell["errors"]) - base_classes)
    check("errors_as_baseline", "fail", ", ".join(extra) or None, None, not extra,
          f"calls failed with error classes the baseline's did not: {', '.join(extra) or 'none'}")
    for phase in ("during", "after"):
        delta = cell["phases"][phase]["latency_delta_p99_ms"]
        check(f"latency_{phase}", "warn", delta, limits.latency_delta_p99_ms,
              None if delta is None else delta <= limits.latency_delta_p99_ms,
              f"latency p99 {phase} the fault {_signed(delta)} ms against the baseline")
    back = cell["rss_back_percent"]
    check("rss_back", "warn", back, limits.rss_back_percent, None if back is None else back <= limits.rss_back_percent,
          f"RSS at the end {_signed(back)} % against before the fault")
    if scenario.back and scenario.target == "collector":
        recovered = cell["recovery_s"]
        limit = round(limits.recovery_schedule_delays * delay_s, 3)
        check("recovery", "warn", recovered, limit, False if recovered is None else recovered <= limit,
              f"recovery {recovered if recovered is not None else 'never (before the run ended)'} s "
              f"after the fault ended")
    shutdown = cell["shutdown_s"]
    check("shutdown", "warn", shutdown, limits.shutdown_s, None if shutdown is None else shutdown <= limits.shutdown_s,
          f"flush and shutdown took {shutdown} s")
    return found


def _signed(value: float | None) -> str:
    return "unmeasured" if value is None else f"{value:+.2f}"


def verdict(found: list[dict]) -> tuple[str, str | None]:
    """'fail' if a fail-level check failed, 'warn' if a warn-level one did, else 'pass'; with the worst figure's text."""
    failed = [c for c in found if c["passed"] is False]
    for level in ("fail", "warn"):
        mine = [c for c in failed if c["level"] == level]
        if mine:
            return level, max(mine, key=_excess)["text"]
    latency = next((c for c in found if c["check"] == "latency_during"), None)
    return "pass", latency["text"] if latency else None


def _excess(check: dict) -> float:
    figure, limit = check["figure"], check["limit"]
    if isinstance(figure, (int, float)) and isinstance(limit, (int, float)):
        return figure / limit if limit else float("inf")
    return float("inf")


def recommendations(cell: dict, scenario: Scenario, profile: Profile) -> list[str]:
    """Which setting changes a figure that was over its limit, quoting the figure."""
    tracing = profile.tracing
    said = []
    dropped = (cell["spans"] or {}).get("dropped") or {}
    before = cell["phases"]["before"]
    ended = (before["spans"] or {}).get("ended")
    seconds = profile.faults.before
    if dropped.get("queue_full") and ended:
        rate = ended / seconds
        outage = during_s(profile, scenario)
        said.append(f"{dropped['queue_full']} spans dropped with the queue full: at {rate:.0f} spans/s a queue of "
                    f"max_queue_size = {tracing.max_queue_size} holds {tracing.max_queue_size / rate:.1f} s; "
                    f"{int(rate * outage) + 1} would hold this {outage:g} s fault")
    if dropped.get("export_failed") and "export_timeout_ms" in " ".join(scenario.settings):
        said.append(f"{dropped['export_failed']} spans dropped after failed exports: an OTLP exporter retries a "
                    f"batch with backoff (1, 2, 4 s…) until its next wait would pass export_timeout_ms = "
                    f"{tracing.export_timeout_ms}, then drops it; a longer timeout rides out a longer fault, "
                    f"and makes a longer exit while the backend is down")
    for check in cell["checks"]:
        if check["passed"] is not False:
            continue
        if check["check"] == "shutdown":
            said.append(f"shutdown took {check['figure']} s: the exporter's export_timeout_ms = "
                        f"{tracing.export_timeout_ms} bounds each attempt at exit; lower it to bound the exit")
        elif check["check"] == "recovery":
            said.append(f"recovery took {check['figure']} s: the queue drains max_export_batch_size = "
                        f"{tracing.max_export_batch_size} spans per export, one export per schedule_delay_ms = "
                        f"{tracing.schedule_delay_ms} once the backlog is gone")
        elif check["check"].startswith("latency_") and scenario.target == "llm" and "max_retries" in scenario.settings:
            said.append(f"{check['text']}: with max_retries = {profile.max_retries} every retry is on the "
                        f"call's latency")
    return said


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
    injected: dict[str, int] = {}
    for entry in run.mock_faults or ():
        injected[entry["kind"]] = injected.get(entry["kind"], 0) + 1
    return {
        "scenario": scenario.name, "provider": run.provider, "about": scenario.about, "target": scenario.target,
        "phases_s": {name: [start / NS, end / NS] for name, (start, end) in phase_bounds(profile, scenario).items()},
        "fault": scenario.fault, "fault_lasts_to_the_end": not scenario.back,
        "fault_windows": run.windows,
        "mock_faults_injected": injected if run.mock_faults is not None else None,
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
