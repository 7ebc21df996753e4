"""SyncLeanTransport against real loopback servers whose every byte the test writes.

The server is a small raw-socket one in threads (one to accept, one per connection), so a
test decides exactly what is sent, when, and when a socket closes; it counts the
connections it accepts and the most open at once, and notices a request sent on a socket
whose previous answer is not yet written. Waits are on Events the test sets, not sleeps.
The SDK tests serve the embedded mock with uvicorn in a thread; the response helpers and
those fixtures are test_transport.py's.
"""

from __future__ import annotations

import contextlib
import json
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time

import anthropic
import httpx2
import openai
import pytest

from loadgen.providers.base import CURRENT_CALL
from loadgen.providers.sync_transport import SyncLeanTransport
from loadgen.results import CallRecord
from tests.test_transport import BIG, CHUNKED_HEAD, MESSAGES, chunk, refused_port, reply
from tests import test_transport

# Real sockets, real timeouts: every test here starts a server (threads or uvicorn), so these
# are end-to-end tests by the project's rule, as in test_transport.py.
pytestmark = pytest.mark.e2e
mock_url, unanswered_port = test_transport.mock_url, test_transport.unanswered_port  # the same fixtures


def client(max_connections: int = 4, **kwargs) -> httpx2.Client:
    return httpx2.Client(transport=SyncLeanTransport(max_connections), timeout=5, **kwargs)


class Peer:
    """One accepted socket, read through a buffer of its own."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _more(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def until(self, sep: bytes) -> bytes:
        while sep not in self.buf:
            self._more()
        end = self.buf.index(sep) + len(sep)
        out, self.buf = self.buf[:end], self.buf[end:]
        return out

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_request(self) -> tuple[bytes, bytes]:
        """(head, body) of one request; the body by content-length or chunked framing."""
        head = self.until(b"\r\n\r\n")
        fields = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip()
        if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
            body = b""
            while size := int(self.until(b"\r\n").split(b";")[0], 16):
                body += self.exactly(size + 2)[:-2]
            self.until(b"\r\n")
            return head, body
        return head, self.exactly(int(fields.get(b"content-length", 0)))

    def sent_more(self) -> bool:
        """Bytes of another request already here: the client did not wait for this answer."""
        if self.buf:
            return True
        readable, _, _ = select.select([self.sock], [], [], 0)
        return bool(readable) and bool(self.sock.recv(1, socket.MSG_PEEK))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)


class Server:
    """An HTTP/1.1 server on 127.0.0.1 whose `respond(n, head, body, peer)` writes each answer.

    `n` counts requests from 0 across connections; `respond` returns False to close the
    connection after answering. The server records the connections it accepted, the most
    open at once, how many the client closed, and `overlaps`: requests that arrived on a
    socket before its previous answer was written.
    """

    def __init__(self, respond=None, tls: ssl.SSLContext | None = None) -> None:
        self.respond = respond or self.ok
        self.tls = tls
        self.requests: list[tuple[bytes, bytes]] = []
        self.accepted = self.active = self.peak = self.closed_by_client = self.overlaps = 0
        self.lock = threading.Lock()
        self.peers: list[Peer] = []
        self.threads: list[threading.Thread] = []

    @staticmethod
    def ok(n, head, body, peer) -> bool:
        peer.send(reply(b"response %d" % n))
        return True

    def __enter__(self) -> Server:
        self.listener = socket.create_server(("127.0.0.1", 0))
        scheme = "https" if self.tls else "http"
        self.url = "%s://127.0.0.1:%d" % (scheme, self.listener.getsockname()[1])
        self._start(self._accept)
        return self

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept
        self.listener.close()
        with self.lock:
            peers = list(self.peers)
        for peer in peers:
            with contextlib.suppress(OSError):
                peer.sock.shutdown(socket.SHUT_RDWR)
        for thread in self.threads:
            thread.join(5)

    def _start(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self.threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            peer = Peer(sock)
            with self.lock:
                self.accepted += 1
                self.active += 1
                self.peak = max(self.peak, self.active)
                self.peers.append(peer)
            self._start(self._serve, peer)

    def _serve(self, peer: Peer) -> None:
        try:
            if self.tls is not None:
                peer.sock = self.tls.wrap_socket(peer.sock, server_side=True)
            while True:
                try:
                    head, body = peer.read_request()
                except (EOFError, OSError):
                    with self.lock:
                        self.closed_by_client += 1
                    return
                with self.lock:
                    self.requests.append((head, body))
                    n = len(self.requests) - 1
                if not self.respond(n, head, body, peer):
                    return
        except OSError:
            return  # the test is over: the server's sockets were shut down
        finally:
            with self.lock:
                self.active -= 1
            peer.sock.close()


def eventually(condition, within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def in_thread(fn, *args) -> tuple[threading.Thread, list]:
    """Run fn in a daemon thread; the list gets its result or the exception it raised."""
    out: list = []

    def run():
        try:
            out.append(fn(*args))
        except BaseException as exc:
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


@contextlib.contextmanager
def calling(rec: CallRecord):
    """CURRENT_CALL set in this thread for the block, as a sync runner's thread sets it."""
    token = CURRENT_CALL.set(rec)
    try:
        yield rec
    finally:
        CURRENT_CALL.reset(token)


