"""The `traceloop` arm: the Traceloop SDK (OpenLLMetry's distribution) with its own exporter.

`Traceloop.init(api_endpoint=<collector>)` is what a team writes to send traces to its own
OTLP backend: the SDK posts OTLP/HTTP protobuf to `{api_endpoint}/v1/traces`, sets the
global TracerProvider, and instruments the SDKs it finds with the OpenLLMetry
instrumentors (only the worker's provider here: `instruments={...}`).

Accounting: Traceloop builds its exporter from `api_endpoint`, and lets the caller pass
the processor around it (`processor=`, its documented way to combine processors). The
exporter is the one `Traceloop.get_default_span_processor(api_endpoint=...)` builds, and
the processor is loadgen's accounted batch with the profile's settings around it; Traceloop
chains its own `on_start` (association properties) in front of it.

Nothing else leaves the worker: `telemetry_enabled=False` (and TRACELOOP_TELEMETRY=false,
read by releases that still send PostHog telemetry); a custom processor without a metrics
exporter turns Traceloop's OTLP metrics off (TRACELOOP_METRICS_ENABLED=false says so
again); logging export is off by default; prompt sync runs only against traceloop.com.
"""

from __future__ import annotations

import os

from loadgen.accounting import SpanAccounting
from loadgen.settings import TracingSettings
from loadgen.span_names import ARM, RUN_ID
from loadgen.tracers.pipeline import RootSpanArm, accounted_batch
from loadgen.tracers.vendor_pipeline import otlp_session

# Environment settings Traceloop reads at init, written before it is imported.
QUIET_ENVIRONMENT = {
    "TRACELOOP_TELEMETRY": "false",  # PostHog telemetry (releases before it became opt-in)
    "TRACELOOP_METRICS_ENABLED": "false",  # OTLP metrics to {api_endpoint}/v1/metrics
    "TRACELOOP_LOGGING_ENABLED": "false",  # OTLP logs (off by default)
    "TRACELOOP_SUPPRESS_WARNINGS": "true",
}


class TraceloopArm(RootSpanArm):
    name = "traceloop"

    def __init__(self, settings: TracingSettings, provider_name: str) -> None:
        os.environ.update(QUIET_ENVIRONMENT)  # set, not defaulted: nothing but spans may leave
        from opentelemetry import trace
        from traceloop.sdk import Traceloop
        from traceloop.sdk.instruments import Instruments

        api_key = os.environ.get("TRACELOOP_API_KEY") or "loadgen-local"
        vendor = Traceloop.get_default_span_processor(
            disable_batch=True, api_endpoint=settings.collector_url, api_key=api_key
        )
        exporter = vendor.span_exporter  # Traceloop's exporter; its SimpleSpanProcessor is dropped
        accounting = SpanAccounting()
        processor = accounted_batch(exporter, otlp_session(exporter), settings, accounting)
        Traceloop.init(
            app_name=f"loadgen-{self.name}-{provider_name}",
            api_endpoint=settings.collector_url,
            api_key=api_key,
            telemetry_enabled=False,
            processor=processor,
            resource_attributes={RUN_ID: settings.run_id, ARM: self.name},
            instruments={Instruments.OPENAI if provider_name == "openai" else Instruments.ANTHROPIC},
        )
        tracer_provider = trace.get_tracer_provider()  # Traceloop set it globally
        if not hasattr(tracer_provider, "force_flush"):
            raise RuntimeError("Traceloop.init did not install a TracerProvider (is TRACELOOP_TRACING_ENABLED false?)")
        super().__init__(tracer_provider, accounting)


def traceloop_arm(settings: TracingSettings, provider_name: str, model: str, calibration) -> TraceloopArm:
    """The `traceloop` arm's factory (loadgen.arms)."""
    return TraceloopArm(settings, provider_name)
