"""Worker results → figures: percentile summaries, achieved rate, and run validity.

Computed once, after the run (vegeta's `Close()`): nothing here reaches back into the
engine. A run is invalid when the generator did not deliver the load asked for — the
rules are DESIGN.md's, their limits the profile's [validity], and each failing rule is
named with its measured value.
"""

from __future__ import annotations

from dataclasses import dataclass

from loadgen.histograms import Recorder
from loadgen.known_answer import held_figures, merge_held
from loadgen.memory import memory_cost
from loadgen.overhead import Unit, latencies, memory_figures, merge_latencies, paired_overhead, paired_part
from loadgen.limits import Validity
from loadgen.profile import BASELINE_LABELS, OPEN_LOOP_KINDS
from loadgen.runner import BY_OP

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


_SUMMED = ("operations_planned", "operations_sent", "operations_completed", "operations_ok", "shed", "attempts",
           "output_tokens", "warmup_operations", "warmup_errors", "peak_in_flight")


def merge_shards(shards: list[dict]) -> dict:
    """One result from the workers that ran one provider/arm's schedule.

    The workers are K shards (each runs every K-th op_id of a block) times R replicas (each
    runs some of the blocks). Counters add up, histograms merge, the send window spans all
    workers, and the CPU figure is the busiest worker's, since the validity rule is about any
    one worker. Every replica of a shard plans the same share of the schedule, so the plan
    is counted once per shard.
    """
    if len(shards) == 1:
        return shards[0]
    shards = sorted(shards, key=lambda r: (r.get("replica", 0), r["shard"]))
    merged = dict(shards[0])
    for key in _SUMMED:
        merged[key] = sum(r[key] for r in shards)
    merged["operations_planned"] = sum({r["shard"]: r["operations_planned"] for r in shards}.values())
    merged["errors"] = {}
    merged["error_examples"] = {}
    for r in shards:
        for name, count in r["errors"].items():
            merged["errors"][name] = merged["errors"].get(name, 0) + count
        for name, text in r["error_examples"].items():
            merged["error_examples"].setdefault(name, text)
    sent = [r for r in shards if r["first_sent_ns"]]
    merged["first_sent_ns"] = min((r["first_sent_ns"] for r in sent), default=0)
    merged["last_sent_ns"] = max((r["last_sent_ns"] for r in sent), default=0)
    merged["last_done_ns"] = max(r["last_done_ns"] for r in shards)
    merged["interrupted"] = any(r["interrupted"] for r in shards)
    merged["cpu_percent"] = max(r["cpu_percent"] for r in shards)
    merged["cpu_percent_by_worker"] = [r["cpu_percent"] for r in shards]
    merged["cpu_seconds_total"] = round(sum(r["cpu_seconds_total"] for r in shards), 3)
    merged["cpu_seconds_measured"] = round(sum(r.get("cpu_seconds_measured", 0.0) for r in shards), 4)
    merged["rss_samples_by_worker"] = [r["rss_samples"] for r in shards]
    merged["measure_start_s_by_worker"] = [r.get("measure_start_s") for r in shards]
    merged["rss_retained_by_worker"] = [r.get("rss_retained") or [] for r in shards]
    histos = {name: Recorder.decode(data) for name, data in shards[0]["histograms"].items()}
    for r in shards[1:]:
        for name, data in r["histograms"].items():
            histos[name].add_encoded(data)
    merged["histograms"] = {name: rec.encode() for name, rec in histos.items()}
    merged["shards"] = len(shards)
    merged["spans"] = _merge_spans([r.get("spans") for r in shards])
    merged["soak_by_worker"] = [r["soak"] for r in shards if r.get("soak")]
    merged["blocks"] = _merge_blocks([r.get("blocks") or [] for r in shards])
    merged["calibration"] = merge_held([r.get("calibration") for r in shards])
    for name in BY_OP:
        merged[name] = merge_latencies([latencies(r.get(name)) for r in shards]).tobytes().hex()
    return merged


