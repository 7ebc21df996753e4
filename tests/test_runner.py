"""The dispatch loop with a fake provider: open loop never waits, closed loop does."""

import asyncio
import time

import pytest

from loadgen import clock
from loadgen.profile import load_profile
from loadgen.runner import Runner


class FakeProvider:
    """Answers after `service_s`; while `stall_until` is in the future, answers nothing."""

    name = "fake"

    def __init__(self, service_s=0.005, stall_at_s=None, stall_s=0.0, fail_every=0):
        self.service_s = service_s
        self.stall_at_s = stall_at_s
        self.stall_s = stall_s
        self.fail_every = fail_every
        self.calls = 0
        self.t0 = None
        self.concurrent = 0
        self.peak = 0

    async def call(self, prompt, rec):
        self.calls += 1
        self.concurrent += 1
        self.peak = max(self.peak, self.concurrent)
        try:
            now = time.monotonic()
            if self.t0 is None:
                self.t0 = now
            await asyncio.sleep(self.service_s)
            if self.stall_at_s is not None:
                stall_start = self.t0 + self.stall_at_s
                stall_end = stall_start + self.stall_s
                now = time.monotonic()
                if now < stall_end and now + 0.0 >= stall_start - self.service_s:
                    await asyncio.sleep(stall_end - now)
            if self.fail_every and self.calls % self.fail_every == 0:
                raise ConnectionError("boom")
            rec.output_tokens = 3
        finally:
            self.concurrent -= 1

    async def aclose(self):
        pass


def run(profile, provider):
    runner = Runner(profile, provider)
    clock.run(runner.run())
    return runner


def test_open_loop_sends_every_operation_on_time():
    # 200/s for 1 s → 200 sends, none late by more than a few ms on an idle loop.
    profile = load_profile(None, {"load": {"kind": "constant", "rate": 200}, "duration": 1, "provider": "openai"})
    runner = run(profile, FakeProvider())
    stats = runner.stats
    assert stats.sent == stats.completed == stats.ok == 200
    lag = stats.h["dispatch_lag"].summary_ms()
    assert lag["p50"] < 1.0
    span_s = (stats.last_sent_ns - stats.first_sent_ns) / 1e9
    assert span_s == pytest.approx(0.995, abs=0.02)


def test_stall_is_not_hidden_coordinated_omission():
    # 200/s for 2 s; the server stalls 0.6 s from t=0.5 s. Open loop keeps sending,
    # so ~120 calls intended during the stall wait for it: latency from intended shows
    # them, the service time from the actual send shows them too, since sends were on time.
    profile = load_profile(None, {"load": {"kind": "constant", "rate": 200}, "duration": 2, "provider": "openai"})
    provider = FakeProvider(service_s=0.002, stall_at_s=0.5, stall_s=0.6)
    runner = run(profile, provider)
    stats = runner.stats
    assert stats.sent == 400
    slow = stats.h["latency"].count_at_or_above_ms(300)
    assert slow >= 0.3 * 200 * 0.9  # calls intended in the stall's first 0.3 s
    assert provider.peak >= 100  # the dispatcher never waited for completions


def test_in_flight_cap_sheds_and_counts():
    profile = load_profile(None, {"load": {"kind": "constant", "rate": 200}, "duration": 0.5, "provider": "openai",
                                  "max_in_flight": 5})
    runner = run(profile, FakeProvider(service_s=0.2))
    assert runner.stats.shed > 0
    assert runner.stats.sent + runner.stats.shed == 100


def test_errors_are_counted_by_class():
    profile = load_profile(None, {"load": {"kind": "constant", "rate": 100}, "operations": 20, "provider": "openai"})
    runner = run(profile, FakeProvider(fail_every=4))
    assert runner.stats.errors == {"ConnectionError": 5}
    assert runner.stats.ok == 15


def test_closed_loop_concurrency_never_exceeds_users():
    profile = load_profile(None, {"load": {"kind": "concurrency", "users": 4}, "operations": 40, "provider": "openai"})
    provider = FakeProvider(service_s=0.01)
    runner = run(profile, provider)
    assert provider.peak == 4
    assert runner.stats.sent == runner.stats.ok == 40


def test_sequential_is_one_at_a_time_with_warmup_apart():
    profile = load_profile(None, {"load": {"kind": "sequential"}, "operations": 10, "warmup_operations": 3,
                                  "provider": "openai"})
    provider = FakeProvider(service_s=0.002)
    runner = run(profile, provider)
    assert provider.peak == 1 and provider.calls == 13
    assert runner.stats.sent == 10 and runner.warmup_done == 3


def test_closed_loop_by_duration_stops():
    profile = load_profile(None, {"load": {"kind": "concurrency", "users": 2}, "duration": 0.3, "provider": "openai"})
    runner = run(profile, FakeProvider(service_s=0.01))
    assert 30 <= runner.stats.sent <= 70


def test_warmup_is_not_counted_in_open_loop():
    profile = load_profile(None, {"load": {"kind": "constant", "rate": 100}, "operations": 10, "warmup_operations": 5,
                                  "provider": "openai"})
    runner = run(profile, FakeProvider())
    assert runner.stats.sent == 10 and runner.warmup_done == 5
    assert runner.stats.h["latency"].count == 10


def test_shards_split_the_schedule_and_merge_back():
    # Two shards of 100 operations: 50 each, disjoint op_ids, same intended offsets.
    profile = load_profile(None, {"load": {"kind": "constant", "rate": 200}, "operations": 100, "provider": "openai"})
    start = time.perf_counter_ns() + 50_000_000
    runners = [Runner(profile, FakeProvider(), shard=k, shards=2, start_at_ns=start) for k in range(2)]

    async def both():
        await asyncio.gather(*(r.run() for r in runners))

    clock.run(both())
    done = [[op for op, lat in enumerate(r.stats.latency_by_op) if lat >= 0] for r in runners]
    assert done[0] == list(range(0, 100, 2)) and done[1] == list(range(1, 100, 2))
    assert [r.stats.sent for r in runners] == [50, 50]


def test_closed_loop_shards_split_users_and_operations():
    profile = load_profile(None, {"load": {"kind": "concurrency", "users": 3}, "operations": 10, "provider": "openai"})
    a, b = Runner(profile, FakeProvider(), 0, 2), Runner(profile, FakeProvider(), 1, 2)
    assert (a.plan.users, b.plan.users) == (2, 1)
    assert (a.plan.operations, b.plan.operations) == (5, 5)