def one_slot_works(http: httpx2.Client, url: str) -> bool:
    """A request that could not start if a failed one had kept the pool's only slot."""
    return http.get(url, timeout=httpx2.Timeout(5, pool=1)).status_code == 200


# --- keep-alive and the pool ------------------------------------------------------------------


def test_sequential_requests_reuse_one_connection_and_send_well_formed_requests():
    with Server() as server, client() as http:
        texts = [http.get(server.url + "/a?x=1").text for _ in range(5)]
        posted = http.post(server.url + "/v1/chat", json={"hello": "world"})
    assert texts == [f"response {n}" for n in range(5)] and posted.text == "response 5"
    assert server.accepted == 1  # six requests, one TCP connection
    head, body = server.requests[0]
    assert head.startswith(b"GET /a?x=1 HTTP/1.1\r\n") and b"host: 127.0.0.1:" in head.lower()
    head, body = server.requests[5]
    assert head.startswith(b"POST /v1/chat HTTP/1.1\r\n") and json.loads(body) == {"hello": "world"}


def test_streamed_request_body_is_sent_chunked():
    def parts():
        yield b"hello "
        yield b"world"

    with Server() as server, client() as http:
        status = http.post(server.url, content=parts()).status_code
    head, body = server.requests[0]
    assert status == 200 and b"transfer-encoding: chunked" in head.lower() and body == b"hello world"


def test_full_pool_raises_pool_timeout_and_works_again_once_the_holder_is_done():
    release = threading.Event()

    def held(n, head, body, peer):
        if n == 0:
            release.wait(5)
        peer.send(reply(b"response %d" % n))
        return True

    with Server(held) as server, client(max_connections=1) as http:
        first, out = in_thread(http.get, server.url)
        eventually(lambda: server.requests)
        t0 = time.monotonic()
        with pytest.raises(httpx2.PoolTimeout):
            http.get(server.url, timeout=httpx2.Timeout(5, pool=0.2))
        waited = time.monotonic() - t0
        release.set()
        first.join(5)
        after = http.get(server.url, timeout=httpx2.Timeout(5, pool=1))
    assert waited > 0.19  # a lower bound only: a wait never ends early, but may end late
    assert out[0].text == "response 0" and after.text == "response 1"
    assert server.accepted == 1


def test_threads_share_the_pool_without_sharing_a_connection():
    # 8 threads × 50 requests, 4 connections: each answer names its request, and the server
    # checks that no socket carries a second request before the first one's answer is out.
    def echo(n, head, body, peer):
        time.sleep(0.0005)  # hold the answer a moment, so a request sent meanwhile would show
        if peer.sent_more():
            with server.lock:
                server.overlaps += 1
        path = head.split(b" ")[1]
        peer.send(reply(path))
        return True

    def calls(thread: int) -> list[tuple[str, str]]:
        paths = [f"/t{thread}/{i}" for i in range(50)]
        return [(path, http.get(server.url + path).text) for path in paths]

    with Server(echo) as server, client(max_connections=4) as http:
        runs = [in_thread(calls, t) for t in range(8)]
        for thread, _ in runs:
            thread.join(60)
    assert server.overlaps == 0
    assert server.peak <= 4 and server.accepted <= 4
    outs = [out[0] for _, out in runs]
    assert not [out for out in outs if isinstance(out, BaseException)]
    results = [pair for out in outs for pair in out]
    assert len(results) == 400 and all(path == text for path, text in results)


