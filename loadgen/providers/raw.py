"""The raw client: the SDK's request bytes for each operation, at wire speed.

For load beyond what an SDK allows (one SDK call costs ~1.6 ms of CPU here), `--client raw`
sends what `AsyncOpenAI.chat.completions.create` or `AsyncAnthropic.messages.create` would
send for the same prompt: the same JSON body (tests/test_raw_client.py compares them at a
server), the headers that matter (authentication, API version, content type), on keep-alive
HTTP/1.1 connections whose calls end in callbacks (loadgen.providers.raw_wire). Each request is
rendered once, before the clock starts (`RequestTable`), so a call costs a table lookup, a
write and the parse of its response.

Responses are read as far as the figures need: the status, the usage's tokens and, streamed,
each event with text (TTFT and ITL on the same clock as the SDK path). Failures get the
SDK path's error classes. One attempt per call: the raw client makes no retries (an SDK's
retries are its own behaviour, which this client leaves out).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Callable
from urllib.parse import urlsplit

from loadgen.prompts import Prompt
from loadgen.prompts import request_body as prompt_body
from loadgen.providers.raw_wire import Done, Reader, WirePool
from loadgen.results import CallRecord
from loadgen.settings import ProviderSettings

DEFAULT_BASE_URL = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}
ANTHROPIC_VERSION = b"2023-06-01"  # what anthropic's SDK sends
MAX_PRERENDERED = 2_000_000  # beyond this many operations a worker renders each request when it is sent


class RawCallError(Exception):
    """A failed raw call, with the error class the SDK path would report for it."""

    def __init__(self, error_class: str, message: str) -> None:
        super().__init__(message)
        self.error_class = error_class


def request_body(provider: str, prompt: Prompt, model: str, stream: bool) -> dict:
    """The JSON body the provider's SDK sends for `prompt` (as the SDK adapters call it): the
    prompt's body (loadgen.prompts.request_body) and, streamed, what the adapters add for it."""
    body = prompt_body(provider, prompt, model)
    if stream:
        body["stream"] = True
        if provider == "openai":
            body["stream_options"] = {"include_usage": True}
    return body


class RawClient:
    """One provider's calls as raw HTTP/1.1 requests, for the runner's `send_raw` path."""

    def __init__(self, provider: str, settings: ProviderSettings) -> None:
        self.name = provider
        self._settings = settings
        url = urlsplit((settings.base_url or DEFAULT_BASE_URL[provider]).rstrip("/"))
        secure = url.scheme == "https"
        path = url.path + ("/chat/completions" if provider == "openai" else "/v1/messages")
        if settings.stream:
            reader = _OpenAIStream if provider == "openai" else _AnthropicStream
        else:
            reader = _OpenAIBody if provider == "openai" else _AnthropicBody
        self._pool = WirePool(url.hostname, url.port or (443 if secure else 80), settings.pool_size,
                              ssl.create_default_context() if secure else None, settings.timeout_s, reader)
        key = settings.api_key.encode()
        auth = (b"authorization: Bearer " + key + b"\r\n" if provider == "openai"
                else b"x-api-key: " + key + b"\r\nanthropic-version: " + ANTHROPIC_VERSION + b"\r\n")
        accept = b"text/event-stream" if settings.stream else b"application/json"
        self._head = (b"POST " + path.encode() + b" HTTP/1.1\r\nhost: " + url.netloc.encode() + b"\r\naccept: "
                      + accept + b"\r\ncontent-type: application/json\r\nuser-agent: loadgen-raw\r\n" + auth)

    def render(self, prompt: Prompt) -> bytes:
        """The whole request for a prompt: head and body, ready for the wire."""
        settings = self._settings
        body = json.dumps(request_body(self.name, prompt, settings.model, settings.stream),
                          separators=(",", ":"), ensure_ascii=False).encode()
        return self._head + b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body

    def send_raw(self, request: bytes | Prompt, rec: CallRecord, done: Done) -> None:
        """Write the request now (or as soon as a connection is free); `done(rec, message)` when it is over.

        The runner calls this in its dispatcher at the call's t_start, so the request leaves when
        it was handed over, not after the loop's other work (loadgen.runner)."""
        if not isinstance(request, bytes):
            request = self.render(request)
        self._pool.send(request, rec, done)

    async def call(self, request: bytes | Prompt, rec: CallRecord) -> None:
        """One call, awaited (priming, `--test-connections`); raises on failure like an SDK adapter."""
        finished = asyncio.get_running_loop().create_future()
        self.send_raw(request, rec, lambda rec, message: finished.done() or finished.set_result(message))
        message = await finished
        if rec.error is not None:
            raise RawCallError(rec.error, message or rec.error)

    async def warm(self) -> int:
        """Open the pool's connections before the clock starts (loadgen.providers.raw_wire.WirePool.warm)."""
        return await self._pool.warm(self._settings.pool_size)

    def abort_all(self, error: str) -> None:
        self._pool.abort_all(error)

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


