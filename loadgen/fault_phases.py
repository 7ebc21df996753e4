"""A fault scenario as a run, and that run cut into its phases: before, during and after the fault.

`scenario_profile` makes one scenario on one provider a profile of its own: its three phases
as one block, one worker per arm, the fault's window in the middle phase on the server it is
about, placed when the block starts. What the run measured (`ScenarioRun`) is cut into phases
by `phase_figures`, nothing estimated: calls by their intended start (latency and loop delay
from the per-op arrays, the calls that did not succeed), the worker's timeline sampled twice
a second (RSS; spans ended, exported and dropped by reason; the queue), and the collector's
log of export attempts for the arm's run id, each with its outcome. `recovery` times the
first accepted export and the drained queue from the fault's end.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from itertools import accumulate

from loadgen.collector.config import CollectorFault
from loadgen.errors import UserError
from loadgen.fault_scenarios import Scenario
from loadgen.histograms import Recorder
from loadgen.mock_llm.config import FaultSpec
from loadgen.memory import MIB
from loadgen.profile import Profile
from loadgen.results import WorkerResult
from loadgen.schedule import NS, warmup_offsets

PHASES = ("before", "during", "after")


# --- one scenario's profile and phases ------------------------------------------------------------------------------

def during_s(profile: Profile, scenario: Scenario) -> float:
    return scenario.during_s if scenario.during_s is not None else profile.faults.during


def phase_bounds(profile: Profile, scenario: Scenario) -> dict[str, tuple[int, int]]:
    """Each phase's [start, end) in ns from the measured schedule's start."""
    faults = profile.faults
    edges = list(accumulate((faults.before, during_s(profile, scenario), faults.after), initial=0.0))
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
    update = {  # the load is constant or poisson (loadgen faults refuses the others)
        "provider": provider, "modes": [], "operations": None, "rounds": 1, "replicas": 1, "workers": 1,
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
    return {
        "first_accepted_export_s": _seconds(accepted - fault_end) if accepted is not None else None,
        "queue_drained_s": _seconds(drained - fault_end) if drained is not None and scenario.back else None,
        "queue_level_before": level,
    }


def _seconds(ns: int) -> float:
    return round(ns / NS, 3)
