"""A canned-response OpenAI/Anthropic-compatible server, fast enough to measure a raw client.

It imports nothing from loadgen, so what it counts is an independent witness of what a
generator sent: every request's arrival time (the kernel's receive time of its bytes), its path and, if asked, its body. It answers with one fixed chat completion
(`/v1/chat/completions`) or message (`/v1/messages`), streamed as SSE when the request says
`"stream": true`, on uvloop with httptools: one process serves well over 30,000 requests/s
on one core here, beyond the embedded mock's ~10,000. Each arrival is stamped with the kernel's
receive time of its bytes (SO_TIMESTAMPNS, wall clock), so the arrival process it reports is
the one on the wire, whatever this process's own scheduling.

Control (plain JSON, on the same port):
    GET  /_stats            {"count", "first_ns", "last_ns", "cv", "rate"} over the arrivals since the last reset
                            (?skip_s=S&span_s=T: only arrivals from S seconds after the first, for T seconds)
    POST /_reset            forget arrivals (and captured bodies)
    POST /_stall?s=2        answer nothing for S seconds from now (requests wait, then are answered)
    GET  /_bodies           the captured request bodies (started with --capture), in arrival order

    python benchmarks/canned_server.py --port 8123 [--core 1] [--capture]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import struct
import time
from array import array
from urllib.parse import parse_qs, urlsplit

import httptools
import uvloop

COMPLETION = json.dumps({
    "id": "chatcmpl-canned", "object": "chat.completion", "created": 1, "model": "canned",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "A canned answer of eight words here."}}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28},
}).encode()
MESSAGE = json.dumps({
    "id": "msg_canned", "type": "message", "role": "assistant", "model": "canned", "stop_reason": "end_turn",
    "stop_sequence": None, "content": [{"type": "text", "text": "A canned answer of eight words here."}],
    "usage": {"input_tokens": 20, "output_tokens": 8},
}).encode()
WORDS = ["A ", "canned ", "answer ", "of ", "eight ", "words ", "here", "."]


def _sse_openai() -> bytes:
    def chunk(delta: dict, finish=None, usage=None) -> bytes:
        body = {"id": "chatcmpl-canned", "object": "chat.completion.chunk", "created": 1, "model": "canned",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if usage is None else [],
                "usage": usage}
        return b"data: " + json.dumps(body).encode() + b"\n\n"
    out = chunk({"role": "assistant", "content": ""})
    out += b"".join(chunk({"content": w}) for w in WORDS)
    out += chunk({}, finish="stop")
    out += chunk({}, usage={"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28})
    return out + b"data: [DONE]\n\n"


def _sse_anthropic() -> bytes:
    def event(name: str, body: dict) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + json.dumps({"type": name, **body}).encode() + b"\n\n"
    out = event("message_start", {"message": {"id": "msg_canned", "type": "message", "role": "assistant",
                                              "model": "canned", "content": [], "stop_reason": None,
                                              "stop_sequence": None,
                                              "usage": {"input_tokens": 20, "output_tokens": 1}}})
    out += event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
    out += b"".join(event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": w}})
                    for w in WORDS)
    out += event("content_block_stop", {"index": 0})
    out += event("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                   "usage": {"output_tokens": 8}})
    return out + event("message_stop", {})


def _response(body: bytes, content_type: bytes = b"application/json") -> bytes:
    return (b"HTTP/1.1 200 OK\r\ncontent-type: " + content_type + b"\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


RESPONSES = {
    ("/v1/chat/completions", False): _response(COMPLETION),
    ("/v1/chat/completions", True): _response(_sse_openai(), b"text/event-stream"),
    ("/v1/messages", False): _response(MESSAGE),
    ("/v1/messages", True): _response(_sse_anthropic(), b"text/event-stream"),
}


class State:
    def __init__(self, capture: bool) -> None:
        self.arrivals = array("q")
        self.capture = capture
        self.bodies: list[bytes] = []
        self.stall_until = 0.0  # loop time


def _stats(state: State, query: dict) -> dict:
    arrivals = state.arrivals
    if len(arrivals) and ("skip_s" in query or "span_s" in query):
        start = arrivals[0] + int(float(query.get("skip_s", ["0"])[0]) * 1e9)
        end = start + int(float(query.get("span_s", ["1e9"])[0]) * 1e9)
        arrivals = array("q", (t for t in arrivals if start <= t < end))
    count = len(arrivals)
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    cv = statistics.pstdev(gaps) / statistics.fmean(gaps) if len(gaps) > 1 and statistics.fmean(gaps) > 0 else None
    span = (arrivals[-1] - arrivals[0]) / 1e9 if count > 1 else 0.0
    return {"count": count, "first_ns": arrivals[0] if count else None, "last_ns": arrivals[-1] if count else None,
            "cv": cv, "rate": (count - 1) / span if span > 0 else None}


# Linux: stamp each received segment with the kernel's receive time (struct timespec), so an
# arrival's time is when its bytes reached the socket, not when this process got to read them.
SO_TIMESTAMPNS = 35
TIMESPEC = struct.Struct("@qq")


class Connection:
    """One client connection, read with recvmsg for the kernel's receive timestamps."""

    def __init__(self, state: State, sock: socket.socket, loop, open_set: set) -> None:
        self.state, self.sock, self.loop, self.open_set = state, sock, loop, open_set
        open_set.add(self)
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.stamp = 0
        self.pending = b""  # response bytes the socket did not take yet
        loop.add_reader(sock.fileno(), self.readable)

    def readable(self) -> None:
        try:
            data, ancillary, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(TIMESPEC.size))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = TIMESPEC.unpack(value[:TIMESPEC.size])
                self.stamp = seconds * 1_000_000_000 + nanoseconds
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            self.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        state = self.state
        url, body = self.url.decode(), b"".join(self.body)
        self.url, self.body = b"", []
        parts = urlsplit(url)
        if parts.path.startswith("/_"):
            self.write(_response(json.dumps(self._control(parts.path, parse_qs(parts.query))).encode()))
            return
        state.arrivals.append(self.stamp or time.time_ns())
        if state.capture:
            state.bodies.append(body)
        stream = b'"stream":true' in body.replace(b" ", b"")
        response = RESPONSES.get((parts.path, stream)) or b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
        wait = state.stall_until - self.loop.time()
        if wait > 0:
            self.loop.call_later(wait, self.write, response)
        else:
            self.write(response)

    def write(self, data: bytes) -> None:
        if self.sock.fileno() < 0:
            return
        if self.pending:
            self.pending += data
            return
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.close()
            return
        if sent < len(data):
            self.pending = data[sent:]
            self.loop.add_writer(self.sock.fileno(), self.writable)

    def writable(self) -> None:
        try:
            sent = self.sock.send(self.pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        self.pending = self.pending[sent:]
        if not self.pending:
            self.loop.remove_writer(self.sock.fileno())

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            self.loop.remove_writer(self.sock.fileno())
            self.sock.close()
        self.open_set.discard(self)

    def _control(self, path: str, query: dict) -> dict:
        state = self.state
        if path == "/_stats":
            return _stats(state, query)
        if path == "/_reset":
            state.arrivals = array("q")
            state.bodies = []
            return {"reset": True}
        if path == "/_stall":
            seconds = float(query.get("s", ["2"])[0])
            state.stall_until = self.loop.time() + seconds
            return {"stall_s": seconds}
        if path == "/_bodies":
            return {"bodies": [b.decode() for b in state.bodies]}
        return {"error": f"unknown control path {path}"}


async def serve(port: int, capture: bool, ready=None) -> None:
    state = State(capture)
    loop = asyncio.get_running_loop()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(4096)
    listener.setblocking(False)
    connections: set[Connection] = set()

    def accept() -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            Connection(state, sock, loop, connections)

    loop.add_reader(listener.fileno(), accept)
    if ready is not None:
        ready()
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--core", type=int, default=None, help="pin to this core")
    parser.add_argument("--capture", action="store_true", help="keep every request body for /_bodies")
    args = parser.parse_args()
    if args.core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.core})
    try:
        uvloop.run(serve(args.port, args.capture, ready=lambda: print(f"listening on {args.port}", flush=True)))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
