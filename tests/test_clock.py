"""The virtual-time loop the pacing tests run on: timers fire at exactly their time, at once."""

import asyncio
import threading
import time

import pytest

from loadgen.clock import VIRTUAL_START_NS, VirtualClock


@pytest.mark.parametrize(("delays_s", "woken_ns"), [
    ((0.3,), [300_000_000]),  # one sleep: exactly its length later
    ((0.005,) * 200, [5_000_000 * k for k in range(1, 201)]),  # 200 sleeps of 5 ms: no drift
    ((1e-6, 3e-10), [1_000, 1_000]),  # 1 µs, then 0.3 ns: below the loop's 1 ns resolution, no move
    ((0.0, 0.0), [0, 0]),  # a zero sleep moves nothing
])
def test_sleeps_advance_virtual_time_exactly(delays_s, woken_ns):
    clock = VirtualClock()

    async def go():
        woken = []
        for delay in delays_s:
            await asyncio.sleep(delay)
            woken.append(clock.now_ns() - VIRTUAL_START_NS)
        return woken

    assert clock.run(go()) == woken_ns


def test_concurrent_timers_fire_in_order_and_the_loop_time_is_the_clocks():
    # Three tasks sleeping 30, 10 and 20 ms wake in time order, each exactly on its time.
    clock = VirtualClock()

    async def go():
        woken = []

        async def sleeper(ms):
            await asyncio.sleep(ms / 1000)
            woken.append((ms, clock.now_ns() - VIRTUAL_START_NS))

        await asyncio.gather(*(sleeper(ms) for ms in (30, 10, 20)))
        return woken, asyncio.get_running_loop().time()

    woken, loop_time = clock.run(go())
    assert woken == [(10, 10_000_000), (20, 20_000_000), (30, 30_000_000)]
    assert loop_time == clock.now_ns() / 1e9


def test_timeouts_fire_in_virtual_time():
    clock = VirtualClock()

    async def go():
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.25):
                await asyncio.Event().wait()  # nothing ever sets it: only the timeout ends it
        return clock.now_ns() - VIRTUAL_START_NS

    assert clock.run(go()) == 250_000_000


def test_an_hour_of_virtual_sleep_takes_no_real_hour():
    # The only wall-clock read in the pacing tests, and a bound no busy machine comes near.
    clock = VirtualClock()
    t0 = time.monotonic()
    clock.run(asyncio.sleep(3600))
    assert clock.now_ns() - VIRTUAL_START_NS == 3600 * 10**9
    assert time.monotonic() - t0 < 30


def test_time_stands_still_while_a_thread_works():
    # A thread's job (the SDKs' asyncio.to_thread) gets its result back before any timer
    # is jumped to, however long it takes in real time.
    clock = VirtualClock()
    release = threading.Event()

    def job():
        release.wait(10)
        return clock.now_ns()

    async def go():
        thread = asyncio.ensure_future(asyncio.to_thread(job))
        timer = asyncio.ensure_future(asyncio.sleep(1))
        threading.Timer(0.05, release.set).start()
        done, _ = await asyncio.wait({thread, timer}, return_when=asyncio.FIRST_COMPLETED)
        assert done == {thread}
        at_thread_done = clock.now_ns()
        await timer
        return thread.result(), at_thread_done, clock.now_ns()

    seen_by_thread, at_thread_done, at_timer = clock.run(go())
    assert seen_by_thread == at_thread_done == VIRTUAL_START_NS
    assert at_timer == VIRTUAL_START_NS + 1_000_000_000
