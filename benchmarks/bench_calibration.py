"""Known-answer check of the overhead and memory metrics (issue 4, acceptance 2).

The calibration arm spends a chosen CPU time per call on the event loop and holds a chosen
memory; a second baseline arm runs beside it. Arms alternate in interleaved rounds. Pass
when: sequential — the calibration overhead's 95 % CI contains the µs asked for; open
loop — the mean is within ±0.3 ms of it with a CI half-width ≤ 0.3 ms; both — the
baseline-vs-baseline CI contains 0 and the memory overhead is within ±10 % of the MiB
asked for. Prints the figures, the verdicts and the command to reproduce.

    .venv/bin/python benchmarks/bench_calibration.py [--us 2000] [--mib 50] [--rate 50] [--duration 60]
        [--operations 200] [--provider openai]
"""

from __future__ import annotations

import argparse

from _common import command_line, loadgen_run


def check(name: str, ok: bool, detail: str) -> bool:
    print(f"    {'PASS' if ok else 'FAIL'} {name}: {detail}")
    return ok


def judge(doc: dict, us: int, mib: int, open_loop: bool) -> bool:
    runs = {run["arm"]: run for run in doc["runs"]}
    cal, twin = runs["calibration"], runs["baseline-2"]
    want = us / 1000
    mean, (low, high) = cal["overhead_latency_ms"], cal["overhead_latency_ci95_ms"]
    print(f"  calibration: {mean:+.3f} ms [{low:+.3f}, {high:+.3f}] over {cal['overhead_pairs']} pairs; "
          f"memory {cal['memory_overhead_mib']:+.1f} MiB; CPU/op Δ {cal['cpu_per_operation_delta_us']:+.0f} µs")
    print(f"  baseline-2:  {twin['overhead_latency_ms']:+.3f} ms {twin['overhead_latency_ci95_ms']}; "
          f"memory {twin['memory_overhead_mib']:+.1f} MiB")
    print(f"  validity: {[(run['arm'], run['valid'], run['cpu_percent'], run['dispatch_lag_ms']['p99']) for run in doc['runs']]}")
    ok = True
    if open_loop:
        ok &= check("mean", abs(mean - want) <= 0.3, f"{mean:.3f} ms within ±0.3 of {want:.1f}")
        ok &= check("CI half-width", (high - low) / 2 <= 0.3, f"{(high - low) / 2:.3f} ms ≤ 0.3")
    else:
        ok &= check("CI contains the cost", low <= want <= high, f"[{low:.3f}, {high:.3f}] ∋ {want:.1f}")
    b_low, b_high = twin["overhead_latency_ci95_ms"]
    ok &= check("baseline vs baseline", b_low <= 0 <= b_high, f"[{b_low:.3f}, {b_high:.3f}] ∋ 0")
    memory = cal["memory_overhead_mib"]
    ok &= check("memory", abs(memory - mib) <= 0.1 * mib, f"{memory:.1f} MiB within ±10% of {mib}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--us", type=int, default=2000)
    parser.add_argument("--mib", type=int, default=50)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--operations", type=int, default=200)
    parser.add_argument("--provider", default="openai")
    args = parser.parse_args()
    common = ["--provider", args.provider, "--arms", "baseline,calibration,baseline", "--calibrate-us", str(args.us),
              "--calibrate-mib", str(args.mib), "--warmup-operations", "20"]
    ok = True
    for label, load, open_loop in (
        (f"sequential, {args.operations} operations", ["--sequential", "--operations", str(args.operations)], False),
        (f"open loop {args.rate:g} rps for {args.duration:g} s", ["--rate", str(args.rate), "--duration",
                                                                  f"{args.duration}s"], True),
    ):
        code, doc = loadgen_run(*common, *load, timeout=3600)
        print(f"{label} (loadgen exit {code}, {doc['runs'][0]['rounds']} rounds):")
        ok &= judge(doc, args.us, args.mib, open_loop)
    print(f"{'all checks pass' if ok else 'some checks FAIL'}\nreproduce: {command_line()}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
