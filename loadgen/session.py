"""One `loadgen run`: orchestrate with a live progress display, then report and export.

Results are written whatever happens — an invalid run, an interrupted run, a worker
that failed — so nothing measured is lost.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from loadgen import soak
from loadgen.budget import over_cap, plan_budget
from loadgen.errors import ExitCode, UserError
from loadgen.metrics import summarize_all
from loadgen.orchestrator import Orchestrator, RunOutcome, collector_figures
from loadgen.profile import Profile
from loadgen.report import build_document, print_summary, write_json


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


def run_session(profile: Profile, *, export_json: str | None, out: Console, err: Console, live: bool = True,
                confirmed: bool = False, north_star_only: bool = False) -> int:
    if profile.sweep is not None:
        from loadgen.sweep import run_sweep_session  # here: sweep imports this module's LiveProgress

        return run_sweep_session(profile, export_json=export_json, out=out, err=err, live=live, confirmed=confirmed)
    err.print(f"loadgen: {profile.name}: {', '.join(profile.providers)} · "
              f"{', '.join(mode.mode for mode in profile.each_mode())}"
              f"{' · stream' if profile.stream else ''} · target {profile.target.kind}", highlight=False)
    if profile.target.kind == "real":
        confirm_real_run(profile, err, confirmed)
    modes = profile.each_mode()
    outcome = RunOutcome()
    log = _soak_log(profile, err)
    with LiveProgress(err, enabled=live) as progress:
        for mode in modes:
            if outcome.interrupted:
                break
            progress.prefix = f"{mode.mode} · " if len(modes) > 1 else ""
            done = Orchestrator(mode, on_progress=progress.update, on_window=_window_printer(log, err)).run()
            outcome.results += done.results
            outcome.errors += done.errors
            outcome.interrupted = done.interrupted
            outcome.target = done.target
    runs = summarize_all(outcome.results, profile.validity)
    document = build_document(
        profile.model_dump(mode="json"), runs, target=outcome.target,
        interrupted=outcome.interrupted, errors=outcome.errors,
    )
    if log is not None:
        document["soak"] = soak.finish(log, outcome.results, profile.soak)
    print_summary(out, document, north_star_only=north_star_only)
    if log is not None:
        out.print(soak.memory_table(document["soak"]))
        _print_growth_sites(out, document["soak"])
    export(document, export_json, err)
    if outcome.interrupted:
        return ExitCode.INTERRUPTED
    if outcome.errors:
        return ExitCode.FAILURE
    unreachable = [run for run in runs if run["operations_completed"] and not run["operations_ok"]
                   and set(run["errors"]) <= {"connection", "timeout"}]
    if unreachable:
        err.print(f"[bold red]loadgen:[/] target unreachable: every call of "
                  f"{', '.join(r['provider'] for r in unreachable)} failed to connect or timed out ({outcome.target})")
        return ExitCode.UNREACHABLE
    if not document["valid"]:
        return ExitCode.INVALID_RUN
    return ExitCode.OK


def export(document: dict, path: str | None, err: Console) -> None:
    """Write the document (atomically) where asked, and say where."""
    if path:
        write_json(document, path)
        err.print(f"results written to {path}", highlight=False)


def _soak_log(profile: Profile, err: Console) -> soak.SoakLog | None:
    if profile.soak is None:
        return None
    path = profile.soak.jsonl or f"soak-{time.strftime('%Y%m%dT%H%M%S')}.jsonl"
    err.print(f"soak: {profile.soak.window:g} s windows, each appended to {path} as it closes", highlight=False)
    return soak.SoakLog(path, collector_figures)


def _window_printer(log: soak.SoakLog | None, err: Console):
    if log is None:
        return None

    def on_window(provider: str, arm: str, shards: int, figures: dict, tracing: dict | None) -> None:
        line = log.add(provider, arm, shards, figures, tracing)
        if line is not None:
            err.print(soak.describe_window(line), highlight=False, soft_wrap=True)

    return on_window


def _print_growth_sites(out: Console, summary: dict) -> None:
    for row in summary["memory"]:
        for site in row["tracemalloc_top"] or []:
            out.print(f"  {row['provider']}/{row['arm']} grew {site['size_diff_kib']:+.1f} KiB "
                      f"({site['count_diff']:+d} blocks) at {site['site']}", highlight=False)


def confirm_real_run(profile: Profile, err: Console, confirmed: bool) -> None:
    """Say what the run will send to the paid APIs; past the profile's cap, refuse without --yes."""
    budget = plan_budget(profile)
    err.print(f"real APIs: this run plans {budget.describe()}", highlight=False, soft_wrap=True)
    reason = over_cap(budget, profile)
    if reason and not confirmed:
        raise UserError(f"{reason}; pass --yes to send them, or shorten the run", ExitCode.USAGE)
