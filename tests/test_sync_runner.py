"""The thread runner with fake sync providers: what each thread does is counted, nothing hidden.

These tests run real threads, so they assert what must hold whatever the timing: counts,
which op_ids ran, how many calls were in flight at once (forced by barriers and events, never by
sleeps), what a stop leaves. Each wait is bounded, so a broken runner fails instead of hanging.
"""

import asyncio
import threading
import time

import pytest

from loadgen.profile_files import load_profile
from loadgen.schedule import blocks
from loadgen.sync_runner import ThreadRunner

WAIT_S = 10  # a bound on every wait below; reached only when something is broken


class SyncFake:
    """A sync provider: answers at once, or after `gate` opens; optional failures and tokens."""

    name = "fake"

    def __init__(self, gate: threading.Event | None = None, barrier: threading.Barrier | None = None,
                 fail_every: int = 0, tokens: int = 0) -> None:
        self.gate = gate
        self.barrier = barrier
        self.fail_every = fail_every
        self.tokens = tokens
        self.lock = threading.Lock()
        self.calls = 0
        self.concurrent = 0
        self.peak = 0
        self.threads: set[str] = set()
        self.aborted = threading.Event()

    def call_sync(self, prompt, rec) -> None:
        with self.lock:
            self.calls += 1
            calls = self.calls
            self.concurrent += 1
            self.peak = max(self.peak, self.concurrent)
            self.threads.add(threading.current_thread().name)
        try:
            if self.barrier is not None and rec.op_id >= 0:
                self.barrier.wait(timeout=WAIT_S)
            if self.gate is not None:
                # Blocks like a read; an abort (closing the sockets) ends it with an error.
                while not self.gate.wait(0.01):
                    if self.aborted.is_set():
                        raise ConnectionResetError("connection closed")
            if self.fail_every and calls % self.fail_every == 0:
                raise ConnectionError("boom")
            for _ in range(self.tokens):
                rec.token()
            rec.output_tokens = self.tokens or 3
        finally:
            with self.lock:
                self.concurrent -= 1

    def abort(self, reopen: bool = False) -> None:
        self.reopened = reopen
        self.aborted.set()

    def close(self) -> None:
        pass


def profile_of(**settings):
    return load_profile(None, {"provider": "openai", **settings})


def run_all(runner: ThreadRunner) -> ThreadRunner:
    try:
        asyncio.run(asyncio.wait_for(runner.run(), WAIT_S))
    finally:
        runner.close()
    return runner


def test_open_loop_sends_every_operation_from_the_pool_threads():
    profile = profile_of(load={"kind": "constant", "rate": 2000}, operations=200, warmup_operations=10)
    provider = SyncFake()
    runner = run_all(ThreadRunner(profile, provider, threads=4))
    stats = runner.stats
    assert stats.sent == stats.completed == stats.ok == 200 and runner.warmup_done == 10
    assert provider.calls == 210 and provider.threads <= {f"loadgen-sync-{i}" for i in range(4)}
    assert min(stats.latency_by_op) >= 0 and min(stats.lag_by_op) >= 0  # every op_id done, none twice
    assert stats.h["latency"].count == stats.h["dispatch_lag"].count == 200


def test_running_out_of_threads_is_lag_then_shed_never_hidden():
    # Two threads, calls that block until released, at most 3 in flight (2 running + 1 queued):
    # the other 37 are shed. The queued one waits for a thread: that wait is its dispatch lag.
    gate = threading.Event()
    profile = profile_of(load={"kind": "constant", "rate": 1000}, operations=40, max_in_flight=3)
    provider = SyncFake(gate=gate)
    runner = ThreadRunner(profile, provider, threads=2)

    def release_when_all_dispatched() -> None:
        for _ in range(WAIT_S * 100):
            if runner.stats.shed == 37:
                break
            threading.Event().wait(0.01)
        gate.set()

    threading.Thread(target=release_when_all_dispatched, daemon=True).start()
    run_all(runner)
    stats = runner.stats
    assert (stats.sent, stats.shed, stats.ok) == (3, 37, 3)
    assert provider.peak == 2 and runner.peak_in_flight == 3
    lags = sorted(lag for lag in stats.lag_by_op if lag >= 0)
    # The third call was picked up only when a thread came free, after the release.
    assert lags[-1] > lags[0]


def test_closed_loop_runs_one_thread_per_user():
    # A barrier of 8 lets a call through only when 8 are in it at once: 8 threads, each its own call.
    profile = profile_of(load={"kind": "concurrency", "users": 8}, operations=80)
    provider = SyncFake(barrier=threading.Barrier(8))
    runner = run_all(ThreadRunner(profile, provider, threads=1))
    assert runner.threads == 8 and provider.peak == 8 and len(provider.threads) == 8
    assert runner.stats.sent == runner.stats.ok == 80 and runner.peak_in_flight == 8
    assert not provider.barrier.broken


