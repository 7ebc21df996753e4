"""The mlflow arm (loadgen.tracers.mlflow): the environment MLflow reads to export to the collector, and its
accounting; its run end to end is in tests/test_tracing_e2e.py."""

import pytest

from loadgen.settings import TracingSettings
from loadgen.tracers.mlflow import mlflow_environment
from tests.arm_checks import one_root_through


def test_mlflow_exports_over_otlp_http_to_the_collector_with_the_profiles_batch_settings(monkeypatch):
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    settings = TracingSettings(collector_url="http://127.0.0.1:4318/", run_id="r1", max_queue_size=64,
                               schedule_delay_ms=200, max_export_batch_size=32, export_timeout_ms=5000)
    env = mlflow_environment(settings, "openai")
    # the traces endpoint only: OTEL_EXPORTER_OTLP_ENDPOINT would turn MLflow's OTLP metrics on too
    assert env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] == "http://127.0.0.1:4318/v1/traces"
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env
    assert env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] == "http/protobuf"  # MLflow's default is gRPC
    assert env["OTEL_RESOURCE_ATTRIBUTES"] == "loadgen.run_id=r1,loadgen.arm=mlflow"
    assert env["OTEL_SERVICE_NAME"] == "loadgen-mlflow-openai"
    assert (env["OTEL_BSP_MAX_QUEUE_SIZE"], env["OTEL_BSP_SCHEDULE_DELAY"], env["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"],
            env["OTEL_BSP_EXPORT_TIMEOUT"]) == ("64", "200", "32", "5000")
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true"


def test_resource_attributes_already_set_are_kept(monkeypatch):
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=ci")
    env = mlflow_environment(TracingSettings(collector_url="http://c", run_id="r2"), "anthropic")
    assert env["OTEL_RESOURCE_ATTRIBUTES"] == "deployment.environment=ci,loadgen.run_id=r2,loadgen.arm=mlflow"



def test_the_arm_exports_to_the_collector_and_counts_every_span(monkeypatch):
    pytest.importorskip("mlflow")
    from loadgen.tracers.mlflow import MlflowArm

    for key in mlflow_environment(TracingSettings(collector_url="http://c", run_id="r"), "openai"):
        monkeypatch.setenv(key, "")  # the arm sets them in the process; restored afterwards
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES")
    snapshot, figures = one_root_through(lambda settings: MlflowArm(settings, "openai"))
    assert snapshot["started"] == snapshot["ended"] == snapshot["exported"] == 1
    assert figures["spans_received"] == figures["roots"] == 1
