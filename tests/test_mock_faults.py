"""The mock LLM's fault-matrix support: windows placed on command, the malformed_json, no_usage and
http_502 faults as the raw client and the real SDKs see them, and the fault log.

In-process through httpx2.ASGITransport, as in test_mock_llm.py; tests that place a
window in time run on a virtual clock (clock.VirtualClock), where arrivals are exact.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import anthropic
import openai
import pytest
from pydantic import ValidationError

import loadgen.mock_llm.faults as mock_faults
from loadgen.clock import VirtualClock
from loadgen.mock_llm import FaultSpec, MockConfig
from tests.test_mock_llm import MESSAGES, Mock, fast, run

S = 1_000_000_000


async def _post_at(mock: Mock, virtual: VirtualClock, at_ns: int) -> int:
    """The status of a chat request sent at virtual time `at_ns`."""
    await asyncio.sleep((at_ns - virtual.now_ns()) / 1e9)
    body = {"model": "m", "messages": MESSAGES, "max_tokens": 1}
    return (await mock.http.post("/v1/chat/completions", json=body)).status_code


def _sse_data(text: str) -> list[str]:
    """The data of each SSE event of a response body, in order."""
    return [line[len("data: "):] for line in text.split("\n") if line.startswith("data: ")]


def _is_json(text: str | bytes) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


# --- windows placed on command ----------------------------------------------------------------


def test_armed_windows_wait_for_the_arm_then_hit_exactly_their_window():
    # faults_from="armed", a 429 from 1 s to 3 s after t0: traffic before the arm is never
    # faulted; after it, exactly the arrivals in [t0 + 1 s, t0 + 3 s) are.
    virtual = VirtualClock()
    spec = FaultSpec(kind="http_429", start_s=1, duration_s=2)

    async def go():
        mock = Mock(fast(faults=[spec], faults_from="armed"), clock=virtual)
        start = virtual.now_ns()
        before = [await _post_at(mock, virtual, start + d) for d in (0, 1 * S, 2 * S)]  # warm-up: no window yet
        unplaced = (await mock.http.get("/_mock/stats")).json()["fault_windows"]
        t0 = virtual.now_ns() + 10 * S
        armed = (await mock.http.post("/_mock/arm", json={"t0_ns": t0})).json()
        after = [await _post_at(mock, virtual, t0 + d) for d in (0, S - 1, S, 3 * S - 1, 3 * S)]
        placed = (await mock.http.get("/_mock/stats")).json()["fault_windows"]
        # re-placed, at a t0 in the past: the window is open now
        await mock.http.post("/_mock/arm", json={"t0_ns": virtual.now_ns() - 2 * S})
        reset = [await _post_at(mock, virtual, virtual.now_ns())]
        await mock.http.post("/_mock/reset")  # disarms: with "armed", traffic does not place them again
        reset += [await _post_at(mock, virtual, virtual.now_ns() + d) for d in (0, S)]
        unplaced_again = (await mock.http.get("/_mock/stats")).json()["fault_windows"]
        return before, unplaced + unplaced_again, t0, armed, after, placed, reset

    before, unplaced, t0, armed, after, placed, reset = virtual.run(go())
    assert before == [200, 200, 200] and unplaced == []
    window = [{"kind": "http_429", "start_ns": t0 + S, "end_ns": t0 + 3 * S}]
    assert armed == {"ok": True, "windows": window} and placed == window
    # t0, 1 ns before the window, its first ns, its last ns, its end
    assert after == [200, 200, 429, 429, 200]
    assert reset == [429, 200, 200]


def test_arm_re_places_windows_placed_by_the_first_request():
    # faults_from="first_request": the first request places [T + 1 s, T + 2 s); an arm at
    # t0 = T + 5 s moves it to [T + 6 s, T + 7 s), and later traffic does not move it back.
    virtual = VirtualClock()

    async def go():
        mock = Mock(fast(faults=[FaultSpec(kind="http_500", start_s=1, duration_s=1)]), clock=virtual)
        first = virtual.now_ns()
        statuses = [await _post_at(mock, virtual, first)]
        armed = (await mock.http.post("/_mock/arm", json={"t0_ns": first + 5 * S})).json()
        statuses += [await _post_at(mock, virtual, first + d) for d in (1.5 * S, 6.5 * S, 7 * S)]
        return first, armed, statuses

    first, armed, statuses = virtual.run(go())
    assert armed["windows"] == [{"kind": "http_500", "start_ns": first + 6 * S, "end_ns": first + 7 * S}]
    assert statuses == [200, 200, 500, 200]


def test_open_ended_window_has_no_end():
    async def go():
        mock = Mock(fast(faults=[FaultSpec(kind="stall", start_s=0.5)], faults_from="armed"))
        return (await mock.http.post("/_mock/arm", json={"t0_ns": 7})).json()

    assert run(go())["windows"] == [{"kind": "stall", "start_ns": 500_000_007, "end_ns": None}]


@pytest.mark.parametrize("body", [
    b"",  # no body
    b"{}",  # no t0_ns
    b'{"t0_ns": "12"}',  # a string
    b'{"t0_ns": 1.5}',  # not an integer
    b'{"t0_ns": true}',  # a bool is no integer
    b'{"t0_ns": -1}',  # monotonic_ns() is never negative
    b"[12]",  # not an object
])
def test_arm_rejects_a_bad_body_with_a_clear_error(body):
    async def go():
        mock = Mock(fast(faults=[FaultSpec(kind="http_500")], faults_from="armed"))
        answer = await mock.http.post("/_mock/arm", content=body)
        return answer, (await mock.http.get("/_mock/stats")).json()

    answer, stats = run(go())
    assert answer.status_code == 400 and "t0_ns" in answer.json()["error"]
    assert stats["fault_windows"] == []


def test_faults_from_takes_only_its_two_values():
    assert MockConfig(faults_from="armed").faults_from == "armed"
    with pytest.raises(ValidationError):
        MockConfig(faults_from="first_export")


# --- malformed_json -------------------------------------------------------------------------------

CREATE = {"openai": "chat", "anthropic": "message"}
PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}


def _raw(api: str, stream: bool, tokens: int = 10, **extra) -> dict:
    return {"model": "m", "messages": MESSAGES, "max_tokens": tokens, "stream": stream, **extra}


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_malformed_json_without_streaming_is_a_whole_message_with_half_a_body(api):
    async def go():
        faulted, clean = Mock(fast(faults=[FaultSpec(kind="malformed_json")])), Mock(fast())
        broken = await faulted.http.post(PATHS[api], json=_raw(api, False))
        whole = await clean.http.post(PATHS[api], json=_raw(api, False))
        return broken, whole

    broken, whole = run(go())
    assert broken.status_code == 200 and broken.headers["content-type"] == "application/json"
    assert int(broken.headers["content-length"]) == len(broken.content)  # the whole HTTP message arrived
    assert not _is_json(broken.content) and _is_json(whole.content)
    assert len(broken.content) == len(whole.content) // 2  # the first half of the same completion
    assert whole.content.startswith(broken.content[:8])


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_malformed_json_streaming_is_one_broken_event_half_way_then_the_tail(api):
    async def go():
        mock = Mock(fast(faults=[FaultSpec(kind="malformed_json")]))
        return await mock.http.post(PATHS[api], json=_raw(api, True))

    answer = run(go())
    assert answer.status_code == 200
    data = _sse_data(answer.text)
    broken = [i for i, text in enumerate(data) if text != "[DONE]" and not _is_json(text)]
    assert len(broken) == 1
    before, after = data[: broken[0]], data[broken[0] + 1:]
    if api == "openai":
        deltas = [d for d in before if json.loads(d)["choices"][0]["delta"].get("content")]
        assert [json.loads(after[0])["choices"][0]["finish_reason"], after[1]] == ["stop", "[DONE]"]
    else:
        deltas = [d for d in before if json.loads(d)["type"] == "content_block_delta"]
        assert [json.loads(d)["type"] for d in after] == ["content_block_stop", "message_delta", "message_stop"]
    assert len(deltas) == 5  # half of the 10 deltas


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_malformed_json_raises_json_decode_error_from_either_sdk(api):
    # Neither SDK wraps it in its APIError: it is json.JSONDecodeError, from create() or,
    # streaming, from the iteration, after the events before it (the stream helpers too).
    async def go():
        mock = Mock(fast(faults=[FaultSpec(kind="malformed_json")]))
        create = getattr(mock, CREATE[api])
        with pytest.raises(json.JSONDecodeError):
            await create(max_tokens=10)
        texts = []
        with pytest.raises(json.JSONDecodeError):
            async for item in await create(max_tokens=10, stream=True):
                if api == "openai":
                    texts.extend(c.delta.content for c in item.choices if c.delta.content)
                elif item.type == "content_block_delta":
                    texts.append(item.delta.text)
        client = mock.openai.chat.completions if api == "openai" else mock.anthropic.messages
        model = "gpt-mock" if api == "openai" else "claude-mock"
        with pytest.raises(json.JSONDecodeError):
            async with client.stream(model=model, messages=MESSAGES, max_tokens=10) as stream:
                async for _ in stream:
                    pass
        return texts, mock.app.stats()["faults"]["malformed_json"]

    texts, counted = run(go())
    assert len(texts) == 5 and counted == 3


# --- no_usage ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_no_usage_leaves_out_only_the_usage(api):
    async def go():
        mock = Mock(fast(faults=[FaultSpec(kind="no_usage")]))
        whole = await mock.http.post(PATHS[api], json=_raw(api, False))
        streamed = await mock.http.post(PATHS[api], json=_raw(api, True, stream_options={"include_usage": True})
                                        if api == "openai" else _raw(api, True))
        return whole.json(), _sse_data(streamed.text)

    whole, data = run(go())
    assert "usage" not in whole
    if api == "openai":
        assert len(whole["choices"][0]["message"]["content"].split()) == 10
        chunks = [json.loads(d) for d in data[:-1]]
        assert data[-1] == "[DONE]" and chunks[-1]["choices"][0]["finish_reason"] == "stop"
        assert all("usage" not in c and c["choices"] for c in chunks)  # no usage-only chunk, though asked for
        assert len("".join(c["choices"][0]["delta"].get("content") or "" for c in chunks).split()) == 10
    else:
        assert len(whole["content"][0]["text"].split()) == 10
        events = [json.loads(d) for d in data]
        assert [e["type"] for e in events[-3:]] == ["content_block_stop", "message_delta", "message_stop"]
        assert "usage" not in events[-2] and events[-2]["delta"]["stop_reason"] == "end_turn"
        assert events[0]["message"]["usage"]["output_tokens"] == 1  # message_start keeps its usage
        assert sum(e["type"] == "content_block_delta" for e in events) == 10


def test_no_usage_through_the_openai_sdk_is_usage_none():
    async def go():
        mock = Mock(fast(faults=[FaultSpec(kind="no_usage")]))
        whole = await mock.chat(max_tokens=6)
        chunks = [c async for c in await mock.chat(max_tokens=6, stream=True, stream_options={"include_usage": True})]
        async with mock.openai.chat.completions.stream(model="gpt-mock", messages=MESSAGES, max_tokens=6,
                                                       stream_options={"include_usage": True}) as stream:
            final = await stream.get_final_completion()
        return whole, chunks, final

    whole, chunks, final = run(go())
    assert whole.usage is None and len(whole.choices[0].message.content.split()) == 6
    assert all(c.usage is None for c in chunks) and chunks[-1].choices[0].finish_reason == "stop"
    assert final.usage is None and len(final.choices[0].message.content.split()) == 6


def test_no_usage_through_the_anthropic_sdk_crashes_only_its_stream_helper():
    async def go():
        mock = Mock(fast(faults=[FaultSpec(kind="no_usage")]))
        whole = await mock.message(max_tokens=6)
        events = [e async for e in await mock.message(max_tokens=6, stream=True)]
        with pytest.raises(AttributeError, match="output_tokens"):
            async with mock.anthropic.messages.stream(model="claude-mock", messages=MESSAGES, max_tokens=6) as stream:
                await stream.get_final_message()
        return whole, events

    whole, events = run(go())
    assert whole.usage is None and len(whole.content[0].text.split()) == 6
    delta = next(e for e in events if e.type == "message_delta")
    assert delta.usage is None and delta.delta.stop_reason == "end_turn" and events[-1].type == "message_stop"


# --- the fault log ------------------------------------------------------------------------------


def _seen(api: str, stream: bool, status: int, content: bytes) -> str | None:
    """The fault a raw client saw in one answer, or None: how loadgen's error counts would see it."""
    if status == 429:
        return "http_429"
    if status == 500:
        return "stream_error"  # without streaming, stream_error is a 500
    if not stream:
        if not _is_json(content):
            return "malformed_json"
        return None if "usage" in json.loads(content) else "no_usage"
    data = [d for d in _sse_data(content.decode()) if d != "[DONE]"]
    if not all(_is_json(d) for d in data):
        return "malformed_json"
    events = [json.loads(d) for d in data]
    if any("error" in e for e in events):
        return "stream_error"
    usage = any(e.get("usage") for e in events) if api == "openai" else "usage" in events[-2]
    return None if usage else "no_usage"


