"""Configuration of the embedded OTLP collector: the faults it injects and the attributes it requires.

Read once when the app is built; the request hot path reads plain values copied out of
these models, never the pydantic models themselves.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .conventions import REQUIRED_ATTRIBUTES

FaultKind = Literal[
    "delay", "http_429", "http_503", "http_400", "http_413", "partial_success", "reset", "down"
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)

# Faults answered with an HTTP error status instead of ingesting the request.
HTTP_FAULT_STATUS: dict[str, int] = {"http_429": 429, "http_503": 503, "http_400": 400, "http_413": 413}
# Only these may carry Retry-After: the statuses OTLP/HTTP clients retry, of those faulted here.
RETRYABLE_FAULTS = frozenset({"http_429", "http_503"})


class CollectorFault(BaseModel):
    """One injectable fault, active in a time window and hitting each export with a seeded probability.

    The window is measured from the time zero that `CollectorConfig.faults_from` names:
    the first export the collector receives (or the first one after `POST
    /_collector/reset`), or the t0 of `POST /_collector/arm`. So a profile can say "503s
    from 10 s to 15 s into the run" without knowing when the harness started.

    kinds:
      delay            sleep `delay_ms` before answering (a request whose client hangs up
                       during the delay is not ingested: it was never acknowledged)
      http_429/503     answer 429/503, with Retry-After when `retry_after_s` is set
      http_400/413     answer 400/413 (OTLP clients do not retry these)
      partial_success  ingest the request but reject the last ceil(n * reject_fraction)
                       of its n spans, reported in the response's partial_success
      reset            read the request, then reset the connection (TCP RST) without an
                       answer; nothing is ingested
      down             the collector is down for the whole window (probability is
                       ignored): an export arriving in it is read, so that the attempt
                       is attributed to its run, then its connection is reset without an
                       answer and nothing is ingested, as `reset` does; a session request
                       has its connection reset on arrival, before its body is read;
                       control routes keep answering
    """

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    probability: float = Field(default=1.0, ge=0.0, le=1.0)
    start_s: float = Field(default=0.0, ge=0.0)
    duration_s: float | None = Field(default=None, ge=0.0)  # None: until the collector stops
    delay_ms: float = Field(default=0.0, ge=0.0)  # for delay
    retry_after_s: float | None = Field(default=None, ge=0.0)  # for http_429 / http_503
    reject_fraction: float | None = Field(default=None, ge=0.0, le=1.0)  # for partial_success; 0.5 if unset

    @model_validator(mode="after")
    def _fields_fit_the_kind(self) -> CollectorFault:
        if self.retry_after_s is not None and self.kind not in RETRYABLE_FAULTS:
            raise ValueError(f"retry_after_s applies only to {', '.join(sorted(RETRYABLE_FAULTS))}; not to {self.kind}")
        if self.delay_ms and self.kind != "delay":
            raise ValueError(f"delay_ms applies only to delay; not to {self.kind}")
        if self.reject_fraction is not None and self.kind != "partial_success":
            raise ValueError(f"reject_fraction applies only to partial_success; not to {self.kind}")
        if self.kind == "partial_success" and self.reject_fraction is None:
            self.reject_fraction = 0.5
        return self


class CollectorConfig(BaseModel):
    """The collector's faults, the seed of their draws, and the attribute sets per convention.

    `required_attributes` maps a convention ("otel_genai", "openinference", "honeyhive")
    to the attributes an LLM span of that convention must carry; an entry "a|b" is met
    by either attribute. See `conventions.py` for the defaults and how a span's
    convention is decided.
    """

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    faults: list[CollectorFault] = Field(default_factory=list)
    faults_from: Literal["first_request", "armed"] = Field(
        default="first_request",
        description="time zero of the fault windows: the first export (after start or reset), or only the t0 of "
                    "POST /_collector/arm, so that warm-up exports do not start the clock; either way an arm "
                    "re-places the windows",
    )
    required_attributes: dict[str, list[str]] = Field(
        default_factory=lambda: {name: list(attrs) for name, attrs in REQUIRED_ATTRIBUTES.items()}
    )

    @field_validator("required_attributes", mode="before")
    @classmethod
    def _over_the_defaults(cls, value: object) -> object:
        """A partial mapping overrides only the conventions it names; the others keep their defaults."""
        if not isinstance(value, dict):
            return value
        unknown = sorted(set(value) - set(REQUIRED_ATTRIBUTES))
        if unknown:
            raise ValueError(
                f"unknown convention(s) {', '.join(map(str, unknown))}; known: {', '.join(REQUIRED_ATTRIBUTES)}"
            )
        return {**{name: list(attrs) for name, attrs in REQUIRED_ATTRIBUTES.items()}, **value}
