"""The charts of every document kind: their tables hold the document's figures, and they draw the same every time."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from loadgen.histograms import Recorder
from loadgen.report.chart_faults import VERDICT_COLOURS
from loadgen.report.chart_parts import BASELINE_GREY, arm_colours
from loadgen.report.charts import charts_for, render_svg, write_pngs

DATA = Path(__file__).parent / "data" / "report"
REPO = Path(__file__).parent.parent


def sample(name: str) -> dict:
    document = json.loads((DATA / f"charts-{name}.json").read_text())
    if name == "soak":
        document["soak"]["jsonl"] = str(DATA / "charts-soak.jsonl")
    return document


def by_id(charts) -> dict:
    return {chart.id: chart for chart in charts}


def drawn(chart) -> Figure:
    figure = Figure()
    FigureCanvasAgg(figure)
    chart.draw(figure)
    return figure


def compare_document() -> dict:
    def row(provider, arm, metric, change, ci, floor, verdict):
        new = None if change is None else 1.0 + change
        return {"provider": provider, "arm": arm, "mode": "rate 50/s constant", "metric": metric, "label": metric,
                "unit": "ms", "better": "lower", "base": 1.0, "base_ci95": [0.9, 1.1], "new": new, "new_ci95": None,
                "change": change, "change_ci95": ci, "floor": floor, "limit": 0.5, "verdict": verdict}

    return {"schema_version": "1", "kind": "compare", "rows": [
        row("openai", "otel", "overhead", 0.02, [-0.1, 0.14], 0.05, "within noise"),
        row("openai", "honeyhive", "overhead", 1.0, [0.8, 1.2], 0.05, "worse"),
        row("openai", "otel", "loop_delay", None, None, 0.1, "unmeasured"),
    ]}


def test_every_sample_kind_gives_its_charts():
    expected = {
        "run": ["overhead-openai", "overhead-anthropic", "latency-openai-rate-50-s-constant",
                "latency-anthropic-rate-50-s-constant", "export-latency-openai", "export-latency-anthropic",
                "memory-openai", "memory-anthropic"],
        "soak": ["overhead-openai", "latency-openai-rate-100-s-constant", "export-latency-openai", "memory-openai",
                 "soak-openai", "soak-leak-openai"],
        "sweep": ["sweep-latency-openai"],
        "faults": ["fault-matrix"],
    }
    for name, ids in expected.items():
        assert [chart.id for chart in charts_for(sample(name))] == ids, name
    assert [chart.id for chart in charts_for(compare_document())] == ["compare-overhead", "compare-loop-delay"]


@pytest.mark.parametrize("name", ["run", "soak", "sweep", "faults"])
def test_chart_ids_are_unique_slugs(name):
    ids = [chart.id for chart in charts_for(sample(name))]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", chart_id) for chart_id in ids)


def test_forest_rows_are_the_documents_figures():
    document = sample("run")
    chart = by_id(charts_for(document))["overhead-openai"]
    runs = [run for run in document["runs"] if run["provider"] == "openai" and run["arm"] != "baseline"]
    assert [row[0] for row in chart.table.rows] == ["otel", "honeyhive", "calibration"]  # baseline left out
    for row, run in zip(chart.table.rows, runs):
        assert row[1:4] == [run["overhead_latency_ms"], *run["overhead_latency_ci95_ms"]]
        assert row[4:7] == [run["overhead_before_wire_ms"], *run["overhead_before_wire_ci95_ms"]]
        assert row[10:13] == [run["overhead_loop_delay_ms"], *run["overhead_loop_delay_ci95_ms"]]
        assert row[-1] == ""


def test_latency_table_from_known_values():
    recorder = Recorder()
    for ms in range(1, 1001):  # 1…1000 ms: p50 500, p90 900, p99 990, p99.9 999, max 1000 (to HDR's 3 digits)
        recorder.record_ns(ms * 1_000_000)
    run = {"provider": "openai", "arm": "baseline", "mode": "m", "histograms": {"latency": recorder.encode()}}
    chart = by_id(charts_for({"runs": [run]}))["latency-openai-m"]
    [row] = chart.table.rows
    assert row[0] == "baseline" and row[-1] == 1000
    for got, known in zip(row[1:6], (500, 900, 990, 999, 1000)):
        assert got == pytest.approx(known, rel=1e-3)
    summary = recorder.summary_ms()
    assert row[1:6] == [summary[name] for name in ("p50", "p90", "p99", "p99_9", "max")]


def test_export_latency_from_its_histogram_when_the_document_has_it():
    recorder = Recorder()
    for ms in (100, 200, 300, 400):
        recorder.record_ns(ms * 1_000_000)
    document = sample("run")
    document["runs"][1]["histograms"]["export_latency"] = recorder.encode()  # openai/otel
    row = by_id(charts_for(document))["export-latency-openai"].table.rows[0]
    assert row[0] == "otel" and row[-1] == 4 and row[5] == pytest.approx(400, rel=1e-3)


def test_missing_optional_keys_still_chart_and_say_unmeasured(tmp_path):
    document = sample("run")
    for run in document["runs"]:
        del run["histograms"]
        run["overhead_latency_ci95_ms"] = None
        run["export_latency_ms"] = None
        run["memory_growth_ci95_mib_per_1k_ops"] = None
    document["runs"][1]["overhead_latency_ms"] = None
    charts = by_id(charts_for(document))
    forest = charts["overhead-openai"].table.rows
    assert forest[0][1:4] == [None, None, None] and forest[0][-1] == "unmeasured"
    assert forest[1][2:4] == [None, None] and forest[1][-1] == "no CI"
    latency = charts["latency-openai-rate-50-s-constant"].table.rows[0]
    assert latency[1] == document["runs"][0]["latency_ms"]["p50"]  # the summary, without a histogram
    assert charts["export-latency-openai"].table.rows[0][1:] == [None] * 6
    assert len(write_pngs(list(charts.values()), tmp_path)) == len(charts)


def test_arm_colours_follow_first_appearance_and_baseline_is_grey():
    colours = arm_colours(sample("run"))
    assert list(colours) == ["baseline", "otel", "honeyhive", "calibration"]
    assert colours["baseline"] == BASELINE_GREY
    assert len(set(colours.values())) == 4


def test_fault_grid_colours_follow_the_verdicts():
    document = sample("faults")
    document["cells"][0]["verdict"] = "fail"
    document["cells"][0]["worst"] = "unaccounted spans 3"
    del document["cells"][-1]  # anthropic/honeyhive in llm_500: missing
    chart = charts_for(document)[0]
    assert chart.table.rows[0][:2] == ["collector_down", "fail"]
    assert chart.table.rows[-1][4] == "missing"
    assert "openai/otel: unaccounted spans 3" in chart.table.rows[0][-1]
    faces = [to_hex(patch.get_facecolor()) for patch in drawn(chart).axes[0].patches]
    verdicts = [verdict for row in chart.table.rows for verdict in row[1:-1]]
    assert faces == [VERDICT_COLOURS[verdict] for verdict in verdicts]
    assert faces[0] == "#d62728"  # the fail cell is red


def test_sweep_table_marks_sustainable_steps_and_the_slo():
    document = sample("sweep")
    track = document["sweep"]["highest_sustainable_rate"][2]
    track.update(rate=150.0, ended_by="stopped", stopped_by={"rule": "slo", "detail": "p99", "step_rate": 200.0})
    chart = charts_for(document)[0]
    honeyhive = [row for row in chart.table.rows if row[0] == "honeyhive"]
    assert [(row[1], row[5]) for row in honeyhive] == [(50.0, "yes"), (100.0, "yes"), (150.0, "yes"),
                                                       (200.0, "no"), (250.0, "no")]
    lines = drawn(chart).axes[1].get_lines()
    assert any(list(line.get_ydata()) == [400.0, 400.0] for line in lines)  # the profile's SLO


def test_soak_windows_from_the_document_with_pile_ups():
    document = sample("soak")
    document["soak"]["memory"][1]["pile_ups"] = [{"window": 3, "in_flight_high_water": 80, "rss_step_mib": 4.0}]
    charts = by_id(charts_for(document))
    rows = charts["soak-openai"].table.rows
    assert len(rows) == document["soak"]["window_lines"]
    assert rows[1] == [0, "honeyhive", 112.73, 255.615, 1102, 0, "no"]
    assert [row[:2] for row in rows if row[-1] == "yes"] == [[3, "honeyhive"]]
    assert charts["soak-leak-openai"].table.rows[0][:6] == ["baseline", 13.934, 9.825, 18.042, 5.0, "leak"]


def test_soak_without_its_windows_still_charts(tmp_path):
    document = sample("soak")
    windows = document["soak"].pop("windows")
    document["soak"]["jsonl"] = str(tmp_path / "gone.jsonl")
    chart = by_id(charts_for(document))["soak-openai"]
    assert chart.table.rows == []
    assert "n/m" in render_svg(chart)
    # A document from before the windows were embedded: read from its JSONL while the file is there.
    (tmp_path / "gone.jsonl").write_text("\n".join(json.dumps(window) for window in windows[:2]) + "\n")
    assert len(by_id(charts_for(document))["soak-openai"].table.rows) == 2


def test_compare_chart_per_metric_holds_its_rows():
    document = compare_document()
    overhead = charts_for(document)[0]
    assert [row[:2] + row[9:] for row in overhead.table.rows] == [
        ["openai", "otel", 0.02, -0.1, 0.14, 0.05, 0.5, "within noise"],
        ["openai", "honeyhive", 1.0, 0.8, 1.2, 0.05, 0.5, "worse"],
    ]
    faces = [to_hex(line.get_color()) for line in drawn(overhead).axes[0].get_lines() if line.get_marker() == "o"]
    assert faces == ["#8c8c8c", "#d62728"]


def test_render_svg_is_deterministic_and_self_contained():
    charts = charts_for(sample("run"))[:3]
    svgs = [render_svg(chart) for chart in charts]
    assert svgs == [render_svg(chart) for chart in charts]
    for chart, svg in zip(charts, svgs):
        assert svg.startswith("<svg ") and "<?xml" not in svg and "DOCTYPE" not in svg and "<image" not in svg
        assert set(re.findall(r'"(https?://[^"]*)"', svg)) <= {"http://www.w3.org/2000/svg",
                                                              "http://www.w3.org/1999/xlink"}
        assert svg.count("http") == 2
        assert f'aria-label="{chart.title}"' in svg
    ids = [set(re.findall(r'\bid="([^"]+)"', svg)) for svg in svgs]
    assert not ids[0] & ids[1]  # two charts on one page share no id


@pytest.mark.e2e
def test_render_svg_is_the_same_in_a_new_process():
    script = ("import json,sys;from loadgen.report.charts import charts_for,render_svg;"
              "sys.stdout.write(render_svg(charts_for(json.load(open(sys.argv[1])))[0]))")
    run = [sys.executable, "-c", script, str(DATA / "charts-run.json")]
    outputs = [subprocess.run(run, capture_output=True, text=True, check=True, cwd=REPO).stdout for _ in range(2)]
    assert outputs[0] == outputs[1] == render_svg(charts_for(sample("run"))[0])


def test_write_pngs_writes_one_png_per_chart(tmp_path):
    charts = charts_for(sample("faults")) + charts_for(sample("sweep"))
    folder = tmp_path / "plots" / "new"
    paths = write_pngs(charts, folder)
    assert paths == [folder / "fault-matrix.png", folder / "sweep-latency-openai.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000
