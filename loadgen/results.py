"""The results stage: call records → Stats → a worker's result → one merged result per arm.

Results flow one way (vegeta's Add → Close → Reporter). The runner fills one `CallRecord`
per call and adds it to `Stats` (counters, histograms, per-op arrays; nothing per call kept
beyond 8 bytes an array). When its blocks are done a worker packs what it measured into a
`WorkerResult`, which crosses the process boundary as plain data (`to_wire`/`from_wire`).
The fleet merges each arm's workers (K shards × R replicas) with `merge`, into one
`WorkerResult` of the same shape whatever their number; metrics summarises that.

Pure data and arithmetic: no OTel, SDK, rich or profile imports, so every stage can
import it.
"""

from __future__ import annotations

import time
from array import array
from dataclasses import dataclass, field, fields, replace

from loadgen.histograms import Recorder
from loadgen.known_answer import merge_held

HISTOGRAMS = ("latency", "service_time", "dispatch_lag", "ttft", "ttft_service", "itl",
              "before_wire", "wire", "after_response",
              # The sync client's probe thread: how late it woke from 1 ms sleeps (loadgen.sync_runner);
              # empty on the async path.
              "gil_wait")
# The per-op arrays of Stats (ns, −1 = none), by their names in the worker's result.
BY_OP = ("latency_by_op", "lag_by_op", "before_wire_by_op", "after_response_by_op")


class CallRecord:
    """One logical call: its timeline (intended, start, wire, response end, done), first
    token; output tokens; attempts; error.

    Its timestamps are monotonic nanoseconds (`perf_counter_ns`), which on Linux are
    system-wide, so the runner, the mock and the collector can compare them. They make
    one timeline per call:

        t_intended → t_start → t_wire → t_response_end → t_done
          dispatch lag │ before the wire │ wire and server │ after the response

    t_start and t_done are the runner's (the call's task starts running; the SDK call has
    returned), t_wire and t_response_end loadgen's transport's (it writes the request; it
    has read the last byte of the response). The four parts add up to the latency exactly.
    On httpx2's own pool there is no transport of ours to stamp: t_wire and t_response_end
    stay 0, and the split is unmeasured, never guessed.
    """

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

    # The clock of the token stamps: perf_counter_ns, as the runner's (a VirtualClock's in tests).
    now_ns = staticmethod(time.perf_counter_ns)

    def token(self) -> None:
        """A content (or reasoning) delta with text arrived now."""
        now = self.now_ns()
        if self.t_first_token == 0:
            self.t_first_token = now
        elif self._itl is not None:
            self._itl.record_ns(now - self._t_last_token)
        self._t_last_token = now


