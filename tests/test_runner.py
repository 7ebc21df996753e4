"""The dispatch loop with a fake provider: open loop never waits, closed loop does.

The unit tests run on a virtual clock (clock.VirtualClock): no time passes while code runs
and sleeps end exactly on time, so each timing figure below is exact, on any machine.
"""

import asyncio
import time

import pytest

from loadgen import clock
from loadgen.clock import VirtualClock
from loadgen.profile_files import load_profile
from loadgen.runner import Runner
from loadgen.schedule import blocks
from loadgen.tracers.base import Traced


class FakeProvider:
    """Answers after `service_s`; during a stall of `stall_s` from `stall_at_s` after its first
    call, answers nothing until the stall ends. Timed by the loop's clock, virtual or not."""

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
            now = asyncio.get_running_loop().time()
            if self.t0 is None:
                self.t0 = now
            await asyncio.sleep(self.service_s)
            if self.stall_at_s is not None:
                stall_start = self.t0 + self.stall_at_s
                stall_end = stall_start + self.stall_s
                now = asyncio.get_running_loop().time()
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
    """The whole schedule on a virtual clock."""
    virtual = VirtualClock()
    runner = Runner(profile, provider, now_ns=virtual.now_ns)
    virtual.run(runner.run())
    return runner


MS = 1_000_000


def test_open_loop_sends_every_operation_on_time():
    # 200/s for 1 s → 200 sends, each exactly on its intended time, 5 ms apart; each
    # latency is the fake's 5 ms of service.
    profile = load_profile(None, {"load": {"kind": "constant", "rate": 200}, "duration": 1, "provider": "openai"})
    runner = run(profile, FakeProvider())
    stats = runner.stats
    assert stats.sent == stats.completed == stats.ok == 200
    assert set(stats.lag_by_op) == {0} and set(stats.latency_by_op) == {5 * MS}
    assert stats.last_sent_ns - stats.first_sent_ns == 995 * MS


def test_stall_is_not_hidden_coordinated_omission():
    # 200/s for 2 s, 2 ms of service; the server stalls 0.6 s from t=0.5 s. Open loop keeps
    # sending on time, so the 120 calls answered in the stall (intended at 0.500 … 1.095 s)
    # all end at 1.1 s: each one's latency from its intended time shows the whole wait.
    profile = load_profile(None, {"load": {"kind": "constant", "rate": 200}, "duration": 2, "provider": "openai"})
    provider = FakeProvider(service_s=0.002, stall_at_s=0.5, stall_s=0.6)
    runner = run(profile, provider)
    stats = runner.stats
    assert stats.sent == 400 and set(stats.lag_by_op) == {0}
    stalled = range(100, 220)
    assert [stats.latency_by_op[k] for k in stalled] == [1100 * MS - k * 5 * MS for k in stalled]
    assert {stats.latency_by_op[k] for k in range(400) if k not in stalled} == {2 * MS}
    assert stats.h["latency"].count_at_or_above_ms(300) == 61  # intended at 0.500 … 0.800 s
    assert provider.peak >= 120  # the dispatcher never waited for completions


def test_in_flight_cap_sheds_and_counts():
    # 200/s for 0.5 s, calls of 200 ms, at most 5 in flight: 5 sends in each of the three
    # 200 ms windows (from 0, 0.2 and 0.4 s), the other 85 shed.
    profile = load_profile(None, {"load": {"kind": "constant", "rate": 200}, "duration": 0.5, "provider": "openai",
                                  "max_in_flight": 5})
    runner = run(profile, FakeProvider(service_s=0.2))
    assert (runner.stats.sent, runner.stats.shed) == (15, 85)


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
    # 2 users for 0.3 s, calls of 10 ms back to back: 30 each, the last one started at 0.29 s.
    profile = load_profile(None, {"load": {"kind": "concurrency", "users": 2}, "duration": 0.3, "provider": "openai"})
    runner = run(profile, FakeProvider(service_s=0.01))
    assert runner.stats.sent == runner.stats.ok == 60


def test_warmup_is_not_counted_in_open_loop():
    profile = load_profile(None, {"load": {"kind": "constant", "rate": 100}, "operations": 10, "warmup_operations": 5,
                                  "provider": "openai"})
    runner = run(profile, FakeProvider())
    assert runner.stats.sent == 10 and runner.warmup_done == 5
    assert runner.stats.h["latency"].count == 10


