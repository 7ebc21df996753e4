"""The fleet: one provider's worker processes, every arm's, driven block by block.

The orchestrator builds the workers' specs; the fleet starts the processes, sends each its
blocks in turn (or, in a soak, every arm's windows at once), gathers their messages
(ready, progress, block done, result, error), notices a dead or stuck worker, and merges
each arm's workers into one result (loadgen.results.merge).
"""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass, field
from typing import Callable

from loadgen.plan import WorkerSpec
from loadgen.processes import Engine, LocalEngine, one_hash_seed
from loadgen.results import WorkerResult, merge
from loadgen.schedule import Block

BLOCK_MARGIN_NS = 150_000_000  # from a block's command to its common start

ProgressSink = Callable[[dict], None]
Key = tuple[str, int]  # (arm label, worker: replica × shards + shard)


def replica_for(block_index: int, replicas: int) -> int:
    """Which of each arm's replica processes runs this block: replica i of every arm.

    Replicas take the blocks in turn (0 1 2 3 0 1 …) and the arms' order moves on once
    every R blocks (`rotation`), so each replica pair runs the blocks in every order, and no
    process ever runs two turns in a row: measured, a process that ran the turn just before
    its own is faster (its memory still in the caches), which with two arms and a rotation
    of one block favoured whichever arm more often followed itself. Replica i of an arm is
    always paired with replica i of the baseline: the R process pairs share no process, so
    their effects are independent, and the overhead CI (loadgen.overhead) takes them as R
    independent draws.
    """
    return block_index % replicas


