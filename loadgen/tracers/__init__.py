"""Tracer arms: one module per arm; each installs its pipeline in the worker and returns a handle.

An arm is chosen by name (`--arms baseline,otel,…`). `baseline` installs nothing; every
other arm gives each operation a root span `loadgen.operation` (attribute
`loadgen.op_id`) with the LLM span as its child, exports through the span accounting to
the collector, and reports the accounting after its final flush.
"""

from loadgen.tracers.base import ARM_NAMES, Arm, TracingSettings, make_arm
from loadgen.tracers.calibration import CalibrationSettings

__all__ = ["ARM_NAMES", "Arm", "CalibrationSettings", "TracingSettings", "make_arm"]
