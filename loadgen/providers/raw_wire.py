"""The raw client's HTTP/1.1 pool: calls completed by callbacks, no task or future per call.

At 10,000 calls/s one worker has 100 µs per call for everything; a coroutine, a task, a
future and a deadline timer per call cost about half of it here, and while the loop works
through them, sends that fall due wait and leave in bunches (the arrival process at the
server loses its shape). So the raw client's calls are callbacks: the dispatcher writes a
request on an idle keep-alive connection at the call's t_start (`WirePool.send`); the
connection's protocol parses the response as its bytes arrive (httptools, C) and, at its
last byte, hands the filled record to the runner's `done(rec, message)`.

A call that finds no idle connection opens one (up to the pool's limit; beyond, it waits in
line, and its wait is in its latency). Deadlines are swept every 100 ms rather than timed per
call: a call past its deadline fails as 'timeout' within 100 ms of it (the default deadline
is 60 s). Stamps are the SDK path's: t_wire when the request is written, t_response_end at the
response's last byte.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from typing import Callable

import httptools

from loadgen.providers.transport import KeepAlive
from loadgen.results import CallRecord

SWEEP_S = 0.1
# done(rec, message): the call is over; rec.error is None or its class, message its detail.
Done = Callable[[CallRecord, "str | None"], None]


class Reader:
    """What a response's body says, read as it arrives: `feed` each chunk, `end` at the last byte
    with the status; `end` returns None, or (error class, detail) for a response that failed."""

    def feed(self, chunk: bytes, rec: CallRecord) -> None: ...

    def end(self, rec: CallRecord, status: int) -> tuple[str, str] | None: ...


class WireConnection(KeepAlive):
    """One keep-alive connection; one call at a time, finished from the parser's callbacks."""

    def __init__(self, pool: "WirePool") -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.rec: CallRecord | None = None
        self.done: Done | None = None
        self.reader: Reader | None = None
        self.deadline = 0
        self.status = 0
        self.keep_alive = True
        self.poller = None  # KeepAlive.still_open makes it at its first use

    # -- a call ----------------------------------------------------------------------
    def send(self, request: bytes, rec: CallRecord, done: Done, deadline: int) -> None:
        self.rec, self.done, self.deadline = rec, done, deadline
        self.reader = self.pool.new_reader()
        self.status = 0
        rec.t_wire = time.perf_counter_ns()
        self.transport.write(request)

    def finish(self, error: str | None, message: str | None, reusable: bool) -> None:
        rec, done = self.rec, self.done
        if rec is None:
            return
        self.rec = self.done = self.reader = None
        rec.error = error
        if reusable and not self.closed:
            self.pool.release(self)
        else:
            self.pool.drop(self)
        done(rec, message)

    # -- asyncio.Protocol and httptools callbacks ---------------------------------------
    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.finish("bad_response", f"malformed HTTP response: {exc}", reusable=False)

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.pool.forget(self)
        self.finish("stream_cut" if self.status else "connection",
                    "server closed the connection before the response ended", reusable=False)

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        if self.reader is not None:
            self.reader.feed(body, self.rec)

    def on_message_complete(self) -> None:
        rec = self.rec
        if rec is None:
            return
        rec.t_response_end = time.perf_counter_ns()
        failed = self.reader.end(rec, self.status)
        self.finish(*(failed or (None, None)), reusable=self.keep_alive)


