"""The sync client end to end, through the CLI: threads, rows per client, spans accounted, the split adds up."""

from __future__ import annotations

import json

import pytest

from loadgen.histograms import Recorder
from tests.conftest import run_cli


def _document(tmp_path, *args: str) -> dict:
    out = tmp_path / "results.json"
    done = run_cli("run", *args, "--quiet", "--max-tokens", "16", "--export-json", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text())


@pytest.mark.e2e
def test_both_clients_in_one_run_each_paired_within_its_client(tmp_path):
    document = _document(tmp_path, "--provider", "openai", "--clients", "async,sync", "--arms", "baseline,otel",
                         "--rate", "20", "--duration", "2s", "--threads", "6", "--replicas", "2")
    rows = {(run["client"], run["arm"]): run for run in document["runs"]}
    assert set(rows) == {("async", "baseline"), ("async", "otel"), ("sync", "baseline"), ("sync", "otel")}
    sync, sync_otel = rows["sync", "baseline"], rows["sync", "otel"]
    assert sync["mode"] == "rate 20/s constant sync" and rows["async", "baseline"]["mode"] == "rate 20/s constant async"
    assert sync["threads"] == sync_otel["threads"] == 6 and rows["async", "otel"]["threads"] is None
    # The probe thread ran beside the sync calls only; its Δ is the arm's against its own client's baseline.
    assert sync["gil_wait_p99_ms"] is not None and rows["async", "baseline"]["gil_wait_p99_ms"] is None
    assert sync_otel["gil_wait_delta_p99_ms"] == pytest.approx(sync_otel["gil_wait_p99_ms"] - sync["gil_wait_p99_ms"],
                                                               abs=0.002)
    for client in ("async", "sync"):
        otel = rows[client, "otel"]
        assert otel["paired_with"] == "baseline" and otel["overhead_pairs"] == 40
        assert otel["overhead_latency_ci95_ms"] is not None
        assert otel["spans"]["unaccounted"] == 0 and otel["trace_coverage_percent"] == 100.0
    # The four parts of each sync call's latency were stamped by the sync transport.
    assert Recorder.decode(sync["histograms"]["wire"]).count == sync["operations_ok"] == 40
    north_star = {(row["mode"], row["arm"]) for row in document["north_star_metrics"]}
    assert ("rate 20/s constant sync", "otel") in north_star and ("rate 20/s constant async", "otel") in north_star


@pytest.mark.e2e
def test_concurrent_threads_is_n_os_threads_each_waiting_for_its_own_call(tmp_path):
    document = _document(tmp_path, "--provider", "anthropic", "--concurrent-threads", "4", "--operations", "40",
                         "--arms", "baseline,anthropic-native", "--stream")
    for run in document["runs"]:
        assert (run["client"], run["threads"], run["mode"]) == ("sync", 4, "concurrency 4 sync")
        assert run["operations_ok"] == 40 and run["peak_in_flight"] <= 4
        assert Recorder.decode(run["histograms"]["ttft"]).count == 40
    native = next(run for run in document["runs"] if run["arm"] == "anthropic-native")
    assert native["spans"]["unaccounted"] == 0 and native["trace_coverage_percent"] == 100.0
