"""The generator's own memory over a long soak (issue 5, acceptance 4).

Runs `loadgen run --soak` with the baseline arm only (the generator with no tracer) at
200 calls/s for --minutes, and samples the RSS of the loadgen orchestrator and of its
worker processes every 10 s from outside. Prints the growth from the end of the first
window to the end, for the orchestrator, each worker and their sum (the mock LLM's
process is the target, not the generator, and is shown apart), and the command to
reproduce. Target: the generator grows by less than 20 MiB over an hour.

    .venv/bin/python benchmarks/bench_soak_memory.py [--minutes 60] [--rate 200] [--window 60]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from _common import PYTHON, REPO, command_line


def rss_mib(process: psutil.Process) -> float | None:
    try:
        return process.memory_info().rss / 2**20
    except psutil.Error:
        return None


def listens(process: psutil.Process) -> bool:
    try:
        return any(conn.status == psutil.CONN_LISTEN for conn in process.net_connections(kind="tcp"))
    except psutil.Error:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--window", type=float, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        jsonl = Path(tmp) / "soak.jsonl"
        proc = subprocess.Popen(
            [PYTHON, "-m", "loadgen.cli", "run", "--provider", "openai", "--arms", "baseline", "--rate", str(args.rate),
             "--duration", f"{args.minutes}m", "--window", f"{args.window}s", "--soak-jsonl", str(jsonl),
             "--warmup-operations", "100", "--quiet", "--export-json", str(Path(tmp) / "r.json")],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        main_process = psutil.Process(proc.pid)
        samples: list[dict] = []
        servers: set[int] = set()  # the embedded mock (the target, not the generator): it listens
        while proc.poll() is None:
            time.sleep(10)
            children = [c for c in main_process.children(recursive=True)
                        if "spawn_main" in " ".join(c.cmdline() or []) and c.name().startswith("python")]
            servers |= {c.pid for c in children if listens(c)}
            samples.append({"t": time.monotonic(), "main": rss_mib(main_process),
                            "procs": {c.pid: rss_mib(c) for c in children}})
        stderr = proc.stderr.read()
        lines = [json.loads(text) for text in jsonl.read_text().splitlines()] if jsonl.exists() else []
    windows = [line for line in lines if line["type"] == "window"]
    summary = next((line for line in lines if line["type"] == "summary"), None)
    print(f"loadgen exit {proc.returncode}; {len(windows)} windows of {args.window:g} s at {args.rate:g} rps")
    if not windows:
        print(stderr[-2000:])
        return 1
    first, last = windows[0], windows[-1]
    print(f"worker RSS (from the JSONL, every worker summed): window 0 {first['rss_mib']:.1f} MiB → "
          f"window {last['window']} {last['rss_mib']:.1f} MiB: {last['rss_mib'] - first['rss_mib']:+.1f} MiB")
    start = next(s for s in samples if s["t"] >= samples[0]["t"] + args.window) if len(samples) > 1 else samples[0]
    end = samples[-2] if len(samples) > 1 else samples[-1]  # the last sample may catch the exit
    print("sampled from outside, from the end of window 0 to the last sample:")
    print(f"  orchestrator: {start['main']:.1f} → {end['main']:.1f} MiB ({end['main'] - start['main']:+.1f})")
    growth = end["main"] - start["main"]
    for pid in start["procs"]:
        if pid in end["procs"] and start["procs"][pid] and end["procs"][pid]:
            change = end["procs"][pid] - start["procs"][pid]
            role = "embedded mock (the target, not the generator)" if pid in servers else "worker"
            print(f"  {role} {pid}: {start['procs'][pid]:.1f} → {end['procs'][pid]:.1f} MiB ({change:+.1f})")
            growth += 0 if pid in servers else change
    print(f"  the generator (orchestrator + workers): {growth:+.1f} MiB (target: < 20)")
    if summary:
        for row in summary["memory"]:
            print(f"slope {row['provider']}/{row['arm']}: {row['slope_mib_per_hour']} MiB/h {row['ci95']} → {row['verdict']}")
    print(f"reproduce: {command_line()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