class WirePool:
    """Keep-alive connections to one origin: idle ones last in, first out; at most `limit` open."""

    def __init__(self, host: str, port: int, limit: int, context: ssl.SSLContext | None, timeout_s: float,
                 new_reader: Callable[[], Reader]) -> None:
        self.host, self.port, self.limit, self.context = host, port, limit, context
        self.timeout_ns = int(timeout_s * 1e9)
        self.new_reader = new_reader
        self.idle: list[WireConnection] = []
        self.open: set[WireConnection] = set()
        self.busy: set[WireConnection] = set()
        self.waiting: collections.deque = collections.deque()  # (request, rec, done, deadline)
        self.connecting: set[asyncio.Task] = set()
        self._sweeper: asyncio.TimerHandle | None = None

    def send(self, request: bytes, rec: CallRecord, done: Done) -> None:
        """Write the request now on an idle connection, or open one, or wait in line for one."""
        deadline = time.perf_counter_ns() + self.timeout_ns
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(SWEEP_S, self._sweep)
        while self.idle:
            conn = self.idle.pop()
            if conn.still_open():
                self.busy.add(conn)
                conn.send(request, rec, done, deadline)
                return
            self.drop(conn)
        if len(self.open) + len(self.connecting) < self.limit:
            self._connect((request, rec, done, deadline))
        else:
            self.waiting.append((request, rec, done, deadline))

    async def warm(self, connections: int) -> int:
        """Open idle connections up to `connections` (within the limit) before the clock starts;
        how many are open. A burst of calls (a server that paused for 30 ms at 20,000/s leaves
        600 in flight) then finds connections ready: opening hundreds at once starved the
        dispatcher for milliseconds (dispatch-lag p99 2.3 ms, a server CV of 2.1)."""
        wanted = min(connections, self.limit) - len(self.open)

        async def one() -> None:
            try:
                conn = await self._connection()
            except OSError:
                return  # the run will count what fails; warming is best effort
            self.open.add(conn)
            self.idle.append(conn)

        for start in range(0, max(wanted, 0), 64):  # 64 at a time: no storm of our own at the server
            await asyncio.gather(*(one() for _ in range(min(64, wanted - start))))
        return len(self.open)

    async def _connection(self) -> WireConnection:
        """A new connection to the origin, connected (OSError when it cannot be)."""
        conn = WireConnection(self)
        await asyncio.get_running_loop().create_connection(
            lambda: conn, self.host, self.port, ssl=self.context, server_hostname=self.host if self.context else None)
        return conn

    def _connect(self, call: tuple) -> None:
        task = asyncio.get_running_loop().create_task(self._open(call))
        self.connecting.add(task)
        task.add_done_callback(self.connecting.discard)

    async def _open(self, call: tuple) -> None:
        request, rec, done, deadline = call
        try:
            conn = await self._connection()
        except asyncio.CancelledError:
            rec.error = "cancelled"
            done(rec, None)
            raise
        except OSError as exc:
            rec.error = "connection"
            done(rec, f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}")
            self._next_waiting()
            return
        self.open.add(conn)
        self.busy.add(conn)
        conn.send(request, rec, done, deadline)

    def release(self, conn: WireConnection) -> None:
        self.busy.discard(conn)
        now = time.perf_counter_ns()
        while self.waiting:
            request, rec, done, deadline = self.waiting.popleft()
            if now < deadline:
                self.busy.add(conn)
                conn.send(request, rec, done, deadline)
                return
            rec.error = "timeout"
            done(rec, "no connection free in the pool before the deadline")
        self.idle.append(conn)

    def forget(self, conn: WireConnection) -> None:
        self.open.discard(conn)
        self.busy.discard(conn)

    def drop(self, conn: WireConnection) -> None:
        conn.close()
        self.forget(conn)
        self._next_waiting()

    def _next_waiting(self) -> None:
        if self.waiting and len(self.open) + len(self.connecting) < self.limit:
            self._connect(self.waiting.popleft())

    def _sweep(self) -> None:
        """Fail the calls past their deadline: on a connection (closed), or still in line."""
        now = time.perf_counter_ns()
        for conn in [conn for conn in self.busy if conn.rec is not None and now > conn.deadline]:
            conn.finish("timeout", f"no response within {self.timeout_ns / 1e9:g} s", reusable=False)
        while self.waiting and now > self.waiting[0][3]:
            _, rec, done, _ = self.waiting.popleft()
            rec.error = "timeout"
            done(rec, "no connection free in the pool before the deadline")
        self._sweeper = asyncio.get_running_loop().call_later(SWEEP_S, self._sweep)

    def abort_all(self, error: str) -> None:
        """End every call in flight or in line with `error` (a stop past its grace)."""
        for conn in list(self.busy):
            conn.finish(error, None, reusable=False)
        while self.waiting:
            _, rec, done, _ = self.waiting.popleft()
            rec.error = error
            done(rec, None)
        for task in list(self.connecting):
            task.cancel()

    def close(self) -> None:
        self.abort_all("cancelled")
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self.open) + self.idle:
            conn.close()
        self.open.clear()
        self.idle.clear()
