"""The run plan: a profile becomes the runs to make, each decided once, here.

A `loadgen run` is one or more **modes** (one per load model: `load`, then each of
`modes`); a mode is one **fleet** per provider (the worker processes of every arm that
runs on it, driven block by block); a fleet has one **arm** per row of the results
(provider, arm, label). For each fleet the plan says how many processes share one arm's
schedule (shards, each running every K-th op_id), how many replicas take its blocks in
rotation, and the blocks themselves. The orchestrator, the sweep, the budget,
`--validate-only` and `--test-determinism` read this plan; none decides any of it again.

A profile with `clients = ["async", "sync"]` runs every load model once per client, so a
mode is a load model with a client: its row label says which ("rate 200/s constant sync").
With the sync client the plan also says how many OS threads each worker calls from, and why
(loadgen/sync_threads.py).

Words: a *mode* is the row label of a load model ("rate 200/s constant"); a *label* is an
arm's row label ("baseline-2" for a second baseline); a *block* is a slice of the schedule
that every arm runs in turn.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from loadgen.arms import ARMS, parse_entry, runs_on, traces
from loadgen.envs import EnvSpec
from loadgen.profile import OPEN_LOOP_KINDS, Load, Profile, peak_rate
from loadgen.sync_threads import thread_count
from loadgen.schedule import Block, blocks, windows
from loadgen.settings import CalibrationSettings, ProviderSettings, TracingSettings

# Blocks are the overhead CI's unit (loadgen/overhead.py): enough of them for its degrees of
# freedom, each long enough (~2.5 s) that the switch between arms (~0.4 s) costs little.
MIN_AUTO_ROUNDS = 8
MAX_AUTO_ROUNDS = 24
AUTO_BLOCK_S = 2.5
AUTO_BLOCK_OPERATIONS = 25
# Replica processes per arm: the overhead CI takes the replica pairs as independent draws of
# the difference between processes, so more is better; their cost is start-up and memory.
AUTO_REPLICAS = 4
MIN_REPLICAS = 2
# Per provider, over all arms. With 2 replicas a CI whose process pairs differ has 1 degree
# of freedom (t = 12.7): measured in the north-star run, ±3.8 ms for one arm.
MAX_AUTO_PROCESSES = 24
AUTO_RATE_PER_WORKER = 100  # open-loop calls/s one worker process takes in 'auto'
AUTO_RATE_PER_RAW_WORKER = 5000  # the same with the raw client (benchmarks/RESULTS.md: > 10,000 valid on one core)


@dataclass(frozen=True)
class ArmPlan:
    """One row of the results: an arm on a provider, under its row label."""

    provider: str
    arm: str  # the registry's name (loadgen/arms.py)
    label: str  # the row label: the entry ('honeyhive@1.6.0', 'baseline@openlit'), 'baseline-2' for a second baseline
    env: EnvSpec | None = None  # its environment of its own (loadgen/envs.py); None: loadgen's
    pairs_with: str | None = None  # the label of the baseline its costs are paired with; None: it is a baseline

    @property
    def traced(self) -> bool:
        return traces(self.arm)


@dataclass(frozen=True)
class FleetPlan:
    """One provider's arms in one mode: the processes that take the blocks in turn."""

    provider: str
    arms: tuple[ArmPlan, ...]
    shards: int  # processes sharing one replica's schedule, each every K-th op_id
    replicas: int  # processes per shard taking the blocks in rotation
    blocks: tuple[Block, ...]  # the schedule's blocks (a soak: its time windows)
    together: bool  # a soak: every arm runs each window at once, not in turn
    # A fault scenario: its arms run at once, all off the harness's core, so that none shares the
    # mock's and the collector's core and the others do not.
    off_harness_core: bool = False
    threads: int | None = None  # the sync client's OS threads per worker (thread_count); None: async or raw
    threads_basis: str | None = None  # how that count was decided, in a sentence, for the report


