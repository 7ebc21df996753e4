"""The HoneyHive arm talks only to loopback, in JSON and in protobuf mode, and is accounted like the others.

Every loadgen process (orchestrator, harness, workers) is started with a sitecustomize
that records any connect() or name lookup that is not for loopback.
"""

import json
import textwrap

import pytest

from tests.conftest import run_cli

WATCH = textwrap.dedent('''
    import os, socket
    _LOG = os.environ["LOADGEN_NET_LOG"]
    _LOCAL = ("127.", "::1", "localhost", "0.0.0.0")

    def _note(what):
        with open(_LOG, "a") as handle:
            handle.write(what + "\\n")

    _connect = socket.socket.connect
    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else str(address)
        if self.family in (socket.AF_INET, socket.AF_INET6) and not str(host).startswith(_LOCAL):
            _note(f"connect {address}")
        return _connect(self, address)
    socket.socket.connect = connect

    _getaddrinfo = socket.getaddrinfo
    def getaddrinfo(host, *args, **kwargs):
        if host is not None and not str(host).startswith(_LOCAL):
            _note(f"lookup {host}")
        return _getaddrinfo(host, *args, **kwargs)
    socket.getaddrinfo = getaddrinfo
''')


@pytest.mark.e2e
@pytest.mark.parametrize("protocol", ["http/json", "http/protobuf"])
def test_honeyhive_stays_on_loopback(tmp_path, protocol):
    (tmp_path / "sitecustomize.py").write_text(WATCH)
    log = tmp_path / "net.log"
    out = tmp_path / "r.json"
    done = run_cli("run", "--provider", "openai", "--arms", "honeyhive", "--rate", "10", "--operations", "10",
                   "--warmup-operations", "0", "--max-tokens", "8", "--schedule-delay-ms", "200",
                   "--export-json", str(out), "--quiet",
                   env={"PYTHONPATH": str(tmp_path), "LOADGEN_NET_LOG": str(log), "HH_OTLP_PROTOCOL": protocol,
                        "HH_API_KEY": "", "HH_PROJECT": ""})
    assert done.returncode in (0, 3), done.stderr
    assert not log.exists() or log.read_text() == "", log.read_text()
    run = json.loads(out.read_text())["runs"][0]
    spans = run["spans"]
    assert spans["received"] == spans["ended"] == spans["exported"] > 0
    assert spans["unaccounted"] == 0
    assert run["trace_coverage_percent"] == 100.0
