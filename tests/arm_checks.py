"""A check shared by the tests of the arms that run in environments of their own (tests/test_<arm>.py).

`one_root_through` builds the arm against an embedded collector, ends one root span, and
returns the arm's accounting snapshot and the collector's figures. (Their end-to-end runs
are in tests/test_tracing_e2e.py, with the other vendor-exporter arms.)
"""

from loadgen.settings import TracingSettings
from loadgen.span_names import OP_ID, ROOT_SPAN


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
