"""Provider adapters: one per API family, behind the small `Provider` protocol."""

from loadgen.providers.base import Provider, ProviderSettings, error_class
from loadgen.providers.factory import make_provider, provider_base_url

__all__ = ["Provider", "ProviderSettings", "error_class", "make_provider", "provider_base_url"]
