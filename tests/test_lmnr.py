"""The lmnr arm (loadgen.tracers.lmnr): how a collector URL becomes Laminar's base URL and port, and its
accounting; its run end to end is in tests/test_tracing_e2e.py."""

import pytest

from loadgen.tracers.lmnr import _split_collector_url
from tests.arm_checks import one_root_through


@pytest.mark.parametrize("url, expected", [
    ("http://127.0.0.1:4318", ("http://127.0.0.1", 4318)),  # the embedded collector's base URL
    ("http://127.0.0.1:4318/", ("http://127.0.0.1", 4318)),  # a trailing slash changes nothing
    ("http://localhost", ("http://localhost", 80)),  # no port: the scheme's
    ("https://collector.example", ("https://collector.example", 443)),
])
def test_a_collector_url_is_split_into_laminars_base_url_and_http_port(url, expected):
    assert _split_collector_url(url) == expected



def test_the_arm_exports_to_the_collector_and_counts_every_span():
    pytest.importorskip("lmnr")
    from loadgen.tracers.lmnr import LaminarArm

    snapshot, figures = one_root_through(lambda settings: LaminarArm(settings, "openai"))
    assert snapshot["started"] == snapshot["ended"] == snapshot["exported"] == 1
    assert figures["spans_received"] == figures["roots"] == 1
