"""The embedded OTLP collector, fed by the OpenTelemetry SDK's own encoder and exporter.

Most tests call the app in-process through httpx2.ASGITransport with protobuf bodies the
SDK encodes from real spans, or OTLP/JSON bodies written by hand (hex ids, as the OTLP
specification and HoneyHive's JSON exporter write them); those that time an answer run it
on a virtual clock (clock.VirtualClock), where the figures are exact. The e2e tests serve the
collector with `serve()` in a subprocess and export to it with the SDK's
OTLPSpanExporter, to see each fault as an exporter sees it.
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import math
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx2
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import ValidationError

import loadgen.collector as collector
from loadgen.clock import VirtualClock
from loadgen.collector import REQUIRED_ATTRIBUTES, CollectorConfig, CollectorFault, create_app

REPO = Path(__file__).resolve().parents[1]
PROTOBUF = "application/x-protobuf"

GENAI = {  # a complete OTel GenAI LLM span
    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-mock",
    "gen_ai.response.model": "gpt-mock", "gen_ai.usage.input_tokens": 4, "gen_ai.usage.output_tokens": 7,
}
OPENINFERENCE = {  # a complete OpenInference LLM span
    "openinference.span.kind": "LLM", "llm.model_name": "gpt-mock", "llm.token_count.prompt": 4,
    "llm.token_count.completion": 7, "input.value": "hi", "output.value": "hello",
}
LANGFUSE = {  # a complete Langfuse generation, as langfuse.openai writes it
    "langfuse.observation.type": "generation", "langfuse.observation.model.name": "gpt-mock",
    "langfuse.observation.usage_details": '{"input": 4, "output": 7}', "langfuse.observation.input": "hi",
    "langfuse.observation.output": "hello",
}


def run(coro):
    return asyncio.run(coro)


class Spans:
    """Real SDK spans of one resource (run id), kept in memory until encoded into a request."""

    def __init__(self, run_id: str | None = "r1", service: str = "svc", **resource: str) -> None:
        attributes = {"service.name": service, **resource}
        if run_id is not None:
            attributes["loadgen.run_id"] = run_id
        self.memory = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create(attributes))
        provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.tracer = provider.get_tracer("loadgen.test")

    def operation(self, op_id: int, llm: dict | None = GENAI, name: str = "chat gpt-mock") -> None:
        """A root span `loadgen.operation` and, unless llm is None, its LLM child."""
        with self.tracer.start_as_current_span("loadgen.operation", attributes={"loadgen.op_id": op_id}):
            if llm is not None:
                self.span(name, llm)

    def span(self, name: str, attributes: dict) -> None:
        with self.tracer.start_as_current_span(name, attributes=attributes):
            pass

    def take(self) -> list:
        spans = list(self.memory.get_finished_spans())
        self.memory.clear()
        return spans

    def body(self) -> bytes:
        return encode_spans(self.take()).SerializeToString()


def json_attributes(attributes: dict) -> list[dict]:
    def value(v):
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}  # int64 as a string, as OTLP/JSON has it
        return {"stringValue": v}
    return [{"key": k, "value": value(v)} for k, v in attributes.items()]


def json_span(trace: int, span: int, name: str, attributes: dict, parent: int | None = None) -> dict:
    return {
        "traceId": f"{trace:032x}", "spanId": f"{span:016x}", "parentSpanId": f"{parent:016x}" if parent else None,
        "name": name, "kind": "SPAN_KIND_INTERNAL", "startTimeUnixNano": str(time.time_ns() - 1000),
        "endTimeUnixNano": str(time.time_ns()), "attributes": json_attributes(attributes),
        "status": {"code": "STATUS_CODE_OK"},
    }


def json_body(spans: list[dict], run_id: str = "r1", **resource: str) -> bytes:
    """An OTLP/JSON request shaped like HoneyHive 1.7's JSON exporter writes it."""
    attributes = json_attributes({"service.name": "svc", "loadgen.run_id": run_id, **resource})
    return json.dumps({"resourceSpans": [{"resource": {"attributes": attributes},
                                          "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]}).encode()


class Collector:
    """An in-process collector with an HTTP client pointed at it; on `clock`'s time if given
    (then run it with `clock.run`)."""

    def __init__(self, config: CollectorConfig | None = None, client_addr: str = "127.0.0.1",
                 clock: VirtualClock | None = None) -> None:
        config = config or CollectorConfig()
        self.app = create_app(config) if clock is None else create_app(config, clock.now_ns)
        transport = httpx2.ASGITransport(app=self.app, client=(client_addr, 40000))
        self.http = httpx2.AsyncClient(transport=transport, base_url="http://collector")

    async def export(self, body: bytes, content_type: str = PROTOBUF, path: str = "/v1/traces",
                     compress: bool = False) -> httpx2.Response:
        headers = {"content-type": content_type}
        if compress:
            body, headers["content-encoding"] = gzip.compress(body), "gzip"
        return await self.http.post(path, content=body, headers=headers)

    async def stats(self, run_id: str | None = None) -> dict:
        params = {"run_id": run_id} if run_id is not None else None
        return (await self.http.get("/_collector/stats", params=params)).json()


def faulty(*faults: CollectorFault, clock: VirtualClock | None = None) -> Collector:
    return Collector(CollectorConfig(faults=list(faults)), clock=clock)


# --- config and API ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"faults": [{"kind": "http_429", "probability": 1.5}]},  # probability in [0, 1]
        {"faults": [{"kind": "http_500"}]},  # not a collector fault
        {"faults": [{"kind": "http_400", "retry_after_s": 1}]},  # Retry-After only on 429/503
        {"faults": [{"kind": "http_429", "delay_ms": 5}]},  # delay_ms only on delay
        {"faults": [{"kind": "reset", "reject_fraction": 0.5}]},  # reject_fraction only on partial_success
        {"faults": [{"kind": "partial_success", "reject_fraction": 2}]},
        {"required_attributes": {"otel": ["x"]}},  # unknown convention
        {"fault": []},  # unknown key
    ],
)
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValidationError):
        CollectorConfig.model_validate(bad)


def test_public_api_and_required_attribute_override():
    assert sorted(collector.__all__) == ["CollectorConfig", "CollectorFault", "REQUIRED_ATTRIBUTES", "create_app",
                                         "serve"]
    assert all(getattr(collector, name) for name in collector.__all__)
    config = CollectorConfig(required_attributes={"otel_genai": ["gen_ai.request.model"]})
    assert config.required_attributes["otel_genai"] == ["gen_ai.request.model"]
    assert config.required_attributes["openinference"] == REQUIRED_ATTRIBUTES["openinference"]  # others kept


# --- encodings and paths ------------------------------------------------------------------------


def test_protobuf_on_both_paths_plain_and_gzip_answers_protobuf():
    async def go():
        c, spans = Collector(), Spans()
        answers = []
        for path in ("/v1/traces", "/opentelemetry/v1/traces"):
            for compress in (False, True):
                spans.operation(len(answers))
                answers.append(await c.export(spans.body(), path=path, compress=compress))
        return answers, await c.stats()

    answers, stats = run(go())
    for answer in answers:
        assert answer.status_code == 200 and answer.headers["content-type"] == PROTOBUF
        assert not ExportTraceServiceResponse.FromString(answer.content).HasField("partial_success")
    assert stats["by_path"] == {"/v1/traces": 2, "/opentelemetry/v1/traces": 2, "/api/public/otel/v1/traces": 0}
    assert stats["compressed_requests"] == 2 and stats["by_encoding"] == {"protobuf": 4, "json": 0}
    run_figures = stats["runs"]["r1"]
    assert run_figures["spans_received"] == 8 and run_figures["traces"] == 4 and run_figures["requests"] == 4
    assert run_figures["bytes"] == stats["bytes"] > 0  # wire bytes: the gzip bodies as sent


def test_json_with_hex_ids_plain_and_gzip_answers_json():
    body = json_body([json_span(1, 0xA, "loadgen.operation", {"loadgen.op_id": 3}),
                      json_span(1, 0xB, "chat gpt-mock", GENAI, parent=0xA)])

    async def go():
        c = Collector()
        first = await c.export(body, "application/json", path="/opentelemetry/v1/traces")
        again = await c.export(body, "application/json; charset=utf-8", compress=True)  # same ids: duplicates
        return first, again, await c.stats("r1")

    first, again, figures = run(go())
    assert first.status_code == again.status_code == 200 and first.json() == {}
    assert first.headers["content-type"] == "application/json"
    assert figures["spans_received"] == 2 and figures["duplicates"] == 2 and figures["traces"] == 1
    assert figures["covered_operations"] == 1  # hex ids decoded: parent matches root across spans


def test_json_accepts_base64_ids_and_rejects_malformed_bodies():
    # protobuf's own JSON mapping (base64 ids), which some exporters send instead of hex
    b64 = {"traceId": "AAAAAAAAAAAAAAAAAAAAAQ==", "spanId": "AAAAAAAAAAo=", "name": "x", "endTimeUnixNano": 1}

    async def go():
        c = Collector()
        ok = await c.export(json_body([b64]), "application/json")
        bad = [await c.export(b"{not json", "application/json"),
               await c.export(json_body([{"traceId": "zz", "spanId": "01"}]), "application/json"),
               await c.export(b"\x0a\xff\xff", PROTOBUF),
               await c.export(b"x", "text/plain")]
        return ok, bad, await c.stats()

    ok, bad, stats = run(go())
    assert ok.status_code == 200 and stats["runs"]["r1"]["spans_received"] == 1
    assert [r.status_code for r in bad] == [400, 400, 400, 415]
    assert stats["bad_requests"] == 4


def test_figures_are_grouped_by_run_id():
    async def go():
        c = Collector()
        a, b, none = Spans("a", service="sa"), Spans("b", service="sb"), Spans(None)
        a.operation(0)
        a.operation(1)
        b.operation(0)
        none.operation(0)
        spans = a.take() + b.take() + none.take()  # one request carrying three resources
        await c.export(encode_spans(spans).SerializeToString())
        return await c.stats(), await c.stats("b"), await c.stats(""), await c.stats("never")

    stats, b, blank, never = run(go())
    runs = stats["runs"]
    assert sorted(runs) == ["", "a", "b"]
    assert (runs["a"]["spans_received"], runs["b"]["spans_received"], runs[""]["spans_received"]) == (4, 2, 2)
    assert runs["a"]["by_service"] == {"sa": {"spans": 4, "duplicates": 0, "llm_spans": 2}}
    assert sum(r["bytes"] for r in runs.values()) == stats["bytes"]  # split by span count
    assert all(r["requests"] == 1 for r in runs.values())
    assert b == runs["b"] and blank == runs[""]  # ?run_id= is the run of spans without one
    assert never["spans_received"] == 0 and never["run_id"] == "never"


# --- trace coverage ------------------------------------------------------------------------------


def test_coverage_needs_root_and_llm_child_in_one_trace_in_any_order():
    async def go():
        c, s = Collector(), Spans()
        s.operation(0)  # root + LLM child: covered
        s.operation(1, llm=None)  # root without an LLM child: not covered
        with s.tracer.start_as_current_span("loadgen.operation", attributes={"loadgen.op_id": 2}):
            s.span("retrieve", {"db.system": "x"})  # a child, but not an LLM span: not covered
        await c.export(s.body())
        s.span("chat gpt-mock", GENAI)  # an LLM span in a trace of its own: no root
        s.operation(3)
        orphan, child, root = s.take()  # in the order they ended
        await c.export(encode_spans([orphan, child]).SerializeToString())  # the child arrives first…
        await c.export(encode_spans([root]).SerializeToString())  # …its root later: covered
        # an LLM span naming root 0xA as its parent, but in another trace: not covered
        await c.export(json_body([json_span(1, 0xA, "loadgen.operation", {"loadgen.op_id": 4}),
                                  json_span(2, 0xB, "chat gpt-mock", GENAI, parent=0xA)]), "application/json")
        return await c.stats("r1")

    figures = run(go())
    assert figures["roots"] == 5
    assert figures["llm_spans"] == 4  # ops 0 and 3, the orphan, the one in another trace
    assert figures["covered_operations"] == 2


def test_warmup_roots_with_negative_op_ids_are_not_operations():
    # loadgen's warm-up (op_id −2, −3, …) and priming (−1) calls are traced too; their
    # LLM children must match them, in either order, and count neither as covered nor waiting.
    async def go():
        c, s = Collector(), Spans()
        s.operation(-1)
        s.operation(-2)
        s.operation(0)
        first, second, *rest = s.take()
        await c.export(encode_spans(rest).SerializeToString())
        await c.export(encode_spans([first, second]).SerializeToString())
        return await c.stats("r1")

    figures = run(go())
    assert figures["roots"] == 1 and figures["warmup_roots"] == 2
    assert figures["covered_operations"] == 1 and figures["llm_spans"] == 3


# --- attribute completeness -------------------------------------------------------------------------


def test_completeness_lists_missing_attributes_per_convention():
    partial = {k: v for k, v in GENAI.items() if k not in ("gen_ai.response.model", "gen_ai.usage.output_tokens")}
    old_name = {**{k: v for k, v in GENAI.items() if k != "gen_ai.provider.name"}, "gen_ai.system": "openai"}

    async def go():
        c, s = Collector(), Spans()
        s.operation(0, GENAI)
        s.operation(1, partial)
        s.operation(2, old_name)  # the pre-1.37 name still meets the provider entry
        s.operation(3, OPENINFERENCE, name="ChatCompletion")
        s.operation(4, {k: v for k, v in OPENINFERENCE.items() if k != "output.value"})
        await c.export(s.body())
        return await c.stats("r1")

    figures = run(go())
    assert figures["llm_spans"] == 5 and figures["complete_llm_spans"] == 3
    assert figures["attribute_completeness_percent"] == 60.0
    assert figures["missing_attributes"] == {"gen_ai.response.model": 1, "gen_ai.usage.output_tokens": 1,
                                             "output.value": 1}
    assert figures["by_convention"]["otel_genai"]["llm_spans"] == 3
    assert figures["by_convention"]["openinference"]["missing_attributes"] == {"output.value": 1}


def test_honeyhive_spans_need_honeyhive_and_instrumentor_attributes():
    honeyhive = {"honeyhive.session_id": "s", "honeyhive.project": "p", "honeyhive_event_type": "model"}

    async def go():
        c = Collector()
        by_span, by_resource = Spans("hh"), Spans("hh", **{"honeyhive.project": "p"})
        by_span.operation(0, {**OPENINFERENCE, **honeyhive})  # complete
        by_span.operation(1, {**OPENINFERENCE, "honeyhive_event_type": "model"})  # HoneyHive's own keys missing
        by_resource.operation(2, GENAI)  # OpenLLMetry-style under HoneyHive: GenAI + HoneyHive lists
        await c.export(by_span.body())
        await c.export(by_resource.body())
        return await c.stats("hh")

    figures = run(go())
    assert figures["llm_spans"] == 3 and figures["complete_llm_spans"] == 1
    conventions = figures["by_convention"]
    assert conventions["honeyhive/openinference"]["missing_attributes"] == {"honeyhive.project": 1,
                                                                           "honeyhive.session_id": 1}
    assert conventions["honeyhive/otel_genai"]["missing_attributes"] == {"honeyhive.project": 1,
                                                                        "honeyhive.session_id": 1}


def test_laminar_spans_are_checked_against_laminars_list():
    # lmnr 0.8's instrumentors write pre-1.37 GenAI keys and no gen_ai.operation.name; its
    # processor adds lmnr.span.*, which is what marks the span as Laminar's.
    laminar = {"lmnr.span.type": "LLM", "lmnr.span.path": ("loadgen.operation", "openai.chat"),
               "gen_ai.system": "openai", "gen_ai.request.model": "gpt-mock", "gen_ai.response.model": "gpt-mock",
               "gen_ai.usage.input_tokens": 4, "gen_ai.usage.output_tokens": 7}

    async def go():
        c, s = Collector(), Spans()
        s.operation(0, laminar, name="openai.chat")  # complete without gen_ai.operation.name
        s.operation(1, {k: v for k, v in laminar.items() if k != "lmnr.span.path"}, name="openai.chat")
        s.operation(2, {**OPENINFERENCE, "lmnr.span.type": "LLM"}, name="ChatCompletion")  # OpenInference decides
        await c.export(s.body())
        return await c.stats("r1")

    conventions = run(go())["by_convention"]
    assert conventions["lmnr"]["llm_spans"] == 2 and conventions["lmnr"]["complete_llm_spans"] == 1
    assert conventions["lmnr"]["missing_attributes"] == {"lmnr.span.path": 1}
    assert conventions["openinference"]["complete_llm_spans"] == 1


def test_mlflow_spans_write_op_ids_as_text_and_are_checked_against_mlflows_list():
    # MLflow writes every attribute as JSON text: op_id "0", a warm-up's "-2"; its autolog
    # spans are named after the SDK class and carry mlflow.* keys only.
    mlflow = {"mlflow.spanType": '"CHAT_MODEL"', "mlflow.traceRequestId": '"tr-1"', "mlflow.spanInputs": "{}",
              "mlflow.spanOutputs": "{}", "mlflow.llm.model": '"gpt-mock"', "mlflow.chat.tokenUsage": "{}"}

    async def go():
        c, s = Collector(), Spans()
        s.operation("-2", mlflow, name="AsyncCompletions")  # a warm-up call
        s.operation("0", mlflow, name="AsyncCompletions")
        s.operation("1", {k: v for k, v in mlflow.items() if k != "mlflow.chat.tokenUsage"},
                    name="AsyncMessages.create")  # Anthropic streaming: no usage
        await c.export(s.body())
        return await c.stats("r1")

    figures = run(go())
    assert figures["roots"] == 2 and figures["warmup_roots"] == 1 and figures["covered_operations"] == 2
    assert figures["by_convention"]["mlflow"]["llm_spans"] == 3
    assert figures["by_convention"]["mlflow"]["missing_attributes"] == {"mlflow.chat.tokenUsage": 1}


def test_which_spans_are_llm_spans():
    async def go():
        c, s = Collector(), Spans()
        s.span("chat gpt-mock", {})  # by name alone
        s.span("anthropic.messages.create", {"x": 1})  # by name alone
        s.span("llm call", {"llm.request.type": "chat"})  # by an llm.* key
        s.span("POST /v1/chat/completions", {"http.request.method": "POST"})  # an HTTP client span: not
        s.span("ChatCompletion", {"openinference.span.kind": "CHAIN"})  # OpenInference says not an LLM span
        s.span("loadgen.operation", {"gen_ai.system": "x"})  # a root without op_id is never an LLM span
        await c.export(s.body())
        return await c.stats("r1")

    figures = run(go())
    assert figures["llm_spans"] == 3 and figures["roots_without_op_id"] == 1



def test_langfuse_generations_are_llm_spans_of_langfuses_convention():
    async def go():
        c, s = Collector(), Spans()
        s.operation(0, LANGFUSE, name="OpenAI-generation")  # complete; its name alone would not make it one
        s.operation(1, {k: v for k, v in LANGFUSE.items() if k != "langfuse.observation.usage_details"},
                    name="OpenAI-generation")
        s.span("step", {"langfuse.observation.type": "span"})  # a Langfuse span without a model: not an LLM span
        await c.export(s.body(), path="/api/public/otel/v1/traces")  # Langfuse's own ingest path
        return await c.stats("r1"), await c.stats()

    figures, totals = run(go())
    assert figures["llm_spans"] == 2 and figures["covered_operations"] == 2
    assert figures["by_convention"]["langfuse"] == {
        "llm_spans": 2, "complete_llm_spans": 1, "attribute_completeness_percent": 50.0,
        "missing_attributes": {"langfuse.observation.usage_details": 1}}
    assert totals["by_path"]["/api/public/otel/v1/traces"] == 1

# --- faults, in-process --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, status, retry_after", [
    ("http_429", 429, 2.0), ("http_503", 503, 0.5), ("http_400", 400, None), ("http_413", 413, None),
])
def test_status_faults_answer_the_status_and_ingest_nothing(kind, status, retry_after):
    async def go():
        c, s = faulty(CollectorFault(kind=kind, retry_after_s=retry_after)), Spans()
        s.operation(0)
        return await c.export(s.body()), await c.stats()

    answer, stats = run(go())
    assert answer.status_code == status and stats["faults"][kind] == 1
    assert answer.headers.get("retry-after") == {2.0: "2", 0.5: "0.5", None: None}[retry_after]
    assert stats["accepted_requests"] == 0
    figures = stats["runs"]["r1"]  # the run has an attempt, but no spans received
    assert figures["spans_received"] == figures["requests"] == 0
    assert figures["attempts"] == figures["attempts_by_outcome"][kind] == 1 and figures["spans_by_outcome"][kind] == 2


