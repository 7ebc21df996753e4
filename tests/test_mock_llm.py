"""The embedded mock LLM, driven through the real openai and anthropic SDKs.

Most tests run the app in-process through httpx2.ASGITransport (which buffers a whole
response, so they check shapes, counts and errors, not stream timing); those that time a
response run it on a virtual clock (clock.VirtualClock), where the figures are exact. The
e2e tests start a real server in a subprocess to check timing on the wire, connection
cuts and SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from itertools import islice
from pathlib import Path

import anthropic
import httpx2
import openai
import pytest
from pydantic import ValidationError

import loadgen.mock_llm as mock_llm
from loadgen.clock import VirtualClock
from loadgen.mock_llm import FaultSpec, MockConfig, create_app
from loadgen.mock_llm.latency import LatencyModel

REPO = Path(__file__).resolve().parents[1]
MESSAGES = [{"role": "user", "content": "count these five words"}]
MS = 1_000_000


def run(coro):
    return asyncio.run(coro)


class Mock:
    """An in-process mock with both SDK clients and a raw HTTP client pointed at it; on
    `clock`'s time if given (then run it with `clock.run`)."""

    def __init__(self, config: MockConfig, client_addr: str = "127.0.0.1", clock: VirtualClock | None = None) -> None:
        self.app = create_app(config) if clock is None else create_app(config, clock.now_ns)
        transport = httpx2.ASGITransport(app=self.app, client=(client_addr, 40000))
        self.http = httpx2.AsyncClient(transport=transport, base_url="http://mock")
        self.openai = openai.AsyncOpenAI(
            api_key="test", base_url="http://mock/v1", http_client=self.http, max_retries=0
        )
        self.anthropic = anthropic.AsyncAnthropic(
            api_key="test", base_url="http://mock", http_client=self.http, max_retries=0, open_telemetry=False
        )

    def chat(self, **kwargs):
        return self.openai.chat.completions.create(model="gpt-mock", messages=MESSAGES, **kwargs)

    def message(self, **kwargs):
        return self.anthropic.messages.create(model="claude-mock", messages=MESSAGES, **kwargs)


def fast(**kwargs) -> MockConfig:
    return MockConfig(ttft_ms=0, itl_ms=0, **kwargs)


# --- config -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"jitter": 1.5},  # jitter is a fraction in [0, 1]
        {"ttft_ms": -1},  # no negative times
        {"tokens_per_chunk": 0},  # at least one token per delta
        {"default_output_tokens": 0},
        {"faults": [{"kind": "http_429", "probability": 1.1}]},  # probability in [0, 1]
        {"faults": [{"kind": "stall", "start_s": -1}]},
        {"faults": [{"kind": "stall", "retry_after_s": 1}]},  # Retry-After only on status faults
        {"faults": [{"kind": "http_418"}]},  # unknown kind
        {"ttft": 5},  # unknown key
    ],
)
def test_config_rejects_out_of_range_values(bad):
    with pytest.raises(ValidationError):
        MockConfig.model_validate(bad)


def test_all_exports_public_api():
    assert sorted(mock_llm.__all__) == ["FaultSpec", "MockConfig", "create_app", "serve"]
    for name in mock_llm.__all__:
        assert getattr(mock_llm, name)


# --- OpenAI ---------------------------------------------------------------------------------


def test_openai_non_stream_honours_max_tokens_and_reports_usage():
    async def go():
        mock = Mock(fast())
        full = await mock.chat(max_tokens=7)
        preferred = await mock.chat(max_tokens=7, max_completion_tokens=4)
        default = await mock.chat()
        return full, preferred, default

    full, preferred, default = run(go())
    assert full.id.startswith("chatcmpl-") and full.model == "gpt-mock" and full.object == "chat.completion"
    choice = full.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant" and choice.message.refusal is None
    assert len(choice.message.content.split()) == 7
    assert (full.usage.prompt_tokens, full.usage.completion_tokens, full.usage.total_tokens) == (4, 7, 11)
    assert len(preferred.choices[0].message.content.split()) == 4  # max_completion_tokens wins
    assert len(default.choices[0].message.content.split()) == 100  # default_output_tokens


