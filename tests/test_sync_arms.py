"""The arms' sync path: `arm.wrap(provider).call_sync(...)` from pool threads (`client = "sync"`).

The unit tests use a fake sync provider. The e2e test is docs/sync-client.md §1's
experiment with loadgen's own code: for each arm, in a process of its own (each
instrumentor patches the SDK for the whole process), 3 threads call each provider through
the arm's wrapper, streaming and not, against the embedded mock; the collector must have
a root per call, each covered by an LLM span, and the arm's accounting must balance.
"""

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from loadgen.providers.base import CURRENT_CALL
from loadgen.results import CallRecord
from loadgen.settings import CalibrationSettings
from loadgen.span_names import OP_ID, ROOT_SPAN
from loadgen.tracers.calibration import CalibrationArm
from tests.conftest import ROOT

THREADS = 3
PROMPT = type("Prompt", (), {"max_tokens": 16})()


class FakeSyncProvider:
    name = "fake"

    def __init__(self, fail: bool = False) -> None:
        self.calls = []
        self.fail = fail

    def call_sync(self, prompt, rec: CallRecord) -> None:
        self.calls.append(rec.op_id)
        if self.fail:
            raise TimeoutError("slow")
        rec.input_tokens, rec.output_tokens = 3, 5
        rec.response_model, rec.finish_reason = "m", "stop"

    def close(self) -> None:
        self.calls.append("closed")

    def abort(self, reopen: bool = False) -> None:
        self.calls.append("aborted")


def in_threads(call, op_ids) -> list:
    """Each op_id's call in a thread of its own, all in flight together (a barrier holds the
    first until the last has started); the return values in op_id order."""
    barrier = threading.Barrier(len(op_ids))

    def one(op_id):
        barrier.wait(timeout=10)
        return call(op_id)

    with ThreadPoolExecutor(len(op_ids)) as pool:
        return list(pool.map(one, op_ids))


def in_memory_otel_arm():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from loadgen.tracers.otel_genai import OtelGenAIArm

    exported = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exported))
    return OtelGenAIArm(tracer_provider, None, "openai", "m"), exported


def test_the_otel_arms_spans_are_opened_in_each_calling_thread():
    arm, exported = in_memory_otel_arm()
    provider = FakeSyncProvider()
    traced = arm.wrap(provider)
    in_threads(lambda op_id: traced.call_sync(PROMPT, CallRecord(op_id, 0, None)), range(THREADS))
    traced.close()
    traced.abort()
    assert sorted(provider.calls[:THREADS]) == [0, 1, 2] and provider.calls[THREADS:] == ["closed", "aborted"]
    spans = exported.get_finished_spans()
    roots = {span.context.span_id: span for span in spans if span.name == ROOT_SPAN}
    llms = [span for span in spans if span.name == "chat m"]
    assert sorted(root.attributes[OP_ID] for root in roots.values()) == [0, 1, 2]
    # Each LLM span is the child of its own thread's root, never another thread's.
    assert sorted(roots[llm.parent.span_id].attributes[OP_ID] for llm in llms) == [0, 1, 2]
    assert len({root.context.trace_id for root in roots.values()}) == THREADS
    llm = llms[0]
    assert llm.attributes["gen_ai.usage.output_tokens"] == 5 and llm.attributes["gen_ai.request.max_tokens"] == 16
    assert llm.attributes["gen_ai.response.finish_reasons"] == ("stop",)


def test_a_failed_sync_call_marks_the_llm_span_as_the_async_one_does():
    from opentelemetry.trace import StatusCode

    arm, exported = in_memory_otel_arm()
    with pytest.raises(TimeoutError):
        arm.wrap(FakeSyncProvider(fail=True)).call_sync(PROMPT, CallRecord(0, 0, None))
    llm = next(span for span in exported.get_finished_spans() if span.name == "chat m")
    assert llm.attributes["error.type"] == "timeout" and llm.status.status_code is StatusCode.ERROR
    assert "gen_ai.usage.output_tokens" not in llm.attributes


@pytest.mark.parametrize("at", ["before", "after"])
def test_the_calibration_hold_runs_once_per_call_in_the_calling_thread(at, monkeypatch):
    arm = CalibrationArm(CalibrationSettings(hold_us=2000, kind="sleep", at=at))
    slept = []
    monkeypatch.setattr("loadgen.tracers.calibration.time.sleep", lambda s: slept.append((threading.get_ident(), s)))
    provider = FakeSyncProvider()
    traced = arm.wrap(provider)

    def call(op_id):
        traced.call_sync(PROMPT, CallRecord(op_id, 0, None))
        return threading.get_ident()

    threads = in_threads(call, [-1, 0, 1, 2])  # the priming call (-1) is held but not counted
    assert sorted(ident for ident, _ in slept) == sorted(threads)
    assert {seconds for _, seconds in slept} == {0.002}
    assert arm.known_answer()["calls"] == THREADS


def test_a_sync_call_that_raises_is_not_held_after():
    arm = CalibrationArm(CalibrationSettings(hold_us=2000, kind="sleep", at="after"))
    with pytest.raises(TimeoutError):
        arm.wrap(FakeSyncProvider(fail=True)).call_sync(PROMPT, CallRecord(0, 0, None))
    assert arm.known_answer()["calls"] == 0


