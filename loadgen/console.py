"""The console: everything loadgen prints for people — live progress, a run's report, a soak's and a sweep's.

Reporters read finished documents (`loadgen.document`) and never reach back into the
engine; the tables themselves are in `loadgen.console_tables`. Workers import none of
this: what they measure leaves them as figures, and is printed here.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from loadgen.assessment import OVERHEAD_SPLIT, format_overhead
from loadgen.console_tables import (assessment_table, fault_matrix_tables, format_ms, north_star_table,
                                    soak_memory_table, summary_table, sustained_rate, sweep_tables, tracing_table)
from loadgen.document import write_json
from loadgen.limits import Validity
from loadgen.sweep import judge


class LiveProgress:
    """One bar per provider/arm, fed by the workers' progress messages."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} done"),
            TextColumn("sent {task.fields[sent]} · in flight {task.fields[in_flight]} · "
                       "errors {task.fields[errors]} · shed {task.fields[shed]}"),
            TimeElapsedColumn(),
            console=console,
            disable=not enabled,
            transient=False,
        )
        self.tasks: dict[str, int] = {}
        self.prefix = ""  # the mode, when a run has several

    def update(self, message: dict) -> None:
        key = f"{self.prefix}{message['provider']}/{message['arm']}"
        fields = {k: message[k] for k in ("sent", "in_flight", "errors", "shed")}
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(key, total=message["planned"] or None, **fields)
        self.progress.update(self.tasks[key], completed=message["completed"], total=message["planned"] or None, **fields)

    def __enter__(self) -> "LiveProgress":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)


def export(document: dict, path: str | None, err: Console) -> None:
    """Write the document (atomically) where asked, and say where."""
    if path:
        write_json(document, path)
        err.print(f"results written to {path}", highlight=False)


def print_summary(console: Console, document: dict, north_star_only: bool = False) -> None:
    """The comprehensive report, or with north_star_only the north-star table alone; the status lines always."""
    runs = document["runs"]
    if north_star_only:
        if runs:
            console.print(north_star_table(document["north_star_metrics"], _north_star_order(document)))
        _print_status(console, document)
        return
    if runs:
        console.print(configuration_line(document["summary"]["configuration"]), highlight=False)
        console.print(summary_table(runs))
        if any(row["arm"] != "baseline" for row in document["north_star_metrics"]):
            console.print(north_star_table(document["north_star_metrics"], _north_star_order(document)))
        for run in runs:
            if run.get("overhead_pairs"):
                console.print(versus_baseline(run), highlight=False)
            if run.get("calibration"):
                console.print(known_answer_line(run), highlight=False)
        tracing = tracing_table(runs)
        if tracing is not None:
            console.print(tracing)
            for run in runs:
                missing = run.get("missing_attributes")
                if missing:
                    listed = ", ".join(f"{name} ({count})" for name, count in missing.items())
                    console.print(f"  {run['provider']}/{run['arm']} LLM spans missing: {listed}", highlight=False)
        console.print(
            "[dim]Latency is measured from each call's intended start; the uncorrected view "
            "(from the actual send) is service_time_ms in the JSON.[/]"
        )
    for run in runs:
        unc = run["service_time_ms"]
        errors = ", ".join(f"{name} {count}" for name, count in sorted(run["errors"].items())) or "none"
        console.print(
            f"  {run['provider']}/{run['arm']}: service time p50 {format_ms(unc['p50'])} p99 {format_ms(unc['p99'])} ms; "
            f"errors: {errors}; shed {run['shed']}; peak in flight {run['peak_in_flight']} (pool {run['pool_size']}"
            + ("" if run.get("threads") is None else f", {run['threads']} OS threads")
            + ")"
        )
    if runs:
        summary = document["summary"]
        console.print(assessment_table(summary))
        if summary["recommendations"]:
            console.print("recommendations:")
        for item in summary["recommendations"]:
            console.print(f"  {item['provider']}/{item['arm']} [dim]({item['kind']})[/]: {item['text']}", highlight=False)
    _print_status(console, document)


