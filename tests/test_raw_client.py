"""The raw client (`--client raw`): the SDK's request bytes, its responses read as far as the figures need.

Unit tests read streams from a fake connection; the end-to-end tests run against the
canned-response server in benchmarks/ (it imports nothing from loadgen), which records every
request's arrival and body: an independent witness of what was sent.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time

import pytest

from conftest import ROOT, free_port, get_json, run_cli
from loadgen.arms import ARM_NAMES  # noqa: F401  (the registry loads as in a worker)
from loadgen.histograms import Recorder
from loadgen.plan import arm_plans, provider_base_url
from loadgen.profile import Profile, ProfileError
from loadgen.prompts import make_prompt, profile_prompt
from loadgen.providers import error_class, make_provider
from loadgen.providers.raw import (RawClient, RequestTable, _AnthropicBody, _AnthropicStream, _OpenAIBody,
                                  _OpenAIStream, request_body)
from loadgen.results import CallRecord
from loadgen.settings import ProviderSettings


def settings(stream: bool, base_url: str | None = "http://127.0.0.1:9/v1", client: str = "raw",
             provider: str = "openai") -> ProviderSettings:
    return ProviderSettings(base_url=provider_base_url(provider, base_url), api_key="sk-test-key", model="m",
                            stream=stream, timeout_s=10, max_retries=0, pool_size=8, client=client)


def read(reader, chunks: list[bytes], rec: CallRecord, status: int = 200):
    """Feed a response body to a reader as its chunks arrive; what `end` says at the last byte."""
    for chunk in chunks:
        reader.feed(chunk, rec)
    return reader.end(rec, status)


def split_anywhere(data: bytes, size: int = 7) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def openai_sse() -> bytes:
    def chunk(delta, finish=None, usage=None, choices=True):
        body = {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
                if choices else [], "usage": usage}
        return b"data: " + json.dumps(body).encode() + b"\n\n"
    return (chunk({"role": "assistant", "content": ""}) + chunk({"content": "a"}) + chunk({"content": "b"})
            + chunk({"content": "c"}) + chunk({}, finish="stop")
            + chunk({}, usage={"completion_tokens": 3, "prompt_tokens": 9}, choices=False) + b"data: [DONE]\n\n")


def anthropic_sse(error: bool = False) -> bytes:
    def event(kind, body):
        return b"event: " + kind.encode() + b"\ndata: " + json.dumps({"type": kind, **body}).encode() + b"\n\n"
    out = event("message_start", {"message": {"id": "m1", "model": "m", "usage": {"input_tokens": 9}}})
    out += event("ping", {})
    out += b"".join(event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": t}})
                    for t in ("a", "b"))
    if error:
        return out + event("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})
    return out + event("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}})


def test_openai_stream_counts_text_deltas_and_reads_usage_across_any_split():
    rec = CallRecord(0, 0, Recorder())
    assert read(_OpenAIStream(), split_anywhere(openai_sse()), rec) is None
    assert rec.t_first_token > 0 and rec._itl.count == 2  # three text deltas: two gaps
    assert (rec.output_tokens, rec.input_tokens, rec.finish_reason, rec.response_id) == (3, 9, "stop", "c1")


def test_anthropic_stream_counts_text_deltas_and_an_error_event_is_a_stream_error():
    rec = CallRecord(0, 0, Recorder())
    assert read(_AnthropicStream(), split_anywhere(anthropic_sse(), 5), rec) is None
    assert rec._itl.count == 1 and (rec.output_tokens, rec.input_tokens, rec.finish_reason) == (2, 9, "end_turn")
    failed = read(_AnthropicStream(), [anthropic_sse(error=True)], CallRecord(0, 0, None))
    assert failed[0] == "stream_error" and "overloaded" in failed[1]


def test_a_whole_body_gives_its_usage_a_failed_status_its_class_and_no_usage_a_bad_response():
    rec = CallRecord(0, 0, None)
    body = json.dumps({"id": "m1", "model": "m", "stop_reason": "end_turn",
                       "usage": {"input_tokens": 5, "output_tokens": 7}}).encode()
    assert read(_AnthropicBody(), split_anywhere(body), rec) is None
    assert (rec.output_tokens, rec.input_tokens, rec.finish_reason) == (7, 5, "end_turn")
    assert read(_OpenAIBody(), [b'{"error": "slow down"}'], rec, status=429)[0] == "http_429"
    assert read(_OpenAIBody(), [b'{"id": "x"}'], rec)[0] == "bad_response"
    assert read(_OpenAIStream(), [b'{"error": "overloaded"}'], rec, status=529)[0] == "http_529"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_rendered_request_is_one_http_request_with_the_body_and_the_provider_headers(provider, stream):
    client = RawClient(provider, settings(stream, provider=provider))
    prompt = make_prompt(42, 7)
    request = client.render(prompt)
    head, body = request.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    path = "/v1/chat/completions" if provider == "openai" else "/v1/messages"
    assert lines[0] == f"POST {path} HTTP/1.1"
    assert int(headers["content-length"]) == len(body)
    assert json.loads(body) == request_body(provider, prompt, "m", stream)
    if provider == "openai":
        assert headers["authorization"] == "Bearer sk-test-key"
    else:
        assert headers["x-api-key"] == "sk-test-key" and headers["anthropic-version"] == "2023-06-01"


def test_the_request_table_hands_each_prerendered_request_out_once():
    client = RawClient("openai", settings(False))
    prompt = lambda op, warmup: make_prompt(42, op, stream="warmup" if warmup else "measured")  # noqa: E731
    table = RequestTable(client, prompt)
    table.prepare(range(0, 10, 2), range(1, 3))
    assert table(4, False) == client.render(prompt(4, False))
    assert table(1, True) == client.render(prompt(1, True))
    assert table(4, False) == client.render(prompt(4, False))  # rendered again once taken
    assert table(5, False) == client.render(prompt(5, False))  # not this shard's: rendered when asked


def test_with_the_raw_client_only_the_baseline_runs_and_a_baseline_is_required():
    profile = Profile(client="raw", tracing={"arms": ["baseline", "otel", "baseline"]})
    assert [(plan.provider, plan.label) for plan in arm_plans(profile)] == [("openai", "baseline"),
                                                                           ("anthropic", "baseline")]
    with pytest.raises((ProfileError, ValueError), match="only the baseline runs"):
        Profile(client="raw", tracing={"arms": ["otel"]})


# -- against an independent server ----------------------------------------------------------


@pytest.fixture
def canned():
    """benchmarks/canned_server.py, capturing bodies; yields its base URL (with /v1)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "benchmarks/canned_server.py", "--port", str(port), "--capture"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if "listening" not in proc.stdout.readline():
        proc.kill()
        raise RuntimeError("canned server did not start: " + proc.stderr.read())
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.mark.e2e
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True])
def test_the_raw_client_sends_the_sdk_body_for_each_op_id(canned, provider, stream):
    profile = Profile(provider=provider, conversation_share=0.5, span_size_mode="mixed")
    ops = range(12)

    async def send(client: str) -> list[CallRecord]:
        adapter = make_provider(provider, settings(stream, canned + "/v1", client, provider))
        records = []
        for op in ops:
            rec = CallRecord(op, 0, None)
            await adapter.call(profile_prompt(profile, op), rec)
            records.append(rec)
        await adapter.aclose()
        return records

    sdk_records = asyncio.run(send("async"))
    raw_records = asyncio.run(send("raw"))
    bodies = [json.loads(body) for body in get_json(canned + "/_bodies")["bodies"]]
    assert len(bodies) == 2 * len(ops)
    sdk, raw = bodies[:len(ops)], bodies[len(ops):]
    for op in ops:  # JSON-normalised: the same keys and values, whatever their order or spacing
        assert json.dumps(raw[op], sort_keys=True) == json.dumps(sdk[op], sort_keys=True), f"op_id {op}"
    # And both read the same response the same way.
    for a, b in zip(sdk_records, raw_records):
        assert (a.output_tokens, a.input_tokens, a.finish_reason) == (b.output_tokens, b.input_tokens, b.finish_reason)
        assert bool(a.t_first_token) == bool(b.t_first_token) == stream


