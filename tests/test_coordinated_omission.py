"""A server stall is in the latency histogram, even with a pool smaller than calls in flight."""

import json
import threading
import time

import pytest

from loadgen.histograms import Recorder
from tests.conftest import get_json, run_cli


@pytest.mark.e2e
def test_two_second_stall_at_200_rps_is_not_omitted(mock_server, tmp_path):
    get_json(mock_server + "/_mock/reset", "POST", {})

    def stall_when_running():
        deadline = time.monotonic() + 60
        while get_json(mock_server + "/_mock/stats")["requests"] < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)
        get_json(mock_server + "/_mock/stall", "POST", {"seconds": 2})

    threading.Thread(target=stall_when_running, daemon=True).start()
    out = tmp_path / "r.json"
    done = run_cli("run", "--arms", "baseline", "--base-url", mock_server + "/v1", "--provider", "openai", "--rate", "200",
                   "--duration", "6s", "--warmup-operations", "0", "--connections", "16", "--timeout", "30",
                   "--export-json", str(out), "--quiet")
    assert done.returncode in (0, 3), done.stderr
    run = json.loads(out.read_text())["runs"][0]
    assert run["errors"] == {}
    assert run["peak_in_flight"] > 16 * run["workers"]  # the pool was smaller than the calls in flight
    # The ~200 calls intended in the stall's first second finish ≥ 1 s late.
    assert Recorder.decode(run["histograms"]["latency"]).count_at_or_above_ms(1000) >= 190
