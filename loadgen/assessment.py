"""The assessment: each finished run graded against the profile's thresholds, and advice from its figures.

Pure functions of the run summaries (metrics.summarize_all) — nothing here
reaches back into the engine. A figure that was not measured is `unmeasured`, never
guessed; a recommendation appears only when a measured figure calls for it, and quotes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from loadgen.limits import Limits, Thresholds
from loadgen.arms import is_baseline

# check → its value in a run summary, in the order the assessment shows them: the two every
# run gets, then what a tracer costs, how faithful its data is, how reliable its pipeline is.
_VALUES = {
    "success_rate_percent": lambda run: run.get("success_rate_percent"),
    "latency_p95_ms": lambda run: (run.get("latency_ms") or {}).get("p95"),
    "tracer_overhead_percent": lambda run: run.get("overhead_latency_percent"),
    # Graded on the Δ vs the baseline: the generator's own lag is the baseline's too.
    "loop_delay_p99_ms": lambda run: run.get("loop_delay_delta_p99_ms"),
    "saturated": lambda run: run.get("saturated"),
    "memory_overhead_percent": lambda run: run.get("memory_overhead_percent"),
    "memory_overhead_mib": lambda run: _first(run.get("memory_fixed_mib"), run.get("memory_overhead_mib")),
    "trace_coverage_percent": lambda run: run.get("trace_coverage_percent"),
    "attribute_completeness_percent": lambda run: run.get("attribute_completeness_percent"),
    "dropped_span_rate_percent": lambda run: run.get("dropped_span_rate_percent"),
    "export_latency_p95_ms": lambda run: (run.get("export_latency_ms") or {}).get("p95"),
}
CHECKS = tuple(_VALUES)
_BASELINE_CHECKS = ("success_rate_percent", "latency_p95_ms")
# Checks of the spans an arm exported: unmeasured for an arm that exports none (calibration).
_SPAN_CHECKS = ("trace_coverage_percent", "attribute_completeness_percent", "dropped_span_rate_percent",
                "export_latency_p95_ms")
_SEVERITY = ("pass", "warn", "fail")
# The overhead's parts along one call's timeline: (run key, words); each key has a `_ci95_ms` twin.
OVERHEAD_SPLIT = (("overhead_before_wire_ms", "before wire"), ("overhead_after_response_ms", "after response"),
                  ("overhead_loop_delay_ms", "loop delay"))
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
    """One row per run and check: the measured value, both limits, and its grade.

    `saturated` has no limits: a tracer arm whose worker passed 90 % CPU while its
    baseline's did not fails it, whatever the other figures say.
    """
    rows = []
    for run in runs:
        for check in _BASELINE_CHECKS if is_baseline(run["arm"]) else CHECKS:
            value = None if check in _SPAN_CHECKS and not run.get("spans") else _VALUES[check](run)
            if check == "saturated":
                verdict = "unmeasured" if value is None else "fail" if value else "pass"
                rows.append({**_key(run), "check": check, "value": value, "pass_limit": None, "warn_limit": None,
                             "verdict": verdict})
                continue
            limits = getattr(thresholds, check)
            rows.append({**_key(run), "check": check, "value": value, "pass_limit": limits.pass_,
                         "warn_limit": limits.warn, "verdict": grade(value, limits)})
    return rows


def _beyond_pass(value: float | None, limits: Limits) -> bool:
    """A measured figure graded warn or fail: the figure calls for advice."""
    return grade(value, limits) in ("warn", "fail")


def overall(rows: list[dict]) -> str:
    """The worst measured verdict; 'unmeasured' when nothing could be graded."""
    measured = [row["verdict"] for row in rows if row["verdict"] != "unmeasured"]
    return max(measured, key=_SEVERITY.index, default="unmeasured")


def recommendations(runs: list[dict], thresholds: Thresholds, profile_data: dict) -> list[dict]:
    """What to change or look at, per run, each derived from (and quoting) a measured figure."""
    tracing = profile_data.get("tracing") or {}
    found = []
    for run in runs:
        advice = [
            *_saturation(run),
            *_errors(run, thresholds.success_rate_percent),
            *_latency(run, thresholds.latency_p95_ms),
            *_overhead(run, thresholds.tracer_overhead_percent),
            *_loop_delay(run, thresholds.loop_delay_p99_ms),
            *_saturated(run),
            *_memory(run, thresholds.memory_overhead_percent, thresholds.memory_overhead_mib),
            *_drops(run, tracing),
            *_export_latency(run, thresholds.export_latency_p95_ms, tracing),
            *_fidelity(run, thresholds.trace_coverage_percent),
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
        "client": profile_data.get("client", "async"),
        "clients": profile_data.get("clients"),
        # The sync client's OS threads per worker, as the profile asked and as its rows ran.
        "threads": profile_data.get("threads"),
        "threads_used": sorted(set(run["threads"] for run in runs if run.get("threads") is not None)),
        "arms_left_out": _arms_left_out(profile_data),
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


def _arms_left_out(profile_data: dict) -> list[dict]:
    """The arms named that the client could not run: with client 'raw', every arm but the plain baseline
    (the sync client, like the async one, runs every arm: a tracer instruments either SDK client)."""
    if profile_data.get("client") != "raw":
        return []
    labels = (profile_data.get("tracing") or {}).get("arms", [])
    return [{"arm": label, "reason": "client 'raw' makes no SDK call for a tracer to instrument; only the baseline runs"}
            for label in labels if label != "baseline"]


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


def _first(*values):
    return next((value for value in values if value is not None), None)


def _saturation(run: dict) -> Iterator[tuple[str, str]]:
    # The lag and CPU rules are judged on the arms without a tracer (metrics.check_validity):
    # the generator itself could not keep the schedule, so no arm's figures can be trusted.
    for reason in run.get("invalid_reasons", []):
        if reason["rule"] in _SATURATION_RULES:
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


def _loop_delay(run: dict, limits: Limits) -> Iterator[tuple[str, str]]:
    delta = run.get("loop_delay_delta_p99_ms")
    if not _beyond_pass(delta, limits):
        return
    p99 = run.get("loop_delay_p99_ms")
    figure = f"{delta:+.2f} ms"
    if p99 is not None:
        figure = f"{p99:.2f} ms, {figure} vs the baseline's {p99 - delta:.2f} ms"
    cpu = run.get("cpu_per_operation_delta_us")
    cpu_text = "" if cpu is None else f"; the tracer adds {cpu:+.0f} µs of CPU per operation"
    yield "loop_delay", (
        f"loop delay p99 {figure} is over the pass limit {limits.pass_:g} ms{cpu_text}{_split(run)}. The tracer's "
        f"synchronous work holds the event loop, so every call in the process starts late by it: a cost of the "
        f"tracer (in its overhead), not an invalid run")


def _split(run: dict) -> str:
    """Where the overhead lands, when the run measured it: '; of the overhead: before wire +0.410 ms, …'."""
    parts = [f"{words} {run[key]:+.3f} ms" for key, words in OVERHEAD_SPLIT if run.get(key) is not None]
    return "; of the overhead: " + ", ".join(parts) if parts else ""


def _saturated(run: dict) -> Iterator[tuple[str, str]]:
    if run.get("saturated") and not is_baseline(run["arm"]):
        detail = run.get("saturation_detail") or "its worker passed 90 % CPU while the baseline's did not"
        yield "saturated", (
            f"saturated: {detail}. With the tracer the worker has no CPU to spare, so calls queue behind each "
            f"other and every figure of this arm includes that queueing: lower the rate or raise `workers` (this "
            f"run used {run.get('workers', 1)}) to measure the tracer below saturation")


def _memory(run: dict, percent: Limits, mib: Limits) -> Iterator[tuple[str, str]]:
    pct, cost = run.get("memory_overhead_percent"), _VALUES["memory_overhead_mib"](run)
    over = [f"{limits.pass_:g}{unit}" for value, limits, unit in ((pct, percent, "%"), (cost, mib, " MiB"))
            if _beyond_pass(value, limits)]
    if not over:
        return
    steady = run.get("memory_overhead_mib")
    text = "memory overhead" if steady is None else f"memory overhead {steady:+.1f} MiB"
    text += "" if pct is None else f" ({pct:+.1f}%) of steady-state RSS"
    if run.get("memory_fixed_mib") is not None:
        text += f", fixed cost {run['memory_fixed_mib']:+.1f} MiB"
    if run.get("memory_growth_mib_per_1k_ops") is not None:
        text += f", growth {run['memory_growth_mib_per_1k_ops']:+.3f} MiB per 1,000 operations"
    yield "memory", f"{text} is over the pass limit {' and '.join(over)}"


def _drops(run: dict, tracing: dict) -> Iterator[tuple[str, str]]:
    spans = run.get("spans")
    if not spans:
        return
    dropped = spans["dropped"]
    # The same denominator as dropped_span_rate_percent: spans that reached an outcome.
    total = spans["exported"] + sum(dropped.values())
    where = _endpoint(run, tracing)
    if total and not spans["exported"]:
        reasons = ", ".join(f"{reason} {n}" for reason, n in dropped.items() if n)
        yield "all_dropped", (
            f"every span was dropped ({total} of {total}: {reasons}): none reached {where}. Check that it is "
            f"reachable and accepts this arm's spans (`loadgen run --test-connections` sends one export per arm)")
        return
    count = dropped.get("queue_full", 0)
    if count:
        yield "queue_full", (
            f"{count} spans dropped at a full queue ({100 * count / total:.2f}% of spans): raise "
            f"tracing.max_queue_size{_now(tracing, 'max_queue_size')} or lower "
            f"tracing.schedule_delay_ms{_now(tracing, 'schedule_delay_ms', ' ms')}")
    for reason, cause in _EXPORT_DROPS.items():
        count = dropped.get(reason, 0)
        if count:
            yield reason, (f"{count} spans dropped ({reason}, {100 * count / total:.2f}% of spans): "
                           f"{cause.format(where=where)}; check that endpoint")


def _export_latency(run: dict, limits: Limits, tracing: dict) -> Iterator[tuple[str, str]]:
    p95 = _VALUES["export_latency_p95_ms"](run) if run.get("spans") else None
    if not _beyond_pass(p95, limits):
        return
    yield "export_latency", (
        f"export latency p95 {p95:.0f} ms is over the pass limit {limits.pass_:g} ms: a span waits in the queue up "
        f"to tracing.schedule_delay_ms{_now(tracing, 'schedule_delay_ms', ' ms')}, then for the export call to "
        f"{_endpoint(run, tracing)}")


def _endpoint(run: dict, tracing: dict) -> str:
    """Where the arm's spans went, as the run recorded it."""
    return run.get("export_endpoint") or tracing.get("collector_url") or "the collector"


def _fidelity(run: dict, coverage_limits: Limits) -> Iterator[tuple[str, str]]:
    coverage = run.get("trace_coverage_percent")
    if _beyond_pass(coverage, coverage_limits):
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
