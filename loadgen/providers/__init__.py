"""Provider adapters: one per API family, behind the small `Provider` protocol."""

from loadgen.providers.base import Provider, error_class
from loadgen.providers.factory import make_provider

__all__ = ["Provider", "error_class", "make_provider"]
