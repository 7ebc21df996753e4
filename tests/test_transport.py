"""LeanTransport against real loopback servers whose every byte the test writes.

Most tests run a small asyncio server in the test's own loop, so they decide exactly what
is sent, when, and when the socket closes; the server counts the connections it accepts.
One test needs the server in another thread (its close must land while the client's loop
is busy). The SDK tests serve the embedded mock with uvicorn in a thread.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import anthropic
import httpx2
import openai
import pytest
import uvicorn

from loadgen.mock_llm import MockConfig, create_app
from loadgen.mock_llm.server import bind_socket
from loadgen.providers.base import CURRENT_CALL
from loadgen.results import CallRecord
from loadgen.providers.transport import LeanTransport

# Real sockets, real timeouts: every test here starts a server (in the test's loop, a thread or
# uvicorn), so these are end-to-end tests by the project's rule, run in CI with the rest.
pytestmark = pytest.mark.e2e
MESSAGES = [{"role": "user", "content": "count these five words"}]


def run(coro):
    return asyncio.run(coro)


def client(max_connections: int = 4, **kwargs) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=LeanTransport(max_connections), timeout=5, **kwargs)


def reply(body: bytes = b"ok", status: str = "200 OK", headers: tuple[str, ...] = ()) -> bytes:
    """A whole response with a content-length body."""
    lines = [f"HTTP/1.1 {status}", f"content-length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/event-stream\r\n\r\n"


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """(head, body) of one request; the body by content-length or chunked framing."""
    head = await reader.readuntil(b"\r\n\r\n")
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip()
    if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")
        return head, body
    return head, await reader.readexactly(int(fields.get(b"content-length", 0)))


class Server:
    """An HTTP/1.1 server on 127.0.0.1 whose `respond(n, head, body, writer)` writes each answer.

    `n` counts requests from 0 across connections; `respond` returns False to close the
    connection after answering. The server records the connections it accepted, the most
    open at once, and how many the client closed.
    """

    def __init__(self, respond=None) -> None:
        self.respond = respond or self.ok
        self.requests: list[tuple[bytes, bytes]] = []
        self.accepted = self.active = self.peak = self.closed_by_client = 0

    @staticmethod
    async def ok(n, head, body, writer) -> bool:
        writer.write(reply(b"response %d" % n))
        return True

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = "http://127.0.0.1:%d" % self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            while True:
                try:
                    head, body = await read_request(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    self.closed_by_client += 1
                    return
                self.requests.append((head, body))
                if not await self.respond(len(self.requests) - 1, head, body, writer):
                    return
        finally:
            self.active -= 1
            writer.close()


async def eventually(condition, within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def refused_port() -> socket.socket:
    """A bound socket that does not listen: connecting to its port is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


# --- keep-alive and the pool ------------------------------------------------------------------


def test_sequential_requests_reuse_one_connection_and_send_well_formed_requests():
    async def go():
        async with Server() as server, client() as http:
            texts = [(await http.get(server.url + "/a?x=1")).text for _ in range(5)]
            posted = await http.post(server.url + "/v1/chat", json={"hello": "world"})
            return server, texts, posted

    server, texts, posted = run(go())
    assert texts == [f"response {n}" for n in range(5)] and posted.text == "response 5"
    assert server.accepted == 1  # six requests, one TCP connection
    head, body = server.requests[0]
    assert head.startswith(b"GET /a?x=1 HTTP/1.1\r\n") and b"host: 127.0.0.1:" in head.lower()
    head, body = server.requests[5]
    assert head.startswith(b"POST /v1/chat HTTP/1.1\r\n") and json.loads(body) == {"hello": "world"}


def test_pool_never_opens_more_than_max_connections_and_queues_the_rest():
    async def slow(n, head, body, writer):
        await asyncio.sleep(0.15)
        writer.write(reply(b"slow %d" % n))
        return True

    async def go():
        async with Server(slow) as server, client(max_connections=2) as http:
            responses = await asyncio.gather(*(http.get(server.url) for _ in range(6)))
            return server, responses

    server, responses = run(go())
    assert [r.status_code for r in responses] == [200] * 6
    assert sorted(r.text for r in responses) == [f"slow {n}" for n in range(6)]
    assert server.peak == 2 and server.accepted == 2  # the four others waited, then reused


