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

    from loadgen.tracers.calibration import CalibrationArm, CalibrationSettings

    process = psutil.Process()
    before = process.memory_info().rss
    arm = CalibrationArm(CalibrationSettings(mib=64))
    grown = process.memory_info().rss - before
    assert grown >= 0.9 * 64 * 2**20
    del arm


def test_memory_is_the_steady_state_median_after_warmup_against_the_baseline():
    from loadgen.overhead import memory_figures, memory_overhead

    mib = 2**20
    # Warm-up (t < 2 s) grows; after it the median is what counts, the peak beside it.
    baseline = {"rss_samples": [(0.5, 40 * mib), (1.5, 90 * mib), (2.5, 100 * mib), (3.0, 100 * mib), (3.5, 102 * mib)],
                "measure_start_s": 2.0}
    arm = {"rss_samples_by_worker": [[(2.5, 150 * mib), (3.0, 150 * mib)], [(2.5, 160 * mib), (3.0, 170 * mib)]],
           "measure_start_s_by_worker": [2.0, 2.0]}
    assert memory_figures(baseline) == {"rss_steady_mib": 100.0, "rss_peak_mib": 102.0}
    assert memory_figures(arm)["rss_steady_mib"] == pytest.approx((150 + 165) / 2)
    assert memory_overhead(baseline, arm) == {"memory_overhead_mib": 57.5, "memory_overhead_percent": 57.5}
    assert memory_overhead(baseline, {"rss_samples": []})["memory_overhead_mib"] is None
