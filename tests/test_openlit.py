"""The openlit arm's own logic (loadgen.tracers.openlit); the arm itself runs in its own environment."""

import json

from loadgen.settings import TracingSettings
from loadgen.tracers.openlit import init_options, pricing_file, with_resource_attributes

SETTINGS = TracingSettings("http://127.0.0.1:4318", "run-1")


def init_1_26(environment="default", application_name="default", tracer=None, otlp_endpoint=None,
              otlp_headers=None, disable_batch=False, trace_content=True, disabled_instrumentors=None,
              meter=None, disable_metrics=False, pricing_json=None, collect_gpu_stats=False):
    """openlit 1.26.0's signature."""


def init_1_45(environment="default", application_name="default", service_name="default", otlp_endpoint=None,
              otlp_headers=None, disable_batch=False, capture_message_content=True, disabled_instrumentors=None,
              disable_metrics=False, disable_events=False, pricing_json=None, *, guards=None):
    """openlit 1.45.0's signature (abridged)."""


def test_options_a_release_does_not_take_are_left_out():
    # 1.26 takes a meter (a no-op one: no MeterProvider, no OTLP metrics) but has no events
    old = init_options(init_1_26, SETTINGS, "openai")
    assert "meter" in old and "disable_events" not in old
    # 1.45 has events (OTLP logs) to turn off, and no meter
    new = init_options(init_1_45, SETTINGS, "anthropic")
    assert new["disable_events"] is True and "meter" not in new
    for options, other in ((old, "anthropic"), (new, "openai")):
        assert options["otlp_endpoint"] == "http://127.0.0.1:4318"
        assert options["disable_batch"] is True and options["disable_metrics"] is True
        assert options["disabled_instrumentors"] == [other]  # only the worker's provider is instrumented


def test_the_price_list_is_a_local_file_and_empty():
    with open(pricing_file(), encoding="utf-8") as file:
        assert json.load(file) == {"chat": {}, "embeddings": {}, "images": {}, "audio": {}}


def test_resource_attributes_go_after_those_already_set():
    # nothing set before
    assert with_resource_attributes("", {"loadgen.run_id": "r"}) == "loadgen.run_id=r"
    # a user's own attributes kept, ours after them
    assert with_resource_attributes("team=a", {"loadgen.run_id": "r", "loadgen.arm": "openlit"}) == \
        "team=a,loadgen.run_id=r,loadgen.arm=openlit"
