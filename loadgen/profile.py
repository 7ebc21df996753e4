"""The run profile: a strict pydantic model, loaded from TOML and overridden by CLI flags.

A profile says everything a run needs — which providers and models, where calls go,
the load model (arrival process and how long), and the shape of each request. Unknown
keys are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from loadgen.arms import ARM_NAMES, check_entry, is_baseline, parse_entry, providers_sentence, runs_on, traces
from loadgen.collector.config import CollectorConfig
from loadgen.limits import StrictModel, Thresholds, Validity
from loadgen.mock_llm.config import MockConfig
from loadgen.profile_runs import Duration, Faults, Gate, Seconds, Soak, Sweep

PROVIDERS = ("openai", "anthropic")


class ProfileError(Exception):
    """A profile that cannot be used; the message names the file and the key."""


_Strict = StrictModel




class _Load(_Strict):
    """What every load model may say besides its arrival process."""

    stream: bool | None = Field(
        default=None, description="this load model's calls stream their responses (default: the profile's `stream`); "
                                  "a profile's modes can so measure streaming and not in one run")


class ConstantLoad(_Load):
    """Open loop: one call every 1/rate seconds."""

    kind: Literal["constant"] = "constant"
    rate: float = Field(gt=0, description="calls per second")


class PoissonLoad(_Load):
    """Open loop: exponential inter-arrival times with mean 1/rate (seeded)."""

    kind: Literal["poisson"]
    rate: float = Field(gt=0, description="mean calls per second")


class RampLoad(_Load):
    """Open loop: the rate rises (or falls) linearly from rate to rate_end over the run."""

    kind: Literal["ramp"]
    rate: float = Field(gt=0, description="calls per second at the start")
    rate_end: float = Field(gt=0, description="calls per second at the end")


class ConcurrencyLoad(_Load):
    """Closed loop: N virtual users, each starting its next call when its last one ends."""

    kind: Literal["concurrency"]
    users: int = Field(ge=1, le=100_000)


class SequentialLoad(_Load):
    """Closed loop with one user: one call at a time."""

    kind: Literal["sequential"]


Load = Annotated[
    Union[ConstantLoad, PoissonLoad, RampLoad, ConcurrencyLoad, SequentialLoad],
    Field(discriminator="kind"),
]

OPEN_LOOP_KINDS = ("constant", "poisson", "ramp")


def peak_rate(load: Load) -> float:
    """An open-loop load model's highest rate (a ramp's larger end)."""
    return max(load.rate, getattr(load, "rate_end", 0.0))


class Models(_Strict):
    openai: str = "gpt-4o-mini"
    anthropic: str = "claude-3-5-haiku-latest"


class Target(_Strict):
    """Where calls go: the embedded mock (default), any compatible base URL, or the real API."""

    kind: Literal["embedded", "url", "real"] = "embedded"
    base_url: str | None = Field(
        default=None,
        description="for kind='url': the SDK's base_url (for openai it includes /v1); for kind='real', "
                    "a gateway in front of the real APIs (default: the APIs' own URLs)",
    )
    confirm_above_calls: int = Field(
        default=1000, ge=0, description="kind='real': a run planning more calls than this needs --yes"
    )
    confirm_above_tokens: int = Field(
        default=1_000_000, ge=0, description="kind='real': a run planning more tokens (estimated) than this needs --yes"
    )

    @model_validator(mode="after")
    def _url_needs_base_url(self) -> "Target":
        if self.kind == "url" and not self.base_url:
            raise ValueError("target.kind = 'url' needs target.base_url")
        if self.base_url and not re.match(r"^https?://", self.base_url):
            raise ValueError(f"target.base_url {self.base_url!r} must start with http:// or https://")
        return self


def _arm_entry(entry: str) -> str:
    check_entry(entry)
    return entry


# An arm by the registry's name (loadgen.arms), at a version in an environment of its own
# (`honeyhive@1.6.0`), or a baseline in another entry's environment (`baseline@openlit`).
ArmEntry = Annotated[str, Field(pattern=r"^[a-z][a-z-]*(@\S+)?$",
                                description=f"an arm ({', '.join(ARM_NAMES)}), name@version, or baseline@<arm>"),
                     AfterValidator(_arm_entry)]


class Tracing(_Strict):
    """Which tracer arms run, where their spans go, and the batch processor's settings."""

    arms: list[ArmEntry] = Field(default_factory=lambda: ["baseline"], min_length=1)
    packages: dict[str, list[str]] = Field(
        default_factory=dict,
        description="an arm's own requirements (arm → pip requirements), installed in an environment of its own "
                    "instead of the registry's",
    )
    collector_url: str | None = Field(
        default=None, description="external OTLP/HTTP receiver (spans go to URL/v1/traces); default: the embedded collector"
    )
    max_queue_size: int = Field(default=2048, ge=1)
    schedule_delay_ms: int = Field(default=5000, ge=1)
    max_export_batch_size: int = Field(default=512, ge=1)
    export_timeout_ms: int = Field(default=30000, ge=1)
    calibrate_us: int = Field(default=0, ge=0, le=1_000_000,
                              description="calibration arm: µs the event loop is held per call")
    calibrate_kind: Literal["spin", "sleep"] = Field(
        default="spin", description="calibration arm: hold the loop busy-waiting (spin, CPU) or in time.sleep (sleep, no CPU)"
    )
    calibrate_at: Literal["before", "after"] = Field(
        default="before",
        description="calibration arm: hold the loop before the provider call (client time before the wire) "
                    "or after it returns (client time after the response)",
    )
    calibrate_mib: int = Field(default=0, ge=0, le=16_384, description="calibration arm: MiB held for the run")
    calibrate_leak_kib: float = Field(
        default=0, ge=0, le=1024, description="calibration arm: KiB more held after every call (a known leak)"
    )

    @model_validator(mode="after")
    def _batch_fits_queue(self) -> "Tracing":
        # The batch processor refuses a batch larger than its queue; a smaller queue
        # (say 64, to find where drops begin) takes the batch size down with it.
        if self.max_export_batch_size > self.max_queue_size:
            object.__setattr__(self, "max_export_batch_size", self.max_queue_size)
        # The baseline may run twice (baseline against baseline: an overhead CI that must
        # contain 0); any other arm twice is a mistake.
        repeated = {arm for arm in self.arms if self.arms.count(arm) > 1}
        if repeated - {"baseline"} or self.arms.count("baseline") > 2:
            raise ValueError(f"tracing.arms lists {', '.join(sorted(repeated))} twice (only baseline may repeat, once)")
        if self.collector_url and not re.match(r"^https?://", self.collector_url):
            raise ValueError(f"tracing.collector_url {self.collector_url!r} must start with http:// or https://")
        for entry in self.arms:
            name, at = parse_entry(entry)
            if name == "baseline" and at is not None and (at not in self.arms or parse_entry(at)[0] == "baseline"):
                raise ValueError(f"tracing.arms: {entry!r} names the environment of {at!r}, which is not a tracing "
                                 f"arm in tracing.arms")
        for entry in self.packages:
            if entry not in self.arms or is_baseline(entry):
                raise ValueError(f"tracing.packages.{entry}: not a tracing arm in tracing.arms")
        return self

    @property
    def arm_labels(self) -> list[str]:
        """The row label of each arm: its name, and 'baseline-2' for a second baseline."""
        labels: list[str] = []
        for arm in self.arms:
            labels.append(arm if arm not in labels else f"{arm}-2")
        return labels

    @property
    def traced(self) -> bool:
        """Whether any arm exports spans (and so needs a collector)."""
        return any(traces(parse_entry(arm)[0]) for arm in self.arms)


