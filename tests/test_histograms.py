"""HDR recording in µs, out-of-range counted, encode/decode across processes."""

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
