"""The CSV files: one per table, their headers and rows exactly the document's figures."""

import csv
import json
from pathlib import Path

import pytest

from loadgen.report.tables import document_tables, flatten, write_csv

DATA = Path(__file__).parent / "data" / "report"


def load(name: str) -> dict:
    return json.loads((DATA / f"page-{name}.json").read_text())


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def cell(value) -> str:
    """What the csv module writes for a figure: None as an empty cell."""
    return "" if value is None else str(value)


@pytest.mark.parametrize("record, flat", [
    # nested dicts become dotted columns
    ({"latency_ms": {"p99": 1.5, "count": 3}}, {"latency_ms.p99": 1.5, "latency_ms.count": 3}),
    # a 95 % CI becomes _lo/_hi
    ({"overhead_latency_ci95_ms": [-0.3, 0.5]}, {"overhead_latency_ci95_ms_lo": -0.3, "overhead_latency_ci95_ms_hi": 0.5}),
    # histograms and other lists are left out; None stays None
    ({"histograms": {"latency": {"hdr": "HIST"}}, "blocks": [{"index": 0}], "cpu_percent_by_worker": [1.0, 2.0],
      "spans": None}, {"spans": None}),
])
def test_flatten(record, flat):
    assert flatten(record) == flat


def test_run_document_files_and_rows(tmp_path):
    document = load("run")
    paths = write_csv(document, tmp_path)
    assert sorted(path.name for path in paths) == ["north_star.csv", "runs.csv", "spans.csv"]
    runs = read_csv(tmp_path / "runs.csv")
    assert len(runs) == len(document["runs"])
    for row, run in zip(runs, document["runs"]):
        assert (row["provider"], row["arm"], row["mode"]) == (run["provider"], run["arm"], run["mode"])
        assert row["latency_ms.p99"] == cell(run["latency_ms"]["p99"])
        assert row["achieved_rate_rps"] == cell(run["achieved_rate_rps"])
        ci = run["overhead_latency_ci95_ms"] or [None, None]
        assert (row["overhead_latency_ci95_ms_lo"], row["overhead_latency_ci95_ms_hi"]) == tuple(map(cell, ci))
    assert not any(key.startswith("histograms") for key in runs[0])


def test_north_star_csv_matches_the_document(tmp_path):
    document = load("run")
    write_csv(document, tmp_path)
    rows = read_csv(tmp_path / "north_star.csv")
    assert [(r["arm"], r["overhead_latency_ms"], r["export_latency_p95_ms"]) for r in rows] == [
        (n["arm"], cell(n["overhead_latency_ms"]), cell(n["export_latency_p95_ms"]))
        for n in document["north_star_metrics"]]


def test_spans_csv_one_row_per_tracing_run(tmp_path):
    document = load("run")
    write_csv(document, tmp_path)
    rows = read_csv(tmp_path / "spans.csv")
    traced = [run for run in document["runs"] if run["spans"]]
    assert list(rows[0])[:10] == ["provider", "arm", "mode", "started", "ended", "exported", "received",
                                  "dropped.queue_full", "dropped.export_failed", "dropped.rejected"]
    assert [(r["arm"], r["received"], r["unaccounted"]) for r in rows] == [
        (run["arm"], str(run["spans"]["received"]), str(run["spans"]["unaccounted"])) for run in traced]


@pytest.mark.parametrize("name, files", [
    ("soak", {"runs", "north_star", "spans", "soak_memory"}),
    ("sweep", {"sweep_steps", "sweep_highest_rates", "spans"}),
    ("faults", {"fault_cells", "fault_baselines"}),
    ("compare", {"compare"}),
])
def test_each_kind_writes_its_own_tables(name, files):
    assert set(document_tables(load(name))) == files


def test_sweep_steps_carry_their_rate():
    document = load("sweep")
    table = document_tables(document)["sweep_steps"]
    rate, arm = table.headers.index("step_rate"), table.headers.index("arm")
    assert [(row[rate], row[arm]) for row in table.rows] == [
        (step["rate"], run["arm"]) for step in document["sweep"]["steps"] for run in step["runs"]]


def test_fault_cells_verdicts(tmp_path):
    document = load("faults")
    write_csv(document, tmp_path)
    rows = read_csv(tmp_path / "fault_cells.csv")
    assert [(r["scenario"], r["arm"], r["verdict"], r["recovery_s"]) for r in rows] == [
        (c["scenario"], c["arm"], c["verdict"], cell(c["recovery_s"])) for c in document["cells"]]


def test_compare_rows_with_unmeasured_as_empty(tmp_path):
    write_csv(load("compare"), tmp_path)
    document = load("compare")
    rows = read_csv(tmp_path / "compare.csv")
    assert [r["verdict"] for r in rows] == [row["verdict"] for row in document["rows"]]
    assert rows[1]["change_ci95_lo"] == str(document["rows"][1]["change_ci95"][0])
    assert rows[1]["why"] == "" and rows[1]["limit"] == "0.1"  # None is empty; the gate's limit on overhead


def test_soak_windows_when_the_document_holds_them(tmp_path):
    document = load("soak")
    document["soak"]["windows"] = [{"provider": "openai", "arm": "baseline", "window": 0, "rss_mib": 68.24,
                                    "latency_ms": {"p99": 250.239}}]
    write_csv(document, tmp_path)
    assert read_csv(tmp_path / "soak_windows.csv") == [
        {"provider": "openai", "arm": "baseline", "window": "0", "rss_mib": "68.24", "latency_ms.p99": "250.239"}]
