"""OpenAI chat completions through the official `AsyncOpenAI` client, streaming or not."""

from __future__ import annotations

from collections.abc import Callable

import httpx2
import openai

from loadgen.prompts import Prompt, openai_messages
from loadgen.settings import ProviderSettings
from loadgen.providers.http import make_http_client
from loadgen.results import CallRecord


class OpenAIChat:
    name = "openai"

    def __init__(self, settings: ProviderSettings, transport: httpx2.AsyncBaseTransport | None = None,
                 wrap_client: Callable | None = None) -> None:
        self._settings = settings
        self._http = make_http_client(settings, transport)
        kwargs = {"base_url": settings.base_url} if settings.base_url else {}
        self._client = openai.AsyncOpenAI(
            api_key=settings.api_key,
            max_retries=settings.max_retries,
            timeout=settings.timeout_s,
            http_client=self._http,
            **kwargs,
        )
        if wrap_client is not None:  # a tracer that wraps the client instance (LangSmith's wrap_openai)
            self._client = wrap_client(self._client)
        self._create = self._client.chat.completions.create

    async def call(self, prompt: Prompt, rec: CallRecord) -> None:
        if self._settings.max_retries > 0:
            rec.attempts = 0  # the request hook counts each attempt
        messages = openai_messages(prompt)
        if not self._settings.stream:
            response = await self._create(
                model=self._settings.model, messages=messages, max_completion_tokens=prompt.max_tokens
            )
            if response.usage is not None:
                rec.output_tokens = response.usage.completion_tokens
                rec.input_tokens = response.usage.prompt_tokens
            rec.response_model = response.model
            rec.response_id = response.id
            if response.choices:
                rec.finish_reason = response.choices[0].finish_reason
            return
        stream = await self._create(
            model=self._settings.model,
            messages=messages,
            max_completion_tokens=prompt.max_tokens,
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            # The first token is the first delta with text: the role-only opening chunk
            # and the usage-only closing chunk (empty choices) are not tokens.
            if chunk.choices:
                choice = chunk.choices[0]
                delta = choice.delta
                if delta.content or getattr(delta, "reasoning_content", None):
                    rec.token()
                if choice.finish_reason:
                    rec.finish_reason = choice.finish_reason
            if chunk.usage is not None:
                rec.output_tokens = chunk.usage.completion_tokens
                rec.input_tokens = chunk.usage.prompt_tokens
            if rec.response_id is None:
                rec.response_id = chunk.id
                rec.response_model = chunk.model

    async def aclose(self) -> None:
        await self._client.close()