class Scale(_Strict):
    """Where the workers run: processes on this machine, or Ray actors on a Ray cluster (README, "Local or Ray")."""

    engine: Literal["local", "ray"] = Field(
        default="local", description="'local': worker processes on this machine; 'ray': each worker shard a Ray "
                                     "actor holding one CPU (pip install 'loadgen[ray]')")
    ray_address: str | None = Field(
        default=None, description="engine 'ray': the cluster to join ('auto', or the head's address, e.g. "
                                  "10.0.0.5:6379); default: start a local Ray sized to this machine's cores")

    @model_validator(mode="after")
    def _address_needs_ray(self) -> "Scale":
        if self.ray_address is not None and self.engine != "ray":
            raise ValueError("scale.ray_address is for engine = 'ray'")
        return self


class Outputs(_Strict):
    """Where results go when the command line does not say."""

    results_json: str | None = Field(
        default=None, alias="json", description="the results document (as --export-json); key: json"
    )
    html: str | None = Field(default=None, description="the self-contained HTML report (as --html)")
    plots: str | None = Field(default=None, description="a folder for the charts as PNG files (as --plots)")
    csv: str | None = Field(default=None, description="a folder for one CSV file per table (as --csv)")
    north_star_order: Literal["arms", "overhead"] = Field(
        default="arms", description="the printed north-star table's rows: in the order of the arms, or each "
                                    "provider and mode's tracer arms by latency overhead, lowest first"
    )
    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)


