"""The `anthropic-native` arm: the anthropic SDK's own OpenTelemetry spans (Anthropic calls only).

anthropic 2.x emits spans for every call when its `open_telemetry` option is on; given
`{"tracer_provider": tp}` it uses that provider rather than the global one. The other
arms and the baseline pass `open_telemetry=False`. Which providers it runs on is the arm
registry's to say (loadgen.arms), not this module's.
"""

from __future__ import annotations

from loadgen.settings import TracingSettings
from loadgen.tracers.pipeline import RootSpanArm, otel_pipeline


class AnthropicNativeArm(RootSpanArm):
    name = "anthropic-native"

    def __init__(self, settings: TracingSettings, provider_name: str) -> None:
        tracer_provider, accounting = otel_pipeline(settings, self.name, provider_name)
        super().__init__(tracer_provider, accounting)

    def provider_options(self) -> dict:
        return {"open_telemetry": {"tracer_provider": self.tracer_provider}}


def anthropic_native_arm(settings: TracingSettings, provider_name: str, model: str, calibration) -> AnthropicNativeArm:
    """The `anthropic-native` arm's factory (loadgen.arms)."""
    return AnthropicNativeArm(settings, provider_name)
