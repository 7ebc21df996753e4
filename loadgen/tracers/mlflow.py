"""The `mlflow` arm: MLflow tracing (`mlflow-tracing`) with autolog, exported over OTLP.

MLflow 3 (docs/instrumentors.md) sends traces to an OpenTelemetry collector instead of a
tracking server when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set: its provider then has one
OtelSpanProcessor (a BatchSpanProcessor that also keeps MLflow's in-memory trace
bookkeeping) around OTel's OTLP exporter, gRPC unless OTEL_EXPORTER_OTLP_TRACES_PROTOCOL
is http/protobuf. Its resource takes OTEL_RESOURCE_ATTRIBUTES, and the batch processor
the OTEL_BSP_* settings, so the profile's batch settings and loadgen's resource
attributes are given the way MLflow documents: in the environment, before it starts.
Only the traces endpoint is set: OTEL_EXPORTER_OTLP_ENDPOINT would also turn on MLflow's
OTLP metrics (to /v1/metrics).

The span accounting goes around MLflow's processor (it is the batch processor, so the
queue is watched as usual) and its exporter; both are reached through the provider's
and the processor's private attributes, as MLflow's own `_get_span_processor` does.
`mlflow.openai.autolog()` / `mlflow.anthropic.autolog()` patch the SDK classes, so the
arm is built before the provider adapter takes `create`.
"""

from __future__ import annotations

import os

from loadgen.accounting import AccountingExporter, AccountingProcessor, SpanAccounting, rejected_spans_hook, watch_queue
from loadgen.providers.base import Provider
from loadgen.settings import TracingSettings
from loadgen.span_names import ARM, RUN_ID
from loadgen.tracers.pipeline import RootSpanArm, RootSpanned
from loadgen.tracers.vendor_pipeline import otlp_session, replace_processor


def mlflow_environment(settings: TracingSettings, provider_name: str) -> dict[str, str]:
    """The variables MLflow reads to export to the collector with the profile's batch settings."""
    resource = [f"{RUN_ID}={settings.run_id}", f"{ARM}=mlflow"]
    if os.environ.get("OTEL_RESOURCE_ATTRIBUTES"):
        resource.insert(0, os.environ["OTEL_RESOURCE_ATTRIBUTES"])
    return {
        "MLFLOW_DISABLE_TELEMETRY": "true",  # MLflow's usage telemetry (mlflow/telemetry) posts to its servers
        # Without a tracking URI, mlflow-tracing 3.17 resolves the default one through its
        # file store, which imports sqlparse, not one of its requirements: the first trace
        # fails. With OTLP export nothing is sent to it; the collector would count it if it were.
        "MLFLOW_TRACKING_URI": settings.collector_url.rstrip("/"),
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": settings.collector_url.rstrip("/") + "/v1/traces",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
        "OTEL_SERVICE_NAME": f"loadgen-mlflow-{provider_name}",
        "OTEL_RESOURCE_ATTRIBUTES": ",".join(resource),
        "OTEL_BSP_MAX_QUEUE_SIZE": str(settings.max_queue_size),
        "OTEL_BSP_SCHEDULE_DELAY": str(settings.schedule_delay_ms),
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": str(settings.max_export_batch_size),
        "OTEL_BSP_EXPORT_TIMEOUT": str(settings.export_timeout_ms),
    }


class MlflowArm(RootSpanArm):
    name = "mlflow"

    def __init__(self, settings: TracingSettings, provider_name: str) -> None:
        if not settings.collector_url:
            raise ValueError("the mlflow arm sends spans to a collector URL, never to a tracking server")
        os.environ.update(mlflow_environment(settings, provider_name))
        import mlflow
        from mlflow.tracing.provider import provider as mlflow_provider

        {"openai": lambda: mlflow.openai.autolog(), "anthropic": lambda: mlflow.anthropic.autolog()}[provider_name]()
        mlflow_provider.get_or_init_tracer(__name__)  # builds MLflow's provider from the environment
        tracer_provider = mlflow_provider.get()
        accounting = SpanAccounting()
        (processor,) = tracer_provider._active_span_processor._span_processors  # MLflow's OtelSpanProcessor
        batch = processor._batch_processor
        exporter = AccountingExporter(batch._exporter, accounting)
        otlp_session(batch._exporter).hooks["response"].append(rejected_spans_hook(exporter))
        batch._exporter = exporter
        watch_queue(processor, accounting)
        replace_processor(tracer_provider, processor, AccountingProcessor(processor, accounting))
        super().__init__(tracer_provider, accounting)
        self.mlflow = mlflow

    def wrap(self, provider: Provider) -> Provider:
        # MLflow keeps its own context (`mlflow_runtime_context`): an autolog span is a child
        # of the span `mlflow.start_span` opened, not of one opened on a plain OTel tracer.
        # MLflow writes every attribute as JSON text, so `loadgen.op_id` arrives as "12" (or "-1").
        return RootSpanned(provider, self.mlflow.start_span)


def mlflow_arm(settings: TracingSettings, provider_name: str, model: str, calibration) -> MlflowArm:
    """The `mlflow` arm's factory (loadgen.arms)."""
    return MlflowArm(settings, provider_name)
