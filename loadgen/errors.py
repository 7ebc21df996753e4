"""Exit codes and the one error type a user can cause: a message, a code, no traceback."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1  # an internal failure: a bug, reported with its message
    USAGE = 2  # bad usage, bad profile, missing API key
    INVALID_RUN = 3  # the run completed but broke a validity rule
    UNREACHABLE = 4  # a target (or collector) could not be reached
    GATE_FAILED = 5  # loadgen compare: a figure got worse, or crossed a limit, under a gate
    INTERRUPTED = 130  # Ctrl-C or SIGTERM; results so far are still written


class UserError(Exception):
    """An error the user can fix; the message names the file, key or URL."""

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.code = code
