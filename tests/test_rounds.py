"""Interleaved rounds: the schedule cut into blocks, each run on a fresh clock, nothing lost."""

import json

import pytest

from loadgen.clock import VirtualClock
from loadgen.plan import plan_mode
from loadgen.metrics import achieved_rate, schedule_rate
from loadgen.profile import ProfileError
from loadgen.profile_files import load_profile
from loadgen.results import merge
from loadgen.runner import Runner
from loadgen.schedule import blocks
from tests.conftest import run_cli
from tests.test_metrics import worker
from tests.test_runner import FakeProvider


def profile(**data):
    return load_profile(None, {"provider": "openai", **data})


def fleet(p):
    """The run plan's one fleet of a one-provider, one-mode profile."""
    (only,) = plan_mode(p, cores=2).fleets
    return only


def test_blocks_cover_every_operation_once_in_order():
    p = profile(load={"kind": "constant", "rate": 100}, operations=103)
    cut = blocks(p, 4)
    assert [(b.first, b.last) for b in cut] == [(0, 25), (25, 51), (51, 77), (77, 103)]
    assert [b.index for b in cut] == [0, 1, 2, 3]


def test_closed_loop_by_time_gets_time_slices_that_add_up():
    p = profile(load={"kind": "sequential"}, duration="10s")
    cut = blocks(p, 3)
    assert all(b.first is None for b in cut)
    assert sum(b.duration_ns for b in cut) == 10_000_000_000


def test_more_rounds_than_operations_gives_one_operation_per_block():
    assert len(blocks(profile(load={"kind": "sequential"}, operations=3), 10)) == 3


@pytest.mark.parametrize("data, rounds", [
    # one block per 2.5 s of schedule: 60 s → 24
    ({"duration": "60s", "tracing": {"arms": ["baseline", "calibration"]}}, 24),
    # never under 8, so the overhead CI has its degrees of freedom
    ({"duration": "12s", "tracing": {"arms": ["baseline", "calibration"]}}, 8),
    # never over 24
    ({"duration": "10m", "tracing": {"arms": ["baseline", "calibration"]}}, 24),
    # whole rotations of three arms' order for each of 4 replica pairs: 8 → 12
    ({"duration": "20s", "tracing": {"arms": ["baseline", "otel", "calibration"]}}, 12),
    # five arms run on openai (anthropic-native does not): a whole rotation for each of 4 replicas (20)
    # would more than double the blocks; whole rotations of the five arms that run: 10
    ({"duration": "15s", "tracing": {"arms": ["baseline", "otel", "openinference", "openllmetry", "honeyhive",
                                             "anthropic-native"]}}, 10),
    ({"duration": "60s"}, 1),  # one arm: nothing to interleave
    # closed loop by count: one block per 25 operations, at least 8
    ({"operations": 100, "load": {"kind": "sequential"}, "tracing": {"arms": ["baseline", "calibration"]}}, 8),
    ({"operations": 400, "load": {"kind": "sequential"}, "tracing": {"arms": ["baseline", "calibration"]}}, 16),
    # but at least two operations a block
    ({"operations": 10, "load": {"kind": "sequential"}, "tracing": {"arms": ["baseline", "calibration"]}}, 5),
    ({"operations": 100, "rounds": 7, "tracing": {"arms": ["baseline", "calibration"]}}, 7),
])
def test_auto_rounds(data, rounds):
    assert len(fleet(profile(**data)).blocks) == rounds


@pytest.mark.parametrize("data, replicas", [
    ({"duration": "20s", "tracing": {"arms": ["baseline", "calibration"]}}, 4),  # auto
    # auto: at most 24 processes per provider, at least 2 per arm
    ({"duration": "20s", "tracing": {"arms": ["baseline", "otel", "openinference", "openllmetry"]}}, 4),
    ({"duration": "20s", "tracing": {"arms": ["baseline", "otel", "openinference", "openllmetry", "honeyhive",
                                             "anthropic-native", "calibration"]}}, 4),  # six run on openai
    ({"duration": "20s", "provider": "anthropic",
      "tracing": {"arms": ["baseline", "otel", "openinference", "openllmetry", "honeyhive", "anthropic-native",
                           "calibration"]}}, 3),  # all seven on anthropic
    ({"duration": "20s", "replicas": 3, "tracing": {"arms": ["baseline", "otel"]}}, 3),
    ({"duration": "20s"}, 1),  # one arm: no pairing
    # a closed loop bounded by time plans no op_ids per block
    ({"duration": "20s", "load": {"kind": "sequential"}, "tracing": {"arms": ["baseline", "calibration"]}}, 1),
    ({"operations": 50, "load": {"kind": "sequential"}, "tracing": {"arms": ["baseline", "calibration"]}}, 4),
])
def test_replicas(data, replicas):
    assert fleet(profile(**data)).replicas == replicas


def test_replicas_take_blocks_in_turn_and_the_order_moves_on_every_r_blocks():
    from loadgen.fleet import replica_for, rotation

    # four replicas, two arms: 0 1 2 3 0 1 2 3; the order flips after each four blocks
    assert [replica_for(b, 4) for b in range(8)] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert [rotation(b, 4, 2) for b in range(8)] == [0, 0, 0, 0, 1, 1, 1, 1]
    # so every replica pair runs the block in both orders, and no process runs two turns in a row
    runs = []
    for b in range(8):
        order = ["baseline", "otel"] if rotation(b, 4, 2) == 0 else ["otel", "baseline"]
        runs += [(arm, replica_for(b, 4)) for arm in order]
    assert all(a != b for a, b in zip(runs, runs[1:]))
    assert {(replica_for(b, 4), rotation(b, 4, 2)) for b in range(8)} == {(r, o) for r in range(4) for o in (0, 1)}
    # one replica: the order moves on every block, as before
    assert [rotation(b, 1, 3) for b in range(4)] == [0, 1, 2, 0]