@pytest.mark.e2e
def test_a_raw_run_sends_every_planned_call_and_reports_the_arms_it_left_out(canned, tmp_path):
    out = tmp_path / "raw.json"
    result = run_cli("run", "--client", "raw", "--provider", "both", "--base-url", canned + "/v1", "--rate", "500",
                     "--arrival", "poisson", "--duration", "3s", "--warmup-operations", "20", "--workers", "1",
                     "--arms", "baseline,otel", "--quiet", "--export-json", str(out))
    # 3 (invalid) only if this machine held the generator back; the counts below hold either way.
    assert result.returncode in (0, 3), result.stderr + result.stdout
    document = json.loads(out.read_text())
    runs = document["runs"]
    assert [(run["provider"], run["arm"], run["client"]) for run in runs] == [("openai", "baseline", "raw"),
                                                                              ("anthropic", "baseline", "raw")]
    config = document["summary"]["configuration"]
    assert config["client"] == "raw" and [item["arm"] for item in config["arms_left_out"]] == ["otel"]
    assert "not run: otel" in result.stdout
    sent = sum(run["operations_sent"] for run in runs)
    assert all(run["operations_ok"] == run["operations_planned"] == run["operations_sent"] for run in runs)
    # The server saw each measured call, each warm-up call and one priming call per worker: nothing more.
    assert get_json(canned + "/_stats")["count"] == sent + 2 * 20 + 2
    assert all(run["before_wire_ms"]["count"] == run["operations_ok"] for run in runs)  # the wire split is measured
    from loadgen.document import validate_document
    assert validate_document(document) == []


@pytest.mark.e2e
def test_a_2_s_server_stall_shows_in_the_raw_clients_p95(canned, tmp_path):
    out = tmp_path / "stall.json"
    warmup = 20

    def stall_once_a_second_in() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if get_json(canned + "/_stats")["count"] > warmup + 1 + 300:  # ~1 s into the measured phase
                get_json(canned + "/_stall?s=2", method="POST")
                return
            time.sleep(0.02)

    staller = threading.Thread(target=stall_once_a_second_in, daemon=True)
    staller.start()
    result = run_cli("run", "--client", "raw", "--provider", "openai", "--base-url", canned + "/v1", "--rate", "300",
                     "--arrival", "poisson", "--duration", "6s", "--warmup-operations", str(warmup), "--workers", "1",
                     "--arms", "baseline", "--quiet", "--export-json", str(out))
    staller.join(timeout=5)
    assert result.returncode in (0, 3), result.stderr  # 3: opening connections for the stalled calls may delay sends
    run = json.loads(out.read_text())["runs"][0]
    # A third of the calls were intended during the stall or queued behind it: up to 2 s late.
    assert run["latency_ms"]["p95"] > 1000, run["latency_ms"]
    assert run["latency_ms"]["max"] > 1800
    assert run["operations_ok"] == run["operations_sent"]
