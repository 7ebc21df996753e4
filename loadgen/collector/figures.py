"""What the collector records of the spans it acknowledges, and of every export attempt, per run id
(resource attribute loadgen.run_id).

Work per span is O(1) and no per-span object is kept, except what the figures need by
definition: the set of span ids seen (to tell a duplicate from a new span) and of trace
ids. That is ~280 bytes per operation of a root and an LLM span (measured), so a soak
run should drop a finished run's figures (`POST /_collector/reset?run_id=X`).

Attempts: every export request that was read is one attempt on each run it carries spans
of, with its outcome (`OUTCOMES`) and that run's spans in it, whether it was ingested or
a fault answered it; so an exporter's retries can be counted at the collector. Only the
spans of accepted attempts are received spans. Each run also keeps the last
`MAX_ATTEMPT_LOG` attempts as (arrival ns, outcome, spans).

Trace coverage: an operation is covered when its root span (`loadgen.operation` with
`loadgen.op_id`) and an LLM span whose parent is that root, in the same trace, were
both received, in either order and in any requests. Whichever of the two comes first
waits, keyed by trace id + the root's span id, until the other arrives; then both keys
are gone, so only unmatched halves take memory.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from loadgen.histograms import Recorder
from loadgen.span_names import ROOT_SPAN

from .conventions import Requirement, convention_of, is_llm_span, missing_attributes
from .decode import STATUS_ERROR, ResourceInfo, Resources, SpanRow

# What became of an export attempt: accepted (partial success included), answered by a
# status fault, reset (the reset fault), down (the down fault), abandoned (the client hung
# up during a delay fault), bad_request (unreadable: 400 or 415).
OUTCOMES: tuple[str, ...] = ("accepted", "http_429", "http_503", "http_400", "http_413", "reset", "down",
                             "abandoned", "bad_request")
MAX_ATTEMPT_LOG = 50_000  # attempts logged per run; older ones fall off and are counted as dropped


class RunFigures:
    """The figures of one run id."""

    __slots__ = ("run_id", "requests", "bytes", "spans_received", "duplicates", "rejected_spans",
                 "first_receive_ns", "last_receive_ns", "span_ids", "trace_ids", "roots", "roots_without_op_id", "warmup_roots", "warmup_waiting",
                 "covered", "roots_waiting", "llm_waiting", "llm_spans", "complete_llm_spans", "missing", "by_convention", "by_service",
                 "export_delay", "error_roots", "error_llm_spans", "attempts", "attempts_by_outcome", "spans_by_outcome",
                 "attempt_log")

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.requests = 0
        self.bytes = 0  # wire bytes (before decompression) of the requests that carried this run's spans
        self.spans_received = 0  # unique span ids acknowledged
        self.duplicates = 0  # spans whose id was already received (re-sent after a lost ACK, say)
        self.rejected_spans = 0  # refused through partial success; not received
        self.first_receive_ns: int | None = None
        self.last_receive_ns: int | None = None
        self.span_ids: set[bytes] = set()
        self.trace_ids: set[bytes] = set()
        self.roots = 0  # spans named loadgen.operation with a loadgen.op_id
        self.roots_without_op_id = 0
        self.warmup_roots = 0  # roots with a negative op_id: loadgen's warm-up and priming calls
        self.warmup_waiting: set[bytes] = set()
        self.covered = 0  # roots with an LLM child received
        self.roots_waiting: set[bytes] = set()  # trace_id + span_id of roots without an LLM child yet
        self.llm_waiting: set[bytes] = set()  # trace_id + parent_span_id of LLM spans without their root yet
        self.llm_spans = 0
        self.complete_llm_spans = 0
        self.missing: dict[str, int] = {}
        self.by_convention: dict[str, list[Any]] = {}  # convention -> [llm spans, complete, {missing: n}]
        self.by_service: dict[str, list[int]] = {}  # service.name -> [spans, duplicates, llm spans]
        # Receive wall time − span end time: the collector's view of export latency. Both
        # are time.time_ns() on one machine; a negative difference (clock step) counts as 0.
        self.export_delay = Recorder()
        self.error_roots = 0  # roots (as counted in `roots`) whose status is ERROR
        self.error_llm_spans = 0  # LLM spans whose status is ERROR
        self.attempts = 0  # export requests that carried this run's spans, whatever their outcome
        self.attempts_by_outcome = dict.fromkeys(OUTCOMES, 0)
        self.spans_by_outcome = dict.fromkeys(OUTCOMES, 0)  # this run's spans in those requests, duplicates included
        self.attempt_log: deque[tuple[int, str, int]] = deque(maxlen=MAX_ATTEMPT_LOG)

    def add_rows(self, rows: list[SpanRow], resource: ResourceInfo, receive_wall_ns: int,
                 required: dict[str, tuple[Requirement, ...]]) -> None:
        """Account acknowledged spans of one resource block."""
        span_ids, trace_ids = self.span_ids, self.trace_ids
        roots_waiting, llm_waiting = self.roots_waiting, self.llm_waiting
        record = self.export_delay.record_ns
        received = duplicates = roots = covered = llm = error_roots = error_llm = 0
        for trace_id, span_id, parent_id, name, end_ns, keys, op_id, oi_kind, status_code in rows:
            if span_id in span_ids:
                duplicates += 1
                continue
            span_ids.add(span_id)
            trace_ids.add(trace_id)
            received += 1
            delay = receive_wall_ns - end_ns
            record(delay if delay > 0 else 0)
            if op_id is not None and op_id < 0:
                # loadgen's warm-up and priming calls (negative op_ids): matched so their
                # LLM children do not wait forever, but not operations of the run.
                self.warmup_roots += 1
                key = trace_id + span_id
                if key in llm_waiting:
                    llm_waiting.discard(key)
                else:
                    roots_waiting.add(key)
                    self.warmup_waiting.add(key)
            elif op_id is not None:
                roots += 1
                if status_code == STATUS_ERROR:
                    error_roots += 1
                key = trace_id + span_id
                if key in llm_waiting:
                    llm_waiting.discard(key)
                    covered += 1
                else:
                    roots_waiting.add(key)
            elif name == ROOT_SPAN:
                self.roots_without_op_id += 1
            elif is_llm_span(name, keys, oi_kind):
                llm += 1
                if status_code == STATUS_ERROR:
                    error_llm += 1
                if parent_id:
                    key = trace_id + parent_id
                    if key in roots_waiting:
                        roots_waiting.discard(key)
                        if key in self.warmup_waiting:
                            self.warmup_waiting.discard(key)
                        else:
                            covered += 1
                    else:  # its root is yet to come (or it is a second LLM child: then it never matches)
                        llm_waiting.add(key)
                self._check_attributes(keys, convention_of(keys, resource.honeyhive), required)
        self.spans_received += received
        self.roots += roots
        self.covered += covered
        self.duplicates += duplicates
        self.llm_spans += llm
        self.error_roots += error_roots
        self.error_llm_spans += error_llm
        service = self.by_service.get(resource.service)
        if service is None:
            service = self.by_service[resource.service] = [0, 0, 0]
        service[0] += received
        service[1] += duplicates
        service[2] += llm

    def _check_attributes(self, keys: set[str], convention: str,
                          required: dict[str, tuple[Requirement, ...]]) -> None:
        entry = self.by_convention.get(convention)
        if entry is None:
            entry = self.by_convention[convention] = [0, 0, {}]
        entry[0] += 1
        missing = missing_attributes(keys, required.get(convention, ()))
        if not missing:
            entry[1] += 1
            self.complete_llm_spans += 1
            return
        for name in missing:
            self.missing[name] = self.missing.get(name, 0) + 1
            entry[2][name] = entry[2].get(name, 0) + 1

    def add_request(self, receive_ns: int, wire_bytes: int) -> None:
        self.requests += 1
        self.bytes += wire_bytes
        if self.first_receive_ns is None:
            self.first_receive_ns = receive_ns
        self.last_receive_ns = receive_ns

    def add_attempt(self, arrival_ns: int, outcome: str, spans: int) -> None:
        self.attempts += 1
        self.attempts_by_outcome[outcome] += 1
        self.spans_by_outcome[outcome] += spans
        self.attempt_log.append((arrival_ns, outcome, spans))

    def attempts_json(self) -> dict[str, Any]:
        """`{"run_id", "attempts": [[arrival_ns, outcome, spans], ...] oldest first, "dropped": n}`."""
        log = [list(entry) for entry in self.attempt_log]
        return {"run_id": self.run_id, "attempts": log, "dropped": self.attempts - len(log)}

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "requests": self.requests,
            "bytes": self.bytes,
            "spans_received": self.spans_received,
            "duplicates": self.duplicates,
            "rejected_spans": self.rejected_spans,
            "traces": len(self.trace_ids),
            "first_receive_ns": self.first_receive_ns,
            "last_receive_ns": self.last_receive_ns,
            "roots": self.roots,
            "roots_without_op_id": self.roots_without_op_id,
            "warmup_roots": self.warmup_roots,
            "llm_spans": self.llm_spans,
            "error_roots": self.error_roots,
            "error_llm_spans": self.error_llm_spans,
            "covered_operations": self.covered,
            "complete_llm_spans": self.complete_llm_spans,
            "attribute_completeness_percent": _percent(self.complete_llm_spans, self.llm_spans),
            "missing_attributes": _by_count(self.missing),
            "by_convention": {
                name: {"llm_spans": llm, "complete_llm_spans": complete,
                       "attribute_completeness_percent": _percent(complete, llm), "missing_attributes": _by_count(missing)}
                for name, (llm, complete, missing) in sorted(self.by_convention.items())
            },
            "by_service": {
                name: {"spans": spans, "duplicates": duplicates, "llm_spans": llm}
                for name, (spans, duplicates, llm) in sorted(self.by_service.items())
            },
            "export_delay_ms": self.export_delay.summary_ms(),
            "export_delay_hdr": self.export_delay.encode(),
            "attempts": self.attempts,
            "attempts_by_outcome": dict(self.attempts_by_outcome),
            "spans_by_outcome": dict(self.spans_by_outcome),
        }


class Ledger:
    """Every run's figures; `add_request` accounts one acknowledged export request, `add_attempt`
    one that a fault answered or that could not be read."""

    def __init__(self, required: dict[str, tuple[Requirement, ...]]) -> None:
        self._required = required
        self.runs: dict[str, RunFigures] = {}

    def run(self, run_id: str) -> RunFigures:
        figures = self.runs.get(run_id)
        if figures is None:
            figures = self.runs[run_id] = RunFigures(run_id)
        return figures

    def add_request(self, resources: Resources, wire_bytes: int, rejected: int,
                    receive_ns: int, receive_wall_ns: int) -> None:
        """Account a request whose last `rejected` spans were refused (partial success).

        The request counts once, and as one accepted attempt, for every run it carries
        spans of; its bytes are split among those runs by span count (in practice one
        worker process, one run id).
        """
        total = sum(len(rows) for _, rows in resources)
        accept = total - rejected
        carried: dict[str, int] = {}
        for resource, rows in resources:
            figures = self.run(resource.run_id)
            carried[resource.run_id] = carried.get(resource.run_id, 0) + len(rows)
            if accept < len(rows):
                figures.rejected_spans += len(rows) - accept
                rows = rows[:accept]
            accept -= len(rows)
            figures.add_rows(rows, resource, receive_wall_ns, self._required)
        if not carried:
            carried[""] = 0
        shares = _split(wire_bytes, carried, total)
        for run_id, share in shares.items():
            figures = self.run(run_id)
            figures.add_request(receive_ns, share)
            figures.add_attempt(receive_ns, "accepted", carried[run_id])

    def add_attempt(self, spans_by_run: dict[str, int], outcome: str, arrival_ns: int) -> None:
        """Account a request that was not ingested: one attempt on each run it carries spans of
        (on run "" when it carries none, or could not be read)."""
        for run_id, spans in (spans_by_run or {"": 0}).items():
            self.run(run_id).add_attempt(arrival_ns, outcome, spans)

    def reset(self, run_id: str | None = None) -> None:
        if run_id is None:
            self.runs.clear()
        else:
            self.runs.pop(run_id, None)


def _split(wire_bytes: int, spans_by_run: dict[str, int], total: int) -> dict[str, int]:
    """`wire_bytes` shared by span count, the rounding remainder to the first run."""
    if len(spans_by_run) == 1 or total == 0:
        first = next(iter(spans_by_run))
        return {run_id: (wire_bytes if run_id == first else 0) for run_id in spans_by_run}
    shares = {run_id: wire_bytes * spans // total for run_id, spans in spans_by_run.items()}
    first = next(iter(shares))
    shares[first] += wire_bytes - sum(shares.values())
    return shares


def _percent(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 3) if whole else None


def _by_count(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