def test_openai_stream_role_chunk_first_then_content_then_usage_only_chunk():
    async def go():
        mock = Mock(fast(tokens_per_chunk=3))
        stream = await mock.chat(max_tokens=10, stream=True, stream_options={"include_usage": True})
        return [chunk async for chunk in stream]

    chunks = run(go())
    first, *content, finish, usage = chunks
    assert first.choices[0].delta.role == "assistant" and first.choices[0].delta.content == ""
    assert len(content) == 4  # ceil(10 / 3) deltas
    assert all(c.choices[0].delta.content and c.choices[0].finish_reason is None for c in content)
    assert len("".join(c.choices[0].delta.content for c in content).split()) == 10
    assert finish.choices[0].finish_reason == "stop" and finish.choices[0].delta.content is None
    assert usage.choices == [] and usage.usage.completion_tokens == 10
    assert {c.id for c in chunks} == {first.id} and all(c.object == "chat.completion.chunk" for c in chunks)


def test_openai_stream_without_include_usage_has_no_usage_chunk():
    async def go():
        stream = await Mock(fast()).chat(max_tokens=3, stream=True)
        return [chunk async for chunk in stream]

    chunks = run(go())
    assert len(chunks) == 5  # role, 3 content, finish
    assert all(c.usage is None and c.choices for c in chunks)


def test_openai_stream_helper_final_completion():
    async def go():
        mock = Mock(fast())
        async with mock.openai.chat.completions.stream(model="gpt-mock", messages=MESSAGES, max_tokens=6) as stream:
            return await stream.get_final_completion()

    final = run(go())
    assert final.choices[0].finish_reason == "stop"
    assert len(final.choices[0].message.content.split()) == 6


# --- Anthropic ------------------------------------------------------------------------------


def test_anthropic_non_stream_message():
    async def go():
        return await Mock(fast()).message(max_tokens=9, system="be brief")

    msg = run(go())
    assert msg.id.startswith("msg_") and msg.type == "message" and msg.role == "assistant"
    assert msg.model == "claude-mock" and msg.stop_reason == "end_turn" and msg.stop_sequence is None
    assert len(msg.content) == 1 and len(msg.content[0].text.split()) == 9
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (6, 9)  # 4 message + 2 system words


def test_anthropic_stream_event_sequence():
    async def go():
        stream = await Mock(fast(tokens_per_chunk=2)).message(max_tokens=5, stream=True)
        return [event async for event in stream]

    events = run(go())
    types = [e.type for e in events]  # the SDK drops ping
    assert types == ["message_start", "content_block_start"] + ["content_block_delta"] * 3 + [
        "content_block_stop", "message_delta", "message_stop"
    ]
    assert events[0].message.usage.input_tokens == 4 and events[0].message.usage.output_tokens == 1
    assert len("".join(e.delta.text for e in events[2:5]).split()) == 5
    assert events[-2].delta.stop_reason == "end_turn" and events[-2].usage.output_tokens == 5


def test_anthropic_stream_helper_final_message():
    async def go():
        mock = Mock(fast())
        async with mock.anthropic.messages.stream(model="claude-mock", messages=MESSAGES, max_tokens=8) as stream:
            return await stream.get_final_message(), await stream.get_final_text()

    final, text = run(go())
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 8
    assert len(text.split()) == 8


