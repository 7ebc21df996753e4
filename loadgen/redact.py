"""Keep secrets out of output: API keys from the environment never reach logs or files."""

from __future__ import annotations

import os
import re
from typing import Any

SECRET_ENV = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "HH_API_KEY", "HONEYHIVE_API_KEY")
MASK = "***REDACTED***"
# Key-shaped strings that may come back inside an error message even when not from env.
_PATTERNS = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|sk-ant-[A-Za-z0-9_\-]{8,}|Bearer\s+[A-Za-z0-9._\-]{8,})")


def secret_values() -> list[str]:
    values = [os.environ.get(name, "") for name in SECRET_ENV]
    values += [v for k, v in os.environ.items() if k.endswith("_API_KEY")]
    return sorted({v for v in values if len(v) >= 6}, key=len, reverse=True)


def redact(text: str) -> str:
    for value in secret_values():
        text = text.replace(value, MASK)
    return _PATTERNS.sub(MASK, text)


def redact_data(data: Any) -> Any:
    """Redact every string inside nested dicts and lists."""
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, dict):
        return {key: redact_data(value) for key, value in data.items()}
    if isinstance(data, list):
        return [redact_data(value) for value in data]
    return data
