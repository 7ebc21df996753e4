"""Checks before load: `--validate-only` (no calls) and `--test-connections` (one call each).

`--validate-only` checks what a run needs without sending a single LLM call: the API keys
the target needs, that the target and the collector accept connections (the embedded ones
are started and asked for /healthz), and that every arm's packages import.

`--test-connections` runs one operation per provider and arm, sequentially, with no
warm-up: one real call per provider and target and, for each tracing arm, one export
that the collector must have received.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import urllib.request
from dataclasses import dataclass

from rich.console import Console

from loadgen import envs
from loadgen.arms import ARMS, parse_entry
from loadgen.errors import ExitCode, UserError
from loadgen.harness import check_reachable, embedded_collector, embedded_mock
from loadgen.orchestrator import Orchestrator, real_api_url, resolve_api_key, worker_cores
from loadgen.plan import arm_env, mode_label, mode_profiles, plan_mode, shard_count
from loadgen.sync_threads import thread_count
from loadgen.profile import Profile, SequentialLoad


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    code: ExitCode = ExitCode.OK


def _healthy(url: str) -> None:
    with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
        json.loads(response.read())


def _check(name: str, action, code: ExitCode = ExitCode.UNREACHABLE) -> Check:
    try:
        detail = action() or "ok"
        return Check(name, True, detail)
    except UserError as exc:
        return Check(name, False, str(exc), exc.code)
    except Exception as exc:  # any failure is the check's answer, not a crash
        return Check(name, False, f"{type(exc).__name__}: {exc}", code)


def validation_checks(profile: Profile) -> list[Check]:
    modes = mode_profiles(profile)
    several = len(profile.run_clients) > 1
    labels = ", ".join(mode_label(mode.load, mode.client, several) for mode in modes)
    checks = [Check("profile", True, f"{profile.name}: {', '.join(profile.providers)} · {labels}")]
    for mode in modes:
        if mode.client == "sync":  # the plan's decision, said before any load (as the run says it)
            checks.append(Check(f"threads · {mode_label(mode.load, mode.client, several)}", True,
                                thread_count(mode, shard_count(mode, worker_cores()))[1]))

    def key_check(provider: str) -> str:
        resolve_api_key(profile, provider)  # raises UserError when the target needs a key it lacks
        return "present or not needed"

    for provider in profile.providers:
        checks.append(_check(f"{provider} API key", lambda p=provider: key_check(p), ExitCode.USAGE))
    kind = profile.target.kind
    if kind == "embedded":
        def start_mock() -> str:
            with embedded_mock(profile) as url:
                _healthy(url)
            return "embedded mock LLM started and answered /healthz"
        checks.append(_check("target", start_mock, ExitCode.FAILURE))
    elif kind == "url":
        checks.append(_check("target", lambda: check_reachable(profile.target.base_url) or profile.target.base_url))
    else:
        for provider in profile.providers:
            checks.append(_check(f"{provider} real API",
                                 lambda p=provider: check_reachable(real_api_url(profile, p)) or real_api_url(profile, p)))
    tracing = profile.tracing
    if tracing.traced and tracing.collector_url:
        checks.append(_check("collector", lambda: check_reachable(tracing.collector_url, what="collector")
                             or tracing.collector_url))
    elif tracing.traced:
        def start_collector() -> str:
            with embedded_collector(profile) as url:
                _healthy(url)
            return "embedded collector started and answered /healthz"
        checks.append(_check("collector", start_collector, ExitCode.FAILURE))
    for entry in tracing.arms:
        checks.append(_check(f"arm {entry}", lambda entry=entry: _arm_imports(profile, entry), ExitCode.USAGE))
    return checks


def _arm_imports(profile: Profile, entry: str) -> str:
    """The arm's modules import where its workers will run: here, or in its own environment (built if need be)."""
    name, at = parse_entry(entry)
    if name == "baseline":
        env = arm_env(profile, at) if at else None  # baseline@<arm> runs in that arm's environment
    else:
        env = arm_env(profile, entry)
    modules = ARMS[name].imports
    if env is None:
        for module in modules:
            importlib.import_module(module)
        return "packages import"
    python = envs.ensure(env)
    done = subprocess.run([str(python), "-c", "".join(f"import {module}\n" for module in modules)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise UserError(f"in its environment ({python.parent.parent}): {done.stderr.strip().splitlines()[-1]}",
                        ExitCode.USAGE)
    return f"packages import in its own environment ({python.parent.parent})"


def connection_checks(profile: Profile) -> list[Check]:
    """One sequential operation per provider and arm; tracing arms must have their spans received."""
    one = profile.model_copy(update={
        "load": SequentialLoad(kind="sequential"), "modes": [], "operations": 1, "duration": None,
        "warmup_operations": 0, "workers": 1, "replicas": 1,
        "tracing": profile.tracing.model_copy(update={"schedule_delay_ms": 50}),
    })
    outcome = Orchestrator(plan_mode(one, worker_cores())).run()
    checks = [Check("run", False, error, ExitCode.FAILURE) for error in outcome.errors]
    for result in outcome.results:
        name = f"{result.provider}/{result.arm}"
        if result.errors:
            example = next(iter(result.error_examples.values()), "")
            checks.append(Check(name, False, f"call failed: {', '.join(result.errors)} {example}", ExitCode.UNREACHABLE))
            continue
        spans, collector = result.spans, result.collector
        if spans is None:
            checks.append(Check(name, True, "call ok"))
        elif collector is None:
            checks.append(Check(name, spans["exported"] == spans["ended"] > 0,
                                f"call ok; {spans['exported']} of {spans['ended']} spans exported (receiver cannot report)",
                                ExitCode.UNREACHABLE))
        else:
            received = collector["spans_received"]
            checks.append(Check(name, received == spans["ended"] > 0,
                                f"call ok; {received} of {spans['ended']} spans received by the collector",
                                ExitCode.UNREACHABLE))
    return checks


def report(checks: list[Check], out: Console) -> int:
    for check in checks:
        mark = "[green]ok[/]  " if check.ok else "[bold red]FAIL[/]"
        out.print(f"{mark} {check.name}: {check.detail}", highlight=False, soft_wrap=True)
    failed = [check for check in checks if not check.ok]
    return int(failed[0].code or ExitCode.FAILURE) if failed else int(ExitCode.OK)
