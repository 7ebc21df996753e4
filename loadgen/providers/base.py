"""What every provider adapter shares: the call record, the protocol, error classes.

A `CallRecord` is filled by one logical call. Its timestamps are monotonic
nanoseconds (`perf_counter_ns`), which on Linux are system-wide, so the runner, the
mock and the collector can compare them. They make one timeline per call:

    t_intended → t_start → t_wire → t_response_end → t_done
      dispatch lag │ before the wire │ wire and server │ after the response

t_start and t_done are the runner's (the call's task starts running; the SDK call has
returned), t_wire and t_response_end loadgen's transport's (it writes the request; it
has read the last byte of the response). The four parts add up to the latency exactly.
On httpx2's own pool there is no transport of ours to stamp: t_wire and t_response_end
stay 0, and the split is unmeasured, never guessed.
"""

from __future__ import annotations

import asyncio
import time
from contextvars import ContextVar
from typing import Protocol

from loadgen.histograms import Recorder
from loadgen.prompts import Prompt

# The record of the call running in the current task, so an HTTP hook can count the
# SDK's attempts and the transport can stamp the wire times (retries happen inside one
# SDK call, in the same task).
CURRENT_CALL: ContextVar["CallRecord | None"] = ContextVar("loadgen_current_call", default=None)


class CallRecord:
    """One logical call: its timeline (intended, start, wire, response end, done), first
    token; output tokens; attempts; error."""

    __slots__ = (
        "op_id", "t_intended", "t_start", "t_wire", "t_response_end", "t_first_token", "t_done",
        "output_tokens", "attempts", "error", "_t_last_token", "_itl",
        # What the response said, for tracer arms that describe the call themselves.
        "input_tokens", "response_model", "response_id", "finish_reason",
    )

    def __init__(self, op_id: int, t_intended: int, itl: Recorder | None) -> None:
        self.op_id = op_id
        self.t_intended = t_intended
        self.t_start = 0
        self.t_wire = 0
        self.t_response_end = 0
        self.t_first_token = 0
        self.t_done = 0
        self.output_tokens = 0
        self.attempts = 1
        self.error: str | None = None
        self.input_tokens = 0
        self.response_model: str | None = None
        self.response_id: str | None = None
        self.finish_reason: str | None = None
        self._t_last_token = 0
        self._itl = itl

    def token(self) -> None:
        """A content (or reasoning) delta with text arrived now."""
        now = time.perf_counter_ns()
        if self.t_first_token == 0:
            self.t_first_token = now
        elif self._itl is not None:
            self._itl.record_ns(now - self._t_last_token)
        self._t_last_token = now


class Provider(Protocol):
    """An API family behind one call: fill `rec` for `prompt`, raising on failure."""

    name: str

    async def call(self, prompt: Prompt, rec: CallRecord) -> None: ...

    async def aclose(self) -> None: ...


async def count_attempt(request: object) -> None:
    """httpx2 request hook: one more attempt for the current logical call."""
    rec = CURRENT_CALL.get()
    if rec is not None:
        rec.attempts += 1


_NAMED = {
    "APITimeoutError": "timeout",
    "TimeoutError": "timeout",
    "CancelledError": "cancelled",
    "APIConnectionError": "connection",
    "RemoteProtocolError": "stream_cut",
    "APIResponseValidationError": "bad_response",
}


def error_class(exc: BaseException) -> str:
    """A short, stable class for an exception: 'http_429', 'timeout', 'connection', …"""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    status = getattr(exc, "status_code", None)
    if status == 200:
        # Anthropic raises an error event inside a 200 stream as APIStatusError(200).
        return "stream_error"
    if isinstance(status, int):
        return f"http_{status}"
    name = type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    if name == "APIConnectionError" and type(cause).__name__ == "RemoteProtocolError":
        # The openai SDK wraps a connection dropped mid-response; say what it was.
        return "stream_cut"
    if name in _NAMED:
        return _NAMED[name]
    if name == "APIError":
        # Raised by the SDKs for an error event inside a stream.
        return "stream_error"
    if cause is not None and type(cause).__name__ in _NAMED:
        return _NAMED[type(cause).__name__]
    return name