# --- the server ends a connection ---------------------------------------------------------------


def test_idle_connection_closed_by_server_is_replaced_transparently():
    closed = threading.Event()

    def answer_then_close(n, head, body, peer):
        peer.send(reply())  # keep-alive by the headers, but the server closes anyway
        peer.sock.close()
        closed.set()
        return False

    with Server(answer_then_close) as server, client() as http:
        first = http.get(server.url)
        assert closed.wait(5)
        second = http.get(server.url)
    assert first.status_code == second.status_code == 200 and server.accepted == 2


def test_reused_connection_dying_before_the_answer_is_retried_once_on_a_fresh_one():
    # The second request goes out on the kept-alive connection, which the server closes
    # without a byte of answer (as if its idle timeout struck just then, after the
    # checkout's poll). The transport sends it again on a new connection; the call's t_wire
    # is that send, not the lost one.
    seen: list[int] = []

    def close_the_second(n, head, body, peer):
        seen.append(time.perf_counter_ns())
        if n == 1:
            return False
        peer.send(reply(b"response %d" % n))
        return True

    with Server(close_the_second) as server, client() as http:
        first = http.get(server.url)
        with calling(CallRecord(0, time.perf_counter_ns(), None)) as rec:
            second = http.get(server.url)
    assert first.text == "response 0" and second.text == "response 2"
    assert server.accepted == 2
    _, lost_read, retry_read = seen
    assert lost_read < rec.t_wire <= retry_read


def test_connection_close_header_stops_reuse():
    def close_header(n, head, body, peer):
        # The socket stays open: only the header tells the client not to reuse it.
        peer.send(reply(headers=("connection: close",)))
        return True

    with Server(close_header) as server, client() as http:
        statuses = [http.get(server.url).status_code for _ in range(3)]
        eventually(lambda: server.closed_by_client == 3)
    assert statuses == [200] * 3
    assert server.accepted == 3 and server.closed_by_client == 3  # the client closed each one


# --- response bodies ------------------------------------------------------------------------------

def test_content_length_chunked_and_large_bodies_arrive_intact():
    def bodies(n, head, body, peer):
        if n == 0:
            peer.send(reply(b"plain body"))
        elif n == 1:
            peer.send(CHUNKED_HEAD + chunk(b"first ") + b"6;ext=1\r\nsecond\r\n" + b"0\r\nx-trailer: 1\r\n\r\n")
        elif n == 2:
            peer.send(reply(BIG))
        else:  # 1 MiB chunked, written in pieces
            peer.send(CHUNKED_HEAD)
            for offset in range(0, len(BIG), 100_000):
                peer.send(chunk(BIG[offset:offset + 100_000]))
            peer.send(b"0\r\n\r\n")
        return True

    with Server(bodies) as server, client() as http:
        contents = [http.get(server.url).content for _ in range(4)]
    assert contents == [b"plain body", b"first second", BIG, BIG]
    assert server.accepted == 1  # every framing left the connection reusable


