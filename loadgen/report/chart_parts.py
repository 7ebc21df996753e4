"""What every chart shares: an arm's colour, slugs, run groups, and drawing an estimate with its CI.

Colours follow the arms' first appearance in the document, so an arm keeps one colour in
every chart of a page; the baseline is grey. An unmeasured figure is never drawn as a value:
its row says "n/m" where the point would be.
"""

from __future__ import annotations

from loadgen.arms import is_baseline
from loadgen.report import slug

UNMEASURED = "n/m"
BASELINE_GREY = "#8c8c8c"
# matplotlib's tab10 without its grey, which is the baseline's
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")
Estimate = tuple[float | None, list[float] | None]  # (value, [CI low, CI high] or None)


def arm_colours(document: dict) -> dict[str, str]:
    """Each arm label in the document, in order of first appearance, to its colour."""
    colours: dict[str, str] = {}
    for arm in _arm_labels(document):
        if arm not in colours:
            traced = sum(1 for label in colours if not is_baseline(label))
            colours[arm] = BASELINE_GREY if is_baseline(arm) else PALETTE[traced % len(PALETTE)]
    return colours


def _arm_labels(node):
    if isinstance(node, dict):
        if isinstance(node.get("arm"), str):
            yield node["arm"]
        for value in node.values():
            yield from _arm_labels(value)
    elif isinstance(node, list):
        for item in node:
            yield from _arm_labels(item)


def named_groups(runs: list[dict]) -> list[tuple[str, str, list[dict]]]:
    """(id suffix, title, runs) per provider and mode, in the document's order; the mode is named only
    when the document has several."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for run in runs:
        groups.setdefault((run["provider"], run.get("mode") or ""), []).append(run)
    several = len({mode for _, mode in groups}) > 1
    named = []
    for (provider, mode), members in groups.items():
        if several and mode:
            named.append((slug(provider, mode), f"{provider} · {mode}", members))
        else:
            named.append((slug(provider), provider, members))
    return named


def traced(runs: list[dict]) -> list[dict]:
    """The tracing arms' runs (every arm but the baseline)."""
    return [run for run in runs if not is_baseline(run["arm"])]


def ci_bounds(ci: list[float] | None) -> list[float | None]:
    return [ci[0], ci[1]] if ci else [None, None]


def draw_estimates(ax, labels: list[str], colours: list[str], estimates: list[Estimate], xlabel: str) -> None:
    """One row per label: the point with its CI as a horizontal bar, a zero line; n/m where unmeasured."""
    for row, (colour, (value, ci)) in enumerate(zip(colours, estimates)):
        if value is None:
            ax.text(0, row, UNMEASURED, ha="center", va="center", fontsize=8, color="#555555")
            continue
        xerr = [[max(0.0, value - ci[0])], [max(0.0, ci[1] - value)]] if ci else None
        ax.errorbar([value], [row], xerr=xerr, fmt="o", color=colour, ecolor=colour, capsize=3, markersize=5)
    ax.axvline(0, color="#333333", linewidth=0.8)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", color="#e5e5e5", linewidth=0.6)


def figure_size(figure, width: float, rows: int, per_row: float = 0.45, base: float = 1.4) -> None:
    figure.set_size_inches(width, base + per_row * max(rows, 1))
