"""The fault matrix, timed, and its collector-down figures per arm (issue 14, acceptance 1 and 3).

Runs `loadgen faults profiles/faults.toml` (every scenario, both providers, the six arms)
— or reads a document it wrote (--from FILE) — and prints: the wall time and exit code;
every cell's verdict and the cross-checks (unaccounted, the collector against the
worker's buckets, drops the fault does not explain); then, for `collector_down`, per
provider and arm: latency p99 Δ and loop delay p99 Δ against the baseline during the
outage, peak RSS and RSS at the end against before, spans dropped by reason, the exporter's
attempts at the collector, and the times to recover and to shut down. Then the command.

    .venv/bin/python benchmarks/bench_faults.py [--from faults.json | --keep faults.json] [-- loadgen faults flags]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import PYTHON, REPO, command_line

from loadgen.document import validate_document


def run_matrix(extra: list[str], keep: str | None) -> tuple[dict, float, int]:
    path = Path(keep) if keep else Path(tempfile.mkdtemp()) / "faults.json"
    cmd = [PYTHON, "-m", "loadgen.cli", "faults", "profiles/faults.toml", "--quiet", "--export-json", str(path), *extra]
    start = time.monotonic()
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    took = time.monotonic() - start
    if not path.exists():
        sys.exit(f"loadgen faults wrote no document (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(path.read_text()), took, done.returncode


def _f(value, fmt: str = "{:+.1f}") -> str:
    return "n/m" if value is None else fmt.format(value)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--from", dest="source", help="a faults document already written")
    parser.add_argument("--keep", help="where to keep the document the run writes")
    args, extra = parser.parse_known_args()
    extra = [flag for flag in extra if flag != "--"]
    if args.source:
        document, took, code = json.loads(Path(args.source).read_text()), None, None
    else:
        document, took, code = run_matrix(extra, args.keep)
        print(f"loadgen faults: {took / 60:.1f} min, exit {code}, {len(document['scenarios'])} scenario runs")
    broken = validate_document(document)
    print("schema (loadgen/schemas/results.schema.json): " + ("valid" if not broken else "INVALID: " + "; ".join(broken[:5])))
    cells = document["cells"]
    verdicts = {}
    for cell in cells:
        verdicts[cell["verdict"]] = verdicts.get(cell["verdict"], 0) + 1
    print(f"{len(cells)} cells: " + ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items())))
    unaccounted = [c for c in cells if (c["spans"] or {}).get("unaccounted") not in (0,)]
    disagree = [c for c in cells if c["collector"] and (c["collector"]["exported_minus_received"]
                                                         or c["collector"]["rejected_minus_collector_rejected"])]
    unexplained = [c for c in cells if any(k["check"] == "drops_match_fault" and k["passed"] is False
                                           for k in c["checks"])]
    print(f"cells with unaccounted spans: {len(unaccounted)}; collector disagreeing: {len(disagree)}; "
          f"drops the fault does not explain: {len(unexplained)}")
    for cell in unaccounted + disagree + unexplained:
        print(f"  {cell['scenario']} · {cell['provider']} · {cell['arm']}: {cell['worst']}")
    for provider in dict.fromkeys(c["provider"] for c in cells):
        print(f"\ncollector_down · {provider} (30 s outage): Δ against the baseline during it")
        print(f"{'arm':18} {'Δp99 ms':>8} {'Δloop p99':>9} {'RSS peak':>8} {'RSS end vs before':>17} "
              f"{'queue_full':>10} {'exp_failed':>10} {'attempts':>8} {'down':>5} {'recover s':>9} {'exit s':>6}")
        for cell in (c for c in cells if c["scenario"] == "collector_down" and c["provider"] == provider):
            during = cell["phases"]["during"]
            dropped = cell["spans"]["dropped"] if cell["spans"] else {}
            collector = cell["collector"] or {}
            outcomes = collector.get("attempts_by_outcome") or {}
            print(f"{cell['arm']:18} {_f(during['latency_delta_p99_ms']):>8} {_f(during['loop_delay_delta_p99_ms']):>9} "
                  f"{_f(cell['rss_peak_mib'], '{:.0f}'):>8} {_f(cell['rss_back_percent'], '{:+.1f} %'):>17} "
                  f"{dropped.get('queue_full', 0):>10} {dropped.get('export_failed', 0):>10} "
                  f"{_f(collector.get('attempts'), '{}'):>8} {outcomes.get('down', 0):>5} "
                  f"{_f(cell['recovery_s'], '{:.2f}'):>9} {_f(cell['shutdown_s'], '{:.2f}'):>6}")
    print("\nreproduce: " + command_line())


if __name__ == "__main__":
    main()
