"""OpenAI chat completions through the official sync `OpenAI` client, from a pool thread.

The twin of openai_chat.py (`client = "sync"`): the same request, and the record filled
by the same functions.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx2
import openai

from loadgen.prompts import Prompt
from loadgen.settings import ProviderSettings
from loadgen.providers.http import abort_http_client, make_sync_http_client, sdk_options
from loadgen.providers.openai_chat import OpenAIChat, chat_request, read_chunk, read_completion
from loadgen.results import CallRecord


class OpenAIChatSync:
    name = OpenAIChat.name

    def __init__(self, settings: ProviderSettings, transport: httpx2.BaseTransport | None = None,
                 wrap_client: Callable | None = None) -> None:
        self._settings = settings
        self._http = make_sync_http_client(settings, transport)
        self._client = openai.OpenAI(**sdk_options(settings, self._http))
        if wrap_client is not None:  # a tracer that wraps the client instance (LangSmith's wrap_openai)
            self._client = wrap_client(self._client)
        self._create = self._client.chat.completions.create

    def call_sync(self, prompt: Prompt, rec: CallRecord) -> None:
        response = self._create(**chat_request(self._settings, prompt, rec))
        if not self._settings.stream:
            read_completion(response, rec)
            return
        for chunk in response:
            read_chunk(chunk, rec)

    def close(self) -> None:
        self._client.close()

    def abort(self) -> None:
        abort_http_client(self._http)

    async def aclose(self) -> None:
        self.close()