@pytest.mark.parametrize("content_type", [PROTOBUF, "application/json"])
def test_partial_success_rejects_the_last_spans_and_counts_only_the_rest(content_type):
    spans = [json_span(1, i + 1, f"s{i}", {}) for i in range(5)]

    async def go():
        c = faulty(CollectorFault(kind="partial_success", reject_fraction=0.3))
        if content_type == PROTOBUF:
            s = Spans()
            for i in range(5):
                s.span(f"s{i}", {})
            body = s.body()
        else:
            body = json_body(spans)
        return await c.export(body, content_type), await c.stats("r1")

    answer, figures = run(go())
    rejected = math.ceil(5 * 0.3)
    assert answer.status_code == 200
    if content_type == PROTOBUF:
        partial = ExportTraceServiceResponse.FromString(answer.content).partial_success
        assert partial.rejected_spans == rejected and "rejected" in partial.error_message
    else:
        assert answer.json()["partialSuccess"]["rejectedSpans"] == str(rejected)
    assert figures["spans_received"] == 5 - rejected and figures["rejected_spans"] == rejected


def test_delay_fault_holds_the_answer():
    virtual = VirtualClock()

    async def go():
        c, s = faulty(CollectorFault(kind="delay", delay_ms=150), clock=virtual), Spans()
        s.operation(0)
        t0 = virtual.now_ns()
        answer = await c.export(s.body())
        return answer, virtual.now_ns() - t0, await c.stats("r1")

    answer, elapsed, figures = virtual.run(go())
    assert answer.status_code == 200 and elapsed == 150_000_000 and figures["spans_received"] == 2


