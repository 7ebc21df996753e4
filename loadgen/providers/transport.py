"""A lean HTTP/1.1 transport for the SDKs: O(1) connection checkout, C-speed parsing.

Why not httpx2's default pool: on every request start and every response close it walks
all its connections and asks each whether it has expired, through several layers of
anyio attribute lookups. Measured here, that walk cost more CPU per call than the rest
of the generator together, and it grows with the connections in flight — so the
generator slowed down exactly when a stalled server made it hold more connections.

This transport plugs into `httpx2.AsyncClient(transport=...)`, the SDKs' documented
seam, so the SDK code path (and every tracer that wraps it) is unchanged. Idle
connections sit in a LIFO per origin; a connection closed by the server is noticed by
`connection_lost` (or, if the loop has not run since, by a poll at checkout) and never
handed out. A request cancelled or timed out at any step gives its pool slot back.
Responses are parsed by httptools (C) and streamed, so SSE works. Errors and timeouts
are raised as httpx2's exception types, which the SDKs map to APIConnectionError and
APITimeoutError as usual.

It also stamps the call's wire times on its record (found through CURRENT_CALL):
t_wire right before the request's bytes are written, t_response_end when the parser
has read the response's last byte. Time before t_wire is the client's (prompt, SDK,
tracer, waiting for a pooled connection or connecting); time after t_response_end is
the client's too (parsing, tracer work after the response).
"""

from __future__ import annotations

import asyncio
import collections
import select
import ssl
import time
from typing import AsyncIterator

import httptools
import httpx2

from loadgen.providers.base import CURRENT_CALL
from loadgen.results import CallRecord

_EOF = object()


class KeepAlive(asyncio.Protocol):
    """What a pooled keep-alive connection needs to be handed out again (this transport's, the raw client's)."""

    transport: asyncio.Transport | None
    closed: bool
    poller: select.poll | None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def still_open(self) -> bool:
        # If the server closed this idle connection while the loop was busy, connection_lost
        # has not run yet and the EOF sits unread. An idle connection has nothing to read,
        # so anything readable means it is finished (httpx2's own pool checks the same).
        if self.closed or self.transport.is_closing():
            return False
        if self.poller is None:
            self.poller = select.poll()
            self.poller.register(self.transport.get_extra_info("socket").fileno(), select.POLLIN)
        return not self.poller.poll(0)

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True


