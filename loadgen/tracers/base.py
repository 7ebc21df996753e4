"""What every tracer arm shares: its settings, the OTel pipeline with accounting, the root span."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from loadgen.accounting import (
    AccountingExporter,
    AccountingProcessor,
    SpanAccounting,
    rejected_spans_hook,
    watch_queue,
)
from loadgen.prompts import Prompt
from loadgen.providers.base import Provider
from loadgen.results import CallRecord
from loadgen.tracers.calibration import CalibrationSettings

ROOT_SPAN = "loadgen.operation"
OP_ID_ATTRIBUTE = "loadgen.op_id"
ARM_NAMES = ("baseline", "otel", "openinference", "openllmetry", "honeyhive", "anthropic-native", "calibration")


@dataclass(frozen=True)
class TracingSettings:
    """Where spans go and how they are batched; plain data, so it crosses into workers."""

    collector_url: str | None  # base URL; OTLP goes to {collector_url}/v1/traces (None: HoneyHive's own server)
    run_id: str  # every span's resource carries loadgen.run_id, so the collector can tell runs apart
    max_queue_size: int = 2048
    schedule_delay_ms: int = 5000
    max_export_batch_size: int = 512
    export_timeout_ms: int = 30000


class Arm(Protocol):
    name: str
    accounting: SpanAccounting

    async def call(self, provider: Provider, prompt: Prompt, rec: CallRecord) -> None: ...

    def flush(self) -> None: ...

    def shutdown(self) -> dict: ...


def otel_pipeline(settings: TracingSettings, arm: str, provider_name: str):
    """TracerProvider → AccountingProcessor → BatchSpanProcessor → AccountingExporter → OTLP/HTTP protobuf."""
    import requests
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create({
        "service.name": f"loadgen-{arm}-{provider_name}",
        "loadgen.run_id": settings.run_id,
        "loadgen.arm": arm,
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


class RootSpanArm:
    """Wraps each call in the operation's root span; subclasses add what lies under it."""

    name = "root"

    def __init__(self, tracer_provider, accounting: SpanAccounting) -> None:
        self.tracer_provider = tracer_provider
        self.accounting = accounting
        self.tracer = tracer_provider.get_tracer("loadgen")

    async def call(self, provider: Provider, prompt: Prompt, rec: CallRecord) -> None:
        with self.tracer.start_as_current_span(ROOT_SPAN, attributes={OP_ID_ATTRIBUTE: rec.op_id}):
            await self.inner_call(provider, prompt, rec)

    async def inner_call(self, provider: Provider, prompt: Prompt, rec: CallRecord) -> None:
        await provider.call(prompt, rec)

    def provider_options(self) -> dict:
        """Extra options for the provider adapter (the anthropic-native arm turns SDK tracing on)."""
        return {}

    def flush(self) -> None:
        """Export what is queued now (between blocks, so no export spills into another arm's)."""
        self.tracer_provider.force_flush()

    def shutdown(self) -> dict:
        """Final flush; every span that ended is in a bucket after this."""
        self.tracer_provider.force_flush()
        self.tracer_provider.shutdown()
        return self.accounting.snapshot()


def make_arm(name: str, settings: TracingSettings | None, provider_name: str, model: str,
             calibration: CalibrationSettings = CalibrationSettings()) -> Arm | None:
    """The arm's handle in this worker (None for the baseline)."""
    if name == "baseline":
        return None
    if name == "calibration":
        from loadgen.tracers.calibration import CalibrationArm

        return CalibrationArm(calibration)
    if settings is None:
        raise ValueError(f"arm {name!r} needs tracing settings (a collector)")
    if name == "otel":
        from loadgen.tracers.otel_genai import OtelGenAIArm

        tracer_provider, accounting = otel_pipeline(settings, name, provider_name)
        return OtelGenAIArm(tracer_provider, accounting, provider_name, model)
    if name in ("openinference", "openllmetry"):
        from loadgen.tracers.instrumentors import InstrumentorArm

        return InstrumentorArm(name, settings, provider_name)
    if name == "honeyhive":
        from loadgen.tracers.honeyhive import HoneyHiveArm

        return HoneyHiveArm(settings, provider_name)
    if name == "anthropic-native":
        from loadgen.tracers.anthropic_native import AnthropicNativeArm

        return AnthropicNativeArm(settings, provider_name)
    raise ValueError(f"unknown arm {name!r}")
