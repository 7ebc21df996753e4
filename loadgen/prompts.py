"""Deterministic prompts: (seed, op_id) → the same prompt in any process, for either provider.

Each operation draws from its own `random.Random` seeded with a string (hashed with
SHA-512, so PYTHONHASHSEED and process boundaries do not matter); there is no global
random state. A prompt carries its domain, its span-size class (the output length it
asks for) and, for a share of operations, the earlier turns of a conversation so input
size grows as real chats do.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from loadgen.profile import Profile

DOMAINS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    # domain: (system prompt, question templates, topics)
    "technical": (
        "You are a senior software engineer. Answer precisely and show your reasoning.",
        (
            "Explain how {t} works and when you would choose it.",
            "What are the main failure modes of {t} in production?",
            "Write a short design note comparing two approaches to {t}.",
        ),
        ("connection pooling", "consistent hashing", "write-ahead logging", "rate limiting",
         "garbage collection", "TLS session resumption", "vector clocks", "backpressure"),
    ),
    "creative": (
        "You are a novelist with a gift for vivid, economical prose.",
        (
            "Write a scene in which {t} changes a character's mind.",
            "Describe {t} from the point of view of a lighthouse keeper.",
            "Draft the opening paragraph of a story about {t}.",
        ),
        ("a lost letter", "the first snow", "an abandoned observatory", "a borrowed violin",
         "a night train", "an overgrown garden", "a forgotten recipe", "a tide pool"),
    ),
    "factual": (
        "You are a careful reference librarian. Be accurate and cite what is well established.",
        (
            "Summarise what is known about {t}.",
            "Give a short history of {t}.",
            "List the key facts a student should know about {t}.",
        ),
        ("the water cycle", "the printing press", "plate tectonics", "the Silk Road",
         "photosynthesis", "the metric system", "coral reefs", "the telegraph"),
    ),
    "analytical": (
        "You are an analyst. Structure your answer, state assumptions, and quantify.",
        (
            "Analyse the trade-offs of {t} for a mid-sized company.",
            "What would you measure to decide whether {t} is working?",
            "Estimate the costs and benefits of {t} over three years.",
        ),
        ("moving to a four-day week", "adopting usage-based pricing", "opening a second warehouse",
         "switching cloud providers", "hiring a platform team", "rewriting a legacy billing system",
         "offering a free tier", "centralising on-call"),
    ),
    "troubleshooting": (
        "You are an on-call SRE. Diagnose step by step and propose the safest fix first.",
        (
            "Our service shows {t}. What should we check first?",
            "After a deploy we see {t}. How do we find the cause?",
            "Users report {t} only during peak hours. What could explain it?",
        ),
        ("p99 latency doubling", "connection resets", "memory growing without bound",
         "intermittent 502s", "a queue that never drains", "clock skew between hosts",
         "DNS timeouts", "CPU throttling in containers"),
    ),
}
DOMAIN_NAMES = tuple(DOMAINS)

# Requested output tokens per span-size class, and the mixed draw's weights.
SIZE_CLASSES: dict[str, tuple[int, int]] = {"small": (50, 200), "medium": (200, 500), "large": (500, 1500)}
MIXED_WEIGHTS = (("small", 0.4), ("medium", 0.4), ("large", 0.2))

_FILLER = (
    "the system handles requests by first checking the cache and then falling back to "
    "the primary store which keeps a durable log of every change so that replicas can "
    "catch up after a failure while clients see consistent reads from the leader"
).split()


@dataclass(frozen=True)
class Prompt:
    """One operation's request, independent of provider."""

    op_id: int
    domain: str
    size_class: str
    max_tokens: int
    system: str
    # Alternating ("user", text), ("assistant", text), … ending with the user's question.
    turns: tuple[tuple[str, str], ...]

    @property
    def conversation_turn(self) -> int:
        """1 for a fresh question, n for the n-th user turn of a conversation."""
        return (len(self.turns) + 1) // 2


