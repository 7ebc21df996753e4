"""For arms whose vendor SDK builds its own OTLP exporter: put loadgen's span accounting around it.

The vendor's exporter is kept as the vendor built it from its own endpoint setting (so
the bytes on the wire are the vendor's); loadgen only puts `pipeline.accounted_batch`
(the profile's batch settings, span accounting on both sides of the queue) in front of
it. Two things are needed for that, and both depend on OpenTelemetry's private layout:

- the exporter's `requests.Session`, on which `accounted_batch` reads OTLP partial-success
  answers: `exporter._session` up to opentelemetry-exporter-otlp-proto-http 1.3x,
  `exporter._client._transport._session` since the HTTP transport was split out;
- for an SDK that adds its processor to the provider itself, swapping that processor for
  the accounted one on the provider's multi-processor (`_active_span_processor`).

Where the vendor's own processor may drop a span before it is queued (HoneyHive, Laminar),
a `LifecycleCounter` beside it counts every span started and ended, so such a span shows
as unaccounted, not as nothing.

Each raises a RuntimeError naming what it could not find rather than account wrongly.
"""

from __future__ import annotations

from opentelemetry.sdk.trace import SpanProcessor

from loadgen.accounting import SpanAccounting


def otlp_session(exporter):
    """The requests.Session an OTLP/HTTP span exporter posts with."""
    session = getattr(exporter, "_session", None)
    if session is None:
        transport = getattr(getattr(exporter, "_client", None), "_transport", None)
        session = getattr(transport, "_session", None)
    if session is None or not hasattr(session, "hooks"):
        raise RuntimeError(f"cannot find the HTTP session of {type(exporter).__module__}.{type(exporter).__name__}")
    return session


def replace_processor(tracer_provider, old, new) -> None:
    """Put `new` where `old` was among the provider's span processors (same order, same hooks)."""
    multi = getattr(tracer_provider, "_active_span_processor", None)
    processors = getattr(multi, "_span_processors", None)
    if processors is None or not any(processor is old for processor in processors):
        raise RuntimeError(f"{type(old).__name__} is not among the tracer provider's span processors")
    with multi._lock:
        multi._span_processors = tuple(new if processor is old else processor for processor in processors)


class LifecycleCounter(SpanProcessor):
    """Counts spans started and ended on a provider whose own processor queues them
    (the accounted batch processor is then built with `count_lifecycle=False`)."""

    def __init__(self, accounting: SpanAccounting) -> None:
        self.accounting = accounting

    def on_start(self, span, parent_context=None) -> None:
        self.accounting.started += 1

    def on_end(self, span) -> None:
        self.accounting.ended += 1
