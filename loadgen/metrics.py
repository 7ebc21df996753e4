"""Merged worker results → run summaries: percentiles, achieved rate, validity, and costs.

Computed once, after the run (vegeta's `Close()`): nothing here reaches back into the
engine. A run is invalid when the generator did not deliver the load asked for — the
rules are DESIGN.md's, their limits the profile's [validity], and each failing rule is
named with its measured value.
"""

from __future__ import annotations

from dataclasses import dataclass

from loadgen.histograms import Recorder
from loadgen.intervals import quantile_ci, rate_ci, wilson
from loadgen.known_answer import held_figures
from loadgen.memory import memory_cost
from loadgen.overhead import Unit, memory_figures, paired_overhead, paired_part
from loadgen.limits import Validity
from loadgen.arms import is_baseline
from loadgen.profile import OPEN_LOOP_KINDS
from loadgen.results import WorkerResult

NS = 1_000_000_000
# The generator's rules, in the order they are reported. The schedule rules judge every
# arm; the saturation rules only the arms without a tracer (summarize_all says which).
SCHEDULE_RULES = ("send_rate", "unsent_operations")
SATURATION_RULES = ("worker_cpu", "dispatch_lag")

SUMMARY_HISTOGRAMS = {
    "latency_ms": "latency",
    "service_time_ms": "service_time",
    "dispatch_lag_ms": "dispatch_lag",
    "ttft_ms": "ttft",
    "ttft_service_ms": "ttft_service",
    "itl_ms": "itl",
    # One timeline per call: latency = dispatch lag + these three, exactly. Empty (count 0,
    # figures None) where the transport could not stamp the wire (http_transport = "httpx").
    "before_wire_ms": "before_wire",
    "wire_ms": "wire",
    "after_response_ms": "after_response",
}


@dataclass(frozen=True)
class Violation:
    rule: str
    detail: str


def reconcile(snapshot: dict, received: int | None, duplicates: int | None) -> dict:
    """ended = received + Σ dropped + unaccounted, with duplicates apart (None: not measured)."""
    dropped_total = sum(snapshot["dropped"].values())
    unaccounted = None if received is None else snapshot["ended"] - received - dropped_total
    return {
        "started": snapshot["started"],
        "ended": snapshot["ended"],
        "exported": snapshot["exported"],
        "received": received,
        "dropped": snapshot["dropped"],
        "unaccounted": unaccounted,
        "duplicates": duplicates,
    }


def span_figures(result: WorkerResult) -> dict:
    """The tracing figures of one run: conservation, export latency, coverage, completeness.

    Figures that need the collector's side are None (shown as unmeasured) when the spans
    went to a receiver that cannot report them.
    """
    spans = result.spans
    if not spans:
        # The baseline traces nothing: the keys are there, with nothing in them.
        return dict.fromkeys(("spans", "dropped_span_rate_percent", "dropped_span_rate_ci95_percent",
                              "export_latency_ms", "export_latency_p95_ci95_ms", "trace_coverage_percent",
                              "attribute_completeness_percent", "missing_attributes", "export_bytes_per_operation"))
    collector = result.collector
    received = collector["spans_received"] if collector else None
    duplicates = collector["duplicates"] if collector else None
    dropped_total = sum(spans["dropped"].values())
    export_latency = Recorder.decode(spans["export_latency"])
    operations = result.operations_sent
    # Every traced call — warm-up and priming included (one priming call per worker) — sent spans and bytes.
    traced_calls = operations + result.warmup_operations + result.workers
    figures = {
        "spans": {**reconcile(spans, received, duplicates), "export_calls": spans.get("export_calls")},
        "dropped_span_rate_percent": _percent(dropped_total, spans["exported"] + dropped_total),
        "dropped_span_rate_ci95_percent": _drop_rate_ci(dropped_total, spans),
        "export_latency_ms": export_latency.summary_ms(),
        "export_latency_p95_ci95_ms": quantile_ci(
            lambda p: round(export_latency.histogram.get_value_at_percentile(100 * p) / 1000, 4), 0.95,
            spans.get("export_calls") or 0) if export_latency.count else None,
        "trace_coverage_percent": None,
        "attribute_completeness_percent": None,
        "missing_attributes": None,
        "export_bytes_per_operation": None,
    }
    if collector:
        figures["trace_coverage_percent"] = _percent(collector["covered_operations"], operations)
        figures["attribute_completeness_percent"] = collector["attribute_completeness_percent"]
        figures["missing_attributes"] = collector["missing_attributes"]
        figures["export_bytes_per_operation"] = round(collector["bytes"] / traced_calls, 1) if traced_calls else None
        figures["collector_export_delay_ms"] = collector.get("export_delay_ms")
    return figures


