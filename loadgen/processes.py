"""Starting and keeping the processes of a run: workers and the harness.

Everything about a process as a process lives here, so the modules that start them (the
fleet, the harness) and the modules that run inside them (the worker) share no code but
this: the spawn context, one string-hash seed for every worker, which core each process
takes, pinning to it, ending with the parent, and handing free memory back to the system.

A process is started by the dotted name of its entry point (`start_process`), so the
module that starts it never imports what runs inside it: the harness process does not
load the SDKs or OpenTelemetry, and the orchestrator does not load the worker.

The local engine lives here too: a fleet's workers as local processes and multiprocessing
queues (`LocalEngine`); the Ray engine (loadgen.ray_engine) hands the fleet the same four
small things (`Workers`) with Ray actors behind them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import importlib
import multiprocessing as mp
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol

WORKER_ENTRY = "loadgen.worker:worker_main"  # a local worker process's entry point


def spawn_context():
    # spawn, not fork: a worker must start clean, with no SDK patched by anyone else.
    return mp.get_context("spawn")


def _enter(entry: str, args: tuple) -> None:
    """In the new process: import the entry point's module there, and call it."""
    module, _, name = entry.partition(":")
    getattr(importlib.import_module(module), name)(*args)


def start_process(ctx, entry: str, args: tuple, name: str, python: str | None = None):
    """A daemon process (not yet started) that runs `entry` ("package.module:function"), with
    this interpreter or, given `python`, with that one (an arm's own environment, loadgen/envs.py)."""
    if python is None:
        return ctx.Process(target=_enter, args=(entry, args), name=name, daemon=True)
    return _OwnInterpreterProcess(python, target=_enter, args=(entry, args), name=name, daemon=True)


class _OwnInterpreterProcess(mp.context.SpawnProcess):
    """A spawned process on another interpreter, which imports from its own environment only.

    multiprocessing's spawn hands the child this process's sys.path and re-imports this
    process's __main__ there: in another environment the first would import every package
    from this one (the isolation lost), the second would import the command line. So for
    the time of the start, the interpreter is set to `python` and both are left out of what
    the child is told; the child's own site-packages (and PYTHONPATH) make its path.
    """

    def __init__(self, python: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.python = python

    def start(self) -> None:
        from multiprocessing import spawn

        executable, preparation = spawn.get_executable(), spawn.get_preparation_data

        def own_environment(name: str) -> dict:
            data = preparation(name)
            for key in ("sys_path", "init_main_from_name", "init_main_from_path"):
                data.pop(key, None)
            return data

        spawn.set_executable(self.python)
        spawn.get_preparation_data = own_environment
        try:
            super().start()
        finally:
            spawn.set_executable(executable)
            spawn.get_preparation_data = preparation


class WorkerHandle(Protocol):
    """A worker as the fleet sees it, process-like: multiprocessing.Process is one."""

    exitcode: int | None

    def start(self) -> None: ...
    def is_alive(self) -> bool: ...
    def join(self, timeout: float | None = None) -> None: ...
    def kill(self) -> None: ...


@dataclass
class Workers:
    """What a fleet drives its workers through, whatever hosts them (docs/architecture.md).

    procs: a handle per worker; commands: a sink per worker (`put`); messages: one source
    for all of them (`get(timeout=…)`, raising queue.Empty); stop: one event (`set`) every
    worker watches; close: ends whatever the engine started for these workers.
    """

    procs: dict[Any, WorkerHandle]
    commands: dict[Any, Any]
    messages: Any
    stop: Any
    close: Callable[[], None] = lambda: None


class Engine(Protocol):
    """What hosts a fleet's workers: `LocalEngine` here, or loadgen.ray_engine.RayEngine."""

    name: str

    def cores(self) -> int: ...
    def open(self, specs: dict) -> Workers: ...
    def check_reachable_everywhere(self, urls: dict[str, str]) -> None: ...
    def describe(self) -> dict | None: ...


class LocalEngine:
    """Workers as processes on this machine, talking over multiprocessing queues."""

    name = "local"

    def cores(self) -> int:
        """How many cores the workers may take (the run plan sizes shards by it)."""
        cpus, _ = core_plan()
        return len(cpus) if cpus else (os.cpu_count() or 1)

    def open(self, specs: dict) -> Workers:
        """A process (not yet started) per worker spec, each with its command queue."""
        ctx = spawn_context()
        messages, stop = ctx.Queue(), ctx.Event()
        commands = {key: ctx.Queue() for key in specs}
        procs = {key: start_process(ctx, WORKER_ENTRY, (spec, messages, commands[key], stop),
                                    name=f"loadgen-{spec.provider}-{key[0]}-{key[1]}", python=spec.python)
                 for key, spec in specs.items()}
        return Workers(procs, commands, messages, stop)

    def check_reachable_everywhere(self, urls: dict[str, str]) -> None:
        """Every worker runs on this machine: whatever this machine reaches, they reach."""

    def describe(self) -> dict | None:
        return None


@contextmanager
def one_hash_seed(seed: str = "0") -> Iterator[None]:
    """Processes started inside share one string-hash seed (unless PYTHONHASHSEED is set already).

    With a random seed per process, two workers running the same code lay out their dicts
    and sets differently and run at slightly different speeds: in A/A runs here (baseline
    against baseline, 50 rps) the paired Δ spread over −0.12 … +0.12 ms between runs, and
    two of four CIs excluded 0. With one seed the spread fell to −0.01 … +0.07 ms.
    """
    if os.environ.get("PYTHONHASHSEED"):
        yield
        return
    os.environ["PYTHONHASHSEED"] = seed
    try:
        yield
    finally:
        del os.environ["PYTHONHASHSEED"]


def core_plan() -> tuple[list[int] | None, int | None]:
    """(worker cores, harness core): workers take the cores in turn, the harness the last.

    With one worker per provider that keeps the worker and the embedded mock apart.
    """
    try:
        cores = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None, None
    if len(cores) < 2 or os.environ.get("LOADGEN_NO_PIN"):
        return None, None
    return cores, cores[-1]


def pin_to(cpu: int | None) -> None:
    """Run this process on one core, where the platform allows it: every thread it has (Linux sets
    affinity per thread; a tracer's export thread may already run), and so every thread it makes."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]
    for tid in threads:
        try:
            os.sched_setaffinity(tid, {cpu})
        except OSError:
            pass  # a thread that ended meanwhile


def exit_with_parent(poll_s: float = 1.0) -> None:
    """End this process when the one that started it is gone (killed with SIGKILL, say),
    so a killed run leaves no mock, collector or worker behind."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="loadgen-parent-watch", daemon=True).start()


PR_SET_TIMERSLACK = 29  # linux/prctl.h


def fine_timer_slack() -> None:
    """Wake this thread's timers when they are due, not up to 50 µs later.

    Linux lets a normal thread's timed waits end up to its timer slack late (50 µs by
    default) to coalesce wake-ups. At 10,000 calls/s the mean gap is 100 µs, so that slack
    alone made the raw client's sends late by 66 µs at the median (30 µs with a slack of
    1 ns: benchmarks/RESULTS.md). Per thread: call it in the thread that runs the loop."""
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux, or no prctl
        pass


def _malloc_trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


_MALLOC_TRIM = _malloc_trim()


def release_memory() -> None:
    """Between blocks: collect cyclic garbage (HdrHistogram objects sit in cycles), then hand
    glibc's free heap pages back. Without the trim a worker's RSS climbed ~75 bytes per call
    at a constant malloc in-use size — heap fragmentation, not live memory — which a soak
    would take for a leak."""
    gc.collect()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