class Stats:
    """Everything the measured phase records: histograms and counters, no per-call lists."""

    def __init__(self, planned: int, total: int) -> None:
        self.h = {name: Recorder() for name in HISTOGRAMS}
        self.planned = planned
        self.sent = 0
        self.completed = 0
        self.ok = 0
        self.shed = 0
        self.attempts = 0
        self.output_tokens = 0
        self.errors: dict[str, int] = {}
        self.error_examples: dict[str, str] = {}
        self.first_sent_ns = 0
        self.last_sent_ns = 0
        self.last_done_ns = 0
        # Per-op latency (ns, −1 = not done or failed): 8 bytes per operation, so
        # later stages can pair the same op_id across arms. Indexed by the global op_id
        # (total = every shard's operations), so shards merge. Beside it, in the same
        # format, three of its parts (the wire part is the rest): dispatch lag (of every
        # call done, failed or not: the generator was late either way), client time
        # before the wire and after the response (−1 also where the transport could not
        # stamp the wire times).
        self.latency_by_op = array("q", [-1]) * total
        self.lag_by_op = array("q", [-1]) * total
        self.before_wire_by_op = array("q", [-1]) * total
        self.after_response_by_op = array("q", [-1]) * total

    def add(self, rec: CallRecord) -> None:
        """Count one measured call that is done: O(1), no allocation beyond the histograms'."""
        h = self.h
        self.completed += 1
        self.attempts += rec.attempts
        if rec.t_done > self.last_done_ns:
            self.last_done_ns = rec.t_done
        # Dispatch lag: how late the dispatcher handed the call over against the plan. Every
        # call counts, failed or not: the generator was late either way.
        lag = rec.t_start - rec.t_intended
        h["dispatch_lag"].record_ns(lag)
        op_id = rec.op_id
        in_range = op_id < len(self.latency_by_op)
        if in_range:
            self.lag_by_op[op_id] = lag
        if rec.error is not None:
            self.errors[rec.error] = self.errors.get(rec.error, 0) + 1
            return
        self.ok += 1
        self.output_tokens += rec.output_tokens
        t_done = rec.t_done
        latency = t_done - rec.t_intended
        h["latency"].record_ns(latency)
        h["service_time"].record_ns(t_done - rec.t_start)
        if rec.t_first_token:
            h["ttft"].record_ns(rec.t_first_token - rec.t_intended)
            h["ttft_service"].record_ns(rec.t_first_token - rec.t_start)
        # The wire stamps are 0 on httpx2's own pool: then the split is unmeasured (empty
        # histograms, −1 per op), never guessed.
        t_wire, t_end = rec.t_wire, rec.t_response_end
        split = t_wire and t_end
        if split:
            before_wire = t_wire - rec.t_start
            after_response = t_done - t_end
            h["before_wire"].record_ns(before_wire)
            h["wire"].record_ns(t_end - t_wire)
            h["after_response"].record_ns(after_response)
        if in_range:
            self.latency_by_op[op_id] = latency
            if split:
                self.before_wire_by_op[op_id] = before_wire
                self.after_response_by_op[op_id] = after_response


    def measured(self) -> dict:
        """The WorkerResult fields these stats fill: counts, send window, errors, histograms, per-op arrays."""
        return {
            "operations_planned": self.planned, "operations_sent": self.sent, "operations_completed": self.completed,
            "operations_ok": self.ok, "shed": self.shed, "attempts": self.attempts,
            "output_tokens": self.output_tokens, "first_sent_ns": self.first_sent_ns,
            "last_sent_ns": self.last_sent_ns, "last_done_ns": self.last_done_ns, "errors": dict(self.errors),
            "histograms": {name: rec.encode() for name, rec in self.h.items()},
            # 8 bytes per operation each, for pairing op_ids across arms (loadgen.overhead).
            **{name: getattr(self, name) for name in BY_OP},
        }


def _no_ops() -> array:
    return array("q")