def _drop_rate_ci(dropped: int, spans: dict) -> list[float] | None:
    """The drop rate's 95 % CI, with export calls (each a batch kept or dropped together) as the units."""
    whole = spans["exported"] + dropped
    ci = wilson(dropped / whole, spans.get("export_calls") or 0) if whole else None
    return None if ci is None else [round(100 * ci[0], 3), round(100 * ci[1], 3)]


def _percent(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 3) if whole else None


# The parts of the timeline whose Δ is paired like the latency's (key suffix → per-op array).
_PARTS = {"before_wire": "before_wire_by_op", "after_response": "after_response_by_op", "loop_delay": "lag_by_op"}
_NO_OVERHEAD = ("overhead_latency_ms", "overhead_latency_ci95_ms", "overhead_latency_percent", "overhead_pairs",
                "overhead_ci_method", "overhead_ci_df", "cpu_per_operation_delta_us", "loop_delay_delta_p99_ms",
                "gil_wait_delta_p99_ms",
                "saturated", "saturation_detail",
                *(f"overhead_{part}_{suffix}" for part in _PARTS for suffix in ("ms", "ci95_ms")))

# A measured run and its summary figures, as the costs compare them.
Measured = tuple[WorkerResult, dict]


def costs(run: Measured, baseline: Measured | None) -> dict:
    """What an arm costs against the baseline run of the same provider and mode (None: there is none).

    Latency and each part of its timeline are paired by op_id, with the CI over blocks
    (overhead.paired_overhead). Loop delay is the arm's dispatch lag: what its synchronous
    work does to the calls around it, a cost, never a reason to call the run invalid. With
    the sync client that lag is the dispatcher's lateness plus the wait for a free thread, and
    the GIL wait beside it is a probe thread's wake-up lateness: what the tracer's threads
    (its batch exporter's above all) take from every other thread of the process.
    """
    result, figures = run
    cost = dict(zip(("loop_delay_p50_ms", "loop_delay_p99_ms"), _loop_delay(figures)))
    cost.update(zip(("gil_wait_p50_ms", "gil_wait_p99_ms"), gil_wait(result)))
    if baseline is None:
        return {**cost, **dict.fromkeys(_NO_OVERHEAD), **memory_cost(None, result)}
    base, base_figures = baseline
    units = pairing_units(base, result)
    cost.update(paired_overhead(base.latency_by_op, result.latency_by_op, units))
    for part, by_op in _PARTS.items():
        cost.update(paired_part(part, getattr(base, by_op), getattr(result, by_op), units))
    cost.update(memory_cost(base, result))
    mine, theirs = figures["cpu_per_operation_us"], base_figures["cpu_per_operation_us"]
    cost["cpu_per_operation_delta_us"] = None if mine is None or theirs is None else round(mine - theirs, 1)
    untraced = is_baseline(result.arm)
    p99, base_p99 = cost["loop_delay_p99_ms"], _loop_delay(base_figures)[1]
    cost["loop_delay_delta_p99_ms"] = (None if untraced or p99 is None or base_p99 is None
                                       else round(p99 - base_p99, 4))
    gil_p99, base_gil_p99 = cost["gil_wait_p99_ms"], gil_wait(base)[1]
    cost["gil_wait_delta_p99_ms"] = (None if untraced or gil_p99 is None or base_gil_p99 is None
                                     else round(gil_p99 - base_gil_p99, 4))
    cost.update(saturation(figures, base_figures) if not untraced else
                {"saturated": None, "saturation_detail": None})
    return cost


