"""The HTTP client the SDKs share with us: a pool sized for the load, attempts counted."""

from __future__ import annotations

import httpx2

from loadgen.providers.base import ProviderSettings, count_attempt


def make_http_client(settings: ProviderSettings, transport: httpx2.AsyncBaseTransport | None = None) -> httpx2.AsyncClient:
    limits = httpx2.Limits(max_connections=settings.pool_size, max_keepalive_connections=settings.pool_size)
    # With retries off every call is exactly one attempt; skip the per-request hook then.
    hooks = {"request": [count_attempt]} if settings.max_retries > 0 else {}
    return httpx2.AsyncClient(
        limits=limits,
        timeout=httpx2.Timeout(settings.timeout_s),
        event_hooks=hooks,
        transport=transport,
    )
