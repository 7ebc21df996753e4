"""The `logfire` arm: Pydantic Logfire's own export pipeline, pointed at the collector.

`logfire.configure(local=True, send_to_logfire=True, token=…, advanced=AdvancedOptions(
base_url=<collector>))` builds what a Logfire user runs: its TracerProvider (the
operation's resource: `resource_attributes`), its span processor wrappers (scrubbing),
and per token a `DynamicBatchSpanProcessor` around OTLP/HTTP protobuf, gzip, to
`{base_url}/v1/traces`, through Logfire's own requests session (which retries failed
exports from disk). The token is a placeholder: with `base_url` set, no region is read
from it and nothing leaves loopback. On start Logfire checks the token in a thread
(`GET {base_url}/v1/info`), which the collector answers. Metrics are off (nothing to
measure and the collector has no /v1/metrics); pending spans are off (see below).

The LLM span is Logfire's: `instrument_openai()` / `instrument_anthropic()` wrap the
SDK client classes' request method, attributes in the OTel GenAI convention (version 2,
the default).

Accounting: Logfire builds its batch processor inside `configure`, so the name it
builds it by (`logfire._internal.config.DynamicBatchSpanProcessor`) is swapped for the
duration of the call for one that puts loadgen's AccountingProcessor in front of it and
the AccountingExporter behind its exporter chain. The batch settings go through the
OTel environment variables the BatchSpanProcessor reads (Logfire passes only the
initial schedule delay; its final delay is OTEL_BSP_SCHEDULE_DELAY).

Pending spans (Logfire's default) are a placeholder record exported when a span starts;
they are not spans the provider ends, and Logfire drops one from a batch that also holds
its finished span, so how many reach the collector depends on batch boundaries: they
would break the conservation ended = received + dropped. `pending_spans=False` is
Logfire's documented switch for them.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from loadgen.accounting import AccountingExporter, AccountingProcessor, SpanAccounting, rejected_spans_hook, watch_queue
from loadgen.settings import TracingSettings
from loadgen.span_names import ARM, RUN_ID
from loadgen.tracers.pipeline import RootSpanArm
from loadgen.tracers.vendor_pipeline import otlp_session

TOKEN = "pylf_v1_loadgen_local"  # a placeholder: Logfire sends it to base_url only (the collector)


def batch_environment(settings: TracingSettings) -> dict[str, str]:
    """The OTEL_BSP_* variables that carry the profile's batch settings into Logfire's BatchSpanProcessor."""
    return {
        "OTEL_BSP_MAX_QUEUE_SIZE": str(settings.max_queue_size),
        "OTEL_BSP_SCHEDULE_DELAY": str(settings.schedule_delay_ms),
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": str(settings.max_export_batch_size),
        "OTEL_BSP_EXPORT_TIMEOUT": str(settings.export_timeout_ms),
    }


def innermost_exporter(exporter):
    """The OTLP exporter at the bottom of Logfire's chain of wrapping exporters (`wrapped_exporter`)."""
    while getattr(exporter, "wrapped_exporter", None) is not None:
        exporter = exporter.wrapped_exporter
    return exporter


@contextmanager
def accounted_batches(accounting: SpanAccounting):
    """While configure runs, Logfire's batch processors are built with loadgen's accounting around them."""
    from logfire._internal import config

    original = config.DynamicBatchSpanProcessor

    def build(exporter):
        wrapped = AccountingExporter(exporter, accounting)
        otlp_session(innermost_exporter(exporter)).hooks["response"].append(rejected_spans_hook(wrapped))
        processor = original(wrapped)
        watch_queue(processor.processor, accounting)
        return AccountingProcessor(processor, accounting)

    config.DynamicBatchSpanProcessor = build
    try:
        yield
    finally:
        config.DynamicBatchSpanProcessor = original


class LogfireArm(RootSpanArm):
    name = "logfire"

    def __init__(self, settings: TracingSettings, provider_name: str) -> None:
        import logfire

        os.environ.update(batch_environment(settings))
        accounting = SpanAccounting()
        with accounted_batches(accounting):
            self.logfire = logfire.configure(
                local=True,
                send_to_logfire=True,
                token=os.environ.get("LOGFIRE_TOKEN") or TOKEN,
                service_name=f"loadgen-{self.name}-{provider_name}",
                resource_attributes={RUN_ID: settings.run_id, ARM: self.name},
                console=False,
                metrics=False,
                inspect_arguments=False,
                advanced=logfire.AdvancedOptions(base_url=settings.collector_url.rstrip("/"), pending_spans=False),
            )
        if accounting.queue is None:
            raise RuntimeError("logfire: its batch span processor was not built through the accounting")
        super().__init__(self.logfire.config.get_tracer_provider(), accounting)
        if provider_name == "openai":
            self.logfire.instrument_openai()
        else:
            self.logfire.instrument_anthropic()

    def flush(self) -> None:
        self.logfire.force_flush(timeout_millis=30_000)

    def shutdown(self) -> dict:
        self.logfire.force_flush(timeout_millis=30_000)
        self.logfire.shutdown()
        return self.accounting.snapshot()


def logfire_arm(settings: TracingSettings, provider_name: str, model: str, calibration) -> LogfireArm:
    """The `logfire` arm's factory (loadgen.arms)."""
    return LogfireArm(settings, provider_name)