def test_bad_requests_get_each_dialects_400():
    async def go():
        mock = Mock(fast())
        no_max = await mock.http.post("/v1/messages", json={"model": "c", "messages": MESSAGES})
        bad_json = await mock.http.post("/v1/chat/completions", content=b"{nope")
        return no_max, bad_json

    no_max, bad_json = run(go())
    assert no_max.status_code == 400 and "request-id" in no_max.headers
    assert no_max.json()["type"] == "error" and no_max.json()["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in no_max.json()["error"]["message"]
    assert bad_json.status_code == 400 and bad_json.json()["error"]["type"] == "invalid_request_error"


# --- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "openai_error", "anthropic_error"),
    [
        ("http_429", 429, openai.RateLimitError, anthropic.RateLimitError),
        ("http_500", 500, openai.InternalServerError, anthropic.InternalServerError),
        ("http_502", 502, openai.InternalServerError, anthropic.InternalServerError),
        ("http_503", 503, openai.InternalServerError, anthropic.ServiceUnavailableError),
        ("overloaded_529", 529, openai.InternalServerError, anthropic.OverloadedError),
    ],
)
def test_status_faults_raise_the_sdk_error(kind, status, openai_error, anthropic_error):
    async def go():
        mock = Mock(fast(faults=[FaultSpec(kind=kind, retry_after_s=1.5)]))
        with pytest.raises(openai_error) as oa:
            await mock.chat(max_tokens=3)
        with pytest.raises(anthropic_error) as an:
            await mock.message(max_tokens=3, stream=True)
        return oa.value, an.value, mock.app.stats()

    oa, an, stats = run(go())
    assert oa.status_code == status and an.status_code == status
    assert oa.response.headers["retry-after"] == "1.5" and an.response.headers["retry-after-ms"] == "1500"
    assert an.body["type"] == "error" and "request-id" in an.response.headers
    assert stats["faults"][kind] == 2


def test_stream_error_fault_raises_mid_stream_and_500_without_stream():
    async def go():
        mock = Mock(fast(faults=[FaultSpec(kind="stream_error")]))
        seen = []
        with pytest.raises(openai.APIError) as oa:
            async for chunk in await mock.chat(max_tokens=10, stream=True):
                seen.extend(c.delta.content for c in chunk.choices if c.delta.content)
        texts = []
        with pytest.raises(anthropic.APIStatusError) as an:
            async for event in await mock.message(max_tokens=10, stream=True):
                if event.type == "content_block_delta":
                    texts.append(event.delta.text)
        with pytest.raises(openai.InternalServerError):
            await mock.chat(max_tokens=10)
        return seen, oa.value, texts, an.value

    seen, oa, texts, an = run(go())
    assert len(seen) == 5 and len(texts) == 5  # half of the 10 deltas, then the error
    assert oa.body["code"] == "stream_error"
    assert an.body["error"]["type"] == "overloaded_error"


def test_stream_cut_fault_is_a_connection_error():
    async def go():
        mock = Mock(fast(faults=[FaultSpec(kind="stream_cut")]))
        with pytest.raises(openai.APIConnectionError):
            await mock.chat(max_tokens=10, stream=True)  # ASGITransport buffers, so it fails at once
        with pytest.raises(anthropic.APIConnectionError):
            await mock.message(max_tokens=10)
        return mock.app.stats()

    assert run(go())["faults"]["stream_cut"] == 2


def test_fault_probability_is_seeded_per_request():
    def pattern(seed: int) -> list[int]:
        async def go():
            mock = Mock(fast(seed=seed, faults=[FaultSpec(kind="http_500", probability=0.5)]))
            out = []
            for _ in range(40):
                body = {"model": "m", "messages": MESSAGES, "max_tokens": 1}
                response = await mock.http.post("/v1/chat/completions", json=body)
                out.append(response.status_code)
            return out

        return run(go())

    first = pattern(7)
    assert first == pattern(7)  # same seed, same request sequence -> same faults
    assert 5 < first.count(500) < 35
    assert first != pattern(8)


def test_fault_window_is_relative_to_first_request():
    # A 429 window of 0.15 s from the first request: still open 149 ms later, closed at 150.
    virtual = VirtualClock()

    async def go():
        mock = Mock(fast(faults=[FaultSpec(kind="http_429", start_s=0.0, duration_s=0.15)]), clock=virtual)
        with pytest.raises(openai.RateLimitError):
            await mock.chat(max_tokens=1)  # opens the window
        await asyncio.sleep(0.149)
        with pytest.raises(openai.RateLimitError):
            await mock.chat(max_tokens=1)
        await asyncio.sleep(0.001)
        return await mock.chat(max_tokens=1)  # window closed

    assert virtual.run(go()).choices[0].finish_reason == "stop"


