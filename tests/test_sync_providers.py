"""The sync provider adapters (`client = "sync"`): the same call record as the async ones.

Unit tests run the real sync SDKs over httpx2's MockTransport (no sockets); the e2e tests
call the embedded mock with both clients and compare what each put in the record.
"""

import asyncio
import time

import httpx2
import pytest

from loadgen.prompts import make_prompt
from loadgen.providers.anthropic_messages_sync import AnthropicMessagesSync
from loadgen.providers.base import CURRENT_CALL, count_attempt_sync, error_class
from loadgen.providers.factory import make_provider
from loadgen.providers.openai_chat_sync import OpenAIChatSync
from loadgen.results import CallRecord
from loadgen.settings import ProviderSettings

URLS = {"openai": "http://mock/v1", "anthropic": "http://mock"}
SYNC = {"openai": OpenAIChatSync, "anthropic": AnthropicMessagesSync}


def settings(stream: bool = False, base_url: str = "http://mock", retries: int = 0, transport: str = "httpx",
             client: str = "sync", timeout_s: float = 5) -> ProviderSettings:
    return ProviderSettings(base_url=base_url, api_key="k", model="m", stream=stream, timeout_s=timeout_s,
                            max_retries=retries, pool_size=4, transport=transport, client=client)


def completion(provider: str) -> dict:
    """A whole response, in the provider's dialect."""
    if provider == "openai":
        return {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 7, "total_tokens": 8}}
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "stop_reason": "end_turn",
            "stop_sequence": None, "content": [{"type": "text", "text": "x"}],
            "usage": {"input_tokens": 1, "output_tokens": 7}}


def sync_call(provider, rec: CallRecord | None = None) -> CallRecord:
    """One call as a pool thread makes it: CURRENT_CALL set in this thread, then call_sync."""
    rec = rec or CallRecord(0, 0, None)
    CURRENT_CALL.set(rec)
    try:
        rec.t_start = time.perf_counter_ns()
        provider.call_sync(make_prompt(0, 0), rec)
        rec.t_done = time.perf_counter_ns()
    finally:
        CURRENT_CALL.set(None)
        provider.close()
    return rec


def test_the_factory_builds_the_sync_adapters_for_client_sync():
    for name, kind in SYNC.items():
        provider = make_provider(name, settings(base_url=URLS[name]))
        assert type(provider) is kind and provider.name == name
        assert isinstance(provider._http, httpx2.Client)  # the SDKs accept only a sync client here
        provider.close()


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_whole_response_fills_the_record(provider):
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, json=completion(provider)))
    rec = sync_call(SYNC[provider](settings(base_url=URLS[provider]), transport=transport))
    assert (rec.output_tokens, rec.input_tokens, rec.response_model) == (7, 1, "m")
    assert rec.finish_reason == ("stop" if provider == "openai" else "end_turn")
    assert rec.attempts == 1 and rec.t_first_token == 0  # not streamed: no token stamps
    # Not loadgen's transport: nothing stamps the wire times.
    assert rec.t_wire == rec.t_response_end == 0


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_retries_are_counted_as_attempts_by_the_sync_hook(provider):
    calls = {"n": 0}

    def handler(request):
        calls["n"] += 1
        if calls["n"] == 1:  # fails once, then answers
            return httpx2.Response(503, headers={"retry-after-ms": "1"}, json={"error": {"message": "busy"}})
        return httpx2.Response(200, json=completion(provider))

    rec = sync_call(SYNC[provider](settings(base_url=URLS[provider], retries=1), transport=httpx2.MockTransport(handler)))
    assert rec.attempts == 2 and rec.error is None


def test_count_attempt_sync_counts_for_the_threads_own_call_only():
    rec = CallRecord(0, 0, None)
    count_attempt_sync(None)  # no call in this thread: nothing to count, no error
    CURRENT_CALL.set(rec)
    try:
        count_attempt_sync(None)
    finally:
        CURRENT_CALL.set(None)
    assert rec.attempts == 2


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_429_and_a_timeout_are_classed_as_on_the_async_client(provider):
    def rate_limited(request):
        return httpx2.Response(429, json={"error": {"message": "slow down", "type": "rate_limit"}})

    def timed_out(request):
        raise httpx2.ReadTimeout("read timed out", request=request)

    for handler, expected in ((rate_limited, "http_429"), (timed_out, "timeout")):
        adapter = SYNC[provider](settings(base_url=URLS[provider]), transport=httpx2.MockTransport(handler))
        with pytest.raises(Exception) as info:
            sync_call(adapter)
        assert error_class(info.value) == expected


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_tracer_that_wraps_the_sync_client_sees_every_call(provider):
    seen = []

    def wrap_client(client):
        resource = client.chat.completions if provider == "openai" else client.messages
        create = resource.create

        def traced_create(**kwargs):
            seen.append(kwargs["model"])
            return create(**kwargs)

        resource.create = traced_create
        return client

    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, json=completion(provider)))
    rec = sync_call(SYNC[provider](settings(base_url=URLS[provider]), transport=transport, wrap_client=wrap_client))
    assert seen == ["m"] and rec.output_tokens == 7