def _loop_delay(figures: dict) -> tuple[float | None, float | None]:
    """(p50, p99) of the run's dispatch lag in ms: the loop delay every call around its work saw."""
    lag = figures.get("dispatch_lag_ms") or {}
    return lag.get("p50"), lag.get("p99")


def gil_wait(result: WorkerResult) -> tuple[float | None, float | None]:
    """(p50, p99) of the sync client's GIL wait in ms: how late the worker's probe thread woke from
    its 1 ms sleeps. (None, None): not measured, as on the async client (no `gil_wait` samples)."""
    data = result.histograms.get("gil_wait")
    waits = Recorder.decode(data).summary_ms() if data else {}
    return waits.get("p50"), waits.get("p99")


def saturation(summary: dict, base_summary: dict) -> dict:
    """A tracer arm whose worker passed the CPU limit while its baseline's did not: the tracer
    saturated the generator. A cost of the tracer (graded), not an invalid run."""
    cpu_limit = summary["validity_limits"]["max_worker_cpu_percent"]
    mine, base = summary["cpu_percent"], base_summary["cpu_percent"]
    saturated = mine > cpu_limit >= base
    detail = (f"worker CPU {mine:.1f}% over {cpu_limit:g}% while the baseline's was {base:.1f}%"
              if saturated else None)
    return {"saturated": saturated, "saturation_detail": detail}


def pairing_units(baseline: WorkerResult, arm: WorkerResult) -> list[Unit] | None:
    """The arm's blocks as the overhead CI's units, each with the pair of processes that ran it."""
    base_replica = {block["index"]: block.get("replica", 0) for block in baseline.blocks}
    units = [Unit(block["first_op"], block["last_op"], (block.get("replica", 0), base_replica.get(block["index"], 0)))
             for block in arm.blocks if block.get("first_op") is not None]
    return units if len(units) >= 2 else None


def histograms(result: WorkerResult) -> dict[str, Recorder]:
    return {name: Recorder.decode(data) for name, data in result.histograms.items()}


def schedule_rate(result: WorkerResult) -> float | None:
    """The plan's own rate, (n − 1) / (last offset − first offset), summed over the blocks.

    Each block starts on a fresh clock, so the gaps between blocks belong to no one's rate.
    """
    blocks = [b for b in result.blocks if b.get("planned") and b["planned"] > 1 and b["plan_span_ns"]]
    if blocks:
        return sum(b["planned"] - 1 for b in blocks) * NS / sum(b["plan_span_ns"] for b in blocks)
    first, last, planned = result.offsets_first_ns, result.offsets_last_ns, result.operations_planned
    if first is None or last is None or planned < 2 or last == first:
        return None
    return (planned - 1) * NS / (last - first)


def achieved_rate(result: WorkerResult) -> float | None:
    """Sends per second over the measured phase: (sent − 1) / (last send − first send), per block."""
    blocks = [b for b in result.blocks if b["sent"] > 1 and b["last_sent_ns"] > b["first_sent_ns"]]
    if blocks:
        return sum(b["sent"] - 1 for b in blocks) * NS / sum(b["last_sent_ns"] - b["first_sent_ns"] for b in blocks)
    sent = result.operations_sent
    span = result.last_sent_ns - result.first_sent_ns
    if sent < 2 or span <= 0:
        return None
    return (sent - 1) * NS / span