def test_full_pool_raises_pool_timeout_after_the_pool_timeout():
    release = None

    async def held(n, head, body, writer):
        if n == 0:
            await release.wait()
        writer.write(reply())
        return True

    async def go():
        nonlocal release
        release = asyncio.Event()
        async with Server(held) as server, client(max_connections=1) as http:
            first = asyncio.create_task(http.get(server.url))
            await eventually(lambda: server.requests)
            t0 = time.monotonic()
            with pytest.raises(httpx2.PoolTimeout):
                await http.get(server.url, timeout=httpx2.Timeout(5, pool=0.2))
            waited = time.monotonic() - t0
            release.set()
            return waited, (await first).status_code, (await http.get(server.url)).status_code

    waited, first, after = run(go())
    # A lower bound only: a timer never fires early, but a busy machine may run it late.
    assert waited > 0.19
    assert first == after == 200


# --- the server ends a connection ---------------------------------------------------------------


def test_idle_connection_closed_by_server_is_replaced_transparently():
    closed = None

    async def answer_then_close(n, head, body, writer):
        writer.write(reply())  # keep-alive by the headers, but the server closes anyway
        writer.close()
        await writer.wait_closed()
        closed.set()
        return False

    async def go():
        nonlocal closed
        closed = asyncio.Event()
        async with Server(answer_then_close) as server, client() as http:
            first = await http.get(server.url)
            await closed.wait()
            await asyncio.sleep(0.05)  # the client's loop sees the EOF
            second = await http.get(server.url)
            return server, first.status_code, second.status_code

    server, first, second = run(go())
    assert first == second == 200 and server.accepted == 2


@pytest.mark.parametrize("handed_over", [False, True], ids=["from_idle", "to_a_waiter"])
def test_connection_closed_while_the_loop_was_busy_is_not_handed_out(handed_over):
    # A busy client loop has not yet run connection_lost for a connection the server closed:
    # its EOF waits unread in the socket. A server in another thread closes the first
    # connection, after answering, while this loop is blocked. The connection is then
    # reused from the idle list, or handed by its releaser to a request queued for the pool.
    listener = socket.create_server(("127.0.0.1", 0))
    url = "http://127.0.0.1:%d/" % listener.getsockname()[1]
    close_now, closed, accepted = threading.Event(), threading.Event(), []

    def serve():
        while len(accepted) < 2:
            conn, _ = listener.accept()
            accepted.append(conn)
            conn.recv(65536)
            conn.sendall(reply())
            if len(accepted) == 1:
                close_now.wait(5)
                conn.close()
                closed.set()

    def close_while_blocked():
        close_now.set()
        assert closed.wait(5)  # blocks the loop on purpose
        time.sleep(0.05)  # the FIN reaches this side's socket

    async def go():
        async with httpx2.AsyncClient(transport=LeanTransport(1), timeout=5) as http:
            if not handed_over:
                first = await http.get(url)
                close_while_blocked()
                return first.status_code, (await http.get(url)).status_code
            async with http.stream("GET", url) as first:
                queued = asyncio.create_task(http.get(url))
                await asyncio.sleep(0.05)  # queued for the pool's one connection
                close_while_blocked()
                await first.aread()  # the whole response is buffered: no loop turn
            return first.status_code, (await queued).status_code

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        assert run(go()) == (200, 200)
        assert len(accepted) == 2
    finally:
        close_now.set()
        thread.join(5)
        listener.close()
        for conn in accepted:
            conn.close()


def test_connection_close_header_stops_reuse():
    async def close_header(n, head, body, writer):
        # The socket stays open: only the header tells the client not to reuse it.
        writer.write(reply(headers=("connection: close",)))
        return True

    async def go():
        async with Server(close_header) as server, client() as http:
            statuses = [(await http.get(server.url)).status_code for _ in range(3)]
            await eventually(lambda: server.closed_by_client == 3)
            return server, statuses

    server, statuses = run(go())
    assert statuses == [200] * 3
    assert server.accepted == 3 and server.closed_by_client == 3  # the client closed each one


# --- response bodies ------------------------------------------------------------------------------

BIG = bytes(range(256)) * 4096  # 1 MiB


def test_content_length_chunked_and_large_bodies_arrive_intact():
    async def bodies(n, head, body, writer):
        if n == 0:
            writer.write(reply(b"plain body"))
        elif n == 1:
            writer.write(CHUNKED_HEAD + chunk(b"first ") + b"6;ext=1\r\nsecond\r\n" + b"0\r\nx-trailer: 1\r\n\r\n")
        elif n == 2:
            writer.write(reply(BIG))
        else:  # 1 MiB chunked, written in pieces across several loop turns
            writer.write(CHUNKED_HEAD)
            for offset in range(0, len(BIG), 100_000):
                writer.write(chunk(BIG[offset:offset + 100_000]))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
        return True

    async def go():
        async with Server(bodies) as server, client() as http:
            contents = [(await http.get(server.url)).content for _ in range(4)]
            return server, contents

    server, contents = run(go())
    assert contents == [b"plain body", b"first second", BIG, BIG]
    assert server.accepted == 1  # every framing left the connection reusable