# -- reading responses ------------------------------------------------------------------------


class _Body(Reader):
    """A whole JSON body: its usage (and, for a failed status, its first bytes as the detail)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def feed(self, chunk: bytes, rec: CallRecord) -> None:
        self.chunks.append(chunk)

    def end(self, rec: CallRecord, status: int) -> tuple[str, str] | None:
        body = b"".join(self.chunks)
        if status >= 300:
            return f"http_{status}", f"HTTP {status}: {body[:200]!r}"
        try:
            self.usage(json.loads(body), rec)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            return "bad_response", f"response without usage: {exc!r}"
        return None


class _OpenAIBody(_Body):
    @staticmethod
    def usage(data: dict, rec: CallRecord) -> None:
        usage = data["usage"]
        rec.output_tokens = usage["completion_tokens"]
        rec.input_tokens = usage["prompt_tokens"]
        rec.finish_reason = (data.get("choices") or [{}])[0].get("finish_reason")
        rec.response_id, rec.response_model = data.get("id"), data.get("model")


class _AnthropicBody(_Body):
    @staticmethod
    def usage(data: dict, rec: CallRecord) -> None:
        usage = data["usage"]
        rec.output_tokens = usage["output_tokens"]
        rec.input_tokens = usage["input_tokens"]
        rec.finish_reason = data.get("stop_reason")
        rec.response_id, rec.response_model = data.get("id"), data.get("model")


class _Stream(Reader):
    """Server-sent events, each event handled as its bytes arrive (its tokens stamped then)."""

    def __init__(self) -> None:
        self.pending = b""
        self.failed: tuple[str, str] | None = None
        self.status_body: list[bytes] = []

    def feed(self, chunk: bytes, rec: CallRecord) -> None:
        if self.failed is not None:
            return
        self.pending += chunk
        while (end := self.pending.find(b"\n\n")) >= 0:
            event, self.pending = self.pending[:end], self.pending[end + 2:]
            for line in event.split(b"\n"):
                if line.startswith(b"data:"):
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        continue
                    try:
                        self.event(json.loads(data), rec)
                    except ValueError:
                        self.failed = ("bad_response", f"malformed stream event {data[:100]!r}")
                        return
                    except RawCallError as exc:
                        self.failed = (exc.error_class, str(exc))
                        return

    def end(self, rec: CallRecord, status: int) -> tuple[str, str] | None:
        if status >= 300:
            return f"http_{status}", f"HTTP {status}: {self.pending[:200]!r}"
        return self.failed


class _OpenAIStream(_Stream):
    @staticmethod
    def event(chunk: dict, rec: CallRecord) -> None:
        if "error" in chunk:
            raise RawCallError("stream_error", f"error event: {chunk['error']!r}"[:300])
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
            rec.response_id, rec.response_model = chunk.get("id"), chunk.get("model")


class _AnthropicStream(_Stream):
    @staticmethod
    def event(event: dict, rec: CallRecord) -> None:
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("text") or delta.get("thinking"):
                rec.token()
        elif kind == "message_delta":
            rec.output_tokens = (event.get("usage") or {}).get("output_tokens", rec.output_tokens)
            rec.finish_reason = (event.get("delta") or {}).get("stop_reason")
        elif kind == "message_start":
            message = event.get("message") or {}
            rec.response_model, rec.response_id = message.get("model"), message.get("id")
            rec.input_tokens = (message.get("usage") or {}).get("input_tokens", 0)
        elif kind == "error":
            raise RawCallError("stream_error", f"error event: {event.get('error')!r}"[:300])
