"""benchmarks/timing.py: the fastest of the timed calls, and enough of them when the calls are short."""

import time

from benchmarks.timing import best_seconds


def _counting_sleeper(seconds: float):
    calls = []

    def fn():
        calls.append(None)
        time.sleep(seconds)
        return 0

    return fn, calls


def test_repeats_alone_times_that_many_calls_after_the_compiling_one():
    fn, calls = _counting_sleeper(0.001)
    assert best_seconds(fn, repeats=3) >= 0.001
    assert len(calls) == 1 + 3


def test_short_calls_go_on_until_min_seconds_of_timed_calls():
    fn, calls = _counting_sleeper(0.002)
    best = best_seconds(fn, repeats=2, min_seconds=0.05)
    assert 0.002 <= best < 0.05
    timed = len(calls) - 1
    assert 2 < timed <= 25  # 0.05 s of calls of ≥ 2 ms each: more than the 2 repeats, at most 25


def test_max_calls_bounds_the_loop():
    fn, calls = _counting_sleeper(0.0)
    best_seconds(fn, repeats=1, min_seconds=60.0, max_calls=7)
    assert len(calls) == 1 + 7
