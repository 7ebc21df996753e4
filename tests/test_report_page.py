"""The HTML page, `loadgen report` and the output flags: escaping, no external reference, every chart
and table present, each document kind rendered; bad inputs exit 2 naming the file.

The charts come from a stand-in here (the chart module's own tests draw real ones): the page
is tested for what it does with any chart.
"""

import json
import re
import signal
import sys
import types
from html import escape
from pathlib import Path

import pytest
from click.testing import CliRunner

import loadgen.run_command
from loadgen.cli import main
from loadgen.errors import UserError
from loadgen.report import Chart, Table
from loadgen.report.outputs import default_path, write_outputs
from loadgen.report.page import html_page

DATA = Path(__file__).parent / "data" / "report"
SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="5" height="5"/></svg>'


def load(name: str) -> dict:
    return json.loads((DATA / f"page-{name}.json").read_text())


def stand_in_charts(document: dict) -> list[Chart]:
    """Two charts in two sections, whatever the document."""
    rows = [[row["arm"], row.get("overhead_latency_ms")] for row in document.get("north_star_metrics") or []]
    return [Chart("overhead-openai", "Overhead", "Overhead <openai>", "Mean Δ & CI.", Table(["arm", "ms"], rows),
                  draw=None),
            Chart("latency-openai", "Latency", "Latency", "Spectrum.", Table(["arm", "p99"], [["otel", 1.5]]),
                  draw=None)]


def page(document: dict) -> str:
    charts = stand_in_charts(document)
    return html_page(document, charts, {chart.id: SVG for chart in charts})


@pytest.fixture
def charts_module(monkeypatch):
    """The stand-in as `loadgen.report.charts`, for the code that imports it."""
    module = types.ModuleType("loadgen.report.charts")
    module.charts_for = stand_in_charts
    module.render_svg = lambda chart: SVG

    def write_pngs(charts, folder):
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / f"{chart.id}.png" for chart in charts]
        for path in paths:
            path.write_bytes(b"\x89PNG")
        return paths

    module.write_pngs = write_pngs
    monkeypatch.setitem(sys.modules, "loadgen.report.charts", module)
    return module


def test_strings_from_the_document_are_escaped():
    document = load("run")
    document["profile"]["name"] = "<script>alert(1)</script>"
    document["errors"] = ["worker <b>died</b> & left"]
    html = page(document)
    assert "<script>alert(1)" not in html and escape("<script>alert(1)</script>") in html
    assert "<b>died</b>" not in html and escape("worker <b>died</b> & left") in html
    assert "Overhead <openai>" not in html and "Overhead &lt;openai&gt;" in html
    assert html.count("<script>") == 1  # the page's own sorting script


@pytest.mark.parametrize("name", ["run", "soak", "sweep", "faults", "compare"])
def test_no_external_reference(name):
    document = load(name)
    html = page(document)
    links = re.findall(r"""\b(?:src|href)\s*=\s*["']?([^"'\s>]*)""", html)
    assert links and all(link.startswith("#") for link in links), "only in-page links"
    assert "url(" not in html and "@import" not in html
    # http:// only in namespaces, or inside the document's own text (a target's address)
    rest = re.sub(r'xmlns(:\w+)?="http://www\.w3\.org/[^"]*"', "", html)
    rest = rest.replace(escape(document.get("target") or ""), "")
    assert "http://" not in rest and "https://" not in rest


def test_every_chart_is_a_labelled_figure_with_its_table():
    document = load("run")
    html = page(document)
    for chart in stand_in_charts(document):
        figure = re.search(rf'<figure class="chart" id="chart-{chart.id}">(.*?)</figure>', html, re.S).group(1)
        assert f'role="img" aria-label="{escape(chart.title)}"' in figure
        assert f'<table class="figures" data-chart="{chart.id}">' in figure
        assert f"<figcaption><strong>{escape(chart.title)}</strong>" in figure
    assert html.index('id="section-charts-overhead"') < html.index('id="section-charts-latency"')


def test_north_star_rows_and_verdict_colours():
    document = load("run")
    html = page(document)
    table = re.search(r'<table class="sortable north-star".*?</table>', html, re.S).group(0)
    rows = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>", table)
    assert rows == [(r["provider"], r["arm"], escape(r["mode"])) for r in document["north_star_metrics"]]
    otel = next(r for r in document["summary"]["verdicts"]
                if r["arm"] == "otel" and r["check"] == "memory_overhead_percent")
    assert otel["verdict"] == "fail"
    assert re.search(rf'<td data-sort="{otel["value"]!r}" class="v-fail" title="fail: [^"]*">{otel["value"]}</td>', table)
    assert '<th scope="col">Overhead ms</th>' in table
    assert ">n/m</td>" in table  # the baseline has no overhead: unmeasured, not zero
    for recommendation in document["summary"]["recommendations"]:
        assert escape(recommendation["text"]) in html


