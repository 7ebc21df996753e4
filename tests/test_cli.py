"""The command line: exit codes, one-line errors, the JSON contract — through real processes."""

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, free_port, get_json, run_cli

RUN_KEYS = {"provider", "arm", "mode", "operations_sent", "achieved_rate_rps", "latency_ms", "service_time_ms",
            "dispatch_lag_ms", "ttft_ms", "itl_ms", "errors", "histograms"}
PCT_KEYS = {"count", "mean", "p50", "p90", "p99", "p99_9", "max"}


def test_bad_profile_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[load]\nkind = 'constant'\nrte = 3\n")
    done = run_cli("run", str(bad))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert str(bad) in done.stderr and "load.rte" in done.stderr


def test_conflicting_flags_exit_2():
    done = run_cli("run", "--duration", "5s", "--operations", "10")
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_missing_key_for_real_target_exit_2():
    env = {k: "" for k in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
    done = run_cli("run", "--target", "real", "--provider", "openai", env=env)
    assert done.returncode == 2 and "OPENAI_API_KEY" in done.stderr and "Traceback" not in done.stderr


def test_unreachable_target_exit_4():
    url = f"http://127.0.0.1:{free_port()}/v1"
    done = run_cli("run", "--arms", "baseline", "--base-url", url, "--operations", "3")
    assert done.returncode == 4
    assert url in done.stderr and "Traceback" not in done.stderr


def test_prompts_determinism_command():
    done = run_cli("prompts", "--test-determinism", "--operations", "300")
    assert done.returncode == 0 and "deterministic across processes" in done.stdout


@pytest.mark.e2e
@pytest.mark.parametrize("stream", ["--no-stream", "--stream"])
def test_embedded_run_both_providers(tmp_path, stream):
    out = tmp_path / "r.json"
    done = run_cli("run", "profiles/quickstart.toml", "--arms", "baseline", "--duration", "2s", "--rate", "20", stream,
                   "--max-tokens", "16", "--warmup-operations", "4", "--export-json", str(out), "--quiet")
    doc = json.loads(out.read_text())
    # On a busy CI machine one late wake-up can break the lag rule on 40 calls; nothing
    # else may go wrong.
    assert done.returncode in (0, 3), done.stdout + done.stderr
    assert {r["rule"] for r in doc["invalid_reasons"]} <= {"dispatch_lag"}
    assert doc["schema_version"] and doc["valid"] is (done.returncode == 0)
    assert [r["provider"] for r in doc["runs"]] == ["openai", "anthropic"]
    for run in doc["runs"]:
        assert RUN_KEYS <= set(run)
        assert run["operations_sent"] == 40 and run["errors"] == {}
        assert run["achieved_rate_rps"] == pytest.approx(20, rel=0.02)
        for key in ("latency_ms", "service_time_ms", "dispatch_lag_ms", "ttft_ms", "itl_ms"):
            assert PCT_KEYS <= set(run[key])
        assert run["latency_ms"]["count"] == 40
        # One timeline per call: each part measured on every call, and their means add up
        # to the latency's (to HDR's 3 significant digits).
        parts = ("dispatch_lag_ms", "before_wire_ms", "wire_ms", "after_response_ms")
        assert [run[key]["count"] for key in parts] == [40] * 4
        assert sum(run[key]["mean"] for key in parts) == pytest.approx(run["latency_ms"]["mean"], rel=0.005)
        if stream == "--stream":
            # The mock's TTFT is 50 ms: the first text delta, not the role-only frame.
            assert run["ttft_ms"]["count"] == 40 and run["ttft_ms"]["p50"] >= 45
            assert run["itl_ms"]["count"] > 0
        else:
            assert run["ttft_ms"]["count"] == 0
    assert "summary" in done.stdout or "loadgen summary" in done.stdout


@pytest.mark.e2e
def test_base_url_target_counts_at_the_server(mock_server, tmp_path):
    get_json(mock_server + "/_mock/reset", "POST", {})
    out = tmp_path / "r.json"
    done = run_cli("run", "--arms", "baseline", "--base-url", mock_server + "/v1", "--provider", "both", "--rate", "50",
                   "--operations", "60", "--warmup-operations", "0", "--export-json", str(out), "--quiet")
    # Validity is not the subject here (a one-off hiccup on a busy CI machine can break
    # the lag rule on 60 calls); the counts at the server are.
    assert done.returncode in (0, 3), done.stderr
    stats = get_json(mock_server + "/_mock/stats")
    # 60 measured calls plus the one priming call each worker makes before its clock starts
    assert stats["by_api"] == {"openai": 61, "anthropic": 61}


@pytest.mark.e2e
def test_far_too_high_rate_is_invalid_exit_3(tmp_path):
    out = tmp_path / "r.json"
    done = run_cli("run", "--arms", "baseline", "--provider", "openai", "--rate", "5000", "--duration", "2s",
                   "--export-json", str(out), "--quiet")
    assert done.returncode == 3, done.stderr
    doc = json.loads(out.read_text())
    assert doc["valid"] is False
    assert {r["rule"] for r in doc["invalid_reasons"]} & {"send_rate", "dispatch_lag", "worker_cpu"}
    assert "INVALID" in done.stdout


@pytest.mark.e2e
def test_interrupt_writes_results_and_exits_130(tmp_path):
    out = tmp_path / "r.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadgen.cli", "run", "--arms", "baseline", "--provider", "openai", "--rate", "20", "--duration", "60s",
         "--export-json", str(out), "--quiet"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(6)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    doc = json.loads(out.read_text())
    assert doc["interrupted"] is True
    assert doc["runs"][0]["operations_sent"] > 20
    assert "Traceback" not in stderr


@pytest.mark.e2e
def test_secrets_never_reach_the_json(tmp_path):
    out = tmp_path / "r.json"
    secret = "sk-loadgen-test-secret-0123456789"
    done = run_cli("run", "--arms", "baseline", "--provider", "openai", "--operations", "5", "--rate", "10", "--export-json", str(out),
                   "--quiet", env={"OPENAI_API_KEY": secret})
    assert done.returncode == 0, done.stderr
    assert secret not in out.read_text() and secret not in done.stdout + done.stderr


def test_validate_only_names_the_unreachable_target_exit_4():
    url = f"http://127.0.0.1:{free_port()}/v1"
    done = run_cli("run", "--validate-only", "--base-url", url)
    assert done.returncode == 4 and url in done.stdout and "FAIL" in done.stdout


@pytest.mark.e2e
def test_validate_only_starts_the_embedded_mock_and_collector():
    done = run_cli("run", "--validate-only", "--arms", "baseline,otel")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "embedded mock LLM started" in done.stdout and "embedded collector started" in done.stdout


@pytest.mark.e2e
def test_connections_one_call_per_provider_and_one_export_per_arm():
    done = run_cli("run", "--test-connections", "--arms", "baseline,otel")
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("openai/baseline", "openai/otel", "anthropic/baseline", "anthropic/otel"):
        assert f"ok   {name}" in done.stdout
    assert "spans received by the collector" in done.stdout


@pytest.mark.e2e
def test_modes_combine_into_rows_of_their_own(tmp_path):
    out = tmp_path / "r.json"
    # The rows are the subject, not the CI: two replicas per arm (not 4) and short replies
    # (a closed loop waits out each one).
    done = run_cli("run", "--provider", "openai", "--sequential", "--concurrency", "2", "--rate", "20",
                   "--operations", "10", "--arms", "baseline,calibration", "--replicas", "2", "--max-tokens", "8",
                   "--quiet", "--export-json", str(out))
    assert done.returncode in (0, 3), done.stderr
    rows = [(row["arm"], row["mode"]) for row in json.loads(out.read_text())["north_star_metrics"]]
    assert rows == [(arm, mode) for mode in ("sequential", "concurrency 2", "rate 20/s constant")
                    for arm in ("baseline", "calibration")]
