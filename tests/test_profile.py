"""The profile model: strict keys, durations, CLI overrides laid over TOML."""

import pytest

from loadgen.profile import ProfileError
from loadgen.profile_runs import parse_duration
from loadgen.plan import mode_label, shard_count
from loadgen.profile_files import load_profile



@pytest.mark.parametrize("text, seconds", [("30s", 30), ("2m", 120), ("1h", 3600), ("500ms", 0.5), (12, 12), ("7", 7)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["30x", "s", "", True, "-3s"])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def write(tmp_path, text):
    path = tmp_path / "p.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file():
    profile = load_profile(None)
    assert profile.duration == 10 and profile.load.kind == "constant" and profile.providers == ("openai", "anthropic")


def test_unknown_key_is_an_error_naming_file_and_key(tmp_path):
    path = write(tmp_path, "[load]\nkind = 'constant'\nrate = 5\nratee = 6\n")
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert str(path) in str(info.value) and "load.ratee" in str(info.value) and "unknown key" in str(info.value)


def test_syntax_error_names_file(tmp_path):
    path = write(tmp_path, "rate = = 5\n")
    with pytest.raises(ProfileError, match="TOML syntax error"):
        load_profile(path)


def test_missing_file():
    with pytest.raises(ProfileError, match="no such profile file"):
        load_profile("/nonexistent/profile.toml")


@pytest.mark.parametrize("text, key", [
    ("[load]\nkind = 'constant'\nrate = -1\n", "load.rate"),
    ("[load]\nkind = 'concurrency'\n", "load.users"),
    ("[load]\nkind = 'warp'\n", "load"),
    ("provider = 'gemini'\n", "provider"),
    ("duration = '10s'\noperations = 5\n", "give either duration or operations"),
    ("[target]\nkind = 'url'\n", "base_url"),
    ("timeout = 0\n", "timeout"),
])
def test_invalid_values(tmp_path, text, key):
    with pytest.raises(ProfileError) as info:
        load_profile(write(tmp_path, text))
    assert key in str(info.value)


def test_overrides_win_and_replace_the_load_kind(tmp_path):
    path = write(tmp_path, "duration = '20s'\n[load]\nkind = 'poisson'\nrate = 5\n")
    profile = load_profile(path, {"load": {"kind": "concurrency", "users": 4}, "operations": 100})
    assert profile.load.kind == "concurrency" and profile.load.users == 4
    assert profile.operations == 100 and profile.duration is None


def test_override_rate_keeps_the_file_kind(tmp_path):
    path = write(tmp_path, "[load]\nkind = 'poisson'\nrate = 5\n")
    assert load_profile(path, {"load": {"rate": 50}}).load.kind == "poisson"


def test_modes_label_rows():
    def label(load):
        return mode_label(load_profile(None, {"load": load}).load)

    assert label({"kind": "sequential"}) == "sequential"
    assert label({"kind": "concurrency", "users": 8}) == "concurrency 8"
    assert label({"kind": "poisson", "rate": 200}) == "rate 200/s poisson"


@pytest.mark.parametrize("overrides, cores, expected", [
    ({"load": {"kind": "constant", "rate": 50}}, 2, 1),  # under 100/s: one worker
    ({"load": {"kind": "constant", "rate": 200}}, 2, 2),  # one per 100/s
    ({"load": {"kind": "constant", "rate": 900}}, 2, 2),  # at most one per core
    ({"load": {"kind": "ramp", "rate": 10, "rate_end": 250}}, 4, 3),  # by the peak rate
    ({"load": {"kind": "concurrency", "users": 8}}, 2, 1),  # closed loop: one
    ({"load": {"kind": "constant", "rate": 900}, "workers": 1}, 2, 1),  # explicit wins
])
def test_worker_count(overrides, cores, expected):
    assert shard_count(load_profile(None, overrides), cores) == expected


def test_workers_must_be_positive():
    with pytest.raises(ProfileError, match="workers"):
        load_profile(None, {"workers": 0})
