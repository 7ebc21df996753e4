"""The collector's side of the wire: reading a body, OTLP answers, and resetting a connection.

Kept apart from `app.py`'s request flow: these are the ASGI messages and encodings an
answer is made of, the same for every route.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx2
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from .decode import JSON, PROTOBUF

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

# The server puts a callable here that resets the request's TCP connection (see server.py).
RESET_EXTENSION = "loadgen.connection_reset"
MEDIA_TYPE = {PROTOBUF: b"application/x-protobuf", JSON: b"application/json"}
# gRPC status codes carried in the google.rpc.Status body of an error answer.
_RPC_CODE = {400: 3, 413: 8, 415: 3, 429: 8, 503: 14}


class ConnectionReset(httpx2.RemoteProtocolError):
    """Raised in place of a TCP reset when the app runs without a server that can reset (in-process).

    It is httpx2's "peer closed the connection" error, so a client calling the app
    through httpx2.ASGITransport sees the same kind of error as one on a socket.
    """


def request_headers(scope: Scope) -> tuple[bytes, bytes]:
    """(content-type, content-encoding) of a request; b"" when absent."""
    content_type = content_encoding = b""
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
        elif name == b"content-encoding":
            content_encoding = value
    return content_type, content_encoding


def export_response(encoding: str, rejected: int) -> bytes:
    """An ExportTraceServiceResponse, with partial_success when spans were rejected."""
    message = f"{rejected} spans rejected by the partial_success fault"
    if encoding == JSON:
        if not rejected:
            return b"{}"
        # proto3 JSON: int64 as a string.
        return json.dumps({"partialSuccess": {"rejectedSpans": str(rejected), "errorMessage": message}}).encode()
    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    return response.SerializeToString()


def retry_after(seconds: float | None) -> Headers:
    """A Retry-After header in delay-seconds (fractions kept: the OTel SDK's exporter reads them)."""
    if seconds is None:
        return []
    return [(b"retry-after", b"%d" % seconds if seconds == int(seconds) else b"%g" % seconds)]


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None if the client went away first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def wait_unless_gone(receive: Receive, seconds: float) -> bool:
    """Sleep `seconds`; False as soon as the client hangs up instead."""
    gone = asyncio.ensure_future(receive())
    try:
        await asyncio.wait({gone}, timeout=seconds)
        return not gone.done()
    finally:
        gone.cancel()


async def reset_connection(scope: Scope, receive: Receive) -> None:
    """Reset the request's connection without an answer."""
    reset = scope.get("extensions", {}).get(RESET_EXTENSION)
    if reset is None:
        raise ConnectionReset("the collector reset the connection (fault)")
    reset()
    # Wait until the server has seen the connection go, so it does not answer with a 500.
    while (await receive())["type"] != "http.disconnect":
        pass


async def send_bytes(send: Send, status: int, body: bytes, content_type: bytes, headers: Headers | None = None) -> None:
    head = [(b"content-type", content_type), (b"content-length", b"%d" % len(body)), *(headers or ())]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


async def send_status(send: Send, status: int, message: str, encoding: str, headers: Headers | None = None) -> None:
    """An OTLP/HTTP error answer: a google.rpc.Status in the request's encoding."""
    code = _RPC_CODE.get(status, 2)
    if encoding == JSON:
        body = json.dumps({"code": code, "message": message}).encode()
    else:
        body = status_pb2.Status(code=code, message=message).SerializeToString()
    await send_bytes(send, status, body, MEDIA_TYPE[encoding], headers)


async def send_json(send: Send, status: int, obj: Any) -> None:
    await send_bytes(send, status, json.dumps(obj, separators=(",", ":")).encode(), b"application/json")
