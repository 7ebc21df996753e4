"""Anthropic messages through the official sync `Anthropic` client, from a pool thread.

The twin of anthropic_messages.py (`client = "sync"`): the same request, the same
`open_telemetry` option (off but for the anthropic-native arm), and the record filled by
the same functions.
"""

from __future__ import annotations

from collections.abc import Callable

import anthropic
import httpx2

from loadgen.settings import ProviderSettings
from loadgen.providers.anthropic_messages import AnthropicMessages, messages_request, read_event, read_message
from loadgen.providers.base import SyncSDKAdapter
from loadgen.providers.http import make_sync_http_client, sdk_options


class AnthropicMessagesSync(SyncSDKAdapter):
    name = AnthropicMessages.name
    request = staticmethod(messages_request)
    read_whole = staticmethod(read_message)
    read_part = staticmethod(read_event)

    def __init__(
        self,
        settings: ProviderSettings,
        transport: httpx2.BaseTransport | None = None,
        open_telemetry: bool | dict = False,
        wrap_client: Callable | None = None,
    ) -> None:
        self._settings = settings
        self._http = make_sync_http_client(settings, transport)
        self._client = anthropic.Anthropic(open_telemetry=open_telemetry, **sdk_options(settings, self._http))
        if wrap_client is not None:  # a tracer that wraps the client instance (LangSmith's wrap_anthropic)
            self._client = wrap_client(self._client)
        self._create = self._client.messages.create