def _size_class(rng: random.Random, mode: str) -> str:
    if mode != "mixed":
        return mode
    draw = rng.random()
    for name, weight in MIXED_WEIGHTS:
        if draw < weight:
            return name
        draw -= weight
    return MIXED_WEIGHTS[-1][0]


def _question(rng: random.Random, domain: str) -> str:
    _, templates, topics = DOMAINS[domain]
    return rng.choice(templates).format(t=rng.choice(topics))


def _answer(rng: random.Random, words: int) -> str:
    start = rng.randrange(len(_FILLER))
    return " ".join(_FILLER[(start + i) % len(_FILLER)] for i in range(words)) + "."


def make_prompt(
    seed: int,
    op_id: int,
    *,
    span_size_mode: str = "small",
    conversation_share: float = 0.25,
    max_turns: int = 6,
    max_tokens_cap: int | None = None,
    stream: str = "measured",
) -> Prompt:
    """The prompt for op_id under seed; `stream` separates warm-up prompts from measured ones."""
    rng = random.Random(f"loadgen-prompt:{seed}:{stream}:{op_id}")
    domain = DOMAIN_NAMES[rng.randrange(len(DOMAIN_NAMES))]
    size_class = _size_class(rng, span_size_mode)
    low, high = SIZE_CLASSES[size_class]
    max_tokens = rng.randint(low, high)
    if max_tokens_cap is not None:
        max_tokens = min(max_tokens, max_tokens_cap)
    turns: list[tuple[str, str]] = []
    if rng.random() < conversation_share:
        # A later turn of a conversation: it carries every earlier exchange, so input
        # grows with the turn number the way a real chat's context does.
        earlier = rng.randint(1, max_turns - 1)
        for _ in range(earlier):
            turns.append(("user", _question(rng, domain)))
            turns.append(("assistant", _answer(rng, rng.randint(40, 160))))
    turns.append(("user", _question(rng, domain)))
    return Prompt(
        op_id=op_id,
        domain=domain,
        size_class=size_class,
        max_tokens=max_tokens,
        system=DOMAINS[domain][0],
        turns=tuple(turns),
    )


def profile_prompt(profile: "Profile", op_id: int, *, warmup: bool = False) -> Prompt:
    """op_id's prompt under every prompt setting of a profile.

    The one place a profile becomes prompts: the runner sends what this returns, the
    budget counts it and `--test-determinism` hashes it, so none can leave a setting out.
    """
    return make_prompt(
        profile.seed,
        op_id,
        span_size_mode=profile.span_size_mode,
        conversation_share=profile.conversation_share,
        max_turns=profile.max_turns,
        max_tokens_cap=profile.max_tokens,
        stream="warmup" if warmup else "measured",
    )


def openai_messages(prompt: Prompt) -> list[dict[str, str]]:
    """Chat-completions messages: the system prompt first, then the turns."""
    return [{"role": "system", "content": prompt.system}] + [
        {"role": role, "content": text} for role, text in prompt.turns
    ]


def anthropic_messages(prompt: Prompt) -> list[dict[str, str]]:
    """Messages-API messages; the system prompt goes in its own parameter."""
    return [{"role": role, "content": text} for role, text in prompt.turns]


def request_body(provider: str, prompt: Prompt, model: str) -> dict:
    """The provider's request body for a prompt (what the adapter sends, minus transport)."""
    if provider == "openai":
        return {"model": model, "messages": openai_messages(prompt), "max_completion_tokens": prompt.max_tokens}
    if provider == "anthropic":
        return {
            "model": model,
            "system": prompt.system,
            "messages": anthropic_messages(prompt),
            "max_tokens": prompt.max_tokens,
        }
    raise ValueError(f"unknown provider {provider!r}")


def stream_digest(bodies: Iterable[dict]) -> str:
    """SHA-256 over canonical JSON of a sequence of request bodies."""
    digest = hashlib.sha256()
    for body in bodies:
        digest.update(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
        digest.update(b"\n")
    return digest.hexdigest()