def test_reset_fault_drops_the_connection_in_process():
    async def go():
        c, s = faulty(CollectorFault(kind="reset")), Spans()
        s.operation(0)
        with pytest.raises(httpx2.RemoteProtocolError):
            await c.export(s.body())
        return await c.stats()

    stats = run(go())
    assert stats["faults"]["reset"] == 1
    figures = stats["runs"]["r1"]  # the run has an attempt, but no spans received
    assert figures["spans_received"] == 0 and figures["attempts_by_outcome"]["reset"] == 1


def test_fault_draws_are_seeded_and_windows_start_at_the_first_export():
    def pattern(seed: int) -> list[int]:
        async def go():
            c = Collector(CollectorConfig(seed=seed, faults=[CollectorFault(kind="http_503", probability=0.5)]))
            return [(await c.export(b"")).status_code for _ in range(40)]
        return run(go())

    first = pattern(7)
    assert first == pattern(7) and first != pattern(8) and 5 < first.count(503) < 35

    virtual = VirtualClock()

    async def window():
        # A 0.15 s window from the first export: still open 149 ms later, closed at 150.
        c = faulty(CollectorFault(kind="http_429", start_s=0.0, duration_s=0.15), clock=virtual)
        statuses = [(await c.export(b"")).status_code]  # arms the window
        for wait_s in (0.149, 0.001):
            await asyncio.sleep(wait_s)
            statuses.append((await c.export(b"")).status_code)
        return statuses

    assert virtual.run(window()) == [429, 429, 200]


