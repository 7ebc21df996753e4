"""Checks shared by the arms that run in environments of their own (tests/test_<arm>.py).

`one_root_through` builds the arm against an embedded collector and sends one root span;
`check_arm_end_to_end` runs `loadgen run --arms baseline,<arm> --provider both` (environments
built by loadgen.envs), then for each provider's row of the arm: every span ended was received, none is
unaccounted, and the operations are covered.
"""

import json
from pathlib import Path

import pytest

import loadgen
from loadgen.settings import TracingSettings
from loadgen.span_names import OP_ID, ROOT_SPAN
from tests.conftest import run_cli

# Looked for beside this checkout's package: an editable install elsewhere can make
# find_spec("loadgen.envs") answer from another tree.
needs_arm_environments = pytest.mark.skipif(not (Path(loadgen.__file__).parent / "envs.py").exists(),
                                            reason="arm environments (loadgen.envs) not on this branch yet")


def check_arm_end_to_end(tmp_path, arm: str, *flags: str) -> list[dict]:
    out = tmp_path / "r.json"
    done = run_cli("run", "--provider", "both", "--arms", f"baseline,{arm}", "--rate", "20", "--operations", "40",
                   "--warmup-operations", "2", "--max-tokens", "8", "--schedule-delay-ms", "200",
                   "--export-json", str(out), "--quiet", *flags, timeout=600)
    assert done.returncode in (0, 3), done.stderr  # 3: the run is invalid on a busy machine, not the arm
    runs = [run for run in json.loads(out.read_text())["runs"] if run["arm"] == arm]
    assert sorted(run["provider"] for run in runs) == ["anthropic", "openai"]
    for run in runs:
        spans = run["spans"]
        assert spans["unaccounted"] == 0, (run["provider"], spans)
        assert spans["received"] == spans["ended"] == spans["exported"] > 0, (run["provider"], spans)
        assert run["trace_coverage_percent"] >= 99.0, run["provider"]
    return runs


def one_root_through(build) -> tuple[dict, dict]:
    """The arm `build(settings)` ends one root span: its accounting snapshot and the collector's figures."""
    from loadgen.harness import collector_figures, embedded_collector
    from loadgen.profile import Profile

    with embedded_collector(Profile()) as url:
        arm = build(TracingSettings(url, "r1", schedule_delay_ms=50))
        with arm.tracer.start_as_current_span(ROOT_SPAN, attributes={OP_ID: 0}):
            pass
        snapshot = arm.shutdown()
        return snapshot, collector_figures(url, "r1")
