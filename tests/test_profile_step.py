"""benchmarks/profile_step.py: the trace's events are summed per operation and named from the compiled program."""

import jax
import jax.numpy as jnp
import pytest

from benchmarks import profile_step


def test_op_times_sums_each_operations_events_per_call_largest_first():
    events = [
        {"ph": "X", "name": "dot.1", "dur": 300.0},
        {"ph": "X", "name": "fusion", "dur": 100.0},
        {"ph": "X", "name": "dot.1", "dur": 500.0},
        {"ph": "i", "name": "marker"},  # not a complete event
        {"ph": "X", "name": "fusion", "dur": 60.0},
    ]
    rows = profile_step.op_times(events, calls=2)
    assert rows == [("dot.1", 0.4, 1.0), ("fusion", 0.08, 1.0)]


def test_a_traced_program_names_its_matmul_and_the_time_is_found():
    a = jnp.ones((256, 256))

    @jax.jit
    def f(a):
        return jnp.tanh(a @ a)

    ops = profile_step.hlo_ops(f.lower(a).compile().as_text())
    matmuls = [name for name, (shape, op) in ops.items() if op in ("dot_general", "dot") and "256,256" in shape]
    assert matmuls, ops
    rows = profile_step.op_times(profile_step.profile(f, (a,), calls=2), calls=2)
    traced = {name: ms for name, ms, _ in rows if name in ops}
    assert traced and all(ms >= 0 for ms in traced.values())


def test_an_unknown_setting_is_one_clear_line():
    with pytest.raises(SystemExit, match=r"setting: got '\[Q\]'; allowed: the start of one of"):
        profile_step.setting_program("[Q]")
