"""Configuration of the embedded mock LLM: its latency model and the faults it injects.

These models are read once when the app is built; the request hot path reads plain
attributes copied out of them, never the pydantic models themselves.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

FaultKind = Literal[
    "http_429", "http_500", "http_502", "http_503", "overloaded_529", "stream_error", "stream_cut",
    "malformed_json", "no_usage", "stall",
]

# Faults answered with an HTTP error status before any body; only these may carry Retry-After.
HTTP_FAULT_STATUS: dict[str, int] = {
    "http_429": 429,
    "http_500": 500,
    "http_502": 502,
    "http_503": 503,
    "overloaded_529": 529,
}

FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)


class FaultSpec(BaseModel):
    """One injectable fault, active in a time window and hitting each request with a seeded probability.

    The window is measured from the time zero that `MockConfig.faults_from` names: the
    first API request the mock receives (or the first one after `POST /_mock/reset`), or
    the t0 of `POST /_mock/arm`. So a profile can say "429s from 10 s to 15 s into the
    run" without knowing when the harness started.

    kinds:
      http_429/500/502/503, overloaded_529
                      answer that status before any body (with Retry-After when
                      `retry_after_s` is set)
      stream_error    half-way through generation: a mid-stream error event; without
                      streaming, a 500 at that time
      stream_cut      half-way through generation: the connection drops mid-response
      malformed_json  a 200 whose JSON is broken: the body cut off half-way (with a
                      matching content-length), or, streaming, one cut-off event half-way
      no_usage        a complete answer without token usage
      stall           responses are held, sending nothing, while the window is open
    (`app.MockApp` says exactly what each one sends, and what each SDK makes of it.)
    """

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    probability: float = Field(default=1.0, ge=0.0, le=1.0)
    start_s: float = Field(default=0.0, ge=0.0)
    duration_s: float | None = Field(default=None, ge=0.0)  # None: until the mock stops
    retry_after_s: float | None = Field(default=None, ge=0.0)  # sent as Retry-After

    @model_validator(mode="after")
    def _retry_after_only_for_status_faults(self) -> FaultSpec:
        if self.retry_after_s is not None and self.kind not in HTTP_FAULT_STATUS:
            raise ValueError(
                f"retry_after_s applies only to {', '.join(HTTP_FAULT_STATUS)}; not to {self.kind}"
            )
        return self


class MockConfig(BaseModel):
    """The mock's latency model and faults.

    Latency: the first content delta is due `ttft_ms` after the request arrives, each
    later content delta `itl_ms` after the previous one; a non-streaming response is sent
    when its last delta would have been. Each of those gaps is multiplied by
    (1 + jitter * u), u uniform in [-1, 1], drawn from an RNG seeded by (seed, request
    sequence number), so the same requests in the same order get the same latencies.
    """

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    ttft_ms: float = Field(default=50.0, ge=0.0)
    itl_ms: float = Field(default=2.0, ge=0.0)
    jitter: float = Field(default=0.0, ge=0.0, le=1.0)
    tokens_per_chunk: int = Field(default=1, ge=1)
    default_output_tokens: int = Field(default=100, ge=1)
    precise_timers: bool = Field(
        default=True,
        description="serve on loadgen's µs-precise event loop (latencies exact to the µs); false: uvloop, whose "
                    "timers are whole milliseconds, for more requests per second",
    )
    faults: list[FaultSpec] = Field(default_factory=list)
    faults_from: Literal["first_request", "armed"] = Field(
        default="first_request",
        description="time zero of the fault windows: the first API request (after start or reset), or only the "
                    "t0 of POST /_mock/arm, so that warm-up traffic does not start the clock; either way an arm "
                    "re-places the windows",
    )
