"""The `otel` arm: plain OpenTelemetry with a hand-written LLM span per call.

The LLM span follows the OTel GenAI semantic conventions: name "chat {model}", kind
CLIENT, request attributes set at start, response attributes (model, id, finish reason,
token usage) set when the call returns, `error.type` and an error status when it fails.
"""

from __future__ import annotations

from opentelemetry.trace import SpanKind, Status, StatusCode

from loadgen.prompts import Prompt
from loadgen.providers.base import Provider, error_class
from loadgen.results import CallRecord
from loadgen.tracers.base import RootSpanArm

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

    async def inner_call(self, provider: Provider, prompt: Prompt, rec: CallRecord) -> None:
        attributes = dict(self.request_attributes)
        attributes["gen_ai.request.max_tokens"] = prompt.max_tokens
        with self.tracer.start_as_current_span(
            self.span_name, kind=SpanKind.CLIENT, attributes=attributes, record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                await provider.call(prompt, rec)
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
