"""A worker shard as a Ray actor: `loadgen.worker.serve` in a thread of its own.

The actor holds its worker's queues and stop event as plain `queue.Queue` and
`threading.Event` objects, so nothing on the worker's hot path ever waits on Ray: a progress
message is a local put, read later by a `fetch`. The orchestrator (loadgen.ray_engine)
drives the actor with calls of its own:

    where()    which node, host and core the actor runs on
    clock()    this node's wall clock, for the offset round trips
    start()    start serving (the worker primes, then says ready)
    command()  a block or ("finish",), in the order sent
    stop()     the stop event, as Ctrl-C sets it for a local worker
    fetch()    the messages so far, in one batch, waiting for the first if there is none

`fetch` runs in a concurrency group of its own, so a fetch waiting for messages never
holds up a command; the other calls run one at a time, in the order they were sent.

The worker module is imported by name, here in the actor's process only: the orchestrating
process that creates the actor never loads the SDKs or a tracer.
"""

from __future__ import annotations

import importlib
import os
import queue
import socket
import threading
import time

import ray

WORKER_MODULE = "loadgen.worker"
# A fetch returns as soon as there is a message, or after this long with none. Between
# blocks an idle worker's actor shares its core with the arm that runs, and each empty
# return wakes it (as loadgen.worker.COMMAND_POLL_S): so it waits long.
FETCH_WAIT_S = 5.0
ENDED = ("ended", None)  # put after the worker's last message, when serve returns


class _WorkerActor:
    def __init__(self, spec, home_node: str, home_cpu: int | None, slot: int) -> None:
        self.spec = spec
        self.messages: queue.Queue = queue.Queue()
        self.commands: queue.Queue = queue.Queue()
        self.stop_event = threading.Event()
        self.node = ray.get_runtime_context().get_node_id()
        # On the orchestrator's own machine the local core plan holds (the harness keeps its
        # core); on another node the slots take that node's cores in turn.
        self.cpu = home_cpu if self.node == home_node else _own_core(slot)
        _pin_process(self.cpu)
        worker = importlib.import_module(WORKER_MODULE)
        worker.quiet_logs()
        self.serve = worker.serve

    def where(self) -> dict:
        return {"node_id": self.node, "host": socket.gethostname(), "ip": ray.util.get_node_ip_address(),
                "pid": os.getpid(), "cpu": self.cpu}

    def clock(self) -> int:
        return time.time_ns()

    def start(self) -> None:
        threading.Thread(target=self._serve, name="loadgen-worker", daemon=True).start()

    def _serve(self) -> None:
        try:
            self.serve(self.spec, self.messages, self.commands, self.stop_event)
        finally:
            self.messages.put(ENDED)

    def command(self, command: tuple) -> None:
        if command[0] == "block":
            # The agreed start comes on this node's wall clock (the orchestrator applied the
            # node's measured offset); the runner paces on perf_counter, so it is moved there
            # now, a few µs before it is needed, from one pair of readings of both clocks.
            kind, block, start_at_wall_ns = command
            command = (kind, block, time.perf_counter_ns() + start_at_wall_ns - time.time_ns())
        self.commands.put(command)

    def stop(self) -> None:
        self.stop_event.set()

    @ray.method(concurrency_group="fetch")
    def fetch(self, wait_s: float = FETCH_WAIT_S) -> tuple[list, bool]:
        """(messages, ended): ended once the worker's last message is in this batch or an earlier one."""
        batch = []
        try:
            batch.append(self.messages.get(timeout=wait_s))
            while True:
                batch.append(self.messages.get_nowait())
        except queue.Empty:
            pass
        ended = ENDED in batch
        return [message for message in batch if message != ENDED], ended


WorkerActor = ray.remote(concurrency_groups={"fetch": 1})(_WorkerActor)


def _own_core(slot: int) -> int | None:
    cores = sorted(os.sched_getaffinity(0))
    return cores[slot % len(cores)] if len(cores) > 1 else None


def _pin_process(cpu: int | None) -> None:
    """Every thread of this process (Ray's own too) on one core; threads started later inherit it.

    sched_setaffinity(0) would pin the calling thread alone, and a Ray worker has many.
    """
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), {cpu})
        except OSError:  # a thread that has just ended
            pass
