"""The fault matrix's scenarios: what each one breaks, for how long, and what it should show.

A scenario is a short open-loop run in three phases — before, during, after — with one fault
on the embedded collector or the embedded mock LLM in the middle phase. Its windows are placed
relative to the start of the measured schedule (the servers' `faults_from = "armed"`), so the
warm-up never meets a fault. Names are stable identifiers: profiles, `--scenarios`, and the
JSON document's cells use them.

`drops` lists the span drop reasons a scenario may cause (anything else dropped in it is a
finding); `errors` the error classes its LLM calls may end in (the same for every arm, the
baseline included, when the tracer leaves errors alone).
"""

from __future__ import annotations

from dataclasses import dataclass

# Phase lengths that are not the profile's `during`: the 30 s outage, a 2 s stall.
COLLECTOR_DOWN_S = 30.0
LLM_STALL_S = 2.0
LLM_TIMEOUT_S = 1.0  # the per-call deadline of llm_timeout; its stall lasts the whole phase


@dataclass(frozen=True)
class Scenario:
    name: str
    about: str
    target: str  # "collector" or "llm": which server the fault is on
    fault: dict  # the fault spec ([[collector.faults]] or [[mock.faults]]) without its window
    during_s: float | None = None  # None: the profile's [faults] during
    back: bool = True  # False: the fault lasts to the end (the shutdown meets it)
    stream: bool | None = None  # True: the scenario's calls stream, whatever the profile says
    timeout_s: float | None = None  # the per-call deadline, when the scenario is about it
    drops: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    settings: tuple[str, ...] = ()  # the profile settings that change its result (named in recommendations)


# How long the exporter retries one batch, and how much the queue holds meanwhile.
_EXPORT_RETRIES = ("export_timeout_ms", "max_queue_size")
SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("collector_down", "the collector down 30 s, then back", "collector", {"kind": "down"},
             during_s=COLLECTOR_DOWN_S, drops=("queue_full", "export_failed"), settings=_EXPORT_RETRIES),
    Scenario("collector_down_at_exit", "the collector down from the fault on, still down at shutdown", "collector",
             {"kind": "down"}, back=False, drops=("queue_full", "export_failed"),
             settings=("export_timeout_ms",)),  # bounds each export attempt at exit
    Scenario("collector_slow", "every export ACKed after 2 s", "collector", {"kind": "delay", "delay_ms": 2000},
             drops=("queue_full",), settings=("max_queue_size", "max_export_batch_size")),
    Scenario("collector_429", "exports answered 429 with Retry-After: 1", "collector",
             {"kind": "http_429", "retry_after_s": 1.0}, drops=("queue_full", "export_failed"),
             settings=_EXPORT_RETRIES),
    Scenario("collector_503", "exports answered 503 with Retry-After: 1", "collector",
             {"kind": "http_503", "retry_after_s": 1.0}, drops=("queue_full", "export_failed"),
             settings=_EXPORT_RETRIES),
    Scenario("collector_400", "exports answered 400 (not retryable)", "collector", {"kind": "http_400"},
             drops=("export_failed",)),
    Scenario("collector_413", "exports answered 413 (not retryable)", "collector", {"kind": "http_413"},
             drops=("export_failed",), settings=("max_export_batch_size",)),
    Scenario("collector_partial", "partial success: 10 % of each export's spans rejected", "collector",
             {"kind": "partial_success", "reject_fraction": 0.1}, drops=("rejected",)),
    Scenario("collector_reset", "export connections reset without an answer", "collector", {"kind": "reset"},
             drops=("queue_full", "export_failed"), settings=_EXPORT_RETRIES),
    Scenario("llm_429", "LLM calls answered 429 with Retry-After: 0.1", "llm",
             {"kind": "http_429", "retry_after_s": 0.1}, errors=("http_429",), settings=("max_retries",)),
    Scenario("llm_500", "LLM calls answered 500", "llm", {"kind": "http_500"}, errors=("http_500",),
             settings=("max_retries",)),
    Scenario("llm_502", "LLM calls answered 502", "llm", {"kind": "http_502"}, errors=("http_502",),
             settings=("max_retries",)),
    Scenario("llm_503", "LLM calls answered 503", "llm", {"kind": "http_503"}, errors=("http_503",),
             settings=("max_retries",)),
    Scenario("llm_529", "LLM calls answered 529 (overloaded)", "llm", {"kind": "overloaded_529"}, errors=("http_529",),
             settings=("max_retries",)),
    Scenario("llm_stream_error", "an error event half-way through each stream", "llm", {"kind": "stream_error"},
             stream=True, errors=("stream_error",)),
    Scenario("llm_stream_cut", "each stream's connection dropped half-way", "llm", {"kind": "stream_cut"},
             stream=True, errors=("stream_cut", "connection")),
    Scenario("llm_malformed", "a 200 whose JSON is broken", "llm", {"kind": "malformed_json"},
             errors=("malformed_json",)),
    Scenario("llm_no_usage", "responses that carry no usage", "llm", {"kind": "no_usage"}),
    Scenario("llm_stall", "the LLM holds every response for 2 s", "llm", {"kind": "stall"}, during_s=LLM_STALL_S),
    Scenario("llm_timeout", "the LLM stalls past the per-call timeout (1 s)", "llm", {"kind": "stall"},
             timeout_s=LLM_TIMEOUT_S, errors=("timeout",), settings=("timeout",)),
)}
SCENARIO_NAMES = tuple(SCENARIOS)


def check_scenarios(names: list[str]) -> list[str]:
    """The names as given, or ValueError naming the unknown ones and the known."""
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIO_NAMES)}")
    if len(set(names)) != len(names):
        raise ValueError("a scenario is listed twice")
    return names
