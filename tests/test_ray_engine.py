"""The Ray engine (loadgen/ray_engine.py, loadgen/ray_actor.py): clocks, refusals, and runs on a local Ray.

The e2e tests share one local Ray (`ray.init(num_cpus=2)`, started once for the module) and
run `loadgen run --engine ray --ray-address <it>` in a subprocess, so this process can look
at what a run leaves behind: actor processes, placement groups.
"""

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from loadgen.errors import ExitCode, UserError
from loadgen.profile_files import load_profile
from tests.conftest import ROOT, run_cli

ray = pytest.importorskip("ray")

from loadgen.ray_engine import ClockOffset, NodeClock, check_skew, offset_from_round_trips, skew_bound_ms  # noqa: E402

MS = 1_000_000


@pytest.mark.parametrize("samples, offset_ns, uncertainty_ns", [
    # one round trip of 400 µs, remote read at its middle: no offset, ± 200 µs
    ([(1000 * MS, 1000 * MS + 200_000, 1000 * MS + 400_000)], 0, 200_000),
    # the shortest of three round trips is kept (the 100 µs one), whatever the others say
    ([(0, 9 * MS, 2 * MS), (10 * MS, 10 * MS + 3_050_000, 10 * MS + 100_000), (20 * MS, 25 * MS, 21 * MS)],
     3_000_000, 50_000),
    # a remote clock 5 ms behind
    ([(50 * MS, 45 * MS + 300_000, 50 * MS + 600_000)], -5 * MS, 300_000),
])
def test_offset_from_round_trips(samples, offset_ns, uncertainty_ns):
    clock = offset_from_round_trips(samples)
    assert (clock.offset_ns, clock.uncertainty_ns) == (offset_ns, uncertainty_ns)


@pytest.mark.parametrize("load, bound_ms", [
    # 50 calls/s: a 20 ms interval, 25 % of it is 5 ms, over the 2 ms floor
    ({"kind": "constant", "rate": 50}, 5.0),
    # 1000 calls/s: 25 % of 1 ms is 0.25 ms, so the 2 ms floor holds
    ({"kind": "poisson", "rate": 1000}, 2.0),
    # a ramp is bound by its highest rate (500/s: 0.5 ms → the floor)
    ({"kind": "ramp", "rate": 10, "rate_end": 500}, 2.0),
    # a closed loop has no schedule rate: the floor
    ({"kind": "concurrency", "users": 4}, 2.0),
])
def test_the_skew_bound_is_the_dispatch_lag_allowance(load, bound_ms):
    assert skew_bound_ms(load_profile(None, {"load": load})) == pytest.approx(bound_ms)


def test_a_node_past_the_skew_bound_is_refused_with_the_usage_code():
    near = NodeClock("a" * 56, "head", ClockOffset(offset_ns=40_000, uncertainty_ns=200_000, rtt_ns=400_000), 16)
    far = NodeClock("b" * 56, "worker-2", ClockOffset(offset_ns=-4 * MS, uncertainty_ns=300_000, rtt_ns=600_000), 16)
    check_skew([near], bound_ms=2.0)  # 0.24 ms: within
    with pytest.raises(UserError) as refused:
        check_skew([near, far], bound_ms=2.0)  # 4.3 ms: beyond
    assert refused.value.code == ExitCode.USAGE
    message = str(refused.value)
    assert "bbbbbbbbbbbb (worker-2)" in message and "-4.000 ms" in message and "2.000 ms" in message
    assert "head" not in message


def _engine_on(home_node: str):
    """A RayEngine on a pretend cluster: no Ray is started (each test names what it calls)."""
    from loadgen.ray_engine import RayEngine

    engine = object.__new__(RayEngine)
    engine.home_node = home_node
    return engine


@pytest.mark.parametrize("nodes, urls, refused", [
    # this machine alone: the embedded servers serve every worker
    (["home"], {"--base-url": "embedded mock", "--collector-url": "embedded collector"}, None),
    # another node: an embedded mock is out of its reach, named with its flag
    (["home", "other"], {"--base-url": "embedded mock"}, "embedded mock (--base-url)"),
    # another node: a loopback collector URL is just as local
    (["home", "other"], {"--base-url": "http://10.0.0.9:8000/v1", "--collector-url": "http://127.0.0.1:4318"},
     "http://127.0.0.1:4318 (--collector-url)"),
    # another node, targets every node reaches
    (["home", "other"], {"--base-url": "http://10.0.0.9:8000/v1", "--collector-url": "http://10.0.0.9:4318"}, None),
])
def test_a_cluster_beyond_this_machine_needs_targets_every_node_reaches(monkeypatch, nodes, urls, refused):
    monkeypatch.setattr(ray, "nodes", lambda: [{"NodeID": node, "Alive": True} for node in nodes])
    engine = _engine_on("home")
    if refused is None:
        engine.check_reachable_everywhere(urls)
        return
    with pytest.raises(UserError) as error:
        engine.check_reachable_everywhere(urls)
    assert error.value.code == ExitCode.USAGE and refused in str(error.value) and "--base-url" in str(error.value)


def test_an_arm_in_an_environment_of_its_own_is_refused_by_name():
    from types import SimpleNamespace

    spec = SimpleNamespace(python="/envs/abc/bin/python", label="honeyhive@1.6.0")
    with pytest.raises(UserError, match=r"arm honeyhive@1\.6\.0 runs in an environment of its own.*--engine local"):
        _engine_on("home").open({("honeyhive@1.6.0", 0): spec})


