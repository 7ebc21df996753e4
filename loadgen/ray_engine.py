"""The Ray engine: a fleet's workers as Ray actors, each worker shard holding one CPU.

The fleet (loadgen.fleet) drives workers through four small things (loadgen.processes.Workers);
here each is made of Ray:

    handle    an actor (loadgen.ray_actor) running `worker.serve` in a thread of its own
    commands  an actor call per command, in order; a block's start goes as a wall-clock time
    messages  one thread here keeps a `fetch` outstanding per actor and queues what comes back
    stop      an actor call to each

Placement: one `{"CPU": 1}` bundle per shard. Every arm's processes of shard s (all their
replicas) take turns on the same schedule slice, so they share bundle s, each asking a
fraction of its CPU, and on this machine each is pinned to the core the local core plan
gives shard s — the same layout as the local engine.

Clocks: perf_counter is not shared between machines, so a block starts at an agreed wall-clock
time. Before any worker starts, each node's wall-clock offset against this process is measured
by round trips (`offset_from_round_trips`); the actor turns the agreed time into its own
perf_counter. A node whose |offset| + uncertainty exceeds the run's dispatch-lag allowance
(`skew_bound_ms`) is refused before the run starts.
"""

from __future__ import annotations

import math
import os
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from loadgen.errors import ExitCode, UserError
from loadgen.plan import peak_rate
from loadgen.processes import Workers
from loadgen.ray_actor import WorkerActor

CLOCK_ROUND_TRIPS = 16  # per node; the one with the smallest round trip is kept
PLACEMENT_TIMEOUT_S = 60.0
ACTORS_READY_TIMEOUT_S = 180.0
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "0.0.0.0")


@dataclass(frozen=True)
class ClockOffset:
    offset_ns: int  # the node's wall clock minus this process's
    uncertainty_ns: int  # half the round trip: the offset is known to ± this
    rtt_ns: int


def offset_from_round_trips(samples: list[tuple[int, int, int]]) -> ClockOffset:
    """(t0, remote, t2) per round trip, t0 and t2 read here around the remote reading.

    The remote clock was read somewhere within [t0, t2]; taking its middle errs by at most
    half the round trip, so the shortest round trip gives the tightest estimate.
    """
    t0, remote, t2 = min(samples, key=lambda sample: sample[2] - sample[0])
    rtt = t2 - t0
    return ClockOffset(offset_ns=round(remote - (t0 + t2) / 2), uncertainty_ns=math.ceil(rtt / 2), rtt_ns=rtt)


@dataclass
class NodeClock:
    """One node of the run, as the report shows it."""

    node_id: str
    host: str
    clock: ClockOffset
    round_trips: int
    actors: list[str] = field(default_factory=list)

    @property
    def skew_ms(self) -> float:
        """What the node's blocks may be off by, at worst: |offset| + uncertainty."""
        return (abs(self.clock.offset_ns) + self.clock.uncertainty_ns) / 1e6

    def to_json(self) -> dict:
        return {"node_id": self.node_id, "host": self.host, "offset_ms": round(self.clock.offset_ns / 1e6, 4),
                "uncertainty_ms": round(self.clock.uncertainty_ns / 1e6, 4), "rtt_ms": round(self.clock.rtt_ns / 1e6, 4),
                "round_trips": self.round_trips, "actors": self.actors}


def skew_bound_ms(profile) -> float:
    """How far a node's clock may be off: the run's dispatch-lag allowance (loadgen.limits.Validity).

    Two nodes whose clocks disagree by e start their shares of a block e apart, so their calls
    reach the target up to e late (or early) against the schedule — what a dispatch lag of e
    would do. The validity rules accept a dispatch-lag p99 up to max(2 ms, 25 % of the mean
    interval), so a skew within that keeps the combined schedule within what a valid run
    allows. A closed loop has no schedule rate: the floor (2 ms) holds.
    """
    rate = peak_rate(profile.load) if profile.open_loop else None
    return profile.validity.max_dispatch_lag_ms(rate) or profile.validity.max_lag_floor_ms


