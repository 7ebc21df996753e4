"""`loadgen compare` against known answers (issue 15, acceptance 3).

Runs one profile N times as it is (A/A: nothing changed, so every row should be within
noise) and once with the calibration arm holding the loop --calibrate-us µs per call (a known
regression of that size in one arm), then compares each A/A pair and the first run against the
calibrated one under `--fail-on worse`. Prints, for every comparison: the exit code, the
verdict counts, every row that was not within noise, and the calibration arm's overhead
change with its CI. Then the command.

    .venv/bin/python benchmarks/bench_compare.py [--profile P] [--runs 2] [--calibrate-us 1000] [--keep DIR]
    .venv/bin/python benchmarks/bench_compare.py --from DIR     # compare again the documents a run kept
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import PYTHON, REPO, command_line

ARMS = "baseline,otel,openinference,honeyhive,calibration"


def loadgen(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "loadgen.cli", *args], cwd=REPO, capture_output=True, text=True)


def run(profile: str, out: Path, calibrate_us: int) -> float:
    start = time.monotonic()
    done = loadgen("run", profile, "--arms", ARMS, "--calibrate-us", str(calibrate_us), "--quiet",
                   "--export-json", str(out))
    if not out.exists():
        sys.exit(f"loadgen run wrote no document (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return time.monotonic() - start


def compare(base: Path, new: Path, folder: Path) -> tuple[int, dict]:
    out = folder / f"compare-{base.stem}-{new.stem}.json"
    done = loadgen("compare", str(base), str(new), "--fail-on", "worse", "--export-json", str(out))
    if not out.exists():
        sys.exit(f"loadgen compare wrote no document (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return done.returncode, json.loads(out.read_text())


def describe(label: str, code: int, document: dict) -> None:
    counts = ", ".join(f"{n} {verdict}" for verdict, n in document["summary"].items())
    print(f"{label}: exit {code}; {counts}")
    for row in document["rows"]:
        if row["verdict"] != "within noise":
            ci = row["change_ci95"]
            span = f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else f" ({row['why']})"
            print(f"  {row['provider']}/{row['arm']} {row['label']}: {row['verdict']}, "
                  f"{row['base']} → {row['new']} {row['unit']}, change {row['change']:+.3f}{span}, floor {row['floor']}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="profiles/quickstart.toml")
    parser.add_argument("--runs", type=int, default=2, help="runs of the profile as it is (A/A pairs among them)")
    parser.add_argument("--calibrate-us", type=int, default=1000)
    parser.add_argument("--keep", help="a folder to keep the documents in")
    parser.add_argument("--from", dest="source", help="a folder a run kept: compare its documents again")
    args = parser.parse_args()
    folder = Path(args.source or args.keep or tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    plain = [folder / f"a{index}.json" for index in range(1, args.runs + 1)]
    held = folder / f"held{args.calibrate_us}.json"
    if args.source:
        plain = sorted(folder.glob("a[0-9]*.json"))
    else:
        for path in plain:
            print(f"{path.name}: {args.profile}, calibration 0 µs: {run(args.profile, path, 0):.0f} s")
        print(f"{held.name}: {args.profile}, calibration {args.calibrate_us} µs: "
              f"{run(args.profile, held, args.calibrate_us):.0f} s")
    aa = [(base, new, *compare(base, new, folder)) for base, new in itertools.combinations(plain, 2)]
    for base, new, code, document in aa:
        describe(f"A/A {base.stem} → {new.stem}", code, document)
    rows = sum(len(document["rows"]) for *_, document in aa)
    flagged = sum(row["verdict"] in ("worse", "better") for *_, document in aa for row in document["rows"])
    print(f"A/A: {flagged} of {rows} rows worse or better; {sum(code == 0 for _, _, code, _ in aa)} of {len(aa)} exit 0")
    code, document = compare(plain[0], held, folder)
    describe(f"calibrated {plain[0].stem} → {held.stem}", code, document)
    for row in document["rows"]:
        if row["arm"] == "calibration" and row["metric"] == "overhead_latency_ms":
            print(f"calibration arm, overhead: {row['verdict']}, change {row['change']:+.3f} ms "
                  f"{row['change_ci95']} (held {args.calibrate_us / 1000:g} ms per call)")
    print(f"documents in {folder}")
    print("command: " + command_line())


if __name__ == "__main__":
    main()