def test_anthropic_sync_passes_its_open_telemetry_option_to_the_sdk():
    from opentelemetry.sdk.trace import TracerProvider

    tracer_provider = TracerProvider()
    traced = AnthropicMessagesSync(settings(), open_telemetry={"tracer_provider": tracer_provider})
    assert traced._client._open_telemetry["tracer_provider"] is tracer_provider
    assert traced._client._open_telemetry["traces"]["enabled"]
    untraced = AnthropicMessagesSync(settings())  # off by default, as the async adapter's
    assert not untraced._client._open_telemetry["traces"]["enabled"]


def test_abort_aborts_a_transport_that_can_and_leaves_httpx2s_pool_alone():
    class Abortable(httpx2.MockTransport):
        aborted = 0

        def abort(self, reopen=False):
            self.aborted += 1
            self.reopen = reopen

    transport = Abortable(lambda request: httpx2.Response(200, json=completion("openai")))
    provider = OpenAIChatSync(settings(base_url=URLS["openai"]), transport=transport)
    provider.abort()
    provider.abort(reopen=True)
    assert transport.aborted == 2 and transport.reopen
    OpenAIChatSync(settings(base_url=URLS["openai"])).abort()  # httpx2's HTTPTransport: nothing to abort


def test_aclose_closes_the_sync_client():
    provider = OpenAIChatSync(settings(base_url=URLS["openai"]))
    asyncio.run(provider.aclose())
    assert provider._http.is_closed


# -- against the embedded mock: the sync record is the async record ---------------------------

def lean_transport_or_skip(transport: str) -> None:
    if transport == "lean":
        pytest.importorskip("loadgen.providers.sync_transport")


async def async_call(name: str, stream: bool, url: str) -> CallRecord:
    provider = make_provider(name, settings(stream, url, transport="lean", client="async"))
    rec = CallRecord(0, 0, None)
    CURRENT_CALL.set(rec)
    await provider.call(make_prompt(0, 0), rec)
    await provider.aclose()
    return rec


def mock_base(name: str, url: str) -> str:
    return url + "/v1" if name == "openai" else url


@pytest.mark.e2e
@pytest.mark.parametrize("transport", ["httpx", "lean"])
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("name", ["openai", "anthropic"])
def test_the_sync_adapter_fills_the_record_as_the_async_one(mock_server, name, stream, transport):
    lean_transport_or_skip(transport)
    url = mock_base(name, mock_server)
    expected = asyncio.run(async_call(name, stream, url))
    rec = sync_call(make_provider(name, settings(stream, url, transport=transport)))
    fields = ("output_tokens", "input_tokens", "finish_reason", "response_model", "attempts", "error")
    assert {f: getattr(rec, f) for f in fields} == {f: getattr(expected, f) for f in fields}
    assert rec.output_tokens > 0 and rec.response_id
    assert (rec.t_first_token > rec.t_start) is stream
    if transport == "lean":
        # loadgen's transport stamps the wire times, in the order of the timeline.
        assert rec.t_start <= rec.t_wire <= rec.t_response_end <= rec.t_done
        assert rec.t_wire > 0
    else:
        assert rec.t_wire == rec.t_response_end == 0


@pytest.mark.e2e
@pytest.mark.parametrize("transport", ["httpx", "lean"])
@pytest.mark.parametrize("name", ["openai", "anthropic"])
def test_a_real_timeout_from_the_sync_client_is_a_timeout(mock_server, name, transport):
    # The mock answers after 20 ms; the client waits 5 ms.
    lean_transport_or_skip(transport)
    provider = make_provider(name, settings(False, mock_base(name, mock_server), transport=transport, timeout_s=0.005))
    with pytest.raises(Exception) as info:
        sync_call(provider)
    assert error_class(info.value) == "timeout"


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["openai", "anthropic"])
def test_abort_ends_a_call_blocked_in_a_read_at_once(mock_server, name):
    # A thread cannot be cancelled: stopping a run aborts the transport, whose sockets close
    # under the threads blocked in a read, so their calls fail now rather than at the timeout.
    import threading

    from tests.conftest import get_json

    lean_transport_or_skip("lean")
    provider = make_provider(name, settings(False, mock_base(name, mock_server), transport="lean", timeout_s=30))
    get_json(mock_server + "/_mock/stall", "POST", {"seconds": 30})
    failed = []

    def call():
        try:
            sync_call(provider)
        except Exception as exc:
            failed.append(error_class(exc))

    thread = threading.Thread(target=call)
    thread.start()
    thread.join(timeout=0.5)  # time to send the request and block reading its answer
    provider.abort()
    thread.join(timeout=5)
    get_json(mock_server + "/_mock/reset", "POST", {})
    assert not thread.is_alive() and len(failed) == 1, failed
