"""benchmarks/bench_limits.py: the verdict it prints for each speed goal."""

from benchmarks.bench_limits import GOALS, SETTINGS, goal_lines, setting_key


def test_each_goal_is_judged_on_the_right_side_of_its_bound():
    out = {
        "prieto_softmax_collapse_engine_step_of_limit": 0.749,
        "doshi_coexistence_engine_step_of_limit": 0.60,
        "doshi_coexistence_tiny_engine_run_over_plain": 1.31,
    }
    assert goal_lines(out) == [
        "[P] engine step: 74.9% of the limit (goal ≥ 75%): not met",
        "[D] paper-size lone step: 60.0% of the limit (goal ≥ 60%): met",
        "tiny lone run: 1.31× the plain-JAX step (goal ≤ 1.3×): not met",
    ]
    out["doshi_coexistence_tiny_engine_run_over_plain"] = 1.25
    assert goal_lines(out)[-1] == "tiny lone run: 1.25× the plain-JAX step (goal ≤ 1.3×): met"


def test_a_goal_without_its_figure_is_left_out():
    assert goal_lines({}) == []
    only = {GOALS[1][1]: 0.7}
    assert goal_lines(only) == ["[D] paper-size lone step: 70.0% of the limit (goal ≥ 60%): met"]


def test_the_goals_read_keys_that_run_writes():
    # run() writes f"{key}_engine_step_of_limit" and f"{key}_engine_run_over_plain" for each setting's key
    keys = {setting_key(name, overrides) for _, name, overrides, *_ in SETTINGS}
    written = {f"{k}_engine_step_of_limit" for k in keys} | {f"{k}_engine_run_over_plain" for k in keys}
    assert {key for _, key, *_ in GOALS} <= written


def test_an_unmet_share_of_the_limit_says_what_the_goal_leaves_beside_the_products():
    out = {
        "prieto_softmax_collapse_engine_step_of_limit": 6.0 / 10.0,
        "prieto_softmax_collapse_limit_ms": 6.0,
        "prieto_softmax_collapse_products_ms": 7.0,
        "prieto_softmax_collapse_engine_step_ms": 10.0,
    }
    # 75% of a 6 ms limit allows an 8 ms step: 1 ms beside the 7 ms of products, 3 ms now
    assert goal_lines(out) == [
        "[P] engine step: 60.0% of the limit (goal ≥ 75%): not met",
        "  at 75% a step takes 8.00 ms; its matrix products alone take 7.00 ms, leaving 1.00 ms for the rest of the "
        "step, which now takes 3.00 ms",
    ]
    out["prieto_softmax_collapse_products_ms"] = 8.5
    assert goal_lines(out)[1].endswith(
        "more than that, so no step made of these products reaches the goal on this machine"
    )
    out["prieto_softmax_collapse_engine_step_of_limit"] = 0.8  # met: no second line
    assert len(goal_lines(out)) == 1
