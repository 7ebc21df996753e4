"""Do the overhead CIs keep their promise? A/A coverage and the calibration arm's known answers.

Issue 10, acceptance 4. Every run goes through the CLI (`loadgen run … --export-json`), one
at a time, and each is appended to a JSONL file as it ends, so an interrupted benchmark
keeps what it measured. The groups are interleaved (one run of each in turn), so slow drift
on a shared machine falls on every group alike.

- A/A: `--arms baseline,baseline --rate 50 --duration 20s` → the CI of baseline-2 − baseline
  must contain 0 in ≥ 18 of 20 runs, and the mean of the 20 differences must be within
  ±0.05 ms of 0 (no systematic offset).
- Calibration, a 2,000 µs hook before the call, `--calibrate-kind sleep` and `spin`, each
  sequential and at 50 rps: the known answer is the time the hook actually held the loop
  (`calibration.held_mean_ms`, recorded per call). sleep: the CI contains it in ≥ 9 of 10;
  spin: the mean is within ±0.3 ms of it in ≥ 9 of 10.
- Width: A/A at 50 rps × 60 s → the median CI half-width ≤ 0.3 ms.

    .venv/bin/python benchmarks/bench_ci_coverage.py [--aa 20] [--calibration 10] [--wide 5] [--sync 10]
        [--only GROUP,…] [--jsonl benchmarks/ci_coverage.jsonl] [--summary-only]

The sync client (issue 16, acceptance 4) adds two groups, each checked as its async twin:
`aa_20s_sync` (A/A with `--client sync`) and `sleep_sequential_sync` (the 2,000 µs sleep hook
in a pool thread, sequential).

Sequential runs use a faster mock (TTFT 20 ms, 1 ms a token) so that 100 operations per arm
take seconds; the hook's known answer does not depend on the server's latency.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from _common import REPO, command_line, loadgen_run

AA = ["--provider", "openai", "--arms", "baseline,baseline", "--rate", "50", "--duration", "20s"]
WIDE = ["--provider", "openai", "--arms", "baseline,baseline", "--rate", "50", "--duration", "60s"]
SEQUENTIAL = ["--sequential", "--operations", "100", "--mock-ttft-ms", "20", "--mock-itl-ms", "1"]
OPEN = ["--rate", "50", "--duration", "20s"]


def calibration(kind: str, load: list[str]) -> list[str]:
    return ["--provider", "openai", "--arms", "baseline,calibration", "--calibrate-kind", kind,
            "--calibrate-us", "2000", *load]


GROUPS = {
    "aa_20s": AA,
    "sleep_sequential": calibration("sleep", SEQUENTIAL),
    "sleep_50rps": calibration("sleep", OPEN),
    "spin_sequential": calibration("spin", SEQUENTIAL),
    "spin_50rps": calibration("spin", OPEN),
    "aa_60s": WIDE,
    # The sync client in threads (issue 16, acceptance 4): the same checks, its rows beside the async ones.
    "aa_20s_sync": [*AA, "--client", "sync"],
    "sleep_sequential_sync": [*calibration("sleep", SEQUENTIAL), "--client", "sync"],
}
SYNC_GROUPS = ("aa_20s_sync", "sleep_sequential_sync")


def one_run(group: str) -> dict:
    started = time.time()
    code, doc = loadgen_run(*GROUPS[group], timeout=900)
    runs = {run["arm"]: run for run in doc["runs"]}
    arm = runs.get("baseline-2") or runs["calibration"]
    held = (arm.get("calibration") or {}).get("held_mean_ms")
    return {
        "group": group, "exit": code, "seconds": round(time.time() - started, 1),
        "mean_ms": arm["overhead_latency_ms"], "ci95_ms": arm["overhead_latency_ci95_ms"],
        "method": arm.get("overhead_ci_method"), "df": arm.get("overhead_ci_df"), "pairs": arm["overhead_pairs"],
        "held_ms": held,
        "before_wire_ms": arm.get("overhead_before_wire_ms"), "after_response_ms": arm.get("overhead_after_response_ms"),
        "loop_delay_ms": arm.get("overhead_loop_delay_ms"),
        "cpu_percent": [runs[label]["cpu_percent"] for label in runs],
    }


def summarize(rows: list[dict]) -> bool:
    by_group: dict[str, list[dict]] = {}
    for row in rows:
        if row["ci95_ms"] is not None:
            by_group.setdefault(row["group"], []).append(row)
    ok = True
    print(f"{'group':<18} {'runs':>4}  {'mean Δ':>8}  {'median ±':>8}  verdict")
    for group, items in by_group.items():
        means = [r["mean_ms"] for r in items]
        halves = [(r["ci95_ms"][1] - r["ci95_ms"][0]) / 2 for r in items]
        line = f"{group:<18} {len(items):>4}  {statistics.fmean(means):+8.3f}  {statistics.median(halves):8.3f}  "
        if group.startswith("aa"):
            covered = sum(r["ci95_ms"][0] <= 0 <= r["ci95_ms"][1] for r in items)
            if group.startswith("aa_20s"):
                verdict = (covered >= 0.9 * len(items) and abs(statistics.fmean(means)) <= 0.05)
                line += f"CI ∋ 0 in {covered}/{len(items)} (≥ 90%), mean {statistics.fmean(means):+.3f} (±0.05)"
            else:
                verdict = statistics.median(halves) <= 0.3
                line += f"CI ∋ 0 in {covered}/{len(items)}; median half-width {statistics.median(halves):.3f} (≤ 0.3)"
        elif group.startswith("sleep"):
            covered = sum(r["ci95_ms"][0] <= r["held_ms"] <= r["ci95_ms"][1] for r in items)
            verdict = covered >= 0.9 * len(items)
            held = statistics.fmean(r["held_ms"] for r in items)
            line += f"CI ∋ held ({held:.3f} ms) in {covered}/{len(items)} (≥ 90%)"
        else:
            near = sum(abs(r["mean_ms"] - r["held_ms"]) <= 0.3 for r in items)
            verdict = near >= 0.9 * len(items)
            excess = statistics.fmean(r["mean_ms"] - r["held_ms"] for r in items)
            line += f"|mean − held| ≤ 0.3 in {near}/{len(items)} (≥ 90%); mean excess {excess:+.3f} ms"
        print(line + ("  PASS" if verdict else "  FAIL"))
        ok &= verdict
    split(by_group)
    return ok


def split(by_group: dict[str, list[dict]]) -> None:
    """Where the calibration arm's overhead lands: the hook's own time is in Δ before wire
    (acceptance 5: within ±0.2 ms of held); what it does to the other calls in flight (their
    responses read late while it holds the loop) is in Δ wire, the rest of the latency."""
    print(f"\n{'group':<18} {'held':>6} {'Δ lat':>7} {'Δ bw':>7} {'Δ wire':>7} {'Δ after':>7} {'Δ lag':>7}  "
          f"|Δ bw − held| ≤ 0.2")
    for group, items in by_group.items():
        if group.startswith("aa") or any(r.get("before_wire_ms") is None for r in items):
            continue
        wire = [r["mean_ms"] - r["before_wire_ms"] - r["after_response_ms"] - r["loop_delay_ms"] for r in items]
        near = sum(abs(r["before_wire_ms"] - r["held_ms"]) <= 0.2 for r in items)
        print(f"{group:<18} {statistics.fmean(r['held_ms'] for r in items):6.3f} "
              f"{statistics.fmean(r['mean_ms'] for r in items):+7.3f} "
              f"{statistics.fmean(r['before_wire_ms'] for r in items):+7.3f} {statistics.fmean(wire):+7.3f} "
              f"{statistics.fmean(r['after_response_ms'] for r in items):+7.3f} "
              f"{statistics.fmean(r['loop_delay_ms'] for r in items):+7.3f}  {near}/{len(items)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aa", type=int, default=20, help="A/A runs at 20 s")
    parser.add_argument("--calibration", type=int, default=10, help="runs of each calibration group")
    parser.add_argument("--wide", type=int, default=5, help="A/A runs at 60 s")
    parser.add_argument("--sync", type=int, default=10, help="runs of each sync-client group")
    parser.add_argument("--only", help="run only these groups, comma-separated (e.g. aa_20s_sync,sleep_sequential_sync)")
    parser.add_argument("--jsonl", default=str(REPO / "benchmarks" / "ci_coverage.jsonl"))
    parser.add_argument("--summary-only", action="store_true", help="summarize the JSONL, run nothing")
    args = parser.parse_args()
    path = Path(args.jsonl)
    if not args.summary_only:
        wanted = {"aa_20s": args.aa, "aa_60s": args.wide,
                  **{group: args.calibration for group in GROUPS if not group.startswith("aa")},
                  **{group: args.sync for group in SYNC_GROUPS}}
        if args.only:
            unknown = set(args.only.split(",")) - set(GROUPS)
            if unknown:
                parser.error(f"--only: no group {', '.join(sorted(unknown))}; groups: {', '.join(GROUPS)}")
            wanted = {group: count for group, count in wanted.items() if group in args.only.split(",")}
        for turn in range(max(wanted.values())):
            for group, count in wanted.items():
                if turn >= count:
                    continue
                row = one_run(group)
                with path.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
                ci = row["ci95_ms"] or [float("nan")] * 2
                print(f"{group} #{turn + 1}: Δ {row['mean_ms']:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}] df {row['df']} "
                      f"held {row['held_ms']} exit {row['exit']} ({row['seconds']} s)", flush=True)
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    ok = summarize(rows)
    print(f"{'all checks pass' if ok else 'some checks FAIL'}\nreproduce: {command_line()}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