def test_a_2ms_sleep_hold_is_measured_in_the_thread():
    # A wall clock, so generous bounds: the sleep's own wake-up slack is part of what is held.
    arm = CalibrationArm(CalibrationSettings(hold_us=2000, kind="sleep", at="before"))
    traced = arm.wrap(FakeSyncProvider())
    in_threads(lambda op_id: traced.call_sync(PROMPT, CallRecord(op_id, 0, None)), range(THREADS))
    answer = arm.known_answer()
    assert answer["calls"] == THREADS and 1.5 <= answer["held_mean_ms"] <= 5


# -- every arm, for real, in a process of its own ----------------------------------------------

ARM_PROVIDERS = {
    "otel": ("openai", "anthropic"),
    "openinference": ("openai", "anthropic"),
    "openllmetry": ("openai", "anthropic"),
    "honeyhive": ("openai", "anthropic"),
    "anthropic-native": ("anthropic",),
    "calibration": ("openai", "anthropic"),
}


def transports() -> list[str]:
    """httpx2's pool, and loadgen's sync transport once it is there."""
    import importlib.util

    return ["httpx", "lean"] if importlib.util.find_spec("loadgen.providers.sync_transport") else ["httpx"]


def drive(arm_name: str, mock_url: str, collector_url: str) -> dict:
    """In the arm's own process: per provider, one arm, and through it 3 threads' calls for
    each transport and stream mode; per provider its run_id, calls, accounting and known answer."""
    from loadgen.arms import make_arm
    from loadgen.prompts import make_prompt
    from loadgen.providers.factory import make_provider
    from loadgen.settings import ProviderSettings, TracingSettings

    out = {}
    for provider_name in ARM_PROVIDERS[arm_name]:
        run_id = f"sync-{arm_name}-{provider_name}"
        arm = make_arm(arm_name, TracingSettings(collector_url, run_id, schedule_delay_ms=200), provider_name, "m",
                       CalibrationSettings(hold_us=500, kind="sleep"))
        base_url = mock_url + "/v1" if provider_name == "openai" else mock_url
        records = []
        for transport in transports():
            for stream in (False, True):
                settings = ProviderSettings(base_url=base_url, api_key="k", model="m", stream=stream, timeout_s=10,
                                            max_retries=0, pool_size=THREADS, transport=transport, client="sync")
                traced = arm.wrap(make_provider(provider_name, settings, **arm.provider_options()))

                def call(op_id, traced=traced, stream=stream):
                    rec = CallRecord(op_id, 0, None)
                    CURRENT_CALL.set(rec)
                    traced.call_sync(make_prompt(op_id, 0), rec)
                    return {"op_id": op_id, "stream": stream, "output_tokens": rec.output_tokens,
                            "first_token": rec.t_first_token > 0, "finish_reason": rec.finish_reason}

                records += in_threads(call, range(len(records), len(records) + THREADS))
                traced.close()
        out[provider_name] = {"run_id": run_id, "records": records, "accounting": arm.shutdown(),
                              "known_answer": arm.known_answer()}
    return out


@pytest.fixture(scope="module")
def servers():
    """The embedded mock (answers in 20 ms, no gap between tokens) and collector."""
    from loadgen.harness import embedded_collector, embedded_mock
    from loadgen.profile import Profile

    profile = Profile(mock={"ttft_ms": 20, "itl_ms": 0})
    with embedded_mock(profile) as mock_url, embedded_collector(profile) as collector_url:
        yield mock_url, collector_url


@pytest.mark.e2e
@pytest.mark.parametrize("arm_name", list(ARM_PROVIDERS))
def test_every_arm_traces_sync_calls_from_threads(servers, arm_name):
    from loadgen.harness import collector_figures

    mock_url, collector_url = servers
    code = "import json, sys; from tests.test_sync_arms import drive; print(json.dumps(drive(*sys.argv[1:])))"
    done = subprocess.run([sys.executable, "-c", code, arm_name, mock_url, collector_url], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    calls = THREADS * 2 * len(transports())
    for provider_name, result in json.loads(done.stdout.splitlines()[-1]).items():
        records = result["records"]
        assert [rec["op_id"] for rec in records] == list(range(calls)), provider_name
        assert all(rec["output_tokens"] > 0 and rec["finish_reason"] for rec in records), records
        assert all(rec["first_token"] is rec["stream"] for rec in records), records
        if arm_name == "calibration":  # a known cost, no spans: its hold ran once per call
            assert result["accounting"] is None and result["known_answer"]["calls"] == calls
            continue
        accounting = result["accounting"]
        assert accounting["started"] == accounting["ended"] == accounting["exported"] == 2 * calls, accounting
        assert not any(accounting["dropped"].values()) and accounting["in_queue"] == 0, accounting
        figures = collector_figures(collector_url, result["run_id"])
        assert figures["roots"] == figures["covered_operations"] == figures["llm_spans"] == calls, figures
        assert figures["attribute_completeness_percent"] == 100, figures
