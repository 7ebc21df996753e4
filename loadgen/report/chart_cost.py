"""What tracing costs, per provider: the overhead forest plot and memory's fixed cost and growth.

Every tracing arm (not the baseline) is a row with its paired overhead and 95 % CI; where the
run measured it, the split of that overhead (before the wire, after the response, the event
loop's delay) sits in panels beside it. A run too short for a CI shows its point and says
"no CI" in the table.
"""

from __future__ import annotations

from loadgen.report import Chart, Table
from loadgen.report.chart_parts import Estimate, ci_bounds, draw_estimates, figure_size, named_groups, traced

OVERHEAD_PARTS = (
    ("overhead_latency_ms", "overhead"),
    ("overhead_before_wire_ms", "before wire"),
    ("overhead_after_response_ms", "after response"),
    ("overhead_loop_delay_ms", "loop delay"),
)
MEMORY_PARTS = (
    ("memory_fixed_mib", "memory_fixed_ci95_mib", "fixed MiB", "fixed cost (MiB)"),
    ("memory_growth_mib_per_1k_ops", "memory_growth_ci95_mib_per_1k_ops", "growth MiB/1k ops",
     "growth (MiB per 1,000 operations)"),
)


def _ci_key(key: str) -> str:
    """overhead_latency_ms → overhead_latency_ci95_ms."""
    return key[: -len("_ms")] + "_ci95_ms"


def overhead_charts(document: dict, colours: dict[str, str]) -> list[Chart]:
    return [_forest(suffix, name, traced(runs), colours)
            for suffix, name, runs in named_groups(document["runs"]) if traced(runs)]


def _forest(suffix: str, name: str, runs: list[dict], colours: dict[str, str]) -> Chart:
    parts = [(key, label) for key, label in OVERHEAD_PARTS
             if key == "overhead_latency_ms" or any(run.get(key) is not None for run in runs)]
    headers = ["arm"]
    for key, label in parts:
        headers += [f"{label} ms", f"{label} CI low", f"{label} CI high"]
    headers.append("note")
    rows = []
    for run in runs:
        row: list = [run["arm"]]
        for key, _ in parts:
            row += [run.get(key), *ci_bounds(run.get(_ci_key(key)))]
        row.append(_note(run))
        rows.append(row)
    labels = [run["arm"] for run in runs]
    arm_colours = [colours[run["arm"]] for run in runs]

    def draw(figure) -> None:
        figure_size(figure, 2.2 + 2.4 * len(parts), len(runs))
        axes = figure.subplots(1, len(parts), sharey=True, squeeze=False)[0]
        for ax, (key, label) in zip(axes, parts):
            estimates: list[Estimate] = [(run.get(key), run.get(_ci_key(key))) for run in runs]
            draw_estimates(ax, labels, arm_colours, estimates, f"{label} (ms)")
        figure.suptitle(f"Overhead vs the baseline — {name}", fontsize=10)
        figure.tight_layout()

    split = "; beside it the split: " + ", ".join(label for _, label in parts[1:]) if len(parts) > 1 else ""
    return Chart(
        id=f"overhead-{suffix}", section="Overhead", title=f"Overhead per arm — {name}",
        caption=("Each tracing arm's mean latency overhead against the baseline, paired call by call, "
                 f"with its 95% CI{split}. A CI that crosses zero is not a measured cost."),
        table=Table(headers, rows), draw=draw)


def _note(run: dict) -> str:
    if run.get("overhead_latency_ms") is None:
        return "unmeasured"
    return "no CI" if not run.get("overhead_latency_ci95_ms") else ""


def memory_charts(document: dict, colours: dict[str, str]) -> list[Chart]:
    return [_memory(suffix, name, traced(runs), colours)
            for suffix, name, runs in named_groups(document["runs"]) if traced(runs)]


def _memory(suffix: str, name: str, runs: list[dict], colours: dict[str, str]) -> Chart:
    headers = ["arm"]
    for _, _, label, _ in MEMORY_PARTS:
        headers += [label, f"{label} CI low", f"{label} CI high"]
    rows = [[run["arm"], *[cell for key, ci, _, _ in MEMORY_PARTS for cell in (run.get(key), *ci_bounds(run.get(ci)))]]
            for run in runs]
    labels = [run["arm"] for run in runs]
    arm_colours = [colours[run["arm"]] for run in runs]

    def draw(figure) -> None:
        figure_size(figure, 9.0, len(runs))
        axes = figure.subplots(1, len(MEMORY_PARTS), sharey=True)
        for ax, (key, ci, _, label) in zip(axes, MEMORY_PARTS):
            draw_estimates(ax, labels, arm_colours, [(run.get(key), run.get(ci)) for run in runs], label)
        figure.suptitle(f"Memory vs the baseline — {name}", fontsize=10)
        figure.tight_layout()

    return Chart(
        id=f"memory-{suffix}", section="Memory", title=f"Memory per arm — {name}",
        caption=("Each tracing arm's fixed memory cost (RSS above the baseline's) and its growth per 1,000 "
                 "operations, with 95% CIs where measured; n/m: not measured in this run."),
        table=Table(headers, rows), draw=draw)
