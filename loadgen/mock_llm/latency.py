"""The mock's generation model: what a request asks for, what text comes back, and when.

A request becomes a `Job` (model, output tokens, streaming or not). The output is
deterministic filler: token t is word `t mod len(WORDS)` followed by a space, and a
streaming response sends them `tokens_per_chunk` at a time. `LatencyModel` says when
each content delta is due, as gaps in nanoseconds drawn from an RNG seeded by
(seed, request sequence number) — never from global random state — so the same
requests in the same order always see the same latencies.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice, repeat
from typing import Any

from .config import MockConfig

WORDS: tuple[str, ...] = (
    "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "while", "seven",
    "bright", "models", "stream", "tokens", "across", "a", "quiet", "network", "and",
    "every", "span", "records", "its", "start", "end", "time", "so", "tracers", "can",
    "measure", "what", "they", "cost", "under", "steady", "load", "without", "guessing",
)
TOKENS: tuple[str, ...] = tuple(w + " " for w in WORDS)


@dataclass(slots=True)
class Job:
    """One parsed API request, in the terms both API dialects share."""

    model: str
    output_tokens: int
    prompt_tokens: int
    stream: bool
    include_usage: bool = False  # OpenAI stream_options.include_usage


class BadRequestError(Exception):
    """The request body cannot be served; answered with a 400 in the dialect's error shape."""


def read_request(body: bytes) -> tuple[dict[str, Any], str, list[Any]]:
    """A request body's JSON object, its `model` and its non-empty `messages`; else BadRequestError."""
    try:
        req = json.loads(body)
    except ValueError as exc:
        raise BadRequestError(f"invalid JSON body: {exc}") from None
    if not isinstance(req, dict):
        raise BadRequestError("the request body must be a JSON object")
    model = req.get("model")
    if not isinstance(model, str):
        raise BadRequestError("model: a string is required")
    messages = req.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequestError("messages: a non-empty array is required")
    return req, model, messages


def count_words(content: Any) -> int:
    """Approximate prompt tokens: whitespace-separated words in a message's content.

    Content is a string or a list of blocks, of which `{"type": "text", "text": ...}`
    blocks are counted; anything else counts as nothing.
    """
    if isinstance(content, str):
        return len(content.split())
    if isinstance(content, list):
        total = 0
        for block in content:
            if isinstance(block, dict):
                text = block.get("text")
                if isinstance(text, str):
                    total += len(text.split())
            elif isinstance(block, str):
                total += len(block.split())
        return total
    return 0


def count_message_words(messages: Any) -> int:
    """Words in every message's content; `messages` was checked to be a list by the caller."""
    total = 0
    for message in messages:
        if isinstance(message, dict):
            total += count_words(message.get("content"))
    return total


def output_tokens(value: Any, default: int) -> int:
    """The requested output length, or `default` when the request sets none."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequestError(f"max tokens must be a positive integer, got {value!r}")
    return value


@lru_cache(maxsize=4096)
def filler_text(start: int, stop: int) -> str:
    """Tokens [start, stop) of the deterministic output, as one string."""
    n = len(TOKENS)
    return "".join(TOKENS[t % n] for t in range(start, stop))


def chunk_count(tokens: int, tokens_per_chunk: int) -> int:
    """Content deltas needed to stream `tokens` tokens."""
    return -(-tokens // tokens_per_chunk)


def chunk_texts(tokens: int, tokens_per_chunk: int) -> Iterator[str]:
    """The text of each streamed content delta, in order; together they equal the full text."""
    for start in range(0, tokens, tokens_per_chunk):
        yield filler_text(start, min(tokens, start + tokens_per_chunk))


class LatencyModel:
    """When each content delta is due, relative to the request's arrival (or the end of a stall)."""

    __slots__ = ("seed", "ttft_ns", "itl_ns", "jitter")

    def __init__(self, config: MockConfig) -> None:
        self.seed = config.seed
        self.ttft_ns = int(config.ttft_ms * 1_000_000)
        self.itl_ns = int(config.itl_ms * 1_000_000)
        self.jitter = config.jitter

    def gaps(self, seq: int) -> Iterator[int]:
        """Endless gaps in ns: first the TTFT, then one inter-delta gap per further delta.

        With jitter, every gap is scaled by (1 + jitter * u), u ~ U[-1, 1] from an RNG
        seeded by (seed, seq) alone, so a request's latencies do not depend on what other
        requests are doing concurrently.
        """
        if self.jitter == 0.0:
            yield self.ttft_ns
            yield from repeat(self.itl_ns)
            return
        rng = random.Random(f"latency/{self.seed}/{seq}")
        jitter = self.jitter
        yield round(self.ttft_ns * (1.0 + jitter * rng.uniform(-1.0, 1.0)))
        itl = self.itl_ns
        while True:
            yield round(itl * (1.0 + jitter * rng.uniform(-1.0, 1.0)))

    def total_ns(self, seq: int, deltas: int) -> int:
        """When the last of `deltas` content deltas is due: the time a non-streaming answer takes."""
        if self.jitter == 0.0:
            return self.ttft_ns + (deltas - 1) * self.itl_ns
        return sum(islice(self.gaps(seq), deltas))