class _Connection(KeepAlive):
    """One keep-alive HTTP/1.1 connection; one response at a time."""

    def __init__(self, pool: "_OriginPool") -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.parser = httptools.HttpResponseParser(self)
        self.headers: list[tuple[bytes, bytes]] = []
        self.head: asyncio.Future | None = None
        self.chunks: collections.deque = collections.deque()
        self.wakeup: asyncio.Future | None = None
        self.complete = self.keep_alive = False
        self.until_close = False  # the body ends when the server closes
        self.error: Exception | None = None
        self.rec: CallRecord | None = None  # the call whose response this is, for t_response_end
        self.poller: select.poll | None = None  # for still_open, made at its first use

    # -- asyncio.Protocol ---------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx2.RemoteProtocolError(f"malformed HTTP response: {exc}"))
            self.transport.close()

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.pool.forget(self)
        if self.until_close and exc is None and not self.complete:
            self.on_message_complete()
        elif not self.complete:
            self._fail(httpx2.RemoteProtocolError("server closed the connection before the response ended"))

    # -- httptools callbacks ----------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        # httptools answers should_keep_alive() only until the message completes.
        self.keep_alive = self.parser.should_keep_alive()
        # No length and no chunking: the body ends when the server closes (RFC 9112 6.3);
        # httptools cannot be told of the EOF, so connection_lost ends it.
        self.until_close = not self.keep_alive and not any(
            name.lower() in (b"content-length", b"transfer-encoding") for name, _ in self.headers
        )
        if self.head is not None and not self.head.done():
            self.head.set_result(self.parser.get_status_code())

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self._wake()

    def on_message_complete(self) -> None:
        # The last byte is read now, inside data_received, however late the SDK consumes
        # it: anything after this is the client's own time (the stream's backlog included).
        if self.rec is not None:
            self.rec.t_response_end = time.perf_counter_ns()
        self.complete = True
        self.chunks.append(_EOF)
        self._wake()

    # -- helpers ------------------------------------------------------------------
    def _wake(self) -> None:
        if self.wakeup is not None and not self.wakeup.done():
            self.wakeup.set_result(None)

    def _fail(self, exc: Exception) -> None:
        self.error = exc
        if self.head is not None and not self.head.done():
            self.head.set_exception(exc)
        self._wake()

    def start(self, data: bytes, rec: CallRecord | None) -> asyncio.Future:
        self.headers = []
        self.chunks.clear()
        self.complete = self.keep_alive = self.until_close = False
        self.error = None
        self.parser = httptools.HttpResponseParser(self)
        self.head = asyncio.get_running_loop().create_future()
        self.rec = rec
        if rec is not None:
            # With SDK retries each attempt comes through here: t_wire stays the FIRST
            # attempt's write and t_response_end becomes the LAST attempt's end (reset
            # now, set when this response completes), so the wire time includes every
            # retry and the SDK's backoff between them.
            if not rec.t_wire:
                rec.t_wire = time.perf_counter_ns()
            rec.t_response_end = 0
        self.transport.write(data)
        return self.head

    async def body(self, read_timeout: float | None) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        while True:
            while self.chunks:
                chunk = self.chunks.popleft()
                if chunk is _EOF:
                    return
                yield chunk
            if self.error is not None:
                raise self.error
            self.wakeup = loop.create_future()
            try:
                async with asyncio.timeout(read_timeout):
                    await self.wakeup
            except TimeoutError:
                raise httpx2.ReadTimeout("timed out waiting for response body") from None
            finally:
                self.wakeup = None

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed and self.error is None


class _ResponseStream(httpx2.AsyncByteStream):
    def __init__(self, conn: _Connection, read_timeout: float | None) -> None:
        self.conn = conn
        self.read_timeout = read_timeout
        self.done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.conn.body(self.read_timeout):
            yield chunk

    async def aclose(self) -> None:
        if self.done:
            return
        self.done = True
        hand_back(self.conn)


def hand_back(conn) -> None:
    """A response closed by its reader: its connection back to its pool, or dropped if it cannot
    carry another request (both lean transports' response streams end here)."""
    conn.rec = None  # a response ended by this close can no longer stamp the call
    if conn.reusable():
        conn.pool.release(conn)
    else:
        conn.pool.drop(conn)