def test_shards_split_the_schedule_and_merge_back():
    # Two shards of 100 operations: 50 each, disjoint op_ids, same intended offsets.
    profile = load_profile(None, {"load": {"kind": "constant", "rate": 200}, "operations": 100, "provider": "openai"})
    virtual = VirtualClock()
    start = virtual.now_ns() + 50 * MS
    runners = [Runner(profile, FakeProvider(), shard=k, shards=2, start_at_ns=start, now_ns=virtual.now_ns)
               for k in range(2)]

    async def both():
        await asyncio.gather(*(r.run() for r in runners))

    virtual.run(both())
    done = [[op for op, lat in enumerate(r.stats.latency_by_op) if lat >= 0] for r in runners]
    assert done[0] == list(range(0, 100, 2)) and done[1] == list(range(1, 100, 2))
    assert [r.stats.sent for r in runners] == [50, 50]
    # Both shards keep the one schedule: op k is sent at start + k·5 ms, whichever shard has it.
    assert [(r.stats.first_sent_ns - start, r.stats.last_sent_ns - start) for r in runners] == [
        (0, 490 * MS), (5 * MS, 495 * MS)]


def test_closed_loop_shards_split_users_and_operations():
    profile = load_profile(None, {"load": {"kind": "concurrency", "users": 3}, "operations": 10, "provider": "openai"})
    a, b = Runner(profile, FakeProvider(), 0, 2), Runner(profile, FakeProvider(), 1, 2)
    assert (a.closed_loop.users, b.closed_loop.users) == (2, 1)
    assert (a.closed_loop.operations, b.closed_loop.operations) == (5, 5)


# --- one timeline per call: lag + before the wire + wire + after the response = latency ---------


class WireProvider:
    """Stamps the wire times as loadgen's transport would: the request "written" exactly
    `before_ns` after the call's start, the response's last byte "read" `wire_ns` later;
    it returns then (its task starts at t_start: no time passes on the virtual clock)."""

    name = "wire"

    def __init__(self, before_ns=3_000_000, wire_ns=5_000_000):
        self.before_ns, self.wire_ns = before_ns, wire_ns
        self.wire_by_op = {}

    async def call(self, prompt, rec):
        rec.t_wire = rec.t_start + self.before_ns
        rec.t_response_end = rec.t_wire + self.wire_ns
        await asyncio.sleep((rec.t_response_end - rec.t_start) / 1e9)
        self.wire_by_op[rec.op_id] = rec.t_response_end - rec.t_wire

    async def aclose(self):
        pass


def test_the_four_parts_add_up_to_each_calls_latency_exactly():
    # 20 calls at 100/s: every part is stored per op_id, the wire part is what the provider
    # stamped, and before-the-wire is exactly the 3 ms the provider put before its "write".
    # On time, and done as the last byte comes in: lag 0, after the response 0, latency 8 ms.
    profile = load_profile(None, {"load": {"kind": "constant", "rate": 100}, "operations": 20, "provider": "openai"})
    provider = WireProvider()
    stats = run(profile, provider).stats
    assert stats.ok == 20
    for op_id in range(20):
        lag, before = stats.lag_by_op[op_id], stats.before_wire_by_op[op_id]
        after = stats.after_response_by_op[op_id]
        assert (lag, before, provider.wire_by_op[op_id], after) == (0, 3 * MS, 5 * MS, 0)
        assert lag + before + provider.wire_by_op[op_id] + after == stats.latency_by_op[op_id] == 8 * MS
    for name in ("before_wire", "wire", "after_response", "dispatch_lag"):
        assert stats.h[name].count == 20
    assert stats.h["wire"].summary_ms()["p50"] == pytest.approx(5.0, abs=0.01)


def test_without_wire_stamps_the_split_is_unmeasured_not_guessed():
    # httpx2's own pool stamps nothing: the split histograms stay empty and the per-op
    # parts −1, while latency and lag are still recorded.
    profile = load_profile(None, {"load": {"kind": "constant", "rate": 100}, "operations": 10, "provider": "openai"})
    stats = run(profile, FakeProvider()).stats
    assert [stats.h[name].count for name in ("before_wire", "wire", "after_response")] == [0, 0, 0]
    assert set(stats.before_wire_by_op) == set(stats.after_response_by_op) == {-1}
    assert set(stats.latency_by_op) == {5 * MS} and set(stats.lag_by_op) == {0}


