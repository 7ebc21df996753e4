"""The raw client: the SDK's request bytes for each operation, on loadgen's own HTTP/1.1 pool.

For load beyond what an SDK allows (one SDK call costs ~1.6 ms of CPU here), `--client raw`
sends what `AsyncOpenAI.chat.completions.create` or `AsyncAnthropic.messages.create` would
send for the same prompt: the same JSON body (tests/test_raw_client.py compares them at a
server), the headers that matter (authentication, API version, content type), on the lean
transport's keep-alive connections (loadgen.providers.transport: C-parsed by httptools, O(1)
checkout, the same wire stamps). Each request is rendered once, before the clock starts
(`RequestTable`), so a call costs a table lookup, a write and the parse of its response.

Responses are read as far as the figures need: the status, the usage's output tokens and,
streamed, each event with text (TTFT and ITL on the same clock as the SDK path). What the
SDKs would raise maps to the same error classes. One attempt per call: the raw client makes
no retries (an SDK's retries are its own behaviour, which this client leaves out).
"""

from __future__ import annotations

import collections
import json
import ssl
from typing import Callable
from urllib.parse import urlsplit

from loadgen.prompts import Prompt, anthropic_messages, openai_messages
from loadgen.providers.transport import _EOF, _OriginPool
from loadgen.results import CallRecord
from loadgen.settings import ProviderSettings

DEFAULT_BASE_URL = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}
ANTHROPIC_VERSION = b"2023-06-01"  # what anthropic's SDK sends
MAX_PRERENDERED = 2_000_000  # beyond this many operations a worker renders each request when it is sent