def check_skew(nodes: list[NodeClock], bound_ms: float) -> None:
    """Refuse to start when any node's |offset| + uncertainty exceeds the bound."""
    over = [node for node in nodes if node.skew_ms > bound_ms]
    if over:
        listed = "; ".join(f"node {node.node_id[:12]} ({node.host}) offset {node.clock.offset_ns / 1e6:+.3f} ms "
                           f"± {node.clock.uncertainty_ns / 1e6:.3f} ms" for node in over)
        raise UserError(f"Ray: clock skew too large to keep the schedule: {listed}; the run allows {bound_ms:.3f} ms "
                        f"(its dispatch-lag allowance); synchronise the nodes' clocks (NTP/chrony)", ExitCode.USAGE)


class RayEngine:
    """Ray for one `loadgen run`: connected (or started) once, a placement group per fleet."""

    name = "ray"

    def __init__(self, address: str | None, started: bool, start_s: float) -> None:
        self.address = address
        self.started = started
        self.start_s = start_s
        self.home_node = ray.get_runtime_context().get_node_id()
        self.nodes: dict[str, NodeClock] = {}
        self.fleets: list[dict] = []
        self.bound_ms: float | None = None
        self.run_id = uuid.uuid4().hex[:8]  # in the actors' names, so `ray list actors` shows whose they are

    @classmethod
    def connect(cls, address: str | None) -> "RayEngine":
        """Join the cluster at `address` ('auto' or host:port), or start a local Ray sized to this machine."""
        t0 = time.monotonic()
        quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
        try:
            if address is None:
                ray.init(address="local", num_cpus=len(os.sched_getaffinity(0)), **quiet)
            else:
                ray.init(address=address, **{k: v for k, v in quiet.items() if k != "include_dashboard"})
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UserError(f"Ray: cannot join the cluster at {address}: {str(exc).splitlines()[0]}",
                            ExitCode.UNREACHABLE) from None
        return cls(address, address is None, time.monotonic() - t0)

    def shutdown(self) -> None:
        """Leave the cluster; a Ray this command started goes with it."""
        ray.shutdown()

    def cores(self) -> int:
        """CPUs the workers may take: the cluster's."""
        return int(ray.cluster_resources().get("CPU", 1))

    def check_reachable_everywhere(self, urls: dict[str, str]) -> None:
        """With a node besides this machine, an embedded server or a loopback URL is out of the workers' reach."""
        others = [node for node in ray.nodes() if node["Alive"] and node["NodeID"] != self.home_node]
        local = {flag: url for flag, url in urls.items() if not url.startswith("http") or _loopback(url)}
        if others and local:
            named = ", ".join(f"{url} ({flag})" for flag, url in local.items())
            raise UserError(f"Ray: the cluster has {len(others)} node(s) besides this machine, which cannot reach "
                            f"{named}; give a target reachable from every node with --base-url and --collector-url",
                            ExitCode.USAGE)

    def open(self, specs: dict) -> Workers:
        """Placement group, actors, clock offsets: the fleet's workers, ready to start."""
        for spec in specs.values():
            if spec.python is not None:
                raise UserError(f"Ray: arm {spec.label} runs in an environment of its own, which the Ray engine does "
                                f"not host; run it with --engine local", ExitCode.USAGE)
        first = next(iter(specs.values()))
        t0 = time.monotonic()
        workers = _RayWorkers(placement_group([{"CPU": 1}] * first.shards, strategy="SPREAD"))
        try:
            try:
                ray.get(workers.group.ready(), timeout=PLACEMENT_TIMEOUT_S)
            except ray.exceptions.GetTimeoutError:
                raise UserError(f"Ray: no room for {first.shards} one-CPU worker shard(s) in {PLACEMENT_TIMEOUT_S:g} s "
                                f"(free: {ray.available_resources().get('CPU', 0):g} CPU)", ExitCode.USAGE) from None
            placed_s = time.monotonic() - t0
            workers.actors = self._actors(specs, workers.group)
            places = dict(zip(workers.actors, ray.get([actor.where.remote() for actor in workers.actors.values()],
                                                      timeout=ACTORS_READY_TIMEOUT_S)))
            ready_s = time.monotonic() - t0
            self._measure_clocks(specs, workers.actors, places, skew_bound_ms(first.profile))
        except BaseException:  # a refusal, a timeout, Ctrl-C: nothing of the fleet stays behind
            workers.close()
            raise
        self.fleets.append({"provider": first.provider, "actors": len(workers.actors), "bundles": first.shards,
                            "placement_s": round(placed_s, 3), "actors_ready_s": round(ready_s, 3),
                            "clocks_s": round(time.monotonic() - t0 - ready_s, 3)})
        return workers.build(specs, places, {node_id: node.clock.offset_ns for node_id, node in self.nodes.items()})

    def _actors(self, specs: dict, group) -> dict:
        """One actor per worker, in its shard's bundle, sharing the bundle's CPU with the shard's other processes."""
        sharing = {shard: sum(1 for spec in specs.values() if spec.shard == shard) for shard in range(group.bundle_count)}
        fleet = len(self.fleets)
        return {key: WorkerActor.options(
            num_cpus=math.floor(10_000 / sharing[spec.shard]) / 10_000,  # Ray keeps 4 decimals
            scheduling_strategy=PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=spec.shard),
            runtime_env={"env_vars": {"PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0")}},
            max_restarts=0, max_task_retries=0,
            name=f"loadgen-{self.run_id}-{fleet}-{spec.provider}-{key[0]}-{key[1]}",
        ).remote(spec, self.home_node, spec.cpu, spec.shard) for key, spec in specs.items()}

    def _measure_clocks(self, specs: dict, actors: dict, places: dict, bound_ms: float) -> None:
        """Each node's offset, by round trips to one of its actors; refused when too large for the run."""
        measured = []
        for node_id in dict.fromkeys(place["node_id"] for place in places.values()):
            keys = [key for key, place in places.items() if place["node_id"] == node_id]
            actor = actors[keys[0]]
            samples = []
            for _ in range(CLOCK_ROUND_TRIPS):
                t0 = time.time_ns()
                remote = ray.get(actor.clock.remote())
                samples.append((t0, remote, time.time_ns()))
            node = NodeClock(node_id, places[keys[0]]["host"], offset_from_round_trips(samples), len(samples),
                             [f"{specs[key].provider}/{key[0]}/{key[1]}" for key in keys])
            measured.append(node)
        self.bound_ms = bound_ms if self.bound_ms is None else min(self.bound_ms, bound_ms)
        check_skew(measured, bound_ms)
        for node in measured:
            known = self.nodes.get(node.node_id)
            if known is not None:
                node.actors = known.actors + node.actors
                if known.skew_ms > node.skew_ms:  # the report keeps each node's worst measurement
                    node.clock, node.round_trips = known.clock, known.round_trips
            self.nodes[node.node_id] = node

    def describe(self) -> dict:
        """The document's `engine` object: which Ray, where, and each node's clock against this process."""
        return {"engine": "ray", "ray_version": ray.__version__,
                "ray_address": self.address or "local (started by loadgen)", "started_by_loadgen": self.started,
                "start_s": round(self.start_s, 3), "skew_bound_ms": self.bound_ms and round(self.bound_ms, 4),
                "fleets": self.fleets, "nodes": [node.to_json() for node in self.nodes.values()]}


