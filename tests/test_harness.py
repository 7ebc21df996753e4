"""Starting processes: every worker of a run hashes strings alike."""

import os
import threading

import pytest

from loadgen.processes import one_hash_seed, spawn_context


def _report_hash(results) -> None:
    results.put(hash("loadgen"))


def hashes(count: int) -> list[int]:
    ctx = spawn_context()
    results = ctx.Queue()
    procs = [ctx.Process(target=_report_hash, args=(results,)) for _ in range(count)]
    for proc in procs:
        proc.start()
    values = [results.get(timeout=30) for _ in procs]
    for proc in procs:
        proc.join(timeout=10)
    return values


@pytest.mark.skipif(bool(os.environ.get("PYTHONHASHSEED")), reason="the environment fixes the seed already")
def test_processes_started_inside_share_one_hash_seed():
    with one_hash_seed():
        inside = hashes(2)
    assert inside[0] == inside[1]
    assert "PYTHONHASHSEED" not in os.environ  # restored
    assert len(set(hashes(3))) > 1  # outside, each process draws its own


def test_a_seed_the_user_set_is_kept(monkeypatch):
    monkeypatch.setenv("PYTHONHASHSEED", "7")
    with one_hash_seed():
        assert os.environ["PYTHONHASHSEED"] == "7"
    assert os.environ["PYTHONHASHSEED"] == "7"


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores")
def test_pinning_a_process_pins_the_threads_it_already_runs():
    # A worker pins itself once its tracer is set up: the export thread started then must move too.
    from loadgen.processes import pin_to

    everywhere = os.sched_getaffinity(0)
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        pin_to(min(everywhere))
        assert os.sched_getaffinity(thread.native_id) == {min(everywhere)} == os.sched_getaffinity(0)
    finally:
        release.set()
        thread.join()
        for tid in os.listdir("/proc/self/task"):
            os.sched_setaffinity(int(tid), everywhere)