@dataclass(frozen=True)
class ModePlan:
    """One load model's runs."""

    mode: str  # the row label
    profile: Profile  # the profile with `load` this mode's and no further modes
    pool_size: int
    fleets: tuple[FleetPlan, ...]

    @property
    def arms(self) -> list[ArmPlan]:
        return [arm for fleet in self.fleets for arm in fleet.arms]


@dataclass(frozen=True)
class WorkerSpec:
    """What one worker process is told: every decision made, nothing left to read off a profile.

    It crosses into the worker by pickle; the profile travels as the object it is (never
    dumped and validated again), for the schedule and the prompts.
    """

    profile: Profile  # the mode's profile
    mode: str
    arm: ArmPlan
    settings: ProviderSettings
    calibration: CalibrationSettings
    tracing: TracingSettings | None  # None: the arm exports no spans
    shard: int = 0  # this worker runs op_ids with op_id % shards == shard
    shards: int = 1
    replica: int = 0  # which of the arm's replica processes this is (they take blocks in rotation)
    worker: int = 0  # this worker's index among the arm's processes: replica × shards + shard
    cpu: int | None = None  # pin to this core when given
    python: str | None = None  # the interpreter of the arm's own environment; None: this one
    threads: int | None = None  # the sync client: OS threads in this worker's pool; None: async or raw

    @property
    def provider(self) -> str:
        return self.arm.provider

    @property
    def label(self) -> str:
        return self.arm.label


def mode_label(load: Load, client: str = "async", several_clients: bool = False) -> str:
    """The row label of a load model: 'rate 200/s constant', 'concurrency 8', 'sequential';
    ' stream' after it when the load model itself asks for streamed calls; then ' sync' for the
    sync client, and ' async' for the async one when the run has several clients (so the two
    rows of one arm are told apart in one table; a plain async run's labels stay as they were)."""
    if load.kind == "ramp":
        label = f"ramp {load.rate:g}->{load.rate_end:g}/s"
    elif load.kind in ("constant", "poisson"):
        label = f"rate {load.rate:g}/s {load.kind}"
    elif load.kind == "concurrency":
        label = f"concurrency {load.users}"
    else:
        label = "sequential"
    label += " stream" if load.stream else ""
    if client == "sync" or several_clients:
        label += f" {client}"
    return label


def mode_profiles(profile: Profile) -> list[Profile]:
    """One profile per load model and client: `load` first, then each of `modes` (with its own
    `stream`, if it says); with `clients`, all of that for each client in turn, each profile
    with its `client` set and no `clients`.

    Client-major (every load model with the first client, then with the next) so that each
    client's rows run together, one thread-pool set-up after another rather than interleaved,
    and the first client's part of the run is exactly the run without `clients`. Pairing is
    within a mode, so each client's arms pair with that client's baseline whatever the order.
    """
    if not profile.modes and profile.load.stream is None and profile.clients is None:
        return [profile]
    return [profile.model_copy(update={"load": load, "modes": [], "client": client, "clients": None,
                                       "stream": profile.stream if load.stream is None else load.stream})
            for client in profile.run_clients for load in (profile.load, *profile.modes)]


def arm_plans(profile: Profile, providers: tuple[str, ...] | None = None) -> list[ArmPlan]:
    """Every row the profile runs: each provider, each arm that runs on it, with its label,
    its environment and the baseline it is paired with."""
    entries = []
    for entry, label in zip(profile.tracing.arms, profile.tracing.arm_labels):
        name, at = parse_entry(entry)
        if name != "baseline":
            own_baseline = f"baseline@{entry}"
            entries.append((name, label, arm_env(profile, entry),
                            own_baseline if own_baseline in profile.tracing.arms else "baseline"))
        elif at is not None:
            entries.append((name, label, arm_env(profile, at), None))  # the pair of the arm in that environment
        else:
            # A second plain baseline is the first one's pair: baseline against baseline, an A/A run.
            entries.append((name, label, None, None if label == "baseline" else "baseline"))
    if profile.client == "raw":  # a tracer needs an SDK: only the plain baseline runs (the report's arms_left_out says so)
        entries = [entry for entry in entries if entry[1] == "baseline"]
    return [ArmPlan(provider, name, label, env, pairs_with) for provider in providers or profile.providers
            for name, label, env, pairs_with in entries if runs_on(name, provider, profile.stream)]