def test_baseline_may_run_twice_with_its_own_label():
    p = profile(tracing={"arms": ["baseline", "calibration", "baseline"]})
    assert p.tracing.arm_labels == ["baseline", "calibration", "baseline-2"]
    with pytest.raises(ProfileError, match="only baseline may repeat"):
        profile(tracing={"arms": ["baseline", "calibration", "calibration"]})


def test_open_loop_blocks_run_every_operation_once_with_warmup_only_first():
    p = profile(load={"kind": "constant", "rate": 200}, operations=60, warmup_operations=4)
    virtual = VirtualClock()
    runner = Runner(p, FakeProvider(), now_ns=virtual.now_ns)
    figures = []

    async def go():
        for block in blocks(p, 3):
            start = virtual.now_ns() + 20_000_000
            figures.append(await runner.run_block(block, start))
            # The block's first operation is sent at its start; in block 0, after the
            # warm-up's 4 operations at 5 ms intervals.
            assert figures[-1]["first_sent_ns"] == start + (20_000_000 if block.index == 0 else 0)

    virtual.run(go())
    assert runner.stats.sent == 60 and runner.warmup_done == 4
    assert [op for op, lat in enumerate(runner.stats.latency_by_op) if lat >= 0] == list(range(60))
    assert [f["sent"] for f in figures] == [20, 20, 20]
    assert [f["planned"] for f in figures] == [20, 20, 20]
    assert all(f["plan_span_ns"] == 19 * 5_000_000 for f in figures)


def test_closed_loop_blocks_by_operations_and_by_time():
    p = profile(load={"kind": "sequential"}, operations=30)
    virtual = VirtualClock()
    runner = Runner(p, FakeProvider(service_s=0.001), now_ns=virtual.now_ns)

    async def go(plan):
        for block in plan:
            await runner.run_block(block)

    virtual.run(go(blocks(p, 3)))
    assert [op for op, lat in enumerate(runner.stats.latency_by_op) if lat >= 0] == list(range(30))

    timed = profile(load={"kind": "sequential"}, duration="0.6s")
    virtual = VirtualClock()
    runner = Runner(timed, FakeProvider(service_s=0.005), now_ns=virtual.now_ns)
    virtual.run(go(blocks(timed, 3)))
    done = [op for op, lat in enumerate(runner.stats.latency_by_op) if lat >= 0]
    # op_ids continue across the time slices: no op_id is run twice, none skipped; three
    # 0.2 s slices of back-to-back 5 ms calls are 40 calls each.
    assert done == list(range(120)) and runner.stats.sent == 120


def test_rates_are_judged_within_blocks_not_across_the_gaps_between_them():
    # Two shards, two blocks of 100 planned operations each over 990 ms (100/s), sent on
    # time but with a 5 s pause between the blocks: the achieved rate is still 100/s.
    def shard(k, first_sent):
        return worker(shard=k, blocks=[
            {"index": i, "planned": 100, "plan_span_ns": 990_000_000, "sent": 50, "shed": 0,
             "first_sent_ns": first_sent + i * 6_000_000_000 + k * 10_000_000,
             "last_sent_ns": first_sent + i * 6_000_000_000 + 980_000_000 + k * 10_000_000}
            for i in range(2)])

    merged = merge([shard(k, 10**9) for k in range(2)])
    assert [b["sent"] for b in merged.blocks] == [100, 100]
    assert schedule_rate(merged) == pytest.approx(100.0)
    assert achieved_rate(merged) == pytest.approx(100.0)



@pytest.mark.e2e
def test_replicas_take_blocks_in_turn_and_the_arms_order_rotates(tmp_path):
    out = tmp_path / "r.json"
    done = run_cli("run", "--provider", "openai", "--arms", "baseline,baseline", "--sequential", "--operations", "8",
                   "--rounds", "4", "--replicas", "2", "--warmup-operations", "0", "--max-tokens", "8",
                   "--export-json", str(out), "--quiet")
    assert done.returncode in (0, 3), done.stderr
    runs = json.loads(out.read_text())["runs"]
    first_sent = {run["arm"]: [block["first_sent_ns"] for block in run["blocks"]] for run in runs}
    order = [sorted(first_sent, key=lambda arm: first_sent[arm][k]) for k in range(4)]
    # the order moves on every 2 blocks (2 replicas); replicas 0 1 0 1, in both arms
    assert order == [["baseline", "baseline-2"]] * 2 + [["baseline-2", "baseline"]] * 2
    for run in runs:
        assert [block["replica"] for block in run["blocks"]] == [0, 1, 0, 1]
        assert run["workers"] == 2 and run["operations_planned"] == 8 and run["operations_sent"] == 8


def test_replicas_flag_reaches_the_profile():
    from loadgen.cli_flags import overrides as _overrides

    assert _overrides({"replicas": "3"})["replicas"] == 3
    assert _overrides({"replicas": "auto"})["replicas"] == "auto"
    assert "replicas" not in _overrides({})
