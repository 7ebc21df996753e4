"""`loadgen faults` end to end: a small matrix on the embedded mock LLM and collector, real worker processes.

The servers' own counts are the known answers: the collector's log of export attempts (with
each one's outcome and spans) against the workers' span buckets, and the mock's log of the
faults it injected against the error classes and attempts loadgen counted.
"""

import json

import pytest

from loadgen.document import validate_document
from tests.conftest import run_cli

# Short phases: the batch processors export every 0.4 s, twice in each phase at least.
FAST = ["--set", "tracing.schedule_delay_ms=400", "--set", "faults.before=1", "--set", "faults.during=1.5",
        "--set", "faults.after=1.5", "--set", "warmup_operations=5", "--rate", "40", "--provider", "openai",
        "--quiet"]


def faults(tmp_path, *args: str) -> dict:
    path = tmp_path / "faults.json"
    done = run_cli("faults", *FAST, *args, "--export-json", str(path), timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads(path.read_text())
    assert validate_document(document) == []
    assert "fault matrix" in done.stdout
    return document


@pytest.mark.e2e
def test_a_small_matrix_accounts_every_span_and_every_injected_fault(tmp_path):
    document = faults(tmp_path, "--scenarios", "collector_400,llm_500", "--arms", "baseline,otel")
    assert document["kind"] == "faults"
    cells = {cell["scenario"]: cell for cell in document["cells"]}
    assert set(cells) == {"collector_400", "llm_500"} and {c["arm"] for c in cells.values()} == {"otel"}
    for cell in cells.values():
        assert cell["spans"]["unaccounted"] == 0, cell["spans"]
        assert cell["verdict"] in ("pass", "warn", "fail") and cell["shutdown_s"] is not None
        assert set(cell["phases"]) == {"before", "during", "after"}

    # 400s are not retried: every span of a 400-answered export is dropped as export_failed, and only those.
    refused = cells["collector_400"]
    dropped = refused["spans"]["dropped"]
    assert dropped["export_failed"] > 0
    assert dropped["queue_full"] == dropped["rejected"] == dropped["after_shutdown"] == 0
    collector = refused["collector"]
    assert collector["spans_by_outcome"]["http_400"] == dropped["export_failed"]
    assert collector["exported_minus_received"] == 0
    assert refused["phases"]["during"]["export_attempts"].get("http_400", 0) > 0
    assert refused["phases"]["before"]["export_attempts"].get("http_400", 0) == 0
    assert refused["phases"]["before"]["spans"]["dropped"]["export_failed"] == 0

    # Every 500 the mock injected is a call loadgen counted as http_500, in one arm or the other.
    (entry,) = [s for s in document["scenarios"] if s["scenario"] == "llm_500"]
    injected = entry["mock_faults_injected"]
    counted = sum(errors.get("http_500", 0) for errors in entry["errors_by_arm"].values())
    assert set(injected) == {"http_500"} and injected["http_500"] == counted > 0
    failing = cells["llm_500"]
    assert failing["phases"]["during"]["calls_failed"] > 0 and failing["phases"]["before"]["calls_failed"] == 0
    assert failing["errors"] == failing["baseline_errors"] or set(failing["errors"]) == {"http_500"}


@pytest.mark.e2e
def test_with_retries_every_attempt_the_mock_refused_is_counted(tmp_path):
    document = faults(tmp_path, "--scenarios", "llm_429", "--arms", "baseline,otel", "--set", "max_retries=2")
    (entry,) = document["scenarios"]
    injected = entry["mock_faults_injected"]["http_429"]
    runs = {cell["arm"]: cell for cell in document["cells"]}
    ok = {arm: None for arm in entry["attempts_by_arm"]}
    for base in document["baselines"]:
        ok[base["arm"]] = sum(p["calls"] - p["calls_failed"] for p in base["phases"].values())
    for arm, cell in runs.items():
        ok[arm] = sum(p["calls"] - p["calls_failed"] for p in cell["phases"].values())
    # Each attempt is one request at the mock: those that failed are exactly the 429s it injected.
    failed_attempts = sum(entry["attempts_by_arm"][arm] - ok[arm] for arm in ok)
    assert failed_attempts == injected > 0
    assert sum(entry["attempts_by_arm"].values()) > sum(ok.values())


@pytest.mark.e2e
def test_the_exit_waits_as_long_as_the_exporter_retries_with_the_collector_down(tmp_path):
    # Known answer: an OTLP exporter retries a batch with backoff (1 s ± 20 %, then 2 s ± 20 %, …) until
    # the next wait would pass its timeout. With 2 s, an export at exit waits out one backoff (0.8–1.2 s)
    # and gives up; the last flush and the shutdown make at most two, so the exit takes 0.8–2 × 2 s plus
    # the attempts. With the collector healthy it takes well under a second.
    document = faults(tmp_path, "--scenarios", "collector_down_at_exit,collector_400", "--arms", "baseline,otel",
                      "--set", "tracing.export_timeout_ms=2000")
    exits = {cell["scenario"]: cell["shutdown_s"] for cell in document["cells"]}
    assert 0.75 <= exits["collector_down_at_exit"] <= 4.5, exits
    assert exits["collector_400"] < 0.5, exits
