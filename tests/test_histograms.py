"""HDR recording in µs, out-of-range counted, encode/decode across processes."""

import pytest

from loadgen.histograms import Recorder


def test_records_microseconds_and_summarises_in_ms():
    rec = Recorder()
    for ms in (1, 2, 3, 4, 100):
        rec.record_ns(ms * 1_000_000)
    summary = rec.summary_ms()
    assert summary["count"] == 5 and summary["max"] == 100.0 or abs(summary["max"] - 100) < 0.1
    assert abs(summary["p50"] - 3) < 0.01


def test_out_of_range_values_are_counted_not_lost():
    rec = Recorder()
    rec.record_ns(-5)
    rec.record_ns(5 * 3600 * 10**9)  # five hours
    assert rec.count == 0 and rec.out_of_range == 2


def test_encode_decode_merge():
    a, b = Recorder(), Recorder()
    for v in range(1, 1001):
        a.record_ns(v * 1000)
        b.record_ns(v * 2000)
    merged = Recorder.decode(a.encode())
    merged.add_encoded(b.encode())
    assert merged.count == 2000
    assert Recorder.decode(Recorder().encode()).count == 0


def test_count_at_or_above():
    rec = Recorder()
    for ms in (10, 500, 1000, 1500, 2000):
        rec.record_ns(ms * 1_000_000)
    assert rec.count_at_or_above_ms(1000) == 3


def test_inline_recording_matches_hdrh():
    import random

    from loadgen.histograms import new_histogram

    rng = random.Random(1)
    values = [0, 1, 2, 999, 1000, 1023, 1024, 2047, 2048, 10**6, 3_599_999_999, 3_600_000_000]
    values += [rng.randrange(0, 3_600_000_000) for _ in range(5000)] + [rng.randrange(0, 5000) for _ in range(5000)]
    ours, theirs = Recorder(), new_histogram()
    for v in values:
        ours.record_ns(v * 1000)
        assert theirs.record_value(v)
    assert ours.out_of_range == 0
    assert ours.histogram.get_total_count() == theirs.get_total_count()
    assert ours.histogram.get_min_value() == theirs.get_min_value()
    assert ours.histogram.get_max_value() == theirs.get_max_value()
    for pct in (0, 10, 50, 90, 99, 99.9, 100):
        assert ours.histogram.get_value_at_percentile(pct) == theirs.get_value_at_percentile(pct)
    assert Recorder.decode(ours.encode()).histogram.get_value_at_percentile(50) == theirs.get_value_at_percentile(50)


def test_add_and_reset_in_place():
    from loadgen.histograms import Recorder

    a, b = Recorder(), Recorder()
    for value in (1_000_000, 2_000_000, 3_000_000):
        a.record_ns(value)
    b.record_ns(-1)  # out of range
    b.record_ns(5_000_000)
    a.add(b)
    assert a.count == 4 and a.out_of_range == 1 and a.summary_ms()["max"] == pytest.approx(5.0, rel=1e-3)
    counts = a._counts
    a.reset()
    assert a.count == 0 and a.out_of_range == 0 and a._counts is counts
    a.record_ns(7_000_000)
    assert a.summary_ms()["p50"] == pytest.approx(7.0, rel=1e-3)
