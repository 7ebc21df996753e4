"""Tracer arms end to end: spans reach the embedded collector and every one is accounted for."""

import json

import pytest

from tests.conftest import run_cli


@pytest.mark.e2e
def test_otel_arm_conserves_spans_and_covers_every_operation(tmp_path):
    out = tmp_path / "r.json"
    done = run_cli("run", "--provider", "both", "--arms", "baseline,otel", "--rate", "20", "--duration", "2s",
                   "--warmup-operations", "2", "--max-tokens", "16", "--schedule-delay-ms", "200",
                   "--replicas", "2", "--export-json", str(out), "--quiet")
    assert done.returncode in (0, 3), done.stderr
    doc = json.loads(out.read_text())
    runs = {(r["provider"], r["arm"]): r for r in doc["runs"]}
    assert set(runs) == {("openai", "baseline"), ("openai", "otel"), ("anthropic", "baseline"), ("anthropic", "otel")}
    assert runs[("openai", "baseline")].get("spans") is None
    for provider in ("openai", "anthropic"):
        run = runs[(provider, "otel")]
        spans = run["spans"]
        # 40 measured calls, 2 warm-up calls and 1 priming call in each worker process (two
        # replicas take the blocks in turn), each a root span and an LLM span
        assert run["warmup_operations"] == 2 * run["workers"]
        assert spans["ended"] == 2 * (40 + run["warmup_operations"] + run["workers"])
        assert spans["received"] == spans["exported"] == spans["ended"]
        assert spans["unaccounted"] == 0 and spans["duplicates"] == 0
        assert sum(spans["dropped"].values()) == 0
        assert run["trace_coverage_percent"] == 100.0
        assert run["attribute_completeness_percent"] == 100.0 and run["missing_attributes"] == {}
        assert run["export_latency_ms"]["count"] == spans["exported"]
        assert run["export_bytes_per_operation"] > 100


RECEIVER = """
import gzip, http.server, json, sys
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
seen = set()
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                seen.update(span.span_id for span in scope.spans)
        self.send_response(200); self.send_header("content-type", "application/x-protobuf"); self.end_headers()
    def do_GET(self):
        data = json.dumps({"unique_spans": len(seen)}).encode() if self.path == "/count" else b""
        self.send_response(200 if data else 404); self.end_headers(); self.wfile.write(data)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def _wait_until_listening(port: int, within_s: float = 20.0) -> None:
    """Return once something accepts connections on the loopback port (not a fixed second)."""
    import socket
    import time

    deadline = time.monotonic() + within_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.e2e
@pytest.mark.parametrize("arm", ["otel", "openinference", "traceloop", "openlit", "langfuse", "logfire",
                                 "lmnr", "langsmith", "mlflow"])
def test_another_receiver_counts_what_loadgen_reports_exported(tmp_path, arm):
    # A receiver written independently of loadgen's collector (protobuf only, no loadgen
    # figures): its unique span count must equal loadgen's `exported`, and the figures
    # only our collector can give are unmeasured, not guessed.
    import subprocess
    import sys
    import urllib.request

    from tests.conftest import free_port

    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    try:
        _wait_until_listening(port)
        out = tmp_path / "r.json"
        done = run_cli("run", "--provider", "openai", "--arms", arm, "--rate", "20", "--operations", "40",
                       "--collector-url", f"http://127.0.0.1:{port}", "--schedule-delay-ms", "100",
                       "--export-json", str(out), "--quiet")
        assert done.returncode in (0, 3), done.stderr
        run = json.loads(out.read_text())["runs"][0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/count", timeout=10) as response:
            counted = json.loads(response.read())["unique_spans"]
        assert counted == run["spans"]["exported"] == run["spans"]["ended"] > 80
        assert run["spans"]["received"] is None and run["spans"]["unaccounted"] is None
        assert run["trace_coverage_percent"] is None and run["attribute_completeness_percent"] is None
        assert "unmeasured" in done.stdout
    finally:
        server.kill()


@pytest.mark.e2e
def test_every_arm_reaches_the_collector_with_nothing_unaccounted(tmp_path):
    out = tmp_path / "r.json"
    # Two replicas of each arm, two blocks each: still several processes per arm, each
    # running more than one block. 'auto' gives 4 replicas and 10 blocks: 44 processes
    # starting on two cores were most of this test's time.
    done = run_cli("run", "--provider", "both", "--arms",
                   "baseline,otel,openinference,openllmetry,honeyhive,anthropic-native",
                   "--rate", "10", "--duration", "1s", "--warmup-operations", "0", "--max-tokens", "8",
                   "--schedule-delay-ms", "200", "--replicas", "2", "--rounds", "4",
                   "--export-json", str(out), "--quiet", timeout=400)
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


@pytest.mark.e2e
@pytest.mark.parametrize("arm", ["traceloop", "openlit", "langfuse", "logfire", "lmnr", "langsmith", "mlflow"])
def test_a_vendor_exporter_arm_in_its_own_environment_loses_no_span(tmp_path, arm):
    # Each vendor builds its own OTLP exporter from its own endpoint setting; loadgen's
    # accounting sits around it, so every span it ends is received, none unaccounted.
    out = tmp_path / "r.json"
    # One process per arm and provider (the accounting is what is checked here, not the CI):
    # seven vendors' imports on two cores are most of this test's time.
    done = run_cli("run", "--provider", "both", "--arms", f"baseline,{arm}", "--rate", "10", "--duration", "1s",
                   "--warmup-operations", "0", "--max-tokens", "8", "--schedule-delay-ms", "200",
                   "--replicas", "1", "--rounds", "2", "--export-json", str(out), "--quiet", timeout=900)
    assert done.returncode in (0, 3), done.stderr
    runs = {(r["provider"], r["arm"]): r for r in json.loads(out.read_text())["runs"]}
    assert set(runs) == {(p, a) for p in ("openai", "anthropic") for a in ("baseline", arm)}
    for provider in ("openai", "anthropic"):
        run = runs[(provider, arm)]
        spans = run["spans"]
        assert spans["received"] == spans["exported"] == spans["ended"] > 0, provider
        assert spans["unaccounted"] == 0 and sum(spans["dropped"].values()) == 0, provider
        assert run["trace_coverage_percent"] >= 99.0, provider
