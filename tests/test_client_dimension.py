"""The client dimension (issue 16): the sync client in the profile, the plan, the command line, the rows and the schema.

Unit tests, no servers: the threads themselves are the worker's (loadgen/sync_runner.py).
"""

import math
from array import array
from dataclasses import fields

import click
import pytest
from click.testing import CliRunner

from loadgen.cli import main
from loadgen.cli_flags import overrides
from loadgen.document import build_document, validate_document
from loadgen.histograms import Recorder
from loadgen.limits import Validity
from loadgen.metrics import summarize_all, with_thread_bases
from loadgen.plan import WorkerSpec, mode_profiles, plan_run, pool_size, provider_settings, thread_bases
from loadgen.sync_threads import expected_latency, mean_output_tokens, thread_count
from loadgen.profile import ProfileError
from loadgen.profile_files import load_profile
from tests.test_metrics import worker


def profile(**data):
    return load_profile(None, {"provider": "openai", "tracing": {"arms": ["baseline", "otel"]}, **data})


# --- the profile ------------------------------------------------------------------------------


def test_clients_run_in_order_and_the_first_stands_for_the_list():
    both = profile(clients=["sync", "async"])
    assert both.run_clients == ("sync", "async") and both.client == "sync"
    assert profile().run_clients == ("async",) and profile(client="sync").run_clients == ("sync",)


@pytest.mark.parametrize("data, words", [
    ({"clients": ["async", "sync"], "client": "raw"}, "client = 'raw' cannot go with it"),  # raw has no tracers
    ({"clients": ["sync", "sync"]}, "lists sync twice"),
    ({"clients": []}, "clients"),  # an empty list runs nothing
    ({"clients": ["raw"]}, "clients"),  # raw is a client of its own, not in a list
    ({"threads": 0}, "threads is 'auto' or a number from 1 to 1024"),
    ({"threads": 1025}, "threads is 'auto' or a number from 1 to 1024"),
    ({"client": "sync", "load": {"kind": "concurrency", "users": 2000}}, "2000 users is more than 1024"),
])
def test_a_client_setting_that_cannot_run_is_refused_by_name(data, words):
    with pytest.raises(ProfileError, match=words.replace("(", r"\(").replace(")", r"\)")):
        profile(**data)


def test_threads_take_a_count_or_auto():
    assert profile(threads=1).threads == 1 and profile(threads=1024).threads == 1024
    assert profile().threads == "auto"
    # async users beyond 1024 stay allowed: only the sync client makes a thread of each
    assert profile(load={"kind": "concurrency", "users": 2000}).load.users == 2000


# --- the plan ---------------------------------------------------------------------------------


def test_two_clients_make_two_modes_each_with_its_label_client_major():
    modes = plan_run(profile(clients=["async", "sync"], modes=[{"kind": "sequential"}]), cores=2)
    assert [mode.mode for mode in modes] == ["rate 10/s constant async", "sequential async",
                                             "rate 10/s constant sync", "sequential sync"]
    assert [(mode.profile.client, mode.profile.clients) for mode in modes] == [("async", None)] * 2 + [("sync", None)] * 2


def test_a_plain_async_run_keeps_its_labels_and_a_sync_run_says_sync():
    assert [mode.mode for mode in plan_run(profile(), cores=2)] == ["rate 10/s constant"]
    assert [mode.mode for mode in plan_run(profile(client="sync", stream=True, load={"kind": "constant", "rate": 10,
                                                                                      "stream": True}), cores=2)] \
        == ["rate 10/s constant stream sync"]
    # one client in the list is that client alone: no ' async' to tell apart from anything
    assert [mode.mode for mode in plan_run(profile(clients=["async"]), cores=2)] == ["rate 10/s constant"]


