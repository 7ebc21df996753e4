"""Anthropic messages through the official sync `Anthropic` client, from a pool thread.

The twin of anthropic_messages.py (`client = "sync"`): the same request, the same
`open_telemetry` option (off but for the anthropic-native arm), and the record filled by
the same functions.
"""

from __future__ import annotations

from collections.abc import Callable

import anthropic
import httpx2

from loadgen.prompts import Prompt
from loadgen.settings import ProviderSettings
from loadgen.providers.anthropic_messages import AnthropicMessages, messages_request, read_event, read_message
from loadgen.providers.http import abort_http_client, make_sync_http_client, sdk_options
from loadgen.results import CallRecord


class AnthropicMessagesSync:
    name = AnthropicMessages.name

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

    def call_sync(self, prompt: Prompt, rec: CallRecord) -> None:
        response = self._create(**messages_request(self._settings, prompt, rec))
        if not self._settings.stream:
            read_message(response, rec)
            return
        for event in response:
            read_event(event, rec)

    def close(self) -> None:
        self._client.close()

    def abort(self) -> None:
        abort_http_client(self._http)

    async def aclose(self) -> None:
        self.close()
