"""What every tracer arm shares: its settings, its shape, and the baseline's no-op twin.

An arm wraps the worker's provider: `arm.wrap(provider)` is a provider whose `call(prompt,
rec)` is the traced call, so the runner calls every arm the same way. With the SDK's sync
client (`client = "sync"`) the traced call is `call_sync(prompt, rec)`, made in a pool
thread: every wrapper has both, and the arm's work runs in the thread that makes the call.
The baseline's arm is `NoTracing`, whose `wrap` hands back the provider itself (as OTel
pairs each processor with a no-op): no arm is ever None, and the baseline's calls go
through nothing extra.

This module imports no OpenTelemetry; the shared OTel pipeline is in `tracers/pipeline.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from loadgen.prompts import Prompt
from loadgen.providers.base import Provider, SyncProvider
from loadgen.results import CallRecord
from loadgen.settings import TracingSettings

if TYPE_CHECKING:
    from loadgen.accounting import SpanAccounting


class Arm(Protocol):
    """One arm's handle in a worker, built by loadgen.arms.make_arm."""

    name: str
    accounting: SpanAccounting | None  # None: the arm exports no spans

    def wrap(self, provider: Provider) -> Provider:
        """The provider as this arm sees it: its `call` is the traced call."""

    def provider_options(self) -> dict:
        """Extra options for the provider adapter (the anthropic-native arm turns SDK tracing on)."""

    def flush(self) -> None:
        """Export what is queued now (between blocks, so no export spills into another arm's)."""

    def shutdown(self) -> dict | None:
        """Final flush; the span accounting's snapshot, or None for an arm that exports nothing."""

    def known_answer(self) -> dict | None:
        """What the arm knows it cost (the calibration arm's held time), or None."""


class Traced:
    """A provider seen through an arm: subclasses put the arm's work around `call` and
    `call_sync` (the sync twin, for a SyncProvider)."""

    def __init__(self, provider: Provider | SyncProvider) -> None:
        self.provider = provider
        self.name = provider.name

    async def call(self, prompt: Prompt, rec: CallRecord) -> None:
        await self.provider.call(prompt, rec)

    def call_sync(self, prompt: Prompt, rec: CallRecord) -> None:
        self.provider.call_sync(prompt, rec)

    async def aclose(self) -> None:
        await self.provider.aclose()

    def close(self) -> None:
        self.provider.close()

    def abort(self, reopen: bool = False) -> None:
        self.provider.abort(reopen=reopen)


class NoTracing:
    """The baseline's arm: no tracer. Its calls go straight to the provider."""

    name = "baseline"
    accounting = None

    def wrap(self, provider: Provider) -> Provider:
        return provider

    def provider_options(self) -> dict:
        return {}

    def flush(self) -> None:
        return None

    def shutdown(self) -> None:
        return None

    def known_answer(self) -> None:
        return None


def no_tracing(settings: TracingSettings | None, provider_name: str, model: str, calibration) -> NoTracing:
    """The baseline's factory (loadgen.arms)."""
    return NoTracing()
