"""Overhead latency: pairing by op_id, the confidence interval, and the calibration arm."""

from array import array

import pytest

from loadgen.overhead import latencies, merge_latencies, paired_overhead, t975


def test_a_known_shift_is_recovered_exactly():
    # Every op 2 ms slower in the arm, whatever its own latency → Δ 2 ms, CI of width 0.
    baseline = array("q", [10_000_000 + 1_000_000 * k for k in range(50)])
    arm = array("q", [v + 2_000_000 for v in baseline])
    result = paired_overhead(baseline, arm)
    assert result["overhead_latency_ms"] == pytest.approx(2.0)
    assert result["overhead_latency_ci95_ms"] == pytest.approx([2.0, 2.0])
    assert result["overhead_pairs"] == 50
    assert result["overhead_latency_percent"] == pytest.approx(100 * 2 / 34.5, abs=0.001)


def test_only_ops_done_in_both_are_paired():
    baseline = array("q", [1_000_000, -1, 3_000_000, 4_000_000])
    arm = array("q", [2_000_000, 5_000_000, -1, 6_000_000])
    result = paired_overhead(baseline, arm)
    assert result["overhead_pairs"] == 2 and result["overhead_latency_ms"] == pytest.approx(1.5)


def test_noise_gives_an_interval_that_contains_the_truth():
    import random

    rng = random.Random(3)
    baseline = array("q", [int(rng.gauss(50e6, 5e6)) for _ in range(2000)])
    arm = array("q", [b + int(1e6 + rng.gauss(0, 2e6)) for b in baseline])
    low, high = paired_overhead(baseline, arm)["overhead_latency_ci95_ms"]
    assert low < 1.0 < high and high - low < 0.5


def test_too_few_pairs_is_unmeasured():
    assert paired_overhead(array("q", [1]), array("q", [2]))["overhead_latency_ms"] is None


def test_t_quantiles():
    assert t975(1) == 12.706 and t975(30) == 2.042 and t975(1000) == 1.96


def test_shards_merge_by_op_id_and_survive_hex():
    a = array("q", [5, -1, 7, -1])
    b = array("q", [-1, 6, -1, 8])
    merged = merge_latencies([latencies(a.tobytes().hex()), latencies(b.tobytes().hex())])
    assert list(merged) == [5, 6, 7, 8]
    assert list(latencies(None)) == []


def test_calibration_arm_holds_resident_memory():
    import psutil

    from loadgen.tracers.calibration import CalibrationArm

    process = psutil.Process()
    before = process.memory_info().rss
    arm = CalibrationArm(cpu_us=0, mib=64)
    grown = process.memory_info().rss - before
    assert grown >= 0.9 * 64 * 2**20
    del arm
