"""Soak: windows written as they close, a leak verdict from the RSS slope, bounded memory."""

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from rich.console import Console

from loadgen.settings import TracingSettings
from loadgen import clock
from loadgen.console_tables import soak_memory_table
from loadgen.document import validate_document
from loadgen.histograms import Recorder
from loadgen.profile_files import load_profile
from loadgen.runner import Runner
from loadgen.schedule import OffsetStream, open_loop_offsets, windows
from loadgen.soak import SoakLog, leak_verdict, memory_verdicts, merge_window, pile_ups, rss_slope
from tests.conftest import ROOT, run_cli
from tests.test_metrics import result
from tests.test_runner import FakeProvider


@pytest.mark.parametrize("load", [{"kind": "constant", "rate": 37}, {"kind": "poisson", "rate": 50}])
def test_the_streamed_schedule_is_the_schedule(load):
    profile = load_profile(None, {"load": load, "duration": "7s", "provider": "openai"})
    whole = open_loop_offsets(profile.load, seed=profile.seed, duration_s=7)
    stream = OffsetStream(profile.load, profile.seed)
    parts, first_ids = [], []
    for block in windows(profile, 2.0):
        first, offsets = stream.until(block.start_ns + block.duration_ns)
        first_ids.append(first)
        parts.extend(offsets)
    assert parts == list(whole)
    assert first_ids[0] == 0 and first_ids == sorted(first_ids)


def test_windows_cover_the_duration():
    profile = load_profile(None, {"duration": "130s", "provider": "openai"})
    cut = windows(profile, 60)
    assert [(b.start_ns, b.duration_ns) for b in cut] == [(0, 60 * 10**9), (60 * 10**9, 60 * 10**9),
                                                          (120 * 10**9, 10 * 10**9)]


def test_a_soak_runner_keeps_no_per_operation_array():
    profile = load_profile(None, {"load": {"kind": "constant", "rate": 200}, "duration": "0.6s", "provider": "openai",
                                  "soak": {"window": "0.2s"}})
    runner = Runner(profile, FakeProvider())

    async def go():
        for block in windows(profile, 0.2):
            await runner.run_block(block)

    clock.run(go())
    assert runner.stats.sent == 120 and runner.stats.planned == 120
    assert len(runner.stats.latency_by_op) == 0 and len(runner.offsets) == 0


def test_slope_and_verdict():
    # 1 KiB per call at 100 calls/s is 351.6 MiB/h; a flat series is no leak.
    leaking = [(h, 100 + 351.6 * h + (0.3 if k % 2 else -0.3)) for k, h in enumerate(x / 60 for x in range(1, 10))]
    slope = rss_slope(leaking)
    assert slope["ci95"][0] <= 351.6 <= slope["ci95"][1]
    assert leak_verdict(slope, 5.0) == "leak"
    flat = rss_slope([(x / 60, 100 + (0.01 if x % 2 else -0.01)) for x in range(1, 20)])
    assert leak_verdict(flat, 5.0) == "no leak"
    assert leak_verdict(rss_slope([(0, 1), (1, 2)]), 5.0) == "inconclusive"  # too few windows


def test_memory_verdicts_skip_the_warmup_windows_and_add_up_workers():
    medians = [[(60.0 * k, 100 * 2**20 if k == 0 else 50 * 2**20 + k * 2**20, 40) for k in range(6)]]
    run = result(arm="calibration", soak={"rss_retained": medians[0], "tracemalloc_top": None})
    row = memory_verdicts([run], warmup_windows=1, limit_mib_per_hour=5)[0]
    assert row["points"] == 5 and row["slope_mib_per_hour"] == pytest.approx(60.0)  # 1 MiB a minute
    assert row["verdict"] == "leak" and row["pile_ups"] == []


def test_a_pile_up_is_a_step_not_a_slope():
    # Flat at 140 MiB with small noise, except that window 6 piled up 1,200 calls (from a high
    # of 60) and left the RSS 10 MiB higher for good: the slope is fitted between the steps.
    retained = [(60.0 * k, (140 + (10 if k >= 6 else 0) + (0.05 if k % 2 else -0.05)) * 2**20, 1200 if k >= 6 else 60)
                for k in range(12)]
    run = result(soak={"rss_retained": retained, "tracemalloc_top": None})
    row = memory_verdicts([run], warmup_windows=1, limit_mib_per_hour=5)[0]
    assert row["pile_ups"] == [{"window": 6, "in_flight_high_water": 1200, "rss_step_mib": pytest.approx(10, abs=0.2)}]
    assert abs(row["slope_mib_per_hour"]) < 1 and row["verdict"] == "no leak"
    console = Console(record=True, width=160)
    console.print(soak_memory_table({"warmup_windows": 1, "window_s": 60, "jsonl": "s.jsonl", "memory": [row]}))
    assert "1 (+9.9 MiB)" in console.export_text()  # 140.05 → 149.95
    # Read as one line, the same points would have been a leak.
    one_line = rss_slope([(t / 3600, rss / 2**20) for t, rss, _ in retained[1:]])
    assert leak_verdict(one_line, 5) == "leak"