def engine_line(engine: dict) -> str:
    """One line before the run: which Ray, and where."""
    return (f"engine: Ray {engine['ray_version']} at {engine['ray_address']}"
            + (f", started in {engine['start_s']:.1f} s" if engine["started_by_loadgen"] else ""))


def print_engine(console: Console, engine: dict) -> None:
    """The Ray section after the report: each node's clock against this process, and its actors."""
    console.print(f"{engine_line(engine)}; clock skew allowed: {format_ms(engine['skew_bound_ms'])} ms "
                  f"(the dispatch-lag allowance)", highlight=False)
    for fleet in engine["fleets"]:
        console.print(f"  {fleet['provider']}: {fleet['actors']} actors on {fleet['bundles']} one-CPU bundle(s), "
                      f"ready in {fleet['actors_ready_s']:.2f} s, clocks in {fleet['clocks_s'] * 1000:.0f} ms",
                      highlight=False)
    for node in engine["nodes"]:
        console.print(f"  node {node['node_id'][:12]} ({node['host']}): offset {node['offset_ms']:+.3f} ms "
                      f"± {node['uncertainty_ms']:.3f} ms (best of {node['round_trips']} round trips, RTT "
                      f"{node['rtt_ms']:.3f} ms); {len(node['actors'])} actors", highlight=False)


def _north_star_order(document: dict) -> str:
    return ((document.get("profile") or {}).get("outputs") or {}).get("north_star_order", "arms")


def _print_status(console: Console, document: dict) -> None:
    for error in document["errors"]:
        console.print(f"[red]error:[/] {error}")
    if document["interrupted"]:
        console.print("[yellow]interrupted: the figures cover the operations finished before the stop[/]")
    for reason in document["invalid_reasons"]:
        console.print(f"[bold red]INVALID[/] {reason['provider']}/{reason['arm']} ({reason['rule']}): {reason['detail']}")
    left_out = document["summary"]["configuration"].get("arms_left_out") or []
    if left_out:
        console.print(f"[yellow]not run:[/] {', '.join(item['arm'] for item in left_out)}: {left_out[0]['reason']}")
    if document["runs"] and document["valid"]:
        console.print("[green]run valid[/]")


def configuration_line(config: dict) -> str:
    """The setup in one line, leaving out what the profile did not say."""
    parts = [", ".join(f"{name} {model}" for name, model in config["models"].items()),
             f"target {config['target']}", ", ".join(config["modes"])]
    if config["stream"] is not None:
        parts.append("stream" if config["stream"] else "no stream")
    length = (f"{config['duration_s']:g} s" if config["duration_s"] is not None
              else f"{config['operations']} operations" if config["operations"] is not None else None)
    if length:
        parts.append(f"{length} + {config['warmup_operations'] or 0} warm-up")
    if config.get("client") == "raw":
        parts.append("client raw (the SDK's request bytes on loadgen's HTTP client)")
    if config.get("clients"):
        parts.append("clients " + ", ".join(config["clients"]))
    elif config.get("client") == "sync":
        parts.append("client sync (the SDKs' sync clients in OS threads)")
    if config.get("threads_used"):
        parts.append(f"{'/'.join(map(str, config['threads_used']))} OS threads per worker (sync client)")
    if config["arms"]:
        parts.append("arms " + ", ".join(config["arms"]))
    if config["workers"] is not None:
        used = "/".join(str(n) for n in config["workers_used"])
        parts.append(f"workers {config['workers']}" + (f" ({used})" if used else ""))
    if config["seed"] is not None:
        parts.append(f"seed {config['seed']}")
    batch = config["tracing"]
    if batch["max_queue_size"] is not None:
        parts.append(f"batch: queue {batch['max_queue_size']}, delay {batch['schedule_delay_ms']} ms, "
                     f"size {batch['max_export_batch_size']}")
    return "configuration: " + " · ".join(part for part in parts if part)


