"""Arm environments: one virtual environment per distinct set of packages, built with uv, cached.

Tracers cannot all share one environment (their requirements conflict), and two versions
of one tracer never can. So an arm that needs packages of its own — a registry arm marked
`own_env`, any arm at a version (`honeyhive@1.6.0`), or one given `tracing.packages` —
runs its workers with the interpreter of an environment built for exactly its packages:

    ~/.cache/loadgen/envs/<hash>/    (LOADGEN_ENV_CACHE moves it)

built once by `uv` (`uv pip compile` to resolve, then `uv pip install`), reused while the
set is unchanged, and marked ready only when complete (a build is made beside it and moved
into place). loadgen itself is not installed there: a `.pth` file puts this checkout's
source on the path, so the environment runs the same code as the command. The comparison
stays fair: the SDKs under test (openai, anthropic, httpx2) are pinned to this
environment's versions, and so is pydantic, whose objects cross into the worker. A tracer
that cannot run with those pins is refused with the resolver's reason, unless the profile
asks for `baseline@<arm>`: then the environment resolves the SDKs freely and that arm is
paired with a baseline that runs in the same environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable

from loadgen.errors import ExitCode, UserError

SDKS_UNDER_TEST = ("openai", "anthropic", "httpx2")
# Pinned too: pydantic's objects (the profile) cross the process boundary pickled.
PINNED_WITH_LOADGEN = ("pydantic", "pydantic-core")
# What a worker imports beyond the SDKs and the tracer, at the versions the tracer allows: the
# tracer's own requirements choose OpenTelemetry's (loadgen's accounting uses the SDK's public
# processor API), and HDR histograms cross as their standard encoding, which any version reads.
WORKER_REQUIREMENTS = ("hdrhistogram", "psutil", "uvicorn[standard]", "starlette", "click", "opentelemetry-sdk", "opentelemetry-proto",
                       "opentelemetry-exporter-otlp-proto-http")
READY = "loadgen-env.json"  # written last: an environment without it is not used

Say = Callable[[str], None]


@dataclass(frozen=True)
class EnvSpec:
    """The packages of one arm's environment, and whether the SDKs under test are pinned in it."""

    arm: str  # the entry it was made for ('honeyhive@1.6.0'), for messages
    packages: tuple[str, ...]
    pin_sdks: bool = True

    def requirements(self) -> list[str]:
        pinned = SDKS_UNDER_TEST if self.pin_sdks else ()
        return ([f"{name}=={metadata.version(name)}" for name in (*pinned, *PINNED_WITH_LOADGEN)]
                + ([] if self.pin_sdks else list(SDKS_UNDER_TEST)) + list(WORKER_REQUIREMENTS) + list(self.packages))

    def key(self) -> str:
        """The cache key: the requirements, this Python, and the source this environment points to."""
        parts = {"requirements": sorted(self.requirements()), "python": sys.version, "source": str(source_root())}
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def cache_dir() -> Path:
    return Path(os.environ.get("LOADGEN_ENV_CACHE") or Path.home() / ".cache" / "loadgen" / "envs")


def source_root() -> Path:
    """The directory that holds this loadgen package (a checkout's root)."""
    return Path(__file__).resolve().parent.parent


def uv() -> str:
    from uv import find_uv_bin  # the `uv` dependency ships the binary

    return find_uv_bin()


def python_of(env: Path) -> Path:
    return env / "bin" / "python"


def ensure(spec: EnvSpec, say: Say = lambda line: None) -> Path:
    """The interpreter of `spec`'s environment, built first if the cache has none."""
    env = cache_dir() / spec.key()
    if (env / READY).exists():
        return python_of(env)
    started = time.monotonic()
    say(f"environment for {spec.arm}: resolving {len(spec.packages)} package(s) with the SDKs "
        f"{'pinned' if spec.pin_sdks else 'of its own'} …")
    pinned_lock = _resolve(spec)
    build = env.with_name(env.name + f".building-{os.getpid()}")
    shutil.rmtree(build, ignore_errors=True)
    build.parent.mkdir(parents=True, exist_ok=True)
    try:
        _run([uv(), "venv", "--quiet", "--python", sys.executable, str(build)], spec, "create the environment")
        say(f"environment for {spec.arm}: installing {len(pinned_lock)} packages …")
        lock = build / "requirements.lock"
        lock.write_text("\n".join(pinned_lock) + "\n")
        _run([uv(), "pip", "install", "--quiet", "--python", str(python_of(build)), "-r", str(lock)], spec, "install")
        site = Path(subprocess.run([str(python_of(build)), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip())
        (site / "loadgen-source.pth").write_text(f"{source_root()}\n")
        (build / READY).write_text(json.dumps({"arm": spec.arm, "requirements": spec.requirements(),
                                               "resolved": pinned_lock}, indent=1))
        if env.exists():
            shutil.rmtree(env)  # a build that another run left unfinished
        build.rename(env)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    say(f"environment for {spec.arm}: ready in {time.monotonic() - started:.0f} s ({env})")
    return python_of(env)


def ensure_all(specs, say: Say = lambda line: None) -> None:
    """Every environment a run needs, built (or found) before the first call: a set that cannot
    resolve stops the run here, with exit 2, before any server starts."""
    for spec in {spec.key(): spec for spec in specs if spec is not None}.values():
        ensure(spec, say)


def _resolve(spec: EnvSpec) -> list[str]:
    """The pinned requirement lines of the environment, or a UserError saying why there are none."""
    done = _compile(spec.requirements())
    if done.returncode == 0:
        return [line for line in done.stdout.splitlines() if line and not line.startswith(("#", " "))]
    reason = resolver_reason(done.stderr)
    if spec.pin_sdks and _compile(EnvSpec(spec.arm, spec.packages, pin_sdks=False).requirements()).returncode == 0:
        pins = ", ".join(f"{name}=={metadata.version(name)}" for name in SDKS_UNDER_TEST)
        raise UserError(f"arm {spec.arm}: its packages conflict with the SDKs under test ({pins}): {reason}; "
                        f"add baseline@{spec.arm} to tracing.arms to pair it with a baseline in its own environment",
                        ExitCode.USAGE)
    raise UserError(f"arm {spec.arm}: its packages cannot be installed: {reason}", ExitCode.USAGE)


def _compile(requirements: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([uv(), "pip", "compile", "--quiet", "--no-header", "--python-version",
                           sysconfig.get_python_version(), "-"], input="\n".join(requirements) + "\n",
                          capture_output=True, text=True)


def _run(command: list[str], spec: EnvSpec, what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise UserError(f"arm {spec.arm}: could not {what}: {resolver_reason(done.stderr)}", ExitCode.USAGE)


def resolver_reason(stderr: str) -> str:
    """uv's own reason, in one line: the lines after its 'No solution found' (or its last lines), joined."""
    lines = [line.strip(" ×╰─▶│") .strip() for line in stderr.splitlines()]
    lines = [line for line in lines if line and not line.startswith("hint:")]
    if any("No solution found" in line for line in lines):
        lines = lines[next(i for i, line in enumerate(lines) if "No solution found" in line) + 1:]
    text = " ".join(lines[:4]).removeprefix("cause:").strip().rstrip(".") or "uv failed without a message"
    return text if len(text) <= 400 else text[:397] + "…"