class RawCallError(Exception):
    """A failed raw call, with the error class the SDK path would report for it."""

    def __init__(self, error_class: str, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.status_code = status_code


def request_body(provider: str, prompt: Prompt, model: str, stream: bool) -> dict:
    """The JSON body the provider's SDK sends for `prompt` (as the SDK adapters call it)."""
    if provider == "openai":
        body = {"messages": openai_messages(prompt), "model": model, "max_completion_tokens": prompt.max_tokens}
        if stream:
            body.update(stream=True, stream_options={"include_usage": True})
        return body
    body = {"max_tokens": prompt.max_tokens, "messages": anthropic_messages(prompt), "model": model,
            "system": prompt.system}
    if stream:
        body["stream"] = True
    return body


class RawClient:
    """One provider's calls as raw HTTP/1.1 requests; `call(request, rec)` takes a rendered request."""

    def __init__(self, provider: str, settings: ProviderSettings) -> None:
        self.name = provider
        self._settings = settings
        base = (settings.base_url or DEFAULT_BASE_URL[provider]).rstrip("/")
        url = urlsplit(base)
        secure = url.scheme == "https"
        port = url.port or (443 if secure else 80)
        path = url.path + ("/chat/completions" if provider == "openai" else "/v1/messages")
        context = ssl.create_default_context() if secure else None
        self._pool = _OriginPool(url.scheme, url.hostname, port, settings.pool_size, context)
        self._timeouts = {"connect": settings.timeout_s, "pool": None}
        host = url.netloc.encode()
        key = settings.api_key.encode()
        auth = (b"authorization: Bearer " + key + b"\r\n" if provider == "openai"
                else b"x-api-key: " + key + b"\r\nanthropic-version: " + ANTHROPIC_VERSION + b"\r\n")
        accept = b"text/event-stream" if settings.stream else b"application/json"
        self._head = (b"POST " + path.encode() + b" HTTP/1.1\r\nhost: " + host + b"\r\naccept: " + accept
                      + b"\r\ncontent-type: application/json\r\nuser-agent: loadgen-raw\r\n" + auth)
        self._read = _openai_events if provider == "openai" else _anthropic_events

    def render(self, prompt: Prompt) -> bytes:
        """The whole request for a prompt: head and body, ready for the wire."""
        settings = self._settings
        body = json.dumps(request_body(self.name, prompt, settings.model, settings.stream),
                          separators=(",", ":"), ensure_ascii=False).encode()
        return self._head + b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body

    def begin(self, request: bytes, rec: CallRecord):
        """Write the request now if a warm connection is free; the coroutine returned does the rest.

        The runner calls this in its dispatcher at the call's t_start, so the request leaves when
        it was handed over, not after the loop's other callbacks (loadgen.runner)."""
        if not isinstance(request, bytes):
            request = self.render(request)
        conn = self._pool.take_idle()
        if conn is None:
            return self.call(request, rec)
        return self._complete(conn, conn.start(request, rec), rec)

    async def call(self, request: bytes | Prompt, rec: CallRecord) -> None:
        if not isinstance(request, bytes):
            request = self.render(request)
        try:
            conn = await self._pool.acquire(self._timeouts)
        except Exception as exc:  # httpx2's ConnectError/ConnectTimeout, as the SDK would wrap them
            raise RawCallError("timeout" if "Timeout" in type(exc).__name__ else "connection", str(exc)) from None
        await self._complete(conn, conn.start(request, rec), rec)

    async def _complete(self, conn, head, rec: CallRecord) -> None:
        """Read the response whose request `conn.start` wrote; give the connection back."""
        pool = self._pool
        reusable = False
        try:
            status = await head
            body = None if self._settings.stream else await _whole_body(conn)
            if status >= 300:
                if body is None:
                    body = await _whole_body(conn)
                raise RawCallError(f"http_{status}", f"HTTP {status}: {body[:200]!r}", status)
            if body is not None:
                _read_usage(self.name, body, rec)
            else:
                await self._read(conn, rec)
            reusable = conn.reusable()
        except RawCallError:
            reusable = conn.reusable()
            raise
        except Exception as exc:
            if type(exc).__name__ == "RemoteProtocolError":
                raise RawCallError("stream_cut", str(exc)) from None
            raise
        finally:
            conn.rec = None
            if reusable:
                pool.release(conn)
            else:
                pool.drop(conn)

    async def aclose(self) -> None:
        self._pool.close()


class RequestTable:
    """Every measured and warm-up request of a worker's shard, rendered before the clock starts."""

    def __init__(self, client: RawClient, prompt: Callable[[int, bool], Prompt]) -> None:
        self._client = client
        self._prompt = prompt
        self._measured: dict[int, bytes] = {}
        self._warmup: dict[int, bytes] = {}

    def prepare(self, measured: range | None, warmup: range) -> None:
        render, prompt = self._client.render, self._prompt
        self._warmup = {op: render(prompt(op, True)) for op in warmup}
        if measured is not None and len(measured) <= MAX_PRERENDERED:
            self._measured = {op: render(prompt(op, False)) for op in measured}

    def __call__(self, op_id: int, warmup: bool) -> bytes:
        table = self._warmup if warmup else self._measured
        request = table.pop(op_id, None)  # each op is sent once: its bytes can go
        return request if request is not None else self._client.render(self._prompt(op_id, warmup))


async def _whole_body(conn) -> bytes:
    if conn.complete and conn.chunks and conn.chunks[-1] is _EOF:  # all read already (one packet, usually)
        chunks = conn.chunks
        conn.chunks = collections.deque()
        chunks.pop()
        return b"".join(chunks)
    return b"".join([chunk async for chunk in conn.body(None)])


def _read_usage(provider: str, body: bytes, rec: CallRecord) -> None:
    try:
        data = json.loads(body)
        usage = data["usage"]
        if provider == "openai":
            rec.output_tokens = usage["completion_tokens"]
            rec.input_tokens = usage["prompt_tokens"]
            choices = data.get("choices") or [{}]
            rec.finish_reason = choices[0].get("finish_reason")
        else:
            rec.output_tokens = usage["output_tokens"]
            rec.input_tokens = usage["input_tokens"]
            rec.finish_reason = data.get("stop_reason")
        rec.response_id = data.get("id")
        rec.response_model = data.get("model")
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise RawCallError("bad_response", f"response without usage: {exc!r}") from None


async def _events(conn):
    """The data of each server-sent event, as the bytes arrive."""
    pending = b""
    async for chunk in conn.body(None):
        pending += chunk
        while True:
            end = pending.find(b"\n\n")
            if end < 0:
                break
            event, pending = pending[:end], pending[end + 2:]
            for line in event.split(b"\n"):
                if line.startswith(b"data:"):
                    yield line[5:].strip()


async def _openai_events(conn, rec: CallRecord) -> None:
    async for data in _events(conn):
        if data == b"[DONE]":
            continue  # the body's end follows: read to it, so the connection is reusable
        try:
            chunk = json.loads(data)
        except ValueError:
            raise RawCallError("bad_response", f"malformed stream event {data[:100]!r}") from None
        if "error" in chunk:
            raise RawCallError("stream_error", f"error event: {data[:200]!r}")
        choices = chunk.get("choices")
        if choices:
            choice = choices[0]
            delta = choice.get("delta") or {}
            if delta.get("content") or delta.get("reasoning_content"):
                rec.token()
            if choice.get("finish_reason"):
                rec.finish_reason = choice["finish_reason"]
        usage = chunk.get("usage")
        if usage:
            rec.output_tokens = usage.get("completion_tokens", 0)
            rec.input_tokens = usage.get("prompt_tokens", 0)
        if rec.response_id is None:
            rec.response_id = chunk.get("id")
            rec.response_model = chunk.get("model")


async def _anthropic_events(conn, rec: CallRecord) -> None:
    async for data in _events(conn):
        try:
            event = json.loads(data)
        except ValueError:
            raise RawCallError("bad_response", f"malformed stream event {data[:100]!r}") from None
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("text") or delta.get("thinking"):
                rec.token()
        elif kind == "message_delta":
            usage = event.get("usage") or {}
            rec.output_tokens = usage.get("output_tokens", rec.output_tokens)
            rec.finish_reason = (event.get("delta") or {}).get("stop_reason")
        elif kind == "message_start":
            message = event.get("message") or {}
            rec.response_model = message.get("model")
            rec.response_id = message.get("id")
            rec.input_tokens = (message.get("usage") or {}).get("input_tokens", 0)
        elif kind == "error":
            raise RawCallError("stream_error", f"error event: {data[:200]!r}")
