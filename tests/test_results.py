"""The results stage: Stats.add, the worker result across the process boundary, and merge."""

import pickle
from array import array
from dataclasses import fields

from loadgen.results import BY_OP, CallRecord, Stats, WorkerResult, merge
from tests.test_metrics import worker

BY_WORKER = ("cpu_percent_by_worker", "rss_samples_by_worker", "measure_start_s_by_worker",
             "rss_retained_by_worker", "soak_by_worker")


def call(op_id: int, **stamps) -> CallRecord:
    rec = CallRecord(op_id, 1_000, None)
    for name, value in stamps.items():
        setattr(rec, name, value)
    return rec


def test_stats_add_counts_each_call_as_its_timeline_says():
    stats = Stats(planned=3, total=3)
    # op 0: on time, stamped on the wire → latency 900, lag 100, before wire 200, after response 100
    stats.add(call(0, t_start=1_100, t_wire=1_300, t_response_end=1_800, t_done=1_900))
    # op 1: httpx2's own pool (no wire stamps) → latency kept, the split unmeasured (−1)
    stats.add(call(1, t_start=1_000, t_done=2_000))
    # op 2: failed → counted as an error, its lag still recorded, no latency
    stats.add(call(2, t_start=1_500, t_done=3_000, error="timeout"))
    assert (stats.completed, stats.ok, stats.errors, stats.last_done_ns) == (3, 2, {"timeout": 1}, 3_000)
    assert list(stats.latency_by_op) == [900, 1_000, -1]
    assert list(stats.lag_by_op) == [100, 0, 500]  # the generator was late or not, failed call or not
    assert list(stats.before_wire_by_op) == [200, -1, -1]
    assert list(stats.after_response_by_op) == [100, -1, -1]
    assert stats.h["dispatch_lag"].count == 3 and stats.h["wire"].count == 1


def test_a_worker_result_crosses_the_process_boundary_as_plain_data():
    result = worker(latency_by_op=array("q", [5, -1, 7]), blocks=[{"index": 0, "sent": 2}], rss_retained=[(1, 2)])
    wire = result.to_wire()
    assert isinstance(wire, dict) and all(isinstance(wire[name], bytes) for name in BY_OP)
    back = WorkerResult.from_wire(pickle.loads(pickle.dumps(wire)))
    assert back == result
    assert list(back.latency_by_op) == [5, -1, 7]


def test_one_worker_and_three_merge_to_the_same_shape():
    one = merge([worker(rss_samples=[(1.0, 10)], measure_start_s=0.5, rss_retained=[(1, 10)])])
    three = merge([worker(shard=k, shards=3, worker=k, cpu_percent=10.0 * k, rss_samples=[(1.0, k)],
                          measure_start_s=0.5, rss_retained=[(1, k)]) for k in (2, 0, 1)])
    assert [f.name for f in fields(one)] == [f.name for f in fields(three)]
    for result, workers in ((one, 1), (three, 3)):
        assert result.workers == workers
        for name in BY_WORKER:
            assert len(getattr(result, name)) == workers, name
    assert one.cpu_percent_by_worker == [one.cpu_percent]
    assert three.cpu_percent_by_worker == [0.0, 10.0, 20.0]  # in (replica, shard) order
    assert three.rss_retained_by_worker == [[(1, 0)], [(1, 1)], [(1, 2)]]


def test_shards_merge_by_op_id():
    # Two shards took alternate op_ids: the merged array has each op's value from its shard.
    a = worker(shard=0, latency_by_op=array("q", [5, -1, 7, -1]))
    b = worker(shard=1, latency_by_op=array("q", [-1, 6, -1, 8]))
    assert list(merge([a, b]).latency_by_op) == [5, 6, 7, 8]
    assert list(merge([worker()]).latency_by_op) == []


def test_the_peak_in_flight_adds_over_shards_that_run_at_once_not_over_replicas_that_take_turns():
    workers = [worker(shard=shard, shards=2, replica=replica, peak_in_flight=peak)
               for shard, replica, peak in ((0, 0, 8), (0, 1, 6), (1, 0, 5), (1, 1, 7))]
    assert merge(workers).peak_in_flight == 8 + 7
