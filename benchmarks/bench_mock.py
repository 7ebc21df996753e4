"""Throughput of the embedded mock LLM on one core, measured with wrk.

Starts the mock in a subprocess pinned to one core (`taskset -c 0`), drives it with wrk
pinned to another (`taskset -c 1`) with small non-streaming OpenAI chat requests
(max_tokens 20), and prints requests/s, wrk's latency percentiles and the mock's own CPU
time per request (from /proc, so it stays meaningful when neighbours steal cycles from
the load generator). The acceptance figure is >= 3,000 requests/s with ttft_ms=0.

    .venv/bin/python benchmarks/bench_mock.py [--duration 10] [--server-core 0] [--wrk-core 1]

Needs wrk (Debian: `apt-get install -y wrk`); exits 1 with a message if it is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_RPS = 3000

POST_LUA = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"gpt-mock","messages":[{"role":"user","content":"Say hello to the benchmark"}],"max_tokens":20}'
"""
# The same request streamed: 20 content deltas, each its own SSE frame and socket write.
STREAM_LUA = POST_LUA.replace('"max_tokens":20}', '"max_tokens":20,"stream":true}')

SERVER_CODE = (
    "import sys; from loadgen.mock_llm import MockConfig, serve; "
    "serve(MockConfig.model_validate_json(sys.argv[1]), on_ready=lambda p: print(p, flush=True))"
)


@dataclass(frozen=True)
class Scenario:
    name: str
    config: dict
    connections: int
    lua: str = "post.lua"


SCENARIOS = (
    Scenario("ttft 0 ms, 64 connections", {"ttft_ms": 0, "itl_ms": 0}, 64),  # the acceptance figure
    Scenario("ttft 50 ms, 400 connections", {"ttft_ms": 50, "itl_ms": 0}, 400),
    Scenario("streaming, ttft 0 ms, 64 connections", {"ttft_ms": 0, "itl_ms": 0}, 64, "stream.lua"),
)


def _pinned(core: int | None, argv: list[str]) -> list[str]:
    return argv if core is None else ["taskset", "-c", str(core), *argv]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _core_busy_seconds(core: int | None) -> float:
    """Non-idle time of one core (all processes), from /proc/stat; 0 when unpinned."""
    if core is None:
        return 0.0
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            ticks = [int(v) for v in line.split()[1:]]
            return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait
    return 0.0


def _requests_served(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_mock/stats", timeout=5) as response:
        return json.load(response)["requests"]


def run_scenario(scenario: Scenario, args: argparse.Namespace, lua_dir: Path) -> dict:
    lua = lua_dir / scenario.lua
    config = json.dumps(scenario.config)
    server = subprocess.Popen(
        _pinned(args.server_core, [sys.executable, "-c", SERVER_CODE, config]),
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    try:
        port = int(server.stdout.readline())
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        wrk = _pinned(args.wrk_core, ["wrk", "-t1", f"-c{scenario.connections}", f"-d{args.duration}s",
                                      "--latency", "-s", str(lua), url])
        cpu_before, served_before = _cpu_seconds(server.pid), _requests_served(port)
        core_before = _core_busy_seconds(args.server_core)
        out = subprocess.run(wrk, capture_output=True, text=True, check=True).stdout
        cpu = _cpu_seconds(server.pid) - cpu_before
        # Other processes on the mock's core take cycles from it: reported so a low figure
        # on a shared machine can be told from a slow mock.
        neighbours = max(0.0, _core_busy_seconds(args.server_core) - core_before - cpu)
        served = _requests_served(port) - served_before  # control routes are not counted
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    percentiles = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", out, re.MULTILINE))
    return {
        "scenario": scenario.name,
        "rps": rps,
        "p50": percentiles.get("50"),
        "p99": percentiles.get("99"),
        "cpu_util": cpu / args.duration,
        "neighbour_util": neighbours / args.duration,
        "cpu_us_per_request": cpu / served * 1e6 if served else float("nan"),
        "server_cmd": " ".join(_pinned(args.server_core, [".venv/bin/python", "-c", repr(SERVER_CODE), repr(config)])),
        "wrk_cmd": " ".join(wrk).replace(str(lua), scenario.lua).replace(f":{port}/", ":PORT/"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--server-core", type=int, default=0, help="core the mock is pinned to")
    parser.add_argument("--wrk-core", type=int, default=1, help="core wrk is pinned to")
    args = parser.parse_args()

    if shutil.which("wrk") is None:
        print("bench_mock: wrk is not installed; on Debian run `apt-get update && apt-get install -y wrk`",
              file=sys.stderr)
        return 1
    if shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        print("bench_mock: taskset or a second core is missing; running unpinned", file=sys.stderr)
        args.server_core = args.wrk_core = None

    with tempfile.TemporaryDirectory() as tmp:
        lua_dir = Path(tmp)
        (lua_dir / "post.lua").write_text(POST_LUA)
        (lua_dir / "stream.lua").write_text(STREAM_LUA)
        results = []
        for scenario in SCENARIOS:
            result = run_scenario(scenario, args, lua_dir)
            results.append(result)
            print(f"{result['scenario']}: {result['rps']:,.0f} requests/s, p50 {result['p50']}, p99 {result['p99']}, "
                  f"mock CPU {result['cpu_util']:.0%} (other processes on its core {result['neighbour_util']:.0%}), "
                  f"{result['cpu_us_per_request']:.0f} µs CPU/request")
            time.sleep(0.5)

    print("\npost.lua:\n" + POST_LUA + "\nstream.lua: the same with \"stream\":true in the body")
    print("Reproduce (from the repo root, one scenario at a time):")
    for result in results:
        print(f"  # {result['scenario']}\n  {result['server_cmd']}   # prints its port\n  {result['wrk_cmd']}")
    first = results[0]["rps"]
    verdict = "meets" if first >= TARGET_RPS else "MISSES"
    print(f"\n{verdict} the target of {TARGET_RPS:,} non-streaming requests/s on one core ({first:,.0f}).")
    return 0 if first >= TARGET_RPS else 2


if __name__ == "__main__":
    sys.exit(main())
