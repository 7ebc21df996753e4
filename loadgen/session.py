"""One `loadgen run`: orchestrate with a live progress display, then report and export.

Results are written whatever happens — an invalid run, an interrupted run, a worker
that failed — so nothing measured is lost.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from loadgen.budget import over_cap, plan_budget
from loadgen.errors import ExitCode, UserError
from loadgen.metrics import add_overheads, summarize
from loadgen.orchestrator import Orchestrator, RunOutcome
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
    err.print(f"loadgen: {profile.name}: {', '.join(profile.providers)} · "
              f"{', '.join(mode.mode for mode in profile.each_mode())}"
              f"{' · stream' if profile.stream else ''} · target {profile.target.kind}", highlight=False)
    if profile.target.kind == "real":
        confirm_real_run(profile, err, confirmed)
    modes = profile.each_mode()
    outcome = RunOutcome()
    with LiveProgress(err, enabled=live) as progress:
        for mode in modes:
            if outcome.interrupted:
                break
            progress.prefix = f"{mode.mode} · " if len(modes) > 1 else ""
            done = Orchestrator(mode, on_progress=progress.update).run()
            outcome.results += done.results
            outcome.errors += done.errors
            outcome.interrupted = done.interrupted
            outcome.target = done.target
    runs = [summarize(result) for result in outcome.results]
    add_overheads(outcome.results, runs)
    document = build_document(
        profile.model_dump(mode="json"), runs, target=outcome.target,
        interrupted=outcome.interrupted, errors=outcome.errors,
    )
    print_summary(out, document, north_star_only=north_star_only)
    if export_json:
        write_json(document, export_json)
        err.print(f"results written to {export_json}", highlight=False)
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


def confirm_real_run(profile: Profile, err: Console, confirmed: bool) -> None:
    """Say what the run will send to the paid APIs; past the profile's cap, refuse without --yes."""
    budget = plan_budget(profile)
    err.print(f"real APIs: this run plans {budget.describe()}", highlight=False, soft_wrap=True)
    reason = over_cap(budget, profile)
    if reason and not confirmed:
        raise UserError(f"{reason}; pass --yes to send them, or shorten the run", ExitCode.USAGE)
