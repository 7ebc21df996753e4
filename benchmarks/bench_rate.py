"""Rate accuracy, counted at the server (issue 2, acceptance 2).

A standalone mock LLM with a 50 ms TTFT (pinned to its own core) records the arrival time
of every request. loadgen sends 200 rps `constant` for 30 s, then 200 rps `poisson` for
30 s, through the openai SDK. The server's count must be 6,000 ± 1 % for `constant` with
an even pace (inter-arrival CV near 0); the `poisson` inter-arrivals must have a CV of
0.95–1.05.

    .venv/bin/python benchmarks/bench_rate.py [--rate 200] [--duration 30]

Each worker process (loadgen runs one per 100 calls/s, up to one per core) makes one
priming call before the common start; those are the first arrivals and are left out.
"""

from __future__ import annotations

import argparse
import statistics

from _common import command_line, http_json, loadgen_run, standalone_mock


def arrivals_after_priming(url: str, workers: int) -> list[int]:
    """Arrivals less the priming calls: each worker makes one before the common start."""
    arrivals = http_json(url + "/_mock/arrivals")["arrivals_ns"]
    return sorted(arrivals)[workers:]


def pace(arrivals: list[int]) -> dict:
    gaps = [(b - a) / 1e6 for a, b in zip(arrivals, arrivals[1:])]
    mean = statistics.fmean(gaps)
    ordered = sorted(gaps)
    # Requests in each whole second of the run: an even pace has no bursts or holes.
    first = arrivals[0]
    per_second: dict[int, int] = {}
    for t in arrivals:
        per_second[(t - first) // 1_000_000_000] = per_second.get((t - first) // 1_000_000_000, 0) + 1
    whole = [per_second.get(k, 0) for k in range(int((arrivals[-1] - first) // 1_000_000_000))]
    return {
        "per_second_min": min(whole) if whole else None,
        "per_second_max": max(whole) if whole else None,
        "count": len(arrivals),
        "span_s": (arrivals[-1] - arrivals[0]) / 1e9,
        "rate_rps": (len(arrivals) - 1) / ((arrivals[-1] - arrivals[0]) / 1e9),
        "gap_mean_ms": mean,
        "gap_p1_ms": ordered[len(ordered) // 100],
        "gap_p99_ms": ordered[len(ordered) * 99 // 100],
        "cv": statistics.pstdev(gaps) / mean,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--duration", type=float, default=30)
    args = parser.parse_args()
    expected = int(args.rate * args.duration)
    ok = True
    with standalone_mock(ttft_ms=50) as url:
        for arrival in ("constant", "poisson"):
            http_json(url + "/_mock/reset", {})
            code, doc = loadgen_run("--base-url", url + "/v1", "--provider", "openai", "--arrival", arrival,
                                    "--rate", str(args.rate), "--duration", f"{args.duration}s",
                                    "--warmup-operations", "0", "--no-stream")
            run = doc["runs"][0]
            seen = pace(arrivals_after_priming(url, run["workers"]))
            print(f"{arrival}: server saw {seen['count']} requests (loadgen sent {run['operations_sent']}, "
                  f"planned {run['operations_planned']}, {run['workers']} workers), {seen['rate_rps']:.2f}/s over {seen['span_s']:.2f} s; "
                  f"inter-arrival mean {seen['gap_mean_ms']:.3f} ms, p1 {seen['gap_p1_ms']:.3f} ms, "
                  f"p99 {seen['gap_p99_ms']:.3f} ms, CV {seen['cv']:.3f}; per whole second {seen['per_second_min']}–"
                  f"{seen['per_second_max']} requests; loadgen exit {code}, valid {doc['valid']}")
            for reason in doc["invalid_reasons"]:
                print(f"  loadgen reported invalid: {reason['rule']}: {reason['detail']}")
            if arrival == "constant":
                within = abs(seen["count"] - expected) <= 0.01 * expected
                print(f"  constant: {seen['count']} vs {expected} ± 1 %: {'PASS' if within else 'FAIL'}")
                ok &= within
            else:
                within = 0.95 <= seen["cv"] <= 1.05
                print(f"  poisson: CV {seen['cv']:.3f} in 0.95–1.05: {'PASS' if within else 'FAIL'}")
                ok &= within
    print(f"reproduce: {command_line()}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
