"""The page's own tables, section by section: configuration, north-star metrics, the assessment, and
each document kind's findings (a soak's leak verdicts, a sweep's steps, a fault matrix's cells, a
comparison's rows and gate).

Each function takes the document and returns (title, HTML) pairs, or nothing when the
document has no such figures; `loadgen.report.page` lays them out.
"""

from __future__ import annotations

from html import escape

from loadgen.report import Table
from loadgen.report.page_html import definitions, figures_table, flat_settings, table_html, td
from loadgen.report.tables import spans_table

Section = tuple[str, str]

# North-star columns in reading order: (row key, header, the assessment check graded on it).
NORTH_STAR_COLUMNS = (
    ("overhead_latency_ms", "Overhead ms", None),
    ("overhead_latency_ci95_ms", "Overhead 95% CI ms", None),
    ("overhead_latency_percent", "Overhead %", "tracer_overhead_percent"),
    ("overhead_before_wire_ms", "Before wire ms", None),
    ("overhead_after_response_ms", "After response ms", None),
    ("loop_delay_p99_ms", "Loop delay p99 ms", None),
    ("loop_delay_delta_p99_ms", "Loop delay Δp99 ms", "loop_delay_p99_ms"),
    ("gil_wait_delta_p99_ms", "GIL wait Δp99 ms", None),
    ("threads", "OS threads", None),
    ("saturated", "Saturated", "saturated"),
    ("memory_fixed_mib", "Memory fixed MiB", "memory_overhead_mib"),
    ("memory_growth_mib_per_1k_ops", "Growth MiB/1k ops", None),
    ("memory_overhead_percent", "Memory %", "memory_overhead_percent"),
    ("trace_coverage_percent", "Coverage %", "trace_coverage_percent"),
    ("attribute_completeness_percent", "Complete %", "attribute_completeness_percent"),
    ("dropped_span_rate_percent", "Dropped %", "dropped_span_rate_percent"),
    ("export_latency_p95_ms", "Export p95 ms", "export_latency_p95_ms"),
    ("cpu_per_operation_us", "CPU/op µs", None),
)
KEYS = ("provider", "arm", "mode")
# The sync client's columns: shown only when some row has a figure (a run with sync rows).
SYNC_COLUMNS = ("gil_wait_p99_ms", "gil_wait_delta_p99_ms", "threads")


def configuration(document: dict) -> list[Section]:
    """A run's configuration as the summary states it; for other kinds, the profile's essentials."""
    summary = document.get("summary") or {}
    if summary.get("configuration"):
        return [("Configuration", definitions(flat_settings(summary["configuration"])))]
    profile = document.get("profile") or {}
    essentials = {key: profile[key] for key in ("name", "provider", "seed", "duration", "operations", "stream",
                                                "client", "load") if key in profile}
    essentials.update({f"target.{key}": value for key, value in (profile.get("target") or {}).items()
                       if key in ("kind", "base_url")})
    if profile.get("tracing"):
        essentials["tracing.arms"] = profile["tracing"].get("arms")
    for key in ("sweep", "faults"):
        if profile.get(key):
            essentials[key] = profile[key]
    return [("Configuration", definitions(flat_settings(essentials)))] if essentials else []


def north_star(document: dict) -> list[Section]:
    """The north-star table, sortable, each graded cell coloured by its verdict; the recommendations under it."""
    rows = document.get("north_star_metrics") or []
    if not rows:
        return []
    summary = document.get("summary") or {}
    graded = {(*(v[key] for key in KEYS), v["check"]): v for v in summary.get("verdicts") or []}
    known = {key for key, _, _ in NORTH_STAR_COLUMNS} | set(KEYS) | set(SYNC_COLUMNS)
    extra = [key for key in dict.fromkeys(key for row in rows for key in row) if key not in known]
    sync = {key for key in SYNC_COLUMNS if any(row.get(key) is not None for row in rows)}
    columns = [*(column for column in NORTH_STAR_COLUMNS if column[0] not in SYNC_COLUMNS or column[0] in sync),
               *((key, key, None) for key in extra)]
    body = []
    for row in rows:
        cells = [td(row.get(key)) for key in KEYS]
        for key, _, check in columns:
            verdict = graded.get((*(row.get(k) for k in KEYS), check)) if check else None
            cells.append(td(row.get(key), verdict["verdict"] if verdict else None, _limits(verdict)))
        body.append(f"<tr>{''.join(cells)}</tr>")
    headers = ["Provider", "Arm", "Mode", *(header for _, header, _ in columns)]
    overall = summary.get("overall")
    caption = f"Overall verdict against the thresholds: {overall}" if overall else None
    html = table_html(headers, body, caption=caption, attributes=' class="sortable north-star" id="north-star"')
    return [("North-star metrics", html + _recommendations(summary.get("recommendations") or []))]


