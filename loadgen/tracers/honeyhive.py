"""The `honeyhive` arm: HoneyHiveTracer with its own pipeline, plus instrumentors.

HoneyHive 1.7 (docs/instrumentors.md) builds its own TracerProvider, a
HoneyHiveSpanProcessor, and an exporter to `{server_url}/opentelemetry/v1/traces`
(JSON unless `HH_OTLP_PROTOCOL=http/protobuf`). The span accounting goes in without
touching HoneyHive's code paths: the tracer is built with `disable_batch=True` and its
processor is given our batch processor (accounting wrapper around a BatchSpanProcessor
with the profile's settings, around HoneyHive's own exporter wrapped by the accounting
exporter). A light processor on the provider counts every span started and ended, so a
span HoneyHive filters out before queueing shows up as unaccounted, not as nothing.

The collector tells runs apart by the resource attribute loadgen.run_id, which the
provider HoneyHive creates takes from OTEL_RESOURCE_ATTRIBUTES.
"""

from __future__ import annotations

import os

from loadgen.accounting import SpanAccounting
from loadgen.span_names import ARM, RUN_ID
from loadgen.settings import TracingSettings
from loadgen.tracers.instrumentors import instrumentor
from loadgen.tracers.pipeline import RootSpanArm, accounted_batch
from loadgen.tracers.vendor_pipeline import LifecycleCounter


class HoneyHiveArm(RootSpanArm):
    name = "honeyhive"

    def __init__(self, settings: TracingSettings, provider_name: str, instrumentation: str = "openinference") -> None:
        import requests
        from honeyhive import HoneyHiveTracer

        os.environ["OTEL_RESOURCE_ATTRIBUTES"] = ",".join(
            part for part in (os.environ.get("OTEL_RESOURCE_ATTRIBUTES", ""),
                              f"{RUN_ID}={settings.run_id}", f"{ARM}={self.name}") if part
        )
        session = requests.Session()
        server = {"server_url": settings.collector_url} if settings.collector_url else {}
        tracer = HoneyHiveTracer(
            api_key=os.environ.get("HH_API_KEY") or "loadgen-local",
            project=os.environ.get("HH_PROJECT") or "loadgen",
            source="loadgen",
            session_name=f"loadgen-{settings.run_id}",
            disable_batch=True,
            requests_session=session,
            **server,
        )
        accounting = SpanAccounting()
        tracer.provider.add_span_processor(LifecycleCounter(accounting))
        tracer.span_processor._batch_processor = accounted_batch(
            tracer.otlp_exporter, session, settings, accounting, count_lifecycle=False
        )
        super().__init__(tracer.provider, accounting)
        self.honeyhive = tracer
        instrumentor(instrumentation, provider_name).instrument(tracer_provider=tracer.provider)

    def flush(self) -> None:
        self.honeyhive.force_flush()

    def shutdown(self) -> dict:
        self.honeyhive.force_flush()
        self.honeyhive.span_processor._batch_processor.shutdown()
        return self.accounting.snapshot()


def honeyhive_arm(settings: TracingSettings, provider_name: str, model: str, calibration) -> HoneyHiveArm:
    """The `honeyhive` arm's factory (loadgen.arms)."""
    return HoneyHiveArm(settings, provider_name)
