"""Anthropic messages through the official `AsyncAnthropic` client, streaming or not.

The SDK's built-in OpenTelemetry spans are off here (`open_telemetry=False`): the
baseline must carry no tracer, and the built-in tracing is an arm of its own, which
passes `open_telemetry={"tracer_provider": tp}` (the bare `True` crashes in anthropic 2.14).
"""

from __future__ import annotations

from collections.abc import Callable

import anthropic
import httpx2

from loadgen.prompts import Prompt, anthropic_messages
from loadgen.settings import ProviderSettings
from loadgen.providers.http import make_http_client
from loadgen.results import CallRecord


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
        kwargs = {"base_url": settings.base_url} if settings.base_url else {}
        self._client = anthropic.AsyncAnthropic(
            api_key=settings.api_key,
            max_retries=settings.max_retries,
            timeout=settings.timeout_s,
            http_client=self._http,
            open_telemetry=open_telemetry,
            **kwargs,
        )
        if wrap_client is not None:  # a tracer that wraps the client instance (LangSmith's wrap_openai)
            self._client = wrap_client(self._client)
        self._create = self._client.messages.create

    async def call(self, prompt: Prompt, rec: CallRecord) -> None:
        if self._settings.max_retries > 0:
            rec.attempts = 0  # the request hook counts each attempt
        messages = anthropic_messages(prompt)
        if not self._settings.stream:
            message = await self._create(
                model=self._settings.model,
                system=prompt.system,
                messages=messages,
                max_tokens=prompt.max_tokens,
            )
            if message.usage is not None:  # a response without usage (the mock's no_usage fault) is not an error
                rec.output_tokens = message.usage.output_tokens
                rec.input_tokens = message.usage.input_tokens
            rec.response_model = message.model
            rec.response_id = message.id
            rec.finish_reason = message.stop_reason
            return
        stream = await self._create(
            model=self._settings.model,
            system=prompt.system,
            messages=messages,
            max_tokens=prompt.max_tokens,
            stream=True,
        )
        async for event in stream:
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

    async def aclose(self) -> None:
        await self._client.close()