def test_closed_loop_by_duration_grows_the_per_op_arrays_under_the_lock():
    profile = profile_of(load={"kind": "concurrency", "users": 4}, duration=0.2)
    runner = run_all(ThreadRunner(profile, SyncFake(), threads=4))
    stats = runner.stats
    done = [op for op, latency in enumerate(stats.latency_by_op) if latency >= 0]
    assert stats.sent == stats.ok == len(done) > 0
    assert done == list(range(len(done)))  # op_ids taken once each, in order


def test_errors_are_counted_by_class_from_threads():
    profile = profile_of(load={"kind": "constant", "rate": 2000}, operations=40)
    runner = run_all(ThreadRunner(profile, SyncFake(fail_every=4), threads=3))
    assert runner.stats.errors == {"ConnectionError": 10} and runner.stats.ok == 30
    assert "ConnectionError" in runner.stats.error_examples


def test_inter_token_times_from_every_thread_are_merged():
    profile = profile_of(load={"kind": "constant", "rate": 2000}, operations=30)
    runner = run_all(ThreadRunner(profile, SyncFake(tokens=4), threads=3))
    assert runner.stats.h["itl"].count == 30 * 3  # 4 tokens: 3 gaps a call
    assert runner.stats.h["ttft"].count == 30


def test_the_gil_probe_records_while_a_block_runs():
    gate = threading.Event()
    profile = profile_of(load={"kind": "constant", "rate": 1000}, operations=2)
    provider = SyncFake(gate=gate)
    runner = ThreadRunner(profile, provider, threads=2)

    def release_after_probe_samples() -> None:
        for _ in range(WAIT_S * 100):
            if runner.stats.h["gil_wait"].count >= 5:
                break
            threading.Event().wait(0.01)
        gate.set()

    threading.Thread(target=release_after_probe_samples, daemon=True).start()
    run_all(runner)
    assert runner.stats.h["gil_wait"].count >= 5
    # Its own CPU is known, so the worker leaves it out of the calls' CPU.
    assert 0 < runner.instrument_cpu_s() < time.process_time()


def test_a_stop_aborts_calls_stuck_past_the_grace_and_counts_them_cancelled():
    gate = threading.Event()  # never opened: the calls end only when aborted
    profile = profile_of(load={"kind": "constant", "rate": 1000}, operations=50)
    provider = SyncFake(gate=gate)
    runner = ThreadRunner(profile, provider, threads=3)

    async def stop_soon() -> None:
        block = asyncio.create_task(runner.run())
        while runner.stats.sent < 3:
            await asyncio.sleep(0.01)
        runner.stop()
        await runner.drain(grace_s=0.05)
        await asyncio.wait_for(block, WAIT_S)

    try:
        asyncio.run(asyncio.wait_for(stop_soon(), WAIT_S))
    finally:
        runner.close()
    stats = runner.stats
    assert provider.aborted.is_set() and provider.reopened is False  # a stop takes no more calls
    assert stats.errors == {"cancelled": 3} and stats.completed == 3 == stats.sent
    assert runner.in_flight == 0  # the operations still queued were dropped, neither sent nor shed


@pytest.mark.parametrize("shard", [0, 1])
def test_shards_split_the_schedule(shard):
    profile = profile_of(load={"kind": "constant", "rate": 2000}, operations=40)
    runner = run_all(ThreadRunner(profile, SyncFake(), threads=2, shard=shard, shards=2))
    done = [op for op, latency in enumerate(runner.stats.latency_by_op) if latency >= 0]
    assert done == list(range(shard, 40, 2))


def test_calls_stuck_past_the_grace_of_a_run_that_goes_on_are_cancelled_and_the_client_reopens():
    gate = threading.Event()
    profile = profile_of(load={"kind": "constant", "rate": 1000}, operations=3)
    provider = SyncFake(gate=gate)
    runner = ThreadRunner(profile, provider, threads=3)

    async def block_then_drain() -> None:
        runner._start_pool()
        await runner._dispatch(blocks(profile, 1)[0], runner.now_ns(), True)
        await runner.drain(grace_s=0.05)

    try:
        asyncio.run(asyncio.wait_for(block_then_drain(), WAIT_S))
    finally:
        runner.close()
    assert provider.reopened is True and runner.stats.errors == {"cancelled": 3}
    assert runner._aborted is False  # what fails later is counted as what it is
