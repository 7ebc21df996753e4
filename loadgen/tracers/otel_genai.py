"""The `otel` arm: plain OpenTelemetry with a hand-written LLM span per call.

The LLM span follows the OTel GenAI semantic conventions: name "chat {model}", kind
CLIENT, request attributes set at start, response attributes (model, id, finish reason,
token usage) set when the call returns, `error.type` and an error status when it fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.trace import SpanKind, Status, StatusCode

from loadgen.prompts import Prompt
from loadgen.providers.base import Provider, error_class
from loadgen.results import CallRecord
from loadgen.tracers.base import Traced
from loadgen.settings import TracingSettings
from loadgen.tracers.pipeline import RootSpanArm, otel_pipeline

GENAI_SYSTEM = {"openai": "openai", "anthropic": "anthropic"}


class OtelGenAIArm(RootSpanArm):
    name = "otel"

    def __init__(self, tracer_provider, accounting, provider_name: str, model: str) -> None:
        super().__init__(tracer_provider, accounting)
        self.span_name = f"chat {model}"
        self.request_attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": GENAI_SYSTEM[provider_name],
            "gen_ai.provider.name": GENAI_SYSTEM[provider_name],
            "gen_ai.request.model": model,
        }

    def wrap(self, provider: Provider) -> Provider:
        """The root span, and under it the LLM span around the provider's call."""
        return super().wrap(LLMSpanned(provider, self))


class LLMSpanned(Traced):
    """Each call inside a GenAI LLM span, described from what the call record says."""

    def __init__(self, provider: Provider, arm: OtelGenAIArm) -> None:
        super().__init__(provider)
        self.tracer = arm.tracer
        self.span_name = arm.span_name
        self.request_attributes = arm.request_attributes

    async def call(self, prompt: Prompt, rec: CallRecord) -> None:
        with self.llm_span(prompt, rec):
            await self.provider.call(prompt, rec)

    def call_sync(self, prompt: Prompt, rec: CallRecord) -> None:
        with self.llm_span(prompt, rec):
            self.provider.call_sync(prompt, rec)

    @contextmanager
    def llm_span(self, prompt: Prompt, rec: CallRecord) -> Iterator[None]:
        """The LLM span around one call (async or sync): the request attributes at start; the
        error, or the response as the record has it, at the end."""
        attributes = dict(self.request_attributes)
        attributes["gen_ai.request.max_tokens"] = prompt.max_tokens
        with self.tracer.start_as_current_span(
            self.span_name, kind=SpanKind.CLIENT, attributes=attributes, record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield
            except BaseException as exc:
                span.set_attribute("error.type", error_class(exc))
                span.set_status(Status(StatusCode.ERROR))
                raise
            if rec.response_model:
                span.set_attribute("gen_ai.response.model", rec.response_model)
            if rec.response_id:
                span.set_attribute("gen_ai.response.id", rec.response_id)
            if rec.finish_reason:
                span.set_attribute("gen_ai.response.finish_reasons", (rec.finish_reason,))
            span.set_attribute("gen_ai.usage.input_tokens", rec.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", rec.output_tokens)

def otel_arm(settings: TracingSettings, provider_name: str, model: str, calibration) -> OtelGenAIArm:
    """The `otel` arm's factory (loadgen.arms)."""
    tracer_provider, accounting = otel_pipeline(settings, OtelGenAIArm.name, provider_name)
    return OtelGenAIArm(tracer_provider, accounting, provider_name, model)