def validity_limits(run: dict, validity: Validity) -> dict:
    """Each [validity] limit as it applies to one run: the rate floor and the lag ceiling follow its schedule's rate.

    A closed-loop run has no schedule rate, so neither rate nor lag is judged (None).
    """
    target = run["target_rate_rps"] if run["load_kind"] in OPEN_LOOP_KINDS else None
    lag_ms = validity.max_dispatch_lag_ms(target)
    return {
        "min_rate_rps": None if not target else _round(validity.min_rate_ratio * target),
        "max_worker_cpu_percent": validity.max_worker_cpu_percent,
        "max_dispatch_lag_p99_ms": _round(lag_ms),
    }


def check_validity(run: dict, validity: Validity, rules: tuple[str, ...] = SCHEDULE_RULES + SATURATION_RULES
                   ) -> list[Violation]:
    """DESIGN.md's validity rules named in `rules`, on a run's summary figures; each failure with its measured value."""
    violations: list[Violation] = []
    limits = validity_limits(run, validity)
    target, achieved = run["target_rate_rps"], run["achieved_rate_rps"]
    if "send_rate" in rules and limits["min_rate_rps"] is not None and achieved is not None \
            and achieved < limits["min_rate_rps"]:
        violations.append(Violation("send_rate", f"achieved send rate {achieved:.1f}/s is under "
                                    f"{validity.min_rate_ratio * 100:g}% of the schedule's {target:.1f}/s"))
    if "unsent_operations" in rules:
        if run["shed"]:
            violations.append(Violation("unsent_operations", f"{run['shed']} operations shed at the in-flight cap"))
        elif run["operations_unsent"] > 0:
            violations.append(Violation("unsent_operations", f"{run['operations_unsent']} of "
                                        f"{run['operations_planned']} scheduled operations were never sent"))
    if "worker_cpu" in rules and run["cpu_percent"] > validity.max_worker_cpu_percent:
        violations.append(Violation("worker_cpu", f"worker CPU {run['cpu_percent']:.1f}% exceeds "
                                                  f"{validity.max_worker_cpu_percent:g}%"))
    p99, limit_ms = run["dispatch_lag_ms"]["p99"], limits["max_dispatch_lag_p99_ms"]
    if "dispatch_lag" in rules and limit_ms is not None and p99 is not None and p99 > limit_ms:
        violations.append(Violation(
            "dispatch_lag",
            f"dispatch-lag p99 {p99:.3f} ms exceeds {limit_ms:.3f} ms (max of {validity.max_lag_floor_ms:g} ms and "
            f"{validity.max_lag_share_of_interval * 100:g}% of the {1000.0 / target:.3f} ms mean interval)",
        ))
    return violations


def summarize_all(results: list[WorkerResult], validity: Validity) -> list[dict]:
    """Every run's complete summary, its costs against its baseline included.

    The saturation rules are judged on the arms without a tracer: whether the generator kept
    up is read off the baseline arms of the same provider and mode, since a tracer's CPU and
    loop delay are its cost, measured and graded, not the generator failing. A mode with no
    baseline arm has nothing else to read, so there the rules judge every arm. Each arm's
    baseline is the run of the same provider and mode labelled as its `paired_with` says:
    "baseline", or "baseline@<arm>" for an arm whose environment has SDKs of its own.
    """
    with_baseline = {(r.provider, r.mode) for r in results if is_baseline(r.arm)}
    measured = [(r, run_figures(r, validity, saturation_judged=is_baseline(r.arm)
                                or (r.provider, r.mode) not in with_baseline)) for r in results]
    baselines = {(r.provider, r.mode, r.arm): (r, figures) for r, figures in measured if is_baseline(r.arm)}
    return [{**figures, **costs((r, figures), baselines.get((r.provider, r.mode, r.paired_with)))}
            for r, figures in measured]


def summarize(result: WorkerResult, validity: Validity = Validity(), saturation_judged: bool = True) -> dict:
    """One run's complete summary on its own: no baseline to compare with, so its costs are unmeasured."""
    figures = run_figures(result, validity, saturation_judged)
    return {**figures, **costs((result, figures), None)}


