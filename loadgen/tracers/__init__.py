"""Tracer arms: one module per arm; each installs its pipeline in the worker and returns a handle.

An arm is chosen by name (`--arms baseline,otel,…`); the registry of arms, and
`make_arm`, are in loadgen.arms. An arm wraps the provider (`arm.wrap(provider)`):
`baseline` installs nothing (`NoTracing`), every other arm but `calibration` gives each
operation a root span `loadgen.operation` (attribute `loadgen.op_id`) with the LLM span
as its child, exports through the span accounting to the collector, and reports the
accounting after its final flush.

This `__init__` imports only what is light (no OpenTelemetry, no SDK), so importing one
arm's module loads no other arm's pipeline.
"""

from loadgen.tracers.base import Arm, NoTracing

__all__ = ["Arm", "NoTracing"]
