"""A lean HTTP/1.1 transport for the SDKs: O(1) connection checkout, C-speed parsing.

Why not httpx2's default pool: on every request start and every response close it walks
all its connections and asks each whether it has expired, through several layers of
anyio attribute lookups. Measured here, that walk cost more CPU per call than the rest
of the generator together, and it grows with the connections in flight — so the
generator slowed down exactly when a stalled server made it hold more connections.

This transport plugs into `httpx2.AsyncClient(transport=...)`, the SDKs' documented
seam, so the SDK code path (and every tracer that wraps it) is unchanged. Idle
connections sit in a LIFO per origin; a connection closed by the server is noticed by
`connection_lost` and never handed out. Responses are parsed by httptools (C) and
streamed, so SSE works. Errors and timeouts are raised as httpx2's exception types,
which the SDKs map to APIConnectionError and APITimeoutError as usual.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from typing import AsyncIterator

import httptools
import httpx2

_EOF = object()


def _timeouts(request: httpx2.Request) -> dict:
    return request.extensions.get("timeout") or {}


class _Connection(asyncio.Protocol):
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
        self.complete = False
        self.error: Exception | None = None

    # -- asyncio.Protocol ---------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx2.RemoteProtocolError(f"malformed HTTP response: {exc}"))
            self.transport.close()

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.pool.forget(self)
        if not self.complete:
            self._fail(httpx2.RemoteProtocolError("server closed the connection before the response ended"))

    # -- httptools callbacks ----------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.head is not None and not self.head.done():
            self.head.set_result(self.parser.get_status_code())

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self._wake()

    def on_message_complete(self) -> None:
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

    def start(self, data: bytes) -> asyncio.Future:
        self.headers = []
        self.chunks.clear()
        self.complete = False
        self.error = None
        self.parser = httptools.HttpResponseParser(self)
        self.head = asyncio.get_running_loop().create_future()
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
        return self.complete and not self.closed and self.error is None and self.parser.should_keep_alive()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True


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
        conn = self.conn
        if conn.reusable():
            conn.pool.release(conn)
        else:
            conn.close()
            conn.pool.forget(conn)


class _OriginPool:
    """Connections to one scheme://host:port, at most `limit` open at once."""

    def __init__(self, scheme: str, host: str, port: int, limit: int, ssl_context: ssl.SSLContext | None) -> None:
        self.scheme, self.host, self.port = scheme, host, port
        self.limit = limit
        self.ssl_context = ssl_context
        self.idle: list[_Connection] = []
        self.open: set[_Connection] = set()
        self.waiters: collections.deque[asyncio.Future] = collections.deque()

    async def acquire(self, timeouts: dict) -> _Connection:
        while self.idle:
            conn = self.idle.pop()  # LIFO: the warmest connection
            if not conn.closed:
                return conn
        if len(self.open) >= self.limit:
            # Wait for a release; a full pool is client-side queueing, which the
            # latency from intended start includes.
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            try:
                async with asyncio.timeout(timeouts.get("pool")):
                    conn = await waiter
            except TimeoutError:
                raise httpx2.PoolTimeout("no connection free in the pool in time") from None
            finally:
                if waiter in self.waiters:
                    self.waiters.remove(waiter)
            if conn is not None:
                return conn
            return await self.acquire(timeouts)
        return await self._connect(timeouts)

    async def _connect(self, timeouts: dict) -> _Connection:
        loop = asyncio.get_running_loop()
        conn = _Connection(self)
        self.open.add(conn)
        try:
            async with asyncio.timeout(timeouts.get("connect")):
                await loop.create_connection(
                    lambda: conn, self.host, self.port,
                    ssl=self.ssl_context, server_hostname=self.host if self.ssl_context else None,
                )
        except TimeoutError:
            self.forget(conn)
            raise httpx2.ConnectTimeout(f"connecting to {self.host}:{self.port} timed out") from None
        except OSError as exc:
            self.forget(conn)
            raise httpx2.ConnectError(f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}") from None
        return conn

    def release(self, conn: _Connection) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self.idle.append(conn)

    def forget(self, conn: _Connection) -> None:
        if conn in self.open:
            self.open.discard(conn)
            # A slot opened: let one waiter connect anew.
            while self.waiters:
                waiter = self.waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    break

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
            context = None
            if url.scheme == "https":
                if self._ssl is None:
                    self._ssl = ssl.create_default_context()
                context = self._ssl
            pool = self._pools[key] = _OriginPool(url.scheme, url.host, port, self.max_connections, context)
        return pool

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        timeouts = _timeouts(request)
        url = request.url
        pool = self._pool(url)
        body = await request.aread() if not isinstance(request.stream, httpx2.ByteStream) else request.content
        head = [b"%s %s HTTP/1.1\r\n" % (request.method.encode(), url.raw_path)]
        has_host = False
        for name, value in request.headers.raw:
            if name.lower() == b"host":
                has_host = True
            head.append(b"%s: %s\r\n" % (name, value))
        if not has_host:
            head.append(b"host: %s\r\n" % url.netloc)
        head.append(b"\r\n")
        data = b"".join(head) + body

        conn = await pool.acquire(timeouts)
        try:
            async with asyncio.timeout(timeouts.get("read")):
                status = await conn.start(data)
        except TimeoutError:
            conn.close()
            pool.forget(conn)
            raise httpx2.ReadTimeout("timed out waiting for the response head") from None
        except BaseException:
            conn.close()
            pool.forget(conn)
            raise
        return httpx2.Response(
            status_code=status,
            headers=conn.headers,
            stream=_ResponseStream(conn, timeouts.get("read")),
            extensions={"http_version": b"HTTP/1.1"},
            request=request,
        )

    async def aclose(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