def test_body_delimited_by_close_ends_at_eof():
    # No content-length, no chunking: the body runs until the server closes (RFC 9112 §6.3).
    def until_close(n, head, body, peer):
        peer.send(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\npart one, ")
        peer.send(b"part two")
        return False

    with Server(until_close) as server, client(max_connections=1) as http:
        first = http.get(server.url).content
        second = http.get(server.url, timeout=httpx2.Timeout(5, pool=1)).content
    assert first == second == b"part one, part two" and server.accepted == 2


def test_stream_delivers_each_chunk_before_the_next_is_sent():
    # The server sends chunk i+1 only once the reader has had chunk i: a transport that
    # held chunks back would leave the server waiting, and the test would time out.
    got = [threading.Event() for _ in range(5)]

    def sse(n, head, body, peer):
        peer.send(CHUNKED_HEAD)
        for i in range(5):
            peer.send(chunk(b"data: %d\n\n" % i))
            if not got[i].wait(5):
                return False
        peer.send(b"0\r\n\r\n")
        return True

    received = []
    with Server(sse) as server, client() as http:
        with http.stream("POST", server.url, json={"stream": True}) as response:
            for data in response.iter_bytes():
                got[len(received)].set()
                received.append(data)
        again = http.get(server.url + "/after").status_code
    assert received == [b"data: %d\n\n" % i for i in range(5)]  # one read per chunk, in order
    assert again == 200 and server.accepted == 1


def test_stream_closed_early_drops_its_connection():
    def sse(n, head, body, peer):
        peer.send(CHUNKED_HEAD + chunk(b"data: 0\n\n"))  # and never the end
        return True

    with Server(sse) as server, client(max_connections=1) as http:
        with http.stream("GET", server.url) as response:
            next(response.iter_bytes())
        eventually(lambda: server.closed_by_client == 1)
        assert server.closed_by_client == 1


def test_https_goes_through_tls_with_the_hosts_name_checked(tmp_path):
    # A certificate for IP 127.0.0.1, made now; the client's context trusts it alone.
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        capture_output=True,
    ) if shutil.which("openssl") else None
    if made is None or made.returncode:
        pytest.skip("no openssl to make a test certificate")
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(cert, key)
    transport = SyncLeanTransport()
    transport._ssl = ssl.create_default_context(cafile=str(cert))
    with Server(tls=served) as server, httpx2.Client(transport=transport, timeout=5) as http:
        texts = [http.get(server.url + "/secure").text for _ in range(3)]
    assert texts == ["response 0", "response 1", "response 2"] and server.accepted == 1
    with Server(tls=served) as server, client() as http:  # the default context: an unknown issuer
        with pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            http.get(server.url)


# --- failures free their slot ---------------------------------------------------------------------


@pytest.mark.parametrize("cut", [
    reply(b"x" * 100)[:-90],  # content-length 100, 10 bytes sent
    CHUNKED_HEAD + chunk(b"data: 1\n\n"),  # chunked, no last chunk
    b"HTTP/1.1 200 OK\r\ncontent-le",  # inside the head
    b"",  # no response at all (on a new connection: only a reused one is retried)
])
def test_server_closing_mid_response_raises_and_frees_the_slot(cut):
    def cut_first(n, head, body, peer):
        if n == 0:
            peer.send(cut)
            return False
        peer.send(reply())
        return True

    with Server(cut_first) as server, client(max_connections=1) as http:
        with pytest.raises(httpx2.RemoteProtocolError):
            http.get(server.url)
        assert one_slot_works(http, server.url)
    assert server.accepted == 2


def test_malformed_response_raises_remote_protocol_error_and_frees_the_slot():
    def garbage_first(n, head, body, peer):
        peer.send(b"SMTP ready\r\n\r\n" if n == 0 else reply())
        return True

    with Server(garbage_first) as server, client(max_connections=1) as http:
        with pytest.raises(httpx2.RemoteProtocolError, match="malformed"):
            http.get(server.url)
        assert one_slot_works(http, server.url)
    assert server.accepted == 2


@pytest.mark.parametrize("stall_after", [b"", reply(b"0123456789")[:-5]], ids=["no_head", "half_body"])
def test_silent_server_raises_read_timeout_and_frees_the_slot(stall_after):
    done = threading.Event()

    def stall_first(n, head, body, peer):
        if n == 0:
            peer.send(stall_after)
            done.wait(10)
            return False
        peer.send(reply())
        return True

    with Server(stall_first) as server, client(max_connections=1) as http:
        t0 = time.monotonic()
        with pytest.raises(httpx2.ReadTimeout):
            http.get(server.url, timeout=httpx2.Timeout(5, read=0.3))
        waited = time.monotonic() - t0
        assert one_slot_works(http, server.url)
        done.set()
    assert waited > 0.29  # not early; only the read timeout of 0.3 s raises ReadTimeout


def test_refused_connection_raises_connect_error_naming_the_address():
    with refused_port() as sock, client(max_connections=1) as http:
        port = sock.getsockname()[1]
        for _ in range(2):  # the failed connect gave its slot back
            with pytest.raises(httpx2.ConnectError, match=f"127.0.0.1:{port}"):
                http.get(f"http://127.0.0.1:{port}/", timeout=httpx2.Timeout(5, pool=1))