def test_stall_fault_delays_requests_arriving_in_its_window():
    # A 0.3 s stall from the first request holds it exactly that long; the next, after it, not at all.
    virtual = VirtualClock()

    async def go():
        mock = Mock(fast(faults=[FaultSpec(kind="stall", duration_s=0.3)]), clock=virtual)
        t0 = virtual.now_ns()
        await mock.chat(max_tokens=2)
        first = virtual.now_ns() - t0
        t0 = virtual.now_ns()
        await mock.chat(max_tokens=2)  # after the window
        return first, virtual.now_ns() - t0, mock.app.stats()

    first, second, stats = virtual.run(go())
    assert (first, second) == (300 * MS, 0)
    assert stats["faults"]["stall"] == 1


def test_control_stall_holds_new_and_in_flight_responses():
    virtual = VirtualClock()

    async def go():
        mock = Mock(MockConfig(ttft_ms=100, itl_ms=0), clock=virtual)
        t0 = virtual.now_ns()

        async def timed_chat() -> int:
            await mock.chat(max_tokens=1)
            return virtual.now_ns() - t0

        in_flight = asyncio.ensure_future(timed_chat())  # due at 0.1 s
        await asyncio.sleep(0.02)
        stall = await mock.http.post("/_mock/stall", json={"seconds": 0.3})  # stalled until 0.32 s
        late = await timed_chat()  # arrives in the stall: held until it ends, then 0.1 s TTFT
        return stall.status_code, await in_flight, late, mock.app.stats()

    status, in_flight, late, stats = virtual.run(go())
    assert status == 200
    assert in_flight == 320 * MS  # due at 0.1 s, held to the stall's end
    assert late == 420 * MS  # its TTFT counted from the stall's end
    assert stats["faults"]["stall"] == 2


def test_stats_arrivals_and_reset():
    async def go():
        mock = Mock(fast())
        await mock.chat(max_tokens=1)
        async for _ in await mock.message(max_tokens=1, stream=True):
            pass
        stats = (await mock.http.get("/_mock/stats")).json()
        arrivals = (await mock.http.get("/_mock/arrivals")).json()["arrivals_ns"]
        health = (await mock.http.get("/healthz")).json()
        await mock.http.post("/_mock/reset")
        after = (await mock.http.get("/_mock/stats")).json()
        return stats, arrivals, health, after

    stats, arrivals, health, after = run(go())
    assert stats["requests"] == 2 and stats["by_api"] == {"openai": 1, "anthropic": 1}
    assert stats["streaming"] == 1 and stats["in_flight"] == 0
    assert stats["first_request_ns"] == arrivals[0] and len(arrivals) == 2 and arrivals[0] <= arrivals[1]
    assert health == {"ok": True}
    assert after["requests"] == 0 and after["first_request_ns"] is None and sum(after["faults"].values()) == 0


def test_control_routes_refuse_non_loopback_clients():
    async def go():
        mock = Mock(fast(), client_addr="10.1.2.3")
        return (await mock.http.get("/_mock/stats")).status_code, (await mock.http.get("/healthz")).status_code

    assert run(go()) == (403, 200)


# --- latency model --------------------------------------------------------------------------


def test_latency_is_deterministic_per_seed_and_request():
    model = LatencyModel(MockConfig(seed=3, ttft_ms=50, itl_ms=2, jitter=0.5))
    first = list(islice(model.gaps(11), 20))
    assert first == list(islice(model.gaps(11), 20))  # same seed and sequence number
    assert first != list(islice(model.gaps(12), 20))  # next request differs
    assert first != list(islice(LatencyModel(MockConfig(seed=4, jitter=0.5)).gaps(11), 20))
    assert 25_000_000 <= first[0] <= 75_000_000  # 50 ms * (1 +/- 0.5)
    assert all(1_000_000 <= gap <= 3_000_000 for gap in first[1:])
    assert model.total_ns(11, 20) == sum(first)


