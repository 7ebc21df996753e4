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
from typing import Callable

from loadgen.errors import ExitCode, UserError
from loadgen.fleet import Fleet, ProgressSink, RunOutcome
from loadgen.harness import check_reachable, collector_figures, core_plan, embedded_collector, embedded_mock
from loadgen.profile import UNTRACED_ARMS, Profile
from loadgen.providers import provider_base_url
from loadgen.schedule import blocks, windows
from loadgen.worker import WorkerSpec

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


# A soak window from one worker: (provider, arm label, shards of that arm, figures, tracing settings).
WindowSink = Callable[[str, str, int, dict, dict | None], None]


class Orchestrator:
    def __init__(self, profile: Profile, on_progress: ProgressSink | None = None, extra: dict | None = None,
                 on_window: WindowSink | None = None) -> None:
        self.profile = profile
        self.on_progress = on_progress or (lambda message: None)
        self.on_window = on_window
        self.extra = extra or {}
        self.collector_url: str | None = None
        self.session_id = uuid.uuid4().hex[:12]

    def run(self) -> RunOutcome:
        profile = self.profile
        keys = {provider: resolve_api_key(profile, provider) for provider in profile.providers}
        worker_cpu, harness_cpu = core_plan()
        outcome = RunOutcome()
        try:
            self._run(keys, worker_cpu, harness_cpu, outcome)
        except KeyboardInterrupt:
            outcome.interrupted = True
        return outcome

    def _run(self, keys: dict[str, str], worker_cpu: list[int] | None, harness_cpu: int | None, outcome: RunOutcome) -> None:
        tracing = self.profile.tracing
        if tracing.traced and not tracing.collector_url:
            with embedded_collector(self.profile, harness_cpu) as collector_url:
                outcome.collector = f"embedded collector at {collector_url}"
                self.collector_url = collector_url
                self._run_target(keys, worker_cpu, harness_cpu, outcome)
            return
        if tracing.traced:
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
                self._run_providers(url, keys, worker_cpu, outcome)
        else:
            url = profile.target.base_url
            if profile.target.kind == "url":
                check_reachable(url)
                outcome.target = url
            else:
                for provider in profile.providers:
                    check_reachable(real_api_url(profile, provider))
                outcome.target = "real APIs" + (f" via {url}" if url else "")
            self._run_providers(url, keys, worker_cpu, outcome)

    def _run_providers(self, url: str | None, keys: dict[str, str], cpus: list[int] | None, outcome: RunOutcome) -> None:
        """Per provider, every arm's workers at once, taking the schedule's blocks in turn."""
        profile = self.profile
        shards = profile.worker_count(len(cpus) if cpus else (os.cpu_count() or 1))
        replicas = profile.replica_count()
        soak = profile.soak is not None
        plan = windows(profile, profile.soak.window) if soak else blocks(profile, profile.round_count())
        for provider in profile.providers:
            if outcome.interrupted:
                return
            groups: dict[str, list[WorkerSpec]] = {}
            for arm, label in zip(profile.tracing.arms, profile.tracing.arm_labels):
                if arm == "anthropic-native" and provider != "anthropic":
                    continue  # the anthropic SDK's own tracing traces Anthropic calls only
                # Arms that take turns share the workers' cores; a soak's arms run at once,
                # so their workers are spread over the cores.
                first_core = len(groups) * shards if soak else 0
                tracing = self._tracing(provider, arm, label)
                groups[label] = [
                    WorkerSpec(
                        profile=profile.model_dump(mode="json"),
                        provider=provider,
                        base_url=provider_base_url(provider, url),
                        api_key=keys[provider],
                        arm=arm,
                        label=label,
                        cpu=cpus[(first_core + shard) % len(cpus)] if cpus else None,
                        shard=shard,
                        shards=shards,
                        replica=replica,
                        worker=replica * shards + shard,
                        tracing=tracing,
                        extra=self.extra,
                    )
                    for replica in range(replicas)
                    for shard in range(shards)
                ]
            on_window = None
            if self.on_window is not None:
                def on_window(label: str, shard: int, figures: dict, provider: str = provider) -> None:
                    self.on_window(provider, label, len(groups[label]), figures, groups[label][0].tracing)
            results = Fleet(groups, profile.timeout, self.on_progress, on_window).run(plan, outcome, together=soak)
            for label, result in results.items():
                tracing = groups[label][0].tracing
                result.export_endpoint = export_endpoint(groups[label][0].arm, tracing)
                if tracing is not None and tracing["collector_url"]:
                    # After the workers' final flush every exported span has been ACKed,
                    # so the collector's count is complete.
                    result.collector = collector_figures(self.collector_url, tracing["run_id"])
                outcome.results.append(result)

    def _tracing(self, provider: str, arm: str, label: str) -> dict | None:
        if arm in UNTRACED_ARMS:
            return None
        t = self.profile.tracing
        # With the real APIs and an HH_API_KEY, the HoneyHive arm reports to HoneyHive
        # itself (its default server); its collector-side figures are then unmeasured.
        to_honeyhive = arm == "honeyhive" and self.profile.target.kind == "real" and bool(os.environ.get("HH_API_KEY"))
        return {
            "collector_url": None if to_honeyhive else self.collector_url,
            "run_id": f"{self.session_id}-{provider}-{label}",
            "max_queue_size": t.max_queue_size,
            "schedule_delay_ms": t.schedule_delay_ms,
            "max_export_batch_size": t.max_export_batch_size,
            "export_timeout_ms": t.export_timeout_ms,
        }


HONEYHIVE_DEFAULT_URL = "https://api.dp1.us.honeyhive.ai"  # honeyhive 1.7's default; HH_API_URL overrides it


def export_endpoint(arm: str, tracing: dict | None) -> str | None:
    """Where an arm's exporter sends its spans (as `_tracing` decided), for the report; None: no spans."""
    if tracing is None:
        return None
    if tracing["collector_url"] is None:  # the HoneyHive arm reporting to HoneyHive itself
        url = os.environ.get("HH_API_URL") or HONEYHIVE_DEFAULT_URL
        return f"HoneyHive's server ({url.rstrip('/')}/opentelemetry/v1/traces)"
    path = "/opentelemetry/v1/traces" if arm == "honeyhive" else "/v1/traces"
    return tracing["collector_url"].rstrip("/") + path
