"""The lean HTTP/1.1 transport for the sync SDK clients (`openai.OpenAI`, `anthropic.Anthropic`).

Why: the SDKs' sync clients accept only an `httpx2.Client`, and httpx2's own sync pool
(httpcore2) walks every connection under one thread lock on each request and each close —
the O(n) walk `transport.py` explains, now also a lock that all the worker's threads
contend for. This is `LeanTransport`'s blocking-socket twin, for
`httpx2.Client(transport=...)`: the SDK code path (and every tracer that wraps it) is
unchanged.

Each origin has a pool: a LIFO of idle connections and at most `max_connections` open,
guarded by one lock; a thread that finds it full waits on a condition, up to the
request's pool timeout. A connection belongs to one thread from checkout until its
response is closed. An idle connection the server has closed is noticed by a poll at
checkout and never handed out; one closed in the instant after that poll is retried once
on a fresh connection. A request that fails at any step closes its connection and frees
its slot. Responses are parsed by httptools (C) and read on demand, so SSE streams.
Errors and timeouts are raised as httpx2's exception types, which the SDKs map to
APIConnectionError and APITimeoutError as usual. Threads cannot be cancelled, so
`abort()` shuts every socket down: a thread blocked in a read fails at once.

It stamps the call's wire times on its record (found through CURRENT_CALL, which the
thread making the call sets): t_wire right before the request's bytes are written,
t_response_end when the parser has read the response's last byte. One difference from
the async transport: a blocking socket is read only when the SDK pulls the next chunk,
so the last byte is stamped when the SDK asks for it, not when it arrived. For a
non-streamed call the SDK reads the body at once and the two are the same; on a stream
the wire part includes the SDK's and the tracer's per-chunk work between reads
(docs/sync-client.md §2).
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from typing import Iterator

import httptools
import httpx2

from loadgen.providers.base import CURRENT_CALL
from loadgen.providers.transport import hand_back, request_bytes
from loadgen.results import CallRecord

_READ_SIZE = 65536


class _Stale(Exception):
    """A reused connection ended before any byte of the response: it was dead before the request."""


class _Connection:
    """One keep-alive HTTP/1.1 connection on a blocking socket; one response at a time."""

    def __init__(self, pool: "_OriginPool") -> None:
        self.pool = pool
        self.sock: socket.socket | None = None
        self.closed = False
        self.aborted = False  # closed by abort() or close(), perhaps under a thread reading it
        self.reused = False  # has served a response before this one
        self.poller: select.poll | None = None  # for still_open, made at its first use
        self._reset(None)

    def _reset(self, rec: CallRecord | None) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.status = 0  # set when the head is parsed
        self.received = False  # any byte of this response
        self.complete = self.keep_alive = self.until_close = False
        self.failed = False
        self.rec = rec

    # -- httptools callbacks ----------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        # httptools answers should_keep_alive() only until the message completes.
        self.keep_alive = self.parser.should_keep_alive()
        # No length and no chunking: the body ends when the server closes (RFC 9112 6.3).
        self.until_close = not self.keep_alive and not any(
            name.lower() in (b"content-length", b"transfer-encoding") for name, _ in self.headers
        )
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        # Read in the thread that pulled this byte, when it pulled it (see the module docstring).
        if self.rec is not None:
            self.rec.t_response_end = time.perf_counter_ns()
        self.complete = True

    # -- the socket -------------------------------------------------------------------
    def still_open(self) -> bool:
        # An idle connection has nothing to read: anything readable is the server's EOF
        # (or a reset), so it is finished (httpx2's own pool checks the same).
        if self.closed:
            return False
        if self.poller is None:
            self.poller = select.poll()
            self.poller.register(self.sock.fileno(), select.POLLIN)
        return not self.poller.poll(0)

    def exchange(self, data: bytes, rec: CallRecord | None, timeouts: dict) -> int:
        """Send the request; the response's status, once its head is read."""
        self._send(data, rec, timeouts)
        while not self.status:
            self._receive()
        return self.status

    def _send(self, data: bytes, rec: CallRecord | None, timeouts: dict) -> None:
        self._reset(rec)
        if rec is not None:
            # With SDK retries each attempt comes through here: t_wire stays the FIRST
            # attempt's write and t_response_end becomes the LAST attempt's end (reset
            # now, set when this response completes), so the wire time includes every
            # retry and the SDK's backoff between them.
            if not rec.t_wire:
                rec.t_wire = time.perf_counter_ns()
            rec.t_response_end = 0
        try:
            self.sock.settimeout(timeouts.get("write"))
            self.sock.sendall(data)
        except TimeoutError:
            raise httpx2.WriteTimeout("timed out sending the request") from None
        except OSError as exc:
            if self.reused and not self.aborted and isinstance(exc, (BrokenPipeError, ConnectionResetError)):
                raise _Stale() from None
            raise httpx2.WriteError(self._lost("sending the request", exc)) from None
        self.sock.settimeout(timeouts.get("read"))

    def _receive(self) -> None:
        """One recv, fed to the parser; the callbacks above take what it held."""
        try:
            data = self.sock.recv(_READ_SIZE)
        except TimeoutError:
            raise httpx2.ReadTimeout("timed out reading the response") from None
        except OSError as exc:
            if self.reused and not self.received and not self.aborted and isinstance(exc, ConnectionResetError):
                raise _Stale() from None
            raise httpx2.ReadError(self._lost("reading the response", exc)) from None
        if not data:
            if self.aborted:
                raise httpx2.ReadError("the transport was closed while reading the response")
            if self.until_close:
                self.on_message_complete()  # httptools cannot be told of the EOF
                return
            if self.reused and not self.received:
                raise _Stale()
            raise httpx2.RemoteProtocolError("server closed the connection before the response ended")
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            raise httpx2.RemoteProtocolError(f"malformed HTTP response: {exc}") from None

    def _lost(self, doing: str, exc: OSError) -> str:
        if self.aborted:
            return f"the transport was closed while {doing}"
        return f"connection to {self.pool.host}:{self.pool.port} lost while {doing}: {exc.strerror or exc}"

    def body(self) -> Iterator[bytes]:
        while True:
            if self.chunks:
                # Each recv's chunks as soon as they are parsed: an SSE event is not held back.
                chunks, self.chunks = self.chunks, []
                yield from chunks
            if self.complete:
                return
            self._receive()

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed and not self.failed

    def close(self, abort: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        self.aborted = abort
        if self.sock is not None:
            try:
                # shutdown, not just close: it wakes a recv blocked in another thread (a
                # plain close leaves it waiting for the server).
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already reset or never connected
            self.sock.close()


class _ResponseStream(httpx2.SyncByteStream):
    def __init__(self, conn: _Connection) -> None:
        self.conn = conn
        self.done = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self.conn.body()
        except Exception:  # not GeneratorExit: a reader that stops early leaves `complete` to decide
            self.conn.failed = True
            raise

    def close(self) -> None:
        if self.done:
            return
        self.done = True
        hand_back(self.conn)


class _OriginPool:
    """Connections to one scheme://host:port, at most `limit` open at once, shared by threads."""

    def __init__(self, host: str, port: int, limit: int, ssl_context: ssl.SSLContext | None) -> None:
        self.host, self.port, self.limit, self.ssl_context = host, port, limit, ssl_context
        self.idle: list[_Connection] = []
        self.open: set[_Connection] = set()  # idle, in use, or connecting: each holds a slot
        self.closed = False
        self.lock = threading.Lock()
        self.freed = threading.Condition(self.lock)  # a connection went idle or a slot opened

    def acquire(self, timeouts: dict, fresh: bool = False) -> _Connection:
        """A connection for this thread alone; `fresh` prefers a new one to an idle one."""
        deadline = None  # of the pool timeout, fixed at the first wait
        with self.lock:
            while True:
                if self.closed:
                    raise httpx2.ConnectError(f"transport closed: no new request to {self.host}:{self.port}")
                if not (fresh and len(self.open) < self.limit):
                    while self.idle:
                        conn = self.idle.pop()  # LIFO: the warmest connection
                        if conn.still_open():
                            return conn
                        conn.close()
                        self.open.discard(conn)
                if len(self.open) < self.limit:
                    conn = _Connection(self)
                    self.open.add(conn)  # the slot is taken now; the connect runs outside the lock
                    break
                # A full pool is client-side queueing, which the latency from intended start includes.
                # The check comes after looking for a connection, not after the wait: a wait that
                # timed out just as it was notified still takes what it was notified of.
                pool_timeout = timeouts.get("pool")
                if deadline is None and pool_timeout is not None:
                    deadline = time.monotonic() + pool_timeout
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise httpx2.PoolTimeout("no connection free in the pool in time")
                self.freed.wait(remaining)
        self._connect(conn, timeouts.get("connect"))
        return conn

    def _connect(self, conn: _Connection, timeout: float | None) -> None:
        sock = None
        try:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.ssl_context is not None:
                sock = self.ssl_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException as exc:
            if sock is not None:
                sock.close()
            self.forget(conn)
            if isinstance(exc, TimeoutError):
                raise httpx2.ConnectTimeout(f"connecting to {self.host}:{self.port} timed out") from None
            if isinstance(exc, OSError):  # refused, unreachable, TLS failed
                raise httpx2.ConnectError(f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}") from None
            raise
        with self.lock:
            conn.sock = sock
            if conn.closed:  # the transport was closed while this one was connecting
                sock.close()
                self.open.discard(conn)
                raise httpx2.ConnectError(f"transport closed: no new request to {self.host}:{self.port}")

    def release(self, conn: _Connection) -> None:
        conn.reused = True
        with self.lock:
            if conn.closed or conn not in self.open:  # the pool was closed meanwhile
                conn.close()
                return
            self.idle.append(conn)
            self.freed.notify()

    def forget(self, conn: _Connection) -> None:
        with self.lock:
            if conn in self.open:
                self.open.discard(conn)
                self.freed.notify()  # a slot opened: let one waiter connect anew

    def drop(self, conn: _Connection) -> None:
        conn.close()
        self.forget(conn)

    def close(self, final: bool = True) -> None:
        """Close every connection; `final`: and take no more requests."""
        with self.lock:
            self.closed = self.closed or final
            for conn in self.open:
                conn.close(abort=True)
            self.open.clear()
            self.idle.clear()
            self.freed.notify_all()  # waiters see `closed` and give up, or (not final) connect anew


class SyncLeanTransport(httpx2.BaseTransport):
    """HTTP/1.1 keep-alive pool with O(1) checkout, shared by threads, for httpx2.Client(transport=...)."""

    def __init__(self, max_connections: int = 100) -> None:
        self.max_connections = max_connections
        self._pools: dict[tuple[bytes, bytes, int], _OriginPool] = {}
        self._ssl: ssl.SSLContext | None = None
        self._lock = threading.Lock()  # for making pools; a pool locks itself
        self._closed = False

    def _pool(self, url: httpx2.URL) -> _OriginPool:
        port = url.port or (443 if url.scheme == "https" else 80)
        key = (url.raw_scheme, url.raw_host, port)
        pool = self._pools.get(key)
        if pool is None:
            with self._lock:
                if self._closed:
                    raise httpx2.ConnectError("transport closed: no new requests")
                pool = self._pools.get(key)
                if pool is None:
                    if url.scheme == "https" and self._ssl is None:
                        self._ssl = ssl.create_default_context()
                    context = self._ssl if url.scheme == "https" else None
                    pool = self._pools[key] = _OriginPool(url.host, port, self.max_connections, context)
        return pool

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        timeouts = request.extensions.get("timeout") or {}
        pool = self._pool(request.url)
        data = request_bytes(request, request.read())
        rec = CURRENT_CALL.get()
        stamps_wire = rec is not None and not rec.t_wire  # this attempt is the call's first
        conn = pool.acquire(timeouts)
        try:
            try:
                status = conn.exchange(data, rec, timeouts)
            except _Stale:
                # The server closed this idle connection after the checkout's poll, or its
                # EOF was still on the way: the request died with it, before any byte of an
                # answer. Go's net/http and urllib3 send it again on a new connection
                # (httpcore2 only polls at checkout, and fails the request). Once: a second
                # failure is real. The stale write was not the call's wire start.
                pool.drop(conn)
                if stamps_wire:
                    rec.t_wire = 0
                conn = pool.acquire(timeouts, fresh=True)
                status = conn.exchange(data, rec, timeouts)
        except _Stale:
            pool.drop(conn)
            raise httpx2.RemoteProtocolError("server closed the connection before the response began") from None
        except BaseException:
            pool.drop(conn)  # any failure: close the connection, give back its slot
            raise
        stream = _ResponseStream(conn)
        extensions = {"http_version": b"HTTP/1.1"}
        return httpx2.Response(status, headers=conn.headers, stream=stream, extensions=extensions, request=request)

    def close(self) -> None:
        """Close every connection, idle or in use; later requests raise ConnectError."""
        self.abort()

    def abort(self, reopen: bool = False) -> None:
        """Close every connection, idle or in use, from any thread while requests run: a thread
        blocked reading fails with ReadError at once. Later requests raise ConnectError, or with
        `reopen` open new connections (calls stuck past a drain's grace while the run goes on)."""
        with self._lock:
            self._closed = self._closed or not reopen
            pools = list(self._pools.values())
        for pool in pools:
            pool.close(final=not reopen)