def _merge_blocks(per_shard: list[list[dict]]) -> list[dict]:
    """Block by block: the plan is the block's, sends add up, the send window spans all shards."""
    merged: dict[int, dict] = {}
    for shard_blocks in per_shard:
        for block in shard_blocks:
            into = merged.setdefault(block["index"], {**block, "sent": 0, "shed": 0, "first_sent_ns": 0,
                                                      "last_sent_ns": 0})
            into["sent"] += block["sent"]
            into["shed"] += block["shed"]
            if block["first_sent_ns"]:
                into["first_sent_ns"] = min(into["first_sent_ns"] or block["first_sent_ns"], block["first_sent_ns"])
                into["last_sent_ns"] = max(into["last_sent_ns"], block["last_sent_ns"])
            into["stopped"] = into.get("stopped", False) or block.get("stopped", False)
            if block.get("first_op") is not None:
                into["first_op"] = min(into["first_op"], block["first_op"])
                into["last_op"] = max(into["last_op"], block["last_op"])
    return [merged[index] for index in sorted(merged)]


def _merge_spans(snapshots: list[dict | None]) -> dict | None:
    present = [s for s in snapshots if s]
    if not present:
        return None
    merged = {key: sum(s[key] for s in present) for key in ("started", "ended", "exported", "in_queue", "export_calls")}
    merged["dropped"] = {reason: sum(s["dropped"][reason] for s in present) for reason in present[0]["dropped"]}
    latency = Recorder.decode(present[0]["export_latency"])
    for s in present[1:]:
        latency.add_encoded(s["export_latency"])
    merged["export_latency"] = latency.encode()
    return merged


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