def test_failed_calls_count_in_the_dispatch_lag_but_have_no_per_op_latency():
    # 20 calls, every 4th fails: the lag histogram and its per-op array have all 20 (the
    # generator was late or not either way); the per-op latency only the 15 that succeeded.
    profile = load_profile(None, {"load": {"kind": "constant", "rate": 100}, "operations": 20, "provider": "openai"})
    stats = run(profile, FakeProvider(fail_every=4)).stats
    assert stats.h["dispatch_lag"].count == 20 and stats.h["latency"].count == 15
    assert sum(lag >= 0 for lag in stats.lag_by_op) == 20
    assert sum(lat >= 0 for lat in stats.latency_by_op) == 15


def test_closed_loop_by_time_grows_every_per_op_array_together():
    # 2 users for 0.2 s, calls of 1 ms back to back: 400 calls, into arrays that start empty.
    profile = load_profile(None, {"load": {"kind": "concurrency", "users": 2}, "duration": 0.2, "provider": "openai"})
    stats = run(profile, WireProvider(before_ns=0, wire_ns=1_000_000)).stats
    sizes = {len(stats.latency_by_op), len(stats.lag_by_op), len(stats.before_wire_by_op),
             len(stats.after_response_by_op)}
    assert stats.ok == 400
    assert len(sizes) == 1 and sizes.pop() >= stats.ok
    assert sum(v >= 0 for v in stats.before_wire_by_op) == stats.ok


class Hook(Traced):
    """A provider as an arm wraps it: blocks the loop 2 ms (time.sleep, as a slow tracer hook
    would) before or after the SDK call, or not at all; it keeps every record it saw through."""

    def __init__(self, provider, where=None):
        super().__init__(provider)
        self.where = where
        self.records = []

    async def call(self, prompt, rec):
        if self.where == "before":
            time.sleep(0.002)
        await self.provider.call(prompt, rec)
        if self.where == "after":
            time.sleep(0.002)
        if rec.op_id >= 0:
            self.records.append(rec)


@pytest.mark.e2e
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_real_calls_timeline_adds_up_and_puts_a_hooks_time_where_it_ran(mock_server, provider, stream):
    from statistics import median

    from loadgen.providers import make_provider
    from loadgen.settings import ProviderSettings
    from loadgen.plan import provider_base_url

    profile = load_profile(None, {"load": {"kind": "sequential"}, "operations": 20, "warmup_operations": 2,
                                  "provider": provider, "stream": stream, "max_tokens": 8})
    settings = ProviderSettings(base_url=provider_base_url(provider, mock_server + "/v1"), api_key="k",
                                model=getattr(profile.models, provider), stream=stream, timeout_s=10,
                                max_retries=0, pool_size=4)
    parts = {}
    for where in (None, "before", "after"):
        async def go():
            runner = Runner(profile, Hook(make_provider(provider, settings), where))
            try:
                await runner.run()
            finally:
                await runner.provider.aclose()
            return runner.stats, runner.provider

        stats, hook = clock.run(go())
        assert stats.ok == len(hook.records) == 20, stats.errors
        rows = []
        for rec in hook.records:
            op = rec.op_id
            row = (stats.lag_by_op[op], stats.before_wire_by_op[op], rec.t_response_end - rec.t_wire,
                   stats.after_response_by_op[op])
            # Every call, exactly: lag + before the wire + wire and server + after the response = latency.
            assert rec.t_wire and rec.t_response_end and min(row) >= 0, row
            assert sum(row) == stats.latency_by_op[op] == rec.t_done - rec.t_intended
            rows.append(row)
        parts[where] = [median(column) for column in zip(*rows)]
        assert stats.h["wire"].count == stats.h["before_wire"].count == stats.h["after_response"].count == 20
        if where == "before":
            assert min(row[1] for row in rows) >= 2_000_000
        if where == "after":
            assert min(row[3] for row in rows) >= 2_000_000

    plain, before, after = parts[None], parts["before"], parts["after"]
    ms = 1_000_000
    # The 2 ms before the call lands before the wire (each call's part is ≥ 2 ms, above; the
    # medians of two 20-call runs of the SDK's own ~1 ms move a little), not on it or after
    # the response …
    assert before[1] - plain[1] >= 1.5 * ms
    assert abs(before[2] - plain[2]) < ms and abs(before[3] - plain[3]) < ms
    # … and the 2 ms after it, after the response.
    assert after[3] - plain[3] >= 1.5 * ms
    assert abs(after[2] - plain[2]) < ms and abs(after[1] - plain[1]) < ms


