"""What every OTel tracing arm shares: the pipeline with span accounting, and the root span.

Each operation gets a root span `loadgen.operation` (attribute `loadgen.op_id`) with the
LLM span as its child; spans go TracerProvider → AccountingProcessor → BatchSpanProcessor
→ AccountingExporter → OTLP/HTTP protobuf to the collector, whose resource carries
`loadgen.run_id` so the collector can tell runs apart (names: loadgen.span_names).
"""

from __future__ import annotations

from loadgen.accounting import (
    AccountingExporter,
    AccountingProcessor,
    SpanAccounting,
    rejected_spans_hook,
    watch_queue,
)
from loadgen.prompts import Prompt
from loadgen.providers.base import CallRecord, Provider
from loadgen.span_names import ARM, OP_ID, ROOT_SPAN, RUN_ID, SERVICE_NAME
from loadgen.tracers.base import Traced
from loadgen.settings import TracingSettings


def otel_pipeline(settings: TracingSettings, arm: str, provider_name: str):
    """TracerProvider → AccountingProcessor → BatchSpanProcessor → AccountingExporter → OTLP/HTTP protobuf."""
    import requests
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create({
        SERVICE_NAME: f"loadgen-{arm}-{provider_name}",
        RUN_ID: settings.run_id,
        ARM: arm,
    })
    tracer_provider = TracerProvider(resource=resource)
    accounting = SpanAccounting()
    session = requests.Session()
    exporter = OTLPSpanExporter(
        endpoint=settings.collector_url.rstrip("/") + "/v1/traces",
        session=session,
        timeout=settings.export_timeout_ms / 1000,
    )
    tracer_provider.add_span_processor(accounted_batch(exporter, session, settings, accounting))
    return tracer_provider, accounting


def accounted_batch(exporter, session, settings: TracingSettings, accounting: SpanAccounting,
                    count_lifecycle: bool = True) -> AccountingProcessor:
    """AccountingProcessor → BatchSpanProcessor (the profile's settings) → AccountingExporter → exporter.

    `session` is the exporter's `requests.Session`; a response hook on it reads OTLP
    partial-success answers for the accounting.
    """
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    wrapped = AccountingExporter(exporter, accounting)
    session.hooks["response"].append(rejected_spans_hook(wrapped))
    batch = BatchSpanProcessor(
        wrapped,
        max_queue_size=settings.max_queue_size,
        schedule_delay_millis=settings.schedule_delay_ms,
        max_export_batch_size=settings.max_export_batch_size,
        export_timeout_millis=settings.export_timeout_ms,
    )
    watch_queue(batch, accounting)
    return AccountingProcessor(batch, accounting, count_lifecycle=count_lifecycle)


class RootSpanned(Traced):
    """Each call inside the operation's root span, opened by `start_span(name, attributes=…)`:
    an OTel tracer's `start_as_current_span`, or the opener of an SDK that keeps a context of
    its own (MLflow's `start_span`), so that the SDK's LLM span is the root's child."""

    def __init__(self, provider: Provider, start_span) -> None:
        super().__init__(provider)
        self.start_span = start_span

    async def call(self, prompt: Prompt, rec: CallRecord) -> None:
        with self.start_span(ROOT_SPAN, attributes={OP_ID: rec.op_id}):
            await self.provider.call(prompt, rec)

    def call_sync(self, prompt: Prompt, rec: CallRecord) -> None:
        # Opened in the pool thread that makes the call: the context it makes current is
        # that thread's, where the SDK's (or the instrumentor's) LLM span finds its parent.
        with self.start_span(ROOT_SPAN, attributes={OP_ID: rec.op_id}):
            self.provider.call_sync(prompt, rec)


class RootSpanArm:
    """Wraps each call in the operation's root span; subclasses add what lies under it."""

    name = "root"

    def __init__(self, tracer_provider, accounting: SpanAccounting) -> None:
        self.tracer_provider = tracer_provider
        self.accounting = accounting
        self.tracer = tracer_provider.get_tracer("loadgen")

    def wrap(self, provider: Provider) -> Provider:
        return RootSpanned(provider, self.tracer.start_as_current_span)

    def provider_options(self) -> dict:
        return {}

    def flush(self) -> None:
        self.tracer_provider.force_flush()

    def shutdown(self) -> dict:
        """Final flush; every span that ended is in a bucket after this."""
        self.tracer_provider.force_flush()
        self.tracer_provider.shutdown()
        return self.accounting.snapshot()

    def known_answer(self) -> None:
        return None