def test_connect_that_never_completes_raises_connect_timeout(unanswered_port):
    with client(max_connections=1) as http:
        for _ in range(2):  # the timed-out connect gave its slot back
            with pytest.raises(httpx2.ConnectTimeout):
                http.get(f"http://127.0.0.1:{unanswered_port}/", timeout=httpx2.Timeout(5, connect=0.2, pool=1))


# --- close and abort ------------------------------------------------------------------------------


def test_close_closes_idle_connections():
    with Server() as server:
        http = client()
        with http.stream("GET", server.url) as a, http.stream("GET", server.url) as b:
            a.read(), b.read()
        opened = server.accepted
        http.close()
        eventually(lambda: server.closed_by_client == opened)
    assert opened == 2 and server.closed_by_client == 2 and server.active == 0


def test_abort_fails_blocked_reads_and_waiters_at_once_and_later_requests_never_hang():
    # One thread waits for an answer that never comes, a second for the pool's only
    # connection, with no timeouts at all: abort() from here ends both, and what follows.
    done = threading.Event()

    def never(n, head, body, peer):
        done.wait(10)
        return False

    transport = SyncLeanTransport(max_connections=1)
    with Server(never) as server, httpx2.Client(transport=transport, timeout=None) as http:
        reader, read_out = in_thread(http.get, server.url)
        eventually(lambda: server.requests)
        waiter, wait_out = in_thread(http.get, server.url)
        time.sleep(0.05)  # the second thread is queued for the pool (if not, it fails at once below anyway)
        t0 = time.monotonic()
        transport.abort()
        reader.join(1)
        waiter.join(1)
        ended = time.monotonic() - t0
        with pytest.raises(httpx2.ConnectError, match="closed"):
            http.get(server.url)
        done.set()
    assert not reader.is_alive() and not waiter.is_alive() and ended < 1
    assert isinstance(read_out[0], (httpx2.ReadError, httpx2.RemoteProtocolError))
    assert isinstance(wait_out[0], httpx2.ConnectError)


def test_abort_fails_a_stream_being_read():
    done = threading.Event()

    def trickle(n, head, body, peer):
        peer.send(CHUNKED_HEAD + chunk(b"data: 0\n\n"))
        done.wait(10)
        return False

    transport = SyncLeanTransport()
    received = []

    def read_stream():
        with http.stream("GET", server.url) as response:
            for data in response.iter_bytes():
                received.append(data)

    with Server(trickle) as server, httpx2.Client(transport=transport, timeout=None) as http:
        reader, out = in_thread(read_stream)
        eventually(lambda: received)
        transport.abort()
        reader.join(1)
        done.set()
    assert not reader.is_alive() and received == [b"data: 0\n\n"]
    assert isinstance(out[0], httpx2.ReadError)


# --- the call's wire stamps ------------------------------------------------------------------------


def test_wire_stamps_bracket_what_the_server_saw():
    # A stream whose last chunk leaves once the client has the first: t_wire is before the
    # server had the request, t_response_end after the last chunk left and before the
    # client was done reading (a sync transport reads the last byte when the SDK pulls it).
    seen: dict[str, int] = {}
    got_first = threading.Event()

    def sse(n, head, body, peer):
        seen["request_read"] = time.perf_counter_ns()
        peer.send(CHUNKED_HEAD + chunk(b"data: 0\n\n"))
        got_first.wait(5)
        seen["last_written"] = time.perf_counter_ns()
        peer.send(chunk(b"data: 1\n\n") + b"0\r\n\r\n")
        return True

    with Server(sse) as server, client() as http, calling(CallRecord(0, time.perf_counter_ns(), None)) as rec:
        with http.stream("POST", server.url, json={"stream": True}) as response:
            for _ in response.iter_bytes():
                got_first.set()
        read = time.perf_counter_ns()
    assert 0 < rec.t_wire <= seen["request_read"]
    assert seen["last_written"] <= rec.t_response_end <= read


def test_with_retries_wire_runs_from_the_first_write_to_the_last_responses_end():
    # Two attempts of one call (as an SDK retry makes them, in the call's thread): a 503,
    # then a 200. The wire time spans both attempts.
    seen: list[int] = []

    def retry(n, head, body, peer):
        seen.append(time.perf_counter_ns())
        if n == 0:
            peer.send(reply(b"busy", status="503 Service Unavailable"))
            return True
        seen.append(time.perf_counter_ns())
        peer.send(reply(b"ok"))
        return True

    with Server(retry) as server, client() as http, calling(CallRecord(0, time.perf_counter_ns(), None)) as rec:
        statuses = [http.get(server.url).status_code for _ in range(2)]
    assert statuses == [503, 200]
    first_read, second_read, last_written = seen
    assert 0 < rec.t_wire <= first_read
    assert rec.t_response_end >= last_written >= second_read


