"""A rate sweep: latency p50 and p99 against the offered rate per arm, each arm's highest sustainable rate starred.

A step is sustainable for an arm when it is at or under the highest rate the arm sustained
(`loadgen.sweep`); a step cut short was not judged, so it is neither.
"""

from __future__ import annotations

from loadgen.report import Chart, Table
from loadgen.report.chart_parts import slug

PANELS = (("p50", "latency p50 (ms)"), ("p99", "latency p99 (ms)"))


def sweep_charts(document: dict, colours: dict[str, str]) -> list[Chart]:
    sweep = document["sweep"]
    slo = (document.get("profile", {}).get("sweep") or {}).get("slo_latency_p99_ms")
    tracks = {(t["provider"], t["arm"]): t for t in sweep["highest_sustainable_rate"]}
    providers = dict.fromkeys([t["provider"] for t in sweep["highest_sustainable_rate"]]
                              + [run["provider"] for step in sweep["steps"] for run in step["runs"]])
    return [_latency_vs_rate(provider, sweep["steps"], tracks, slo, colours) for provider in providers]


def _sustainable(step: dict, track: dict | None) -> str | None:
    if not step["complete"] or track is None:
        return None
    return "yes" if track["rate"] is not None and step["rate"] <= track["rate"] else "no"


def _rows(provider: str, steps: list[dict], tracks: dict) -> list[list]:
    rows = []
    for step in steps:
        for run in step["runs"]:
            if run["provider"] == provider:
                latency = run.get("latency_ms") or {}
                rows.append([run["arm"], step["rate"], run.get("achieved_rate_rps"), latency.get("p50"),
                             latency.get("p99"), _sustainable(step, tracks.get((provider, run["arm"])))])
    return rows


def _latency_vs_rate(provider: str, steps: list[dict], tracks: dict, slo: float | None,
                     colours: dict[str, str]) -> Chart:
    rows = _rows(provider, steps, tracks)
    arms = list(dict.fromkeys([arm for (p, arm) in tracks if p == provider] + [row[0] for row in rows]))
    highest = {arm: (tracks.get((provider, arm)) or {}).get("rate") for arm in arms}

    def draw(figure) -> None:
        figure.set_size_inches(9.0, 4.2)
        axes = figure.subplots(1, len(PANELS), sharex=True)
        for ax, (column, (key, label)) in zip(axes, enumerate(PANELS, start=3)):
            for arm in arms:
                points = [(row[1], row[column]) for row in rows if row[0] == arm and row[column] is not None]
                if points:
                    ax.plot(*zip(*points), "o-", color=colours[arm], markersize=3, linewidth=1.2, label=arm)
                best = [y for x, y in points if x == highest[arm]]
                if best:
                    ax.plot([highest[arm]], best, "*", color=colours[arm], markersize=14, markeredgecolor="black",
                            markeredgewidth=0.6)
            if key == "p99" and slo is not None:
                ax.axhline(slo, color="#d62728", linestyle="--", linewidth=1, label=f"SLO {slo:g} ms")
            ax.set_xlabel("offered rate (calls/s)")
            ax.set_ylabel(label)
            ax.grid(color="#e5e5e5", linewidth=0.6)
        axes[-1].legend(fontsize=8, loc="best")
        figure.suptitle(f"Latency vs offered rate — {provider} (star: highest sustainable rate)", fontsize=10)
        figure.tight_layout()

    sustained = ", ".join(f"{arm} {_rate(highest[arm])}" for arm in arms)
    return Chart(
        id=f"sweep-latency-{slug(provider)}", section="Sweep", title=f"Latency vs offered rate — {provider}",
        caption=(f"Latency p50 and p99 at each step of the sweep, per arm; the star is each arm's highest "
                 f"sustainable rate ({sustained}){' and the dashed line the SLO' if slo is not None else ''}."),
        table=Table(["arm", "offered rate/s", "achieved rate/s", "p50 ms", "p99 ms", "sustainable"], rows),
        draw=draw)


def _rate(rate: float | None) -> str:
    return "none" if rate is None else f"{rate:g}/s"
