"""The langsmith arm (loadgen.tracers.langsmith): its pipeline accounts for every span; its run end to end is in
tests/test_tracing_e2e.py."""

import pytest

from tests.arm_checks import one_root_through


def test_the_arm_exports_to_the_collector_and_counts_every_span():
    pytest.importorskip("langsmith")
    from loadgen.tracers.langsmith import LangSmithArm

    snapshot, figures = one_root_through(lambda settings: LangSmithArm(settings, "openai"))
    assert snapshot["started"] == snapshot["ended"] == snapshot["exported"] == 1
    assert figures["spans_received"] == figures["roots"] == 1