def test_latency_without_jitter_is_exact():
    model = LatencyModel(MockConfig(ttft_ms=50, itl_ms=2))
    assert list(islice(model.gaps(0), 3)) == [50_000_000, 2_000_000, 2_000_000]
    assert model.total_ns(0, 10) == 50_000_000 + 9 * 2_000_000


def test_non_stream_response_takes_ttft_plus_gaps():
    virtual = VirtualClock()

    async def go():
        mock = Mock(MockConfig(ttft_ms=60, itl_ms=10), clock=virtual)
        t0 = virtual.now_ns()
        await mock.chat(max_tokens=5)
        return virtual.now_ns() - t0

    assert virtual.run(go()) == 100 * MS  # 60 ms + 4 * 10 ms


# --- a real server --------------------------------------------------------------------------


class Server:
    """The mock served by `serve()` in a subprocess, stopped with SIGTERM."""

    def __init__(self, config: MockConfig) -> None:
        code = (
            "import sys; from loadgen.mock_llm import MockConfig, serve; "
            "serve(MockConfig.model_validate_json(sys.argv[1]), on_ready=lambda p: print(p, flush=True)); "
            "print('stopped', flush=True)"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, config.model_dump_json()], cwd=REPO, stdout=subprocess.PIPE, text=True
        )
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=10)
        return self.proc.returncode, out

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.mark.e2e
def test_real_server_streams_on_schedule_and_stops_on_sigterm():
    async def go(url: str):
        client = openai.AsyncOpenAI(api_key="test", base_url=url + "/v1", max_retries=0)
        # A first, untimed call builds the SDK's lazy imports and the connection.
        await client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=1)
        t0 = time.perf_counter()
        arrivals = []
        stream = await client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=5, stream=True)
        async for chunk in stream:
            arrivals.append((time.perf_counter() - t0, chunk.choices[0].delta.content if chunk.choices else None))
        await client.close()
        return arrivals

    with Server(MockConfig(ttft_ms=150, itl_ms=20)) as server:
        arrivals = run(go(server.url))
        code, out = server.stop()
    role_at, role_text = arrivals[0]
    first_token_at = next(t for t, text in arrivals if text)
    # The server holds the first token for the TTFT and each next one for the gap; the
    # role-only chunk goes at once. Upper bounds are loose: this machine is shared.
    assert role_text == "" and role_at < first_token_at - 0.1
    assert 0.149 < first_token_at < 1.0
    assert 0.149 + 4 * 0.02 < arrivals[-1][0] < first_token_at + 1.0
    assert code == 0 and out.split() == ["stopped"]  # serve() returned after SIGTERM


@pytest.mark.e2e
def test_real_server_stream_cut_drops_the_connection():
    async def go(url: str):
        oa = openai.AsyncOpenAI(api_key="test", base_url=url + "/v1", max_retries=0)
        an = anthropic.AsyncAnthropic(api_key="test", base_url=url, max_retries=0, open_telemetry=False)
        seen = []
        with pytest.raises(openai.APIConnectionError):
            stream = await oa.chat.completions.create(model="m", messages=MESSAGES, max_tokens=10, stream=True)
            async for chunk in stream:
                seen.extend(c.delta.content for c in chunk.choices if c.delta.content)
        texts = []
        # anthropic 2.x does not wrap transport errors raised while iterating a stream.
        with pytest.raises(httpx2.RemoteProtocolError):
            async for event in await an.messages.create(model="c", messages=MESSAGES, max_tokens=10, stream=True):
                if event.type == "content_block_delta":
                    texts.append(event.delta.text)
        async with httpx2.AsyncClient(base_url=url) as http:
            stats = (await http.get("/_mock/stats")).json()
        await oa.close()
        await an.close()
        return seen, texts, stats

    with Server(MockConfig(ttft_ms=0, itl_ms=1, faults=[FaultSpec(kind="stream_cut")])) as server:
        seen, texts, stats = run(go(server.url))
        code, _ = server.stop()
    assert len(seen) == 5 and len(texts) == 5  # half the deltas, then the connection drops
    assert stats["faults"]["stream_cut"] == 2 and stats["in_flight"] == 0
    assert code == 0
