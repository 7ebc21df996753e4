"""The HTTP client the SDKs share with us: a pool sized for the load, attempts counted.

By default it runs on loadgen's lean transport (see transport.py for why); with
`http_transport = "httpx"` in the profile it uses httpx2's own connection pool.
"""

from __future__ import annotations

import httpx2

from loadgen.providers.base import count_attempt
from loadgen.settings import ProviderSettings
from loadgen.providers.transport import LeanTransport


def make_http_client(settings: ProviderSettings, transport: httpx2.AsyncBaseTransport | None = None) -> httpx2.AsyncClient:
    limits = httpx2.Limits(max_connections=settings.pool_size, max_keepalive_connections=settings.pool_size)
    # With retries off every call is exactly one attempt; skip the per-request hook then.
    hooks = {"request": [count_attempt]} if settings.max_retries > 0 else {}
    if transport is None and settings.transport == "lean":
        transport = LeanTransport(max_connections=settings.pool_size)
    return httpx2.AsyncClient(
        limits=limits,
        timeout=httpx2.Timeout(settings.timeout_s),
        event_hooks=hooks,
        transport=transport,
    )
