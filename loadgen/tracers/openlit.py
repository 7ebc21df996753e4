"""The `openlit` arm: OpenLIT's own instrumentors and OTLP exporter (`openlit.init`).

`openlit.init(otlp_endpoint=<collector>)` is what a team writes to send OpenLIT's traces
to its own OTLP backend: it writes OTEL_EXPORTER_OTLP_ENDPOINT, builds a stock
OTLPSpanExporter from it (OTLP/HTTP protobuf to `{endpoint}/v1/traces`), sets the global
TracerProvider and wraps the SDKs' `create` methods with its own instrumentors (only the
worker's provider here: the other is in `disabled_instrumentors`).

Accounting: openlit adds its processor to the provider itself and takes no processor from
the caller, so it is built with `disable_batch=True` (a SimpleSpanProcessor holding the
exporter) and that processor is then swapped, in place, for loadgen's accounted batch with
the profile's settings around the same exporter (`vendor_pipeline.replace_processor`).

The resource (service.name, deployment.environment, telemetry.sdk.name=openlit) is
OpenLIT's; loadgen.run_id and loadgen.arm reach it through OTEL_RESOURCE_ATTRIBUTES.

Nothing else leaves the worker: `pricing_json` names a local file (otherwise every init
GETs the price list from raw.githubusercontent.com); `disable_metrics=True` stops the
metric instruments, and releases that take a `meter` (1.26 does, 1.45 does not) get a no-op
one, so no MeterProvider with an OTLP exporter (to `{endpoint}/v1/metrics`) is built; releases that
export events (OTLP logs) are given `disable_events=True`. Options an installed release
does not know are left out (`openlit.init`'s signature changed across releases).

One thing it cannot be told: 1.26 counts a streamed OpenAI call's tokens with tiktoken,
which downloads its encodings on first use; offline those spans end ERROR without
attributes (docs/instrumentors.md, openlit pitfalls).
"""

from __future__ import annotations

import inspect
import json
import os
import tempfile

from loadgen.accounting import SpanAccounting
from loadgen.settings import TracingSettings
from loadgen.span_names import ARM, RUN_ID
from loadgen.tracers.pipeline import RootSpanArm, accounted_batch
from loadgen.tracers.vendor_pipeline import otlp_session, replace_processor

PROVIDERS = ("openai", "anthropic")  # openlit's instrumentor names for the SDKs loadgen calls


def pricing_file() -> str:
    """A local, empty price list: costs come out 0 and nothing is fetched."""
    path = os.path.join(tempfile.gettempdir(), "loadgen-openlit-pricing.json")
    if not os.path.exists(path):
        with open(path, "w", encoding="utf-8") as file:
            json.dump({"chat": {}, "embeddings": {}, "images": {}, "audio": {}}, file)
    return path


def with_resource_attributes(existing: str, attributes: dict[str, str]) -> str:
    """OTEL_RESOURCE_ATTRIBUTES with `attributes` added after what it already holds."""
    return ",".join(part for part in (existing, *(f"{key}={value}" for key, value in attributes.items())) if part)


def init_options(init, settings: TracingSettings, provider_name: str) -> dict:
    """The options for `openlit.init`, less those this release of it does not take."""
    from opentelemetry.metrics import NoOpMeter

    options = {
        "environment": "loadgen",
        "application_name": f"loadgen-openlit-{provider_name}",
        "otlp_endpoint": settings.collector_url,
        "disable_batch": True,  # the SimpleSpanProcessor is replaced by the accounted batch
        "disabled_instrumentors": [name for name in PROVIDERS if name != provider_name],
        "disable_metrics": True,
        "meter": NoOpMeter("loadgen"),
        "disable_events": True,
        "pricing_json": pricing_file(),
    }
    accepted = inspect.signature(init).parameters
    return {key: value for key, value in options.items() if key in accepted}


class OpenLITArm(RootSpanArm):
    name = "openlit"

    def __init__(self, settings: TracingSettings, provider_name: str) -> None:
        os.environ["OTEL_RESOURCE_ATTRIBUTES"] = with_resource_attributes(
            os.environ.get("OTEL_RESOURCE_ATTRIBUTES", ""), {RUN_ID: settings.run_id, ARM: self.name}
        )
        import openlit
        from opentelemetry import trace
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        openlit.init(**init_options(openlit.init, settings, provider_name))
        tracer_provider = trace.get_tracer_provider()  # openlit set it globally
        multi = getattr(tracer_provider, "_active_span_processor", None)
        vendor = [p for p in getattr(multi, "_span_processors", ()) if isinstance(p, SimpleSpanProcessor)]
        if len(vendor) != 1:
            # openlit.init logs its own failures and returns; say what is missing instead.
            raise RuntimeError(f"openlit.init installed {len(vendor)} span processors, expected one (see its log)")
        exporter = vendor[0].span_exporter
        accounting = SpanAccounting()
        replace_processor(tracer_provider, vendor[0], accounted_batch(exporter, otlp_session(exporter), settings, accounting))
        super().__init__(tracer_provider, accounting)


def openlit_arm(settings: TracingSettings, provider_name: str, model: str, calibration) -> OpenLITArm:
    """The `openlit` arm's factory (loadgen.arms)."""
    return OpenLITArm(settings, provider_name)
