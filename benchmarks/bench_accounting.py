"""The span accounting's own cost per span (issue 3, acceptance 5: ≤ 5 µs).

Ends N spans through a TracerProvider + BatchSpanProcessor + a do-nothing exporter, with
and without the accounting processor and exporter wrapper, alternating the two pipelines
five times in one process; prints the median µs per span of each and the difference, and
the tracemalloc-measured memory the accounting holds after each round (it must not grow
with the number of spans).

    .venv/bin/python benchmarks/bench_accounting.py [--spans 200000]
    .venv/bin/python benchmarks/bench_accounting.py --minutes 10   # memory over a long run

With --minutes, one accounted pipeline (a real OTLP/HTTP exporter to the embedded
collector would measure the collector too, so a no-op exporter again) ends spans at a
steady 2,000/s for that long; every minute it prints the memory tracemalloc attributes to
loadgen/accounting.py and loadgen/histograms.py, the process RSS, and the spans so far.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])
from loadgen.accounting import AccountingExporter, AccountingProcessor, SpanAccounting, watch_queue  # noqa: E402


class NullExporter(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS

    def shutdown(self):
        pass


def run(spans: int, accounted: bool) -> tuple[float, SpanAccounting | None]:
    provider = TracerProvider()
    accounting = None
    if accounted:
        accounting = SpanAccounting()
        batch = BatchSpanProcessor(AccountingExporter(NullExporter(), accounting), max_queue_size=65536)
        watch_queue(batch, accounting)
        provider.add_span_processor(AccountingProcessor(batch, accounting))
    else:
        provider.add_span_processor(BatchSpanProcessor(NullExporter(), max_queue_size=65536))
    tracer = provider.get_tracer("bench")
    start = time.perf_counter()
    for _ in range(spans):
        tracer.start_span("llm").end()
    provider.force_flush()
    elapsed = time.perf_counter() - start
    provider.shutdown()
    return elapsed / spans * 1e6, accounting


def soak(minutes: float, rate: int = 2000) -> None:
    import psutil

    tracemalloc.start()
    provider = TracerProvider()
    accounting = SpanAccounting()
    batch = BatchSpanProcessor(AccountingExporter(NullExporter(), accounting), schedule_delay_millis=200)
    watch_queue(batch, accounting)
    provider.add_span_processor(AccountingProcessor(batch, accounting))
    tracer = provider.get_tracer("soak")
    process = psutil.Process()
    start = time.monotonic()
    next_report = start
    ended = 0
    while True:
        now = time.monotonic()
        if now >= next_report:
            snapshot = tracemalloc.take_snapshot()
            held = sum(stat.size for stat in snapshot.statistics("filename")
                       if stat.traceback[0].filename.endswith(("accounting.py", "histograms.py")))
            print(f"{(now - start) / 60:5.1f} min: {ended:>9} spans ended, {accounting.exported:>9} exported; "
                  f"accounting + histogram memory {held:>7} B; RSS {process.memory_info().rss / 2**20:.1f} MiB",
                  flush=True)
            next_report += 60
            if now - start >= minutes * 60:
                break
        # One second's spans, then sleep to the next second: a steady rate.
        for _ in range(rate):
            tracer.start_span("llm").end()
        ended += rate
        time.sleep(max(0.0, 1.0 - (time.monotonic() - now)))
    provider.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--minutes", type=float, default=None)
    args = parser.parse_args()
    if args.minutes:
        soak(args.minutes)
        print(f"reproduce: .venv/bin/python benchmarks/bench_accounting.py --minutes {args.minutes:g}")
        return 0
    bare, accounted = [], []
    for _ in range(5):
        bare.append(run(args.spans, False)[0])
        accounted.append(run(args.spans, True)[0])
    b, a = statistics.median(bare), statistics.median(accounted)
    print(f"{args.spans} spans × 5 rounds: bare pipeline {b:.2f} µs/span, with accounting {a:.2f} µs/span, "
          f"accounting costs {a - b:.2f} µs/span (target ≤ 5)")
    tracemalloc.start()
    sizes = []
    for spans in (10_000, 100_000):
        _, accounting = run(spans, True)
        snapshot = tracemalloc.take_snapshot()
        held = sum(stat.size for stat in snapshot.statistics("filename") if "accounting" in stat.traceback[0].filename)
        sizes.append(held)
        del accounting
    print(f"memory allocated in loadgen/accounting.py after 10k and 100k spans: {sizes[0]} B, {sizes[1]} B")
    print(f"reproduce: .venv/bin/python benchmarks/bench_accounting.py --spans {args.spans}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