class FakeRawProvider:
    """The raw client's shape (`send_raw`, calls ended by callback), answering after `service_s`
    of the loop's time; it records when each request was handed to it."""

    name = "fake-raw"

    def __init__(self, now_ns, service_s=0.005):
        self.now_ns = now_ns
        self.service_s = service_s
        self.sent: list[tuple[int, int]] = []  # (op_id, time handed over)
        self.pending: dict = {}

    def send_raw(self, request, rec, done):
        self.sent.append((rec.op_id, self.now_ns()))
        rec.t_wire = self.now_ns()
        handle = asyncio.get_running_loop().call_later(self.service_s, self._answer, rec, done)
        self.pending[id(rec)] = (handle, rec, done)

    def _answer(self, rec, done):
        self.pending.pop(id(rec))
        rec.t_response_end = self.now_ns()
        rec.output_tokens = 3
        done(rec, None)

    def abort_all(self, error):
        for handle, rec, done in list(self.pending.values()):
            handle.cancel()
            self.pending.pop(id(rec))
            rec.error = error
            done(rec, None)

    async def call(self, request, rec):
        pass

    async def aclose(self):
        pass


def test_the_raw_path_sends_each_call_from_the_dispatcher_at_its_intended_time():
    # Poisson 2,000/s for 0.5 s: every request is handed over exactly when intended (lag 0
    # on the virtual clock), with no task per call, and each latency is the 5 ms of service.
    profile = load_profile(None, {"load": {"kind": "poisson", "rate": 2000}, "duration": 0.5, "provider": "openai",
                                  "client": "raw", "tracing": {"arms": ["baseline"]}})
    virtual = VirtualClock()
    provider = FakeRawProvider(virtual.now_ns)
    runner = Runner(profile, provider, now_ns=virtual.now_ns)
    virtual.run(runner.run())
    stats = runner.stats
    assert stats.sent == stats.ok == len(runner.offsets) == len(provider.sent)
    assert set(stats.lag_by_op) == {0} and set(stats.latency_by_op) == {5 * MS}
    base = provider.sent[0][1] - runner.offsets[0]
    assert all(at == base + runner.offsets[op] for op, at in provider.sent)
    assert not runner._tasks


def test_the_raw_path_sheds_at_the_cap_and_a_drain_past_its_grace_cancels_what_is_left():
    # 1,000/s with 10 s of service and at most 50 in flight: 50 calls go, the rest are shed;
    # the drain's grace (1 s) ends before any answer, so the 50 end as cancelled, counted.
    profile = load_profile(None, {"load": {"kind": "constant", "rate": 1000}, "duration": 0.2, "provider": "openai",
                                  "client": "raw", "max_in_flight": 50, "timeout": 20,
                                  "tracing": {"arms": ["baseline"]}})
    virtual = VirtualClock()
    provider = FakeRawProvider(virtual.now_ns, service_s=10)
    runner = Runner(profile, provider, now_ns=virtual.now_ns)

    async def block_then_drain():
        await runner._open_block(blocks(profile, 1)[0], virtual.now_ns(), warm=True)
        await runner.drain(grace_s=1.0)

    virtual.run(block_then_drain())
    stats = runner.stats
    assert (stats.sent, stats.shed, stats.completed) == (50, 150, 50)
    assert stats.errors == {"cancelled": 50} and runner.in_flight == 0


def test_closed_loop_users_on_the_raw_path_wait_for_their_own_calls():
    profile = load_profile(None, {"load": {"kind": "concurrency", "users": 2}, "operations": 10, "provider": "openai",
                                  "client": "raw", "tracing": {"arms": ["baseline"]}})
    virtual = VirtualClock()
    provider = FakeRawProvider(virtual.now_ns, service_s=0.01)
    runner = Runner(profile, provider, now_ns=virtual.now_ns)
    virtual.run(runner.run())
    assert runner.stats.ok == 10 and runner.peak_in_flight == 2
    assert set(runner.stats.latency_by_op) == {10 * MS}
