"""The profile sections that make a run a soak, a sweep or a fault matrix, and durations.

Apart from `loadgen.profile` only for its length; `Profile` holds them (`soak`, `sweep`,
`faults`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from loadgen.fault_scenarios import SCENARIO_NAMES, check_scenarios
from loadgen.limits import StrictModel as _Strict

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """'30s', '2m', '1h', '500ms' or a number of seconds → seconds (float)."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '30s'")
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration (examples: 30s, 2m, 1h, 500ms)")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


Seconds = Annotated[float, Field(gt=0)]
# Seconds that may also be written '30s', '2m', '1h', '500ms'. The parser goes after the
# bound: the other way round, pydantic writes the bound into the JSON Schema as "gt",
# which is no JSON Schema keyword, instead of "exclusiveMinimum".
Duration = Annotated[Seconds, BeforeValidator(parse_duration)]


class Soak(_Strict):
    """A long run cut into time windows; each window's figures are appended to a JSONL file as it closes."""

    window: Duration = Field(default=60.0, description="window length (e.g. '60s')")
    warmup_windows: int = Field(default=1, ge=0, description="windows left out of the RSS slope")
    leak_mib_per_hour: float = Field(
        default=5.0, gt=0, description="an RSS slope whose 95 % CI lies above this is a leak"
    )
    jsonl: str | None = Field(default=None, description="where windows go (default: soak-<time>.jsonl in the cwd)")
    tracemalloc: bool = Field(default=False, description="trace allocations; report the top growth sites")


class Sweep(_Strict):
    """Step the open-loop rate per arm until the run turns invalid or breaks the latency SLO."""

    start_rate: float = Field(gt=0, description="first step's calls per second")
    step: float = Field(gt=0, description="added calls per second per step")
    max_rate: float = Field(gt=0, description="no step above this rate")
    step_duration: Duration = Field(default=20.0, description="measured length of each step")
    slo_latency_p99_ms: float | None = Field(default=None, gt=0, description="a step with a higher p99 breaks the SLO")

    @model_validator(mode="after")
    def _ordered(self) -> "Sweep":
        if self.max_rate < self.start_rate:
            raise ValueError(f"max_rate ({self.max_rate:g}) is below start_rate ({self.start_rate:g})")
        return self


class FaultThresholds(_Strict):
    """A fault-matrix cell passes when every figure is within these (README, "The fault matrix")."""

    unaccounted: int = Field(default=0, ge=0, description="spans in no bucket; more fails the cell")
    latency_delta_p99_ms: float = Field(
        default=5.0, ge=0, description="latency p99 against the baseline's, during the fault and after it; more warns")
    rss_back_percent: float = Field(
        default=10.0, ge=0, description="RSS at the end within this of its level before the fault (%), beyond "
                                        "the baseline's own growth (points); more warns")
    recovery_schedule_delays: float = Field(
        default=2.0, gt=0, description="first accepted export and drained queue within this many schedule delays "
                                       "of the fault's end; later warns")
    shutdown_s: float = Field(default=5.0, gt=0, description="the final flush and shutdown; longer warns")


class Faults(_Strict):
    """The fault matrix (`loadgen faults`): scenarios × arms × providers, each a run in three phases."""

    scenarios: list[str] = Field(default_factory=lambda: list(SCENARIO_NAMES),
                                 description="which scenarios run (default: all; names in README)")
    before: Duration = Field(default=3.0, description="the phase before the fault")
    during: Duration = Field(default=4.0, description="the fault's phase (collector_down: 30 s; llm_stall: 2 s)")
    after: Duration = Field(default=5.0, description="the phase after the fault: recovery")
    thresholds: FaultThresholds = FaultThresholds()

    @field_validator("scenarios")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        return check_scenarios(value)


class Gate(_Strict):
    """`loadgen compare`'s gate for CI jobs, read from the NEW document's profile; flags override it.

    A limit is crossed when the figure got worse by more than the limit beyond noise: the change's
    whole 95 % CI past it. A crossed limit, or with fail_on "worse" any figure worse, exits 5
    (README, "Comparing runs").
    """

    fail_on: Literal["worse", "never"] = Field(
        default="never", description="'worse': any figure worse than within noise fails the gate; 'never' "
                                     "(default): only the limits below")
    max_overhead_increase_ms: float | None = Field(default=None, ge=0, description="latency overhead, ms")
    max_loop_delay_increase_ms: float | None = Field(default=None, ge=0, description="loop delay overhead, ms")
    max_memory_increase_mib: float | None = Field(default=None, ge=0, description="memory fixed cost, MiB")
    max_memory_growth_increase_mib_per_1k_ops: float | None = Field(
        default=None, ge=0, description="memory growth, MiB per 1,000 operations")
    max_drop_rate_increase_percent: float | None = Field(default=None, ge=0, description="drop rate, points")
    max_export_p95_increase_ms: float | None = Field(default=None, ge=0, description="export latency p95, ms")
    max_throughput_decrease_percent: float | None = Field(
        default=None, ge=0, description="achieved rate, % of the base's")