def versus_baseline(run: dict) -> str:
    """An arm's lines vs its baseline: the overhead with its CI method, memory; then where the overhead lands."""
    method, df = run.get("overhead_ci_method"), run.get("overhead_ci_df")
    ci = "" if method is None else f"; CI: {method}" + ("" if df is None else f", df {df}")
    text = (f"  {run['provider']}/{run['arm']} vs baseline: latency {format_overhead(run)} "
            f"(paired by op_id, {run['overhead_pairs']} pairs{ci})")
    memory = run.get("memory_overhead_mib")
    percent = run.get("memory_overhead_percent")
    text += "; memory " + ("unmeasured" if memory is None else f"{memory:+.1f} MiB ({percent:+.1f}%)")
    if run.get("memory_fixed_mib") is not None:
        text += f", fixed {run['memory_fixed_mib']:+.1f} MiB"
    growth, growth_ci = run.get("memory_growth_mib_per_1k_ops"), run.get("memory_growth_ci95_mib_per_1k_ops")
    if growth is not None:
        text += f", growth {growth:+.3f}" + ("" if not growth_ci else f" [{growth_ci[0]:+.3f}, {growth_ci[1]:+.3f}]")
        text += " MiB per 1,000 ops"
    split = [f"{words} {_mean_ci(run, key)}" for key, words in OVERHEAD_SPLIT if run.get(key) is not None]
    return text + ("\n    of which " + ", ".join(split) if split else "")


def known_answer_line(run: dict) -> str:
    """The calibration arm's known answer (the held time) beside the overhead and the part it should land in."""
    known = run["calibration"]
    held = "unmeasured" if known["held_mean_ms"] is None else f"{known['held_mean_ms']:.3f} ms"
    where = "overhead_before_wire_ms" if known["at"] == "before" else "overhead_after_response_ms"
    measured = f"overhead {format_overhead(run)}"
    if run.get(where) is not None:
        measured += f", {dict(OVERHEAD_SPLIT)[where]} {_mean_ci(run, where)}"
    return (f"  {run['provider']}/{run['arm']}: held the loop {held} per call ({known['kind']}, {known['at']} "
            f"the call; nominal {known['nominal_us']:,} µs) — {measured}")


def _mean_ci(run: dict, key: str) -> str:
    """'+0.412 ms [+0.301, +0.523]' for a mean Δ and its `_ci95_ms`."""
    ci = run.get(key.removesuffix("_ms") + "_ci95_ms")
    return f"{run[key]:+.3f} ms" + ("" if not ci else f" [{ci[0]:+.3f}, {ci[1]:+.3f}]")


def describe_soak_window(line: dict) -> str:
    """One line of progress for a closed window."""
    latency, spans = line["latency_ms"], line["spans"]
    text = (f"window {line['window']} {line['provider']}/{line['arm']}: sent {line['sent']}, ok {line['ok']}, "
            f"p50 {format_ms(latency['p50'])} p99 {format_ms(latency['p99'])} ms, RSS {line['rss_median_mib']:.1f} MiB, "
            f"CPU {line['cpu_seconds']:.1f} s, fds {line['open_fds']}, threads {line['threads']}")
    if spans:
        dropped = sum(spans["dropped"].values())
        text += (f", spans ended {spans['ended']} received {spans['received']} dropped {dropped} "
                 f"queue {spans['queue_depth']}")
    return text


def print_soak_summary(out: Console, summary: dict) -> None:
    """The soak's leak verdicts, then where memory grew (with tracemalloc)."""
    out.print(soak_memory_table(summary))
    for row in summary["memory"]:
        for site in row["tracemalloc_top"] or []:
            out.print(f"  {row['provider']}/{row['arm']} grew {site['size_diff_kib']:+.1f} KiB "
                      f"({site['count_diff']:+d} blocks) at {site['site']}", highlight=False)


