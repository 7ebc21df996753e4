"""What a worker is told: plain, frozen data that crosses into the worker process.

The run plan (loadgen/plan.py) fills these from the profile once; the worker hands each
to the part that needs it — the provider adapter, the tracer arm, the calibration arm —
and none of them reads the profile again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ProviderSettings:
    """How the provider adapter calls its API."""

    base_url: str | None  # None: the SDK's own default (the real API)
    api_key: str
    model: str
    stream: bool
    timeout_s: float
    max_retries: int
    pool_size: int
    transport: str = "lean"  # "lean" (loadgen's) or "httpx" (httpx2's own pool)
    client: str = "async"  # "async" or "sync" (in a thread pool): the SDK's client; "raw": its request bytes on ours


@dataclass(frozen=True)
class TracingSettings:
    """Where spans go and how they are batched."""

    collector_url: str | None  # base URL; OTLP goes to {collector_url}/v1/traces (None: HoneyHive's own server)
    run_id: str  # every span's resource carries loadgen.run_id, so the collector can tell runs apart
    max_queue_size: int = 2048
    schedule_delay_ms: int = 5000
    max_export_batch_size: int = 512
    export_timeout_ms: int = 30000


@dataclass(frozen=True)
class CalibrationSettings:
    """The calibration arm's known costs, from the profile's tracing table."""

    hold_us: int = 0  # the loop is held this long per call (nominal)
    kind: Literal["spin", "sleep"] = "spin"  # spin: busy-wait (CPU); sleep: time.sleep (no CPU)
    at: Literal["before", "after"] = "before"  # before the provider call, or after it returns
    mib: int = 0  # held for the whole run
    leak_kib: float = 0  # held more after every call, never freed