def _limits(verdict: dict | None) -> str | None:
    if not verdict or "pass_limit" not in verdict:
        return None
    return f"pass ≤ {verdict['pass_limit']}, warn ≤ {verdict['warn_limit']}"


def _recommendations(recommendations: list[dict]) -> str:
    if not recommendations:
        return ""
    items = "".join(f"<li><strong>{escape('/'.join(str(r.get(key)) for key in KEYS if r.get(key)))}</strong>: "
                    f"{escape(r.get('text', ''))}</li>" for r in recommendations)
    return f'<h3>Recommendations</h3><ul class="recommendations">{items}</ul>'


def assessment(document: dict) -> list[Section]:
    """Every graded check with its value and limits (the north-star table colours only its own columns)."""
    verdicts = (document.get("summary") or {}).get("verdicts") or []
    if not verdicts:
        return []
    headers = ["provider", "arm", "mode", "check", "value", "pass_limit", "warn_limit", "verdict"]
    table = Table(headers, [[v.get(key) for key in headers] for v in verdicts])
    return [("Assessment", figures_table(table, attributes=' class="sortable"'))]


def spans(document: dict) -> list[Section]:
    """Where each tracing run's spans went."""
    table = spans_table(document.get("runs") or [])
    return [("Spans", figures_table(table, attributes=' class="sortable"'))] if table.rows else []


def soak(document: dict) -> list[Section]:
    """A soak's leak verdict per arm, and where its windows were written."""
    found = document.get("soak")
    if not found:
        return []
    about = definitions({"windows written to": found.get("jsonl"), "window s": found.get("window_s"),
                         "warm-up windows": found.get("warmup_windows"), "window lines": found.get("window_lines")})
    headers = ["provider", "arm", "slope MiB/h", "95% CI", "points", "limit MiB/h", "verdict", "pile-ups"]
    rows = [[m.get("provider"), m.get("arm"), m.get("slope_mib_per_hour"), m.get("ci95"), m.get("points"),
             m.get("limit_mib_per_hour"), m.get("verdict"),
             ", ".join(f"window {p.get('window')}" for p in m.get("pile_ups") or []) or "none"]
            for m in found.get("memory") or []]
    return [("Soak verdicts", about + figures_table(Table(headers, rows), caption="RSS growth after warm-up, per arm"))]


def sweep(document: dict) -> list[Section]:
    """A sweep's highest sustainable rate per arm, then every step's runs."""
    found = document["sweep"]
    limits = Table(["provider", "arm", "highest sustainable rate /s", "ended by", "stopped by", "at step /s"],
                   [[h.get("provider"), h.get("arm"), h.get("rate"), h.get("ended_by"),
                     (h.get("stopped_by") or {}).get("detail"), (h.get("stopped_by") or {}).get("step_rate")]
                    for h in found.get("highest_sustainable_rate") or []])
    headers = ["step rate /s", "complete", "provider", "arm", "achieved /s", "latency p50 ms", "latency p99 ms",
               "dispatch lag p99 ms", "CPU %", "valid"]
    steps = Table(headers, [[step["rate"], step["complete"], run.get("provider"), run.get("arm"),
                             run.get("achieved_rate_rps"), (run.get("latency_ms") or {}).get("p50"),
                             (run.get("latency_ms") or {}).get("p99"), (run.get("dispatch_lag_ms") or {}).get("p99"),
                             run.get("cpu_percent"), run.get("valid")]
                            for step in found.get("steps") or [] for run in step["runs"]])
    return [("Highest sustainable rate", figures_table(limits)),
            ("Sweep steps", figures_table(steps, attributes=' class="sortable"'))]


