"""The `langfuse` arm: the Langfuse SDK (v3+, built on OpenTelemetry) exporting to its own OTLP ingest path.

Langfuse's client adds its `LangfuseSpanProcessor` (a BatchSpanProcessor that filters
spans, then an OTLP/HTTP protobuf exporter, gzip, Basic auth from the public and secret
keys) to the TracerProvider it is given; its host (`base_url`) is the collector, which
serves `/api/public/otel/v1/traces` like `/v1/traces`. What traces the LLM call is what
Langfuse documents for each provider:
  - OpenAI: Langfuse's own integration, `langfuse.openai`, which wraps the SDK's
    `create` on import (a "generation" observation, attributes `langfuse.observation.*`);
  - Anthropic: Langfuse has no wrapper of its own; its Anthropic guide installs
    OpenLLMetry's `opentelemetry-instrumentation-anthropic` (OTel GenAI attributes).

Accounting: the provider is loadgen's (Langfuse takes `tracer_provider=`), with the
operation's resource; its `add_span_processor` is wrapped so Langfuse's processor is
added inside loadgen's AccountingProcessor, and that processor's exporter (Langfuse's
media-transforming exporter around the OTLP one) inside the AccountingExporter.

Langfuse's default export filter keeps only its own spans, GenAI spans and known LLM
instrumentation scopes, so it would drop the operation's root span (scope "loadgen");
the documented `should_export_span` keeps the default and adds that scope.
"""

from __future__ import annotations

import math
import os

from loadgen.accounting import AccountingExporter, AccountingProcessor, SpanAccounting, rejected_spans_hook, watch_queue
from loadgen.settings import TracingSettings
from loadgen.span_names import ARM, RUN_ID, SERVICE_NAME
from loadgen.tracers.instrumentors import instrumentor
from loadgen.tracers.pipeline import RootSpanArm
from loadgen.tracers.vendor_pipeline import otlp_session

ROOT_SCOPE = "loadgen"  # the root span's tracer (pipeline.RootSpanArm)
PUBLIC_KEY = "pk-lf-loadgen"  # any strings: the collector checks no credentials
SECRET_KEY = "sk-lf-loadgen"


def export_filter():
    """Langfuse's default export filter, and the operation's root span (`should_export_span`)."""
    from langfuse.span_filter import is_default_export_span

    def export_span(span) -> bool:
        scope = span.instrumentation_scope
        return (scope is not None and scope.name == ROOT_SCOPE) or is_default_export_span(span)

    return export_span


class LangfuseArm(RootSpanArm):
    name = "langfuse"

    def __init__(self, settings: TracingSettings, provider_name: str) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        # LangfuseSpanProcessor passes flush_at / flush_interval / timeout on to its
        # BatchSpanProcessor; the queue size it leaves to OTel's environment variable.
        os.environ["OTEL_BSP_MAX_QUEUE_SIZE"] = str(settings.max_queue_size)
        tracer_provider = TracerProvider(resource=Resource.create({
            SERVICE_NAME: f"loadgen-{self.name}-{provider_name}",
            RUN_ID: settings.run_id,
            ARM: self.name,
        }))
        accounting = SpanAccounting()
        add_processor = tracer_provider.add_span_processor

        def add_accounted(processor) -> None:
            # Langfuse's processor is a BatchSpanProcessor; its exporter sits in the inner
            # _batch_processor (OTel 1.45), as HoneyHive's does (docs/instrumentors.md).
            inner = processor._batch_processor
            wrapped = AccountingExporter(inner._exporter, accounting)
            inner._exporter = wrapped
            # LangfuseTransformingSpanExporter keeps the OTLP exporter as `_exporter`.
            otlp_session(getattr(wrapped.inner, "_exporter", wrapped.inner)).hooks["response"].append(
                rejected_spans_hook(wrapped))
            watch_queue(processor, accounting)
            add_processor(AccountingProcessor(processor, accounting))

        tracer_provider.add_span_processor = add_accounted
        from langfuse import Langfuse

        self.langfuse = Langfuse(
            public_key=os.environ.get("LANGFUSE_PUBLIC_KEY") or PUBLIC_KEY,
            secret_key=os.environ.get("LANGFUSE_SECRET_KEY") or SECRET_KEY,
            base_url=settings.collector_url.rstrip("/"),
            tracer_provider=tracer_provider,
            flush_at=settings.max_export_batch_size,
            flush_interval=settings.schedule_delay_ms / 1000,
            timeout=max(1, math.ceil(settings.export_timeout_ms / 1000)),  # whole seconds only
            should_export_span=export_filter(),
        )
        tracer_provider.add_span_processor = add_processor
        if accounting.queue is None:
            raise RuntimeError("langfuse: its span processor was not found on the tracer provider")
        super().__init__(tracer_provider, accounting)
        if provider_name == "openai":
            import langfuse.openai  # noqa: F401  (wraps openai's create on import)
        else:
            instrumentor("openllmetry", provider_name).instrument(tracer_provider=tracer_provider)

    def shutdown(self) -> dict:
        # Langfuse's flush drains the span queue and its score and media threads, which
        # shutdown then stops; the provider's shutdown ends the accounted processor.
        self.langfuse.shutdown()
        return super().shutdown()


def langfuse_arm(settings: TracingSettings, provider_name: str, model: str, calibration) -> LangfuseArm:
    """The `langfuse` arm's factory (loadgen.arms)."""
    return LangfuseArm(settings, provider_name)
