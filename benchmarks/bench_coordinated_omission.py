"""Coordinated omission: a 2 s server stall must show up in the latency histogram (issue 2, acceptance 3).

A standalone mock LLM (50 ms TTFT) serves loadgen's 200 rps open-loop run through the
openai SDK with a connection pool of 32 — far smaller than the ~400 calls that pile up
in flight during the stall. Four seconds in, the mock stalls for 2 s (`POST /_mock/stall`:
it answers nothing until the stall ends, responses already in progress included).

The ~200 calls intended during the stall's first second cannot finish until it ends, so
each is at least 1 s late: the latency histogram (from intended start) must hold ≥ 190
samples ≥ 1 s. The uncorrected view (service time, from the actual send) is printed
beside it.

    .venv/bin/python benchmarks/bench_coordinated_omission.py [--rate 200] [--duration 10]
"""

from __future__ import annotations

import argparse
import threading
import time

from _common import command_line, http_json, loadgen_run, standalone_mock

from loadgen.histograms import Recorder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--stall-at", type=float, default=4.0)
    parser.add_argument("--stall", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    with standalone_mock(ttft_ms=50) as url:
        http_json(url + "/_mock/reset", {})

        def stall_later() -> None:
            # Wait for the measured phase: the first arrivals after the priming calls.
            deadline = time.monotonic() + 60
            while http_json(url + "/_mock/stats")["requests"] < 20 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(args.stall_at)
            http_json(url + "/_mock/stall", {"seconds": args.stall})

        threading.Thread(target=stall_later, daemon=True).start()
        code, doc = loadgen_run("--base-url", url + "/v1", "--provider", "openai", "--rate", str(args.rate),
                                "--duration", f"{args.duration}s", "--warmup-operations", "0",
                                "--connections", str(args.connections), "--timeout", "30", "--no-stream")
    run = doc["runs"][0]
    latency = Recorder.decode(run["histograms"]["latency"])
    service = Recorder.decode(run["histograms"]["service_time"])
    implied = int(args.rate * (args.stall - 1.0))
    slow = latency.count_at_or_above_ms(1000)
    slow_service = service.count_at_or_above_ms(1000)
    print(f"{run['operations_sent']} calls sent at {run['achieved_rate_rps']} /s, {run['operations_ok']} ok, "
          f"errors {run['errors']}, peak in flight {run['peak_in_flight']} with a pool of {args.connections} per worker "
          f"({run['workers']} workers); loadgen exit {code}")
    print(f"latency from intended start: {slow} samples ≥ 1 s (the schedule implies ≥ {implied}; acceptance ≥ 190), "
          f"p99 {run['latency_ms']['p99']} ms, max {run['latency_ms']['max']} ms")
    print(f"uncorrected view (service time from actual send): {slow_service} samples ≥ 1 s, "
          f"p99 {run['service_time_ms']['p99']} ms")
    for reason in doc["invalid_reasons"]:
        print(f"loadgen also reported the run invalid: {reason['rule']}: {reason['detail']}")
    ok = slow >= 190
    print("PASS" if ok else "FAIL")
    print(f"reproduce: {command_line()}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
