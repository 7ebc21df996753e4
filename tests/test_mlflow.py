"""The mlflow arm's own logic: the environment MLflow reads to export to the collector."""

import pytest

from loadgen.settings import TracingSettings
from loadgen.tracers.mlflow import mlflow_environment


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


@pytest.mark.e2e
def test_the_mlflow_arm_against_the_baseline_on_both_providers(tmp_path):
    from tests.arm_e2e import run_against_the_baseline, skip_without

    skip_without("mlflow", "mlflow")
    runs = run_against_the_baseline(tmp_path, "mlflow")
    assert all(runs[(p, "mlflow")]["attribute_completeness_percent"] == 100.0 for p in ("openai", "anthropic"))
