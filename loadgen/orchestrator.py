"""The orchestrator: starts the harness and the workers, shows progress, collects results.

It sends no load itself. The embedded mock LLM and collector run in harness processes of
their own (`loadgen.harness`); per provider, every arm's workers run as a fleet
(`loadgen.fleet`), taking the schedule's blocks in turn. With two or more cores the
harness and the workers are pinned to different cores so they do not steal each other's
time.
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from typing import Callable, Iterator, Protocol

from loadgen import envs
from loadgen.errors import ExitCode, UserError
from loadgen.fleet import Fleet, ProgressSink, RunOutcome
from loadgen.harness import check_reachable, collector_figures, embedded_collector, embedded_mock
from loadgen.plan import (ArmPlan, FleetPlan, ModePlan, WorkerSpec, calibration_settings, provider_base_url,
                          provider_settings, tracing_settings)
from loadgen.processes import Engine, LocalEngine, core_plan
from loadgen.profile import Profile
from loadgen.results import WorkerResult
from loadgen.settings import TracingSettings
from loadgen.span_names import LANGFUSE_OTLP_PATH

API_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
REAL_API_URL = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}
PLACEHOLDER_KEY = "loadgen-no-key"


def real_api_url(profile: Profile, provider: str) -> str:
    """Where target 'real' sends a provider's calls: a configured gateway, or the API itself."""
    return provider_base_url(provider, profile.target.base_url) or REAL_API_URL[provider]


def resolve_api_key(profile: Profile, provider: str) -> str:
    """The key from the environment; the real API needs one, a mock or URL target does not."""
    name = API_KEY_ENV[provider]
    key = os.environ.get(name, "")
    if profile.target.kind == "real" and not key:
        raise UserError(f"target 'real' needs {name} in the environment for provider {provider}", ExitCode.USAGE)
    return key or PLACEHOLDER_KEY


class HarnessWatch(Protocol):
    """Told what the harness needs to know while it is up (the fault matrix places its fault
    windows at a block's start and reads the servers' logs once a fleet is done)."""

    def block_started(self, urls: dict[str, str | None], start_at_ns: int) -> None: ...

    def fleet_done(self, urls: dict[str, str | None], results: list[WorkerResult]) -> None: ...


# A soak window from one worker: (provider, arm label, workers of that arm, figures, tracing settings).
WindowSink = Callable[[str, str, int, dict, TracingSettings | None], None]


def worker_cores() -> int:
    """How many cores the local workers may take (the run plan sizes shards by it)."""
    return LocalEngine().cores()


@contextmanager
def open_engine(profile: Profile) -> Iterator[Engine]:
    """The engine that hosts a run's workers ([scale] engine), for the whole run.

    'local': processes on this machine. 'ray': Ray actors, on a Ray this command starts
    (sized to this machine's cores) or on the cluster at scale.ray_address; what the
    command started, it shuts down. Ray is an optional extra, imported only here.
    """
    if profile.scale.engine == "local":
        yield LocalEngine()
        return
    try:
        from loadgen.ray_engine import RayEngine
    except ImportError as exc:
        if exc.name != "ray":
            raise
        raise UserError("--engine ray needs Ray, an optional extra: pip install 'loadgen[ray]'", ExitCode.USAGE) from None
    try:
        engine = RayEngine.connect(profile.scale.ray_address)
    except KeyboardInterrupt:
        raise UserError("interrupted while starting Ray; nothing was run", ExitCode.INTERRUPTED) from None
    try:
        yield engine
    finally:
        engine.shutdown()


