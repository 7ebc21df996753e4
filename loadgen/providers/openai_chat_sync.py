"""OpenAI chat completions through the official sync `OpenAI` client, from a pool thread.

The twin of openai_chat.py (`client = "sync"`): the same request, and the record filled
by the same functions.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx2
import openai

from loadgen.settings import ProviderSettings
from loadgen.providers.base import SyncSDKAdapter
from loadgen.providers.http import make_sync_http_client, sdk_options
from loadgen.providers.openai_chat import OpenAIChat, chat_request, read_chunk, read_completion


class OpenAIChatSync(SyncSDKAdapter):
    name = OpenAIChat.name
    request = staticmethod(chat_request)
    read_whole = staticmethod(read_completion)
    read_part = staticmethod(read_chunk)

    def __init__(self, settings: ProviderSettings, transport: httpx2.BaseTransport | None = None,
                 wrap_client: Callable | None = None) -> None:
        self._settings = settings
        self._http = make_sync_http_client(settings, transport)
        self._client = openai.OpenAI(**sdk_options(settings, self._http))
        if wrap_client is not None:  # a tracer that wraps the client instance (LangSmith's wrap_openai)
            self._client = wrap_client(self._client)
        self._create = self._client.chat.completions.create
