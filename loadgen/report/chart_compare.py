"""A comparison of two results: per metric, each provider/arm's change with its CI against the noise band.

One chart per metric (overhead, loop delay, memory, …) in the order the rows first name them.
The shaded band is ±floor, the change too small to count; a point is coloured by the
comparison's own verdict, never by a judgement made here.
"""

from __future__ import annotations

from loadgen.report import Chart, Table
from loadgen.report.chart_parts import UNMEASURED, ci_bounds, draw_estimates, figure_size, slug

VERDICT_COLOURS = {"better": "#2ca02c", "worse": "#d62728", "within noise": "#8c8c8c", "unmeasured": "#c7c7c7"}
HEADERS = ["provider", "arm", "mode", "base", "base CI low", "base CI high", "new", "new CI low", "new CI high",
           "change", "change CI low", "change CI high", "floor", "limit", "verdict"]


def compare_charts(document: dict) -> list[Chart]:
    rows = document.get("rows") or []
    metrics = list(dict.fromkeys(row["metric"] for row in rows))
    return [_metric_chart([row for row in rows if row["metric"] == metric]) for metric in metrics]


def _label(row: dict, several_modes: bool) -> str:
    label = f"{row['provider']}/{row['arm']}"
    return f"{label} · {row['mode']}" if several_modes and row.get("mode") else label


def _table_row(row: dict) -> list:
    return [row["provider"], row["arm"], row.get("mode"), row.get("base"), *ci_bounds(row.get("base_ci95")),
            row.get("new"), *ci_bounds(row.get("new_ci95")), row.get("change"), *ci_bounds(row.get("change_ci95")),
            row.get("floor"), row.get("limit"), row.get("verdict") or UNMEASURED]


def _metric_chart(rows: list[dict]) -> Chart:
    first = rows[0]
    name, unit = first.get("label") or first["metric"], first.get("unit") or ""
    several = len({row.get("mode") for row in rows}) > 1
    labels = [_label(row, several) for row in rows]
    better = "lower is better" if first.get("better") == "lower" else "higher is better"

    def draw(figure) -> None:
        figure_size(figure, 7.5, len(rows))
        ax = figure.subplots()
        for y, row in enumerate(rows):
            if row.get("floor"):
                ax.fill_betweenx([y - 0.4, y + 0.4], -row["floor"], row["floor"], color="#dddddd", linewidth=0)
        draw_estimates(ax, labels, [VERDICT_COLOURS.get(row.get("verdict"), "#c7c7c7") for row in rows],
                       [(row.get("change"), row.get("change_ci95")) for row in rows], f"change in {name} ({unit})")
        ax.set_title(f"{name}: new − base ({better}); grey band: noise floor", fontsize=10)
        figure.tight_layout()

    return Chart(
        id=f"compare-{slug(first['metric'])}", section="Compare", title=f"Change in {name}",
        caption=(f"Each provider/arm's change in {name} from the base results to the new, with its 95% CI "
                 f"({better}). Grey band: ±the floor, the smallest change that matters; worse or better only when "
                 "the whole CI lies beyond it. Colour: the verdict (green better, red worse, grey within noise)."),
        table=Table(HEADERS, [_table_row(row) for row in rows]), draw=draw)
