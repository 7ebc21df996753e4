"""How long from `loadgen run` to the first call, when the arms' environments are cached (issue 12).

Starts a standalone mock LLM, then runs a profile against it (`--base-url`, 1 s of load) and
polls the mock's request count every 50 ms: the seconds from launching the command to the
first request the mock receives (the first arm's priming call) is the figure. Run it after
the environments exist (a first `loadgen run` of the profile builds them); the script says
whether they did.

    .venv/bin/python benchmarks/bench_env_start.py [--profile profiles/leaderboard.toml]
"""

from __future__ import annotations

import argparse
import subprocess
import time

from _common import PYTHON, REPO, command_line, http_json, standalone_mock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="profiles/leaderboard.toml")
    args = parser.parse_args()
    with standalone_mock(ttft_ms=50, itl_ms=1, core=None) as url:
        started = time.monotonic()
        run = subprocess.Popen([PYTHON, "-m", "loadgen.cli", "run", args.profile, "--base-url", f"{url}/v1",
                                "--duration", "1s", "--quiet"], cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
        first_call = None
        while run.poll() is None and first_call is None:
            if http_json(f"{url}/_mock/stats")["requests"] > 0:
                first_call = time.monotonic() - started
            time.sleep(0.05)
        _, stderr = run.communicate(timeout=3600)
    built = [line for line in stderr.splitlines() if line.startswith("environment for") and "ready in" in line]
    print(f"{args.profile}: first call {first_call:.1f} s after the command started"
          if first_call is not None else f"{args.profile}: no call reached the mock (exit {run.returncode})")
    print(f"environments built in this run: {len(built)}" + ("" if not built else " (not a cached start: run again)"))
    print(f"loadgen exit code: {run.returncode}")
    print(f"reproduce: {command_line()}")


if __name__ == "__main__":
    main()
