"""Span accounting: every ended span lands in exactly one bucket, whatever the pipeline does."""

import threading
import time

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from loadgen.accounting import (
    AccountingExporter,
    AccountingProcessor,
    SpanAccounting,
    watch_queue,
    rejected_spans_hook,
)


class SlowExporter(SpanExporter):
    def __init__(self, delay_s=0.0, result=SpanExportResult.SUCCESS):
        self.delay_s = delay_s
        self.result = result
        self.spans = 0

    def export(self, spans):
        time.sleep(self.delay_s)
        self.spans += len(spans)
        return self.result

    def shutdown(self):
        pass


def pipeline(exporter, **bsp):
    accounting = SpanAccounting()
    wrapped = AccountingExporter(exporter, accounting)
    batch = BatchSpanProcessor(wrapped, **bsp)
    assert watch_queue(batch, accounting)
    provider = TracerProvider()
    provider.add_span_processor(AccountingProcessor(batch, accounting))
    return provider, accounting, wrapped


def emit(provider, n):
    tracer = provider.get_tracer("t")
    for i in range(n):
        with tracer.start_as_current_span(f"s{i}"):
            pass


def conserved(snapshot):
    return snapshot["ended"] == snapshot["exported"] + sum(snapshot["dropped"].values()) + snapshot["in_queue"]


def test_everything_exported_when_the_pipeline_keeps_up():
    memory = InMemorySpanExporter()
    provider, accounting, _ = pipeline(memory, schedule_delay_millis=50)
    emit(provider, 300)
    provider.force_flush()
    snap = accounting.snapshot()
    assert snap["started"] == snap["ended"] == snap["exported"] == 300 == len(memory.get_finished_spans())
    assert sum(snap["dropped"].values()) == 0
    assert accounting.export_latency.count == 300


class HeldExporter(SlowExporter):
    """Holds every export until released: the queue fills however fast or slow the machine is."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()

    def export(self, spans):
        self.release.wait(timeout=30)
        return super().export(spans)


def test_a_full_queue_drops_are_counted_as_queue_full():
    # 8-slot queue, an exporter held until all 200 spans have ended: at most one batch (8) is
    # in the exporter's hands and 8 in the queue, so at least 184 are evicted, and every
    # eviction is counted — exported + queue_full = ended, exactly.
    held = HeldExporter()
    provider, accounting, _ = pipeline(held, max_queue_size=8, max_export_batch_size=8, schedule_delay_millis=5000)
    emit(provider, 200)
    held.release.set()
    provider.force_flush()
    provider.shutdown()
    snap = accounting.snapshot()
    assert snap["dropped"]["queue_full"] >= 184
    assert snap["exported"] == held.spans
    assert snap["ended"] == 200 and conserved(snap) and snap["in_queue"] == 0


def test_failed_exports_are_export_failed():
    provider, accounting, _ = pipeline(SlowExporter(result=SpanExportResult.FAILURE), schedule_delay_millis=20)
    emit(provider, 50)
    provider.force_flush()
    snap = accounting.snapshot()
    assert snap["dropped"]["export_failed"] == 50 and snap["exported"] == 0


def test_spans_ending_after_shutdown():
    provider, accounting, _ = pipeline(InMemorySpanExporter(), schedule_delay_millis=20)
    tracer = provider.get_tracer("t")
    span = tracer.start_span("late")
    provider.shutdown()
    span.end()
    snap = accounting.snapshot()
    assert snap["started"] == 1 and snap["dropped"]["after_shutdown"] == 1


def test_partial_success_is_rejected_not_exported():
    class Response:
        status_code = 200
        headers = {"content-type": "application/x-protobuf"}

        def __init__(self, rejected):
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

            message = ExportTraceServiceResponse()
            message.partial_success.rejected_spans = rejected
            self.content = message.SerializeToString()

    class Rejecting(SpanExporter):
        def __init__(self):
            self.hook = None

        def export(self, spans):
            self.hook(Response(3))
            return SpanExportResult.SUCCESS

    inner = Rejecting()
    provider, accounting, wrapped = pipeline(inner, max_export_batch_size=10, schedule_delay_millis=5000)
    inner.hook = rejected_spans_hook(wrapped)
    emit(provider, 10)
    provider.force_flush()
    snap = accounting.snapshot()
    assert snap["dropped"]["rejected"] == 3 and snap["exported"] == 7


def test_conservation_with_threads_racing_the_exporter():
    slow = SlowExporter(delay_s=0.002)
    provider, accounting, _ = pipeline(slow, max_queue_size=64, max_export_batch_size=16, schedule_delay_millis=1)
    threads = [threading.Thread(target=emit, args=(provider, 2000)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    provider.force_flush()
    snap = accounting.snapshot()
    assert snap["ended"] == 8000 and snap["in_queue"] == 0 and conserved(snap)

