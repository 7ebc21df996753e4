"""`--test-determinism`: a profile's own schedule and prompts, hashed in fresh processes.

For each load model of the profile (`load`, then each of `modes`) this hashes what a run
of that model would use: the schedule (open loop: the intended offsets of the warm-up and
the measured phase, from the model's rate, arrival kind and seed; closed loop: what
stands in for offsets — users and the operation or time budget) and both providers'
request bodies, built by `profile_prompt` with every prompt setting the runner uses.
Two freshly spawned interpreters, each with its own PYTHONHASHSEED, receive the profile
as JSON and hash it; the profile passes when every digest agrees across them.

Long runs are hashed up to a cap of operations per load model (said in the output):
the prefix is the same code path as the rest, and its digest already changes with every
setting that shapes the stream.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from array import array
from typing import Any

from rich.console import Console

from loadgen.plan import mode_label, mode_profiles
from loadgen.profile import Profile
from loadgen.prompts import profile_prompt, request_body, stream_digest
from loadgen.schedule import NS, OffsetStream, closed_loop_plan, profile_offsets, warmup_offsets

PROVIDERS = ("openai", "anthropic")
MAX_HASHED_OPERATIONS = 10_000  # per load model; ~0.25 s of hashing in each process


def _soak_offsets(mode: Profile, limit: int) -> array:
    # A soak streams its schedule (runner.py): take it the same way, one second at a
    # time, until the cap or the end of the run.
    stream = OffsetStream(mode.load, mode.seed)
    end_ns = round(mode.duration * NS)
    taken = array("q")
    t = 0
    while len(taken) < limit and t < end_ns:
        t = min(end_ns, t + NS)
        taken.extend(stream.until(t)[1])
    return taken[:limit]


def _schedule(mode: Profile, limit: int) -> tuple[Any, int | None]:
    """(what fixes the schedule, measured operations it plans or None when unknown in advance)."""
    if not mode.open_loop:
        # No offsets: a virtual user's next call is intended when its last one ends.
        plan = closed_loop_plan(mode)
        shape = {"kind": mode.load.kind, "users": plan.users, "operations": plan.operations,
                 "duration_ns": plan.duration_ns, "warmup_operations": mode.warmup_operations}
        return shape, mode.operations
    warmup = list(warmup_offsets(mode.load, mode.warmup_operations)[-limit:])
    if mode.soak is not None:
        return {"warmup": warmup, "measured": list(_soak_offsets(mode, limit))}, None
    offsets = profile_offsets(mode)  # what every worker of the run builds
    return {"warmup": warmup, "measured": list(offsets[:limit])}, len(offsets)


def mode_digests(mode: Profile, limit: int) -> dict[str, Any]:
    """One load model's digests, and how many of its operations they cover."""
    shape, planned = _schedule(mode, limit)
    hashed = limit if planned is None else min(planned, limit)
    ops = [(op_id, False) for op_id in range(hashed)]
    ops += [(op_id, True) for op_id in range(min(mode.warmup_operations, limit))]
    prompts = [profile_prompt(mode, op_id, warmup=warmup) for op_id, warmup in ops]
    models = {"openai": mode.models.openai, "anthropic": mode.models.anthropic}
    digests = {
        provider: stream_digest(request_body(provider, p, models[provider]) for p in prompts)
        for provider in PROVIDERS
    }
    # The provider-neutral prompt content must be the same for both providers too.
    digests["content"] = stream_digest(
        {"system": p.system, "turns": p.turns, "max_tokens": p.max_tokens} for p in prompts
    )
    digests["schedule"] = stream_digest([{"seed": mode.seed, "load": mode.load.kind, "schedule": shape}])
    return {"mode": mode_label(mode.load), "planned": planned, "hashed": hashed, "digests": digests}


def digests(profile: Profile, limit: int = MAX_HASHED_OPERATIONS) -> list[dict[str, Any]]:
    """Every load model's digests, in this process (once: the client changes neither schedule nor prompts)."""
    return [mode_digests(mode, limit) for mode in mode_profiles(profile.model_copy(update={"clients": None}))]


def _fresh_process(profile: Profile, limit: int, hash_seed: str) -> list[dict[str, Any]]:
    code = (
        "import json, sys; from loadgen.determinism import digests; from loadgen.profile import Profile; "
        f"print(json.dumps(digests(Profile.model_validate_json(sys.stdin.read()), {limit})))"
    )
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    done = subprocess.run([sys.executable, "-c", code], input=profile.model_dump_json(by_alias=True),
                          capture_output=True, text=True, env=env, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "child failed")
    return json.loads(done.stdout)


def _covered(entry: dict[str, Any], limit: int) -> str:
    hashed, planned = entry["hashed"], entry["planned"]
    if planned is not None and hashed == planned:
        return f"all {hashed:,} operations"
    of = f" of {planned:,}" if planned is not None else ""
    return f"the first {hashed:,}{of} operations (cap {limit:,} per load model)"


def check_determinism(profile: Profile, out: Console, limit: int = MAX_HASHED_OPERATIONS) -> int:
    """Hash the profile in two fresh interpreters; 0 when every digest agrees, else 1."""
    first = _fresh_process(profile, limit, "1")
    second = _fresh_process(profile, limit, "2")
    for one, other in zip(first, second):
        out.print(f"{one['mode']}: {_covered(one, limit)}", highlight=False)
        for key, digest in one["digests"].items():
            same = digest == other["digests"][key]
            out.print(f"{key:>11}: {digest[:16]}… {'==' if same else '!='} {other['digests'][key][:16]}…",
                      highlight=False)
    ok = first == second
    out.print(
        f"{len(first)} load model{'s' if len(first) > 1 else ''}, seed {profile.seed}, "
        f"span sizes {profile.span_size_mode}: "
        + ("[green]deterministic across processes[/]" if ok else "[red]NOT deterministic[/]")
    )
    return 0 if ok else 1


def print_sample(profile: Profile, operations: int, out: Console) -> None:
    for op in range(operations):
        p = profile_prompt(profile, op)
        out.print(
            f"op {op}: {p.domain}/{p.size_class} max_tokens={p.max_tokens} turn={p.conversation_turn}: "
            f"{p.turns[-1][1]}", highlight=False
        )