def test_fault_log_has_one_entry_per_faulted_request_and_agrees_with_the_counters():
    # Four response faults hit each request with probability 0.2 each, and a stall holds
    # the first 0.3 s of responses: the log says which request got which, as the client saw it.
    virtual = VirtualClock()
    specs = [FaultSpec(kind=kind, probability=0.2) for kind in ("http_429", "stream_error", "malformed_json",
                                                                 "no_usage")]
    specs.append(FaultSpec(kind="stall", duration_s=0.3))

    async def go():
        mock = Mock(MockConfig(ttft_ms=100, itl_ms=0, seed=3, faults=specs), clock=virtual)
        start = virtual.now_ns()
        seen = {}
        for seq in range(60):
            api, stream = ("openai", "anthropic")[seq % 2], seq % 4 >= 2
            extra = {"stream_options": {"include_usage": True}} if api == "openai" and stream else {}
            answer = await mock.http.post(PATHS[api], json=_raw(api, stream, 4, **extra))
            seen[seq] = (api, stream, _seen(api, stream, answer.status_code, answer.content))
        return start, seen, (await mock.http.get("/_mock/faults")).json(), mock.app.stats()["faults"]

    start, seen, log, counters = virtual.run(go())
    entries = log["faults"]
    assert log["dropped"] == 0 and Counter(e["kind"] for e in entries) == +Counter(counters)
    faulted = {e["seq"]: (e["api"], e["stream"], e["kind"]) for e in entries if e["kind"] != "stall"}
    assert faulted == {seq: got for seq, got in seen.items() if got[2] is not None}
    assert len(faulted) > 20 and {kind for _, _, kind in faulted.values()} == {
        "http_429", "stream_error", "malformed_json", "no_usage"}
    # the stall holds request 0 to 0.3 s; request 1 arrives after it, at 0.4 s (0.1 s TTFT)
    stalls = [e for e in entries if e["kind"] == "stall"]
    assert stalls == [{"seq": 0, "arrival_ns": start, "kind": "stall", "api": "openai", "stream": False}]


def test_fault_log_keeps_the_newest_entries_counts_the_dropped_and_is_cleared_by_reset(monkeypatch):
    monkeypatch.setattr(mock_faults, "MAX_FAULT_LOG", 3)

    async def go():
        mock = Mock(fast(faults=[FaultSpec(kind="http_502")]))
        for _ in range(5):
            await mock.http.post("/v1/messages", json=_raw("anthropic", False, 1))
        full = (await mock.http.get("/_mock/faults")).json()
        await mock.http.post("/_mock/reset")
        return full, (await mock.http.get("/_mock/faults")).json()

    full, cleared = run(go())
    assert [e["seq"] for e in full["faults"]] == [2, 3, 4] and full["dropped"] == 2
    assert full["faults"][0] == {"seq": 2, "arrival_ns": full["faults"][0]["arrival_ns"], "kind": "http_502",
                                 "api": "anthropic", "stream": False}
    assert cleared == {"faults": [], "dropped": 0}
