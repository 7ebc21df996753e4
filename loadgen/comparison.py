"""The comparison document (`loadgen compare --export-json`), its refusals and its gate.

Two results documents are compared only when they are the same experiment: the same schema,
both runs (a sweep or a fault matrix is not compared), and the same prompts, seed, load and
target. Each difference is named; `--force` compares anyway and records what differed.

The gate (k6's thresholds, for a CI job): with `fail_on = "worse"` any row worse than within
noise fails it; each `max_*` limit fails it when its figure got worse by more than the limit
beyond noise (the change's whole CI past the limit, the same test `worse` makes against the floor). The gate's own settings come from the NEW document's `[gate]`, then the flags.
"""

from __future__ import annotations

import json

from loadgen.compare import BY_METRIC, METHOD, beyond, compare_runs
from loadgen.document import document_header
from loadgen.errors import ExitCode, UserError
from loadgen.profile_runs import Gate

# Which limit judges which figure, and whether the limit is a share (%) of the base figure.
LIMITS = {
    "overhead_latency_ms": ("max_overhead_increase_ms", False),
    "loop_delay_ms": ("max_loop_delay_increase_ms", False),
    "memory_fixed_mib": ("max_memory_increase_mib", False),
    "memory_growth_mib_per_1k_ops": ("max_memory_growth_increase_mib_per_1k_ops", False),
    "dropped_span_rate_percent": ("max_drop_rate_increase_percent", False),
    "export_latency_p95_ms": ("max_export_p95_increase_ms", False),
    "throughput_rps": ("max_throughput_decrease_percent", True),
}

# What makes two runs the same experiment: the profile keys behind the prompts, the load and the target.
SAME_EXPERIMENT = (
    ("seed",), ("provider",), ("models",), ("span_size_mode",), ("conversation_share",), ("max_turns",),
    ("max_tokens",), ("stream",), ("load",), ("modes",), ("client",), ("clients",), ("threads",),
    ("target", "kind"), ("target", "base_url"),
    ("mock", "ttft_ms"), ("mock", "itl_ms"), ("mock", "jitter"), ("mock", "default_output_tokens"),
    ("mock", "tokens_per_chunk"),
)
# Keys a document from before the client dimension lacks: it ran with their defaults.
_DEFAULTS = {("client",): "async", ("clients",): None, ("threads",): "auto"}


def refusals(base: dict, new: dict, base_path: str, new_path: str) -> list[str]:
    """Why the two documents are not the same experiment (empty: they are)."""
    found = []
    if base["schema_version"] != new["schema_version"]:
        found.append(f"schema_version: {base['schema_version']} in {base_path}, {new['schema_version']} in {new_path}")
    for document, path in ((base, base_path), (new, new_path)):
        if document.get("kind") is not None:
            found.append(f"{path} is a {document['kind']} document; compare takes the documents of runs")
    sync = any("sync" in _clients(document.get("profile") or {}) for document in (base, new))
    for keys in SAME_EXPERIMENT:
        if keys == ("threads",) and not sync:
            continue  # the thread count only sizes the sync client's pool
        a, b = (_dig(document.get("profile") or {}, keys, _DEFAULTS.get(keys)) for document in (base, new))
        if a != b:
            found.append(f"{'.'.join(keys)}: {json.dumps(a)} in {base_path}, {json.dumps(b)} in {new_path}")
    return found


def _dig(data: dict, keys: tuple[str, ...], default=None):
    for key in keys:
        data = data.get(key, default) if isinstance(data, dict) else default
    return data


def _clients(profile: dict) -> list[str]:
    return profile.get("clients") or [profile.get("client", "async")]


def comparison_document(base: dict, new: dict, *, base_path: str, new_path: str, gate: Gate | None,
                        forced: list[str]) -> dict:
    rows, unmatched = compare_runs(base.get("runs") or [], new.get("runs") or [])
    judged = judge(rows, gate)
    return {
        **document_header(),
        "kind": "compare",
        "base": _side(base, base_path),
        "new": _side(new, new_path),
        "forced": forced,
        "method": METHOD,
        "floors": {metric: {"floor": figure.floor, "relative": figure.relative} for metric, figure in BY_METRIC.items()},
        "rows": rows,
        "unmatched": unmatched,
        "summary": {verdict: sum(row["verdict"] == verdict for row in rows)
                    for verdict in ("worse", "better", "within noise", "unmeasured")},
        "gate": judged,
    }


def _side(document: dict, path: str) -> dict:
    profile = document.get("profile") or {}
    return {"path": path, "generated_at": document.get("generated_at"), "profile": profile.get("name"),
            "target": document.get("target"), "valid": document.get("valid"),
            "interrupted": document.get("interrupted"), "tool_version": (document.get("tool") or {}).get("version")}


def judge(rows: list[dict], gate: Gate | None) -> dict:
    """Mark each row's limit and whether it was crossed; the gate's outcome and its reasons."""
    reasons = []
    for row in rows:
        name, relative = LIMITS[row["metric"]]
        limit = getattr(gate, name) if gate else None
        row["limit"] = limit
        row["crossed"] = crossed(row, limit, relative)
        where = f"{row['provider']}/{row['arm']} {row['mode']}"
        if row["crossed"]:
            reasons.append(f"{where}: {row['label']} {_signed(row)} is over {name.replace('_', '-')} {limit:g}")
        elif gate is not None and gate.fail_on == "worse" and row["verdict"] == "worse":
            reasons.append(f"{where}: {row['label']} worse, {_signed(row)}")
    return {
        "active": gate is not None,
        "settings": gate.model_dump(mode="json") if gate else None,
        "failed": bool(reasons),
        "reasons": reasons,
    }


def crossed(row: dict, limit: float | None, relative: bool) -> bool:
    """Worse by more than the limit beyond noise: the change's whole CI past it (a share of the base if relative)."""
    ci = row["change_ci95"]
    if limit is None or ci is None:
        return False
    absolute = limit * abs(row["base"]) / 100.0 if relative else limit
    return beyond(ci, absolute, row["better"] == "lower")


def _signed(row: dict) -> str:
    lo, hi = row["change_ci95"] or (None, None)
    ci = f" [{lo:+.3g}, {hi:+.3g}]" if lo is not None else ""
    return f"{row['change']:+.3g} {row['unit']}{ci} ({row['base']:.4g} → {row['new']:.4g})"


def gate_from(new: dict, flags: dict) -> Gate | None:
    """The NEW document's [gate], with the flags laid over it; None when neither asks for a gate."""
    stored = (new.get("profile") or {}).get("gate")
    given = {key: value for key, value in flags.items() if value is not None}
    if stored is None and not given:
        return None
    return Gate.model_validate({**(stored or {}), **given})


def refuse(found: list[str]) -> None:
    raise UserError("compare: the runs are not the same experiment (--force compares them anyway):\n"
                    + "\n".join(found), ExitCode.USAGE)
