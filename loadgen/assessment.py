"""The assessment: each finished run graded against the profile's thresholds, and advice from its figures.

Pure functions of the run summaries (metrics.summarize + add_overheads) — nothing here
reaches back into the engine. A figure that was not measured is `unmeasured`, never
guessed; a recommendation appears only when a measured figure calls for it, and quotes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from loadgen.profile import Limits, Thresholds

# check → its value in a run summary. The overhead checks compare an arm with its
# baseline, so a baseline run has none.
_VALUES = {
    "success_rate_percent": lambda run: run.get("success_rate_percent"),
    "latency_p95_ms": lambda run: (run.get("latency_ms") or {}).get("p95"),
    "memory_overhead_percent": lambda run: run.get("memory_overhead_percent"),
    "tracer_overhead_percent": lambda run: run.get("overhead_latency_percent"),
}
CHECKS = tuple(_VALUES)
_BASELINE_CHECKS = ("success_rate_percent", "latency_p95_ms")
_SEVERITY = ("pass", "warn", "fail")
# Validity rules that say the generator, not the target, shaped the numbers (metrics.check_validity).
_SATURATION_RULES = ("send_rate", "dispatch_lag", "worker_cpu", "unsent_operations")
_EXPORT_DROPS = {
    "export_failed": "the export calls to {where} failed",
    "rejected": "{where} rejected them (OTLP partial success)",
}


def grade(value: float | None, limits: Limits) -> str:
    """pass within the pass limit (inclusive), warn within the warn limit, fail beyond it."""
    if value is None:
        return "unmeasured"
    if limits.within(value, limits.pass_):
        return "pass"
    return "warn" if limits.within(value, limits.warn) else "fail"


def verdicts(runs: list[dict], thresholds: Thresholds) -> list[dict]:
    """One row per run and check: the measured value, both limits, and its grade."""
    rows = []
    for run in runs:
        for check in _BASELINE_CHECKS if run["arm"] == "baseline" else CHECKS:
            limits = getattr(thresholds, check)
            value = _VALUES[check](run)
            rows.append({**_key(run), "check": check, "value": value, "pass_limit": limits.pass_,
                         "warn_limit": limits.warn, "verdict": grade(value, limits)})
    return rows


def overall(rows: list[dict]) -> str:
    """The worst measured verdict; 'unmeasured' when nothing could be graded."""
    measured = [row["verdict"] for row in rows if row["verdict"] != "unmeasured"]
    return max(measured, key=_SEVERITY.index, default="unmeasured")


def recommendations(runs: list[dict], thresholds: Thresholds, profile_data: dict) -> list[dict]:
    """What to change or look at, per run, each derived from (and quoting) a measured figure."""
    tracing = profile_data.get("tracing") or {}
    found = []
    baselines = {(run["provider"], run["mode"]): run for run in runs if run["arm"] == "baseline"}
    for run in runs:
        advice = [
            *_saturation(run, baselines.get((run["provider"], run["mode"]))),
            *_errors(run, thresholds.success_rate_percent),
            *_latency(run, thresholds.latency_p95_ms),
            *_overhead(run, thresholds.tracer_overhead_percent),
            *_memory(run, thresholds.memory_overhead_percent),
            *_drops(run, tracing),
            *_fidelity(run),
        ]
        found += [{**_key(run), "kind": kind, "text": text} for kind, text in advice]
    return found


def configuration_summary(profile_data: dict, runs: list[dict], target: str) -> dict:
    """The run's setup in brief: as the profile asked for it, with the modes and worker counts that ran."""
    tracing = profile_data.get("tracing") or {}
    provider = profile_data.get("provider")
    providers = ["openai", "anthropic"] if provider == "both" else [provider] if provider else []
    models = profile_data.get("models") or {}
    return {
        "providers": providers,
        "models": {name: models.get(name) for name in providers},
        "target": target,
        "modes": _unique(run["mode"] for run in runs),
        "stream": profile_data.get("stream"),
        "duration_s": profile_data.get("duration"),
        "operations": profile_data.get("operations"),
        "warmup_operations": profile_data.get("warmup_operations"),
        "arms": tracing.get("arms", []),
        "workers": profile_data.get("workers"),
        "workers_used": sorted(set(run.get("workers", 1) for run in runs)),
        "seed": profile_data.get("seed"),
        "tracing": {key: tracing.get(key) for key in ("max_queue_size", "schedule_delay_ms", "max_export_batch_size",
                                                      "export_timeout_ms", "collector_url")},
    }


def format_overhead(run: dict, *, plus_minus: bool = False) -> str:
    """The mean Δ, its 95 % CI and % of the baseline mean: '+0.255 ms [+0.053, +0.458] (+0.14%)',
    or with plus_minus '+0.255 ± 0.203 (+0.14%)' (the t interval is symmetric about the mean)."""
    mean, ci, pct = run.get("overhead_latency_ms"), run.get("overhead_latency_ci95_ms"), run.get("overhead_latency_percent")
    if mean is None:
        return "unmeasured"
    spread = f" ± {(ci[1] - ci[0]) / 2:.3f}" if plus_minus else f" ms [{ci[0]:+.3f}, {ci[1]:+.3f}]"
    percent = "" if pct is None else f" ({pct:+.2f}%)"
    return f"{mean:+.3f}{spread}{percent}"


def _key(run: dict) -> dict:
    return {"provider": run["provider"], "arm": run["arm"], "mode": run["mode"]}