def test_each_clients_arms_pair_with_that_clients_baseline():
    # Pairing is by (provider, mode, paired_with): each mode's label carries its client.
    modes = plan_run(profile(clients=["async", "sync"]), cores=2)
    for mode in modes:
        assert [(arm.label, arm.pairs_with) for arm in mode.arms] == [("baseline", None), ("otel", "baseline")]
    def run(arm: str, mode: str, latency_ms: int):
        return worker(arm=arm, mode=mode, latency_by_op=array("q", [latency_ms * 1_000_000] * 1000), blocks=_blocks())

    results = [run("baseline", modes[0].mode, 1), run("otel", modes[0].mode, 1),
               run("baseline", modes[1].mode, 5), run("otel", modes[1].mode, 6)]
    rows = {(row["mode"], row["arm"]): row for row in summarize_all(results, Validity())}
    assert rows[(modes[0].mode, "otel")]["overhead_latency_ms"] == 0.0  # 1 ms against the async 1 ms
    assert rows[(modes[1].mode, "otel")]["overhead_latency_ms"] == 1.0  # 6 ms against the sync 5 ms, not the async 1


def _blocks() -> list[dict]:
    return [{"index": i, "planned": 250, "plan_span_ns": 2_500_000_000, "sent": 250, "shed": 0, "first_sent_ns": 1,
             "last_sent_ns": 2, "first_op": 250 * i, "last_op": 250 * (i + 1)} for i in range(4)]


def test_the_embedded_mocks_latency_sizes_auto_threads():
    # small prompts: max_tokens uniform in 50..200, mean 125 → 125 chunks: 50 ms + 124 × 2 ms = 0.298 s
    sync = profile(client="sync", load={"kind": "constant", "rate": 100})
    assert mean_output_tokens(sync) == 125.0
    assert expected_latency(sync)[0] == pytest.approx(0.298)
    count, basis = thread_count(sync, shards=1)
    assert count == math.ceil(100 * (0.298 + 5)) == 530  # room for a 5 s stall on top
    assert basis.startswith("auto: 100 calls/s a worker × (0.298 s (the embedded mock's latency") and "= 530" in basis
    # two shards take half the rate each
    assert thread_count(sync, shards=2)[0] == math.ceil(50 * (0.298 + 5))
    # max_tokens caps the tokens the mock sends, so the latency
    assert mean_output_tokens(profile(max_tokens=100)) == pytest.approx(sum(min(n, 100) for n in range(50, 201)) / 151)


@pytest.mark.parametrize("data, count, words", [
    # a real target's latency is not known before the run: 1 s assumed, and said
    ({"target": {"kind": "url", "base_url": "http://127.0.0.1:9"}, "load": {"kind": "constant", "rate": 10}},
     60, "assumed"),
    # 0.5/s × (0.298 s + 5 s) rounds up to 3: raised to the floor of 4
    ({"load": {"kind": "constant", "rate": 0.5}}, 4, "at least 4"),
    # never more threads than calls allowed in flight
    ({"load": {"kind": "constant", "rate": 100}, "max_in_flight": 30}, 30, "capped at 30"),
    # a ramp is sized for its peak
    ({"load": {"kind": "ramp", "rate": 10, "rate_end": 100}}, 530, "100 calls/s"),
    ({"threads": 8}, 8, "8 threads (threads, --threads)"),
    # a closed loop: one thread per user, whatever threads says
    ({"load": {"kind": "concurrency", "users": 8}, "threads": 16}, 8, "one per user"),
    ({"load": {"kind": "sequential"}}, 1, "one call at a time"),
])
def test_thread_count_and_its_basis(data, count, words):
    got, basis = thread_count(profile(client="sync", **data), shards=1)
    assert got == count and words in basis


def test_the_sync_plan_carries_the_threads_and_a_connection_per_thread():
    sync = profile(client="sync", load={"kind": "concurrency", "users": 8}, operations=100)
    (mode,) = plan_run(sync, cores=2)
    assert [fleet.threads for fleet in mode.fleets] == [8] and mode.pool_size == 8
    assert provider_settings(mode.profile, "openai", None, "k", mode.fleets[0].threads).pool_size == 8
    assert thread_bases([mode]) == {("openai", "concurrency 8 sync"): mode.fleets[0].threads_basis}
    # connections, when given, still size the pool
    assert pool_size(profile(client="sync", connections=3), threads=8) == 3
    # the async plan has no threads, and its pool is as before
    (plain,) = plan_run(profile(load={"kind": "concurrency", "users": 8}, operations=100), cores=2)
    assert [fleet.threads for fleet in plain.fleets] == [None] and plain.pool_size == 8 and thread_bases([plain]) == {}
    assert {f.name: f.default for f in fields(WorkerSpec)}["threads"] is None


