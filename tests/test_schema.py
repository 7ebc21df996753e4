"""The exported document against its shipped JSON Schema: synthetic, real, and broken on purpose."""

import copy
import json
from array import array

import pytest
from jsonschema import Draft202012Validator

from loadgen.arms import traces
from loadgen.arms import is_baseline
from loadgen.assessment import CHECKS
from loadgen.histograms import Recorder
from loadgen.document import build_document, schema, validate_document
from loadgen.limits import Validity
from loadgen.metrics import summarize_all
from loadgen.profile import Profile
from tests.conftest import run_cli
from loadgen.results import WorkerResult
from tests.test_metrics import result as worker_result


def traced(arm: str, overhead_ns: int = 0) -> WorkerResult:
    """A worker result with per-op latencies and RSS samples, and for an exporting arm spans and collector figures."""
    extra_rss = 0 if arm == "baseline" else 5 * 2**20
    exports = traces(arm)
    export_latency = Recorder()
    for _ in range(2000):
        export_latency.record_ns(3_000_000)
    return worker_result(
        arm=arm, cpu_seconds_measured=1.0, measure_start_s=1.0,
        rss_samples=[(0.5, 60 * 2**20), (1.5, 64 * 2**20 + extra_rss), (2.5, 64 * 2**20)],
        latency_by_op=array("q", [100_000_000 + overhead_ns + i % 7 * 1000 for i in range(1000)]),
        spans=None if not exports else {
            "started": 2002, "ended": 2002, "exported": 1990, "in_queue": 0, "export_calls": 40,
            "dropped": {"queue_full": 12, "export_failed": 0, "rejected": 0, "after_shutdown": 0},
            "export_latency": export_latency.encode()},
        collector=None if not exports else {
            "spans_received": 1990, "duplicates": 0, "covered_operations": 994, "bytes": 600_000,
            "attribute_completeness_percent": 99.5, "missing_attributes": {"gen_ai.response.model": 5},
            "export_delay_ms": export_latency.summary_ms()},
    )


@pytest.fixture(scope="module")
def built() -> dict:
    """Built once: summarize() decodes every histogram, which is most of this module's time."""
    results = [traced("baseline"), traced("otel", overhead_ns=400_000), traced("calibration")]
    runs = summarize_all(results, Validity())
    return build_document(Profile().model_dump(mode="json"), runs, target="embedded", interrupted=False, errors=[])


@pytest.fixture
def document(built) -> dict:
    return copy.deepcopy(built)


def test_the_schema_is_a_valid_draft_2020_12_schema():
    Draft202012Validator.check_schema(schema())


def test_a_document_from_synthetic_runs_validates(document):
    assert validate_document(document) == []
    # The fixture exercises what the schema describes: spans, drops, an overhead CI, advice.
    assert document["runs"][1]["overhead_latency_ci95_ms"] is not None
    assert {item["kind"] for item in document["summary"]["recommendations"]} >= {"queue_full", "missing_attributes"}


def test_an_empty_document_validates():
    # Interrupted before any run finished: still a document a reader can rely on.
    document = build_document({}, [], target="t", interrupted=True, errors=["stopped"])
    assert validate_document(document) == []
    assert document["summary"]["overall"] == "unmeasured"


def _without(data: dict, key: str) -> dict:
    data.pop(key)
    return data


@pytest.mark.parametrize("name, mutate, where", [
    ("a missing north-star key", lambda d: _without(d["north_star_metrics"][1], "trace_coverage_percent"),
     "north_star_metrics/1"),
    ("an extra north-star key", lambda d: d["north_star_metrics"][0].update(p99_ms=1.0), "north_star_metrics/0"),
    ("a CI of three numbers", lambda d: d["north_star_metrics"][1].update(overhead_latency_ci95_ms=[0.1, 0.2, 0.3]),
     "north_star_metrics/1/overhead_latency_ci95_ms"),
    ("a CI of one number", lambda d: d["runs"][1].update(overhead_latency_ci95_ms=[0.1]), "runs/1/overhead_latency_ci95_ms"),
    ("a CI of strings", lambda d: d["north_star_metrics"][1].update(overhead_latency_ci95_ms=["0.1", "0.2"]),
     "north_star_metrics/1/overhead_latency_ci95_ms"),
    ("no summary", lambda d: _without(d, "summary"), "(document)"),
    ("a verdict that is not one", lambda d: d["summary"]["verdicts"][0].update(verdict="ok"), "summary/verdicts/0/verdict"),
    ("a run without its latency", lambda d: _without(d["runs"][0], "latency_ms"), "runs/0"),
    ("a figure of the wrong type", lambda d: d["runs"][0].update(success_rate_percent="100"),
     "runs/0/success_rate_percent"),
    ("a validity verdict that is not a boolean", lambda d: d["runs"][0]["validity_limits"].update(saturation_judged=1),
     "runs/0/validity_limits/saturation_judged"),
    ("a rate ratio over 1", lambda d: d["profile"]["validity"].update(min_rate_ratio=1.5),
     "profile/validity/min_rate_ratio"),
])
def test_a_broken_document_fails_validation(document, name, mutate, where):
    mutate(document)
    errors = validate_document(document)
    assert errors and all(error.startswith(where) for error in errors), (name, errors)


def test_runs_and_profile_may_grow(document):
    document["runs"][0]["a_future_figure"] = 1
    document["profile"]["a_future_setting"] = "x"
    assert validate_document(document) == []


@pytest.mark.e2e
@pytest.mark.parametrize("load", [
    # Two replicas, one rotation of the arms' order (6 blocks) and 1 s: the same document, every
    # figure of the same kind as with 'auto' (4 replicas, 12 blocks, 2 s), in two thirds the time.
    # The second load keeps 'auto', so a real document with "auto" in its profile is checked too.
    ["--provider", "both", "--rate", "20", "--duration", "1s", "--arms", "baseline,otel,calibration",
     "--calibrate-us", "500", "--replicas", "2", "--rounds", "6"],
    ["--provider", "openai", "--sequential", "--operations", "20", "--arms", "baseline,otel", "--replicas", "auto"],
])
def test_an_exported_document_validates(tmp_path, load):
    out = tmp_path / "r.json"
    done = run_cli("run", *load, "--warmup-operations", "0", "--max-tokens", "16",
                   "--schedule-delay-ms", "200", "--export-json", str(out), "--quiet")
    # Validity is not the subject (a late wake-up on a busy machine can break the lag rule).
    assert done.returncode in (0, 3), done.stdout + done.stderr
    document = json.loads(out.read_text())
    assert validate_document(document) == []
    runs = document["runs"]
    assert len(runs) == len(document["summary"]["configuration"]["providers"]) * len(document["profile"]["tracing"]["arms"])
    # Two checks per baseline run, every check per other arm.
    assert len(document["summary"]["verdicts"]) == sum(2 if is_baseline(r["arm"]) else len(CHECKS) for r in runs)
    assert "assessment against the thresholds" in done.stdout
