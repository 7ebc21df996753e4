"""The command line's flags as a profile override: a nested dict laid over the profile file.

`loadgen run` and `loadgen faults` pass their flags here; a flag the user did not give is None
and sets nothing, so the profile's own value stands.
"""

from __future__ import annotations

from typing import Any

import click


def overrides(flags: dict[str, Any]) -> dict[str, Any]:
    """CLI flags → a nested dict laid over the profile file."""
    o: dict[str, Any] = _clients(flags)
    # --sequential, --concurrency and --rate may be combined: each is a mode with rows of its own.
    loads: list[dict[str, Any]] = []
    if flags.get("sequential"):
        loads.append({"kind": "sequential"})
    users = flags.get("concurrency") if flags.get("concurrent_threads") is None else flags["concurrent_threads"]
    if users is not None:
        loads.append({"kind": "concurrency", "users": users})
    if flags.get("rate") is not None or flags.get("arrival"):
        load: dict[str, Any] = {"kind": flags.get("arrival") or "constant"}
        if flags.get("rate") is not None:
            load["rate"] = flags["rate"]
        if flags.get("rate_end") is not None:
            load["rate_end"] = flags["rate_end"]
        loads.append(load)
    if loads:
        o["load"] = loads[0]
        o["modes"] = loads[1:]
    if flags.get("duration") is not None and flags.get("operations") is not None:
        raise click.UsageError("choose one of --duration and --operations")
    simple = {
        "provider": "provider", "duration": "duration", "operations": "operations",
        "warmup_operations": "warmup_operations", "stream": "stream", "span_size_mode": "span_size_mode",
        "seed": "seed", "timeout": "timeout", "max_in_flight": "max_in_flight", "connections": "connections",
        "max_tokens": "max_tokens", "workers": "workers", "rounds": "rounds", "replicas": "replicas",
        "threads": "threads",
    }
    for flag, key in simple.items():
        if flags.get(flag) is not None:
            o[key] = flags[flag]
    for key in ("workers", "rounds", "replicas", "threads"):
        if isinstance(o.get(key), str) and o[key].isdigit():
            o[key] = int(o[key])
    models = {k: flags[f"{k}_model"] for k in ("openai", "anthropic") if flags.get(f"{k}_model")}
    if models:
        o["models"] = models
    if flags.get("base_url"):
        o["target"] = {"kind": flags.get("target") or "url", "base_url": flags["base_url"]}
    elif flags.get("target"):
        o["target"] = {"kind": flags["target"]}
    tracing: dict[str, Any] = {}
    if flags.get("arms"):
        tracing["arms"] = [arm.strip() for arm in flags["arms"].split(",") if arm.strip()]
    for key in ("collector_url", "max_queue_size", "schedule_delay_ms", "max_export_batch_size",
                "calibrate_us", "calibrate_kind", "calibrate_at", "calibrate_mib", "calibrate_leak_kib"):
        if flags.get(key) is not None:
            tracing[key] = flags[key]
    if tracing:
        o["tracing"] = tracing
    soak = {key: flags[flag] for flag, key in (("window", "window"), ("soak_jsonl", "jsonl"),
                                               ("tracemalloc", "tracemalloc")) if flags.get(flag) is not None}
    if flags.get("soak") or soak:
        o["soak"] = soak
    scale = {key: flags[key] for key in ("engine", "ray_address") if flags.get(key) is not None}
    if "ray_address" in scale:
        scale.setdefault("engine", "ray")
    if scale:
        o["scale"] = scale
    mock = {k: flags[f"mock_{k}"] for k in ("ttft_ms", "itl_ms") if flags.get(f"mock_{k}") is not None}
    if mock:
        o["mock"] = mock
    outputs = {key: flags[key] for key in ("html", "plots", "csv") if flags.get(key)}
    if outputs:
        o["outputs"] = outputs
    return o


CLIENTS = ("async", "sync")


def _clients(flags: dict[str, Any]) -> dict[str, Any]:
    """--client, --clients and --concurrent-threads as profile keys; a client given on the command line
    wins over the file's `clients` (which would otherwise override it).

    --concurrent-threads N is the tool loadgen replaces' meaning: N OS threads, each with a sync client,
    so it sets the client, and refuses any other client given beside it.
    """
    client, listed, threads = flags.get("client"), flags.get("clients"), flags.get("concurrent_threads")
    if threads is not None:
        if client not in (None, "sync"):
            raise click.UsageError(f"--concurrent-threads runs the sync client in OS threads; it cannot go with "
                                   f"--client {client} (for N async users, give --concurrency N)")
        if listed is not None:
            raise click.UsageError("--concurrent-threads runs the sync client alone; it cannot go with --clients")
        if flags.get("concurrency") is not None:
            raise click.UsageError("give --concurrency (async users) or --concurrent-threads (sync threads), not both")
        client = "sync"
    if listed is not None:
        if client is not None:
            raise click.UsageError("give --client or --clients, not both")
        names = [name.strip() for name in listed.split(",") if name.strip()]
        unknown = [name for name in names if name not in CLIENTS]
        if unknown or not names:
            raise click.UsageError(f"--clients: {', '.join(unknown) or '(none)'}: not a client; choose from "
                                   f"{', '.join(CLIENTS)}, comma-separated")
        return {"clients": names}
    return {} if client is None else {"client": client, "clients": None}