def test_shards_for_the_sync_client_follow_the_async_rate_per_worker():
    modes = plan_run(profile(clients=["async", "sync"], load={"kind": "constant", "rate": 150}), cores=4)
    assert [mode.fleets[0].shards for mode in modes] == [2, 2]


# --- the command line -------------------------------------------------------------------------


def flags(**given) -> dict:
    return overrides({"concurrency": None, "concurrent_threads": None, "client": None, "clients": None, **given})


def test_concurrent_threads_is_a_closed_loop_of_sync_threads_and_concurrency_stays_async_users():
    assert flags(concurrent_threads=8) == {"client": "sync", "clients": None,
                                           "load": {"kind": "concurrency", "users": 8}, "modes": []}
    assert flags(concurrency=8) == {"load": {"kind": "concurrency", "users": 8}, "modes": []}
    assert flags(concurrency=8, client="sync")["client"] == "sync"  # N users, each a thread
    assert flags(concurrent_threads=8, client="sync")["client"] == "sync"


def test_clients_and_threads_flags():
    assert flags(clients="async, sync") == {"clients": ["async", "sync"]}
    assert flags(threads="auto") == {"threads": "auto"} and flags(threads="16") == {"threads": 16}
    # a client on the command line wins over a file's clients
    assert flags(client="sync")["clients"] is None
    sync = load_profile(None, {"clients": ["async", "sync"], **flags(client="sync")})
    assert sync.run_clients == ("sync",)


@pytest.mark.parametrize("given, words", [
    ({"concurrent_threads": 8, "client": "async"}, "--client async"),
    ({"concurrent_threads": 8, "concurrency": 4}, "not both"),
    ({"concurrent_threads": 8, "clients": "async,sync"}, "--clients"),
    ({"clients": "async,raw"}, "raw: not a client"),
    ({"clients": "sync", "client": "sync"}, "--client or --clients"),
])
def test_flags_that_contradict_each_other_are_refused(given, words):
    with pytest.raises(click.UsageError, match=words):
        flags(**given)


def test_the_conflict_exits_2_naming_both_flags():
    done = CliRunner().invoke(main, ["run", "--concurrent-threads", "8", "--client", "async", "--validate-only"])
    assert done.exit_code == 2
    assert "--concurrent-threads" in done.output and "--client async" in done.output


# --- rows, document, schema -------------------------------------------------------------------


def _waits(ms: float) -> dict:
    """Histograms with a GIL wait of `ms` on each of 1,000 probe wake-ups."""
    probe = Recorder()
    for _ in range(1000):
        probe.record_ns(int(ms * 1_000_000))
    return worker().histograms | {"gil_wait": probe.encode()}


def sync_rows() -> list[dict]:
    mode = "concurrency 8 sync"
    results = [worker(arm="baseline", mode=mode, load_kind="concurrency", histograms=_waits(0.1)),
               worker(arm="otel", mode=mode, load_kind="concurrency", histograms=_waits(2.5))]
    for result in results:
        result.threads = 8  # WorkerResult.threads (the worker's pool); set here whether or not the field exists
        result.client = "sync"
    return with_thread_bases(summarize_all(results, Validity()),
                             {("openai", mode): "8 threads: one per user of the closed loop (--concurrent-threads)"})


def test_sync_rows_have_threads_and_the_gil_wait_with_its_delta():
    base, otel = sync_rows()
    assert (base["threads"], otel["threads"]) == (8, 8) and "one per user" in otel["threads_basis"]
    assert base["gil_wait_p99_ms"] == pytest.approx(0.1, rel=0.01)
    assert otel["gil_wait_p50_ms"] == pytest.approx(2.5, rel=0.01)
    assert otel["gil_wait_delta_p99_ms"] == pytest.approx(2.4, rel=0.01)
    assert base["gil_wait_delta_p99_ms"] is None  # a baseline has no Δ, as with loop delay


