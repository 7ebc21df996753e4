"""loadgen compare on real runs: an A/A pair is within noise, a known regression is worse and fails the gate."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli

# Four replicas an arm: the overhead CI carries the difference between processes with 3 degrees of
# freedom or more (two replicas can leave it 1, and t(1) = 12.7 hides a held 2 ms).
RUN = ["run", "--provider", "openai", "--arms", "baseline,calibration", "--rate", "50", "--duration", "2s",
       "--warmup-operations", "10", "--replicas", "4", "--max-tokens", "16", "--quiet"]


def _run(tmp_path, name: str, calibrate_us: int) -> str:
    out = tmp_path / name
    done = run_cli(*RUN, "--calibrate-us", str(calibrate_us), "--export-json", str(out))
    assert out.exists(), done.stderr
    return str(out)


@pytest.mark.e2e
def test_an_aa_pair_is_within_noise_and_a_held_millisecond_is_worse(tmp_path):
    first, second = _run(tmp_path, "a1.json", 0), _run(tmp_path, "a2.json", 0)
    held = _run(tmp_path, "held.json", 2000)

    same = run_cli("compare", first, second, "--fail-on", "worse", "--export-json", str(tmp_path / "aa.json"))
    aa = json.loads((tmp_path / "aa.json").read_text())
    assert same.returncode == 0, same.stdout
    assert {row["verdict"] for row in aa["rows"]} <= {"within noise", "unmeasured"}
    assert aa["summary"]["within noise"] >= 5  # baseline throughput; the calibration arm's five figures

    worse = run_cli("compare", first, held, "--fail-on", "worse", "--export-json", str(tmp_path / "held-cmp.json"),
                    "--html", str(tmp_path / "compare.html"))
    assert worse.returncode == 5, worse.stdout + worse.stderr
    document = json.loads((tmp_path / "held-cmp.json").read_text())
    row = next(r for r in document["rows"] if r["arm"] == "calibration" and r["metric"] == "overhead_latency_ms")
    assert row["verdict"] == "worse"
    assert row["change"] == pytest.approx(2.0, abs=0.6)  # the known answer: 2 ms held before each call
    assert "calibration" in " ".join(document["gate"]["reasons"]) and "gate failed" in worse.stdout
    assert "chart-compare-overhead-latency-ms" in (tmp_path / "compare.html").read_text()
