"""Anthropic messages through the official `AsyncAnthropic` client, streaming or not.

The SDK's built-in OpenTelemetry spans are off here (`open_telemetry=False`): the
baseline must carry no tracer, and the built-in tracing is an arm of its own, which
passes `open_telemetry={"tracer_provider": tp}` (the bare `True` crashes in anthropic 2.14).

What the sync twin (anthropic_messages_sync.py) shares with it is here as functions: the
request's arguments, and reading a message or a stream's event into the call record.
"""

from __future__ import annotations

from collections.abc import Callable

import anthropic
import httpx2

from loadgen.prompts import Prompt, anthropic_messages
from loadgen.settings import ProviderSettings
from loadgen.providers.http import make_http_client, sdk_options
from loadgen.results import CallRecord


def messages_request(settings: ProviderSettings, prompt: Prompt, rec: CallRecord) -> dict:
    """The arguments of `create` for `prompt`; with retries on, the record's attempts start
    at 0 (the request hook counts each)."""
    if settings.max_retries > 0:
        rec.attempts = 0
    request = {"model": settings.model, "system": prompt.system, "messages": anthropic_messages(prompt),
               "max_tokens": prompt.max_tokens}
    if settings.stream:
        request["stream"] = True
    return request


def read_message(message, rec: CallRecord) -> None:
    """A whole (not streamed) message into the record."""
    if message.usage is not None:  # a response without usage (the mock's no_usage fault) is not an error
        rec.output_tokens = message.usage.output_tokens
        rec.input_tokens = message.usage.input_tokens
    rec.response_model = message.model
    rec.response_id = message.id
    rec.finish_reason = message.stop_reason


def read_event(event, rec: CallRecord) -> None:
    """One event of a stream into the record."""
    kind = event.type
    if kind == "content_block_delta":
        # Text and thinking deltas with content are tokens; message_start,
        # ping and the usage-only message_delta are not.
        delta = event.delta
        if getattr(delta, "text", None) or getattr(delta, "thinking", None):
            rec.token()
    elif kind == "message_delta":
        if event.usage is not None:
            rec.output_tokens = event.usage.output_tokens
        rec.finish_reason = event.delta.stop_reason
    elif kind == "message_start":
        message = event.message
        rec.response_model = message.model
        rec.response_id = message.id
        if message.usage is not None:
            rec.input_tokens = message.usage.input_tokens


class AnthropicMessages:
    name = "anthropic"

    def __init__(
        self,
        settings: ProviderSettings,
        transport: httpx2.AsyncBaseTransport | None = None,
        open_telemetry: bool | dict = False,
        wrap_client: Callable | None = None,
    ) -> None:
        self._settings = settings
        self._http = make_http_client(settings, transport)
        self._client = anthropic.AsyncAnthropic(open_telemetry=open_telemetry, **sdk_options(settings, self._http))
        if wrap_client is not None:  # a tracer that wraps the client instance (LangSmith's wrap_openai)
            self._client = wrap_client(self._client)
        self._create = self._client.messages.create

    async def call(self, prompt: Prompt, rec: CallRecord) -> None:
        response = await self._create(**messages_request(self._settings, prompt, rec))
        if not self._settings.stream:
            read_message(response, rec)
            return
        async for event in response:
            read_event(event, rec)

    async def aclose(self) -> None:
        await self._client.close()
