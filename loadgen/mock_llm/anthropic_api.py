"""The Anthropic messages dialect: parsing requests and rendering messages, stream events and errors.

Shapes follow what `anthropic` 2.x parses, for `messages.create()` (streaming or not)
and the `messages.stream()` helper (`get_final_message()`):

- every SSE frame needs an `event:` line: the 2.x SDK skips frames without one;
- the stream is message_start (usage.input_tokens, output_tokens 1), content_block_start
  (an empty text block), ping, content_block_delta (text_delta) …, content_block_stop,
  message_delta (stop_reason, usage.output_tokens), message_stop; the helper's
  accumulator needs message_start first and the block index on every block event;
- a mid-stream error is `event: error` with the error object; the SDK raises it as
  APIStatusError (the HTTP status was 200, so no narrower class).

What anthropic 2.14 does with the faults that are not errors on the wire (checked in
its `_response.py`, `_streaming.py` and `lib/streaming/_messages.py`, and in
tests/test_mock_faults.py):

- malformed_json: it calls `json.loads` on the body, or on each event's data, and does not
  wrap the error: `create()` raises json.JSONDecodeError (a ValueError, not an
  anthropic.APIError); streaming, the iteration raises it at the malformed event, after
  the events before it were yielded (the `stream()` helper too);
- no_usage: without streaming, no error and the message's `usage` is None; with
  `create(stream=True)`, no error and the message_delta event's `usage` is None; the
  `messages.stream()` helper crashes: its accumulator reads `event.usage.output_tokens`
  and raises AttributeError ("'NoneType' object has no attribute 'output_tokens'") at the
  message_delta, so neither `get_final_message()` nor the iteration completes.
"""

from __future__ import annotations

import json
from typing import Any

from .latency import BadRequestError, Job, count_message_words, count_words, output_tokens, read_request

NAME = "anthropic"
REQUEST_ID_HEADER = b"request-id"

# status -> (error type, message), after the shapes Anthropic returns.
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request"),
    404: ("not_found_error", "Not found"),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit (mock fault)"),
    500: ("api_error", "Internal server error (mock fault)"),
    502: ("api_error", "Bad gateway (mock fault)"),
    503: ("api_error", "Service unavailable (mock fault)"),
    529: ("overloaded_error", "Overloaded (mock fault)"),
}

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

_BLOCK_START = (
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":"","citations":null}}\n\n'
    b'event: ping\ndata: {"type":"ping"}\n\n'
)
_DELTA_OPEN = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"'
)
_DELTA_CLOSE = b'"}}\n\n'
_BLOCK_STOP = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
_MESSAGE_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


def parse(body: bytes, default_output_tokens: int) -> Job:
    """A messages request body → Job; raises BadRequestError for what the API would reject.

    `default_output_tokens` is unused: the Messages API requires max_tokens.
    """
    req, model, messages = read_request(body)
    if "max_tokens" not in req:
        raise BadRequestError("max_tokens: Field required")
    n = output_tokens(req["max_tokens"], default_output_tokens)
    prompt = count_message_words(messages) + count_words(req.get("system"))
    return Job(model, n, prompt, req.get("stream") is True)


def _error(err_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": err_type, "message": message}}


def error_body(status: int, message: str | None = None) -> bytes:
    """`{"type": "error", "error": {"type", "message"}}` for an HTTP error status."""
    err_type, default_message = _ERRORS.get(status, _ERRORS[500])
    return _dumps(_error(err_type, message or default_message)).encode()


def _usage(job: Job, output: int) -> dict[str, Any]:
    return {
        "input_tokens": job.prompt_tokens,
        "output_tokens": output,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "service_tier": "standard",
    }


def _message(job: Job, seq: int, content: list[dict[str, Any]], stop_reason: str | None, output: int) -> dict[str, Any]:
    return {
        "id": f"msg_mock{seq}",
        "type": "message",
        "role": "assistant",
        "model": job.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": _usage(job, output),
    }


def completion(job: Job, seq: int, text: str, usage: bool = True) -> bytes:
    """The non-streaming `message` object; without its `usage` object if not `usage`."""
    content = [{"type": "text", "text": text, "citations": None}]
    message = _message(job, seq, content, "end_turn", job.output_tokens)
    if not usage:
        del message["usage"]
    return _dumps(message).encode()


class Frames:
    """The SSE events of one streamed message."""

    __slots__ = ("_job", "_seq")

    def __init__(self, job: Job, seq: int) -> None:
        self._job = job
        self._seq = seq

    def head(self) -> bytes:
        """message_start, content_block_start and ping: no text yet, so no first token."""
        start = {"type": "message_start", "message": _message(self._job, self._seq, [], None, 1)}
        return b"event: message_start\ndata: " + _dumps(start).encode() + b"\n\n" + _BLOCK_START

    def delta(self, text: str) -> bytes:
        return b"".join((_DELTA_OPEN, text.encode(), _DELTA_CLOSE))  # filler words: nothing to escape

    def tail(self, usage: bool = True) -> bytes:
        """content_block_stop, message_delta (with its `usage` only if `usage`), message_stop."""
        delta = '{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null}'
        if usage:
            delta += f',"usage":{{"output_tokens":{self._job.output_tokens}}}'
        return b"".join((_BLOCK_STOP, b"event: message_delta\ndata: ", delta.encode(), b"}\n\n", _MESSAGE_STOP))

    def malformed(self) -> bytes:
        """A content_block_delta event cut off inside its delta: a `data:` payload that is not JSON."""
        return _DELTA_OPEN + b"\n\n"

    def error(self) -> bytes:
        """A mid-stream `error` event, as the API sends when it overloads after answering 200."""
        body = _error("overloaded_error", "Overloaded (mock fault mid-stream)")
        return b"event: error\ndata: " + _dumps(body).encode() + b"\n\n"
