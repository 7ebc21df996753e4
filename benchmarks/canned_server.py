"""A canned-response OpenAI/Anthropic-compatible server, fast enough to measure a raw client.

It imports nothing from loadgen, so what it counts is an independent witness of what a
generator sent: every request's arrival time (perf_counter_ns, taken when its last byte is
parsed), its path and, if asked, its body. It answers with one fixed chat completion
(`/v1/chat/completions`) or message (`/v1/messages`), streamed as SSE when the request says
`"stream": true`, on uvloop with httptools: one process serves well over 30,000 requests/s
on one core here, beyond the embedded mock's ~10,000.

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
import statistics
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


class Http(asyncio.Protocol):
    def __init__(self, state: State) -> None:
        self.state = state
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        state = self.state
        url, body = self.url.decode(), b"".join(self.body)
        self.url, self.body = b"", []
        path = urlsplit(url).path
        if path.startswith("/_"):
            self.transport.write(_response(json.dumps(self._control(path, parse_qs(urlsplit(url).query))).encode()))
            return
        state.arrivals.append(time.perf_counter_ns())
        if state.capture:
            state.bodies.append(body)
        stream = b'"stream":true' in body.replace(b" ", b"")
        response = RESPONSES.get((path, stream))
        if response is None:
            response = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
        loop = asyncio.get_running_loop()
        wait = state.stall_until - loop.time()
        if wait > 0:
            loop.call_later(wait, self._write, response)
        else:
            self.transport.write(response)

    def _write(self, response: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(response)

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
            state.stall_until = asyncio.get_running_loop().time() + seconds
            return {"stall_s": seconds}
        if path == "/_bodies":
            return {"bodies": [b.decode() for b in state.bodies]}
        return {"error": f"unknown control path {path}"}


async def serve(port: int, capture: bool, ready=None) -> None:
    state = State(capture)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Http(state), "127.0.0.1", port, backlog=4096, reuse_port=True)
    if ready is not None:
        ready()
    async with server:
        await server.serve_forever()


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
