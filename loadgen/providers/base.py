"""What every provider adapter shares: the protocol (and its sync twin), error classes, and
the sync adapters' common body.

An adapter fills the `CallRecord` (loadgen.results) of one logical call: its timeline,
tokens, attempts and error.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from collections.abc import Callable
from typing import Protocol

from loadgen.prompts import Prompt
from loadgen.results import CallRecord
from loadgen.settings import ProviderSettings

# The record of the call running in the current task, so an HTTP hook can count the
# SDK's attempts and the transport can stamp the wire times (retries happen inside one
# SDK call, in the same task). A sync call runs in a pool thread: the thread sets it, since
# ThreadPoolExecutor does not carry a context over from the thread that submits.
CURRENT_CALL: ContextVar["CallRecord | None"] = ContextVar("loadgen_current_call", default=None)


class Provider(Protocol):
    """An API family behind one call: fill `rec` for `prompt`, raising on failure."""

    name: str

    async def call(self, prompt: Prompt, rec: CallRecord) -> None: ...

    async def aclose(self) -> None: ...


class SyncProvider(Protocol):
    """The same through an SDK's sync client, called from a pool thread (`client = "sync"`)."""

    name: str

    def call_sync(self, prompt: Prompt, rec: CallRecord) -> None: ...

    def close(self) -> None: ...

    def abort(self, reopen: bool = False) -> None:
        """Close every socket, so that threads blocked in a read fail at once (a thread cannot be
        cancelled); `reopen`: later calls open new connections, else they fail."""

    async def aclose(self) -> None:
        """close(), so that the worker's shutdown path is the async one."""


class SyncSDKAdapter:
    """What the two sync adapters share: a call through the SDK's sync client, close, abort.

    A subclass builds `_settings`, `_http` (an httpx2.Client), `_client` and its `_create`,
    and names the functions its async twin's module shares with it: `request` (create's
    arguments), `read_whole` (a response into the record) and `read_part` (a stream's chunk
    or event into the record).
    """

    name: str
    request: Callable[[ProviderSettings, Prompt, CallRecord], dict]
    read_whole: Callable[[object, CallRecord], None]
    read_part: Callable[[object, CallRecord], None]

    def call_sync(self, prompt: Prompt, rec: CallRecord) -> None:
        response = self._create(**self.request(self._settings, prompt, rec))
        if not self._settings.stream:
            self.read_whole(response, rec)
            return
        for part in response:
            self.read_part(part, rec)

    def close(self) -> None:
        self._client.close()

    def abort(self, reopen: bool = False) -> None:
        # loadgen's sync transport can (sync_transport.py); httpx2's own pool cannot, and is left alone.
        abort = getattr(getattr(self._http, "_transport", None), "abort", None)
        if abort is not None:
            abort(reopen=reopen)

    async def aclose(self) -> None:
        self.close()


async def count_attempt(request: object) -> None:
    """httpx2 request hook: one more attempt for the current logical call."""
    count_attempt_sync(request)


def count_attempt_sync(request: object) -> None:
    """httpx2 sync request hook: one more attempt for the current logical call."""
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
    # Neither SDK wraps a 200 whose JSON is broken: json.JSONDecodeError reaches the caller as is.
    "JSONDecodeError": "malformed_json",
}


def error_class(exc: BaseException) -> str:
    """A short, stable class for an exception: 'http_429', 'timeout', 'connection', …"""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    named = getattr(exc, "error_class", None)  # the raw client's errors carry their class (its awaited calls)
    if isinstance(named, str):
        return named
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