def _loopback(url: str) -> bool:
    host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
    return host in LOOPBACK_HOSTS or host.startswith("127.")


class _RayWorkers:
    """A fleet's actors: handles, command sinks, the messages thread, stop and close."""

    def __init__(self, group) -> None:
        self.group = group
        self.actors: dict = {}
        self.messages = _Messages()

    def build(self, specs: dict, places: dict, offsets: dict[str, int]) -> Workers:
        procs = {key: _ActorHandle(self.messages, key, specs[key], actor, places[key]) for key, actor in self.actors.items()}
        commands = {key: _Commands(actor, offsets[places[key]["node_id"]]) for key, actor in self.actors.items()}
        return Workers(procs, commands, self.messages, _Stop(list(self.actors.values())), self.close)

    def close(self) -> None:
        """Every actor of the fleet killed, its placement group removed."""
        self.messages.close()
        for actor in self.actors.values():
            ray.kill(actor, no_restart=True)
        remove_placement_group(self.group)


class _ActorHandle:
    """Process-like: exitcode is None while the worker runs, 0 once it ended, 1 if its actor died."""

    def __init__(self, messages: "_Messages", key, spec, actor, place: dict) -> None:
        self.messages, self.key, self.spec, self.actor, self.place = messages, key, spec, actor, place
        self.exitcode: int | None = None

    def start(self) -> None:
        self.actor.start.remote()
        self.messages.watch(self)

    def is_alive(self) -> bool:
        return self.exitcode is None

    def join(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout if timeout is not None else math.inf)
        while self.exitcode is None and time.monotonic() < deadline:
            time.sleep(0.05)

    def kill(self) -> None:
        ray.kill(self.actor, no_restart=True)

    def death_line(self, exc: Exception) -> str:
        return (f"{self.spec.provider}/{self.key[0]} worker {self.key[1]}: its Ray actor on node "
                f"{self.place['node_id'][:12]} ({self.place['host']}) died ({type(exc).__name__})")


