"""Which rule should call a change worse? Replays the documents bench_compare.py kept under three rules.

For each folder (a1.json, a2.json, … and heldN.json), every A/A pair and every plain run against
the held one are compared row by row, with the change's spread as `loadgen compare` computes it,
under:

- zero+floor: worse when the 95 % CI excludes 0 and the change is larger than the floor;
- bonferroni: the same with the CI widened to 1 − 0.05/m for the m rows of the comparison;
- beyond-floor: worse when the whole 95 % CI lies beyond the floor (what `loadgen compare` does).

Prints, per rule: the A/A rows flagged, the A/A comparisons that would fail `--fail-on worse`, and
how many calibrated comparisons found the calibration arm's overhead worse. Then the command.

    .venv/bin/python benchmarks/bench_compare_rules.py DIR [DIR …]
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from statistics import NormalDist

from _common import command_line

from loadgen.compare import FIGURES, beyond, change_spread, run_key
from loadgen.overhead import t975


def _quantile(level: float, df: float | None) -> float:
    """Student t at `level` from its Cornish–Fisher expansion in z (normal when df is None). Below df 3 it
    understates t, so the Bonferroni rule's hits here are if anything more than the exact quantile's."""
    z = NormalDist().inv_cdf(level)
    if df is None:
        return z
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / df + g2 / df**2 + g3 / df**3


def rows(base: dict, new: dict) -> list[tuple]:
    b = {run_key(run): run for run in base["runs"]}
    n = {run_key(run): run for run in new["runs"]}
    found = []
    for key in b:
        if key not in n:
            continue
        for figure in FIGURES:
            before, after = figure.value(b[key]), figure.value(n[key])
            if before is None or after is None:
                continue
            spread = change_spread(figure.ci95(b[key]), figure.df(b[key]), figure.ci95(n[key]), figure.df(n[key]))
            if spread is not None:
                found.append((key, figure.metric, after - before, spread, figure.floor_for(before),
                              figure.lower_is_better))
    return found


def flagged(row: tuple, rule: str, m: int) -> bool:
    _, _, change, (se, df), floor, lower = row
    if rule == "beyond-floor":
        half = t975(df) * se
        ci = [change - half, change + half]
        return beyond(ci, floor, lower) or beyond(ci, floor, not lower)
    level = 0.975 if rule == "zero+floor" else 1 - 0.025 / m
    half = t975(df) * se if rule == "zero+floor" else _quantile(level, df) * se
    return (change - half > 0 or change + half < 0) and abs(change) > floor


def main() -> None:
    folders = [Path(arg) for arg in sys.argv[1:]]
    if not folders:
        sys.exit(__doc__)
    sets = []
    for folder in folders:
        plain = [json.loads(path.read_text()) for path in sorted(folder.glob("a[0-9]*.json"))]
        held = [json.loads(path.read_text()) for path in sorted(folder.glob("held*.json"))]
        sets.append((plain, held))
    for rule in ("zero+floor", "bonferroni", "beyond-floor"):
        aa_rows = aa_flagged = aa_failed = aa_pairs = 0
        found = tried = 0
        for plain, held in sets:
            for a, b in itertools.combinations(plain, 2):
                compared = rows(a, b)
                hits = [row for row in compared if flagged(row, rule, len(compared))]
                aa_rows += len(compared)
                aa_flagged += len(hits)
                aa_failed += bool(hits)
                aa_pairs += 1
            for a, h in itertools.product(plain, held):
                compared = rows(a, h)
                for row in compared:
                    if row[0][1] == "calibration" and row[1] == "overhead_latency_ms":
                        tried += 1
                        found += flagged(row, rule, len(compared)) and row[2] > 0
        print(f"{rule}: A/A rows flagged {aa_flagged} of {aa_rows}; A/A comparisons failing {aa_failed} of "
              f"{aa_pairs}; the held calibration found worse in {found} of {tried}")
    print("command: " + command_line())


if __name__ == "__main__":
    main()
