"""Build the adapter for a provider name (its SDK is imported only then)."""

from __future__ import annotations

from loadgen.providers.base import Provider
from loadgen.settings import ProviderSettings


def make_provider(name: str, settings: ProviderSettings, **options) -> Provider:
    if settings.client == "raw":
        from loadgen.providers.raw import RawClient

        return RawClient(name, settings)
    if name == "openai":
        from loadgen.providers.openai_chat import OpenAIChat

        return OpenAIChat(settings, **options)
    if name == "anthropic":
        from loadgen.providers.anthropic_messages import AnthropicMessages

        return AnthropicMessages(settings, **options)
    raise ValueError(f"unknown provider {name!r}")