class _OriginPool:
    """Connections to one scheme://host:port, at most `limit` open at once."""

    def __init__(self, scheme: str, host: str, port: int, limit: int, ssl_context: ssl.SSLContext | None) -> None:
        self.scheme, self.host, self.port, self.limit, self.ssl_context = scheme, host, port, limit, ssl_context
        self.idle: list[_Connection] = []
        self.open: set[_Connection] = set()
        self.waiters: collections.deque[asyncio.Future] = collections.deque()

    async def acquire(self, timeouts: dict) -> _Connection:
        deadline = None  # of the pool timeout, fixed at the first wait
        while True:
            while self.idle:
                conn = self.idle.pop()  # LIFO: the warmest connection
                if conn.still_open():
                    return conn
                self.drop(conn)
            if len(self.open) < self.limit:
                return await self._connect(timeouts)
            if deadline is None and timeouts.get("pool") is not None:
                deadline = asyncio.get_running_loop().time() + timeouts["pool"]
            conn = await self._wait(deadline)
            if conn is not None:
                if conn.still_open():
                    return conn
                self.drop(conn)

    async def _wait(self, deadline: float | None) -> _Connection | None:
        """A connection handed over by a release, or None when a slot opens."""
        # A full pool is client-side queueing, which the latency from intended start includes.
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                return await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                # Handed a connection or a slot just as it gave up (timed out or cancelled):
                # pass it on, or it is lost to the pool for good.
                conn = waiter.result()
                if conn is None:
                    self._hand_over(None)
                else:
                    self.release(conn)
            elif waiter in self.waiters:
                self.waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise httpx2.PoolTimeout("no connection free in the pool in time") from None
            raise

    async def _connect(self, timeouts: dict) -> _Connection:
        conn = _Connection(self)
        self.open.add(conn)
        try:
            async with asyncio.timeout(timeouts.get("connect")):
                await asyncio.get_running_loop().create_connection(
                    lambda: conn, self.host, self.port,
                    ssl=self.ssl_context, server_hostname=self.host if self.ssl_context else None,
                )
        except BaseException as exc:  # cancelled too: the slot must not stay taken
            self.forget(conn)
            if isinstance(exc, TimeoutError):
                raise httpx2.ConnectTimeout(f"connecting to {self.host}:{self.port} timed out") from None
            if isinstance(exc, OSError):
                raise httpx2.ConnectError(f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}") from None
            raise
        return conn

    def _hand_over(self, conn: _Connection | None) -> bool:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    def release(self, conn: _Connection) -> None:
        if not self._hand_over(conn):
            self.idle.append(conn)

    def forget(self, conn: _Connection) -> None:
        if conn in self.open:
            self.open.discard(conn)
            self._hand_over(None)  # a slot opened: let one waiter connect anew

    def drop(self, conn: _Connection) -> None:
        conn.close()
        self.forget(conn)

    def close(self) -> None:
        for conn in list(self.open):
            conn.close()
        self.open.clear()
        self.idle.clear()


class LeanTransport(httpx2.AsyncBaseTransport):
    """HTTP/1.1 keep-alive pool with O(1) checkout, for httpx2.AsyncClient(transport=...)."""

    def __init__(self, max_connections: int = 100) -> None:
        self.max_connections = max_connections
        self._pools: dict[tuple[bytes, bytes, int], _OriginPool] = {}
        self._ssl: ssl.SSLContext | None = None

    def _pool(self, url: httpx2.URL) -> _OriginPool:
        port = url.port or (443 if url.scheme == "https" else 80)
        key = (url.raw_scheme, url.raw_host, port)
        pool = self._pools.get(key)
        if pool is None:
            if url.scheme == "https" and self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl if url.scheme == "https" else None
            pool = self._pools[key] = _OriginPool(url.scheme, url.host, port, self.max_connections, context)
        return pool

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        timeouts = request.extensions.get("timeout") or {}
        pool = self._pool(request.url)
        body = await request.aread() if not isinstance(request.stream, httpx2.ByteStream) else request.content
        data = request_bytes(request, body)

        conn = await pool.acquire(timeouts)
        try:
            async with asyncio.timeout(timeouts.get("read")):
                status = await conn.start(data, CURRENT_CALL.get())
        except BaseException as exc:  # cancelled too: the slot must not stay taken
            pool.drop(conn)
            if isinstance(exc, TimeoutError):
                raise httpx2.ReadTimeout("timed out waiting for the response head") from None
            raise
        stream = _ResponseStream(conn, timeouts.get("read"))
        extensions = {"http_version": b"HTTP/1.1"}
        return httpx2.Response(status, headers=conn.headers, stream=stream, extensions=extensions, request=request)

    async def aclose(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


def request_bytes(request: httpx2.Request, body: bytes) -> bytes:
    """The request as both lean transports write it: a host header if missing, a streamed body as one chunk."""
    url = request.url
    head = [b"%s %s HTTP/1.1\r\n" % (request.method.encode(), url.raw_path)]
    has_host = chunked = False
    for name, value in request.headers.raw:
        lower = name.lower()
        if lower == b"host":
            has_host = True
        elif lower == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        head.append(b"%s: %s\r\n" % (name, value))
    if not has_host:
        head.append(b"host: %s\r\n" % url.netloc)
    head.append(b"\r\n")
    if chunked:  # httpx2 announces a streamed body as chunked; it goes out as one chunk
        body = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
    return b"".join(head) + body
