"""The schedule is pure: every rate is checked with plain arithmetic, no clock."""

import statistics

import pytest

from loadgen.profile import ConstantLoad, PoissonLoad, RampLoad
from loadgen.schedule import NS, open_loop_offsets, planned_rate, warmup_offsets


def test_constant_200_rps_for_30_s_is_6000_evenly_spaced():
    # 200/s for 30 s → 6,000 operations, 5 ms apart, first at 0.
    offsets = open_loop_offsets(ConstantLoad(rate=200), seed=1, duration_s=30)
    assert len(offsets) == 6000
    assert offsets[0] == 0
    assert {b - a for a, b in zip(offsets, offsets[1:])} == {5_000_000}


@pytest.mark.parametrize(
    "rate, duration, expected",
    [
        (0.1, 30, 3),  # 0.1/s × 30 s is 3, not 2 by float rounding
        (7, 1, 7),  # 7/s for 1 s → 7
        (1000, 0.5, 500),  # fractional duration
    ],
)
def test_constant_counts(rate, duration, expected):
    assert len(open_loop_offsets(ConstantLoad(rate=rate), seed=0, duration_s=duration)) == expected


def test_constant_by_operations():
    # 10/s and 4 operations → 0, 100, 200, 300 ms
    offsets = open_loop_offsets(ConstantLoad(rate=10), seed=0, operations=4)
    assert list(offsets) == [0, 100_000_000, 200_000_000, 300_000_000]


def test_poisson_is_seeded_and_has_exponential_gaps():
    a = open_loop_offsets(PoissonLoad(kind="poisson", rate=200), seed=7, operations=20000)
    b = open_loop_offsets(PoissonLoad(kind="poisson", rate=200), seed=7, operations=20000)
    c = open_loop_offsets(PoissonLoad(kind="poisson", rate=200), seed=8, operations=20000)
    assert a == b and a != c
    gaps = [y - x for x, y in zip(a, a[1:])]
    mean = statistics.fmean(gaps)
    cv = statistics.pstdev(gaps) / mean
    assert mean == pytest.approx(NS / 200, rel=0.03)
    assert 0.97 < cv < 1.03  # exponential: CV 1


def test_poisson_by_duration_stays_inside_it():
    offsets = open_loop_offsets(PoissonLoad(kind="poisson", rate=100), seed=3, duration_s=10)
    assert offsets[-1] < 10 * NS
    assert 900 < len(offsets) < 1100


def test_ramp_rate_rises_linearly():
    # 10/s → 30/s over 10 s: 200 operations, the first second ~10, the last ~30.
    offsets = open_loop_offsets(RampLoad(kind="ramp", rate=10, rate_end=30), seed=0, duration_s=10)
    assert len(offsets) == 200
    first_second = sum(1 for o in offsets if o < NS)
    last_second = sum(1 for o in offsets if o >= 9 * NS)
    assert first_second == pytest.approx(11, abs=1)
    assert last_second == pytest.approx(29, abs=1)
    assert all(b > a for a, b in zip(offsets, offsets[1:]))


def test_ramp_down_and_by_operations():
    offsets = open_loop_offsets(RampLoad(kind="ramp", rate=30, rate_end=10), seed=0, operations=200)
    # 200 operations at a mean of 20/s → 10 s
    assert offsets[-1] == pytest.approx(10 * NS, rel=0.01)


def test_exactly_one_length():
    with pytest.raises(ValueError):
        open_loop_offsets(ConstantLoad(rate=1), seed=0)


def test_warmup_precedes_zero_at_the_starting_rate():
    # 3 warm-up operations at 10/s → -300, -200, -100 ms
    assert list(warmup_offsets(ConstantLoad(rate=10), 3)) == [-300_000_000, -200_000_000, -100_000_000]


def test_planned_rate():
    assert planned_rate(open_loop_offsets(ConstantLoad(rate=50), seed=0, operations=101)) == pytest.approx(50)
