"""The collector's fault-matrix support: windows placed on command, every export attempt
attributed to its run with its outcome, and spans with an ERROR status counted.

In-process through httpx2.ASGITransport, as in test_collector.py (and one request driven
straight through the ASGI interface, to hang up during a delay); tests that place a
window in time run on a virtual clock (clock.VirtualClock), where arrivals are exact.
"""

from __future__ import annotations

import asyncio
import gzip

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.trace import Status, StatusCode
from pydantic import ValidationError

import loadgen.collector.figures as collector_figures
from loadgen.clock import VirtualClock
from loadgen.collector import CollectorConfig, CollectorFault
from tests.test_collector import GENAI, PROTOBUF, Collector, Spans, json_body, json_span, run

S = 1_000_000_000


def armed(*faults: CollectorFault, clock: VirtualClock | None = None) -> Collector:
    return Collector(CollectorConfig(faults=list(faults), faults_from="armed"), clock=clock)


async def _export_at(c: Collector, virtual: VirtualClock, at_ns: int, body: bytes = b"", **kwargs) -> int:
    """The status of an export sent at virtual time `at_ns` (0 for a reset connection)."""
    await asyncio.sleep((at_ns - virtual.now_ns()) / 1e9)
    try:
        return (await c.export(body, **kwargs)).status_code
    except Exception:  # the reset and down faults: no answer at all
        return 0


def _two_operations(run_id: str = "r1") -> bytes:
    spans = Spans(run_id)
    spans.operation(0)
    spans.operation(1)
    return spans.body()  # 4 spans


# --- windows placed on command ----------------------------------------------------------------


def test_armed_windows_wait_for_the_arm_then_hit_exactly_their_window():
    # faults_from="armed", a 429 from 1 s to 3 s after t0: exports before the arm are never
    # faulted; after it, exactly the arrivals in [t0 + 1 s, t0 + 3 s) are; a reset disarms.
    virtual = VirtualClock()

    async def go():
        c = armed(CollectorFault(kind="http_429", start_s=1, duration_s=2), clock=virtual)
        start = virtual.now_ns()
        before = [await _export_at(c, virtual, start + d) for d in (0, S, 2 * S)]
        unplaced = (await c.stats())["fault_windows"]
        t0 = virtual.now_ns() + 10 * S
        answer = (await c.http.post("/_collector/arm", json={"t0_ns": t0})).json()
        after = [await _export_at(c, virtual, t0 + d) for d in (0, S - 1, S, 3 * S - 1, 3 * S)]
        placed = (await c.stats())["fault_windows"]
        await c.http.post("/_collector/arm", json={"t0_ns": virtual.now_ns() - 2 * S})  # open now
        reset = [await _export_at(c, virtual, virtual.now_ns())]
        await c.http.post("/_collector/reset")
        reset += [await _export_at(c, virtual, virtual.now_ns() + d) for d in (0, S)]
        return before, unplaced, t0, answer, after, placed, reset, (await c.stats())["fault_windows"]

    before, unplaced, t0, answer, after, placed, reset, unplaced_again = virtual.run(go())
    assert before == [200, 200, 200] and unplaced == [] == unplaced_again
    window = [{"kind": "http_429", "start_ns": t0 + S, "end_ns": t0 + 3 * S}]
    assert answer == {"ok": True, "windows": window} and placed == window
    # t0, 1 ns before the window, its first ns, its last ns, its end
    assert after == [200, 200, 429, 429, 200]
    assert reset == [429, 200, 200]


def test_arm_re_places_windows_placed_by_the_first_export():
    # faults_from="first_request": the first export places [T + 1 s, T + 2 s); an arm at
    # t0 = T + 5 s moves it to [T + 6 s, T + 7 s), and later exports do not move it back.
    virtual = VirtualClock()

    async def go():
        c = Collector(CollectorConfig(faults=[CollectorFault(kind="http_503", start_s=1, duration_s=1)]), clock=virtual)
        first = virtual.now_ns()
        statuses = [await _export_at(c, virtual, first)]
        answer = (await c.http.post("/_collector/arm", json={"t0_ns": first + 5 * S})).json()
        statuses += [await _export_at(c, virtual, first + d) for d in (1.5 * S, 6.5 * S, 7 * S)]
        return first, answer, statuses

    first, answer, statuses = virtual.run(go())
    assert answer["windows"] == [{"kind": "http_503", "start_ns": first + 6 * S, "end_ns": first + 7 * S}]
    assert statuses == [200, 200, 503, 200]