def test_engine_flags_reach_the_profile():
    from loadgen.cli_flags import overrides as _overrides

    assert load_profile(None, _overrides({"engine": "ray"})).scale.engine == "ray"
    # an address alone means Ray
    scale = load_profile(None, _overrides({"ray_address": "10.0.0.5:6379"})).scale
    assert (scale.engine, scale.ray_address) == ("ray", "10.0.0.5:6379")


def test_a_ray_address_with_the_local_engine_and_a_soak_on_ray_are_profile_errors():
    done = run_cli("run", "--engine", "local", "--ray-address", "auto", "--quiet")
    assert done.returncode == ExitCode.USAGE and "scale.ray_address is for engine = 'ray'" in done.stderr
    done = run_cli("run", "--engine", "ray", "--soak", "--quiet")
    assert done.returncode == ExitCode.USAGE and "use engine 'local'" in done.stderr
    assert "Traceback" not in done.stderr


def test_engine_ray_without_ray_installed_is_one_clear_message():
    # ray made unimportable in a fresh interpreter: the run stops before any work, exit 2.
    code = ("import sys; sys.modules['ray'] = None; sys.argv = ['loadgen', 'run', '--engine', 'ray', '--quiet'];"
            "from loadgen.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert "pip install 'loadgen[ray]'" in done.stderr and "Traceback" not in done.stderr


# -- on a local Ray ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_address():
    context = ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        yield context.address_info["address"]
    finally:
        ray.shutdown()


def _actor_processes() -> list[psutil.Process]:
    """loadgen's worker actors on this machine (Ray titles each process after its actor class)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any("_WorkerActor" in part for part in (proc.info["cmdline"] or [])[:1]):
            found.append(proc)
    return found


def _nothing_left_behind() -> None:
    deadline = time.monotonic() + 10
    while _actor_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _actor_processes() == []
    assert {group["state"] for group in ray.util.placement_group_table().values()} <= {"REMOVED"}


# Two shards (two one-CPU bundles, one actor per core) × two replicas per arm.
SHORT_RUN = ["--provider", "openai", "--rate", "20", "--operations", "40", "--warmup-operations", "0",
             "--arms", "baseline,otel", "--workers", "2", "--replicas", "2", "--rounds", "2",
             "--schedule-delay-ms", "200", "--quiet"]


@pytest.mark.e2e
def test_ray_runs_the_same_operations_as_local_and_reports_clock_offsets(tmp_path, ray_address):
    documents = {}
    for engine in ("local", "ray"):
        out = tmp_path / f"{engine}.json"
        extra = ["--ray-address", ray_address] if engine == "ray" else []
        done = run_cli("run", *SHORT_RUN, "--engine", engine, *extra, "--export-json", str(out))
        # Validity is not the subject (a late wake-up on a busy machine can break the lag rule).
        assert done.returncode in (0, 3), done.stdout + done.stderr
        documents[engine] = json.loads(out.read_text())
    counts = {engine: {run["arm"]: (run["operations_sent"], run["operations_ok"]) for run in document["runs"]}
              for engine, document in documents.items()}
    assert counts["ray"] == counts["local"] == {"baseline": (40, 40), "otel": (40, 40)}
    assert [run["spans"]["unaccounted"] for run in documents["ray"]["runs"] if run["spans"]] == [0]
    engine = documents["ray"]["engine"]
    assert "engine" not in documents["local"]
    assert engine["ray_address"] == ray_address and not engine["started_by_loadgen"]
    (node,) = engine["nodes"]  # one machine, one node
    assert sorted(node["actors"]) == [f"openai/{arm}/{worker}" for arm in ("baseline", "otel") for worker in range(4)]
    assert engine["fleets"][0]["bundles"] == 2 and engine["fleets"][0]["actors"] == 8
    assert node["round_trips"] >= 16 and 0 < node["rtt_ms"] < 50
    assert abs(node["offset_ms"]) + node["uncertainty_ms"] <= engine["skew_bound_ms"] == 12.5  # 25 % of 50 ms
    _nothing_left_behind()


def _start_run(out, ray_address) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "loadgen.cli", "run", "--provider", "openai", "--rate", "20", "--duration", "60s",
         "--arms", "baseline,otel", "--replicas", "1", "--engine", "ray", "--ray-address", ray_address,
         "--export-json", str(out), "--quiet"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_for_actors(count: int, timeout_s: float = 30) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout_s
    while len(found := _actor_processes()) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(found) == count
    return found


@pytest.mark.e2e
def test_sigint_writes_what_it_has_and_leaves_no_actor(tmp_path, ray_address):
    out = tmp_path / "r.json"
    proc = _start_run(out, ray_address)
    _wait_for_actors(2)
    time.sleep(6)  # primed and a few blocks in
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.INTERRUPTED, stderr  # as the local engine (tests/test_cli.py)
    document = json.loads(out.read_text())
    assert document["interrupted"] is True and document["engine"]["nodes"]
    assert sum(run["operations_sent"] for run in document["runs"]) > 20
    assert "Traceback" not in stderr
    _nothing_left_behind()


@pytest.mark.e2e
def test_a_worker_actor_that_dies_is_named_and_the_run_exits_1(tmp_path, ray_address):
    out = tmp_path / "r.json"
    proc = _start_run(out, ray_address)
    victim = _wait_for_actors(2)[0]
    time.sleep(4)
    os.kill(victim.pid, signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=90)
    assert proc.returncode == ExitCode.FAILURE, stderr  # as a local worker that dies
    (error,) = json.loads(out.read_text())["errors"]
    assert error.startswith("openai/") and "its Ray actor on node" in error and "died" in error
    assert "Traceback" not in stderr
    _nothing_left_behind()
