"""A fault matrix as one coloured grid: scenarios down, provider/arm across, each cell its verdict.

pass is green, warn amber, fail red; a scenario and arm with no cell (its run did not finish)
is grey, "missing". The table beside it gives the verdicts and, for every cell that did not
pass, the worst figure that made it so (`loadgen.fault_cells`).
"""

from __future__ import annotations

from matplotlib.patches import Rectangle

from loadgen.report import Chart, Table

MISSING = "missing"
VERDICT_COLOURS = {"pass": "#2ca02c", "warn": "#f0a202", "fail": "#d62728", MISSING: "#c7c7c7"}


def fault_charts(document: dict) -> list[Chart]:
    cells = document.get("cells") or []
    if not cells and not document.get("scenarios"):
        return []
    return [fault_grid(document)]


def _grid(document: dict) -> tuple[list[str], list[str], dict[tuple[str, str], dict]]:
    """(scenarios, "provider/arm" columns, cell by (scenario, column)), each in the document's order."""
    cells = document.get("cells") or []
    scenarios = list(dict.fromkeys([s["scenario"] for s in document.get("scenarios") or []]
                                   + [cell["scenario"] for cell in cells]))
    columns = list(dict.fromkeys(f"{cell['provider']}/{cell['arm']}" for cell in cells))
    by_place = {(cell["scenario"], f"{cell['provider']}/{cell['arm']}"): cell for cell in cells}
    return scenarios, columns, by_place


def verdict_of(cell: dict | None) -> str:
    verdict = (cell or {}).get("verdict")
    return verdict if verdict in VERDICT_COLOURS else MISSING


def fault_grid(document: dict) -> Chart:
    scenarios, columns, by_place = _grid(document)
    rows = []
    for scenario in scenarios:
        verdicts = [verdict_of(by_place.get((scenario, column))) for column in columns]
        reasons = [f"{column}: {by_place[(scenario, column)].get('worst') or 'no reason given'}"
                   for column, verdict in zip(columns, verdicts) if verdict in ("warn", "fail")]
        rows.append([scenario, *verdicts, "; ".join(reasons)])

    def draw(figure) -> None:
        figure.set_size_inches(1.8 + 1.15 * max(len(columns), 1), 1.2 + 0.5 * max(len(scenarios), 1))
        ax = figure.subplots()
        for y, row in enumerate(rows):
            for x, verdict in enumerate(row[1:-1]):
                ax.add_patch(_cell_patch(x, y, VERDICT_COLOURS[verdict]))
                ax.text(x, y, verdict[0].upper() if verdict != MISSING else "–", ha="center", va="center",
                        fontsize=9, fontweight="bold", color="white" if verdict != MISSING else "#333333")
        ax.set_xlim(-0.5, len(columns) - 0.5)
        ax.set_ylim(len(scenarios) - 0.5, -0.5)
        ax.set_xticks(range(len(columns)), columns, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(scenarios)), scenarios, fontsize=8)
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_title("Fault matrix (P pass, W warn, F fail, – missing)", fontsize=10)
        figure.tight_layout()

    return Chart(
        id="fault-matrix", section="Fault matrix", title="Fault matrix",
        caption=("Each tracing arm's verdict in each fault scenario, against the baseline beside it: green pass, "
                 "amber warn, red fail, grey missing (no result). The table gives the worst figure of each cell "
                 "that did not pass."),
        table=Table(["scenario", *columns, "reasons"], rows), draw=draw)


def _cell_patch(x: int, y: int, colour: str) -> Rectangle:
    return Rectangle((x - 0.46, y - 0.44), 0.92, 0.88, facecolor=colour, edgecolor="white")