def test_a_leak_across_pile_ups_is_still_a_leak():
    # 1 MiB a minute, and two pile-ups that add 5 MiB each: the slope between them is the leak's.
    points = [(k / 60, 100 + k + 5 * (k >= 4) + 5 * (k >= 8)) for k in range(12)]
    slope = rss_slope(points, steps=[4, 8])
    assert slope["slope_mib_per_hour"] == pytest.approx(60) and leak_verdict(slope, 5) == "leak"
    # A step in every window leaves nothing to fit a slope to.
    assert rss_slope(points[:4], steps=[1, 2, 3])["slope_mib_per_hour"] is None


def test_pile_ups_are_new_highs_of_calls_in_flight():
    # 1.5 times the earlier high and 20 more calls; the first window is the level, never a step.
    assert pile_ups([50, 32, 31, 400, 410, 599, 900], before=28) == [3, 6]
    assert pile_ups([500, 40], before=28) == []
    assert pile_ups([30, 45, 49], before=28) == []  # 1.5 times, but not 20 more


def window(index, shard, sent=10, rss=50 * 2**20, spans=None):
    latency = Recorder()
    latency.record_ns(5_000_000)
    empty = Recorder().encode()
    return {"index": index, "wall_s": 1.0, "sent": sent, "completed": sent, "ok": sent, "errors": {"timeout": shard},
            "histograms": {"latency": latency.encode(), "ttft": empty, "dispatch_lag": empty},
            "rss_bytes": rss, "rss_median_bytes": rss, "in_flight_high_water": 7, "cpu_seconds": 0.5, "cpu_percent": 50.0, "open_fds": 20,
            "threads": 3, "gc_collections": [10, 1, 0], "spans": spans}


def test_a_window_line_adds_up_its_shards():
    spans = {"ended": 20, "exported": 18, "dropped": {"queue_full": 2}, "queue_depth": 1, "live": 0}
    line = merge_window("openai", "otel", [window(3, 0, spans=spans), window(3, 1, spans=spans)])
    assert (line["window"], line["sent"], line["errors"], line["open_fds"]) == (3, 20, {"timeout": 1}, 40)
    assert line["latency_ms"]["count"] == 2 and line["rss_mib"] == 100.0 and line["in_flight_high_water"] == 14
    assert line["spans"]["dropped"] == {"queue_full": 4} and line["gc_collections"] == [20, 2, 0]


def test_the_log_writes_a_window_once_all_shards_are_in_with_the_collectors_count(tmp_path):
    totals = iter([{"spans_received": 36}, {"spans_received": 80}])
    log = SoakLog(tmp_path / "soak.jsonl", lambda url, run_id: next(totals))
    tracing = TracingSettings(collector_url="http://127.0.0.1:1", run_id="r")
    spans = {"ended": 20, "exported": 18, "dropped": {"queue_full": 2}, "queue_depth": 0, "live": 0}
    assert log.add("openai", "otel", 2, window(0, 0, spans=spans), tracing) is None
    assert log.add("openai", "otel", 2, window(0, 1, spans=spans), tracing)["spans"]["received"] == 36
    log.add("openai", "otel", 1, window(1, 0, spans=spans), tracing)
    lines = [json.loads(text) for text in (tmp_path / "soak.jsonl").read_text().splitlines()]
    assert [(line["window"], line["spans"]["received"]) for line in lines] == [(0, 36), (1, 44)]


@pytest.mark.e2e
def test_a_soak_flags_the_calibration_leak_and_writes_every_window(tmp_path):
    jsonl, out = tmp_path / "soak.jsonl", tmp_path / "r.json"
    done = run_cli("run", "--provider", "openai", "--rate", "20", "--duration", "12s", "--window", "2s",
                   "--arms", "baseline,calibration", "--calibrate-leak-kib", "64", "--soak-jsonl", str(jsonl),
                   "--warmup-operations", "0", "--quiet", "--export-json", str(out))
    assert done.returncode in (0, 3), done.stderr
    lines = [json.loads(text) for text in jsonl.read_text().splitlines()]
    windows_seen = sorted((line["arm"], line["window"]) for line in lines if line["type"] == "window")
    assert windows_seen == [(arm, k) for arm in ("baseline", "calibration") for k in range(6)]
    assert lines[-1]["type"] == "summary"
    document = json.loads(out.read_text())
    assert validate_document(document) == []  # the soak section is in the shipped schema
    verdicts = {row["arm"]: row for row in document["soak"]["memory"]}
    # 64 KiB × 20 calls/s ≈ 4.4 GiB/h
    assert verdicts["calibration"]["verdict"] == "leak" and verdicts["calibration"]["slope_mib_per_hour"] > 2000
    assert "RSS slope" in done.stdout


@pytest.mark.e2e
def test_sigkill_mid_soak_leaves_every_finished_window_readable_and_no_process_behind(tmp_path):
    jsonl = tmp_path / "soak.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadgen.cli", "run", "--provider", "openai", "--rate", "20", "--duration", "60s",
         "--window", "1s", "--arms", "baseline,otel", "--soak-jsonl", str(jsonl), "--quiet"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not jsonl.exists() or len(jsonl.read_text().splitlines()) < 4):
        time.sleep(0.2)
    children = psutil.Process(proc.pid).children(recursive=True)
    assert children  # the workers and the embedded servers
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    lines = [json.loads(text) for text in jsonl.read_text().splitlines()]  # every line parses
    assert len(lines) >= 4 and all(line["type"] == "window" for line in lines)
    # They notice their parent is gone and exit: a killed soak leaves nothing running.
    _, alive = psutil.wait_procs(children, timeout=15)
    assert not alive