def test_async_rows_have_the_keys_unmeasured():
    hist = worker().histograms
    hist.pop("gil_wait", None)  # before the worker measures it, or a run without the histogram
    for histograms in (hist, worker().histograms | {"gil_wait": Recorder().encode()}):
        rows = summarize_all([worker(arm="baseline", histograms=histograms), worker(arm="otel", histograms=histograms)],
                             Validity())
        for row in rows:
            assert (row["threads"], row["threads_basis"], row["gil_wait_p50_ms"], row["gil_wait_p99_ms"],
                    row["gil_wait_delta_p99_ms"]) == (None,) * 5


def test_a_document_with_sync_rows_validates_and_shows_the_threads():
    data = profile(clients=["async", "sync"], threads=8).model_dump(mode="json")
    document = build_document(data, sync_rows(), target="embedded", interrupted=False, errors=[])
    assert validate_document(document) == []
    assert document["summary"]["configuration"]["threads_used"] == [8]
    assert document["summary"]["configuration"]["clients"] == ["async", "sync"]
    assert [row["threads"] for row in document["north_star_metrics"]] == [8, 8]
    assert document["north_star_metrics"][1]["gil_wait_delta_p99_ms"] == pytest.approx(2.4, rel=0.01)
    broken = build_document(data, [{**sync_rows()[0], "client": "threads"}], target="embedded", interrupted=False,
                            errors=[])
    assert any("client" in line for line in validate_document(broken))


def test_the_console_and_the_page_show_the_threads_and_the_gil_wait():
    from rich.console import Console

    from loadgen.console import print_summary
    from loadgen.report.page_sections import north_star

    data = profile(client="sync", load={"kind": "concurrency", "users": 8}).model_dump(mode="json")
    document = build_document(data, sync_rows(), target="embedded", interrupted=False, errors=[])
    console = Console(width=200, record=True)
    print_summary(console, document)
    text = console.export_text()
    assert "8 OS threads per worker (sync client)" in text and "client sync" in text
    assert "GIL 2.50 (+2.40)" in text and "concurrency 8 sync" in text
    assert "GIL wait Δp99 ms" in north_star(document)[0][1] and "OS threads" in north_star(document)[0][1]
    plain = build_document(profile().model_dump(mode="json"), summarize_all([worker(), worker(arm="otel")], Validity()),
                           target="embedded", interrupted=False, errors=[])
    assert "GIL wait" not in north_star(plain)[0][1]


def test_mode_profiles_of_a_single_client_are_the_profile_itself():
    plain = profile()
    assert mode_profiles(plain) == [plain]


def test_compare_takes_clients_and_threads_as_part_of_the_experiment():
    from loadgen.comparison import refusals

    def document(**data) -> dict:
        return {"schema_version": "1.1", "profile": profile(**data).model_dump(mode="json")}

    assert refusals(document(), document(clients=["async", "sync"]), "a", "b") == [
        'clients: null in a, ["async", "sync"] in b']
    assert refusals(document(client="sync"), document(client="sync", threads=8), "a", "b") == [
        'threads: "auto" in a, 8 in b']
    # threads size only the sync client's pool: two async runs are the same experiment whatever they say
    assert refusals(document(), document(threads=8), "a", "b") == []
    # a document from before the client dimension ran the defaults
    old = document()
    for key in ("clients", "threads"):
        old["profile"].pop(key)
    assert refusals(old, document(), "a", "b") == []


def test_the_fault_matrix_runs_one_client_either_one():
    from loadgen.run_command import _faults_refusal

    assert _faults_refusal(profile(client="sync")) is None and _faults_refusal(profile()) is None
    assert "one SDK client" in _faults_refusal(profile(clients=["async", "sync"]))
    assert "sync" in CliRunner().invoke(main, ["faults", "--help"]).output