# --- HoneyHive session, control routes ------------------------------------------------------------------


def test_session_start_answers_what_honeyhive_validates():
    async def go():
        c = Collector()
        new = await c.http.post("/session/start", json={"session": {"project": "p", "session_name": "n"}})
        given = await c.http.post("/session/start", json={"session": {"session_id": "abc", "project": "p"}})
        return new.json(), given.json(), await c.stats()

    new, given, stats = run(go())
    # honeyhive 1.7's PostSessionStartResponse requires these five fields
    for answer in (new, given):
        assert {"event_id", "session_id", "org_id", "workspace_id", "project_id"} <= set(answer)
    assert len(new["session_id"]) == 36 and given["session_id"] == "abc"  # a given id is echoed
    assert stats["session_starts"] == 2


def test_token_check_answers_what_logfire_reads():
    async def go():
        c = Collector()
        answer = await c.http.get("/v1/info", headers={"Authorization": "pylf_v1_x"})
        return answer, await c.stats()

    answer, stats = run(go())
    # logfire 5.4's LogfireCredentials.from_token reads these two fields of a 200 answer
    assert answer.status_code == 200 and {"project_name", "project_url"} <= set(answer.json())
    assert stats["token_checks"] == 1 and stats["other_routes"] == {}


def test_reset_route_and_loopback_only_control_routes():
    async def go():
        c, s = Collector(), Spans("a")
        s.operation(0)
        await c.export(s.body())
        s2 = Spans("b")
        s2.operation(0)
        await c.export(s2.body())
        await c.http.post("/_collector/reset", params={"run_id": "a"})
        one_dropped = await c.stats()
        await c.http.post("/_collector/reset")
        cleared = await c.stats()
        await c.http.post("/nowhere")
        remote = Collector(client_addr="10.0.0.5")
        refused = await remote.http.get("/_collector/stats")
        health = await remote.http.get("/healthz")
        return one_dropped, cleared, await c.stats(), refused, health

    one_dropped, cleared, after, refused, health = run(go())
    assert sorted(one_dropped["runs"]) == ["b"]
    assert cleared["runs"] == {} and cleared["requests"] == 0
    assert after["other_routes"] == {"POST /nowhere": 1}
    assert refused.status_code == 403 and health.json() == {"ok": True}