class _Commands:
    """A worker's commands as actor calls; a block's start moved onto the node's wall clock."""

    def __init__(self, actor, offset_ns: int) -> None:
        self.actor, self.offset_ns = actor, offset_ns

    def put(self, command: tuple) -> None:
        if command[0] == "block":
            kind, block, start_at_ns = command  # on this process's perf_counter (loadgen.fleet)
            wall_ns = start_at_ns + time.time_ns() - time.perf_counter_ns() + self.offset_ns
            command = (kind, block, wall_ns)
        self.actor.command.remote(command)


class _Stop:
    def __init__(self, actors: list) -> None:
        self.actors = actors

    def set(self) -> None:
        for actor in self.actors:
            actor.stop.remote()


class _Messages:
    """One source for every actor's messages: a thread keeps one `fetch` outstanding per running actor.

    A dead actor's fetch fails: the thread puts one error line naming the worker and its
    node, then marks the handle dead (in that order, so the fleet reads the named line first).
    """

    def __init__(self) -> None:
        self.queue: queue.Queue = queue.Queue()
        self.pending: dict = {}  # fetch ref → handle
        self.lock = threading.Lock()
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="loadgen-ray-messages", daemon=True)
        self.thread.start()

    def get(self, timeout: float | None = None):
        return self.queue.get(timeout=timeout)

    def watch(self, handle: _ActorHandle) -> None:
        with self.lock:
            self.pending[handle.actor.fetch.remote()] = handle

    def close(self) -> None:
        self.closed.set()
        self.thread.join(timeout=5)

    def _loop(self) -> None:
        while not self.closed.is_set():
            with self.lock:
                refs = list(self.pending)
            if not refs:
                time.sleep(0.05)
                continue
            ready, _ = ray.wait(refs, num_returns=1, timeout=0.25)  # as the local fleet polls its queue
            for ref in ready:
                with self.lock:
                    handle = self.pending.pop(ref)
                try:
                    batch, ended = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    self.queue.put(("error", (handle.key[0], handle.key[1], handle.death_line(exc))))
                    handle.exitcode = 1
                    continue
                for message in batch:
                    self.queue.put(message)
                if ended:
                    handle.exitcode = 0
                else:
                    self.watch(handle)
