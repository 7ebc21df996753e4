"""loadgen compare: each figure's change against noise, the refusals, the gate and its exit code."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from loadgen.cli import main
from loadgen.compare import change_ci, change_spread, compare_runs, verdict
from loadgen.comparison import comparison_document, crossed, gate_from, refusals
from loadgen.document import validate_document
from loadgen.errors import ExitCode
from loadgen.intervals import quantile_ci, rate_ci, standard_error, welch_df, wilson
from loadgen.profile_runs import Gate


def _run(arm: str, overhead: float | None = None, ci: float = 0.3, **more) -> dict:
    run = {"provider": "openai", "arm": arm, "mode": "rate 50/s constant", "achieved_rate_rps": 50.0,
           "achieved_rate_ci95_rps": [49.9, 50.1]}
    if overhead is not None:
        run.update({"overhead_latency_ms": overhead, "overhead_latency_ci95_ms": [overhead - ci, overhead + ci],
                    "overhead_ci_df": 3.0})
    run.update(more)
    return run


def _document(runs: list[dict], **profile) -> dict:
    return {"schema_version": "1.1", "tool": {"name": "loadgen", "version": "0"}, "generated_at": "2026-12-01T00:00:00Z",
            "target": "embedded mock", "valid": True, "interrupted": False,
            "profile": {"name": "p", "seed": 42, "load": {"kind": "constant", "rate": 50.0}, **profile}, "runs": runs}


def _row(rows: list[dict], arm: str, metric: str) -> dict:
    return next(row for row in rows if row["arm"] == arm and row["metric"] == metric)


# --- intervals: known answers ---------------------------------------------------------------

def test_wilson_matches_the_textbook_interval():
    # 10 of 100: Wilson's 95 % interval is [0.0552, 0.1744] (Newcombe 1998, table I style).
    low, high = wilson(0.1, 100)
    assert low == pytest.approx(0.0552, abs=5e-4) and high == pytest.approx(0.1744, abs=5e-4)
    assert wilson(0.0, 10)[0] == 0.0 and wilson(0.0, 10)[1] > 0.2


def test_a_quantile_ci_reads_the_binomial_bounds_of_the_order_statistic():
    # The uniform distribution on [0, 1000]: the value at p is 1000·p; 100 units around p95 give ±1.96·√(.95·.05/100).
    low, high = quantile_ci(lambda p: 1000 * p, 0.95, 100)
    assert low == pytest.approx(1000 * (0.95 - 0.0427), abs=0.5) and high == pytest.approx(1000 * (0.95 + 0.0427), abs=0.5)
    assert quantile_ci(lambda p: 1000 * p, 0.95, 10)[1] == 1000  # the bound is clipped at the maximum
    assert quantile_ci(lambda p: p, 0.95, 1) is None


def test_the_rate_ci_is_student_t_over_the_blocks_own_rates():
    blocks = [{"sent": 51, "first_sent_ns": 0, "last_sent_ns": int(1e9)},  # 50/s
              {"sent": 49, "first_sent_ns": 0, "last_sent_ns": int(1e9)}]  # 48/s
    low, high = rate_ci(blocks)
    assert (low + high) / 2 == pytest.approx(49.0)
    assert high - 49.0 == pytest.approx(12.706 * 1.0, rel=1e-3)  # t(1) · sd 1.414 / √2
    assert rate_ci(blocks[:1]) is None


def test_welch_df_of_two_equal_samples_adds_their_dfs():
    assert welch_df(1.0, 3, 1.0, 3) == pytest.approx(6.0)
    assert welch_df(1.0, None, 1.0, None) is None
    assert standard_error([-1.96, 1.96]) == pytest.approx(1.0, rel=1e-4)


# --- the change and its verdict ---------------------------------------------------------------

def test_the_changes_ci_comes_from_both_figures_cis():
    spread = change_spread([-0.3, 0.3], 3.0, [0.7, 1.3], 3.0)  # SE 0.094 each side, df 6
    assert spread[0] == pytest.approx(0.1334, abs=1e-3) and spread[1] == pytest.approx(6.0)
    ci = change_ci(1.0, spread)
    assert ci[0] == pytest.approx(1.0 - 2.447 * 0.1334, abs=0.01)


def test_worse_or_better_only_when_the_whole_ci_lies_beyond_the_floor():
    assert verdict([0.7, 1.3], floor=0.2, lower_is_better=True) == "worse"
    assert verdict([-1.3, -0.7], floor=0.2, lower_is_better=True) == "better"
    assert verdict([-0.2, 0.4], floor=0.2, lower_is_better=True) == "within noise"
    # Significant (0 is outside) but not beyond the floor: an A/A pair's wobble, or no change that matters.
    assert verdict([0.014, 0.573], floor=0.2, lower_is_better=True) == "within noise"
    assert verdict([0.05, 0.15], floor=0.2, lower_is_better=True) == "within noise"
    # Throughput: higher is better, so a fall past the floor is worse.
    assert verdict([-6.0, -4.0], floor=0.5, lower_is_better=False) == "worse"
    assert verdict([4.0, 6.0], floor=0.5, lower_is_better=False) == "better"


def test_runs_match_by_provider_arm_and_mode_and_the_rest_are_listed():
    base = [_run("baseline"), _run("otel", 0.1), _run("honeyhive", 1.0)]
    new = [_run("baseline"), _run("otel", 1.2), _run("openinference", 0.5)]
    rows, unmatched = compare_runs(base, new)
    assert _row(rows, "otel", "overhead_latency_ms")["verdict"] == "worse"
    assert _row(rows, "otel", "overhead_latency_ms")["change"] == pytest.approx(1.1)
    assert {(side["side"], side["arm"]) for side in unmatched} == {("base", "honeyhive"), ("new", "openinference")}
    assert [row["metric"] for row in rows if row["arm"] == "baseline"] == ["throughput_rps"]


def test_a_figure_without_a_ci_is_unmeasured_not_judged():
    rows, _ = compare_runs([_run("otel", 0.1, memory_fixed_mib=6.0)], [_run("otel", 0.1, memory_fixed_mib=9.0)])
    row = _row(rows, "otel", "memory_fixed_mib")
    assert row["verdict"] == "unmeasured" and "no CI" in row["why"] and row["change"] == pytest.approx(3.0)
    missing, _ = compare_runs([_run("otel", 0.1)], [_run("otel", None)])
    assert _row(missing, "otel", "overhead_latency_ms")["verdict"] == "unmeasured"


# --- refusals -----------------------------------------------------------------------------------

def test_different_experiments_are_refused_naming_each_difference():
    base = _document([_run("otel", 0.1)])
    new = _document([_run("otel", 0.1)], seed=7)
    new["schema_version"] = "9.9"
    found = refusals(base, new, "a.json", "b.json")
    assert any(line.startswith("schema_version: 1.1 in a.json, 9.9 in b.json") for line in found)
    assert any(line.startswith("seed: 42 in a.json, 7 in b.json") for line in found)
    assert refusals(base, copy.deepcopy(base), "a.json", "b.json") == []
    sweep = {**base, "kind": "sweep"}
    assert any("sweep document" in line for line in refusals(sweep, base, "s.json", "b.json"))


# --- the gate -----------------------------------------------------------------------------------

def test_a_limit_is_crossed_only_when_the_whole_ci_is_past_it():
    row = {"change": 0.8, "change_ci95": [0.6, 1.0], "better": "lower", "base": 0.1}
    assert crossed(row, 0.5, relative=False)
    assert not crossed(row, 0.7, relative=False)  # the estimate is past 0.7, the CI is not
    assert not crossed({**row, "change_ci95": [-0.1, 1.7]}, 0.5, relative=False)
    fall = {"change": -5.0, "change_ci95": [-6.0, -4.0], "better": "higher", "base": 50.0}
    assert crossed(fall, 5.0, relative=True)  # at least an 8 % fall against a 5 % limit
    assert not crossed(fall, 10.0, relative=True)


def test_the_gate_comes_from_the_new_runs_profile_and_the_flags_win():
    new = _document([], gate={"fail_on": "never", "max_overhead_increase_ms": 2.0})
    gate = gate_from(new, {"max_overhead_increase_ms": 0.5, "fail_on": None})
    assert gate == Gate(fail_on="never", max_overhead_increase_ms=0.5)
    assert gate_from(_document([]), {"fail_on": None}) is None


def test_the_comparison_document_validates_and_its_gate_fails_on_worse():
    base, new = _document([_run("baseline"), _run("otel", 0.1)]), _document([_run("baseline"), _run("otel", 1.5)])
    document = comparison_document(base, new, base_path="a.json", new_path="b.json", gate=Gate(fail_on="worse"),
                                   forced=[])
    assert validate_document(document) == []
    assert document["gate"]["failed"] and "otel" in document["gate"]["reasons"][0]
    assert document["summary"]["worse"] == 1
    passed = comparison_document(base, base, base_path="a.json", new_path="a.json", gate=Gate(fail_on="worse"),
                                 forced=[])
    assert not passed["gate"]["failed"] and passed["summary"]["worse"] == 0
    # Limits alone gate on their figures only: a worse row under no limit passes.
    limits_only = comparison_document(base, new, base_path="a.json", new_path="b.json",
                                      gate=Gate(max_overhead_increase_ms=5.0), forced=[])
    assert limits_only["gate"]["active"] and not limits_only["gate"]["failed"]


# --- the command, on a real document --------------------------------------------------------

REAL = Path(__file__).parent / "data" / "report" / "page-run.json"


def _real(tmp_path, name: str, overhead_shift: float = 0.0, **profile) -> str:
    """A real run document (openai: baseline, otel, honeyhive, calibration), the calibration arm's
    overhead shifted by a known amount, its CI with it."""
    document = json.loads(REAL.read_text())
    document["profile"].update(profile)
    run = next(r for r in document["runs"] if r["arm"] == "calibration")
    run["overhead_latency_ms"] += overhead_shift
    run["overhead_latency_ci95_ms"] = [bound + overhead_shift for bound in run["overhead_latency_ci95_ms"]]
    return _write(tmp_path, name, document)


def _write(tmp_path, name: str, document: dict) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return str(path)


def test_compare_exits_5_when_the_gate_fails_and_0_without_a_gate(tmp_path):
    a, b = _real(tmp_path, "a.json"), _real(tmp_path, "b.json", overhead_shift=1.5)
    out = tmp_path / "cmp.json"
    plain = CliRunner().invoke(main, ["compare", a, b, "--export-json", str(out)])
    assert plain.exit_code == 0, plain.output
    document = json.loads(out.read_text())
    assert document["kind"] == "compare" and validate_document(document) == []
    assert [(r["arm"], r["metric"]) for r in document["rows"] if r["verdict"] != "within noise"] == [
        ("calibration", "overhead_latency_ms")]
    gated = CliRunner().invoke(main, ["compare", a, b, "--fail-on", "worse"])
    assert gated.exit_code == ExitCode.GATE_FAILED == 5
    assert "gate failed" in gated.output and "openai/calibration" in gated.output
    limit = CliRunner().invoke(main, ["compare", a, b, "--fail-on", "never", "--max-overhead-increase-ms", "2"])
    assert limit.exit_code == 0, limit.output
    crossed_limit = CliRunner().invoke(main, ["compare", a, b, "--fail-on", "never", "--max-overhead-increase-ms", "0.3"])
    assert crossed_limit.exit_code == 5, crossed_limit.output
    same = CliRunner().invoke(main, ["compare", a, a, "--fail-on", "worse"])
    assert same.exit_code == 0 and "gate passed" in same.output


def test_compare_refuses_other_experiments_unless_forced(tmp_path):
    a, b = _real(tmp_path, "a.json"), _real(tmp_path, "b.json", seed=7)
    refused = CliRunner().invoke(main, ["compare", a, b])
    assert refused.exit_code == ExitCode.USAGE
    assert "seed: 42" in refused.output and "Traceback" not in refused.output
    forced = CliRunner().invoke(main, ["compare", a, b, "--force"])
    assert forced.exit_code == 0 and "forced past: seed" in forced.output


@pytest.mark.parametrize("content, message", [(None, "no such file"), ("{nope", "not JSON"),
                                               ('{"a": 1}', "not a loadgen results document"),
                                               ('{"schema_version": "1.1", "tool": {"name": "loadgen"}, "runs": []}',
                                                "does not match the results schema")])
def test_a_bad_input_file_is_one_message_naming_it(tmp_path, content, message):
    good = _real(tmp_path, "good.json")
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    result = CliRunner().invoke(main, ["compare", good, str(bad)])
    assert result.exit_code == ExitCode.USAGE
    assert str(bad) in result.output and message in result.output and "Traceback" not in result.output
