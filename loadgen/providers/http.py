"""The HTTP client the SDKs share with us: a pool sized for the load, attempts counted.

By default it runs on loadgen's lean transport (see transport.py for why); with
`http_transport = "httpx"` in the profile it uses httpx2's own connection pool. The sync
SDK clients (`client = "sync"`) get the same from `make_sync_http_client`: an
`httpx2.Client` on the sync lean transport (sync_transport.py) or httpx2's sync pool.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx2

from loadgen.providers.base import count_attempt, count_attempt_sync
from loadgen.settings import ProviderSettings
from loadgen.providers.transport import LeanTransport


def _client_options(settings: ProviderSettings, hook: Callable) -> dict:
    """What the async and the sync client share: limits, timeout, and the attempt hook."""
    limits = httpx2.Limits(max_connections=settings.pool_size, max_keepalive_connections=settings.pool_size)
    # With retries off every call is exactly one attempt; skip the per-request hook then.
    hooks = {"request": [hook]} if settings.max_retries > 0 else {}
    return {"limits": limits, "timeout": httpx2.Timeout(settings.timeout_s), "event_hooks": hooks}


def make_http_client(settings: ProviderSettings, transport: httpx2.AsyncBaseTransport | None = None) -> httpx2.AsyncClient:
    if transport is None and settings.transport == "lean":
        transport = LeanTransport(max_connections=settings.pool_size)
    return httpx2.AsyncClient(transport=transport, **_client_options(settings, count_attempt))


def make_sync_http_client(settings: ProviderSettings, transport: httpx2.BaseTransport | None = None) -> httpx2.Client:
    """The sync SDK clients' httpx2.Client. Its hooks are called synchronously (an async hook
    would make a coroutine nobody awaits, and count nothing), so it counts with count_attempt_sync."""
    if transport is None and settings.transport == "lean":
        from loadgen.providers.sync_transport import SyncLeanTransport

        transport = SyncLeanTransport(max_connections=settings.pool_size)
    return httpx2.Client(transport=transport, **_client_options(settings, count_attempt_sync))


def sdk_options(settings: ProviderSettings, http_client: httpx2.Client | httpx2.AsyncClient) -> dict:
    """The options both SDKs' clients, async and sync, are built with."""
    options = {"base_url": settings.base_url} if settings.base_url else {}
    return {"api_key": settings.api_key, "max_retries": settings.max_retries, "timeout": settings.timeout_s,
            "http_client": http_client, **options}