def rotation(block_index: int, replicas: int, arms: int) -> int:
    """How far the arms' order is rotated for this block: one step every R blocks."""
    return (block_index // replicas) % arms


@dataclass
class RunOutcome:
    results: list[WorkerResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False
    target: str = ""
    collector: str | None = None


class Fleet:
    """Every arm's worker processes for one provider, run in interleaved rounds.

    All workers start and prime together; then for each block of the schedule each arm in
    turn runs it from a common start time, alone on the machine, so drift on a shared
    machine lands on every arm alike. The order rotates from block to block (baseline, A, B;
    A, B, baseline; B, baseline, A; …), so running first or last, after one arm or another,
    does not fall on one arm either. Workers stay alive between blocks, so each arm's
    process, tracer and connections persist, as in production.
    """

    def __init__(self, groups: dict[str, list[WorkerSpec]], timeout_s: float, on_progress: ProgressSink,
                 on_window: Callable[[str, int, dict], None] | None = None,
                 engine: Engine | None = None, on_block_start: Callable[[int], None] | None = None) -> None:
        self.groups = groups
        self.on_window = on_window
        self.on_block_start = on_block_start  # told each block's common start (perf_counter_ns)
        self.timeout_s = timeout_s
        self.on_progress = on_progress
        self.specs: dict[Key, WorkerSpec] = {(label, spec.worker): spec for label, specs in groups.items() for spec in specs}
        self.replicas = {label: max(spec.replica for spec in specs) + 1 for label, specs in groups.items()}
        # The engine hosts the workers: local processes (loadgen.processes) or Ray actors
        # (loadgen.ray_engine); either way a handle, a command sink per worker, one
        # messages source and one stop event (loadgen.processes.Workers).
        self.workers = (engine or LocalEngine()).open(self.specs)
        self.messages, self.stop = self.workers.messages, self.workers.stop
        self.commands, self.procs = self.workers.commands, self.workers.procs
        self.ready: set[Key] = set()
        self.blocks_done: set[tuple[str, int, int]] = set()
        self.results: dict[Key, WorkerResult] = {}
        self.failed: set[Key] = set()
        self.progress: dict[str, dict[int, dict]] = {label: {} for label in groups}
        self.stop_deadline: float | None = None

    def run(self, blocks: tuple[Block, ...], outcome: RunOutcome, together: bool = False) -> dict[str, WorkerResult]:
        """Run the blocks: each arm in turn, or (a soak's windows) every arm at once."""
        with one_hash_seed():  # the arms' processes alike, but for the arm
            # Replica by replica, every arm's in turn: no arm's processes all start first.
            for key in sorted(self.procs, key=lambda key: self.specs[key].replica):
                self.procs[key].start()
        try:
            self._wait(outcome, lambda: self.ready | self.failed >= set(self.specs))
            turns = [list(self.groups)] if together else [[label] for label in self.groups]
            replicas = max(self.replicas.values())
            for k, block in enumerate(blocks):
                step = rotation(k, replicas, len(turns))
                for labels in turns[step:] + turns[:step]:
                    if outcome.interrupted or self.failed:
                        break
                    keys = [key for key, spec in self.specs.items() if key[0] in labels
                            and spec.replica == replica_for(block.index, replicas)]
                    start_at = time.perf_counter_ns() + BLOCK_MARGIN_NS
                    for key in keys:
                        self.commands[key].put(("block", block, start_at))
                    if self.on_block_start is not None:
                        self.on_block_start(start_at)
                    self._wait(outcome, lambda: all((*key, block.index) in self.blocks_done or key in self.failed
                                                    for key in keys))
            for command in self.commands.values():
                command.put(("finish",))
            self._wait(outcome, lambda: set(self.results) | self.failed >= set(self.specs))
        finally:
            for proc in self.procs.values():
                proc.join(timeout=10)
                if proc.is_alive():
                    proc.kill()
            self.workers.close()
        merged: dict[str, WorkerResult] = {}
        for label in self.groups:
            workers = [self.results[key] for key in self.specs if key[0] == label and key in self.results]
            if not workers:
                continue
            result = merge(workers)
            if outcome.interrupted or any(key[0] == label for key in self.failed):
                result.interrupted = True  # stopped early, or a shard's operations are missing
            merged[label] = result
        return merged

    def _wait(self, outcome: RunOutcome, done: Callable[[], bool]) -> None:
        while not done():
            try:
                self._pump(outcome)
            except KeyboardInterrupt:
                # First Ctrl-C: ask the workers to stop and keep collecting, so the
                # results so far are still written.
                if not outcome.interrupted:
                    outcome.interrupted = True
                    self._stop()

    def _stop(self) -> None:
        if self.stop_deadline is None:
            self.stop.set()
            for command in self.commands.values():
                command.put(("finish",))  # wakes idle workers now (worker.COMMAND_POLL_S)
            self.stop_deadline = time.monotonic() + self.timeout_s + 15

    def _fail(self, key: Key, message: str, outcome: RunOutcome) -> None:
        if key not in self.failed:
            self.failed.add(key)
            outcome.errors.append(message)
            self._stop()

    def _pump(self, outcome: RunOutcome) -> None:
        """Handle one message, or notice a dead or stuck worker after a quiet quarter second."""
        try:
            kind, payload = self.messages.get(timeout=0.25)
        except queue.Empty:
            for key, proc in self.procs.items():
                if key not in self.results and not proc.is_alive():
                    spec = self.specs[key]
                    self._fail(key, f"{spec.provider}/{key[0]} worker {key[1]} exited with code {proc.exitcode} "
                                    f"before reporting", outcome)
            if self.stop_deadline is not None and time.monotonic() > self.stop_deadline:
                for key in set(self.specs) - set(self.results) - self.failed:
                    self._fail(key, f"{self.specs[key].provider}/{key[0]} worker {key[1]} did not stop in time; "
                                    f"its results are lost", outcome)
            return
        if kind == "ready":
            self.ready.add(tuple(payload))
        elif kind == "block_done":
            label, shard, index, window = payload
            self.blocks_done.add((label, shard, index))
            if window is not None and self.on_window is not None:
                self.on_window(label, shard, window)
        elif kind == "progress":
            shards = self.progress[payload["arm"]]
            shards[payload["worker"]] = payload
            self.on_progress(_sum_progress(list(shards.values())))
        elif kind == "result":
            result = WorkerResult.from_wire(payload)
            self.results[(result.arm, result.worker)] = result
        else:
            label, shard, message = payload
            self._fail((label, shard), message, outcome)


def _sum_progress(messages: list[dict]) -> dict:
    total = dict(messages[0])
    for key in ("sent", "completed", "errors", "shed", "in_flight", "warmup_done"):
        total[key] = sum(m[key] for m in messages)
    # Each replica of a shard plans the same share of the schedule: count it once.
    total["planned"] = sum({m.get("shard", 0): m["planned"] for m in messages}.values())
    total["elapsed_s"] = max(m["elapsed_s"] for m in messages)
    return total
