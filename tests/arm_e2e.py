"""One vendor arm end to end against the baseline on both providers: every span accounted for.

Shared by the e2e tests of the arms that run in environments of their own (lmnr,
langsmith, mlflow). Until loadgen builds arm environments (loadgen/envs.py), such an arm
can run only where its package is installed in this interpreter; otherwise it is skipped.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

import loadgen

from tests.conftest import run_cli


def skip_without(arm: str, module: str) -> None:
    builds_envs = (Path(loadgen.__file__).parent / "envs.py").exists()  # this loadgen's, not an installed one's
    if not builds_envs and importlib.util.find_spec(module) is None:
        pytest.skip(f"the {arm} arm needs its own environment (loadgen.envs) or {module} installed here")


def run_against_the_baseline(tmp_path, arm: str, *extra: str) -> dict:
    """`loadgen run --arms baseline,<arm> --provider both`: the arm's run per provider, checked."""
    out = tmp_path / "r.json"
    done = run_cli("run", "--provider", "both", "--arms", f"baseline,{arm}", "--rate", "20", "--duration", "2s",
                   "--warmup-operations", "2", "--max-tokens", "16", "--schedule-delay-ms", "200",
                   "--export-json", str(out), "--quiet", *extra, timeout=600)
    assert done.returncode in (0, 3), done.stderr
    runs = {(r["provider"], r["arm"]): r for r in json.loads(out.read_text())["runs"]}
    assert set(runs) == {(p, a) for p in ("openai", "anthropic") for a in ("baseline", arm)}
    for provider in ("openai", "anthropic"):
        run = runs[(provider, arm)]
        spans = run["spans"]
        assert spans["unaccounted"] == 0 and spans["duplicates"] == 0
        assert spans["received"] == spans["exported"] == spans["ended"] > 0
        assert sum(spans["dropped"].values()) == 0
        assert run["trace_coverage_percent"] >= 99.0
        assert run["success_rate_percent"] == 100.0
    return runs