# --- a real server, the SDK's exporter -----------------------------------------------------------------


class Server:
    """`serve()` in a subprocess on port 0; stopping it with SIGTERM must end it cleanly."""

    def __init__(self, config: CollectorConfig) -> None:
        code = ("import sys; from loadgen.collector import CollectorConfig, serve; "
                "serve(CollectorConfig.model_validate_json(sys.argv[1]), on_ready=lambda p: print(p, flush=True))")
        self.proc = subprocess.Popen([sys.executable, "-c", code, config.model_dump_json()], cwd=REPO,
                                     stdout=subprocess.PIPE, text=True)
        self.url = f"http://127.0.0.1:{int(self.proc.stdout.readline())}"

    def stats(self, run_id: str) -> dict:
        with urllib.request.urlopen(f"{self.url}/_collector/stats?run_id={run_id}", timeout=5) as response:
            return json.load(response)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            assert self.proc.wait(timeout=10) == 0  # serve() returned
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def sdk_exporter(url: str, path: str = "/v1/traces", **kwargs) -> OTLPSpanExporter:
    return OTLPSpanExporter(endpoint=url + path, **kwargs)


@pytest.mark.e2e
def test_sdk_exporter_with_batching_gzip_and_both_paths():
    with Server(CollectorConfig()) as server:
        providers = []
        for run_id, path, compression in (("r1", "/v1/traces", Compression.Gzip),
                                          ("r2", "/opentelemetry/v1/traces", None)):
            provider = TracerProvider(resource=Resource.create({"service.name": "svc", "loadgen.run_id": run_id}))
            exporter = sdk_exporter(server.url, path, compression=compression)
            provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=16))
            tracer = provider.get_tracer("t")
            for op_id in range(20):
                with tracer.start_as_current_span("loadgen.operation", attributes={"loadgen.op_id": op_id}):
                    with tracer.start_as_current_span("chat gpt-mock", attributes=GENAI):
                        pass
            providers.append(provider)
        for provider in providers:
            assert provider.force_flush(5000)
        r1, r2 = server.stats("r1"), server.stats("r2")
        for provider in providers:
            provider.shutdown()
    for figures in (r1, r2):
        assert figures["spans_received"] == 40 and figures["duplicates"] == 0 and figures["requests"] >= 3
        assert figures["covered_operations"] == 20 and figures["attribute_completeness_percent"] == 100.0
        assert figures["export_delay_ms"]["count"] == 40


