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


def test_vmapped_members_with_an_override_are_timed(capsys):
    profile_step.main(["[D] tiny", "--members", "2", "--steps", "3", "--set", "task.p=7", "--top", "3"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("[D] tiny: 2 members, ") and "ms per step untraced" in lines[0]
    assert float(lines[0].split("members, ")[1].split(" ms")[0]) > 0
    rows = [line for line in lines if " ms  ×" in line]
    assert 1 <= len(rows) <= 3 and any("[2,7," in row or "[2,14," in row for row in rows)  # p = 7: 7 classes, 2p rows


def test_bad_member_count_is_one_clear_line():
    with pytest.raises(SystemExit, match=r"--members and --steps: got 0 and None"):
        profile_step.main(["[D] tiny", "--members", "0"])
