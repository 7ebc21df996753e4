"""Arm environments: which arm runs where, paired with which baseline, and what a bad set says.

The unit tests read the plan and the requirement lists; the e2e tests (marked) resolve and
build real environments with uv from the package registry, cached between runs.
"""

import json
from importlib import metadata

import pytest

from loadgen.envs import EnvSpec, resolver_reason
from loadgen.plan import arm_plans
from loadgen.profile import ProfileError
from loadgen.profile_files import load_profile
from tests.conftest import run_cli

HONEYHIVE = ("honeyhive", "openinference-instrumentation-openai", "openinference-instrumentation-anthropic")


def rows(*arms: str, packages: dict | None = None) -> dict:
    profile = load_profile(None, {"provider": "openai", "tracing": {"arms": list(arms), "packages": packages or {}}})
    return {row.label: row for row in arm_plans(profile)}


def test_an_arm_at_a_version_gets_its_own_environment_with_its_package_pinned():
    plan = rows("baseline", "honeyhive@1.6.0", "honeyhive")
    assert plan["honeyhive@1.6.0"].env.packages == ("honeyhive==1.6.0", *HONEYHIVE[1:])
    assert plan["honeyhive@1.6.0"].env.pin_sdks  # the SDKs under test stay the main environment's
    assert plan["honeyhive"].env is None  # no version: loadgen's own environment
    assert plan["baseline"].env is None


@pytest.mark.parametrize("arms, pairs", [
    # every arm against the baseline; a second baseline against the first (A/A)
    (("baseline", "otel", "baseline"), {"baseline": None, "otel": "baseline", "baseline-2": "baseline"}),
    # an arm with a baseline of its own environment is paired with that one, which is a baseline itself
    (("baseline", "honeyhive@1.6.0", "baseline@honeyhive@1.6.0", "honeyhive@1.7.0"),
     {"baseline": None, "honeyhive@1.6.0": "baseline@honeyhive@1.6.0", "baseline@honeyhive@1.6.0": None,
      "honeyhive@1.7.0": "baseline"}),
])
def test_each_arm_is_paired_with_its_baseline(arms, pairs):
    assert {label: row.pairs_with for label, row in rows(*arms).items()} == pairs


def test_a_baseline_of_its_own_environment_shares_it_and_frees_the_sdks():
    plan = rows("baseline", "honeyhive@1.6.0", "baseline@honeyhive@1.6.0")
    mine, its_baseline = plan["honeyhive@1.6.0"].env, plan["baseline@honeyhive@1.6.0"].env
    assert mine == its_baseline and mine.key() == its_baseline.key()
    assert not mine.pin_sdks  # paired within its environment, so its SDK versions are its own


def test_packages_from_the_profile_replace_the_registrys():
    plan = rows("baseline", "honeyhive", packages={"honeyhive": ["honeyhive==1.7.0"]})
    assert plan["honeyhive"].env.packages == ("honeyhive==1.7.0",)


@pytest.mark.parametrize("tracing, problem", [
    ({"arms": ["baseline", "baseline@otel"]}, "names the environment of 'otel', which is not a tracing arm"),
    ({"arms": ["baseline@baseline"]}, "which is not a tracing arm"),
    ({"arms": ["otel@1.2"]}, "the otel arm has no package to pin a version of"),
    ({"arms": ["baseline"], "packages": {"otel": ["x"]}}, "tracing.packages.otel: not a tracing arm"),
])
def test_bad_entries_are_one_clear_error(tracing, problem):
    with pytest.raises(ProfileError, match=problem):
        load_profile(None, {"tracing": tracing})


def test_requirements_pin_the_sdks_under_test_or_leave_them_free():
    pinned = EnvSpec("x", ("tracer==1.0",)).requirements()
    assert f"openai=={metadata.version('openai')}" in pinned and f"anthropic=={metadata.version('anthropic')}" in pinned
    assert f"pydantic=={metadata.version('pydantic')}" in pinned  # the profile crosses into the worker
    free = EnvSpec("x", ("tracer==1.0",), pin_sdks=False).requirements()
    assert "openai" in free and not any(line.startswith("openai==") for line in free)
    assert EnvSpec("x", ("a",)).key() != EnvSpec("x", ("b",)).key() != EnvSpec("x", ("b",), pin_sdks=False).key()
    assert EnvSpec("x", ("a",)).key() == EnvSpec("y", ("a",)).key()  # same packages, same environment


def test_the_resolvers_reason_is_one_line():
    stderr = ("  × No solution found when resolving dependencies:\n"
              "  ╰─▶ Because openlit==1.34.43 depends on openai>=1.1.1,<2.0.0 and you require openai==3.57.0, we can\n"
              "      conclude that your requirements are unsatisfiable.\n"
              "\n  hint: something\n")
    assert resolver_reason(stderr) == ("Because openlit==1.34.43 depends on openai>=1.1.1,<2.0.0 and you require "
                                       "openai==3.57.0, we can conclude that your requirements are unsatisfiable")


@pytest.mark.e2e
def test_an_arm_whose_packages_conflict_with_the_pinned_sdks_is_refused():
    done = run_cli("run", "--provider", "openai", "--arms", "baseline,honeyhive", "--duration", "1s",
                   "--set", 'tracing.packages.honeyhive=["honeyhive==1.7.0", "openai<2"]', timeout=120)
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert "arm honeyhive: its packages conflict with the SDKs under test" in line
    assert "openai" in line and "add baseline@honeyhive" in line


@pytest.mark.e2e
def test_an_arm_whose_packages_do_not_exist_exits_2_naming_it():
    done = run_cli("run", "--provider", "openai", "--arms", "baseline,honeyhive", "--duration", "1s",
                   "--set", 'tracing.packages.honeyhive=["no-such-tracer-for-loadgen-tests"]', timeout=120)
    assert done.returncode == 2, done.stderr
    assert "arm honeyhive: its packages cannot be installed" in done.stderr
    assert "no-such-tracer-for-loadgen-tests" in done.stderr


@pytest.mark.e2e
def test_two_versions_of_one_tracer_run_side_by_side(tmp_path):
    # Built on first use (uv, from the package registry), reused from the cache afterwards.
    out = tmp_path / "r.json"
    # Two replicas per arm (not 4) and 2 s: each version's processes still start from its
    # own environment, and the overhead CI still has process pairs to be taken over.
    done = run_cli("run", "--provider", "openai", "--arms", "baseline,honeyhive@1.6.0,honeyhive@1.7.0",
                   "--rate", "20", "--duration", "2s", "--replicas", "2", "--export-json", str(out), timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = {run["arm"]: run for run in json.loads(out.read_text())["runs"]}
    assert set(runs) == {"baseline", "honeyhive@1.6.0", "honeyhive@1.7.0"}
    for version in ("1.6.0", "1.7.0"):
        run = runs[f"honeyhive@{version}"]
        assert run["tracer_version"] == version  # the worker imported that version, from its own environment
        assert run["paired_with"] == "baseline" and run["overhead_latency_ci95_ms"] is not None
        assert run["spans"]["unaccounted"] == 0 and run["trace_coverage_percent"] >= 99
    assert runs["baseline"]["tracer_version"] is None
