"""How many OS threads a worker of the sync client calls from, and why: a decision of the run plan.

The sync client (`client = "sync"`) makes each call in one of a pool of OS threads. A closed
loop needs one thread per user and a sequential run one; an open loop needs enough that a
thread is free when a call falls due, and a call that finds none waits, the wait counted as
dispatch lag. The plan (loadgen/plan.py) asks `thread_count` once per fleet, puts the count
in every WorkerSpec, and the sentence in the report, so the worker only reads a number and a
reader sees where it came from.
"""

from __future__ import annotations

import math

from loadgen.profile import MAX_THREADS, Profile, peak_rate
from loadgen.prompts import MIXED_WEIGHTS, SIZE_CLASSES

# The sync client's threads in 'auto': Little's law (calls in flight = rate × latency) with room
# for a 5 s stall on top (as the connection pool's size, plan.pool_size), so that a thread is
# free when a call is due even while the server holds every call for seconds: without it a 2 s
# stall at 100 calls/s ran a 200-thread pool dry (dispatch lag p99 238 ms, bursts at the server,
# inter-arrival CV 1.18; benchmarks/bench_sync_client.py). An idle thread costs ~16 KiB of RSS
# (600: +9.4 MiB, the same in the baseline's worker) and no CPU.
STALL_ALLOWANCE_S = 5.0
MIN_AUTO_THREADS = 4
ASSUMED_REAL_LATENCY_S = 1.0  # a target other than the embedded mock: its latency is not known before the run


def thread_count(profile: Profile, shards: int) -> tuple[int, str]:
    """The sync client's OS threads per worker, and the sentence that says how the count was decided.

    A closed loop runs one thread per user, each making its next call when its last one ends; a
    sequential run one. An open loop takes `threads`, or in 'auto' enough for the calls a worker
    has in flight (its share of the peak rate × the expected call latency) and a 5 s stall's
    worth more, at least 4 and at most max_in_flight and 1024: a call due when every thread is busy waits for one, and that wait
    is dispatch lag, counted.
    """
    load = profile.load
    if load.kind == "sequential":
        return 1, "1 thread: a sequential run makes one call at a time"
    if load.kind == "concurrency":
        ignored = (f"; threads = {profile.threads} is for open loops" if isinstance(profile.threads, int)
                   and profile.threads != load.users else "")
        return load.users, f"{load.users} threads: one per user of the closed loop (--concurrent-threads){ignored}"
    if isinstance(profile.threads, int):
        return profile.threads, f"{profile.threads} threads (threads, --threads)"
    rate = peak_rate(load) / shards
    latency_s, source = expected_latency(profile)
    wanted = math.ceil(rate * (latency_s + STALL_ALLOWANCE_S))
    ceiling = min(MAX_THREADS, profile.max_in_flight)
    count = min(ceiling, max(MIN_AUTO_THREADS, wanted))
    basis = (f"auto: {rate:g} calls/s a worker × ({latency_s:.3g} s ({source}) + {STALL_ALLOWANCE_S:g} s for a "
             f"stall) = {wanted} thread{'s' if wanted != 1 else ''}")
    if count != wanted:
        basis += (f", raised to {count} (at least {MIN_AUTO_THREADS})" if count > wanted else
                  f", capped at {count} ({'max_in_flight' if ceiling == profile.max_in_flight else 'at most'} "
                  f"{ceiling})")
    return count, basis


def expected_latency(profile: Profile) -> tuple[float, str]:
    """The expected duration of one call in seconds, and where it comes from.

    The embedded mock's is known: it answers when the last of the requested tokens' chunks is due
    (mock_llm.latency.LatencyModel.total_ns, jitter averaging out), and it honours each prompt's
    max_tokens, drawn from the span size classes. Any other target's is not known before the
    run, so 1 s is assumed, and the basis says how to set the count instead.
    """
    if profile.target.kind != "embedded":
        return ASSUMED_REAL_LATENCY_S, ("assumed for a target other than the embedded mock; set --threads "
                                        "or threads to size the pool yourself")
    mock = profile.mock
    chunks = math.ceil(mean_output_tokens(profile) / mock.tokens_per_chunk)
    ms = mock.ttft_ms + (chunks - 1) * mock.itl_ms
    return ms / 1000, (f"the embedded mock's latency: ttft {mock.ttft_ms:g} ms + {chunks - 1} × itl "
                       f"{mock.itl_ms:g} ms")


def mean_output_tokens(profile: Profile) -> float:
    """The mean max_tokens of the profile's prompts (loadgen.prompts: uniform in a size class, capped by max_tokens)."""
    mode = profile.span_size_mode
    classes = MIXED_WEIGHTS if mode == "mixed" else ((mode, 1.0),)
    cap = profile.max_tokens
    mean = 0.0
    for name, weight in classes:
        low, high = SIZE_CLASSES[name]
        drawn = range(low, high + 1)
        mean += weight * sum(min(n, cap) if cap else n for n in drawn) / len(drawn)
    return mean
