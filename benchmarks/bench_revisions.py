"""Did a change of code make the generator itself slower? Two revisions, the same run, taken in turn.

A change of structure must leave the generator's own cost where it was. This script checks
out BASE into a temporary git worktree, and runs the same one-arm run (the baseline, or one
tracer arm alone with `--arm`) with each revision in turn (base, this tree, base,
this tree, …), so the machine's drift lands on both alike. For each run it reads the worker's
CPU per operation, the latency p50 and the dispatch-lag p99 from the exported JSON, and prints
each revision's median and the ratio this tree / base (noisy machines: compare ratios measured
in one run).

    .venv/bin/python benchmarks/bench_revisions.py --base REV [--arm otel] [--rounds 3] [--rate 200] [--duration 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

from _common import PYTHON, REPO, command_line

FIGURES = {
    "CPU per operation (µs)": lambda run: run["cpu_per_operation_us"],
    "latency p50 (ms)": lambda run: run["latency_ms"]["p50"],
    "dispatch-lag p99 (ms)": lambda run: run["dispatch_lag_ms"]["p99"],
}


def one_run(tree: Path, arm: str, rate: float, duration: float, provider: str) -> dict:
    """One one-arm run with the code of `tree` (this interpreter, that tree's package first on the path)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        env = {**os.environ, "PYTHONPATH": str(tree)}
        done = subprocess.run(
            [PYTHON, "-m", "loadgen.cli", "run", str(tree / "profiles" / "quickstart.toml"), "--provider", provider,
             "--arms", arm, "--rate", f"{rate:g}", "--duration", f"{duration:g}s", "--quiet",
             "--export-json", str(out)],
            cwd=tree, env=env, capture_output=True, text=True, timeout=600)
        if not out.exists():
            raise RuntimeError(f"{tree}: no results (exit {done.returncode}): {done.stderr.strip()[-500:]}")
        (run,) = json.loads(out.read_text())["runs"]
        return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the revision to compare against (any git rev)")
    parser.add_argument("--arm", default="baseline", help="the one arm to run (a tracer arm runs alone, unpaired)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--provider", default="openai", choices=["openai", "anthropic"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base_tree = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base_tree), args.base], cwd=REPO, check=True)
        try:
            runs: dict[str, list[dict]] = {"base": [], "this tree": []}
            for round_ in range(args.rounds):
                for name, tree in (("base", base_tree), ("this tree", REPO)):
                    run = one_run(tree, args.arm, args.rate, args.duration, args.provider)
                    runs[name].append(run)
                    print(f"round {round_ + 1} {name}: " + ", ".join(
                        f"{label} {figure(run):.3f}" for label, figure in FIGURES.items()
                        if figure(run) is not None) + ("" if run["valid"] else " (invalid)"), flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=REPO, check=False)
    print(f"\n{args.provider}, {args.arm} arm, {args.rate:g}/s constant for {args.duration:g} s, {args.rounds} runs each "
          f"(medians):")
    for label, figure in FIGURES.items():
        base = statistics.median(figure(run) for run in runs["base"])
        mine = statistics.median(figure(run) for run in runs["this tree"])
        print(f"  {label:<24} base {base:8.3f}   this tree {mine:8.3f}   ratio {mine / base:.3f}")
    print(f"\nreproduce: {command_line()}")


if __name__ == "__main__":
    main()