@dataclass
class WorkerResult:
    """What one worker measured, or (after `merge`) every worker of one provider/arm.

    Counters and encoded histograms add up over workers; the by-worker lists keep one entry
    per worker (length `workers`), whatever the number. Times are ns of the machine's
    monotonic clock unless the name says otherwise.
    """

    provider: str
    arm: str  # the row label ('baseline-2' for a second baseline, 'honeyhive@1.6.0' for an arm at a version)
    mode: str
    load_kind: str
    stream: bool
    model: str
    interrupted: bool
    operations_planned: int
    operations_sent: int
    operations_completed: int
    operations_ok: int
    shed: int
    attempts: int
    output_tokens: int
    warmup_operations: int
    warmup_errors: int
    peak_in_flight: int
    pool_size: int
    cpu_percent: float  # busy share of its core over the measured blocks; merged: the busiest worker's
    errors: dict[str, int]
    error_examples: dict[str, str]
    histograms: dict[str, dict]  # HISTOGRAMS' names → Recorder.encode()
    offsets_first_ns: int | None = None
    offsets_last_ns: int | None = None
    first_sent_ns: int = 0
    last_sent_ns: int = 0
    last_done_ns: int = 0
    shard: int = 0  # this worker runs op_ids with op_id % shards == shard
    shards: int = 1
    replica: int = 0
    worker: int = 0  # replica × shards + shard
    workers: int = 1  # how many worker results this is made of
    started_at: float = 0.0  # wall clock (time.time()) when the worker started
    operations_fixed: bool = False  # a closed loop given a count plans its operations up front
    prime_error: str | None = None
    measure_start_ns: int = 0
    cpu_seconds_total: float = 0.0
    # CPU over the measured blocks plus every flush (exporting spans is tracing work); None: not measured.
    cpu_seconds_measured: float | None = None
    rss_samples: list[tuple[float, int]] = field(default_factory=list)  # (s since start, RSS bytes)
    measure_start_s: float | None = None  # s since start of the first measured send
    rss_retained: list[tuple[int, int]] = field(default_factory=list)  # (calls so far, retained RSS bytes)
    # 8 bytes per operation each, for pairing op_ids across arms (loadgen.overhead).
    latency_by_op: array = field(default_factory=_no_ops)
    lag_by_op: array = field(default_factory=_no_ops)
    before_wire_by_op: array = field(default_factory=_no_ops)
    after_response_by_op: array = field(default_factory=_no_ops)
    blocks: list[dict] = field(default_factory=list)  # each block's plan and send window
    spans: dict | None = None  # the span accounting's snapshot; None: the arm traces nothing
    soak: dict | None = None  # a soak's windows' retained RSS and growth sites
    # A fault scenario's samples, twice a second: (monotonic ns, RSS bytes, spans ended, exported,
    # dropped by reason, queued); the first worker's (a scenario runs one worker per arm).
    timeline: list[tuple] | None = None
    shutdown_s: float | None = None  # the final flush and the tracer's shutdown, the slowest worker's
    run_id: str | None = None
    paired_with: str | None = None  # the label of the baseline its costs are paired against; None: a baseline
    client: str = "async"  # "async": the SDK's async client; "sync": its sync client in threads; "raw": its request bytes on loadgen's client
    threads: int | None = None  # the sync client's OS threads per worker; None: no thread pool (async, raw)
    tracer_version: str | None = None  # the version of the arm's package the worker imported (None: no package)
    calibration: dict | None = None  # the calibration arm's known answer (loadgen.known_answer)
    # Set by the orchestrator: where the spans went, and what the collector received.
    export_endpoint: str | None = None
    collector: dict | None = None
    # One entry per worker, in (replica, shard) order.
    cpu_percent_by_worker: list[float] = field(default_factory=list)
    rss_samples_by_worker: list[list[tuple[float, int]]] = field(default_factory=list)
    measure_start_s_by_worker: list[float | None] = field(default_factory=list)
    rss_retained_by_worker: list[list[tuple[int, int]]] = field(default_factory=list)
    soak_by_worker: list[dict | None] = field(default_factory=list)

    def to_wire(self) -> dict:
        """Plain picklable data for the process boundary: the per-op arrays as raw bytes."""
        wire = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in BY_OP:
            wire[name] = wire[name].tobytes()
        return wire

    @classmethod
    def from_wire(cls, wire: dict) -> "WorkerResult":
        values = dict(wire)
        for name in BY_OP:
            ops = array("q")
            ops.frombytes(values[name])
            values[name] = ops
        return cls(**values)


_SUMMED = ("operations_sent", "operations_completed", "operations_ok", "shed", "attempts",
           "output_tokens", "warmup_operations", "warmup_errors")