def test_body_delimited_by_close_ends_at_eof():
    # No content-length, no chunking: the body runs until the server closes (RFC 9112 §6.3).
    async def until_close(n, head, body, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\npart one, ")
        await asyncio.sleep(0.05)
        writer.write(b"part two")
        return False

    async def go():
        async with Server(until_close) as server, client() as http:
            first = (await http.get(server.url)).content
            return first, (await http.get(server.url)).content

    assert run(go()) == (b"part one, part two", b"part one, part two")


def test_stream_delivers_each_chunk_before_the_next_is_sent():
    # The server sends chunk i+1 only once the reader has had chunk i: a transport that
    # held chunks back would leave the server waiting, and the test would time out.
    got = None

    async def sse(n, head, body, writer):
        writer.write(CHUNKED_HEAD)
        for i in range(5):
            writer.write(chunk(b"data: %d\n\n" % i))
            await asyncio.wait_for(got[i].wait(), timeout=5)
        writer.write(b"0\r\n\r\n")
        return True

    async def go():
        nonlocal got
        got = [asyncio.Event() for _ in range(5)]
        received = []
        async with Server(sse) as server, client() as http:
            async with http.stream("POST", server.url, json={"stream": True}) as response:
                async for data in response.aiter_bytes():
                    got[len(received)].set()
                    received.append(data)
        return received

    assert run(go()) == [b"data: %d\n\n" % i for i in range(5)]  # one read per chunk, in order


@pytest.mark.parametrize("cut", [
    reply(b"x" * 100)[:-90],  # content-length 100, 10 bytes sent
    CHUNKED_HEAD + chunk(b"data: 1\n\n"),  # chunked, no last chunk
    b"HTTP/1.1 200 OK\r\ncontent-le",  # inside the head
    b"",  # no response at all
])
def test_server_closing_mid_response_raises_and_drops_the_connection(cut):
    async def cut_first(n, head, body, writer):
        if n == 0:
            writer.write(cut)
            return False
        writer.write(reply())
        return True

    async def go():
        async with Server(cut_first) as server, client(max_connections=1) as http:
            with pytest.raises(httpx2.RemoteProtocolError):
                await http.get(server.url)
            return server, (await http.get(server.url, timeout=httpx2.Timeout(5, pool=1))).status_code

    server, after = run(go())
    assert after == 200 and server.accepted == 2


def test_malformed_response_raises_remote_protocol_error():
    async def garbage(n, head, body, writer):
        writer.write(b"SMTP ready\r\n\r\n")
        return True

    async def go():
        async with Server(garbage) as server, client() as http:
            with pytest.raises(httpx2.RemoteProtocolError):
                await http.get(server.url)

    run(go())


def test_streamed_request_body_is_sent_chunked():
    async def go():
        async def parts():
            yield b"hello "
            yield b"world"

        async with Server() as server, client() as http:
            response = await http.post(server.url, content=parts())
            return server, response.status_code

    server, status = run(go())
    head, body = server.requests[0]
    assert status == 200 and b"transfer-encoding: chunked" in head.lower() and body == b"hello world"


# --- connecting and timeouts ---------------------------------------------------------------------


def test_refused_connection_raises_connect_error():
    async def go(port):
        async with client() as http:
            with pytest.raises(httpx2.ConnectError):
                await http.get(f"http://127.0.0.1:{port}/")

    with refused_port() as sock:
        run(go(sock.getsockname()[1]))


@pytest.fixture
def unanswered_port():
    """A listening port whose backlog is full: a new connect waits for a SYN-ACK that never comes."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(8):
        sock = socket.socket()
        sock.settimeout(0.2)
        fillers.append(sock)
        try:
            sock.connect(("127.0.0.1", port))
        except TimeoutError:
            break
    else:
        pytest.skip("this kernel answers every connect, even with a full backlog")
    yield port
    for sock in fillers:
        sock.close()
    listener.close()


def test_connect_that_never_completes_raises_connect_timeout(unanswered_port):
    async def go():
        async with client() as http:
            t0 = time.monotonic()
            with pytest.raises(httpx2.ConnectTimeout):
                await http.get(f"http://127.0.0.1:{unanswered_port}/", timeout=httpx2.Timeout(5, connect=0.2))
            return time.monotonic() - t0

    assert run(go()) > 0.19  # not early; only a connect timeout of 0.2 s raises ConnectTimeout


@pytest.mark.parametrize("stall_after", [b"", reply(b"0123456789")[:-5]])
def test_silent_server_raises_read_timeout(stall_after):
    # Nothing at all, or a head and half the body, then silence.
    async def stall(n, head, body, writer):
        writer.write(stall_after)
        await asyncio.sleep(30)

    async def go():
        async with Server(stall) as server, client() as http:
            t0 = time.monotonic()
            with pytest.raises(httpx2.ReadTimeout):
                await http.get(server.url, timeout=httpx2.Timeout(5, read=0.3))
            return time.monotonic() - t0

    assert run(go()) > 0.29  # not early; only the read timeout of 0.3 s raises ReadTimeout


# --- cancellation and closing ----------------------------------------------------------------------


def test_cancelled_request_waiting_for_its_head_frees_its_slot():
    async def first_never_answered(n, head, body, writer):
        if n == 0:
            await asyncio.sleep(30)
        writer.write(reply())
        return True

    async def go():
        async with Server(first_never_answered) as server, client(max_connections=1) as http:
            task = asyncio.create_task(http.get(server.url))
            await eventually(lambda: server.requests)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return (await http.get(server.url, timeout=httpx2.Timeout(5, pool=1))).status_code

    assert run(go()) == 200


def test_request_cancelled_as_a_connection_is_handed_to_it_passes_the_connection_on():
    # B waits for the one connection; A's release hands it to B, and B is cancelled before
    # it runs. The connection must go on to C, not vanish with B.
    async def go():
        async with Server() as server, client(max_connections=1) as http:
            async with http.stream("GET", server.url) as a:
                b = asyncio.create_task(http.get(server.url))
                c = asyncio.create_task(http.get(server.url, timeout=httpx2.Timeout(5, pool=2)))
                await asyncio.sleep(0.05)  # both are queued for the pool
                await a.aread()
            b.cancel()  # no await since A's release: B has not run yet
            with pytest.raises(asyncio.CancelledError):
                await b
            return (await c).status_code

    assert run(go()) == 200


def test_request_cancelled_while_connecting_frees_its_slot(unanswered_port):
    async def go():
        transport = LeanTransport(max_connections=1)
        async with httpx2.AsyncClient(transport=transport) as http:
            url = f"http://127.0.0.1:{unanswered_port}/"
            task = asyncio.create_task(http.get(url, timeout=5))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # With the slot free, this one connects (and times out), rather than queueing.
            with pytest.raises(httpx2.ConnectTimeout):
                await http.get(url, timeout=httpx2.Timeout(5, connect=0.2, pool=2))

    run(go())


def test_aclose_closes_open_connections():
    async def go():
        async with Server() as server:
            http = client()
            await asyncio.gather(*(http.get(server.url) for _ in range(3)))
            opened = server.accepted
            await http.aclose()
            await eventually(lambda: server.closed_by_client == opened)
            return opened, server.closed_by_client, server.active

    opened, closed, active = run(go())
    assert opened == 3 and closed == 3 and active == 0


# --- the call's wire stamps ------------------------------------------------------------------------


def test_wire_stamps_bracket_what_the_server_saw_and_end_at_the_last_byte_not_its_reading():
    # A stream whose last chunk leaves 0.1 s after the first, read by a client that, after
    # the first chunk, dawdles until the last byte is in and 0.2 s more: t_wire is before
    # the server had the request, and t_response_end when the last byte came in, not when
    # the client got round to it.
    seen: dict[str, int] = {}

    async def sse(n, head, body, writer):
        seen["request_read"] = time.perf_counter_ns()
        writer.write(CHUNKED_HEAD + chunk(b"data: 0\n\n"))
        await asyncio.sleep(0.1)
        seen["last_written"] = time.perf_counter_ns()
        writer.write(chunk(b"data: 1\n\n") + b"0\r\n\r\n")
        return True

    async def go():
        rec = CallRecord(0, time.perf_counter_ns(), None)
        CURRENT_CALL.set(rec)
        async with Server(sse) as server, client() as http:
            async with http.stream("POST", server.url, json={"stream": True}) as response:
                async for _ in response.aiter_bytes():
                    for _ in range(500):  # the last byte comes in while the client is away
                        if rec.t_response_end:
                            break
                        await asyncio.sleep(0.01)
                    await asyncio.sleep(0.2)
            return rec, time.perf_counter_ns()

    rec, read = run(go())
    assert 0 < rec.t_wire <= seen["request_read"]
    assert seen["last_written"] <= rec.t_response_end <= read - 200_000_000


def test_with_retries_wire_runs_from_the_first_write_to_the_last_responses_end():
    # Two attempts of one call (as an SDK retry makes them, in the call's task): a 503, then
    # a 200 that leaves 50 ms after its request. The wire time spans both attempts.
    seen: list[int] = []

    async def retry(n, head, body, writer):
        seen.append(time.perf_counter_ns())
        if n == 0:
            writer.write(reply(b"busy", status="503 Service Unavailable"))
            return True
        await asyncio.sleep(0.05)
        seen.append(time.perf_counter_ns())
        writer.write(reply(b"ok"))
        return True

    async def go():
        rec = CallRecord(0, time.perf_counter_ns(), None)
        CURRENT_CALL.set(rec)
        async with Server(retry) as server, client() as http:
            statuses = [(await http.get(server.url)).status_code for _ in range(2)]
            return rec, statuses

    rec, statuses = run(go())
    assert statuses == [503, 200]
    first_read, second_read, last_written = seen
    assert 0 < rec.t_wire <= first_read
    assert rec.t_response_end >= last_written > second_read


# --- through the SDKs ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mock_url():
    """The embedded mock served by uvicorn in a thread."""
    sock = bind_socket("127.0.0.1", 0)
    config = uvicorn.Config(
        create_app(MockConfig(ttft_ms=0, itl_ms=0)), lifespan="off", log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "the mock did not start"
    yield "http://127.0.0.1:%d" % sock.getsockname()[1]
    server.should_exit = True
    thread.join(10)
    sock.close()


def openai_client(base_url: str, **kwargs) -> openai.AsyncOpenAI:
    http = httpx2.AsyncClient(transport=LeanTransport(4))
    return openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0, http_client=http, **kwargs)


def test_openai_sdk_over_the_transport(mock_url):
    async def go():
        async with openai_client(mock_url + "/v1") as sdk:
            completion = await sdk.chat.completions.create(model="m", messages=MESSAGES, max_tokens=5)
            stream = await sdk.chat.completions.create(model="m", messages=MESSAGES, max_tokens=5, stream=True)
            deltas = [c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content]
            again = await sdk.chat.completions.create(model="m", messages=MESSAGES, max_tokens=3)
            return completion, deltas, again

    completion, deltas, again = run(go())
    assert completion.usage.completion_tokens == 5 and completion.choices[0].message.content
    assert len(deltas) == 5 and "".join(deltas) == completion.choices[0].message.content
    assert again.usage.completion_tokens == 3


def test_anthropic_sdk_over_the_transport(mock_url):
    async def go():
        http = httpx2.AsyncClient(transport=LeanTransport(4))
        async with anthropic.AsyncAnthropic(
            base_url=mock_url, api_key="x", max_retries=0, http_client=http, open_telemetry=False
        ) as sdk:
            message = await sdk.messages.create(model="c", messages=MESSAGES, max_tokens=5)
            texts = []
            async for event in await sdk.messages.create(model="c", messages=MESSAGES, max_tokens=5, stream=True):
                if event.type == "content_block_delta":
                    texts.append(event.delta.text)
            return message, texts

    message, texts = run(go())
    assert message.usage.output_tokens == 5
    assert len(texts) == 5 and "".join(texts) == message.content[0].text


def test_openai_sdk_maps_refused_connection_and_read_timeout():
    async def stall(n, head, body, writer):
        await asyncio.sleep(30)

    async def go(refused: int):
        async with openai_client(f"http://127.0.0.1:{refused}/v1") as sdk:
            with pytest.raises(openai.APIConnectionError) as refused_error:
                await sdk.chat.completions.create(model="m", messages=MESSAGES)
        async with Server(stall) as server, openai_client(server.url + "/v1", timeout=0.3) as sdk:
            with pytest.raises(openai.APITimeoutError):
                await sdk.chat.completions.create(model="m", messages=MESSAGES)
        return refused_error.value

    with refused_port() as sock:
        error = run(go(sock.getsockname()[1]))
    assert not isinstance(error, openai.APITimeoutError)
