"""The sync client in threads, counted at the server (issue 16, acceptance 1).

A standalone mock LLM (50 ms TTFT, pinned to its own core) records the arrival time of every
request. loadgen sends `--client sync --rate 100 --duration 20s` (poisson) through the SDK's
sync client on a pool of OS threads; eight seconds into the measured phase the mock stalls
for 2 s (`POST /_mock/stall`: it answers nothing until the stall ends). Pass when:

- the server's count (less the priming calls) is within ±1 % of the plan;
- the Poisson inter-arrival CV at the server is within 0.9–1.1 over the measured phase;
- the stall is visible at p95 of the latency from intended start (≥ 1,000 ms: ~10 % of the
  calls fall in a 2 s stall of a 20 s run);
- loadgen exits 0.

    .venv/bin/python benchmarks/bench_sync_client.py [--rate 100] [--duration 20] [--provider openai]
        [--stall 2] [--stall-at 8] [--threads auto]
"""

from __future__ import annotations

import argparse
import threading
import time

from _common import command_line, http_json, loadgen_run, standalone_mock
from bench_rate import arrivals_after_priming, pace


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--provider", default="openai", choices=["openai", "anthropic"])
    parser.add_argument("--stall", type=float, default=2.0)
    parser.add_argument("--stall-at", type=float, default=8.0)
    parser.add_argument("--threads", default="auto")
    args = parser.parse_args()
    with standalone_mock(ttft_ms=50) as url:
        http_json(url + "/_mock/reset", {})

        def stall_later() -> None:
            # Wait for the measured phase: the first arrivals after the priming calls.
            deadline = time.monotonic() + 60
            while http_json(url + "/_mock/stats")["requests"] < 10 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(args.stall_at)
            http_json(url + "/_mock/stall", {"seconds": args.stall})

        threading.Thread(target=stall_later, daemon=True).start()
        started = time.monotonic()
        code, doc = loadgen_run("--base-url", url + "/v1", "--provider", args.provider, "--client", "sync",
                                "--threads", args.threads, "--arrival", "poisson", "--rate", str(args.rate),
                                "--duration", f"{args.duration}s", "--warmup-operations", "0",
                                "--timeout", "30", "--no-stream", "--arms", "baseline")
        wall = time.monotonic() - started
        run = doc["runs"][0]
        arrivals = arrivals_after_priming(url, run["workers"])
    figures = pace(arrivals)
    planned = run["operations_planned"]
    count_ok = abs(figures["count"] - planned) <= 0.01 * planned
    cv_ok = 0.9 <= figures["cv"] <= 1.1
    p95 = run["latency_ms"]["p95"]
    stall_ok = p95 is not None and p95 >= 1000
    print(f"loadgen exit {code} in {wall:.0f} s; {run['workers']} worker(s) × {run['threads']} OS threads "
          f"({run.get('threads_basis') or doc['config'].get('threads_basis', '')})")
    print(f"server count {figures['count']} (plan {planned}): {'PASS' if count_ok else 'FAIL'} ±1 %")
    print(f"server rate {figures['rate_rps']:.2f}/s, per whole second {figures['per_second_min']}–"
          f"{figures['per_second_max']}, inter-arrival CV {figures['cv']:.3f}: {'PASS' if cv_ok else 'FAIL'} 0.9–1.1")
    print(f"latency from intended start p50 {run['latency_ms']['p50']} ms, p95 {p95} ms, p99 "
          f"{run['latency_ms']['p99']} ms (the {args.stall:g} s stall): {'PASS' if stall_ok else 'FAIL'} p95 ≥ 1000 ms")
    print(f"dispatch lag p99 {run['dispatch_lag_ms']['p99']} ms; GIL wait p99 {run.get('gil_wait_p99_ms')} ms; "
          f"peak in flight {run['peak_in_flight']}; errors {run['errors']}; valid {run['valid']}")
    for reason in doc.get("invalid_reasons", []):
        print(f"loadgen reported the run invalid: {reason['rule']}: {reason['detail']}")
    ok = count_ok and cv_ok and stall_ok and code == 0
    print("PASS" if ok else "FAIL")
    print(f"reproduce: {command_line()}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