def span_figures(result: dict) -> dict:
    """The tracing figures of one run: conservation, export latency, coverage, completeness.

    Figures that need the collector's side are None (shown as unmeasured) when the spans
    went to a receiver that cannot report them.
    """
    spans = result.get("spans")
    if not spans:
        # The baseline traces nothing: the keys are there, with nothing in them.
        return dict.fromkeys(("spans", "dropped_span_rate_percent", "export_latency_ms", "trace_coverage_percent",
                              "attribute_completeness_percent", "missing_attributes", "export_bytes_per_operation"))
    collector = result.get("collector")
    received = collector["spans_received"] if collector else None
    duplicates = collector["duplicates"] if collector else None
    dropped_total = sum(spans["dropped"].values())
    operations = result["operations_sent"]
    # Every traced call — warm-up and priming included — sent spans and bytes.
    traced_calls = operations + result.get("warmup_operations", 0) + result.get("shards", 1)
    figures = {
        "spans": reconcile(spans, received, duplicates),
        "dropped_span_rate_percent": _percent(dropped_total, spans["exported"] + dropped_total),
        "export_latency_ms": Recorder.decode(spans["export_latency"]).summary_ms(),
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


def _percent(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 3) if whole else None


# The parts of the timeline whose Δ is paired like the latency's (key suffix → per-op array).
_PARTS = {"before_wire": "before_wire_by_op", "after_response": "after_response_by_op", "loop_delay": "lag_by_op"}
_NO_OVERHEAD = ("overhead_latency_ms", "overhead_latency_ci95_ms", "overhead_latency_percent", "overhead_pairs",
                "overhead_ci_method", "overhead_ci_df", "cpu_per_operation_delta_us", "loop_delay_delta_p99_ms",
                "saturated", "saturation_detail",
                *(f"overhead_{part}_{suffix}" for part in _PARTS for suffix in ("ms", "ci95_ms")))


def add_overheads(results: list[dict], summaries: list[dict]) -> None:
    """Each arm's cost against the baseline run of the same provider and mode.

    Latency and each part of its timeline are paired by op_id, with the CI over blocks
    (overhead.paired_overhead). Loop delay is the arm's dispatch lag: what its synchronous
    work does to the calls around it, a cost, never a reason to call the run invalid.
    """
    baselines = {(r["provider"], r["mode"]): (r, s) for r, s in zip(results, summaries) if r["arm"] == "baseline"}
    for result, summary in zip(results, summaries):
        lag = summary.get("dispatch_lag_ms") or {}
        summary["loop_delay_p50_ms"], summary["loop_delay_p99_ms"] = lag.get("p50"), lag.get("p99")
        baseline, base_summary = baselines.get((result["provider"], result["mode"]), (None, None))
        if result["arm"] == "baseline" or baseline is None:
            summary.update(dict.fromkeys(_NO_OVERHEAD))
            summary.update(memory_cost(None, result))
            continue
        units = pairing_units(baseline, result)
        summary.update(paired_overhead(latencies(baseline.get("latency_by_op")), latencies(result.get("latency_by_op")),
                                       units))
        for part, by_op in _PARTS.items():
            summary.update(paired_part(part, latencies(baseline.get(by_op)), latencies(result.get(by_op)), units))
        summary.update(memory_cost(baseline, result))
        mine, base = summary["cpu_per_operation_us"], base_summary["cpu_per_operation_us"]
        summary["cpu_per_operation_delta_us"] = None if mine is None or base is None else round(mine - base, 1)
        untraced = result["arm"] in BASELINE_LABELS
        p99, base_p99 = summary["loop_delay_p99_ms"], base_summary["loop_delay_p99_ms"]
        summary["loop_delay_delta_p99_ms"] = (None if untraced or p99 is None or base_p99 is None
                                              else round(p99 - base_p99, 4))
        summary.update(saturation(summary, base_summary) if not untraced else
                       {"saturated": None, "saturation_detail": None})


def saturation(summary: dict, base_summary: dict) -> dict:
    """A tracer arm whose worker passed the CPU limit while its baseline's did not: the tracer
    saturated the generator. A cost of the tracer (graded), not an invalid run."""
    cpu_limit = summary["validity_limits"]["max_worker_cpu_percent"]
    mine, base = summary["cpu_percent"], base_summary["cpu_percent"]
    saturated = mine > cpu_limit >= base
    detail = (f"worker CPU {mine:.1f}% over {cpu_limit:g}% while the baseline's was {base:.1f}%"
              if saturated else None)
    return {"saturated": saturated, "saturation_detail": detail}


def pairing_units(baseline: dict, arm: dict) -> list[Unit] | None:
    """The arm's blocks as the overhead CI's units, each with the pair of processes that ran it."""
    base_replica = {block["index"]: block.get("replica", 0) for block in baseline.get("blocks") or []}
    units = [Unit(block["first_op"], block["last_op"], (block.get("replica", 0), base_replica.get(block["index"], 0)))
             for block in arm.get("blocks") or [] if block.get("first_op") is not None]
    return units if len(units) >= 2 else None


def histograms(result: dict) -> dict[str, Recorder]:
    return {name: Recorder.decode(data) for name, data in result["histograms"].items()}


def schedule_rate(result: dict) -> float | None:
    """The plan's own rate, (n − 1) / (last offset − first offset), summed over the blocks.

    Each block starts on a fresh clock, so the gaps between blocks belong to no one's rate.
    """
    blocks = [b for b in result.get("blocks") or [] if b.get("planned") and b["planned"] > 1 and b["plan_span_ns"]]
    if blocks:
        return sum(b["planned"] - 1 for b in blocks) * NS / sum(b["plan_span_ns"] for b in blocks)
    first, last, planned = result.get("offsets_first_ns"), result.get("offsets_last_ns"), result["operations_planned"]
    if first is None or last is None or planned < 2 or last == first:
        return None
    return (planned - 1) * NS / (last - first)


def achieved_rate(result: dict) -> float | None:
    """Sends per second over the measured phase: (sent − 1) / (last send − first send), per block."""
    blocks = [b for b in result.get("blocks") or [] if b["sent"] > 1 and b["last_sent_ns"] > b["first_sent_ns"]]
    if blocks:
        return sum(b["sent"] - 1 for b in blocks) * NS / sum(b["last_sent_ns"] - b["first_sent_ns"] for b in blocks)
    sent = result["operations_sent"]
    span = result["last_sent_ns"] - result["first_sent_ns"]
    if sent < 2 or span <= 0:
        return None
    return (sent - 1) * NS / span


def validity_limits(run: dict, validity: Validity) -> dict:
    """Each [validity] limit as it applies to one run: the rate floor and the lag ceiling follow its schedule's rate.

    A closed-loop run has no schedule rate, so neither rate nor lag is judged (None).
    """
    target = run["target_rate_rps"] if run["load_kind"] in OPEN_LOOP_KINDS else None
    lag_ms = None if not target else max(validity.max_lag_floor_ms,
                                         validity.max_lag_share_of_interval * 1000.0 / target)
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


def summarize_all(results: list[dict], validity: Validity) -> list[dict]:
    """Every run's summary, the saturation rules judged on the arms without a tracer.

    Whether the generator kept up is read off the baseline arms of the same provider and
    mode: a tracer's CPU and loop delay are its cost, measured and graded, not the
    generator failing. A mode with no baseline arm has nothing else to read, so there the
    rules judge every arm.
    """
    with_baseline = {(r["provider"], r["mode"]) for r in results if r["arm"] in BASELINE_LABELS}
    return [summarize(r, validity, saturation_judged=r["arm"] in BASELINE_LABELS
                      or (r["provider"], r["mode"]) not in with_baseline) for r in results]


def summarize(result: dict, validity: Validity = Validity(), saturation_judged: bool = True) -> dict:
    """One entry of the exported `runs` list; `saturation_judged`: whether worker CPU and dispatch lag can
    make it invalid (summarize_all decides, per arm)."""
    hist = histograms(result)
    completed = result["operations_completed"]
    # Scheduled operations never sent: every open-loop plan, and a closed loop given a count, is fixed up front.
    fixed = result["load_kind"] in OPEN_LOOP_KINDS or result.get("operations_fixed")
    summary = {
        "provider": result["provider"],
        "arm": result["arm"],
        "mode": result["mode"],
        "load_kind": result["load_kind"],
        "stream": result["stream"],
        "model": result["model"],
        "valid": None,  # set below, from the figures (check_validity)
        "invalid_reasons": [],
        "validity_limits": None,
        "interrupted": result["interrupted"],
        "operations_planned": result["operations_planned"],
        "operations_sent": result["operations_sent"],
        "operations_unsent": max(0, result["operations_planned"] - result["operations_sent"]) if fixed else 0,
        "operations_completed": completed,
        "operations_ok": result["operations_ok"],
        "success_rate_percent": round(100.0 * result["operations_ok"] / completed, 3) if completed else None,
        "shed": result["shed"],
        "attempts": result["attempts"],
        "warmup_operations": result["warmup_operations"],
        "peak_in_flight": result["peak_in_flight"],
        "pool_size": result["pool_size"],
        "workers": result.get("shards", 1),
        "rounds": len(result.get("blocks") or []) or None,
        "blocks": result.get("blocks") or [],  # each block's plan and send window (perf_counter ns)
        "target_rate_rps": _round(schedule_rate(result)),
        "achieved_rate_rps": _round(achieved_rate(result)),
        "output_tokens": result["output_tokens"],
        "cpu_percent": result["cpu_percent"],
        "cpu_percent_by_worker": result.get("cpu_percent_by_worker", [result["cpu_percent"]]),
        "cpu_per_operation_us": (round(result["cpu_seconds_measured"] * 1e6 / completed, 1)
                                 if completed and result.get("cpu_seconds_measured") is not None else None),
        "errors": result["errors"],
        "error_examples": result["error_examples"],
        "export_endpoint": result.get("export_endpoint"),  # where the spans went; None: untraced
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
    summary["calibration"] = held_figures(result.get("calibration"))
    summary["histograms"] = {name: data for name, data in result["histograms"].items()}
    return summary


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