def _unique(values: Iterable) -> list:
    return list(dict.fromkeys(values))


def _saturation(run: dict, baseline: dict | None) -> Iterator[tuple[str, str]]:
    for reason in run.get("invalid_reasons", []):
        if reason["rule"] not in _SATURATION_RULES:
            continue
        if run is not baseline and baseline is not None and baseline["valid"] and reason["rule"] in ("dispatch_lag",
                                                                                                      "worker_cpu"):
            # The same generator kept the schedule without the tracer: the arm's own
            # synchronous work on the event loop made the sends late.
            lag, base_lag = run["dispatch_lag_ms"]["p99"], baseline["dispatch_lag_ms"]["p99"]
            cpu = run.get("cpu_per_operation_delta_us")
            cpu_text = "" if cpu is None else f"; it adds {cpu:+.0f} µs of CPU per operation"
            yield "tracer_blocks_loop", (
                f"invalid ({reason['rule']}): {reason['detail']}, while the baseline kept the schedule "
                f"(dispatch-lag p99 {lag:.2f} ms vs {base_lag:.2f} ms){cpu_text}. The tracer's synchronous work "
                f"delays the calls that follow it; that delay is in its overhead. Lower the rate or raise "
                f"`workers` (this run used {run.get('workers', 1)}) to measure it below saturation")
            continue
        yield "generator_saturated", (
                f"invalid ({reason['rule']}): {reason['detail']}. The generator, not the target, shaped this run: "
                f"lower the load ({run['mode']}) or raise `workers` (this run used {run.get('workers', 1)})")


def _errors(run: dict, limits: Limits) -> Iterator[tuple[str, str]]:
    rate = run.get("success_rate_percent")
    if rate is None or limits.within(rate, limits.pass_):
        return
    top = sorted(run.get("errors", {}).items(), key=lambda item: (-item[1], item[0]))[:3]
    listed = ", ".join(f"{name} {count}" for name, count in top)
    yield "errors", f"success rate {rate:.1f}% is under the pass limit {limits.pass_:g}%; top errors: {listed}"


def _latency(run: dict, limits: Limits) -> Iterator[tuple[str, str]]:
    p95 = _VALUES["latency_p95_ms"](run)
    if p95 is None or limits.within(p95, limits.pass_):
        return
    # From the intended start, so time lost before the send counts; the service time is the target's share.
    service = (run.get("service_time_ms") or {}).get("p95")
    service_text = "" if service is None else f" (service time p95 {service:.1f} ms)"
    yield "latency", f"latency p95 {p95:.1f} ms{service_text} is over the pass limit {limits.pass_:g} ms"


def _overhead(run: dict, limits: Limits) -> Iterator[tuple[str, str]]:
    pct = run.get("overhead_latency_percent")
    if pct is not None and not limits.within(pct, limits.pass_):
        yield "overhead", f"latency overhead {format_overhead(run)} is over the pass limit {limits.pass_:g}%"
    ci = run.get("overhead_latency_ci95_ms")
    if ci and ci[0] <= 0 <= ci[1]:
        yield "overhead_unresolved", (
            f"latency overhead {format_overhead(run)} is not distinguishable from zero at this sample size "
            f"({run.get('overhead_pairs')} pairs); more operations narrow the interval")


def _memory(run: dict, limits: Limits) -> Iterator[tuple[str, str]]:
    pct = run.get("memory_overhead_percent")
    if pct is not None and not limits.within(pct, limits.pass_):
        yield "memory", (f"memory overhead {run['memory_overhead_mib']:+.1f} MiB ({pct:+.1f}%) of steady-state RSS "
                         f"is over the pass limit {limits.pass_:g}%")


def _drops(run: dict, tracing: dict) -> Iterator[tuple[str, str]]:
    spans = run.get("spans")
    if not spans:
        return
    dropped = spans["dropped"]
    # The same denominator as dropped_span_rate_percent: spans that reached an outcome.
    total = spans["exported"] + sum(dropped.values())
    count = dropped.get("queue_full", 0)
    if count:
        yield "queue_full", (
            f"{count} spans dropped at a full queue ({100 * count / total:.2f}% of spans): raise "
            f"tracing.max_queue_size{_now(tracing, 'max_queue_size')} or lower "
            f"tracing.schedule_delay_ms{_now(tracing, 'schedule_delay_ms', ' ms')}")
    where = tracing.get("collector_url") or "the embedded collector"
    for reason, cause in _EXPORT_DROPS.items():
        count = dropped.get(reason, 0)
        if count:
            yield reason, (f"{count} spans dropped ({reason}, {100 * count / total:.2f}% of spans): "
                           f"{cause.format(where=where)}; check the collector")


def _fidelity(run: dict) -> Iterator[tuple[str, str]]:
    coverage = run.get("trace_coverage_percent")
    if coverage is not None and coverage < 100:
        yield "coverage", (f"trace coverage {coverage:.1f}%: {100 - coverage:.1f}% of operations did not reach the "
                           f"collector as a root span with its LLM span in one trace")
    missing = run.get("missing_attributes")
    if missing:
        listed = ", ".join(f"{name} ({count} spans)" for name, count in missing.items())
        completeness = run.get("attribute_completeness_percent")
        share = "" if completeness is None else f" (attribute completeness {completeness:.1f}%)"
        yield "missing_attributes", f"LLM spans miss required attributes{share}: {listed}"


def _now(settings: dict, key: str, unit: str = "") -> str:
    return f" (now {settings[key]}{unit})" if key in settings else ""
