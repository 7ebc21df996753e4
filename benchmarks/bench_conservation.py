"""Span conservation under load (issue 3, acceptance 2).

Every arm, both providers, 300 rps for 30 s on the embedded target: first with the
default batch settings (expected: dropped 0, unaccounted 0), then with a queue of 64 and a
5 s schedule delay (expected: drops, all queue_full, unaccounted still 0). Prints one line
per provider/arm and the command to reproduce.

    .venv/bin/python benchmarks/bench_conservation.py [--rate 300] [--duration 30] [--arms ...]
"""

from __future__ import annotations

import argparse

from _common import command_line, loadgen_run

ARMS = "baseline,otel,openinference,openllmetry,honeyhive,anthropic-native"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=300)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--arms", default=ARMS)
    parser.add_argument("--provider", default="both")
    args = parser.parse_args()
    ok = True
    for label, extra in (("default batch settings", []),
                         ("queue 64, 5 s delay", ["--max-queue-size", "64", "--schedule-delay-ms", "5000"])):
        code, doc = loadgen_run("--provider", args.provider, "--arms", args.arms, "--rate", str(args.rate),
                                "--duration", f"{args.duration}s", "--warmup-operations", "0", *extra, timeout=3600)
        print(f"{label}: loadgen exit {code}")
        for run in doc["runs"]:
            spans = run.get("spans")
            if not spans:
                continue
            dropped = {k: v for k, v in spans["dropped"].items() if v}
            print(f"  {run['provider']:>9}/{run['arm']:<16} sent {run['operations_sent']} at "
                  f"{run['achieved_rate_rps']}/s, CPU {run['cpu_percent_by_worker']}%: ended {spans['ended']}, "
                  f"received {spans['received']}, dropped {dropped or 0}, unaccounted {spans['unaccounted']}, "
                  f"duplicates {spans['duplicates']}, coverage {run['trace_coverage_percent']}%")
            if spans["unaccounted"] != 0:
                ok = False
            if not extra and dropped:
                ok = False
            if extra and set(dropped) - {"queue_full"}:
                ok = False
    print("PASS" if ok else "FAIL")
    print(f"reproduce: {command_line()}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
