"""`loadgen compare BASE.json NEW.json`: read, refuse or compare, print, export, gate.

Exit codes: 0 compared (and the gate, if any, passed); 2 a file unreadable, not a results
document, or the runs not the same experiment (without --force); 5 the gate failed.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from loadgen.comparison import comparison_document, gate_from, refusals, refuse
from loadgen.console import export
from loadgen.errors import ExitCode
from loadgen.report.outputs import read_document, write_outputs

_STYLE = {"worse": "bold red", "better": "green", "within noise": "", "unmeasured": "dim"}


def compare_command(base_path: str, new_path: str, *, gate_flags: dict, force: bool, export_json: str | None,
                    out: Console, err: Console, outputs: dict | None = None) -> int:
    base, new = read_document(Path(base_path)), read_document(Path(new_path))
    found = refusals(base, new, base_path, new_path)
    if found and not force:
        refuse(found)
    for line in found:
        err.print(f"compare: forced past: {escape(line)}", highlight=False, soft_wrap=True)
    document = comparison_document(base, new, base_path=base_path, new_path=new_path,
                                   gate=gate_from(new, gate_flags), forced=found)
    print_comparison(out, document)
    export(document, export_json, err)
    if outputs:
        write_outputs(document, **outputs, beside=export_json, say=lambda line: err.print(line, highlight=False))
    return ExitCode.GATE_FAILED if document["gate"]["failed"] else ExitCode.OK


def print_comparison(console: Console, document: dict) -> None:
    console.print(f"compare: {escape(document['base']['path'])} → {escape(document['new']['path'])}", highlight=False)
    for table in comparison_tables(document):
        console.print(table)
    for side in document["unmatched"]:
        console.print(f"only in {side['side']}: {side['provider']}/{side['arm']} {side['mode']}", highlight=False)
    counts = document["summary"]
    console.print(", ".join(f"{count} {verdict}" for verdict, count in counts.items()), highlight=False)
    gate = document["gate"]
    if not gate["active"]:
        console.print(escape("no gate: --fail-on worse, a --max-… limit or [gate] in the new run's profile sets one"),
                      highlight=False)
        return
    if gate["failed"]:
        console.print(f"[bold red]gate failed[/] (exit {int(ExitCode.GATE_FAILED)}):", highlight=False)
        for reason in gate["reasons"]:
            console.print(f"  {escape(reason)}", highlight=False, soft_wrap=True)
    else:
        console.print("[green]gate passed[/]", highlight=False)


def comparison_tables(document: dict) -> list[Table]:
    """One table per provider and mode: each arm's figures, base → new, the change and its verdict."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in document["rows"]:
        groups.setdefault((row["provider"], row["mode"]), []).append(row)
    tables = []
    for (provider, mode), rows in groups.items():
        table = Table(title=f"{provider} · {mode}", title_justify="left")
        for header in ("Arm", "Figure", "Base [95 % CI]", "New [95 % CI]", "Change [95 % CI]", "Floor", "Verdict"):
            table.add_column(header, justify="left" if header in ("Arm", "Figure", "Verdict") else "right")
        for index, row in enumerate(rows):
            first = index == 0 or rows[index - 1]["arm"] != row["arm"]
            style = _STYLE[row["verdict"]]
            verdict = row["verdict"] + (" · limit crossed" if row.get("crossed") else "")
            table.add_row(
                row["arm"] if first else "", f"{row['label']} ({row['unit']})",
                _figure(row["base"], row["base_ci95"]), _figure(row["new"], row["new_ci95"]), _change(row),
                "—" if row["floor"] is None else f"±{row['floor']:.3g}",
                f"[{style}]{verdict}[/]" if style else verdict, end_section=index + 1 < len(rows)
                and rows[index + 1]["arm"] != row["arm"],
            )
        tables.append(table)
    return tables


def _figure(value: float | None, ci: list[float] | None) -> str:
    if value is None:
        return "n/m"
    return f"{value:.4g}" + (f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else "")


def _change(row: dict) -> str:
    if row["change"] is None:
        return "n/m"
    ci = row["change_ci95"]
    return f"{row['change']:+.3g}" + (f" [{ci[0]:+.3g}, {ci[1]:+.3g}]" if ci else (f" ({row['why']})" if row["why"] else ""))
