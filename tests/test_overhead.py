"""Overhead latency: pairing by op_id, the confidence interval, and the calibration arm."""

from array import array

import pytest

from loadgen.overhead import Unit, block_interval, paired_overhead, t975


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
    assert t975(1) == 12.706 and t975(30) == 2.042
    assert t975(1000) == pytest.approx(1.9623, abs=1e-4)  # R: qt(0.975, 1000)
    assert t975(60) == pytest.approx(2.0003, abs=1e-3)  # qt(0.975, 60)
    assert 3.182 < t975(2.5) < 4.303 and t975(2.2) > t975(2.5)  # a Satterthwaite df between 2 and 3


# -- the CI over blocks -----------------------------------------------------------------
def _op_array(values_ms):
    return array("q", [int(v * 1e6) for v in values_ms])


def test_blocks_are_the_unit_not_the_pairs():
    # 4 blocks of 100 pairs; inside a block every pair is the same, so a CI over pairs would
    # have width ~0; the block means 1, 2, 3, 4 say the mean is 2.5 ± t(3)·sd/√4.
    baseline = _op_array([100.0] * 400)
    arm = _op_array([100.0 + 1 + k // 100 for k in range(400)])
    units = [Unit(100 * b, 100 * (b + 1), ("p", b % 2)) for b in range(4)]
    result = paired_overhead(baseline, arm, units)
    half = 3.182 * (1.2909944 / 2)  # sd of 1,2,3,4 = 1.291
    assert result["overhead_latency_ms"] == pytest.approx(2.5)
    assert result["overhead_latency_ci95_ms"] == pytest.approx([2.5 - half, 2.5 + half], abs=1e-3)
    assert result["overhead_ci_df"] == 3 and "4 blocks" in result["overhead_ci_method"]
    assert result["overhead_pairs"] == 400


def test_process_pairs_that_differ_widen_the_interval_and_cut_its_df():
    # Blocks of process pair A read 0.9, 1.0, 1.1; of pair B 1.9, 2.0, 2.1: the pairs differ far
    # more than the blocks within them, so the interval is over the two pairs (df → 1).
    means = [0.9, 1.0, 1.1, 1.9, 2.0, 2.1]
    interval = block_interval(means, ["A", "A", "A", "B", "B", "B"])
    assert interval.mean == pytest.approx(1.5)
    assert interval.df == pytest.approx(1.0, abs=0.1)
    assert "random effects" in interval.method
    plain = block_interval(means, ["A"] * 6)
    assert interval.high - interval.low > 5 * (plain.high - plain.low)


def test_no_process_effect_reduces_to_batch_means():
    means = [1.0, 1.2, 0.8, 1.1, 0.9, 1.0, 1.3, 0.7]
    groups = [(0, 0), (1, 0), (0, 1), (1, 1)] * 2
    interval = block_interval([1.0, 1.2, 0.8, 1.1, 1.2, 1.0, 1.4, 1.1], groups)  # every pair's mean 1.1
    assert interval.df == 7 and "no process effect" in interval.method
    one_pair = block_interval(means, [None] * 8)
    assert one_pair.df == 7 and "one process pair" in one_pair.method


def _coverage(interval_of, runs: int = 400) -> float:
    """Share of simulated A/A runs whose interval contains 0, with a block effect and a
    process effect as measured here (block sd 0.25 ms, process sd 0.1 ms, pair sd 0.7 ms)."""
    import random

    rng = random.Random(11)
    hits = 0
    for _ in range(runs):
        process = {(a, b): rng.gauss(0, 0.1) - rng.gauss(0, 0.1) for a in (0, 1) for b in (0, 1)}
        base, arm, units = [], [], []
        for block in range(8):
            pair = (block % 2, (block // 2) % 2)
            shift = process[pair] + rng.gauss(0, 0.25)
            for _ in range(50):
                b = 175 + rng.gauss(0, 30)
                base.append(b)
                arm.append(b + shift + rng.gauss(0, 0.7))
            units.append(Unit(50 * block, 50 * (block + 1), pair))
        low, high = interval_of(_op_array(base), _op_array(arm), units)
        hits += low <= 0 <= high
    return hits / runs


def test_the_interval_over_blocks_covers_zero_as_promised():
    coverage = _coverage(lambda b, a, units: paired_overhead(b, a, units)["overhead_latency_ci95_ms"])
    assert 0.92 <= coverage <= 0.995


def test_an_interval_over_pairs_would_not():
    # The check above can fail: treating pairs as independent (the old CI) covers far less.
    def over_pairs(b, a, units):
        return paired_overhead(b, a, [Unit(0, len(b), None)] * 1)["overhead_latency_ci95_ms"]

    import math
    import statistics

    def naive(b, a, units):
        deltas = [(x - y) / 1e6 for x, y in zip(a, b)]
        half = 1.96 * statistics.stdev(deltas) / math.sqrt(len(deltas))
        mean = statistics.fmean(deltas)
        return mean - half, mean + half

    assert _coverage(naive, runs=200) < 0.7


def test_calibration_arm_holds_resident_memory():
    import psutil

    from loadgen.tracers.calibration import CalibrationArm
    from loadgen.settings import CalibrationSettings

    process = psutil.Process()
    before = process.memory_info().rss
    arm = CalibrationArm(CalibrationSettings(mib=64))
    grown = process.memory_info().rss - before
    assert grown >= 0.9 * 64 * 2**20
    del arm


def test_memory_is_the_steady_state_median_after_warmup_against_the_baseline():
    from loadgen.overhead import memory_figures, memory_overhead
    from loadgen.results import merge
    from tests.test_metrics import result, worker

    mib = 2**20
    # Warm-up (t < 2 s) grows; after it the median is what counts, the peak beside it.
    baseline = result(rss_samples=[(0.5, 40 * mib), (1.5, 90 * mib), (2.5, 100 * mib), (3.0, 100 * mib),
                                   (3.5, 102 * mib)], measure_start_s=2.0)
    arm = merge([worker(shard=0, rss_samples=[(2.5, 150 * mib), (3.0, 150 * mib)], measure_start_s=2.0),
                 worker(shard=1, rss_samples=[(2.5, 160 * mib), (3.0, 170 * mib)], measure_start_s=2.0)])
    assert memory_figures(baseline) == {"rss_steady_mib": 100.0, "rss_peak_mib": 102.0}
    assert memory_figures(arm)["rss_steady_mib"] == pytest.approx((150 + 165) / 2)
    assert memory_overhead(baseline, arm) == {"memory_overhead_mib": 57.5, "memory_overhead_percent": 57.5}
    assert memory_overhead(baseline, result(rss_samples=[]))["memory_overhead_mib"] is None
