"""A soak over time: RSS, latency p99 and spans per window and arm, pile-ups marked; and the leak verdicts.

A soak's windows are written to its JSONL file as they close (`loadgen.soak`); the document
names that file and holds the verdicts. The windows are read from `soak["windows"]` when the
document embeds them, else from the JSONL it names; when neither is there, the chart says so.
A pile-up (calls in flight jumping to a new high) leaves RSS a step higher: it is shaded red.
"""

from __future__ import annotations

import json
from pathlib import Path

from loadgen.report import Chart, Table
from loadgen.report.chart_parts import UNMEASURED, ci_bounds, draw_estimates, figure_size, slug

PANELS = (("rss_mib", "RSS (MiB)"), ("latency_p99_ms", "latency p99 (ms)"), ("spans_ended", "spans ended"))


def soak_windows(soak: dict) -> list[dict]:
    """The soak's window lines, in the order written; [] when the document and its JSONL have none."""
    if soak.get("windows") is not None:
        return soak["windows"]
    path = Path(soak.get("jsonl") or "")
    if not soak.get("jsonl") or not path.is_file():
        return []
    lines = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return [line for line in lines if line.get("type") == "window"]


def soak_charts(document: dict, colours: dict[str, str]) -> list[Chart]:
    soak = document["soak"]
    windows = soak_windows(soak)
    providers = list(dict.fromkeys([v["provider"] for v in soak["memory"]] + [w["provider"] for w in windows]))
    charts = [_over_time(provider, soak, [w for w in windows if w["provider"] == provider], colours)
              for provider in providers]
    charts += [_leaks(provider, [v for v in soak["memory"] if v["provider"] == provider], colours)
               for provider in providers]
    return charts


def _figures(window: dict) -> dict:
    spans = window.get("spans") or {}
    dropped = spans.get("dropped")
    return {
        "rss_mib": window.get("rss_mib"),
        "latency_p99_ms": (window.get("latency_ms") or {}).get("p99"),
        "spans_ended": spans.get("ended"),
        "spans_dropped": sum(dropped.values()) if dropped is not None else None,
    }


def _over_time(provider: str, soak: dict, windows: list[dict], colours: dict[str, str]) -> Chart:
    piled = {(v["arm"], p["window"]) for v in soak["memory"] if v["provider"] == provider for p in v["pile_ups"]}
    rows = [[w["window"], w["arm"], *_figures(w).values(), "yes" if (w["arm"], w["window"]) in piled else "no"]
            for w in windows]
    arms = list(dict.fromkeys(w["arm"] for w in windows))
    warmup = soak.get("warmup_windows") or 0

    def draw(figure) -> None:
        figure.set_size_inches(8.0, 7.0)
        axes = figure.subplots(len(PANELS), 1, sharex=True)
        for ax, (key, label) in zip(axes, PANELS):
            for arm in arms:
                mine = [w for w in windows if w["arm"] == arm]
                points = [(w["window"], _figures(w)[key]) for w in mine if _figures(w)[key] is not None]
                if points:
                    ax.plot(*zip(*points), "o-", color=colours[arm], markersize=3, linewidth=1.2, label=arm)
                marks = [(x, y) for x, y in points if (arm, x) in piled]
                if marks:
                    ax.plot(*zip(*marks), "o", color="#d62728", markersize=8, fillstyle="none", markeredgewidth=1.5)
            for _, window in piled:
                ax.axvspan(window - 0.5, window + 0.5, color="#d62728", alpha=0.12, linewidth=0)
            if warmup:
                ax.axvspan(-0.5, warmup - 0.5, color="#bbbbbb", alpha=0.25, linewidth=0)
            ax.set_ylabel(label)
            ax.grid(color="#e5e5e5", linewidth=0.6)
        if not windows:
            axes[0].text(0.5, 0.5, f"{UNMEASURED}: no windows in the document or at {soak.get('jsonl')}",
                         transform=axes[0].transAxes, ha="center", fontsize=8, color="#555555")
        else:
            axes[0].legend(fontsize=8, loc="best")
        axes[-1].set_xlabel(f"window ({soak.get('window_s', 0):g} s each; grey: warm-up, red: pile-up)")
        axes[0].set_title(f"Soak over time — {provider}", fontsize=10)
        figure.tight_layout()

    return Chart(
        id=f"soak-{slug(provider)}", section="Soak", title=f"Soak over time — {provider}",
        caption=("RSS, latency p99 and spans ended per window, per arm. Grey: warm-up windows, left out of the "
                 "leak slope; red: a pile-up of calls in flight, after which RSS may stay a step higher."),
        table=Table(["window", "arm", "RSS MiB", "latency p99 ms", "spans ended", "spans dropped", "pile-up"], rows),
        draw=draw)


def _leaks(provider: str, verdicts: list[dict], colours: dict[str, str]) -> Chart:
    rows = [[v["arm"], v["slope_mib_per_hour"], *ci_bounds(v["ci95"]), v["limit_mib_per_hour"], v["verdict"],
             v["points"]] for v in verdicts]
    labels = [v["arm"] for v in verdicts]

    def draw(figure) -> None:
        figure_size(figure, 7.0, len(verdicts))
        ax = figure.subplots()
        draw_estimates(ax, labels, [colours[arm] for arm in labels],
                       [(v["slope_mib_per_hour"], v["ci95"]) for v in verdicts], "RSS slope (MiB per hour)")
        for limit in sorted({v["limit_mib_per_hour"] for v in verdicts}):
            ax.axvline(limit, color="#d62728", linestyle="--", linewidth=1)
        ax.set_title(f"Leak verdicts — {provider} (dashed: the limit)", fontsize=10)
        figure.tight_layout()

    return Chart(
        id=f"soak-leak-{slug(provider)}", section="Soak", title=f"Leak verdicts — {provider}",
        caption=("Each arm's RSS slope after warm-up with its 95% CI, against the limit: 'leak' when the whole "
                 "CI is above it, 'no leak' when below, else inconclusive."),
        table=Table(["arm", "slope MiB/h", "CI low", "CI high", "limit MiB/h", "verdict", "windows"], rows),
        draw=draw)