class Orchestrator:
    """Runs one mode of the plan: the harness it needs, then each provider's fleet."""

    def __init__(self, plan: ModePlan, on_progress: ProgressSink | None = None,
                 on_window: WindowSink | None = None, engine: Engine | None = None,
                 watch: HarnessWatch | None = None) -> None:
        self.plan = plan
        self.engine = engine or LocalEngine()
        self.profile = plan.profile
        self.on_progress = on_progress or (lambda message: None)
        self.on_window = on_window
        self.collector_url: str | None = None
        self.mock_url: str | None = None
        self.watch = watch
        self.run_prefix = uuid.uuid4().hex[:12]  # run ids: {prefix}-{provider}-{label}

    def run(self) -> RunOutcome:
        profile = self.profile
        keys = {fleet.provider: resolve_api_key(profile, fleet.provider) for fleet in self.plan.fleets}
        worker_cpu, harness_cpu = core_plan()
        outcome = RunOutcome()
        try:
            self._run(keys, worker_cpu, harness_cpu, outcome)
        except KeyboardInterrupt:
            outcome.interrupted = True
        return outcome

    def _run(self, keys: dict[str, str], worker_cpu: list[int] | None, harness_cpu: int | None, outcome: RunOutcome) -> None:
        tracing = self.profile.tracing
        traced = any(arm.traced for arm in self.plan.arms)
        # Workers on other machines reach neither this machine's loopback nor an embedded server.
        shared = {"--base-url": "embedded mock" if self.profile.target.kind == "embedded" else self.profile.target.base_url}
        if traced:
            shared["--collector-url"] = tracing.collector_url or "embedded collector"
        self.engine.check_reachable_everywhere({flag: url for flag, url in shared.items() if url})
        if traced and not tracing.collector_url:
            with embedded_collector(self.profile, harness_cpu) as collector_url:
                outcome.collector = f"embedded collector at {collector_url}"
                self.collector_url = collector_url
                self._run_target(keys, worker_cpu, harness_cpu, outcome)
            return
        if traced:
            check_reachable(tracing.collector_url, what="collector")
            self.collector_url = tracing.collector_url
            outcome.collector = tracing.collector_url
        self._run_target(keys, worker_cpu, harness_cpu, outcome)

    def _run_target(self, keys: dict[str, str], worker_cpu: list[int] | None, harness_cpu: int | None,
                    outcome: RunOutcome) -> None:
        profile = self.profile
        if profile.target.kind == "embedded":
            with embedded_mock(profile, harness_cpu) as url:
                outcome.target = f"embedded mock at {url}"
                self.mock_url = url
                self._run_fleets(url, keys, worker_cpu, outcome)
        else:
            url = profile.target.base_url
            if profile.target.kind == "url":
                check_reachable(url)
                outcome.target = url
            else:
                for fleet in self.plan.fleets:
                    check_reachable(real_api_url(profile, fleet.provider))
                outcome.target = "real APIs" + (f" via {url}" if url else "")
            self._run_fleets(url, keys, worker_cpu, outcome)

    def _run_fleets(self, url: str | None, keys: dict[str, str], cpus: list[int] | None, outcome: RunOutcome) -> None:
        """Per provider, every arm's workers at once, taking the schedule's blocks in turn."""
        for fleet in self.plan.fleets:
            if outcome.interrupted:
                return
            groups = {arm.label: self._worker_specs(fleet, arm, index, url, keys[fleet.provider], cpus)
                      for index, arm in enumerate(fleet.arms)}
            results = Fleet(groups, self.profile.timeout, self.on_progress, self._window_sink(groups),
                            engine=self.engine, on_block_start=self._block_start_sink()
                            ).run(fleet.blocks, outcome, together=fleet.together)
            fleet_results = []
            for label, result in results.items():
                spec = groups[label][0]
                result.export_endpoint = export_endpoint(spec.arm.arm, spec.tracing)
                if spec.tracing is not None and spec.tracing.collector_url:
                    # After the workers' final flush every exported span has been ACKed,
                    # so the collector's count is complete.
                    result.collector = collector_figures(self.collector_url, spec.tracing.run_id)
                fleet_results.append(result)
            if self.watch is not None:
                self.watch.fleet_done(self._harness_urls(), fleet_results)
            outcome.results += fleet_results

    def _harness_urls(self) -> dict[str, str | None]:
        return {"mock": self.mock_url, "collector": self.collector_url}

    def _block_start_sink(self) -> Callable[[int], None] | None:
        if self.watch is None:
            return None
        watch = self.watch
        return lambda start_at: watch.block_started(self._harness_urls(), start_at)

    def _window_sink(self, groups: dict[str, list[WorkerSpec]]):
        """A soak window from one worker, passed on with its arm's provider, size and tracing settings."""
        if self.on_window is None:
            return None

        def on_window(label: str, worker: int, figures: dict) -> None:
            spec = groups[label][0]
            self.on_window(spec.provider, label, len(groups[label]), figures, spec.tracing)

        return on_window

    def _worker_specs(self, fleet: FleetPlan, arm: ArmPlan, index: int, url: str | None, api_key: str,
                      cpus: list[int] | None) -> list[WorkerSpec]:
        """Every process of one arm: replicas × shards, each told everything it needs."""
        profile = self.profile
        # Arms that take turns share the workers' cores; a soak's arms run at once,
        # so their workers are spread over the cores. A fault scenario's keep off the harness's.
        first_core = index * fleet.shards if fleet.together else 0
        if fleet.off_harness_core and cpus and len(cpus) > 1:
            cpus = cpus[:-1]  # core_plan: the harness takes the last core
        settings = provider_settings(profile, arm.provider, provider_base_url(arm.provider, url), api_key,
                                     fleet.threads)
        tracing = self._tracing(arm)
        calibration = calibration_settings(profile)
        python = str(envs.ensure(arm.env)) if arm.env is not None else None  # built already (run_command)
        return [
            WorkerSpec(profile=profile, mode=self.plan.mode, arm=arm, settings=settings, calibration=calibration,
                       tracing=tracing, shard=shard, shards=fleet.shards, replica=replica,
                       worker=replica * fleet.shards + shard,
                       cpu=cpus[(first_core + shard) % len(cpus)] if cpus else None, python=python,
                       threads=fleet.threads)
            for replica in range(fleet.replicas)
            for shard in range(fleet.shards)
        ]

    def _tracing(self, arm: ArmPlan) -> TracingSettings | None:
        if not arm.traced:
            return None
        # With the real APIs and an HH_API_KEY, the HoneyHive arm reports to HoneyHive
        # itself (its default server); its collector-side figures are then unmeasured.
        to_honeyhive = (arm.arm == "honeyhive" and self.profile.target.kind == "real"
                        and bool(os.environ.get("HH_API_KEY")))
        return tracing_settings(self.profile, None if to_honeyhive else self.collector_url,
                                f"{self.run_prefix}-{arm.provider}-{arm.label}")


HONEYHIVE_DEFAULT_URL = "https://api.dp1.us.honeyhive.ai"  # honeyhive 1.7's default; HH_API_URL overrides it


def export_endpoint(arm: str, tracing: TracingSettings | None) -> str | None:
    """Where an arm's exporter sends its spans (as `_tracing` decided), for the report; None: no spans."""
    if tracing is None:
        return None
    if tracing.collector_url is None:  # the HoneyHive arm reporting to HoneyHive itself
        url = os.environ.get("HH_API_URL") or HONEYHIVE_DEFAULT_URL
        return f"HoneyHive's server ({url.rstrip('/')}/opentelemetry/v1/traces)"
    path = {"honeyhive": "/opentelemetry/v1/traces", "langfuse": LANGFUSE_OTLP_PATH}.get(arm, "/v1/traces")
    return tracing.collector_url.rstrip("/") + path
