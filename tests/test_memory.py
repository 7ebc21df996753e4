"""Memory fixed cost and growth: the fit on fabricated points, and the known answers through the CLI."""

import json

import pytest

from loadgen.memory import fit_growth, growth_delta, growth_points, memory_cost
from loadgen.results import merge
from tests.conftest import run_cli
from tests.test_metrics import result, worker

MIB = 2**20


def line(level_mib: float, slope_mib_per_1k: float, calls: list[int]) -> list[tuple[int, int]]:
    """Exact (calls, RSS bytes) points on a line."""
    return [(c, round((level_mib + slope_mib_per_1k * c / 1000) * MIB)) for c in calls]


def test_a_known_slope_and_each_workers_level_come_back():
    # Two workers (shards or replicas), one common slope of 0.5 MiB per 1,000 calls, levels 100 and 110 MiB.
    fit = fit_growth([line(100, 0.5, [250, 500, 750, 1000]), line(110, 0.5, [300, 600, 900])])
    assert fit.slope == pytest.approx(0.5, abs=1e-6)
    assert fit.levels == pytest.approx([100, 110], abs=1e-5)
    assert fit.dof == 7 - 2 - 1
    low, high = fit.ci95()
    assert low == pytest.approx(0.5, abs=1e-4) and high == pytest.approx(0.5, abs=1e-4)  # exact points: no spread


def test_a_step_between_workers_is_not_growth():
    # A second process starts 20 MiB higher and takes the later calls; each one is flat.
    first, second = line(100, 0, [250, 500, 750]), line(120, 0, [1000, 1250, 1500])
    fit = fit_growth([first, second])
    assert fit.slope == pytest.approx(0, abs=1e-6)
    assert fit.levels == pytest.approx([100, 120], abs=1e-5)
    # One level for both would have read the step as growth: the test can tell the two apart.
    assert fit_growth([first + second]).slope > 10


def test_the_ci_is_student_t_on_the_slopes_standard_error():
    # x = 1, 2, 3 thousand calls, y = 0, 1, 1 MiB: slope 0.5, residuals −1/6, 1/3, −1/6 (Σ² = 1/6),
    # Sxx = 2, one degree of freedom (3 points − 1 level − 1): half-width 12.706 · √(1/6 / 1 / 2).
    fit = fit_growth([[(1000, 0), (2000, MIB), (3000, MIB)]])
    half = 12.706 * (1 / 12) ** 0.5
    assert fit.slope == pytest.approx(0.5)
    assert fit.ci95() == pytest.approx([0.5 - half, 0.5 + half])


def test_no_slope_without_two_call_counts_and_no_ci_without_a_degree_of_freedom():
    assert fit_growth([]) is None
    assert fit_growth([[(500, 100 * MIB)], [(600, 90 * MIB)]]) is None
    two = fit_growth([line(100, 2, [500, 1000])])
    assert two.slope == pytest.approx(2) and two.ci95() is None


def test_the_delta_pools_both_arms_residuals():
    base = fit_growth([[(1000, 0), (2000, MIB), (3000, MIB)]])  # slope 0.5, Σ² 1/6, Sxx 2, 1 dof
    arm = fit_growth([[(1000, 0), (2000, 2 * MIB), (3000, 2 * MIB)]])  # slope 1, Σ² 2/3, Sxx 2, 1 dof
    delta, ci = growth_delta(base, arm)
    half = 4.303 * ((1 / 6 + 2 / 3) / 2 * (1 / 2 + 1 / 2)) ** 0.5  # 2 degrees of freedom
    assert delta == pytest.approx(0.5)
    assert ci == pytest.approx([0.5 - half, 0.5 + half])


def test_the_priming_point_is_left_out_of_the_fit():
    # After priming 60 MiB; the first block's one-time costs lift it to 62 MiB, then it is flat.
    run = result(rss_retained=[(1, 60 * MIB), *line(62, 0, [251, 501, 751])])
    assert growth_points(run) == [line(62, 0, [251, 501, 751])]
    assert fit_growth(growth_points(run)).slope == pytest.approx(0, abs=1e-6)


def worker_result(points: list[list[tuple[int, int]]], steady_mib: float):
    """A run whose workers retained these points after priming at 50 MiB, each steady at `steady_mib`."""
    return merge([worker(shard=k, rss_retained=[(1, 50 * MIB), *p], rss_samples=[(1.0, round(steady_mib * MIB))],
                         measure_start_s=0.5) for k, p in enumerate(points)])


