"""The `anthropic-native` arm: the anthropic SDK's own OpenTelemetry spans (Anthropic calls only).

anthropic 2.x emits spans for every call when its `open_telemetry` option is on; given
`{"tracer_provider": tp}` it uses that provider rather than the global one. The other
arms and the baseline pass `open_telemetry=False`.
"""

from __future__ import annotations

from loadgen.tracers.base import RootSpanArm, TracingSettings, otel_pipeline


class AnthropicNativeArm(RootSpanArm):
    name = "anthropic-native"

    def __init__(self, settings: TracingSettings, provider_name: str) -> None:
        if provider_name != "anthropic":
            raise ValueError("the anthropic-native arm traces Anthropic calls only")
        tracer_provider, accounting = otel_pipeline(settings, self.name, provider_name)
        super().__init__(tracer_provider, accounting)

    def provider_options(self) -> dict:
        return {"open_telemetry": {"tracer_provider": self.tracer_provider}}
