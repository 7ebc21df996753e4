"""The `langsmith` arm: LangSmith's client wrappers, exported as OpenTelemetry spans.

LangSmith 0.15 (docs/instrumentors.md) traces an OpenAI or Anthropic client it has
wrapped (`wrap_openai`, `wrap_anthropic`) as LangSmith runs; in its OpenTelemetry mode
(`tracing_mode="otel"`, the current name of LANGSMITH_OTEL_ENABLED + LANGSMITH_OTEL_ONLY)
its background thread turns each finished run into an OTel span (OTELExporter, with the
run's own start and end times) on the TracerProvider it is given, and sends nothing to
LangSmith's API. The provider is loadgen's pipeline: LangSmith's own
(`get_otlp_tracer_provider`) is the same OTel TracerProvider + BatchSpanProcessor +
OTLP/HTTP exporter, but with a fixed resource that cannot carry `loadgen.run_id`.

The LLM span is made on LangSmith's background thread when the run is handed over, as
a child of the OTel span that was current when the run started: the operation's root
span, opened on the same provider. So `flush` first drains LangSmith's queue (the spans
do not exist before), then the batch processor.
"""

from __future__ import annotations

from loadgen.settings import TracingSettings
from loadgen.tracers.pipeline import RootSpanArm, otel_pipeline


class LangSmithArm(RootSpanArm):
    name = "langsmith"

    def __init__(self, settings: TracingSettings, provider_name: str) -> None:
        import langsmith
        from langsmith import wrappers

        if not settings.collector_url:
            raise ValueError("the langsmith arm sends spans to a collector URL, never to LangSmith's servers")
        tracer_provider, accounting = otel_pipeline(settings, self.name, provider_name)
        super().__init__(tracer_provider, accounting)
        self.client = langsmith.Client(
            # In otel mode the client sends runs nowhere but the provider; its API URL is
            # the collector all the same, so a request it should not make is counted there.
            api_url=settings.collector_url,
            api_key="loadgen-local",
            tracing_mode="otel",
            otel_tracer_provider=tracer_provider,
        )
        langsmith.configure(client=self.client, enabled=True)
        wrap = {"openai": wrappers.wrap_openai, "anthropic": wrappers.wrap_anthropic}[provider_name]
        self.wrap_client = lambda client: wrap(client, tracing_extra={"client": self.client})

    def provider_options(self) -> dict:
        return {"wrap_client": self.wrap_client}

    def flush(self) -> None:
        self.client.flush()  # the runs become spans here
        self.tracer_provider.force_flush()

    def shutdown(self) -> dict:
        self.client.flush()
        return super().shutdown()


def langsmith_arm(settings: TracingSettings, provider_name: str, model: str, calibration) -> LangSmithArm:
    """The `langsmith` arm's factory (loadgen.arms)."""
    return LangSmithArm(settings, provider_name)