@pytest.mark.e2e
@pytest.mark.parametrize("fault, result", [
    (CollectorFault(kind="http_429", retry_after_s=30), SpanExportResult.FAILURE),  # retry later than the timeout
    (CollectorFault(kind="http_503", retry_after_s=30), SpanExportResult.FAILURE),
    (CollectorFault(kind="http_400"), SpanExportResult.FAILURE),
    (CollectorFault(kind="http_413"), SpanExportResult.FAILURE),
    (CollectorFault(kind="reset"), SpanExportResult.FAILURE),
    (CollectorFault(kind="down"), SpanExportResult.FAILURE),
    (CollectorFault(kind="partial_success", reject_fraction=0.5), SpanExportResult.SUCCESS),  # SDK ignores it
], ids=lambda v: v.kind if isinstance(v, CollectorFault) else None)
def test_sdk_exporter_sees_each_fault(fault, result):
    spans = Spans()
    for op_id in range(2):
        spans.operation(op_id)
    with Server(CollectorConfig(faults=[fault])) as server:
        exporter = sdk_exporter(server.url, timeout=0.5)
        t0 = time.monotonic()
        assert exporter.export(spans.take()) == result
        elapsed = time.monotonic() - t0
        figures = server.stats("r1")
        if fault.kind in ("reset", "down"):  # no HTTP answer at all: the connection is reset
            connection = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=5)
            with pytest.raises(ConnectionError):
                connection.request("POST", "/v1/traces", body=b"", headers={"content-type": PROTOBUF})
                connection.getresponse()
        exporter.shutdown()
    assert elapsed < 3
    assert figures["spans_received"] == (2 if fault.kind == "partial_success" else 0)
    # every attempt the exporter made is attributed to its run, reset and down included
    outcome = "accepted" if fault.kind == "partial_success" else fault.kind
    assert figures["attempts"] >= 1 and figures["attempts_by_outcome"][outcome] == figures["attempts"]
    assert figures["rejected_spans"] == (2 if fault.kind == "partial_success" else 0)
