"""Worker results → figures: percentile summaries, achieved rate, and run validity.

Computed once, after the run (vegeta's `Close()`): nothing here reaches back into the
engine. A run is invalid when the generator, not the target, shaped the numbers — the
rules are DESIGN.md's, and each failing rule is named with its measured value.
"""

from __future__ import annotations

from dataclasses import dataclass

from loadgen.histograms import Recorder
from loadgen.known_answer import held_figures, merge_held
from loadgen.memory import memory_cost
from loadgen.overhead import latencies, memory_figures, merge_latencies, paired_overhead
from loadgen.runner import BY_OP

NS = 1_000_000_000
MIN_RATE_RATIO = 0.99
MAX_LAG_FLOOR_MS = 1.0
MAX_LAG_SHARE_OF_INTERVAL = 0.10
MAX_WORKER_CPU_PERCENT = 90.0

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
    """One result from the K workers that ran one provider/arm's schedule together.

    Counters add up, histograms merge, the send window spans all workers, and the CPU
    figure is the busiest worker's, since the validity rule is about any one worker.
    """
    if len(shards) == 1:
        return shards[0]
    shards = sorted(shards, key=lambda r: r["shard"])
    merged = dict(shards[0])
    for key in _SUMMED:
        merged[key] = sum(r[key] for r in shards)
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


def add_overheads(results: list[dict], summaries: list[dict]) -> None:
    """Each traced run's overhead against the baseline run of the same provider and mode."""
    baselines = {(r["provider"], r["mode"]): r for r in results if r["arm"] == "baseline"}
    for result, summary in zip(results, summaries):
        baseline = baselines.get((result["provider"], result["mode"]))
        if result["arm"] == "baseline" or baseline is None:
            summary.update(dict.fromkeys(("overhead_latency_ms", "overhead_latency_ci95_ms", "overhead_latency_percent",
                                          "overhead_pairs", "cpu_per_operation_delta_us")))
            summary.update(memory_cost(None, result))
            continue
        summary.update(paired_overhead(latencies(baseline.get("latency_by_op")), latencies(result.get("latency_by_op"))))
        summary.update(memory_cost(baseline, result))
        base_summary = next(s for r, s in zip(results, summaries) if r is baseline)
        mine, base = summary["cpu_per_operation_us"], base_summary["cpu_per_operation_us"]
        summary["cpu_per_operation_delta_us"] = None if mine is None or base is None else round(mine - base, 1)


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


def check_validity(result: dict, hist: dict[str, Recorder]) -> list[Violation]:
    """DESIGN.md's validity rules, each failure named with the measured value."""
    violations: list[Violation] = []
    open_loop = result["load_kind"] in ("constant", "poisson", "ramp")
    planned, sent, shed = result["operations_planned"], result["operations_sent"], result["shed"]
    if open_loop:
        target = schedule_rate(result)
        achieved = achieved_rate(result)
        if target and achieved is not None and achieved < MIN_RATE_RATIO * target:
            violations.append(Violation(
                "send_rate",
                f"achieved send rate {achieved:.1f}/s is under 99% of the schedule's {target:.1f}/s",
            ))
        if target:
            mean_interval_ms = 1000.0 / target
            limit_ms = max(MAX_LAG_FLOOR_MS, MAX_LAG_SHARE_OF_INTERVAL * mean_interval_ms)
            lag = hist["dispatch_lag"]
            if lag.count:
                p99 = lag.histogram.get_value_at_percentile(99.0) / 1000
                if p99 > limit_ms:
                    violations.append(Violation(
                        "dispatch_lag",
                        f"dispatch-lag p99 {p99:.3f} ms exceeds {limit_ms:.3f} ms "
                        f"(max of 1 ms and 10% of the {mean_interval_ms:.3f} ms mean interval)",
                    ))
    if result["cpu_percent"] > MAX_WORKER_CPU_PERCENT:
        violations.append(Violation(
            "worker_cpu", f"worker CPU {result['cpu_percent']:.1f}% exceeds {MAX_WORKER_CPU_PERCENT:.0f}%"
        ))
    unsent = (planned - sent) if (open_loop or result.get("operations_fixed")) else 0
    if shed:
        violations.append(Violation("unsent_operations", f"{shed} operations shed at the in-flight cap"))
    elif unsent > 0:
        violations.append(Violation("unsent_operations", f"{unsent} of {planned} scheduled operations were never sent"))
    return violations


def summarize(result: dict) -> dict:
    """One entry of the exported `runs` list."""
    hist = histograms(result)
    violations = check_validity(result, hist)
    completed = result["operations_completed"]
    summary = {
        "provider": result["provider"],
        "arm": result["arm"],
        "mode": result["mode"],
        "load_kind": result["load_kind"],
        "stream": result["stream"],
        "model": result["model"],
        "valid": not violations,
        "invalid_reasons": [{"rule": v.rule, "detail": v.detail} for v in violations],
        "interrupted": result["interrupted"],
        "operations_planned": result["operations_planned"],
        "operations_sent": result["operations_sent"],
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
    summary.update(span_figures(result))
    summary.update(memory_figures(result))
    # The calibration arm's known answer (held time per call), None for other arms.
    summary["calibration"] = held_figures(result.get("calibration"))
    summary["histograms"] = {name: data for name, data in result["histograms"].items()}
    return summary


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