@pytest.mark.parametrize("name, sections", [
    ("run", ["configuration", "north-star-metrics", "assessment", "spans"]),
    ("soak", ["configuration", "north-star-metrics", "soak-verdicts"]),
    ("sweep", ["configuration", "highest-sustainable-rate", "sweep-steps"]),
    ("faults", ["configuration", "fault-cells", "scenarios"]),
    ("compare", ["comparison", "gate"]),
])
def test_each_kind_renders_its_sections(name, sections):
    html = page(load(name))
    for section in sections:
        assert f'<section id="section-{section}">' in html
        assert f'<a href="#section-{section}">' in html


def test_fault_cells_with_verdicts_and_reasons():
    document = load("faults")
    html = page(document)
    warned = next(c for c in document["cells"] if c["verdict"] == "warn")
    assert 'class="v-warn"' in html and escape(warned["worst"]) in html


def test_the_page_is_deterministic():
    assert page(load("run")) == page(load("run"))


def test_write_outputs_writes_and_says_where(tmp_path, charts_module):
    said = []
    write_outputs(load("run"), html=str(tmp_path / "out" / "r.html"), plots=str(tmp_path / "plots"),
                  csv=str(tmp_path / "csv"), say=said.append)
    assert (tmp_path / "out" / "r.html").read_text() == page(load("run"))
    assert said == [f"report written to {tmp_path / 'out' / 'r.html'}", f"plots written to {tmp_path / 'plots'} "
                    f"(2 PNG files)", f"CSV tables written to {tmp_path / 'csv'} (3 files)"]
    assert not list((tmp_path / "out").glob(".r.html.*")), "no temporary file left"


def test_an_output_that_cannot_be_written_names_its_path(tmp_path, charts_module):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match=re.escape(str(blocker / "csv"))) as caught:
        write_outputs(load("run"), html=None, plots=None, csv=str(blocker / "csv"), say=print)
    assert caught.value.code == 2


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("{not json", "not JSON"),
    ('{"schema_version": "1.1", "tool": {"name": "k6"}}', "not a loadgen results document"),
    ("[1, 2]", "not a loadgen results document"),
])
def test_report_refuses_bad_input_naming_the_file(tmp_path, content, message):
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content)
    done = CliRunner().invoke(main, ["report", str(path), "--html", str(tmp_path / "r.html")])
    assert done.exit_code == 2 and str(path) in done.output and message in done.output
    assert done.exception is None or isinstance(done.exception, SystemExit)


def test_report_needs_an_output():
    done = CliRunner().invoke(main, ["report", str(DATA / "page-run.json")])
    assert done.exit_code == 2 and "--html" in done.output


def test_report_rebuilds_the_page(tmp_path, charts_module):
    done = CliRunner().invoke(main, ["report", str(DATA / "page-faults.json"), "--html", str(tmp_path / "p.html")])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "p.html").read_text() == page(load("faults"))


def test_a_bare_output_flag_goes_beside_the_results_json(tmp_path, charts_module):
    results = tmp_path / "nightly.json"
    results.write_text((DATA / "page-faults.json").read_text())
    done = CliRunner().invoke(main, ["report", str(results), "--html", "--csv"])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "nightly.html").read_text() == page(load("faults"))
    assert (tmp_path / "nightly-csv" / "fault_cells.csv").exists()
    assert default_path("plots", str(results)) == str(tmp_path / "nightly-plots")
    assert default_path("html", None) == "loadgen-report.html"


def test_the_page_never_replaces_a_file_that_is_not_a_page(tmp_path, charts_module):
    profile = tmp_path / "mine.toml"
    profile.write_text('name = "mine"\n')
    with pytest.raises(UserError, match="exists and is not an HTML page"):
        write_outputs(load("faults"), html=str(profile), plots=None, csv=None, say=print)
    assert profile.read_text() == 'name = "mine"\n'
    page_file = tmp_path / "old.html"
    page_file.write_text("<!DOCTYPE html>\n<html></html>")
    write_outputs(load("faults"), html=str(page_file), plots=None, csv=None, say=print)
    assert page_file.read_text() == page(load("faults"))


@pytest.mark.parametrize("command", ["run", "faults"])
def test_flags_win_over_the_profile_and_reach_write_outputs(tmp_path, monkeypatch, command):
    profile_file = tmp_path / "p.toml"
    # (schedule_delay_ms: the fault matrix refuses phases shorter than two of them)
    profile_file.write_text('[outputs]\nhtml = "from-profile.html"\ncsv = "csv-from-profile"\n'
                            '[tracing]\nschedule_delay_ms = 500\n')
    seen = {}

    def write(document, **outputs):
        seen.update(outputs)

    def command_stand_in(profile, **_):
        loadgen.run_command._export({"document": True}, profile, None, types.SimpleNamespace(print=print))
        return 0

    monkeypatch.setattr(loadgen.run_command, "write_outputs", write)
    monkeypatch.setattr(loadgen.run_command, f"{command}_command", command_stand_in)
    monkeypatch.setattr(signal, "signal", lambda *_: None)  # the command's handlers stay out of pytest
    done = CliRunner().invoke(main, [command, str(profile_file), "--html", "flag.html", "--plots", "plots-dir"])
    assert done.exit_code == 0, done.output
    assert {key: seen[key] for key in ("html", "plots", "csv")} == {
        "html": "flag.html", "plots": "plots-dir", "csv": "csv-from-profile"}
