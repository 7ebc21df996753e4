"""The span accounting's own cost per span (issue 3, acceptance 5: ≤ 5 µs).

Ends N spans through a TracerProvider + BatchSpanProcessor + a do-nothing exporter, with
and without the accounting processor and exporter wrapper, alternating the two pipelines
five times in one process; prints the median µs per span of each and the difference, and
the tracemalloc-measured memory the accounting holds after each round (it must not grow
with the number of spans).

    .venv/bin/python benchmarks/bench_accounting.py [--spans 200000]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=200_000)
    args = parser.parse_args()
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
