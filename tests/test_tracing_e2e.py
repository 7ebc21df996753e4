"""Tracer arms end to end: spans reach the embedded collector and every one is accounted for."""

import json

import pytest

from tests.conftest import run_cli


@pytest.mark.e2e
def test_otel_arm_conserves_spans_and_covers_every_operation(tmp_path):
    out = tmp_path / "r.json"
    done = run_cli("run", "--provider", "both", "--arms", "baseline,otel", "--rate", "20", "--duration", "2s",
                   "--warmup-operations", "2", "--max-tokens", "16", "--schedule-delay-ms", "200",
                   "--export-json", str(out), "--quiet")
    assert done.returncode in (0, 3), done.stderr
    doc = json.loads(out.read_text())
    runs = {(r["provider"], r["arm"]): r for r in doc["runs"]}
    assert set(runs) == {("openai", "baseline"), ("openai", "otel"), ("anthropic", "baseline"), ("anthropic", "otel")}
    assert runs[("openai", "baseline")].get("spans") is None
    for provider in ("openai", "anthropic"):
        run = runs[(provider, "otel")]
        spans = run["spans"]
        # 40 measured + 2 warm-up + 1 priming calls, each a root span and an LLM span
        assert spans["ended"] == 2 * (40 + 2 + run["workers"])
        assert spans["received"] == spans["exported"] == spans["ended"]
        assert spans["unaccounted"] == 0 and spans["duplicates"] == 0
        assert sum(spans["dropped"].values()) == 0
        assert run["trace_coverage_percent"] == 100.0
        assert run["attribute_completeness_percent"] == 100.0 and run["missing_attributes"] == {}
        assert run["export_latency_ms"]["count"] == spans["exported"]
        assert run["export_bytes_per_operation"] > 100


@pytest.mark.e2e
def test_unmeasured_without_a_collector_that_reports(tmp_path):
    # Any OTLP receiver without loadgen's figures: conservation and fidelity are unmeasured, not guessed.
    from tests.conftest import free_port

    import subprocess
    import sys
    import time

    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", (
        "import http.server\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_POST(self):\n"
        "        self.rfile.read(int(self.headers['content-length'])); self.send_response(200); self.end_headers()\n"
        "    def do_GET(self):\n"
        "        self.send_response(404); self.end_headers()\n"
        "    def log_message(self, *a): pass\n"
        f"http.server.HTTPServer(('127.0.0.1', {port}), H).serve_forever()\n")])
    try:
        time.sleep(0.5)
        out = tmp_path / "r.json"
        done = run_cli("run", "--provider", "openai", "--arms", "otel", "--rate", "10", "--operations", "10",
                       "--collector-url", f"http://127.0.0.1:{port}", "--schedule-delay-ms", "100",
                       "--export-json", str(out), "--quiet")
        assert done.returncode in (0, 3), done.stderr
        run = json.loads(out.read_text())["runs"][0]
        assert run["spans"]["exported"] == run["spans"]["ended"] > 0
        assert run["spans"]["received"] is None and run["spans"]["unaccounted"] is None
        assert run["trace_coverage_percent"] is None and run["attribute_completeness_percent"] is None
        assert "unmeasured" in done.stdout
    finally:
        server.kill()


@pytest.mark.e2e
def test_every_arm_reaches_the_collector_with_nothing_unaccounted(tmp_path):
    out = tmp_path / "r.json"
    done = run_cli("run", "--provider", "both", "--arms",
                   "baseline,otel,openinference,openllmetry,honeyhive,anthropic-native",
                   "--rate", "10", "--duration", "1s", "--warmup-operations", "0", "--max-tokens", "8",
                   "--schedule-delay-ms", "200", "--export-json", str(out), "--quiet", timeout=400)
    assert done.returncode in (0, 3), done.stderr
    runs = {(r["provider"], r["arm"]): r for r in json.loads(out.read_text())["runs"]}
    expected = {(p, a) for p in ("openai", "anthropic")
                for a in ("baseline", "otel", "openinference", "openllmetry", "honeyhive")}
    assert set(runs) == expected | {("anthropic", "anthropic-native")}
    for (provider, arm), run in runs.items():
        if arm == "baseline":
            continue
        spans = run["spans"]
        assert spans["received"] == spans["ended"] > 0, (provider, arm)
        assert spans["unaccounted"] == 0 and sum(spans["dropped"].values()) == 0, (provider, arm)
        assert run["trace_coverage_percent"] == 100.0, (provider, arm)
        assert run["attribute_completeness_percent"] is not None, (provider, arm)
    assert "tracing pipelines" in done.stdout
