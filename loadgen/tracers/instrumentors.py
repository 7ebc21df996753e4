"""The `openinference` and `openllmetry` arms: third-party instrumentors on an OTel pipeline.

Each instruments only the worker's own provider, against the arm's TracerProvider (none
of them sets the global provider). They replace the SDK resource's `create` on the class,
so the arm is built before the provider adapter takes its reference to `create`.
"""

from __future__ import annotations

from loadgen.settings import TracingSettings
from loadgen.tracers.pipeline import RootSpanArm, otel_pipeline

INSTRUMENTORS = {
    ("openinference", "openai"): ("openinference.instrumentation.openai", "OpenAIInstrumentor"),
    ("openinference", "anthropic"): ("openinference.instrumentation.anthropic", "AnthropicInstrumentor"),
    ("openllmetry", "openai"): ("opentelemetry.instrumentation.openai", "OpenAIInstrumentor"),
    ("openllmetry", "anthropic"): ("opentelemetry.instrumentation.anthropic", "AnthropicInstrumentor"),
}


def instrumentor(arm: str, provider_name: str):
    import importlib

    module, name = INSTRUMENTORS[(arm, provider_name)]
    return getattr(importlib.import_module(module), name)()


class InstrumentorArm(RootSpanArm):
    def __init__(self, arm: str, settings: TracingSettings, provider_name: str) -> None:
        tracer_provider, accounting = otel_pipeline(settings, arm, provider_name)
        super().__init__(tracer_provider, accounting)
        self.name = arm
        self.instrumentor = instrumentor(arm, provider_name)
        self.instrumentor.instrument(tracer_provider=tracer_provider)


def openinference_arm(settings: TracingSettings, provider_name: str, model: str, calibration) -> InstrumentorArm:
    """The `openinference` arm's factory (loadgen.arms)."""
    return InstrumentorArm("openinference", settings, provider_name)


def openllmetry_arm(settings: TracingSettings, provider_name: str, model: str, calibration) -> InstrumentorArm:
    """The `openllmetry` arm's factory (loadgen.arms)."""
    return InstrumentorArm("openllmetry", settings, provider_name)
