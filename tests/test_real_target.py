"""`--target real`: what will be sent is said first; past the cap the run needs --yes.

Driven against the mock LLM through target.base_url (a gateway in front of the APIs), so
nothing here calls a real API.
"""

import pytest

from loadgen.budget import over_cap, plan_budget
from loadgen.plan import plan_run
from loadgen.profile_files import load_profile
from tests.conftest import get_json, run_cli

KEYS = {"OPENAI_API_KEY": "fake-openai-key-for-tests", "ANTHROPIC_API_KEY": "fake-anthropic-key-for-tests"}


def real(**data):
    return load_profile(None, {"target": {"kind": "real"}, "workers": 1, **data})


def test_calls_are_counted_per_provider_and_applicable_arm():
    # Per arm: 20 measured, and in each of its 4 replica processes 3 warm-up + 1 priming call;
    # anthropic-native only for anthropic.
    profile = real(load={"kind": "constant", "rate": 10}, duration="2s", warmup_operations=3,
                   tracing={"arms": ["baseline", "otel", "anthropic-native"]})
    budget = plan_budget(plan_run(profile, cores=2))
    per_arm = 20 + 4 * (3 + 1)
    assert budget.per_provider == {"openai": 2 * per_arm, "anthropic": 3 * per_arm}
    assert budget.calls == 5 * per_arm
    assert budget.input_tokens > 0 and budget.output_tokens_max >= budget.calls
    assert over_cap(budget, profile) is None


def test_the_cap_and_an_unbounded_closed_loop_need_confirmation():
    assert "exceed target.confirm_above_calls = 100" in over_cap(
        plan_budget(plan_run(real(operations=200, target={"kind": "real", "confirm_above_calls": 100}), 2)),
        real(target={"kind": "real", "confirm_above_calls": 100}))
    timed = real(load={"kind": "sequential"}, duration="30s")
    budget = plan_budget(plan_run(timed, 2))
    assert budget.calls is None and "cannot be bounded" in over_cap(budget, timed)
    tokens = real(operations=50, target={"kind": "real", "confirm_above_tokens": 10})
    assert "target.confirm_above_tokens = 10" in over_cap(plan_budget(plan_run(tokens, 2)), tokens)


@pytest.mark.e2e
def test_over_the_cap_refuses_without_yes_and_sends_nothing(mock_server):
    done = run_cli("run", "--arms", "baseline", "--target", "real", "--base-url", mock_server + "/v1", "--provider", "openai",
                   "--rate", "50", "--duration", "30s", "--quiet", env=KEYS)
    assert done.returncode == 2, done.stderr
    assert "planned calls exceed target.confirm_above_calls = 1,000; pass --yes" in done.stderr
    assert "Traceback" not in done.stderr
    assert get_json(mock_server + "/_mock/stats")["requests"] == 0


@pytest.mark.e2e
def test_within_the_cap_it_says_what_it_sends_then_sends_exactly_that(mock_server):
    done = run_cli("run", "--arms", "baseline", "--target", "real", "--base-url", mock_server + "/v1", "--provider", "both",
                   "--rate", "20", "--operations", "10", "--warmup-operations", "2", "--workers", "1",
                   "--quiet", env=KEYS)
    assert done.returncode in (0, 3), done.stderr
    assert "this run plans 26 calls (openai 13, anthropic 13)" in done.stderr
    assert get_json(mock_server + "/_mock/stats")["requests"] == 26
    assert KEYS["OPENAI_API_KEY"] not in done.stdout + done.stderr


@pytest.mark.e2e
def test_yes_sends_past_the_cap(mock_server, tmp_path):
    path = tmp_path / "real.toml"
    path.write_text(f'provider = "openai"\noperations = 10\nworkers = 1\n[load]\nkind = "constant"\nrate = 20\n'
                    f'[target]\nkind = "real"\nbase_url = "{mock_server}/v1"\nconfirm_above_calls = 5\n')
    refused = run_cli("run", str(path), "--quiet", env=KEYS)
    assert refused.returncode == 2 and "11 planned calls exceed target.confirm_above_calls = 5" in refused.stderr
    sent = run_cli("run", str(path), "--quiet", "--yes", env=KEYS)
    assert sent.returncode in (0, 3), sent.stderr
    assert get_json(mock_server + "/_mock/stats")["requests"] == 11


def test_a_missing_key_is_named():
    done = run_cli("run", "--target", "real", "--provider", "anthropic", "--operations", "5", "--quiet",
                   env={"ANTHROPIC_API_KEY": ""})
    assert done.returncode == 2
    assert "ANTHROPIC_API_KEY" in done.stderr and "Traceback" not in done.stderr


def test_several_modes_add_up():
    both = real(load={"kind": "sequential"}, modes=[{"kind": "constant", "rate": 10}], operations=10,
                warmup_operations=0)
    assert plan_budget(plan_run(both, 2)).calls == 2 * 2 * 11  # two modes × two providers × (10 + priming)
