"""The `lmnr` arm: Laminar's SDK (`Laminar.initialize`), its own instrumentors and exporter.

Laminar 0.8 (docs/instrumentors.md) builds its own TracerProvider with one
LaminarSpanProcessor, which stamps `lmnr.span.*` path attributes on every span and hands
it to a batch processor around a LaminarSpanExporter; with `force_http=True` that is the
OTel OTLP/HTTP protobuf exporter (gzip) to `{base_url}:{http_port}/v1/traces`, so the
collector's own `/v1/traces` serves it. Its OpenAI and Anthropic instrumentors are
Laminar's copies of OpenLLMetry's (OTel GenAI attributes).

The span accounting goes in as for HoneyHive: Laminar is started with
`disable_batch=True` and its processor's inner SimpleSpanProcessor (no thread, nothing to
shut down) is replaced by our accounted batch processor around Laminar's own exporter; a
lifecycle counter on the provider counts every span started and ended, so a span
Laminar drops before queueing (its `lmnr.internal.disabled` spans) shows as unaccounted.

Laminar keeps its own context, apart from OTel's: an LLM span is a child of the span
opened by `Laminar.start_as_current_span`, not of one opened on a plain OTel tracer, so
the operation's root span is opened through Laminar. Laminar builds its resource with
`Resource(...)` (no OTEL_RESOURCE_ATTRIBUTES, and no option of `initialize` for it), so
loadgen's resource attributes go to `init_tracing`, the function `initialize` calls.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from loadgen.accounting import SpanAccounting
from loadgen.providers.base import Provider
from loadgen.settings import TracingSettings
from loadgen.span_names import ARM, RUN_ID
from loadgen.tracers.pipeline import RootSpanArm, RootSpanned, accounted_batch
from loadgen.tracers.vendor_pipeline import LifecycleCounter, otlp_session


def _split_collector_url(url: str) -> tuple[str, int]:
    """Laminar takes the host and the port apart: ("http://127.0.0.1", 4318) from a base URL."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname}", port


class LaminarArm(RootSpanArm):
    name = "lmnr"

    def __init__(self, settings: TracingSettings, provider_name: str) -> None:
        import os

        from lmnr import Instruments, Laminar
        from lmnr.opentelemetry_lib.tracing import init_tracing

        if not settings.collector_url:
            raise ValueError("the lmnr arm sends spans to a collector URL, never to Laminar's servers")
        base_url, port = _split_collector_url(settings.collector_url)
        connection = {
            "project_api_key": "loadgen-local",  # any string: sent as a bearer token, never checked here
            "base_url": base_url,
            "http_port": port,
            "force_http": True,  # OTLP/HTTP protobuf to {base_url}:{http_port}/v1/traces, not gRPC
        }
        # Laminar.initialize takes no resource attributes and builds its resource with
        # Resource(...), so loadgen's are given to init_tracing, the function it calls; a
        # second init_tracing (inside initialize) returns this wrapper. initialize raises
        # the attribute count limit before it; so is it here, for the same span limits.
        os.environ.setdefault("OTEL_ATTRIBUTE_COUNT_LIMIT", "10000")
        wrapper = init_tracing(
            app_name=f"loadgen-{self.name}-{provider_name}",
            resource_attributes={RUN_ID: settings.run_id, ARM: self.name},
            instruments={{"openai": Instruments.OPENAI, "anthropic": Instruments.ANTHROPIC}[provider_name]},
            disable_batch=True,  # its SimpleSpanProcessor is swapped for ours below
            timeout_seconds=max(1, settings.export_timeout_ms // 1000),
            set_global_tracer_provider=False,
            **connection,
        )
        Laminar.initialize(**connection)
        tracer_provider = wrapper.tracer_provider
        accounting = SpanAccounting()
        tracer_provider.add_span_processor(LifecycleCounter(accounting))
        processor = wrapper.span_processor
        exporter = processor.exporter
        processor.instance = accounted_batch(exporter, otlp_session(exporter.instance), settings, accounting,
                                             count_lifecycle=False)
        super().__init__(tracer_provider, accounting)
        self.laminar = Laminar

    def wrap(self, provider: Provider) -> Provider:
        # Laminar's opener keeps Laminar's own context, so the SDK's LLM span is the root's child.
        return RootSpanned(provider, self.laminar.start_as_current_span)

    def flush(self) -> None:
        self.laminar.flush()

    def shutdown(self) -> dict:
        # Laminar.shutdown detaches and shuts down its span processor (so ours) but leaves
        # the provider alive, by design (tracing/wrapper.py).
        self.laminar.flush()
        self.laminar.shutdown()
        return self.accounting.snapshot()


def lmnr_arm(settings: TracingSettings, provider_name: str, model: str, calibration) -> LaminarArm:
    """The `lmnr` arm's factory (loadgen.arms)."""
    return LaminarArm(settings, provider_name)
