"""Profile files: every malformed profile is one line naming file, line and key; extends and --set stack."""

import json

import pytest

from loadgen.profile import ProfileError
from loadgen.profile_files import load_profile
from tests.conftest import run_cli

# (id, file text, line or None, key path or None, a fragment of the message)
MALFORMED = [
    # TOML syntax: tomllib's "(at line N, column M)" becomes file:N:
    ("unclosed-string", 'name = "x"\ndescription = "abc\n', 2, None, "TOML syntax error: Illegal character"),
    ("bad-table-header", 'name = "x"\n[load\nkind = "constant"\n', 2, None, "TOML syntax error: Expected ']'"),
    ("duplicate-key", "seed = 1\nseed = 2\n", 2, None, "TOML syntax error: Cannot overwrite a value"),
    ("missing-value", 'name = "x"\nseed =\n', 2, None, "TOML syntax error: Invalid value"),
    ("duplicate-table", "[mock]\nttft_ms = 1\n[mock]\nitl_ms = 1\n", 3, None, "TOML syntax error: Cannot declare"),
    ("unclosed-array", 'name = "x"\n[tracing]\narms = ["baseline",\n', 3, None, "(at end of document)"),
    # unknown keys, at every level, with a suggestion from the keys valid there
    ("unknown-top", 'nmae = "x"\n', 1, "nmae", "unknown key (did you mean 'name'?)"),
    ("unknown-load", '[load]\nkind = "constant"\nrate = 5\nrte = 6\n', 4, "load.rte", "did you mean 'rate'?"),
    ("unknown-load-dotted", 'load.kind = "poisson"\nload.rate = 5\nload.rat = 6\n', 3, "load.rat", "'rate'"),
    ("unknown-tracing", "[tracing]\nmax_queue = 5\n", 2, "tracing.max_queue", "did you mean 'max_queue_size'?"),
    ("unknown-threshold", "[thresholds.latency_p99_ms]\npass = 1\nwarn = 2\n", 1,
     "thresholds.latency_p99_ms", "did you mean 'latency_p95_ms'?"),
    ("unknown-in-threshold", "[thresholds.latency_p95_ms]\npass = 1\nwarn = 2\nwarm = 3\n", 4,
     "thresholds.latency_p95_ms.warm", "did you mean 'warn'?"),
    ("unknown-mock", "[mock]\nttft = 10\n", 2, "mock.ttft", "did you mean 'ttft_ms'?"),
    ("unknown-fault-key", '[[mock.faults]]\nkind = "http_429"\n\n[[mock.faults]]\nkind = "stall"\nprobablity = 0.5\n', 6,
     "mock.faults.1.probablity", "did you mean 'probability'?"),
    ("unknown-target", '[target]\nbase_ur = "http://x"\n', 2, "target.base_ur", "did you mean 'base_url'?"),
    ("unknown-soak", '[soak]\nwindw = "30s"\n', 2, "soak.windw", "did you mean 'window'?"),
    ("unknown-sweep", '[sweep]\nstart_rate = 10\nstep = 10\nmax_rate = 50\nstep_duraton = "5s"\n', 5,
     "sweep.step_duraton", "did you mean 'step_duration'?"),
    ("unknown-outputs", '[outputs]\njsn = "r.json"\n', 2, "outputs.jsn", "did you mean 'json'?"),
    ("unknown-validity", "[validity]\nmax_lag_flor_ms = 3\n", 2, "validity.max_lag_flor_ms",
     "did you mean 'max_lag_floor_ms'?"),
    ("unknown-in-mode", 'modes = [\n  { kind = "sequential" },\n  { kind = "sequential", users = 4 },\n]\n', 3,
     "modes.1.users", "unknown key"),
    # wrong types
    ("string-for-number", '[load]\nkind = "constant"\nrate = "fast"\n', 3, "load.rate", "valid number"),
    ("number-for-list", "[tracing]\narms = 5\n", 2, "tracing.arms", "valid list"),
    ("bool-for-string", "name = true\n", 1, "name", "valid string"),
    ("string-for-bool", 'stream = "maybe"\n', 1, "stream", "valid boolean"),
    ("table-for-number", "seed = { x = 1 }\n", 1, "seed", "valid integer"),
    ("fraction-for-int", "max_tokens = 1.5\n", 1, "max_tokens", "fractional part"),
    ("word-for-workers", 'workers = "many"\n', 1, "workers", "Input should be 'auto'"),
    # impossible values
    ("negative-rate", '[load]\nkind = "poisson"\nrate = -5\n', 3, "load.rate", "greater than 0"),
    ("zero-rate-inline", 'load = { kind = "constant", rate = 0 }\n', 1, "load.rate", "greater than 0"),
    ("zero-workers", "workers = 0\n", 1, "workers", "from 1 to 64"),
    ("warn-stricter", "[thresholds.latency_p95_ms]\npass = 5000\nwarn = 4000\n", 1,
     "thresholds.latency_p95_ms", "warn (4000) is stricter than pass (5000)"),
    ("sweep-max-below-start", "[sweep]\nstart_rate = 100\nstep = 10\nmax_rate = 50\n", 1,
     "sweep", "max_rate (50) is below start_rate (100)"),
    ("rate-ratio-over-1", "[validity]\nmin_rate_ratio = 1.5\n", 2, "validity.min_rate_ratio", "less than or equal to 1"),
    ("bad-duration", 'duration = "abc"\n', 1, "duration", "'abc' is not a duration"),
    ("bad-soak-window", '[soak]\nwindow = "soon"\n', 2, "soak.window", "not a duration"),
    ("unknown-arm", '[tracing]\narms = [\n  "baseline",\n  "otl",\n]\n', 4, "tracing.arms.1", "did you mean 'otel'?"),
    ("unknown-load-kind", '[load]\nkind = "constnt"\nrate = 5\n', 2, "load.kind",
     "unknown kind 'constnt' (did you mean 'constant'?)"),
    ("alien-load-kind", '[load]\nkind = "warp"\n', 2, "load.kind", "one of constant, poisson, ramp, concurrency, sequential"),
    ("missing-load-kind", "[load]\nrate = 5\n", 1, "load.kind", "Field required"),
    ("missing-users", '\n[load]\nkind = "concurrency"\n', 2, "load.users", "Field required"),
    ("unknown-provider", 'provider = "antropic"\n', 1, "provider", "did you mean 'anthropic'?"),
    ("unknown-fault-kind", '[[mock.faults]]\nkind = "http_249"\n', 2, "mock.faults.0.kind", "did you mean 'http_429'?"),
    ("url-without-base-url", '[target]\nkind = "url"\n', 1, "target", "needs target.base_url"),
    ("extends-not-a-name", "extends = 5\n", 1, "extends", "expected a file name or a list of file names"),
    # a whole-profile rule has no one key to point at: file, then the message
    ("duration-and-operations", 'duration = "10s"\noperations = 5\n', None, None, "give either duration or operations"),
    ("soak-and-sweep", "[soak]\n[sweep]\nstart_rate = 1\nstep = 1\nmax_rate = 2\n", None, None, "a soak or a sweep"),
]


