"""Provider adapters through the real SDKs, over an in-memory transport (no sockets).

The key property: TTFT is the first delta with text — never the role-only opening chunk
of an OpenAI stream, its usage-only closing chunk, or Anthropic's message_start/ping.
"""

import asyncio
import json
import time

import httpx2
import pytest

from loadgen.clock import VirtualClock
from loadgen.histograms import Recorder
from loadgen.prompts import make_prompt
from loadgen.providers.anthropic_messages import AnthropicMessages
from loadgen.providers.base import error_class
from loadgen.results import CallRecord
from loadgen.settings import ProviderSettings
from loadgen.plan import provider_base_url
from loadgen.providers.openai_chat import OpenAIChat

GAP_S = 0.08


def settings(stream: bool, base_url: str, retries: int = 0) -> ProviderSettings:
    return ProviderSettings(base_url=base_url, api_key="k", model="m", stream=stream,
                            timeout_s=5, max_retries=retries, pool_size=4)


def sse(frames):
    """An SSE body that waits GAP_S before each frame marked with a pause."""

    async def body():
        for frame in frames:
            if frame == "PAUSE":
                await asyncio.sleep(GAP_S)
                continue
            yield frame.encode()

    return body()


def openai_chunk(delta=None, finish=None, usage=None, choices=True):
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}] if choices else []}
    if usage:
        chunk["usage"] = usage
    return f"data: {json.dumps(chunk)}\n\n"


def openai_stream_handler(request):
    frames = [
        openai_chunk({"role": "assistant", "content": ""}),  # role-only: not a token
        "PAUSE",
        openai_chunk({"content": "Hello"}),
        "PAUSE",
        openai_chunk({"content": " world"}),
        openai_chunk({}, finish="stop"),
        openai_chunk(usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}, choices=False),
        "data: [DONE]\n\n",
    ]
    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=sse(frames))


def anthropic_event(kind, data):
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"


