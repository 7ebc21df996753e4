"""Latency distributions per arm: the percentile spectrum of calls, time to first token, and span export.

Each is HdrHistogram's percentile plot (`loadgen.report.hdr`): one line per arm from its
histogram, or its exported percentiles as points when the document has no histogram.
"""

from __future__ import annotations

from loadgen.report import Chart, Table
from loadgen.report.chart_parts import UNMEASURED, named_groups, slug, traced
from loadgen.report.hdr import Distribution, distribution, percentile_axis

LATENCY_FIGURES = ("p50", "p90", "p99", "p99_9", "max")
EXPORT_FIGURES = ("p50", "p90", "p95", "p99", "max")
HEADER = {"p50": "p50 ms", "p90": "p90 ms", "p95": "p95 ms", "p99": "p99 ms", "p99_9": "p99.9 ms", "max": "max ms"}


def latency_charts(document: dict, colours: dict[str, str]) -> list[Chart]:
    """Per provider and mode: latency from intended start, and TTFT when the run streamed."""
    charts = []
    for _, name, runs in named_groups(document["runs"]):
        mode = runs[0].get("mode") or ""
        suffix = slug(runs[0]["provider"], mode)
        charts.append(_spectrum_chart(
            f"latency-{suffix}", "Latency", f"Latency percentiles — {name}",
            "Latency from each call's intended start, at every percentile (x: 1/(1−p) on a log scale), one line "
            "per arm; the vertical gap between two lines is what an arm adds at that percentile.",
            _distributions(runs, "latency", "latency_ms"), colours, LATENCY_FIGURES, "latency (ms)"))
        ttft = _distributions(runs, "ttft", "ttft_ms")
        if any(d.count for _, d in ttft):
            charts.append(_spectrum_chart(
                f"ttft-{suffix}", "Latency", f"Time to first token — {name}",
                "Time from each call's intended start to its first streamed token, at every percentile.",
                ttft, colours, LATENCY_FIGURES, "time to first token (ms)"))
    return charts


def export_charts(document: dict, colours: dict[str, str]) -> list[Chart]:
    """Per provider (and mode): how long spans take from their end to the collector's ACK, per tracing arm."""
    charts = []
    for suffix, name, runs in named_groups(document["runs"]):
        tracing = [run for run in traced(runs) if run.get("spans") is not None]
        if tracing:
            charts.append(_spectrum_chart(
                f"export-latency-{suffix}", "Export latency", f"Span export latency — {name}",
                "Time from a span's end to the collector's acknowledgement of its export, at every percentile "
                "(points: the exported percentiles, when the document holds no histogram).",
                _distributions(tracing, "export_latency", "export_latency_ms"), colours, EXPORT_FIGURES,
                "export latency (ms)"))
    return charts


def _distributions(runs: list[dict], histogram: str, summary: str) -> list[tuple[str, Distribution]]:
    return [(run["arm"], distribution((run.get("histograms") or {}).get(histogram), run.get(summary)))
            for run in runs]


def _spectrum_chart(chart_id: str, section: str, title: str, caption: str,
                    arms: list[tuple[str, Distribution]], colours: dict[str, str],
                    figures: tuple[str, ...], ylabel: str) -> Chart:
    table = Table(["arm", *[HEADER[name] for name in figures], "count"],
                  [[arm, *dist.figures(figures), dist.count] for arm, dist in arms])

    def draw(figure) -> None:
        figure.set_size_inches(7.5, 4.2)
        ax = figure.subplots()
        highest = 10.0
        unmeasured = []
        for arm, dist in arms:
            xs, ms = dist.curve(figures)
            if not xs:
                unmeasured.append(arm)
                continue
            highest = max(highest, xs[-1])
            if dist.histogram is not None:
                ax.plot(xs, ms, drawstyle="steps-post", color=colours[arm], linewidth=1.4, label=arm)
            else:
                ax.plot(xs, ms, "o--", color=colours[arm], linewidth=0.8, markersize=4, label=arm)
        percentile_axis(ax, highest)
        ax.set_ylabel(ylabel)
        ax.grid(color="#e5e5e5", linewidth=0.6)
        if unmeasured:
            ax.text(0.02, 0.95, f"{UNMEASURED}: {', '.join(unmeasured)}", transform=ax.transAxes, fontsize=8,
                    va="top", color="#555555")
        if len(arms) > len(unmeasured):
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, 0.88) if unmeasured else None)
        ax.set_title(title, fontsize=10)
        figure.tight_layout()

    return Chart(id=chart_id, section=section, title=title, caption=caption, table=table, draw=draw)
