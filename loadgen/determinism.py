"""`loadgen prompts --test-determinism`: the prompt and schedule stream, hashed in fresh processes.

Two freshly spawned interpreters (each with its own PYTHONHASHSEED) hash the request
bodies both providers would send for the same seed, plus the schedule's offsets; the
run passes when every digest agrees across processes.
"""

from __future__ import annotations

import os
import subprocess
import sys

from rich.console import Console

from loadgen.prompts import make_prompt, request_body, stream_digest

PROVIDERS = ("openai", "anthropic")


def digests(operations: int, seed: int, span_size_mode: str) -> dict[str, str]:
    """Digest of each provider's request stream and of the schedule, in this process."""
    from loadgen.profile import PoissonLoad
    from loadgen.schedule import open_loop_offsets

    prompts = [make_prompt(seed, op, span_size_mode=span_size_mode) for op in range(operations)]
    result = {
        provider: stream_digest(request_body(provider, p, "model") for p in prompts) for provider in PROVIDERS
    }
    # The provider-neutral prompt content must be the same for both providers too.
    result["content"] = stream_digest(
        {"system": p.system, "turns": p.turns, "max_tokens": p.max_tokens} for p in prompts
    )
    offsets = open_loop_offsets(PoissonLoad(kind="poisson", rate=100), seed=seed, operations=operations)
    result["schedule"] = stream_digest([list(offsets)])
    return result


def _fresh_process(operations: int, seed: int, span_size_mode: str, hash_seed: str) -> dict[str, str]:
    code = (
        "import json, sys; from loadgen.determinism import digests; "
        f"print(json.dumps(digests({operations}, {seed}, {span_size_mode!r})))"
    )
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "child failed")
    import json

    return json.loads(done.stdout)


def check_determinism(operations: int, seed: int, span_size_mode: str, out: Console) -> int:
    first = _fresh_process(operations, seed, span_size_mode, "1")
    second = _fresh_process(operations, seed, span_size_mode, "2")
    ok = first == second
    for key in first:
        same = first[key] == second[key]
        out.print(f"{key:>9}: {first[key][:16]}… {'==' if same else '!='} {second[key][:16]}…", highlight=False)
    out.print(
        f"{operations} operations, seed {seed}, span sizes {span_size_mode}: "
        + ("[green]deterministic across processes[/]" if ok else "[red]NOT deterministic[/]")
    )
    return 0 if ok else 1


def print_sample(operations: int, seed: int, span_size_mode: str, out: Console) -> None:
    for op in range(operations):
        p = make_prompt(seed, op, span_size_mode=span_size_mode)
        out.print(
            f"op {op}: {p.domain}/{p.size_class} max_tokens={p.max_tokens} turn={p.conversation_turn}: "
            f"{p.turns[-1][1]}", highlight=False
        )