def test_memory_cost_takes_the_fixed_cost_and_growth_against_the_baseline():
    # The baseline grows 0.2 MiB/1k itself (caches filling); the arm holds 50 MiB more and leaks 1 MiB/1k on top.
    calls = [250, 500, 750, 1000]
    baseline = worker_result([line(66, 0.2, calls)], steady_mib=66.1)
    arm = worker_result([line(116, 1.2, calls), line(117, 1.2, calls)], steady_mib=117.0)
    cost = memory_cost(baseline, arm)
    assert cost["memory_fixed_mib"] == pytest.approx(50.5)  # levels 116 and 117 against 66
    assert cost["memory_growth_mib_per_1k_ops"] == pytest.approx(1.0)
    assert cost["memory_growth_ci95_mib_per_1k_ops"] == pytest.approx([1.0, 1.0], abs=1e-3)
    assert cost["rss_growth_mib_per_1k_ops"] == pytest.approx(1.2)
    assert cost["memory_overhead_mib"] == pytest.approx(50.9)
    assert cost["memory_overhead_percent"] is not None


def test_a_baseline_has_its_own_growth_and_nothing_against_itself():
    baseline = worker_result([line(66, 0.2, [250, 500, 750])], steady_mib=66.0)
    cost = memory_cost(None, baseline)
    assert cost["rss_growth_mib_per_1k_ops"] == pytest.approx(0.2)
    assert cost["memory_fixed_mib"] is cost["memory_growth_mib_per_1k_ops"] is cost["memory_overhead_mib"] is None


def test_without_points_every_figure_is_none():
    # A soak (its own memory figures) or a run cut short before its first block ended.
    cost = memory_cost(result(rss_retained=[(1, 60 * MIB)]), result(rss_retained=[]))
    assert {key for key, value in cost.items() if value is not None} == set()


def test_merge_keeps_one_list_of_points_per_worker():
    a = worker(shard=0, rss_samples=[], cpu_seconds_total=1.0, last_done_ns=1, rss_retained=[(1, 1), (10, 2)])
    b = worker(shard=1, rss_samples=[], cpu_seconds_total=1.0, last_done_ns=1, rss_retained=[(1, 3), (12, 4)])
    assert merge([b, a]).rss_retained_by_worker == [[(1, 1), (10, 2)], [(1, 3), (12, 4)]]


@pytest.mark.e2e
def test_known_answers_50_mib_held_and_1_kib_leaked_per_call(tmp_path):
    # One run, both known answers: the calibration arm holds 50 MiB for the run (fixed cost, no
    # growth) and keeps 1 KiB more after every call (growth 1 KiB × 1,000 = 0.98 MiB per 1,000
    # calls; ~1.1 is measured: the allocator's chunk overhead and the pages the leaked chunks pin).
    out = tmp_path / "r.json"
    done = run_cli("run", "--provider", "openai", "--arms", "baseline,calibration", "--rate", "100",
                   "--duration", "10s", "--rounds", "8", "--replicas", "1",  # 8 points per worker
                   "--calibrate-mib", "50", "--calibrate-leak-kib", "1", "--quiet", "--export-json", str(out))
    assert done.returncode in (0, 3), done.stderr  # 3: a busy machine's dispatch lag, not this test's subject
    runs = {run["arm"]: run for run in json.loads(out.read_text())["runs"]}
    calibration = runs["calibration"]
    assert calibration["memory_fixed_mib"] == pytest.approx(50, abs=5)
    assert calibration["memory_growth_mib_per_1k_ops"] == pytest.approx(1.0, abs=0.2)
    low, high = calibration["memory_growth_ci95_mib_per_1k_ops"]
    assert low <= calibration["memory_growth_mib_per_1k_ops"] <= high and high - low < 0.6
    assert runs["baseline"]["memory_fixed_mib"] is None and runs["baseline"]["rss_growth_mib_per_1k_ops"] is not None


def test_the_fixed_costs_ci_is_welchs_over_the_worker_levels():
    from loadgen.memory import fixed_ci

    # Levels 10, 11 against 15, 16: Δ 5, SE √(0.25 + 0.25), Welch df 2, t 4.303.
    low, high = fixed_ci([10.0, 11.0], [15.0, 16.0])
    assert (low + high) / 2 == pytest.approx(5.0)
    assert high - 5.0 == pytest.approx(4.303 * 0.5**0.5, rel=1e-3)
    assert fixed_ci([10.0], [15.0, 16.0]) is None  # one worker: no spread to go by
    assert fixed_ci([10.0, 10.0], [12.0, 12.0]) == [2.0, 2.0]
