"""The arm registry (loadgen.arms): one table of arms, the provider rule, and arms that wrap a provider."""

import asyncio
import subprocess
import sys

import re

import pytest

from loadgen.arms import ARM_NAMES, ARMS, check_entry, is_baseline, make_arm, parse_entry, runs_on, traces
from loadgen.collector.conventions import REQUIRED_ATTRIBUTES, compile_required
from loadgen.profile import Profile
from loadgen.providers.base import CallRecord
from loadgen.span_names import OP_ID, ROOT_SPAN
from loadgen.tracers import NoTracing
from loadgen.settings import TracingSettings


class FakeProvider:
    name = "fake"

    def __init__(self) -> None:
        self.calls = []

    async def call(self, prompt, rec: CallRecord) -> None:
        self.calls.append(rec.op_id)
        rec.input_tokens, rec.output_tokens = 3, 5

    async def aclose(self) -> None:
        self.calls.append("closed")


@pytest.mark.parametrize("entry, parsed", [
    ("otel", ("otel", None)),
    ("honeyhive@1.6.0", ("honeyhive", "1.6.0")),  # an arm at a version, in an environment of its own
    ("baseline@honeyhive@1.6.0", ("baseline", "honeyhive@1.6.0")),  # a baseline in that entry's environment
])
def test_entries_parse_into_name_and_what_follows_the_at(entry, parsed):
    assert parse_entry(entry) == parsed


@pytest.mark.parametrize("entry, problem", [
    ("otel@1.0", "the otel arm has no package to pin a version of"),
    ("honeyhive@", "nothing after the @"),
    ("honeyhiv@1.7.0", "unknown arm 'honeyhiv'"),
])
def test_bad_entries_say_why(entry, problem):
    with pytest.raises(ValueError, match=re.escape(problem)):
        check_entry(entry)


@pytest.mark.parametrize("label, baseline", [
    ("baseline", True), ("baseline-2", True), ("baseline@openlit", True), ("otel", False), ("honeyhive@1.6.0", False),
])
def test_baseline_labels(label, baseline):
    assert is_baseline(label) is baseline


def test_the_names_are_the_registrys_in_its_order():
    assert ARM_NAMES == ("baseline", "otel", "openinference", "openllmetry", "honeyhive", "traceloop", "openlit",
                         "anthropic-native", "langfuse", "logfire", "lmnr", "langsmith", "mlflow",
                         "calibration")
    # a wrong name is told the registry's names, in the same order
    with pytest.raises(ValueError, match=re.escape("unknown arm 'zipkin' (arms: " + ", ".join(ARM_NAMES) + ")")):
        check_entry("zipkin")
    assert all(info.name == name for name, info in ARMS.items())


@pytest.mark.parametrize("arm, provider, expected", [
    ("baseline", "openai", True),  # no tracer: runs anywhere
    ("otel", "anthropic", True),  # hand-written spans: any provider
    ("honeyhive", "openai", True),
    ("anthropic-native", "anthropic", True),  # the anthropic SDK's own tracing …
    ("anthropic-native", "openai", False),  # … has nothing to trace in an OpenAI call
    ("langfuse", "anthropic", True),  # Langfuse's guide: OpenLLMetry's instrumentor on its provider
    ("logfire", "anthropic", True),  # instrument_anthropic()
    ("calibration", "openai", True),  # a known cost, not a tracer: any provider
])
def test_runs_on(arm, provider, expected):
    assert runs_on(arm, provider) is expected


def test_only_the_baseline_and_the_calibration_arm_export_nothing():
    assert [name for name in ARM_NAMES if not traces(name)] == ["baseline", "calibration"]
    assert all(ARMS[name].convention is None for name in ARM_NAMES if not traces(name))


def test_every_tracing_arm_names_a_convention_the_collector_checks():
    checked = compile_required(REQUIRED_ATTRIBUTES)
    assert {ARMS[name].convention for name in ARM_NAMES if traces(name)} <= set(checked)


def test_every_factory_resolves_to_a_function():
    import importlib

    for info in ARMS.values():
        module, function = info.factory.split(":")
        assert callable(getattr(importlib.import_module(module), function)), info.name


def test_reading_the_table_imports_no_tracer_and_no_sdk():
    # The profile and the planner read the registry in the main process; the arms' modules
    # are for the workers.
    code = ("import sys, loadgen.arms; print(sorted(m for m in sys.modules if m.startswith("
            "('opentelemetry', 'anthropic', 'openai', 'honeyhive', 'openinference', 'loadgen.tracers', "
            "'loadgen.profile'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_baselines_arm_is_a_no_op_twin_that_hands_back_the_provider():
    arm = make_arm("baseline", None, "openai", "m")
    provider = FakeProvider()
    assert isinstance(arm, NoTracing) and arm.wrap(provider) is provider
    assert arm.provider_options() == {} and arm.flush() is None
    assert arm.shutdown() is None and arm.known_answer() is None and arm.accounting is None


@pytest.mark.parametrize("name, provider, settings, message", [
    ("otel", "openai", None, "needs tracing settings"),  # a tracing arm without a collector
    ("anthropic-native", "openai", TracingSettings("http://x", "r"), "traces Anthropic calls only"),
    ("otl", "openai", None, "unknown arm 'otl'"),
])
def test_make_arm_refuses(name, provider, settings, message):
    with pytest.raises(ValueError, match=message):
        make_arm(name, settings, provider, "m")


def test_a_profile_whose_arms_run_on_none_of_its_providers_has_nothing_to_run():
    with pytest.raises(ValueError, match="the anthropic-native arm traces Anthropic calls only; "
                                         "with provider 'openai' there is nothing to run"):
        Profile(provider="openai", tracing={"arms": ["anthropic-native"]})
    assert Profile(provider="both", tracing={"arms": ["anthropic-native"]}).tracing.arms == ["anthropic-native"]


def test_the_otel_arm_wraps_the_call_in_the_root_span_and_the_llm_span():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from loadgen.tracers.otel_genai import OtelGenAIArm

    exported = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exported))
    provider = FakeProvider()
    traced = OtelGenAIArm(tracer_provider, None, "openai", "m").wrap(provider)
    prompt = type("Prompt", (), {"max_tokens": 16})()

    async def calls() -> None:
        await traced.call(prompt, CallRecord(7, 0, None))
        await traced.aclose()

    asyncio.run(calls())
    assert provider.calls == [7, "closed"] and traced.name == "fake"  # a provider like any other
    llm, root = exported.get_finished_spans()
    assert root.name == ROOT_SPAN and root.attributes[OP_ID] == 7
    assert llm.name == "chat m" and llm.parent.span_id == root.context.span_id
    assert llm.attributes["gen_ai.usage.output_tokens"] == 5


def test_an_arm_that_cannot_trace_a_providers_streamed_calls_is_left_out_of_that_mode_only():
    from loadgen.plan import plan_run
    from loadgen.profile_files import load_profile

    assert runs_on("langsmith", "anthropic") and not runs_on("langsmith", "anthropic", stream=True)
    assert runs_on("langsmith", "openai", stream=True)
    profile = load_profile(None, {"tracing": {"arms": ["baseline", "langsmith"]},
                                  "modes": [{"kind": "constant", "rate": 10, "stream": True}]})
    rows = {mode.mode: [(arm.provider, arm.label) for arm in mode.arms] for mode in plan_run(profile, cores=2)}
    assert ("anthropic", "langsmith") in rows["rate 10/s constant"]
    assert ("anthropic", "langsmith") not in rows["rate 10/s constant stream"]
    assert ("openai", "langsmith") in rows["rate 10/s constant stream"]
