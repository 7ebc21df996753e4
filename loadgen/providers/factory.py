"""Build the adapter for a provider name, and each provider's base URL from one --base-url."""

from __future__ import annotations

from loadgen.providers.base import Provider, ProviderSettings


def provider_base_url(provider: str, base_url: str | None) -> str | None:
    """The SDK base_url for a provider from one user-given URL.

    OpenAI's SDK expects the URL to include /v1; Anthropic's appends /v1/messages itself.
    So `http://host:8000/v1` serves both: openai gets it as is, anthropic without /v1.
    """
    if base_url is None:
        return None
    url = base_url.rstrip("/")
    if provider == "openai":
        return url if url.endswith("/v1") else url + "/v1"
    return url[: -len("/v1")] if url.endswith("/v1") else url


def make_provider(name: str, settings: ProviderSettings, **options) -> Provider:
    if name == "openai":
        from loadgen.providers.openai_chat import OpenAIChat

        return OpenAIChat(settings, **options)
    if name == "anthropic":
        from loadgen.providers.anthropic_messages import AnthropicMessages

        return AnthropicMessages(settings, **options)
    raise ValueError(f"unknown provider {name!r}")
