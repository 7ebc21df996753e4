"""The langfuse arm (loadgen.tracers.langfuse): its export filter and its accounting; its run end to end is in
tests/test_tracing_e2e.py."""

import pytest

from loadgen.settings import TracingSettings
from tests.arm_checks import one_root_through


def finished_span(scope: str, attributes: dict | None = None):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer(scope).start_as_current_span("s", attributes=attributes or {}):
        pass
    return memory.get_finished_spans()[0]


@pytest.mark.parametrize("scope, attributes, exported", [
    ("loadgen", {}, True),  # the operation's root span: Langfuse's default filter would drop it
    ("opentelemetry.instrumentation.anthropic", {}, True),  # a known LLM instrumentor (Langfuse's list)
    ("langfuse-sdk", {}, True),  # Langfuse's own observations
    ("some.library", {"gen_ai.request.model": "m"}, True),  # any GenAI span
    ("some.library", {}, False),  # anything else stays out, as by default
])
def test_the_export_filter_is_langfuses_default_plus_the_root_span(scope, attributes, exported):
    pytest.importorskip("langfuse")
    from loadgen.tracers.langfuse import export_filter

    assert export_filter()(finished_span(scope, attributes)) is exported


def test_the_arm_exports_to_langfuses_path_on_the_collector_and_counts_every_span(monkeypatch):
    pytest.importorskip("langfuse")
    pytest.importorskip("opentelemetry.instrumentation.anthropic")
    from loadgen.tracers.langfuse import LangfuseArm

    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "")  # the arm sets it; restored afterwards
    snapshot, figures = one_root_through(lambda settings: LangfuseArm(settings, "anthropic"))
    assert snapshot["started"] == snapshot["ended"] == snapshot["exported"] == 1
    assert figures["spans_received"] == figures["roots"] == 1