def faults(document: dict) -> list[Section]:
    """Every fault cell's verdict and the reasons for it; the baselines that broke the schedule."""
    headers = ["scenario", "provider", "arm", "verdict", "worst", "latency Δp99 ms", "recovery s", "shutdown s",
               "RSS back %", "coverage %", "reasons"]
    rows = [[c.get("scenario"), c.get("provider"), c.get("arm"), c.get("verdict"), c.get("worst"),
             c.get("latency_delta_p99_ms"), c.get("recovery_s"), c.get("shutdown_s"), c.get("rss_back_percent"),
             (c.get("coverage") or {}).get("coverage_percent"), _reasons(c)]
            for c in document.get("cells") or []]
    html = figures_table(Table(headers, rows), attributes=' class="sortable"')
    invalid = document.get("generator_invalid") or []
    if invalid:
        html += f"<p>Baselines that did not keep their schedule: {escape(', '.join(map(str, invalid)))}</p>"
    about = Table(["scenario", "provider", "about", "fault in"],
                  [[s.get("scenario"), s.get("provider"), s.get("about"), s.get("target")]
                   for s in document.get("scenarios") or []])
    return [("Fault cells", html), ("Scenarios", figures_table(about))]


def _reasons(cell: dict) -> str:
    failed = [check.get("text", "") for check in cell.get("checks") or [] if check.get("passed") is False]
    return "; ".join(failed + list(cell.get("recommendations") or [])) or "none"


COMPARE_COLUMNS = ("provider", "arm", "mode", "label", "unit", "base", "base_ci95", "new", "new_ci95", "change",
                   "change_ci95", "floor", "verdict", "limit", "crossed", "why")


def compare(document: dict) -> list[Section]:
    """A comparison: what was compared, every row coloured by its verdict, and the gate's result."""
    rows = document.get("rows") or []
    table = figures_table(Table(list(COMPARE_COLUMNS), [[row.get(key) for key in COMPARE_COLUMNS] for row in rows]),
                          attributes=' class="sortable"')
    sides = {key: document[key] for key in ("base", "new") if key in document}
    counts = document.get("summary") or {}
    about = definitions({**flat_settings(sides), "verdicts": counts, "method": document.get("method"),
                         "forced past": document.get("forced")})
    found = [("Comparison", about + table)]
    unmatched = document.get("unmatched") or []
    if unmatched:
        found.append(("Unmatched runs", figures_table(Table(["side", "provider", "arm", "mode"],
                                                            [[u.get(k) for k in ("side", "provider", "arm", "mode")]
                                                             for u in unmatched]))))
    gate = document.get("gate") or {}
    if gate.get("active"):
        verdict = "fail" if gate.get("failed") else "pass"
        outcome = (f'<p class="v-{verdict}"><strong>gate {"failed (exit 5)" if gate.get("failed") else "passed"}'
                   f"</strong></p>")
        reasons = "".join(f"<li>{escape(reason)}</li>" for reason in gate.get("reasons") or [])
        found.append(("Gate", outcome + (f"<ul>{reasons}</ul>" if reasons else "")
                      + definitions(flat_settings(gate.get("settings") or {}))))
    else:
        found.append(("Gate", "<p>No gate: --fail-on worse, a --max-… limit or [gate] in the new run's profile "
                              "sets one.</p>"))
    return found


def kind_sections(document: dict) -> list[Section]:
    """The sections of this kind of document, in page order (before its charts)."""
    kind = document.get("kind")
    found = configuration(document)
    if kind is None:
        return found + north_star(document) + assessment(document) + spans(document) + soak(document)
    return found + {"sweep": sweep, "faults": faults, "compare": compare}.get(kind, lambda _: [])(document)
