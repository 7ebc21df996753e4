"""Every chart of a results document, drawn as inline SVG for the page and as PNG for `--plots`.

`charts_for` reads the document's kind (a run or soak, a sweep, a fault matrix, a comparison)
and returns its charts in page order, each with the table of the figures it draws. Drawing
uses matplotlib's object API on the Agg canvas only (no pyplot, no global figure state), so
charts render from any thread and nothing opens a window. The SVG is deterministic: fixed
ids (salted by the chart's id, so several charts can share one page), no date, text as text.
"""

from __future__ import annotations

import io
import re
from html import escape
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from loadgen.report import Chart  # noqa: E402
from loadgen.report.chart_compare import compare_charts  # noqa: E402
from loadgen.report.chart_cost import memory_charts, overhead_charts  # noqa: E402
from loadgen.report.chart_faults import fault_charts  # noqa: E402
from loadgen.report.chart_latency import export_charts, latency_charts  # noqa: E402
from loadgen.report.chart_parts import arm_colours  # noqa: E402
from loadgen.report.chart_soak import soak_charts  # noqa: E402
from loadgen.report.chart_sweep import sweep_charts  # noqa: E402

PNG_DPI = 110
NO_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}
RUN_SECTIONS = (overhead_charts, latency_charts, export_charts, memory_charts)


def charts_for(document: dict) -> list[Chart]:
    """Every chart of the document, in page order (sections in order, providers within them)."""
    colours = arm_colours(document)
    kind = document.get("kind")
    if kind == "sweep":
        return sweep_charts(document, colours)
    if kind == "faults":
        return fault_charts(document)
    if kind == "compare":
        return compare_charts(document)
    charts = [chart for section in RUN_SECTIONS for chart in section(document, colours)]
    if document.get("soak"):
        charts += soak_charts(document, colours)
    return charts


def _figure(chart: Chart) -> Figure:
    figure = Figure()
    FigureCanvasAgg(figure)
    chart.draw(figure)
    return figure


def render_svg(chart: Chart) -> str:
    """The chart as an inline `<svg>` element: no prologue, no external reference, the same bytes every time."""
    figure = _figure(chart)
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": chart.id}):
        figure.savefig(buffer, format="svg", metadata=NO_METADATA)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = _own_ids(svg, chart.id)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{escape(chart.title)}" ', 1)


def _own_ids(svg: str, prefix: str) -> str:
    """Prefix every id and every reference to one, so two charts' ids never collide on one page."""
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    if not ids:
        return svg

    def rename(match: re.Match) -> str:
        before, name, after = match.groups()
        return f"{before}{prefix}-{name}{after}" if name in ids else match.group(0)

    svg = re.sub(r'(\bid=")([^"]+)(")', rename, svg)
    return re.sub(r'((?:href="|url\()#)([^")]+)([")])', rename, svg)


def write_pngs(charts: list[Chart], folder: Path) -> list[Path]:
    """`<id>.png` per chart in `folder` (created), at ~110 dpi; the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for chart in charts:
        path = folder / f"{chart.id}.png"
        figure = _figure(chart)
        figure.savefig(path, format="png", dpi=PNG_DPI, metadata={"Software": None})
        paths.append(path)
    return paths