# The settings that are 'auto' or a count, and the highest count each takes.
_COUNT_LIMITS = {"workers": 64, "rounds": 1000, "replicas": 8, "threads": 1024}
MAX_THREADS = _COUNT_LIMITS["threads"]


class Profile(_Strict):
    """One run: providers × load model × request shape, against one target."""

    name: str = "unnamed"
    description: str = ""
    seed: int = 42
    provider: Literal["openai", "anthropic", "both"] = "both"
    models: Models = Models()
    target: Target = Target()
    load: Load = ConstantLoad(rate=10)
    modes: list[Load] = Field(
        default_factory=list,
        description="further load models, run one after another after `load`, each with rows of its own",
    )
    duration: Duration | None = Field(default=None, description="how long the measured phase lasts (e.g. '30s')")
    operations: int | None = Field(default=None, ge=1, description="how many measured operations")
    warmup_operations: int = Field(default=0, ge=0, description="operations run before counting starts")
    stream: bool = False
    span_size_mode: Literal["small", "medium", "large", "mixed"] = "small"
    conversation_share: float = Field(
        default=0.25, ge=0, le=1, description="share of operations that are later turns of a conversation"
    )
    max_turns: int = Field(default=6, ge=2, le=50, description="longest simulated conversation, in user turns")
    timeout: Seconds = Field(default=60.0, description="per-call deadline, seconds")
    max_tokens: int | None = Field(default=None, ge=1, description="cap on the requested output tokens")
    max_retries: int = Field(default=0, ge=0, le=10, description="SDK retries per call (attempts are counted)")
    max_in_flight: int = Field(default=10_000, ge=1, description="calls in flight beyond this are shed and counted")
    connections: int | None = Field(default=None, ge=1, description="HTTP connection pool size (default: sized for the load)")
    workers: int | Literal["auto"] = Field(
        default="auto",
        description="worker processes per provider/arm; 'auto': one per 100 calls/s of open-loop rate (5,000 with client 'raw'), up to one per core",
    )
    rounds: int | Literal["auto"] = Field(
        default="auto",
        description="blocks of the schedule the arms take in turn (A B A B …); the overhead CI is taken over "
                    "blocks. 'auto': one per ~2.5 s of schedule (or 25 closed-loop operations), 8 to 24 (fewer "
                    "only when there are fewer operations), and 1 when only one arm runs",
    )
    replicas: int | Literal["auto"] = Field(
        default="auto",
        description="worker processes per arm that take its blocks in rotation, replica i of every arm paired "
                    "with replica i of the baseline, so the overhead CI carries the difference between processes; "
                    "'auto': 4, or fewer with many arms (at most 24 per provider, at least 2); always 1 when only "
                    "one arm runs, in a soak, and in a closed loop bounded by time (its op_ids are not planned per "
                    "block)",
    )
    client: Literal["async", "sync", "raw"] = Field(
        default="async",
        description="'async': the SDKs' async clients (AsyncOpenAI, AsyncAnthropic), which tracers instrument; "
                    "'sync': the SDKs' sync clients (OpenAI, Anthropic), as most applications call them, each call "
                    "made in one of a pool of OS threads (see `threads`), which tracers instrument apart from the "
                    "async ones; 'raw': the same request bytes at wire speed on loadgen's own HTTP/1.1 client, for "
                    "load beyond what an SDK allows (only the baseline runs: a tracer needs an SDK)",
    )
    clients: list[Literal["async", "sync"]] | None = Field(
        default=None, min_length=1, description="run every load model once per client, in this order, each with rows "
        "of its own (the mode label says the client) and each client's tracer arms paired with that client's "
        "baseline; given, it overrides `client`")
    threads: int | Literal["auto"] = Field(
        default="auto",
        description="client 'sync' in an open loop: OS threads per worker making the calls (1 to 1024); 'auto': "
                    "the worker's peak rate × the expected call latency (the embedded mock's, or 1 s assumed for "
                    "a real target) + 5 s for a stall, at least 4, at most max_in_flight. A closed loop runs one thread per user "
                    "(this is ignored there), a sequential run one",
    )
    http_transport: Literal["lean", "httpx"] = Field(
        default="lean", description="'lean': loadgen's O(1) keep-alive pool; 'httpx': httpx2's default pool"
    )
    mock: MockConfig = MockConfig()
    tracing: Tracing = Tracing()
    collector: CollectorConfig = CollectorConfig()
    soak: Soak | None = Field(default=None, description="run as a soak: time windows, leak verdict")
    sweep: Sweep | None = Field(default=None, description="run as a rate sweep per arm")
    faults: Faults | None = Field(default=None, description="the fault matrix's scenarios (loadgen faults)")
    gate: Gate | None = Field(default=None, description="loadgen compare's gate when this run is the new side")
    outputs: Outputs = Outputs()
    scale: Scale = Scale()
    thresholds: Thresholds = Thresholds()
    validity: Validity = Validity()

    @field_validator("workers", "rounds", "replicas", "threads")
    @classmethod
    def _auto_or_a_count(cls, value: Any, info) -> Any:
        high = _COUNT_LIMITS[info.field_name]
        if isinstance(value, int) and not 1 <= value <= high:
            raise ValueError(f"{info.field_name} is 'auto' or a number from 1 to {high}")
        return value

    @model_validator(mode="after")
    def _something_to_run(self) -> "Profile":
        names = [parse_entry(entry)[0] for entry in self.tracing.arms]
        if not any(runs_on(arm, provider) for arm in names for provider in self.providers):
            arm = names[0]
            raise ValueError(f"tracing.arms: the {arm} arm traces {providers_sentence(arm)}; "
                             f"with provider {self.provider!r} there is nothing to run")
        return self

    @model_validator(mode="after")
    def _raw_runs_a_baseline(self) -> "Profile":
        if self.client == "raw" and not any(entry == "baseline" for entry in self.tracing.arms):
            raise ValueError("client 'raw': only the baseline runs (a tracer needs an SDK), and tracing.arms "
                             "names no plain baseline; add 'baseline'")
        return self

    @model_validator(mode="after")
    def _clients(self) -> "Profile":
        if self.clients is None:
            return self
        if self.client == "raw":
            raise ValueError("clients runs the SDK clients named there; client = 'raw' cannot go with it: remove one")
        repeated = sorted({client for client in self.clients if self.clients.count(client) > 1})
        if repeated:
            raise ValueError(f"clients lists {', '.join(repeated)} twice")
        # The first client stands for the list wherever one client is read off the whole profile
        # (a sweep, the worker count); plan.mode_profiles runs each in turn.
        object.__setattr__(self, "client", self.clients[0])
        return self

    @model_validator(mode="after")
    def _a_thread_per_user(self) -> "Profile":  # the sync client's closed loop
        users = max((load.users for load in (self.load, *self.modes) if load.kind == "concurrency"), default=0)
        if "sync" in self.run_clients and users > MAX_THREADS:
            raise ValueError(f"client 'sync' runs a closed loop's users as OS threads, one each: {users} users is "
                             f"more than {MAX_THREADS}")
        return self

    @model_validator(mode="after")
    def _one_kind_of_run(self) -> "Profile":
        if self.soak is not None and self.sweep is not None:
            raise ValueError("a profile is a soak or a sweep, not both")
        if self.soak is not None and self.scale.engine == "ray":
            raise ValueError("a soak runs every arm at once; scale.engine = 'ray' runs them in turn: use engine 'local'")
        if self.faults is not None and (self.soak is not None or self.sweep is not None):
            raise ValueError("a fault matrix is not a soak or a sweep: give [faults] alone")
        two_delays = 2 * self.tracing.schedule_delay_ms / 1000
        for phase in ("before", "after"):
            if self.faults is not None and getattr(self.faults, phase) < two_delays:
                raise ValueError(f"faults.{phase} ({getattr(self.faults, phase):g} s) is shorter than two schedule "
                                 f"delays ({two_delays:g} s): the batch processors must export at least twice in it")
        if self.sweep is not None and not self.open_loop:
            raise ValueError("sweep: a sweep steps an open-loop rate; load.kind must be constant, poisson or ramp")
        return self

    @model_validator(mode="after")
    def _length(self) -> "Profile":
        if self.duration is not None and self.operations is not None:
            raise ValueError("give either duration or operations, not both")
        if self.duration is None and self.operations is None:
            self.duration = 10.0
        return self

    @property
    def providers(self) -> tuple[str, ...]:
        return PROVIDERS if self.provider == "both" else (self.provider,)

    @property
    def run_clients(self) -> tuple[str, ...]:
        """The clients the run's modes use, in order: `clients`, or `client` alone."""
        return tuple(self.clients) if self.clients else (self.client,)

    @property
    def open_loop(self) -> bool:
        return self.load.kind in OPEN_LOOP_KINDS
