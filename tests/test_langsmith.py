"""The langsmith arm end to end (its logic is LangSmith's; loadgen's part is the provider and the flush order)."""

import pytest


@pytest.mark.e2e
def test_the_langsmith_arm_against_the_baseline_on_both_providers(tmp_path):
    from tests.arm_e2e import run_against_the_baseline, skip_without

    skip_without("langsmith", "langsmith")
    runs = run_against_the_baseline(tmp_path, "langsmith")
    assert all(runs[(p, "langsmith")]["attribute_completeness_percent"] == 100.0 for p in ("openai", "anthropic"))