# --- through the SDKs ---------------------------------------------------------------------------


def test_openai_sdk_over_the_transport(mock_url):
    http = httpx2.Client(transport=SyncLeanTransport(4))
    with openai.OpenAI(base_url=mock_url + "/v1", api_key="x", max_retries=0, http_client=http) as sdk:
        completion = sdk.chat.completions.create(model="m", messages=MESSAGES, max_tokens=5)
        stream = sdk.chat.completions.create(model="m", messages=MESSAGES, max_tokens=5, stream=True)
        deltas = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
        again = sdk.chat.completions.create(model="m", messages=MESSAGES, max_tokens=3)
    assert completion.usage.completion_tokens == 5 and completion.choices[0].message.content
    assert len(deltas) == 5 and "".join(deltas) == completion.choices[0].message.content
    assert again.usage.completion_tokens == 3


def test_anthropic_sdk_over_the_transport(mock_url):
    http = httpx2.Client(transport=SyncLeanTransport(4))
    with anthropic.Anthropic(
        base_url=mock_url, api_key="x", max_retries=0, http_client=http, open_telemetry=False
    ) as sdk:
        message = sdk.messages.create(model="c", messages=MESSAGES, max_tokens=5)
        texts = [
            event.delta.text
            for event in sdk.messages.create(model="c", messages=MESSAGES, max_tokens=5, stream=True)
            if event.type == "content_block_delta"
        ]
    assert message.usage.output_tokens == 5
    assert len(texts) == 5 and "".join(texts) == message.content[0].text


def test_openai_sdk_maps_refused_connection_and_read_timeout():
    done = threading.Event()

    def stall(n, head, body, peer):
        done.wait(10)
        return False

    def sdk(base_url: str, **kwargs) -> openai.OpenAI:
        http = httpx2.Client(transport=SyncLeanTransport(4))
        return openai.OpenAI(base_url=base_url, api_key="x", max_retries=0, http_client=http, **kwargs)

    with refused_port() as sock, sdk(f"http://127.0.0.1:{sock.getsockname()[1]}/v1") as refused:
        with pytest.raises(openai.APIConnectionError) as error:
            refused.chat.completions.create(model="m", messages=MESSAGES)
    assert not isinstance(error.value, openai.APITimeoutError)
    with Server(stall) as server, sdk(server.url + "/v1", timeout=0.3) as stalled:
        with pytest.raises(openai.APITimeoutError):
            stalled.chat.completions.create(model="m", messages=MESSAGES)
        done.set()


def test_a_thousand_sequential_requests_to_the_mock_complete_on_one_connection(mock_url):
    transport = SyncLeanTransport(4)
    body = {"model": "m", "messages": MESSAGES, "max_tokens": 1}
    with httpx2.Client(transport=transport, timeout=5) as http:
        statuses = {http.post(mock_url + "/v1/chat/completions", json=body).status_code for _ in range(1000)}
        (pool,) = transport._pools.values()
        opened = len(pool.open)
    assert statuses == {200} and opened == 1


def test_abort_with_reopen_fails_what_is_in_flight_and_serves_what_comes_after():
    # Calls stuck past a drain's grace while the run goes on: they end, the next block's calls connect anew.
    done = threading.Event()

    def never_then_ok(n, head, body, peer):
        if n == 0:
            done.wait(10)
            return False
        peer.send(reply(b"later"))
        return True

    transport = SyncLeanTransport(max_connections=1)
    with Server(never_then_ok) as server, httpx2.Client(transport=transport, timeout=None) as http:
        reader, read_out = in_thread(http.get, server.url)
        eventually(lambda: server.requests)
        transport.abort(reopen=True)
        reader.join(1)
        later = http.get(server.url)
        done.set()
    assert not reader.is_alive() and isinstance(read_out[0], (httpx2.ReadError, httpx2.RemoteProtocolError))
    assert later.status_code == 200 and later.content == b"later"
