"""The exported JSON document: what `loadgen run --export-json` writes, built from finished results.

A function of summaries, like every reporter: nothing here reaches back into the engine,
and nothing here prints (the console is `loadgen.console`). Every string in a document
passes through redaction, so an API key that found its way into an error message is masked.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from importlib import resources
from pathlib import Path

from loadgen import __version__
from loadgen.assessment import configuration_summary, overall, recommendations, verdicts
from loadgen.limits import Thresholds
from loadgen.redact import redact_data

SCHEMA_VERSION = "1.1"  # 1.1: the summary (assessment), rounds and blocks


def north_star_metrics(runs: list[dict]) -> list[dict]:
    """The six north-star metrics per provider/arm/mode (None: not measured for that run)."""
    rows = []
    for run in runs:
        latency = run.get("export_latency_ms") or {}
        rows.append({
            "provider": run["provider"],
            "arm": run["arm"],
            "mode": run["mode"],
            "overhead_latency_ms": run.get("overhead_latency_ms"),
            "overhead_latency_ci95_ms": run.get("overhead_latency_ci95_ms"),
            "overhead_latency_percent": run.get("overhead_latency_percent"),
            "dropped_span_rate_percent": run.get("dropped_span_rate_percent"),
            "export_latency_p95_ms": latency.get("p95"),
            "trace_coverage_percent": run.get("trace_coverage_percent"),
            "attribute_completeness_percent": run.get("attribute_completeness_percent"),
            "memory_overhead_percent": run.get("memory_overhead_percent"),
            "memory_fixed_mib": run.get("memory_fixed_mib"),
            "memory_growth_mib_per_1k_ops": run.get("memory_growth_mib_per_1k_ops"),
            "loop_delay_p99_ms": run.get("loop_delay_p99_ms"),
            "loop_delay_delta_p99_ms": run.get("loop_delay_delta_p99_ms"),
            # The sync client's: its OS threads per worker and its GIL wait (None on the async client).
            "threads": run.get("threads"),
            "gil_wait_p99_ms": run.get("gil_wait_p99_ms"),
            "gil_wait_delta_p99_ms": run.get("gil_wait_delta_p99_ms"),
            "saturated": run.get("saturated"),
            "overhead_before_wire_ms": run.get("overhead_before_wire_ms"),
            "overhead_after_response_ms": run.get("overhead_after_response_ms"),
            "cpu_per_operation_us": run.get("cpu_per_operation_us"),
        })
    return rows


def assessment_summary(profile_data: dict, runs: list[dict], target: str) -> dict:
    """The document's `summary`: the setup in brief, each run graded, and what the figures call for."""
    thresholds = Thresholds.model_validate(profile_data.get("thresholds") or {})
    graded = verdicts(runs, thresholds)
    return {
        "configuration": configuration_summary(profile_data, runs, target),
        "overall": overall(graded),
        "verdicts": graded,
        "recommendations": recommendations(runs, thresholds, profile_data),
        "thresholds": thresholds.model_dump(mode="json"),
    }


def document_header() -> dict:
    """What every results document starts with, a run's or a sweep's."""
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "loadgen", "version": __version__},
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def build_document(profile_data: dict, runs: list[dict], *, target: str, interrupted: bool, errors: list[str]) -> dict:
    invalid = [
        {"provider": run["provider"], "arm": run["arm"], "mode": run["mode"], **reason}
        for run in runs
        for reason in run["invalid_reasons"]
    ]
    document = {
        **document_header(),
        "target": target,
        "valid": not invalid and not errors and not interrupted and bool(runs),
        "invalid_reasons": invalid,
        "interrupted": interrupted,
        "errors": errors,
        "profile": profile_data,
        "north_star_metrics": north_star_metrics(runs),
        "summary": assessment_summary(profile_data, runs, target),
        "runs": runs,
    }
    return redact_data(document)


def write_json(document: dict, path: str | Path) -> None:
    """Write the document atomically (write_atomically), indented, ending in a newline."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps(document, indent=2) + "\n")


def write_atomically(path: Path, text: str) -> None:
    """A reader never sees half a file; an interrupted write leaves the old one whole. The file gets
    the mode a plain open() would give it (0666 less the umask), not the temporary file's 0600."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def schema() -> dict:
    """The JSON Schema (draft 2020-12) of the document build_document returns, shipped as package data."""
    return json.loads(resources.files("loadgen").joinpath("schemas/results.schema.json").read_text(encoding="utf-8"))


def validate_document(document: dict) -> list[str]:
    """Every way the document breaks the schema, as 'path: message' (empty: it conforms).

    jsonschema is imported here, only when asked for: a run never loads it.
    """
    from jsonschema import Draft202012Validator

    errors = Draft202012Validator(schema()).iter_errors(document)
    return [f"{'/'.join(str(part) for part in error.absolute_path) or '(document)'}: {error.message}"
            for error in sorted(errors, key=lambda error: list(map(str, error.absolute_path)))]
