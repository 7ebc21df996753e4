"""A fault matrix's cells: each tracing arm of a scenario run, judged against the baseline beside it.

A cell carries every figure of its arm in the scenario (phases, recovery, shutdown, errors,
coverage of failed calls, the collector's counts against the worker's span buckets) and its
checks against [faults.thresholds]: a check at level "fail" (spans unaccounted, the collector
disagreeing, error classes the baseline did not have) fails the cell, one at level "warn"
(latency, RSS, recovery, shutdown, drops the fault does not explain, failed calls not traced
with their error, calls not traced while only the LLM failed) warns. The worst figure
is quoted, and the settings that change a result are named with it (`recommendations`).
"""

from __future__ import annotations

from loadgen.arms import is_baseline
from loadgen.fault_phases import ScenarioRun, during_s, phase_bounds, phase_figures, recovery, scenario_profile
from loadgen.fault_scenarios import SCENARIOS, Scenario
from loadgen.profile import Profile
from loadgen.results import WorkerResult
from loadgen.schedule import profile_offsets


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
    attempts = {result.arm: run.attempts.get(result.run_id) if result.run_id else None for result in run.results}
    phases = {result.arm: phase_figures(result, offsets, bounds, run.t0_ns or 0, attempts[result.arm])
              for result in run.results}
    baselines = []
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
        cell = _cell(run, scenario, profile, result, summary, phases[result.arm], base_phases,
                     summaries.get(base.arm) if base is not None else None, bounds, attempts[result.arm])
        cells.append(cell)
    return cells, baselines


def _rss_back(phases: dict) -> float | None:
    """RSS at the end of the run against its level before the fault, %."""
    before, end = phases["before"]["rss_end_mib"], phases["after"]["rss_end_mib"]
    return round(100 * (end - before) / before, 2) if end is not None and before else None


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
    back = _rss_back(phases)
    base_back = _rss_back(base_phases) if base_phases else None
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
        "rss_end_mib": phases["after"]["rss_end_mib"],
        "rss_back_percent": back,
        # The baseline's own growth over the same fault: what the client itself keeps (the sync
        # client's threads keep ~30 % more after a stall), so the check judges the arm beyond it.
        "baseline_rss_back_percent": base_back,
        "rss_back_delta_percent": _delta(back, base_back),
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
    check("unaccounted", "fail", unaccounted, limits.unaccounted, _within(unaccounted, limits.unaccounted),
          f"unaccounted spans {unaccounted}")
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
    coverage = cell["coverage"]
    failed, traced = coverage["failed_calls"], coverage["failed_calls_traced_with_error"]
    if failed and traced is not None:
        check("failed_calls_traced", "warn", traced, failed, traced >= failed,
              f"{traced} of {failed} failed calls reached the collector as an LLM span with status ERROR")
    if scenario.target == "llm" and coverage["covered"] is not None:
        # The collector had no fault: every call, failed or not, should arrive traced.
        check("coverage", "warn", coverage["coverage_percent"], 100.0,
              coverage["covered"] >= coverage["operations"],
              f"{coverage['covered']} of {coverage['operations']} calls traced (root and LLM span received)")
    for phase in ("during", "after"):
        delta = cell["phases"][phase]["latency_delta_p99_ms"]
        check(f"latency_{phase}", "warn", delta, limits.latency_delta_p99_ms,
              _within(delta, limits.latency_delta_p99_ms),
              f"latency p99 {phase} the fault {_signed(delta)} ms against the baseline")
    back, delta = cell["rss_back_percent"], cell["rss_back_delta_percent"]
    if delta is None:
        check("rss_back", "warn", back, limits.rss_back_percent, _within(back, limits.rss_back_percent),
              f"RSS at the end {_signed(back)} % against before the fault")
    else:
        check("rss_back", "warn", delta, limits.rss_back_percent, _within(delta, limits.rss_back_percent),
              f"RSS at the end {_signed(back)} % against before the fault, {_signed(delta)} points beyond the "
              f"baseline's {_signed(cell['baseline_rss_back_percent'])} %")
    if scenario.back and scenario.target == "collector":
        recovered = cell["recovery_s"]
        limit = round(limits.recovery_schedule_delays * delay_s, 3)
        check("recovery", "warn", recovered, limit, False if recovered is None else recovered <= limit,
              f"recovery {recovered if recovered is not None else 'never (before the run ended)'} s "
              f"after the fault ended")
    shutdown = cell["shutdown_s"]
    check("shutdown", "warn", shutdown, limits.shutdown_s, _within(shutdown, limits.shutdown_s),
          f"flush and shutdown took {shutdown} s")
    return found


def _within(figure: float | None, limit: float) -> bool | None:
    """Whether a figure is at or under its limit; None when it was not measured."""
    return None if figure is None else figure <= limit


def _signed(value: float | None) -> str:
    return "unmeasured" if value is None else f"{value:+.2f}"


def verdict(found: list[dict]) -> tuple[str, str | None]:
    """'fail' if a fail-level check failed, 'warn' if a warn-level one did, else 'pass'; with the worst
    figure's text."""
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
    if dropped.get("export_failed") and "export_timeout_ms" in scenario.settings:
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
        elif (check["check"].startswith("latency_") and "max_retries" in scenario.settings
              and profile.max_retries > 0):  # with none, no retry is on the latency
            said.append(f"{check['text']}: with max_retries = {profile.max_retries} every retry is on the "
                        f"call's latency")
    return said
