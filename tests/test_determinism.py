"""`--test-determinism` hashes the profile it is given: its schedule, its prompts, every setting."""

from io import StringIO

import pytest
from rich.console import Console

from loadgen.determinism import check_determinism, digests
from loadgen.profile import Profile
from loadgen.prompts import profile_prompt
from loadgen.runner import Runner
from tests.conftest import run_cli

BASE = {"seed": 3, "operations": 200, "load": {"kind": "constant", "rate": 100}, "span_size_mode": "mixed"}


def _digests(**changes) -> dict[str, str]:
    """The digests of BASE with some keys changed (one load model)."""
    (entry,) = digests(Profile(**{**BASE, **changes}))
    return entry["digests"]


def test_the_same_profile_twice_gives_the_same_digests():
    assert _digests() == _digests()


@pytest.mark.parametrize("change, what_changes", [
    # a faster rate moves every offset after the first
    ({"load": {"kind": "constant", "rate": 150}}, {"schedule"}),
    # the same rate drawn as Poisson arrivals: other offsets
    ({"load": {"kind": "poisson", "rate": 100}}, {"schedule"}),
    # more conversations: longer message lists in both providers' bodies
    ({"conversation_share": 0.9}, {"openai", "anthropic", "content"}),
    # a cap below every drawn output length: other max_tokens in every body
    ({"max_tokens": 20}, {"openai", "anthropic", "content"}),
    # shorter conversations
    ({"max_turns": 2, "conversation_share": 0.5}, {"openai", "anthropic", "content"}),
    ({"span_size_mode": "large"}, {"openai", "anthropic", "content"}),
    # a model name is part of each provider's body, not of the neutral content
    ({"models": {"openai": "gpt-x"}}, {"openai"}),
    # warm-up calls add offsets before 0 and prompts of their own
    ({"warmup_operations": 5}, {"openai", "anthropic", "content", "schedule"}),
    # the seed draws other prompts (the constant schedule does not depend on it, but it is hashed)
    ({"seed": 4}, {"openai", "anthropic", "content", "schedule"}),
])
def test_each_setting_changes_the_digests_it_shapes(change, what_changes):
    base, changed = _digests(), _digests(**change)
    assert {key for key in base if base[key] != changed[key]} == what_changes


def test_closed_loop_hashes_users_and_budget():
    one = _digests(load={"kind": "concurrency", "users": 4})
    assert one["schedule"] != _digests(load={"kind": "concurrency", "users": 8})["schedule"]
    assert one["schedule"] != _digests(load={"kind": "sequential"})["schedule"]
    assert one["openai"] == _digests()["openai"]  # prompts depend on op_id, not on the load


def test_every_load_model_is_hashed_with_its_own_schedule():
    profile = Profile(**BASE, modes=[{"kind": "poisson", "rate": 100}, {"kind": "sequential"}])
    entries = digests(profile)
    assert [entry["mode"] for entry in entries] == ["rate 100/s constant", "rate 100/s poisson", "sequential"]
    assert len({entry["digests"]["schedule"] for entry in entries}) == 3
    # A changed second model changes its own entry only.
    faster = digests(Profile(**BASE, modes=[{"kind": "poisson", "rate": 120}, {"kind": "sequential"}]))
    assert [a == b for a, b in zip(entries, faster)] == [True, False, True]


def test_long_runs_are_hashed_up_to_the_cap():
    # 100/s for an hour plans 360,000 operations; 500 are hashed, and the entry says so.
    (entry,) = digests(Profile(**{**BASE, "operations": None, "duration": "1h"}), limit=500)
    assert (entry["planned"], entry["hashed"]) == (360_000, 500)
    (short,) = digests(Profile(**BASE), limit=500)
    assert (short["planned"], short["hashed"]) == (200, 200)


def test_a_soak_is_hashed_from_its_streamed_schedule():
    soak = Profile(**{**BASE, "operations": None, "duration": "2h", "soak": {"window": "60s"}})
    (entry,) = digests(soak, limit=300)
    assert (entry["planned"], entry["hashed"]) == (None, 300)
    # The streamed schedule's first offsets are the ones the whole schedule starts with.
    (whole,) = digests(Profile(**{**BASE, "operations": 300}), limit=300)
    assert entry["digests"]["schedule"] == whole["digests"]["schedule"]


def test_the_runner_sends_the_prompts_that_are_hashed():
    profile = Profile(**BASE, conversation_share=0.7, max_tokens=30, max_turns=3)
    runner = Runner(profile, provider=None)
    for op_id in (0, 7, 199):
        assert runner.prompt(op_id, warmup=False) == profile_prompt(profile, op_id)
        assert runner.prompt(op_id, warmup=True) == profile_prompt(profile, op_id, warmup=True)


def test_two_fresh_processes_agree():
    out = StringIO()
    profile = Profile(**BASE, modes=[{"kind": "poisson", "rate": 50}])
    assert check_determinism(profile, Console(file=out, width=200)) == 0
    assert "2 load models, seed 3, span sizes mixed: deterministic across processes" in out.getvalue()


def test_run_test_determinism_through_the_cli_hashes_the_profile_and_sends_nothing():
    done = run_cli("run", "--test-determinism", "--operations", "50", "--seed", "7", "--span-size-mode", "large",
                   "--rate", "25", "--arrival", "poisson")
    assert done.returncode == 0, done.stderr
    assert "rate 25/s poisson: all 50 operations" in done.stdout
    assert "1 load model, seed 7, span sizes large: deterministic across processes" in done.stdout
