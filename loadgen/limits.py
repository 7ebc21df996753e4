"""The limits a run is judged against: [validity] (is the run valid?) and [thresholds] (how good is it?).

Two tables of the profile with one job each. Validity says whether the generator delivered
the load asked for (loadgen/metrics.py); an invalid run exits 3. Thresholds grade what was
measured, pass / warn / fail (loadgen/assessment.py); they never change the exit code.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class StrictModel(BaseModel):
    """A profile table: unknown keys are errors, so a typo never silently falls back to a default."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


_Strict = StrictModel


class Limits(_Strict):
    """One check's limits, written `pass = …` and `warn = …`: within pass it passes, within warn it warns."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)
    pass_: float = Field(alias="pass")
    warn: float

    @model_validator(mode="after")
    def _warn_not_stricter(self) -> "Limits":
        if not self.within(self.pass_, self.warn):
            raise ValueError(f"warn ({self.warn:g}) is stricter than pass ({self.pass_:g})")
        return self


class AtLeast(Limits):
    """Higher is better (success rate)."""

    def within(self, value: float, limit: float) -> bool:
        return value >= limit


class AtMost(Limits):
    """Lower is better (latency, overheads)."""

    def within(self, value: float, limit: float) -> bool:
        return value <= limit


class Thresholds(_Strict):
    """The limits each run is graded against (loadgen/assessment.py): pass, warn, or beyond warn fail.

    Baseline arms are graded on success and latency only; a figure a run could not measure
    (span figures of an arm that exports nothing, collector figures of spans sent elsewhere)
    is "unmeasured", never a failure.
    """

    success_rate_percent: AtLeast = Field(
        default=AtLeast(pass_=99, warn=95), description="calls that succeeded, % of calls completed"
    )
    latency_p95_ms: AtMost = Field(
        default=AtMost(pass_=5000, warn=10000), description="latency p95 from the intended start, ms"
    )
    tracer_overhead_percent: AtMost = Field(
        default=AtMost(pass_=2, warn=5), description="latency overhead vs the baseline, % of its mean"
    )
    loop_delay_p99_ms: AtMost = Field(
        default=AtMost(pass_=1, warn=5),
        description="loop delay: the arm's dispatch-lag p99 minus its baseline's (Δ p99, ms), the delay the "
                    "tracer's work on the event loop adds to every call",
    )
    memory_overhead_percent: AtMost = Field(
        default=AtMost(pass_=5, warn=10), description="steady-state RSS vs the baseline, % of the baseline's RSS"
    )
    memory_overhead_mib: AtMost = Field(
        default=AtMost(pass_=20, warn=50),
        description="memory cost vs the baseline, MiB: the fixed cost (memory_fixed_mib) when measured, "
                    "else the steady-state RSS difference",
    )
    trace_coverage_percent: AtLeast = Field(
        default=AtLeast(pass_=99.9, warn=99),
        description="operations whose root and LLM span reached the collector in one trace, % of operations",
    )
    attribute_completeness_percent: AtLeast = Field(
        default=AtLeast(pass_=99, warn=90),
        description="LLM spans carrying every attribute the arm's convention requires, % of LLM spans received",
    )
    dropped_span_rate_percent: AtMost = Field(
        default=AtMost(pass_=0, warn=1), description="spans dropped, % of spans exported or dropped"
    )
    export_latency_p95_ms: AtMost = Field(
        default=AtMost(pass_=10000, warn=30000),
        description="span end → export acknowledged, p95, ms (the batch processor waits up to "
                    "tracing.schedule_delay_ms, 5 s by default, before it exports)",
    )


class Validity(_Strict):
    """When a run is invalid (exit 3): the generator did not deliver the load asked for (loadgen/metrics.py).

    The send-rate and unsent rules judge every arm. The saturation limits (worker CPU,
    dispatch lag) judge the arms without a tracer — baseline and baseline-2, or every arm
    of a mode that runs no baseline: what a tracer does to its own worker is its cost,
    measured and graded by [thresholds], never an invalid run.
    """

    min_rate_ratio: float = Field(
        default=0.99, gt=0, le=1, description="an achieved send rate under this share of the schedule's rate is invalid"
    )
    max_worker_cpu_percent: float = Field(
        default=90.0, gt=0, le=100, description="a worker busier than this (% of one core) is saturated"
    )
    max_lag_floor_ms: float = Field(
        default=2.0, gt=0, description="dispatch-lag p99 limit, ms: this, or the share of the interval below if larger"
    )
    max_lag_share_of_interval: float = Field(
        default=0.25, gt=0, description="dispatch-lag p99 limit as a share of the schedule's mean interval"
    )

    def max_dispatch_lag_ms(self, rate: float | None) -> float | None:
        """The dispatch-lag p99 limit at a schedule rate (calls/s): the floor, or the share of the
        mean interval if larger; None without a rate (a closed loop judges no lag)."""
        if not rate:
            return None
        return max(self.max_lag_floor_ms, self.max_lag_share_of_interval * 1000.0 / rate)