@pytest.mark.parametrize("body", [b"", b'{"t0": 5}', b'{"t0_ns": 2.5}', b'{"t0_ns": false}', b'{"t0_ns": -4}', b"7"])
def test_arm_rejects_a_bad_body_with_a_clear_error(body):
    async def go():
        c = armed(CollectorFault(kind="http_400"))
        return await c.http.post("/_collector/arm", content=body), await c.stats()

    answer, stats = run(go())
    assert answer.status_code == 400 and "t0_ns" in answer.json()["error"]
    assert stats["fault_windows"] == []


def test_open_ended_window_and_faults_from_values():
    async def go():
        return (await armed(CollectorFault(kind="down", start_s=2)).http.post("/_collector/arm",
                                                                              json={"t0_ns": 1})).json()

    assert run(go())["windows"] == [{"kind": "down", "start_ns": 2 * S + 1, "end_ns": None}]
    with pytest.raises(ValidationError):
        CollectorConfig(faults_from="armed_later")


# --- attempts ----------------------------------------------------------------------------------


def test_every_attempt_of_a_run_is_attributed_with_its_outcome_and_spans():
    # One fault a second, from t0; one export of run r1 in each second, then a clean one.
    virtual = VirtualClock()
    kinds = [CollectorFault(kind="http_429", retry_after_s=1), CollectorFault(kind="reset"),
             CollectorFault(kind="down"), CollectorFault(kind="http_400"),
             CollectorFault(kind="partial_success", reject_fraction=0.5), CollectorFault(kind="http_503"),
             CollectorFault(kind="http_413")]
    for second, fault in enumerate(kinds):
        fault.start_s, fault.duration_s = second, 1
    three_json = json_body([json_span(1, i + 1, f"s{i}", {}) for i in range(3)])
    bad_ids = json_body([json_span(2, 1, "s", {}) | {"spanId": "zz"}])  # decodes as far as its run: r1, 1 span

    async def go():
        c = armed(*kinds, clock=virtual)
        t0 = virtual.now_ns()
        await c.http.post("/_collector/arm", json={"t0_ns": t0})
        statuses = []
        for second in range(8):
            body, kwargs = _two_operations(), {}
            if second == 5:
                body, kwargs = three_json, {"content_type": "application/json"}
            elif second == 6:
                kwargs = {"compress": True}
            statuses.append(await _export_at(c, virtual, t0 + second * S + S // 2, body, **kwargs))
        statuses.append((await c.export(bad_ids, "application/json")).status_code)
        statuses.append((await c.export(b"\x0a\xff\xff")).status_code)  # no run id to be read: run ""
        log = (await c.http.get("/_collector/attempts", params={"run_id": "r1"})).json()
        return t0, statuses, await c.stats(), log

    t0, statuses, stats, log = virtual.run(go())
    assert statuses == [429, 0, 0, 400, 200, 503, 413, 200, 400, 400]
    r1, blank = stats["runs"]["r1"], stats["runs"][""]
    assert r1["attempts"] == 9
    assert r1["attempts_by_outcome"] == {"accepted": 2, "http_429": 1, "http_503": 1, "http_400": 1, "http_413": 1,
                                         "reset": 1, "down": 1, "abandoned": 0, "bad_request": 1}
    assert r1["spans_by_outcome"] == {"accepted": 8, "http_429": 4, "http_503": 3, "http_400": 4, "http_413": 4,
                                      "reset": 4, "down": 4, "abandoned": 0, "bad_request": 1}
    # only the accepted spans are received: 4 − 2 rejected, then 4
    assert (r1["spans_received"], r1["rejected_spans"], r1["requests"]) == (6, 2, 2)
    assert blank["attempts"] == blank["attempts_by_outcome"]["bad_request"] == 1 and blank["spans_received"] == 0
    outcomes = ["http_429", "reset", "down", "http_400", "accepted", "http_503", "http_413", "accepted"]
    assert log["run_id"] == "r1" and log["dropped"] == 0
    assert log["attempts"][:8] == [[t0 + s * S + S // 2, outcome, 3 if s == 5 else 4] for s, outcome in enumerate(outcomes)]
    assert log["attempts"][8][1:] == ["bad_request", 1]
    assert stats["faults"]["down"] == 1 and stats["requests"] == 9  # a down export is not a request served


def test_a_request_with_several_runs_is_an_attempt_on_each():
    async def go():
        c = Collector(CollectorConfig(faults=[CollectorFault(kind="http_503")]))
        a, b = Spans("a"), Spans("b")
        a.operation(0)
        a.operation(1)
        b.operation(0)
        await c.export(encode_spans(a.take() + b.take()).SerializeToString())
        return await c.stats()

    runs = run(go())["runs"]
    assert (runs["a"]["attempts"], runs["a"]["spans_by_outcome"]["http_503"]) == (1, 4)
    assert (runs["b"]["attempts"], runs["b"]["spans_by_outcome"]["http_503"]) == (1, 2)


def test_an_export_whose_client_hangs_up_during_a_delay_is_an_abandoned_attempt():
    # Driven straight through ASGI: the client sends its body, then hangs up at once.
    async def go():
        c = Collector(CollectorConfig(faults=[CollectorFault(kind="delay", delay_ms=10_000)]))
        messages = [{"type": "http.request", "body": gzip.compress(_two_operations()), "more_body": False},
                    {"type": "http.disconnect"}]

        async def receive():
            return messages.pop(0)

        sent = []

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/v1/traces", "query_string": b"",
                 "client": ("127.0.0.1", 40000),
                 "headers": [(b"content-type", PROTOBUF.encode()), (b"content-encoding", b"gzip")]}
        await c.app(scope, receive, send)
        return sent, await c.stats()

    sent, stats = run(go())
    assert sent == [] and stats["abandoned_requests"] == 1
    r1 = stats["runs"]["r1"]
    assert r1["attempts_by_outcome"]["abandoned"] == 1 and r1["spans_by_outcome"]["abandoned"] == 4
    assert r1["spans_received"] == 0


def test_attempt_log_is_bounded_needs_a_run_id_and_is_cleared_by_reset(monkeypatch):
    monkeypatch.setattr(collector_figures, "MAX_ATTEMPT_LOG", 2)

    async def go():
        c = Collector()
        for _ in range(3):
            await c.export(_two_operations())
        full = (await c.http.get("/_collector/attempts", params={"run_id": "r1"})).json()
        no_run = await c.http.get("/_collector/attempts")
        await c.http.post("/_collector/reset", params={"run_id": "r1"})
        cleared = (await c.http.get("/_collector/attempts", params={"run_id": "r1"})).json()
        return full, no_run, cleared

    full, no_run, cleared = run(go())
    assert [entry[1:] for entry in full["attempts"]] == [["accepted", 4], ["accepted", 4]] and full["dropped"] == 1
    assert no_run.status_code == 400 and "run_id" in no_run.json()["error"]
    assert cleared == {"run_id": "r1", "attempts": [], "dropped": 0}


# --- spans with an ERROR status --------------------------------------------------------------------


def test_error_roots_and_llm_spans_are_counted_in_both_encodings():
    error = {"code": "STATUS_CODE_ERROR"}

    async def go():
        c, s = Collector(), Spans()
        for op_id, root_error, llm_error in ((0, True, True), (1, False, True), (2, False, False), (-1, True, True)):
            with s.tracer.start_as_current_span("loadgen.operation", attributes={"loadgen.op_id": op_id}) as root:
                with s.tracer.start_as_current_span("chat gpt-mock", attributes=GENAI) as llm:
                    if llm_error:
                        llm.set_status(Status(StatusCode.ERROR, "mock fault"))
                if root_error:
                    root.set_status(Status(StatusCode.ERROR))
        with s.tracer.start_as_current_span("retrieve") as other:
            other.set_status(Status(StatusCode.ERROR))  # neither a root nor an LLM span
        await c.export(s.body())
        body = json_body([
            json_span(9, 0xA, "loadgen.operation", {"loadgen.op_id": 3}) | {"status": error},
            json_span(9, 0xB, "chat gpt-mock", GENAI, parent=0xA) | {"status": {"code": 2}},  # an enum as its number
            json_span(9, 0xC, "loadgen.operation", {"loadgen.op_id": 4}) | {"status": {"code": 1}},
            json_span(9, 0xD, "chat gpt-mock", GENAI, parent=0xC) | {"status": {}},
            json_span(9, 0xE, "chat gpt-mock", GENAI, parent=0xC) | {"status": error, "traceId": f"{8:032x}"},
        ])
        await c.export(body, "application/json")
        await c.export(body, "application/json")  # duplicates: not counted again
        return await c.stats("r1")

    figures = run(go())
    assert figures["roots"] == 5 and figures["llm_spans"] == 7
    assert figures["error_roots"] == 2  # ops 0 and 3; the warm-up root (−1) is not a root of the run
    assert figures["error_llm_spans"] == 5  # ops 0, 1, the warm-up's, 3, and the one in trace 8
