"""The house plan, checked (docs/architecture.md).

`lint-imports` (run by `make test`, contracts in pyproject.toml) checks the static imports.
These tests check what it cannot: what a fresh process really loads, since the
collector's use of opentelemetry-proto hides the OTel SDK from import-linter's view, and
that every module stays small enough to read in one sitting.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 400


def loaded_after(imports: list[str]) -> set[str]:
    """The modules a fresh interpreter holds after importing `imports`."""
    code = ("import json, sys\n" + "".join(f"import {name}\n" for name in imports)
            + "print(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return set(json.loads(done.stdout))


def under(modules: set[str], *packages: str) -> set[str]:
    return {m for m in modules if any(m == p or m.startswith(p + ".") for p in packages)}


@pytest.mark.parametrize("imports, forbidden", [
    # The harness processes (mock, collector) and the orchestrating process load no SDK,
    # no OTel SDK and nothing that runs inside a worker.
    (["loadgen.harness", "loadgen.mock_llm.server", "loadgen.collector.server"],
     ["openai", "anthropic", "opentelemetry.sdk", "honeyhive", "loadgen.worker", "loadgen.runner", "loadgen.tracers",
      "loadgen.providers", "loadgen.accounting"]),
    (["loadgen.orchestrator", "loadgen.fleet", "loadgen.plan"],
     ["openai", "anthropic", "opentelemetry.sdk", "honeyhive", "loadgen.worker", "loadgen.runner", "loadgen.tracers",
      "loadgen.providers"]),
    # The Ray engine's orchestrating side creates actors by class, and they start the worker by
    # name: loading it loads no SDK and nothing of a worker either.
    (["loadgen.ray_engine"],
     ["openai", "anthropic", "opentelemetry.sdk", "honeyhive", "loadgen.worker", "loadgen.runner", "loadgen.tracers",
      "loadgen.providers"]),
    # Ray is an optional extra: the command and the local engine never load it.
    (["loadgen.cli", "loadgen.run_command", "loadgen.orchestrator", "loadgen.fleet", "loadgen.worker"], ["ray"]),
    # A worker prints nothing: no console, no rich.
    (["loadgen.worker"], ["rich", "loadgen.console", "loadgen.console_tables", "loadgen.run_command"]),
])
def test_a_process_loads_only_its_side(imports, forbidden):
    assert under(loaded_after(imports), *forbidden) == set()


def test_the_check_above_can_see_a_forbidden_import():
    # The worker does load the SDKs: the same check, turned round, finds them.
    assert {"openai", "anthropic"} <= loaded_after(["loadgen.worker", "loadgen.providers.openai_chat",
                                                    "loadgen.providers.anthropic_messages"])


def test_no_module_is_over_400_lines():
    long = {str(path.relative_to(ROOT)): lines for path in sorted((ROOT / "loadgen").rglob("*.py"))
            if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}