def error_of(path, overrides=None, sets=()) -> str:
    with pytest.raises(ProfileError) as info:
        load_profile(path, overrides, sets)
    return str(info.value)


def expected_start(path, line, key) -> str:
    where = f"{path}:{line}" if line else str(path)
    return f"{where}: {key}: " if key else f"{where}: "


@pytest.mark.parametrize("text, line, key, fragment", [case[1:] for case in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_a_malformed_profile_is_one_line_naming_file_line_and_key(tmp_path, text, line, key, fragment):
    path = tmp_path / "p.toml"
    path.write_text(text)
    message = error_of(path)
    assert "\n" not in message, message
    assert message.startswith(expected_start(path, line, key)), message
    assert fragment in message


def test_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "p.toml"
    path.write_bytes(b'name = "\xff"\n')
    assert error_of(path) == f"{path}: TOML syntax error: not UTF-8 text (invalid start byte)"


def test_several_errors_are_one_complete_line_each(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('name = 3\n[load]\nkind = "constant"\nrte = 5\n[tracing]\narms = ["otl"]\n')
    lines = error_of(path).splitlines()
    assert sorted(lines) == sorted([
        f"{path}:1: name: Input should be a valid string",
        f"{path}:2: load.rate: Field required",
        f"{path}:4: load.rte: unknown key (did you mean 'rate'?)",
        f"{path}:6: tracing.arms.0: unknown arm 'otl' (did you mean 'otel'?)",
    ])


# --- extends ---------------------------------------------------------------------------


def write(tmp_path, files: dict[str, str]):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_missing_extends_file(tmp_path):
    write(tmp_path, {"x.toml": 'name = "x"\nextends = "other.toml"\n'})
    assert error_of(tmp_path / "x.toml") == f"{tmp_path / 'x.toml'}:2: extends: no such profile file 'other.toml'"


def test_extends_cycle_of_two_files(tmp_path):
    write(tmp_path, {"a.toml": 'extends = "b.toml"\n', "b.toml": 'extends = "a.toml"\n'})
    assert error_of(tmp_path / "a.toml") == f"{tmp_path / 'b.toml'}:1: extends: cycle a.toml → b.toml → a.toml"


def test_a_file_that_extends_itself(tmp_path):
    write(tmp_path, {"a.toml": '# me\nextends = ["a.toml"]\n'})
    assert error_of(tmp_path / "a.toml") == f"{tmp_path / 'a.toml'}:2: extends: cycle a.toml → a.toml"


def test_an_error_in_a_base_file_names_the_base_and_its_line(tmp_path):
    write(tmp_path, {
        "base.toml": '[load]\nkind = "constant"\nrate = 5\nrte = 6\n',
        "child.toml": 'extends = "base.toml"\nname = "child"\n',
    })
    assert error_of(tmp_path / "child.toml") == f"{tmp_path / 'base.toml'}:4: load.rte: unknown key (did you mean 'rate'?)"


def test_a_key_the_child_changes_is_blamed_on_the_child(tmp_path):
    write(tmp_path, {
        "base.toml": "[load]\nkind = 'constant'\nrate = 5\n",
        "child.toml": 'extends = "base.toml"\n\n[load]\nrate = -1\n',
    })
    assert error_of(tmp_path / "child.toml").startswith(f"{tmp_path / 'child.toml'}:4: load.rate: ")


def test_extends_stacks_three_levels(tmp_path):
    write(tmp_path, {
        "base.toml": 'name = "base"\nseed = 1\nduration = "30s"\n[load]\nkind = "poisson"\nrate = 5\n'
                     '[mock]\nttft_ms = 10\nitl_ms = 1\n[tracing]\narms = ["baseline", "otel"]\n',
        "mid/mid.toml": 'extends = "../base.toml"\nname = "mid"\n[mock]\nitl_ms = 3\n[load]\nrate = 50\n',
        "top.toml": 'extends = "mid/mid.toml"\nname = "top"\noperations = 100\n[tracing]\narms = ["baseline"]\n',
    })
    profile = load_profile(tmp_path / "top.toml")
    assert (profile.name, profile.seed) == ("top", 1)
    assert (profile.load.kind, profile.load.rate) == ("poisson", 50)  # a table merges key by key
    assert (profile.mock.ttft_ms, profile.mock.itl_ms) == (10, 3)
    assert profile.tracing.arms == ["baseline"]  # an array replaces
    assert (profile.operations, profile.duration) == (100, None)  # operations replaces the base's duration


def test_extends_a_list_applied_in_order_and_a_new_load_kind_replaces_the_table(tmp_path):
    write(tmp_path, {
        "open.toml": "[load]\nkind = 'ramp'\nrate = 5\nrate_end = 50\n",
        "closed.toml": "seed = 7\n[load]\nkind = 'concurrency'\nusers = 4\n",
        "p.toml": 'extends = ["open.toml", "closed.toml"]\n',
    })
    profile = load_profile(tmp_path / "p.toml")
    assert profile.seed == 7 and profile.load.kind == "concurrency" and profile.load.users == 4


# --- --set and flags -------------------------------------------------------------------


def test_set_overrides_file_values_and_nested_keys(tmp_path):
    write(tmp_path, {"p.toml": 'name = "p"\nduration = "30s"\n[load]\nkind = "poisson"\nrate = 5\n'})
    profile = load_profile(tmp_path / "p.toml", sets=[
        "load.rate=50", 'tracing.arms=["baseline","otel"]', "name=foo", "operations=20",
        "thresholds.latency_p95_ms={pass = 300, warn = 900}", "mock.itl_ms=3",
        'mock.faults=[{kind = "http_429", probability = 0.5}]',
    ])
    assert (profile.name, profile.load.kind, profile.load.rate) == ("foo", "poisson", 50)
    assert profile.tracing.arms == ["baseline", "otel"]
    assert (profile.operations, profile.duration) == (20, None)
    assert (profile.thresholds.latency_p95_ms.pass_, profile.thresholds.latency_p95_ms.warn) == (300, 900)
    assert (profile.mock.itl_ms, profile.mock.ttft_ms) == (3, 50)  # a nested key; its neighbours keep their defaults
    assert profile.mock.faults[0].kind == "http_429"


@pytest.mark.parametrize("item, key, value", [
    ("seed=7", "seed", 7),                      # a TOML number
    ("stream=true", "stream", True),            # a TOML boolean
    ('name="a b"', "name", "a b"),              # a TOML string
    ("name=plain text", "name", "plain text"),  # not TOML: taken as text
    ("duration=3s", "duration", 3.0),           # text the model parses
])
def test_set_values_are_toml_when_they_parse(item, key, value):
    assert getattr(load_profile(None, sets=[item]), key) == value


def test_flags_are_laid_over_set():
    profile = load_profile(None, {"load": {"kind": "constant", "rate": 9}}, sets=["load.rate=50"])
    assert profile.load.rate == 9


@pytest.mark.parametrize("sets, overrides, message", [
    (["load.rate"], None, "--set 'load.rate': expected KEY.PATH=VALUE (e.g. load.rate=50)"),
    (["=5"], None, "--set '=5': expected KEY.PATH=VALUE (e.g. load.rate=50)"),
    (["load.kind=constant", "load.rate=-1"], None, "--set load.rate: Input should be greater than 0"),
    (["load.rate=5"], None, "--set load.kind: Field required (one of constant, poisson, ramp, concurrency, sequential)"),
    (["seed=4", "sed=5"], None, "--set sed: unknown key (did you mean 'seed'?)"),
    (["tracing.arms=otel"], None, "--set tracing.arms: Input should be a valid list"),
    ([], {"workers": 0}, "command line: workers: workers is 'auto' or a number from 1 to 64"),
])
def test_errors_from_set_and_flags_say_so(sets, overrides, message):
    assert error_of(None, overrides, sets) == message


# --- the command line ------------------------------------------------------------------


def bad_and_good(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[load]\nkind = "constant"\nrate = 5\nrte = 6\n')
    return bad, "profiles/quickstart.toml"


def test_validate_prints_ok_per_good_file_and_errors_per_bad_file_exit_2(tmp_path):
    bad, good = bad_and_good(tmp_path)
    done = run_cli("validate", good, str(bad))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stdout.startswith(f"ok  {good} (quickstart: Both providers")
    assert done.stderr.strip() == f"{bad}:4: load.rte: unknown key (did you mean 'rate'?)"


def test_validate_syntax_error_and_cycle_exit_2(tmp_path):
    write(tmp_path, {"syntax.toml": "[load\n", "a.toml": 'extends = "a.toml"\n'})
    done = run_cli("validate", str(tmp_path / "syntax.toml"), str(tmp_path / "a.toml"))
    assert done.returncode == 2 and "Traceback" not in done.stderr and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"{tmp_path / 'syntax.toml'}:1: TOML syntax error: Expected ']' at the end of a table declaration (column 6)",
        f"{tmp_path / 'a.toml'}:1: extends: cycle a.toml → a.toml",
    ]


def test_validate_only_with_a_bad_profile_exit_2(tmp_path):
    bad, _ = bad_and_good(tmp_path)
    done = run_cli("run", str(bad), "--validate-only")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"loadgen: {bad}:4: load.rte: unknown key (did you mean 'rate'?)"


def test_run_with_a_malformed_set_exit_2():
    done = run_cli("run", "--set", "load.rate", "--validate-only")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == "loadgen: --set 'load.rate': expected KEY.PATH=VALUE (e.g. load.rate=50)"


def test_run_with_a_bad_set_value_exit_2_one_line_per_error(tmp_path):
    bad, _ = bad_and_good(tmp_path)
    done = run_cli("run", str(bad), "--set", "load.rate=-1", "--validate-only")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert sorted(done.stderr.splitlines()) == [
        "loadgen: --set load.rate: Input should be greater than 0",
        f"loadgen: {bad}:4: load.rte: unknown key (did you mean 'rate'?)",
    ]


def test_schema_prints_the_profile_json_schema():
    done = run_cli("schema")
    schema = json.loads(done.stdout)
    assert done.returncode == 0
    assert {"load", "tracing", "thresholds", "extends"} <= set(schema["properties"])
    # Durations ('30s') keep their bound as JSON Schema states it, not pydantic's "gt".
    assert '"gt"' not in done.stdout
    assert schema["$defs"]["Soak"]["properties"]["window"]["exclusiveMinimum"] == 0
