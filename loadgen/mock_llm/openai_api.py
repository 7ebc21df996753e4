"""The OpenAI chat-completions dialect: parsing requests and rendering responses, chunks and errors.

Shapes follow what `openai` 3.x parses, for `chat.completions.create()` (streaming or
not) and the `chat.completions.stream()` helper:

- a stream opens with a role-only chunk (`delta: {"role": "assistant", "content": ""}`),
  then content chunks, then a chunk with an empty delta and `finish_reason: "stop"`, then,
  with `stream_options.include_usage`, a usage-only chunk with `choices: []`, then
  `data: [DONE]`;
- `finish_reason` is "stop" even though the mock honours max_tokens exactly: the SDK's
  stream helper raises LengthFinishReasonError on "length";
- a mid-stream error is a `data: {"error": {...}}` frame, which the SDK raises as APIError.

What openai 3.57 does with the faults that are not errors on the wire (checked in its
`_response.py` / `_streaming.py`, and in tests/test_mock_faults.py):

- malformed_json: it calls `json.loads` on the body, or on each event's data, and does not
  wrap the error: `create()` raises json.JSONDecodeError (a ValueError, not an
  openai.APIError); streaming, the iteration raises it at the malformed chunk, after the
  chunks before it were yielded (the `stream()` helper too);
- no_usage: no error; the completion's `usage` is None, every chunk's `usage` is None, and
  so is the `stream()` helper's final completion's.

Chunks are rendered from a per-request JSON prefix plus the delta's text, not with
json.dumps per frame; the filler words need no JSON escaping.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .latency import Job, count_message_words, output_tokens, read_request

NAME = "openai"
REQUEST_ID_HEADER = b"x-request-id"

# status -> (error type, error code, message), after the shapes OpenAI returns.
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request"),
    404: ("invalid_request_error", "unknown_url", "Unknown request URL"),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached (mock fault)"),
    500: ("server_error", None, "The server had an error while processing your request (mock fault)"),
    502: ("server_error", "bad_gateway", "Bad gateway (mock fault)"),
    503: ("server_error", "service_unavailable", "The server is overloaded or not ready yet (mock fault)"),
    529: ("server_error", "overloaded", "Overloaded (mock fault)"),
}

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def parse(body: bytes, default_output_tokens: int) -> Job:
    """A chat-completions request body → Job; raises BadRequestError for what the API would reject."""
    req, model, messages = read_request(body)
    limit = req.get("max_completion_tokens")
    if limit is None:
        limit = req.get("max_tokens")
    n = output_tokens(limit, default_output_tokens)
    stream = req.get("stream") is True
    options = req.get("stream_options")
    include_usage = stream and isinstance(options, dict) and options.get("include_usage") is True
    return Job(model, n, count_message_words(messages), stream, include_usage)


def error_body(status: int, message: str | None = None) -> bytes:
    """`{"error": {"message", "type", "param", "code"}}` for an HTTP error status."""
    err_type, code, default_message = _ERRORS.get(status, _ERRORS[500])
    return _dumps(_error(err_type, code, message or default_message)).encode()


def _error(err_type: str, code: str | None, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": err_type, "param": None, "code": code}}


def completion(job: Job, seq: int, text: str, usage: bool = True) -> bytes:
    """The non-streaming `chat.completion` object; without its `usage` object if not `usage`."""
    prompt = job.prompt_tokens
    body = {
        "id": f"chatcmpl-mock{seq}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": job.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": job.output_tokens,
            "total_tokens": prompt + job.output_tokens,
        },
        "service_tier": "default",
        "system_fingerprint": None,
    }
    if not usage:
        del body["usage"]
    return _dumps(body).encode()


class Frames:
    """The SSE frames of one streamed chat completion."""

    __slots__ = ("_job", "_prefix")

    def __init__(self, job: Job, seq: int) -> None:
        self._job = job
        # Everything a chunk shares, up to the opening of "choices".
        self._prefix = (
            f'data: {{"id":"chatcmpl-mock{seq}","object":"chat.completion.chunk",'
            f'"created":{int(time.time())},"model":{_dumps(job.model)},'
            f'"system_fingerprint":null,"choices":'
        ).encode()

    def head(self) -> bytes:
        """The role-only first chunk: no text, so it must never count as the first token."""
        return self._prefix + (
            b'[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},'
            b'"logprobs":null,"finish_reason":null}]}\n\n'
        )

    def delta(self, text: str) -> bytes:
        return b"".join(
            (
                self._prefix,
                b'[{"index":0,"delta":{"content":"',
                text.encode(),  # filler words: nothing to escape
                b'"},"logprobs":null,"finish_reason":null}]}\n\n',
            )
        )

    def tail(self, usage: bool = True) -> bytes:
        """The finish chunk, the usage-only chunk when asked for (and `usage`), and [DONE]."""
        frames = [self._prefix, b'[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}\n\n']
        job = self._job
        if job.include_usage and usage:
            prompt, n = job.prompt_tokens, job.output_tokens
            counts = f'[],"usage":{{"prompt_tokens":{prompt},"completion_tokens":{n},"total_tokens":{prompt + n}}}}}\n\n'
            frames += [self._prefix, counts.encode()]
        frames.append(b"data: [DONE]\n\n")
        return b"".join(frames)

    def malformed(self) -> bytes:
        """A content chunk cut off inside its delta: a `data:` payload that is not JSON."""
        return self._prefix + b'[{"index":0,"delta":{"content":"\n\n'

    def error(self) -> bytes:
        """A mid-stream error frame; the SDK raises APIError when it reads it."""
        body = _error("server_error", "stream_error", "The server had an error while streaming (mock fault)")
        return b"data: " + _dumps(body).encode() + b"\n\n"
