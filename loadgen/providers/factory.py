"""Build the adapter for a provider name (its SDK is imported only then)."""

from __future__ import annotations

from loadgen.providers.base import Provider, SyncProvider
from loadgen.settings import ProviderSettings


def make_provider(name: str, settings: ProviderSettings, **options) -> Provider | SyncProvider:
    if settings.client == "raw":
        from loadgen.providers.raw import RawClient

        return RawClient(name, settings)
    if settings.client == "sync":
        return _make_sync(name, settings, **options)
    if name == "openai":
        from loadgen.providers.openai_chat import OpenAIChat

        return OpenAIChat(settings, **options)
    if name == "anthropic":
        from loadgen.providers.anthropic_messages import AnthropicMessages

        return AnthropicMessages(settings, **options)
    raise ValueError(f"unknown provider {name!r}")


def _make_sync(name: str, settings: ProviderSettings, **options) -> SyncProvider:
    """The SDK's sync client, called from the worker's pool threads (loadgen.sync_runner)."""
    if name == "openai":
        from loadgen.providers.openai_chat_sync import OpenAIChatSync

        return OpenAIChatSync(settings, **options)
    if name == "anthropic":
        from loadgen.providers.anthropic_messages_sync import AnthropicMessagesSync

        return AnthropicMessagesSync(settings, **options)
    raise ValueError(f"unknown provider {name!r}")
