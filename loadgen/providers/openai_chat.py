"""OpenAI chat completions through the official `AsyncOpenAI` client, streaming or not.

What the sync twin (openai_chat_sync.py) shares with it is here as functions: the request's
arguments, and reading a response or a stream's chunk into the call record.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx2
import openai

from loadgen.prompts import Prompt, openai_messages
from loadgen.settings import ProviderSettings
from loadgen.providers.http import make_http_client, sdk_options
from loadgen.results import CallRecord


def chat_request(settings: ProviderSettings, prompt: Prompt, rec: CallRecord) -> dict:
    """The arguments of `create` for `prompt`; with retries on, the record's attempts start
    at 0 (the request hook counts each)."""
    if settings.max_retries > 0:
        rec.attempts = 0
    request = {"model": settings.model, "messages": openai_messages(prompt), "max_completion_tokens": prompt.max_tokens}
    if settings.stream:
        request.update(stream=True, stream_options={"include_usage": True})
    return request


def read_completion(response, rec: CallRecord) -> None:
    """A whole (not streamed) response into the record."""
    if response.usage is not None:
        rec.output_tokens = response.usage.completion_tokens
        rec.input_tokens = response.usage.prompt_tokens
    rec.response_model = response.model
    rec.response_id = response.id
    if response.choices:
        rec.finish_reason = response.choices[0].finish_reason


def read_chunk(chunk, rec: CallRecord) -> None:
    """One chunk of a stream into the record."""
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


class OpenAIChat:
    name = "openai"

    def __init__(self, settings: ProviderSettings, transport: httpx2.AsyncBaseTransport | None = None,
                 wrap_client: Callable | None = None) -> None:
        self._settings = settings
        self._http = make_http_client(settings, transport)
        self._client = openai.AsyncOpenAI(**sdk_options(settings, self._http))
        if wrap_client is not None:  # a tracer that wraps the client instance (LangSmith's wrap_openai)
            self._client = wrap_client(self._client)
        self._create = self._client.chat.completions.create

    async def call(self, prompt: Prompt, rec: CallRecord) -> None:
        response = await self._create(**chat_request(self._settings, prompt, rec))
        if not self._settings.stream:
            read_completion(response, rec)
            return
        async for chunk in response:
            read_chunk(chunk, rec)

    async def aclose(self) -> None:
        await self._client.close()
