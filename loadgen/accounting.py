"""Span accounting: every span that ends in a worker lands in exactly one bucket.

A processor wraps the arm's batch span processor and an exporter wraps its exporter:

    span ends ──> AccountingProcessor.on_end ──> BatchSpanProcessor queue ──> AccountingExporter.export ──> collector
                  ended += 1                     evicted when full:             SUCCESS: exported += n − rejected,
                  after shutdown: dropped          dropped[queue_full]            rejected from partial success,
                  [after_shutdown]                                                t_ack − t_enqueue per span
                                                                                FAILURE: dropped[export_failed]

t_enqueue is the span's end time (its hand-off to the processor) and t_ack the moment the
export carrying it returned success; both are wall-clock nanoseconds because that is what
a span carries, so no per-span state is kept anywhere but in the queue itself.

The OpenTelemetry BatchSpanProcessor evicts the oldest span when its queue is full and
says so only in a log line. Its queue has no other exit than the exporter, so the
evictions are exactly: spans handed to it − spans handed to the exporter − spans still
queued. Both hand-offs are counted here, so after the final flush that difference is the
exact queue_full count, with no lock and no per-span state.

O(1) work per span, never raises, never blocks. The baseline has no accounting at all
(its arm is None), so it pays nothing.
"""

from __future__ import annotations

import collections
import time
from typing import Sequence

from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from loadgen.histograms import Recorder

DROP_REASONS = ("queue_full", "export_failed", "rejected", "after_shutdown")


class SpanAccounting:
    """The counters one arm's pipeline fills; read after the final flush."""

    def __init__(self) -> None:
        self.started = 0
        self.ended = 0
        self.queued = 0  # handed to the batch processor
        self.to_exporter = 0  # handed to the exporter by the batch processor
        self.exported = 0
        self.dropped = dict.fromkeys(DROP_REASONS, 0)
        self.export_latency = Recorder()
        self.export_calls = 0
        self.queue: collections.deque | None = None

    def in_queue(self) -> int:
        return len(self.queue) if self.queue is not None else 0

    def counts(self) -> tuple[int, int, dict[str, int], int]:
        """(ended, exported, dropped by reason, queued now): cheap enough to sample while the run goes."""
        in_queue = self.in_queue()
        dropped = dict(self.dropped)
        if self.queue is not None:
            # Exact once flushed; while running, a batch popped but not yet handed over
            # shows here for a few microseconds.
            dropped["queue_full"] = max(0, self.queued - self.to_exporter - in_queue)
        return self.ended, self.exported, dropped, in_queue

    def snapshot(self) -> dict:
        ended, exported, dropped, in_queue = self.counts()
        return {
            "started": self.started,
            "ended": ended,
            "exported": exported,
            "dropped": dropped,
            "in_queue": in_queue,
            "export_calls": self.export_calls,
            "export_latency": self.export_latency.encode(),
        }


def watch_queue(batch_processor: SpanProcessor, accounting: SpanAccounting) -> bool:
    """Let the accounting see a BatchSpanProcessor's queue length; False if its shape is unknown."""
    inner = getattr(batch_processor, "_batch_processor", None)
    queue = getattr(inner, "_queue", None)
    if not isinstance(queue, collections.deque):
        return False
    accounting.queue = queue
    return True


class AccountingProcessor(SpanProcessor):
    """Counts spans started and ended in front of the processor that queues them."""

    def __init__(self, inner: SpanProcessor, accounting: SpanAccounting, count_lifecycle: bool = True) -> None:
        self.inner = inner
        self.accounting = accounting
        # False where another processor on the provider counts started/ended (HoneyHive).
        self.count_lifecycle = count_lifecycle
        self._shutdown = False

    def on_start(self, span: Span, parent_context=None) -> None:
        if self.count_lifecycle:
            self.accounting.started += 1
        self.inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        accounting = self.accounting
        if self.count_lifecycle:
            accounting.ended += 1
        if self._shutdown:
            accounting.dropped["after_shutdown"] += 1
            return
        accounting.queued += 1
        try:
            self.inner.on_end(span)
        except Exception:  # a processor hook must never raise into the caller
            accounting.queued -= 1
            accounting.dropped["export_failed"] += 1

    def shutdown(self) -> None:
        self._shutdown = True
        self.inner.shutdown()
        # Whatever the queue still holds now (shutdown timed out) will never be exported.
        left = self.accounting.in_queue()
        if left:
            self.accounting.dropped["after_shutdown"] += left
            self.accounting.queued -= left
            self.accounting.queue.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class AccountingExporter(SpanExporter):
    """Wraps the arm's exporter: what the collector acknowledged, what it refused, how long it took."""

    def __init__(self, inner: SpanExporter, accounting: SpanAccounting) -> None:
        self.inner = inner
        self.accounting = accounting
        # Set by a response hook on the exporter's HTTP session when the collector
        # answers with an OTLP partial success; exports are serialized by the processor.
        self.last_rejected = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        accounting = self.accounting
        accounting.export_calls += 1
        accounting.to_exporter += len(spans)
        self.last_rejected = 0
        try:
            result = self.inner.export(spans)
        except Exception:
            result = SpanExportResult.FAILURE
        count = len(spans)
        if result is not SpanExportResult.SUCCESS:
            accounting.dropped["export_failed"] += count
            return result
        rejected = min(self.last_rejected, count)
        accounting.dropped["rejected"] += rejected
        accounting.exported += count - rejected
        t_ack = time.time_ns()
        record = accounting.export_latency.record_ns
        for span in spans:
            if span.end_time is not None:
                record(t_ack - span.end_time)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return getattr(self.inner, "force_flush", lambda *_: True)(timeout_millis)


def rejected_spans_hook(exporter: AccountingExporter):
    """A `requests` response hook reading `partial_success.rejected_spans` from an OTLP answer."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    def hook(response, *args, **kwargs):
        if response.status_code != 200 or not response.content:
            return response
        try:
            if "json" in response.headers.get("content-type", ""):
                body = response.json()
                rejected = int((body.get("partialSuccess") or {}).get("rejectedSpans") or 0)
            else:
                message = ExportTraceServiceResponse()
                message.ParseFromString(response.content)
                rejected = message.partial_success.rejected_spans
        except Exception:
            rejected = 0
        exporter.last_rejected = rejected
        return response

    return hook