def merge(results: list[WorkerResult]) -> WorkerResult:
    """One result from the workers that ran one provider/arm's schedule, one of them or many.

    The workers are K shards (each runs every K-th op_id of a block) times R replicas (each
    runs some of the blocks). Counters add up, histograms merge, the send window spans all
    workers, and the CPU figure is the busiest worker's, since the validity rule is about any
    one worker. Every replica of a shard plans the same share of the schedule, so the plan
    is counted once per shard. What belongs to one worker (its shard, its RSS samples) is
    the first worker's, and the by-worker lists keep every worker's.
    """
    results = sorted(results, key=lambda r: (r.replica, r.shard))
    sent = [r for r in results if r.first_sent_ns]
    measured = [r.cpu_seconds_measured for r in results if r.cpu_seconds_measured is not None]
    errors: dict[str, int] = {}
    examples: dict[str, str] = {}
    for r in results:
        for name, count in r.errors.items():
            errors[name] = errors.get(name, 0) + count
        for name, text in r.error_examples.items():
            examples.setdefault(name, text)
    return replace(
        results[0],
        **{key: sum(getattr(r, key) for r in results) for key in _SUMMED},
        operations_planned=sum({r.shard: r.operations_planned for r in results}.values()),
        # Shards run at once, a shard's replicas in turn: the peak adds over shards only.
        peak_in_flight=sum(_peak_by_shard(results).values()),
        errors=errors,
        error_examples=examples,
        first_sent_ns=min((r.first_sent_ns for r in sent), default=0),
        last_sent_ns=max((r.last_sent_ns for r in sent), default=0),
        last_done_ns=max(r.last_done_ns for r in results),
        interrupted=any(r.interrupted for r in results),
        cpu_percent=max(r.cpu_percent for r in results),
        cpu_seconds_total=round(sum(r.cpu_seconds_total for r in results), 3),
        cpu_seconds_measured=round(sum(measured), 4) if measured else None,
        histograms=_merge_histograms([r.histograms for r in results]),
        workers=len(results),
        spans=_merge_spans([r.spans for r in results]),
        blocks=_merge_blocks([r.blocks for r in results]),
        calibration=merge_held([r.calibration for r in results]),
        shutdown_s=max((r.shutdown_s for r in results if r.shutdown_s is not None), default=None),
        **{name: merge_by_op([getattr(r, name) for r in results]) for name in BY_OP},
        cpu_percent_by_worker=[r.cpu_percent for r in results],
        rss_samples_by_worker=[r.rss_samples for r in results],
        measure_start_s_by_worker=[r.measure_start_s for r in results],
        rss_retained_by_worker=[r.rss_retained for r in results],
        soak_by_worker=[r.soak for r in results],
    )


def _peak_by_shard(results: list[WorkerResult]) -> dict[int, int]:
    peaks: dict[int, int] = {}
    for r in results:
        peaks[r.shard] = max(peaks.get(r.shard, 0), r.peak_in_flight)
    return peaks


def merge_by_op(parts: list[array]) -> array:
    """Shards fill disjoint op_ids; the merged array has each op's value from its shard."""
    size = max((len(p) for p in parts), default=0)
    merged = array("q", [-1]) * size
    for part in parts:
        for op_id, value in enumerate(part):
            if value >= 0:
                merged[op_id] = value
    return merged


def _merge_histograms(per_worker: list[dict[str, dict]]) -> dict[str, dict]:
    merged = {name: Recorder.decode(data) for name, data in per_worker[0].items()}
    for histograms in per_worker[1:]:
        for name, data in histograms.items():
            merged[name].add_encoded(data)
    return {name: recorder.encode() for name, recorder in merged.items()}


def _merge_blocks(per_worker: list[list[dict]]) -> list[dict]:
    """Block by block: the plan is the block's, sends add up, the send window spans all workers."""
    merged: dict[int, dict] = {}
    for worker_blocks in per_worker:
        for block in worker_blocks:
            into = merged.setdefault(block["index"], {**block, "sent": 0, "shed": 0, "first_sent_ns": 0,
                                                      "last_sent_ns": 0})
            into["sent"] += block["sent"]
            into["shed"] += block["shed"]
            if block["first_sent_ns"]:
                into["first_sent_ns"] = min(into["first_sent_ns"] or block["first_sent_ns"], block["first_sent_ns"])
                into["last_sent_ns"] = max(into["last_sent_ns"], block["last_sent_ns"])
            into["stopped"] = into.get("stopped", False) or block.get("stopped", False)
            if block.get("first_op") is not None:
                into["first_op"] = min(into["first_op"], block["first_op"])
                into["last_op"] = max(into["last_op"], block["last_op"])
    return [merged[index] for index in sorted(merged)]


def _merge_spans(snapshots: list[dict | None]) -> dict | None:
    present = [s for s in snapshots if s]
    if not present:
        return None
    merged = {key: sum(s[key] for s in present) for key in ("started", "ended", "exported", "in_queue", "export_calls")}
    merged["dropped"] = {reason: sum(s["dropped"][reason] for s in present) for reason in present[0]["dropped"]}
    latency = Recorder.decode(present[0]["export_latency"])
    for s in present[1:]:
        latency.add_encoded(s["export_latency"])
    merged["export_latency"] = latency.encode()
    return merged