def sweep_step_line(step: dict, validity: Validity, slo_ms: float | None) -> str:
    """One stderr line per finished step: each arm's verdict, latency p99 and dispatch-lag p99."""
    parts = []
    for run in step["runs"]:
        reason = judge(run, validity, slo_ms) if step["complete"] else None
        verdict = "ok" if reason is None else f"stop ({reason['rule']})"
        parts.append(f"{run['provider']}/{run['arm']}{f' {verdict}' if step['complete'] else ''} "
                     f"p99 {format_ms(run['latency_ms']['p99'])} ms, "
                     f"lag p99 {format_ms(run['dispatch_lag_ms']['p99'])} ms")
    return f"sweep {step['rate']:g}/s{'' if step['complete'] else ' (cut short)'}: " + " · ".join(parts)


_ENDED = {
    "max_rate": "kept the schedule at every step, up to max_rate",
    "interrupted": "the sweep was interrupted before this arm stopped",
    "error": "the sweep ended on an error before this arm stopped",
}


def print_sweep(console: Console, document: dict) -> None:
    for table in sweep_tables(document):
        console.print(table)
    for track in document["sweep"]["highest_sustainable_rate"]:
        stop = track["stopped_by"]
        how = (f"stopped at {stop['step_rate']:g}/s by {stop['rule']}: {stop['detail']}" if stop
               else _ENDED[track["ended_by"]])
        rate = sustained_rate(track["rate"])
        console.print(f"  {track['provider']}/{track['arm']}: highest sustainable rate {rate}; {how}", highlight=False)
    for error in document["errors"]:
        console.print(f"[red]error:[/] {error}")
    if document["interrupted"]:
        console.print("[yellow]interrupted: the sweep covers the steps finished before the stop[/]")


class ScenarioProgress:
    """The fault matrix's progress: one bar per scenario and provider, every arm's calls together."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                 TextColumn("{task.completed}/{task.total} calls · errors {task.fields[errors]}"),
                                 TimeElapsedColumn(), console=console, disable=not enabled, transient=False)
        self.prefix = ""  # the scenario and provider, set by the matrix runner
        self.arms: dict[str, dict] = {}
        self.task: int | None = None
        self.task_prefix = ""

    def update(self, message: dict) -> None:
        if self.task is None or self.task_prefix != self.prefix:
            self.arms = {}
            self.task_prefix = self.prefix
            self.task = self.progress.add_task(self.prefix.rstrip(" ·"), total=None, errors=0)
        self.arms[message["arm"]] = message
        arms = self.arms.values()
        self.progress.update(self.task, completed=sum(m["completed"] for m in arms),
                             total=sum(m["planned"] for m in arms) or None, errors=sum(m["errors"] for m in arms))

    def __enter__(self) -> "ScenarioProgress":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)


def fault_scenario_line(cells: list[dict]) -> str:
    """One line as a scenario finishes: each tracing arm's verdict."""
    if not cells:
        return "  (no tracing arm ran)"
    head = f"{cells[0]['scenario']} · {cells[0]['provider']}: "
    colour = {"pass": "green", "warn": "yellow", "fail": "bold red"}
    return head + ", ".join(f"{cell['arm']} [{colour[cell['verdict']]}]{cell['verdict']}[/]" for cell in cells)


def print_fault_matrix(console: Console, document: dict) -> None:
    for table in fault_matrix_tables(document):
        console.print(table)
    said = list(dict.fromkeys(f"{cell['scenario']} · {cell['provider']} · {cell['arm']}: {text}"
                              for cell in document["cells"] for text in cell["recommendations"]))
    if said:
        console.print("[bold]What changes the result[/]")
        for line in said:
            console.print(f"  {line}", highlight=False, soft_wrap=True)
    for line in document["generator_invalid"]:
        console.print(f"[red]generator did not keep its schedule:[/] {line}", highlight=False, soft_wrap=True)
    for error in document["errors"]:
        console.print(f"[red]error:[/] {error}", highlight=False, soft_wrap=True)
    if document["interrupted"]:
        console.print("[yellow]interrupted: the matrix covers the scenarios finished before the stop[/]")