def run_figures(result: WorkerResult, validity: Validity = Validity(), saturation_judged: bool = True) -> dict:
    """What one run measured, the front of its exported `runs` entry (costs follow, from `costs`);
    `saturation_judged`: whether worker CPU and dispatch lag can make it invalid (summarize_all decides, per arm)."""
    hist = histograms(result)
    completed = result.operations_completed
    # Scheduled operations never sent: every open-loop plan, and a closed loop given a count, is fixed up front.
    fixed = result.load_kind in OPEN_LOOP_KINDS or result.operations_fixed
    summary = {
        "provider": result.provider,
        "arm": result.arm,
        "paired_with": result.paired_with,  # the baseline its costs are paired against; None: a baseline
        "tracer_version": result.tracer_version,  # the arm's package as the worker imported it
        "mode": result.mode,
        "load_kind": result.load_kind,
        "stream": result.stream,
        "client": result.client,
        "model": result.model,
        "valid": None,  # set below, from the figures (check_validity)
        "invalid_reasons": [],
        "validity_limits": None,
        "interrupted": result.interrupted,
        "operations_planned": result.operations_planned,
        "operations_sent": result.operations_sent,
        "operations_unsent": max(0, result.operations_planned - result.operations_sent) if fixed else 0,
        "operations_completed": completed,
        "operations_ok": result.operations_ok,
        "success_rate_percent": round(100.0 * result.operations_ok / completed, 3) if completed else None,
        "shed": result.shed,
        "attempts": result.attempts,
        "warmup_operations": result.warmup_operations,
        "peak_in_flight": result.peak_in_flight,
        "pool_size": result.pool_size,
        # The sync client's OS threads per worker (None: async or raw); how they were counted is the
        # plan's, added by with_thread_bases.
        "threads": result.threads,
        "threads_basis": None,
        "workers": result.workers,
        "rounds": len(result.blocks) or None,
        "blocks": result.blocks,  # each block's plan and send window (perf_counter ns)
        "target_rate_rps": _round(schedule_rate(result)),
        "achieved_rate_rps": _round(achieved_rate(result)),
        "achieved_rate_ci95_rps": _round_pair(rate_ci(result.blocks)),
        "output_tokens": result.output_tokens,
        "cpu_percent": result.cpu_percent,
        "cpu_percent_by_worker": result.cpu_percent_by_worker,
        "cpu_per_operation_us": (round(result.cpu_seconds_measured * 1e6 / completed, 1)
                                 if completed and result.cpu_seconds_measured is not None else None),
        "errors": result.errors,
        "error_examples": result.error_examples,
        "export_endpoint": result.export_endpoint,  # where the spans went; None: untraced
    }
    for key, name in SUMMARY_HISTOGRAMS.items():
        summary[key] = hist[name].summary_ms()
    violations = check_validity(summary, validity, SCHEDULE_RULES + (SATURATION_RULES if saturation_judged else ()))
    summary["valid"] = not violations
    summary["invalid_reasons"] = [{"rule": v.rule, "detail": v.detail} for v in violations]
    summary["validity_limits"] = {"saturation_judged": saturation_judged, **validity_limits(summary, validity)}
    summary.update(span_figures(result))
    summary.update(memory_figures(result))
    # The calibration arm's known answer (held time per call), None for other arms.
    summary["calibration"] = held_figures(result.calibration)
    summary["histograms"] = dict(result.histograms)
    if result.spans:
        summary["histograms"]["export_latency"] = result.spans["export_latency"]
    return summary


def with_thread_bases(runs: list[dict], bases: dict[tuple[str, str], str]) -> list[dict]:
    """The rows with how their sync threads were counted (plan.thread_bases: (provider, mode) → sentence)."""
    for run in runs:
        run["threads_basis"] = bases.get((run["provider"], run["mode"]))
    return runs


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _round_pair(pair: list[float] | None) -> list[float] | None:
    return None if pair is None else [round(pair[0], 3), round(pair[1], 3)]
