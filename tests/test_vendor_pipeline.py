"""loadgen.tracers.vendor_pipeline: the exporter's session, and a vendor's processor swapped in place."""

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from loadgen.tracers.vendor_pipeline import otlp_session, replace_processor


def test_the_session_of_an_exporter_the_vendor_built():
    # built without a session, as Traceloop and OpenLIT build theirs: the one it made itself
    session = otlp_session(OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces"))
    assert isinstance(session, requests.Session)
    # given one: that one
    given = requests.Session()
    assert otlp_session(OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces", session=given)) is given


@pytest.mark.parametrize("exporter", [
    type("Old", (), {"_session": requests.Session()})(),  # opentelemetry-exporter-otlp-proto-http 1.3x
    type("New", (), {"_client": type("C", (), {"_transport": type("T", (), {"_session": requests.Session()})()})()})(),
])
def test_the_session_in_either_layout(exporter):
    assert isinstance(otlp_session(exporter), requests.Session)


def test_no_session_is_an_error_naming_the_exporter():
    with pytest.raises(RuntimeError, match="InMemorySpanExporter"):
        otlp_session(InMemorySpanExporter())


def test_the_new_processor_takes_the_old_ones_place_and_gets_the_spans():
    tracer_provider = TracerProvider()
    first, old, last = (SimpleSpanProcessor(InMemorySpanExporter()) for _ in range(3))
    for processor in (first, old, last):
        tracer_provider.add_span_processor(processor)
    exported = InMemorySpanExporter()
    new = SimpleSpanProcessor(exported)
    replace_processor(tracer_provider, old, new)
    assert tracer_provider._active_span_processor._span_processors == (first, new, last)
    tracer_provider.get_tracer("t").start_span("s").end()
    assert [span.name for span in exported.get_finished_spans()] == ["s"]
    assert old.span_exporter.get_finished_spans() == ()


def test_replacing_a_processor_the_provider_does_not_hold_is_an_error():
    with pytest.raises(RuntimeError, match="not among"):
        replace_processor(TracerProvider(), SimpleSpanProcessor(InMemorySpanExporter()), None)