def anthropic_stream_handler(request):
    usage = {"input_tokens": 3, "output_tokens": 1}
    frames = [
        anthropic_event("message_start", {"message": {"id": "msg_1", "type": "message", "role": "assistant",
                        "model": "m", "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}}),
        anthropic_event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        anthropic_event("ping", {}),
        "PAUSE",
        anthropic_event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
        "PAUSE",
        anthropic_event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": " there"}}),
        anthropic_event("content_block_stop", {"index": 0}),
        anthropic_event("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                           "usage": {"output_tokens": 2}}),
        anthropic_event("message_stop", {}),
    ]
    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=sse(frames))


async def one_call(provider, itl, now_ns=time.perf_counter_ns):
    rec = CallRecord(0, now_ns(), itl)
    rec.t_start = now_ns()
    await provider.call(make_prompt(0, 0), rec)
    rec.t_done = now_ns()
    await provider.aclose()
    return rec


@pytest.mark.parametrize("make, handler, url", [
    (OpenAIChat, openai_stream_handler, "http://mock/v1"),
    (AnthropicMessages, anthropic_stream_handler, "http://mock"),
])
def test_ttft_skips_role_only_ping_and_usage_frames(make, handler, url, monkeypatch):
    # On virtual time (the pauses are the only time that passes), so the figures are exact.
    clock = VirtualClock()
    monkeypatch.setattr(CallRecord, "now_ns", staticmethod(clock.now_ns))
    itl = Recorder()
    provider = make(settings(True, url), transport=httpx2.MockTransport(handler))
    rec = clock.run(one_call(provider, itl, clock.now_ns))
    # The role-only chunk (or message_start and ping) arrived at once; the first text
    # only after one pause: TTFT is the pause.
    assert rec.t_first_token - rec.t_start == round(GAP_S * 1e9)
    # One gap between the two text deltas: one pause.
    assert itl.count == 1
    assert itl.histogram.get_max_value() == pytest.approx(GAP_S * 1e6, rel=1e-3)  # µs, to HDR's 3 digits
    assert rec.output_tokens == 2
    assert rec.error is None


def test_openai_non_streaming_reads_usage():
    def handler(request):
        body = json.loads(request.content)
        assert body["max_completion_tokens"] == make_prompt(0, 0).max_tokens
        return httpx2.Response(200, json={
            "id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 7, "total_tokens": 8}})

    rec = asyncio.run(one_call(OpenAIChat(settings(False, "http://mock/v1"), transport=httpx2.MockTransport(handler)), None))
    assert rec.output_tokens == 7 and rec.t_first_token == 0
    # Not loadgen's transport: nothing stamps the wire times, so the split stays unmeasured.
    assert rec.t_wire == rec.t_response_end == 0


def test_a_response_without_usage_is_not_an_error_for_either_provider():
    # The mock's no_usage fault: the answer is whole, its token counts are not there.
    def anthropic_handler(request):
        return httpx2.Response(200, json={
            "id": "msg_1", "type": "message", "role": "assistant", "model": "m", "stop_reason": "end_turn",
            "stop_sequence": None, "content": [{"type": "text", "text": "x"}], "usage": None})

    def openai_handler(request):
        return httpx2.Response(200, json={
            "id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}]})

    for provider in (AnthropicMessages(settings(False, "http://mock"), transport=httpx2.MockTransport(anthropic_handler)),
                     OpenAIChat(settings(False, "http://mock/v1"), transport=httpx2.MockTransport(openai_handler))):
        rec = asyncio.run(one_call(provider, None))
        assert rec.error is None and rec.output_tokens == 0 and rec.response_model == "m"


def test_retries_are_counted_as_attempts():
    calls = {"n": 0}

    def handler(request):
        calls["n"] += 1
        if calls["n"] < 3:
            return httpx2.Response(503, headers={"retry-after-ms": "1"}, json={"error": {"message": "busy"}})
        return httpx2.Response(200, json={
            "id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}]})

    async def go():
        from loadgen.providers.base import CURRENT_CALL

        provider = OpenAIChat(settings(False, "http://mock/v1", retries=2), transport=httpx2.MockTransport(handler))
        rec = CallRecord(0, 0, None)
        CURRENT_CALL.set(rec)
        await provider.call(make_prompt(0, 0), rec)
        await provider.aclose()
        return rec

    assert asyncio.run(go()).attempts == 3


def test_no_sdk_retries_by_default():
    calls = {"n": 0}

    def handler(request):
        calls["n"] += 1
        return httpx2.Response(429, json={"error": {"message": "slow down", "type": "rate_limit"}})

    with pytest.raises(Exception) as info:
        asyncio.run(one_call(OpenAIChat(settings(False, "http://mock/v1"), transport=httpx2.MockTransport(handler)), None))
    assert calls["n"] == 1
    assert error_class(info.value) == "http_429"


@pytest.mark.parametrize("url, openai, anthropic", [
    ("http://h:1/v1", "http://h:1/v1", "http://h:1"),
    ("http://h:1", "http://h:1/v1", "http://h:1"),
    ("http://h:1/v1/", "http://h:1/v1", "http://h:1"),
])
def test_one_base_url_serves_both_providers(url, openai, anthropic):
    assert provider_base_url("openai", url) == openai
    assert provider_base_url("anthropic", url) == anthropic
    assert provider_base_url("openai", None) is None


def test_error_classes():
    assert error_class(TimeoutError()) == "timeout"
    assert error_class(ValueError("x")) == "ValueError"
    import json

    with pytest.raises(json.JSONDecodeError) as broken:
        json.loads('{"choices": [')
    assert error_class(broken.value) == "malformed_json"


def test_a_dropped_response_is_a_stream_cut_for_both_sdks():
    import httpx2 as h
    import openai

    wrapped = openai.APIConnectionError(request=h.Request("POST", "http://x"))
    wrapped.__cause__ = h.RemoteProtocolError("server closed the connection")
    assert error_class(wrapped) == "stream_cut"
    assert error_class(h.RemoteProtocolError("cut")) == "stream_cut"
    assert error_class(openai.APIConnectionError(request=h.Request("POST", "http://x"))) == "connection"


@pytest.mark.parametrize("make, handler, url", [
    (OpenAIChat, openai_stream_handler, "http://mock/v1"),
    (AnthropicMessages, anthropic_stream_handler, "http://mock"),
])
def test_a_tracer_that_wraps_the_client_sees_every_call(make, handler, url):
    # LangSmith's wrap_openai / wrap_anthropic replace `create` on the client instance:
    # the adapter must take `create` from the client after the wrapper has run.
    seen = []

    def wrap_client(client):
        resource = client.chat.completions if make is OpenAIChat else client.messages
        create = resource.create

        async def traced_create(**kwargs):
            seen.append(kwargs["model"])
            return await create(**kwargs)

        resource.create = traced_create
        return client

    provider = make(settings(True, url), transport=httpx2.MockTransport(handler), wrap_client=wrap_client)
    rec = asyncio.run(one_call(provider, Recorder()))
    assert seen == ["m"] and rec.error is None and rec.output_tokens == 2
