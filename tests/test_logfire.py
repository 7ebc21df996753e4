"""The logfire arm (loadgen.tracers.logfire): its batch settings and its accounting; its run end to end is in
tests/test_tracing_e2e.py."""

import pytest

from loadgen.settings import TracingSettings
from tests.arm_checks import one_root_through


def test_the_profiles_batch_settings_reach_logfire_through_otels_variables():
    from loadgen.tracers.logfire import batch_environment

    settings = TracingSettings("http://c", "r", max_queue_size=64, schedule_delay_ms=200,
                               max_export_batch_size=32, export_timeout_ms=1500)
    assert batch_environment(settings) == {
        "OTEL_BSP_MAX_QUEUE_SIZE": "64", "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "32", "OTEL_BSP_EXPORT_TIMEOUT": "1500",
    }


def test_the_arm_counts_every_span_through_logfires_own_pipeline(monkeypatch):
    pytest.importorskip("logfire")
    from loadgen.tracers.logfire import LogfireArm, batch_environment

    for name in batch_environment(TracingSettings("", "")):
        monkeypatch.setenv(name, "")  # the arm sets them; restored afterwards
    snapshot, figures = one_root_through(lambda settings: LogfireArm(settings, "openai"))
    assert snapshot["started"] == snapshot["ended"] == snapshot["exported"] == 1
    assert figures["spans_received"] == figures["roots"] == 1