def arm_env(profile: Profile, entry: str) -> EnvSpec | None:
    """The environment an arm entry runs in: its own when it is at a version, names packages of its
    own, or cannot live in loadgen's (the registry's `own_env`); None: loadgen's environment."""
    name, version = parse_entry(entry)
    info = ARMS[name]
    packages = profile.tracing.packages.get(entry)
    if packages is None and version is None and not info.own_env:
        return None
    if packages is None:
        packages = [f"{info.distribution}=={version}" if version and _requirement_name(p) == info.distribution else p
                    for p in info.packages]
        if version and info.distribution not in map(_requirement_name, packages):
            packages.append(f"{info.distribution}=={version}")
    # The SDKs under test stay pinned unless the profile pairs this arm with a baseline of its own.
    return EnvSpec(entry, tuple(packages), pin_sdks=f"baseline@{entry}" not in profile.tracing.arms)


def _requirement_name(requirement: str) -> str:
    """'honeyhive>=1.7' → 'honeyhive' (PEP 508 names end where a bracket, marker or comparison begins)."""
    return re.split(r"[\s\[<>=!~;@]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def shard_count(profile: Profile, cores: int) -> int:
    """How many processes share one arm's schedule (each runs every K-th op_id)."""
    if isinstance(profile.workers, int):
        return profile.workers
    if profile.load.kind in OPEN_LOOP_KINDS:
        per_worker = AUTO_RATE_PER_RAW_WORKER if profile.client == "raw" else AUTO_RATE_PER_WORKER
        return max(1, min(cores, math.ceil(peak_rate(profile.load) / per_worker)))
    return 1


def replica_count(profile: Profile, arms: int) -> int:
    """Worker processes per arm taking its blocks in rotation (see the profile's `replicas`)."""
    if arms < 2 or profile.soak is not None:
        return 1
    if not profile.open_loop and profile.operations is None:
        return 1  # a closed loop bounded by time: its op_ids are not planned per block
    if profile.replicas == "auto":
        return max(MIN_REPLICAS, min(AUTO_REPLICAS, MAX_AUTO_PROCESSES // arms))
    return profile.replicas


def round_count(profile: Profile, arms: int, replicas: int) -> int:
    """How many blocks the schedule is cut into, so that arms alternate and drift cancels."""
    if isinstance(profile.rounds, int):
        return profile.rounds
    if arms < 2:
        return 1
    load = profile.load
    if profile.duration is not None:
        wanted = math.ceil(profile.duration / AUTO_BLOCK_S)
    elif load.kind in OPEN_LOOP_KINDS:
        wanted = math.ceil(profile.operations / peak_rate(load) / AUTO_BLOCK_S)
    else:
        wanted = math.ceil(profile.operations / AUTO_BLOCK_OPERATIONS)
    rounds = max(MIN_AUTO_ROUNDS, min(MAX_AUTO_ROUNDS, wanted))
    # A whole number of rotations of the arms' order, so each arm runs first, second, …
    # equally often: an effect of the order then cancels in every paired mean. And where
    # it fits, as many rotations for every replica pair (fleet.replica_for).
    cycle = arms * replicas
    step = cycle if cycle <= min(MAX_AUTO_ROUNDS, rounds * 3 // 2) else arms
    rounds = -(-rounds // step) * step
    if profile.operations is not None:
        rounds = min(rounds, profile.operations // 2)  # at least two operations a block
    return max(1, rounds)


def pool_size(profile: Profile, threads: int | None = None) -> int:
    """Connections for the load: what is in flight at 5 s per call, within [16, 1000]; with the
    sync client one per thread (`threads`), since a thread holds one connection at a time."""
    if profile.connections is not None:
        return profile.connections
    if threads is not None:
        return threads
    load = profile.load
    if load.kind == "concurrency":
        return max(1, min(load.users, 1000))
    if load.kind == "sequential":
        return 1
    return int(min(1000, max(16, peak_rate(load) * 5)))


def plan_fleet(profile: Profile, provider: str, arms: list[ArmPlan], cores: int) -> FleetPlan:
    """One provider's arms in one mode, with the processes and blocks they take (and with the sync
    client, the threads each process calls from)."""
    replicas = replica_count(profile, len(arms))
    shards = shard_count(profile, cores)
    soak = profile.soak is not None
    schedule = windows(profile, profile.soak.window) if soak else blocks(profile, round_count(profile, len(arms),
                                                                                             replicas))
    threads, basis = thread_count(profile, shards) if profile.client == "sync" else (None, None)
    return FleetPlan(provider, tuple(arms), shards, replicas, tuple(schedule), soak, threads=threads,
                     threads_basis=basis)


def plan_mode(profile: Profile, cores: int, arms: list[ArmPlan] | None = None, label: str | None = None) -> ModePlan:
    """One load model's fleets: every provider's arms (or just `arms`, as a sweep's step asks),
    under its row label (default: the load model's and its client's)."""
    arms = arm_plans(profile) if arms is None else arms
    fleets = [plan_fleet(profile, provider, [arm for arm in arms if arm.provider == provider], cores)
              for provider in dict.fromkeys(arm.provider for arm in arms)]
    threads = fleets[0].threads if fleets else None
    return ModePlan(label or mode_label(profile.load, profile.client), profile, pool_size(profile, threads),
                    tuple(fleets))


def plan_run(profile: Profile, cores: int) -> list[ModePlan]:
    """Every mode of a `loadgen run`, in order: each load model, for each client."""
    several = len(profile.run_clients) > 1
    return [plan_mode(mode, cores, label=mode_label(mode.load, mode.client, several))
            for mode in mode_profiles(profile)]


def thread_bases(modes: list[ModePlan]) -> dict[tuple[str, str], str]:
    """(provider, mode) → how its sync threads were counted, for the rows (empty for async runs)."""
    return {(fleet.provider, mode.mode): fleet.threads_basis for mode in modes for fleet in mode.fleets
            if fleet.threads_basis is not None}


def provider_base_url(provider: str, base_url: str | None) -> str | None:
    """The SDK base_url for a provider from one user-given URL.

    OpenAI's SDK expects the URL to include /v1; Anthropic's appends /v1/messages itself.
    So `http://host:8000/v1` serves both: openai gets it as is, anthropic without /v1.
    """
    if base_url is None:
        return None
    url = base_url.rstrip("/")
    if provider == "openai":
        return url if url.endswith("/v1") else url + "/v1"
    return url[: -len("/v1")] if url.endswith("/v1") else url


def provider_settings(profile: Profile, provider: str, base_url: str | None, api_key: str,
                      threads: int | None = None) -> ProviderSettings:
    """How a worker's adapter calls `provider`; `threads`: the sync client's, which size its pool."""
    return ProviderSettings(
        base_url=base_url,
        api_key=api_key,
        model=getattr(profile.models, provider),
        stream=profile.stream,
        timeout_s=profile.timeout,
        max_retries=profile.max_retries,
        pool_size=pool_size(profile, threads),
        transport=profile.http_transport,
        client=profile.client,
    )


def calibration_settings(profile: Profile) -> CalibrationSettings:
    known = profile.tracing
    return CalibrationSettings(hold_us=known.calibrate_us, kind=known.calibrate_kind, at=known.calibrate_at,
                               mib=known.calibrate_mib, leak_kib=known.calibrate_leak_kib)


def tracing_settings(profile: Profile, collector_url: str | None, run_id: str) -> TracingSettings:
    t = profile.tracing
    return TracingSettings(collector_url=collector_url, run_id=run_id, max_queue_size=t.max_queue_size,
                           schedule_delay_ms=t.schedule_delay_ms, max_export_batch_size=t.max_export_batch_size,
                           export_timeout_ms=t.export_timeout_ms)
