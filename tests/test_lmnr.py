"""The lmnr arm's own logic: how a collector URL becomes Laminar's base URL and port."""

import pytest

from loadgen.tracers.lmnr import _split_collector_url


@pytest.mark.parametrize("url, expected", [
    ("http://127.0.0.1:4318", ("http://127.0.0.1", 4318)),  # the embedded collector's base URL
    ("http://127.0.0.1:4318/", ("http://127.0.0.1", 4318)),  # a trailing slash changes nothing
    ("http://localhost", ("http://localhost", 80)),  # no port: the scheme's
    ("https://collector.example", ("https://collector.example", 443)),
])
def test_a_collector_url_is_split_into_laminars_base_url_and_http_port(url, expected):
    assert _split_collector_url(url) == expected


@pytest.mark.e2e
def test_the_lmnr_arm_against_the_baseline_on_both_providers(tmp_path):
    from tests.arm_e2e import run_against_the_baseline, skip_without

    skip_without("lmnr", "lmnr")
    runs = run_against_the_baseline(tmp_path, "lmnr")
    assert all(runs[(p, "lmnr")]["attribute_completeness_percent"] == 100.0 for p in ("openai", "anthropic"))
