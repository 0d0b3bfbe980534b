"""Schedules (linear, log) and parameter snapshots: steps, one program per group, save/load, bad input."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import grok
from grok import engine, sizing, store
from grok.config import TrainConfig
from grok.schedule import geometric_steps, schedule

TINY = {"task.p": 23, "task.train_fraction": 0.5, "model.widths": [32, 32]}


def tiny(**extra) -> grok.Config:
    return grok.preset("prieto-perpgrad").override(**(TINY | extra))


# --------------------------------------------------------------------------- the schedule itself
@settings(max_examples=60, deadline=None)
@given(steps=st.integers(1, 200_000), points=st.integers(2, 400))
def test_log_schedule_spans_the_run_once_per_step(steps, points):
    points = min(points, steps + 1)
    s = schedule(TrainConfig(steps=steps, log_every=1, schedule="log", log_points=points))
    assert s.steps[0] == 0 and s.steps[-1] == steps
    assert np.all(np.diff(s.steps) > 0)  # sorted, no duplicates: no step evaluated twice
    assert points <= len(s.steps) <= points + max(s.n_chunk, points // 10) + 1  # "about" log_points
    assert (len(s.steps) - 1) % s.n_chunk == 0  # the intervals fill whole compiled chunks
    assert s.lengths.sum() == steps
    if steps >= 2:
        assert 1 in s.steps  # the first decade is there


def test_log_schedule_is_geometric_after_the_first_steps():
    steps = geometric_steps(80_000, 100)
    assert len(steps) == 100 and list(steps[:4]) == [0, 1, 2, 3]
    ratios = steps[40:] / steps[39:-1]
    assert np.allclose(ratios, ratios.mean(), rtol=0.05)  # a constant ratio once rounding stops merging


def test_linear_schedule_is_the_log_every_grid():
    s = schedule(TrainConfig(steps=300, log_every=10))
    np.testing.assert_array_equal(s.steps, np.arange(0, 301, 10))
    assert tiny(**{"train.steps": 300}).n_intervals == 31


def test_snapshot_steps_follow_the_schedule_kind():
    lin = schedule(TrainConfig(steps=100, log_every=10, snapshots=3))
    assert list(lin.snapshots) == [0, 50, 100]
    log = schedule(TrainConfig(steps=10_000, schedule="log", log_points=60, snapshots=5))
    assert log.snapshots[0] == 0 and log.snapshots[-1] == 10_000 and len(log.snapshots) == 5
    assert np.isin(log.snapshots, log.steps).all()
    assert np.all(np.diff(np.log(log.snapshots[1:])) > 1.5)  # geometric, not even
    explicit = schedule(TrainConfig(steps=1000, schedule="log", log_points=20, snapshots=(3, 777, 0)))
    assert list(explicit.snapshots) == [0, 3, 777] and np.isin([3, 777], explicit.steps).all()


@pytest.mark.parametrize(
    ("fields", "field", "allowed"),
    [
        ({"train.schedule": "cosine"}, "train.schedule", "one of linear, log"),
        (
            {"train.schedule": "log", "train.steps": 50, "train.log_points": 52},
            "train.log_points",
            "at most train.steps + 1 = 51",
        ),
        ({"train.snapshots": [0, 41]}, "train.snapshots", "steps in [0, train.steps=40]"),
        ({"train.snapshots": [-1]}, "train.snapshots", "steps in [0, train.steps=40]"),
        ({"train.snapshots": [15]}, "train.snapshots", "multiples of train.log_every=10"),
        ({"train.snapshots": 6}, "train.snapshots", "at most the 5 evaluation points"),
        ({"train.snapshots": -2}, "train.snapshots", "an integer >= 0"),
        ({"train.snapshots": []}, "train.snapshots", "a count, or a non-empty list"),
        (
            {"train.schedule": "log", "train.log_points": 10, "train.probes": ["ntk"], "train.ntk_every": 20},
            "train.ntk_every",
            "no interval of its own with train.schedule='log'",
        ),
        (  # equal to log_every, which a log schedule does not use: refused too, not silently ignored
            {"train.schedule": "log", "train.log_points": 10, "train.probes": ["ntk"], "train.ntk_every": 10},
            "train.ntk_every",
            "no interval of its own with train.schedule='log'",
        ),
    ],
)
def test_bad_schedules_are_one_line_config_errors(fields, field, allowed):
    with pytest.raises(grok.ConfigError) as err:
        tiny(**{"train.steps": 40, "train.log_every": 10} | fields)
    assert err.value.field == field and allowed in err.value.allowed and "\n" not in str(err.value)


# --------------------------------------------------------------------------- the engine
def _nested_scans(cfg: grok.Config, seeds) -> tuple[dict, dict]:
    """The engine before schedules: jit(vmap(init)), then chunks of lax.scan over log intervals
    around lax.scan over `log_every` steps (MemberProgram's pieces)."""
    static, dyn = engine.stack_dynamic([cfg.override(seed=s) for s in seeds])
    prog = engine.member_program(static)
    n_chunk = engine.group_schedule(static).n_chunk

    def chunk(state, d):
        def interval(s, _):
            s = prog.train_interval(s, d)
            return s, prog.evaluate(s, d)

        return jax.lax.scan(interval, state, None, length=n_chunk)

    dyn = {k: jnp.asarray(v) for k, v in dyn.items()}
    state, first = jax.jit(jax.vmap(prog.init))(dyn)
    parts = [{k: np.asarray(v)[:, None] for k, v in first.items()}]
    for _ in range(static.train.steps // static.train.log_every // n_chunk):
        state, metrics = jax.jit(jax.vmap(chunk))(state, dyn)
        parts.append({k: np.asarray(v) for k, v in metrics.items()})
    return {k: np.concatenate([p[k] for p in parts], axis=1) for k in parts[0]}, state


def test_linear_schedule_gives_the_numbers_of_nested_scans(monkeypatch):
    monkeypatch.setenv("GROK_MEMBER_BLOCK", "0")
    cfg = tiny(**{"train.steps": 40, "train.log_every": 10, "train.probes": ["neurons"], "optim.batch_size": 32})
    run = grok.train(cfg, seeds=(0, 1), progress=False, shard=False)
    history, state = _nested_scans(cfg, (0, 1))
    for name, value in history.items():
        np.testing.assert_array_equal(run.history[name], value, err_msg=name)  # bit for bit
    final = grok.run.flatten_state(state.params)
    for name, value in final.items():
        np.testing.assert_array_equal(run.state[f"params/{name}"], value, err_msg=name)


@pytest.fixture(scope="module")
def log_run():
    cfg = tiny(**{"train.steps": 120, "train.schedule": "log", "train.log_points": 16, "train.snapshots": 6})
    return grok.train(cfg, seeds=(0, 1), progress=False)


def test_log_run_evaluates_at_the_scheduled_steps(log_run):
    steps = log_run.history["step"]
    np.testing.assert_array_equal(steps, schedule(log_run.config.train).steps)
    assert log_run.history["test_acc"].shape == (2, len(steps))
    # the logged accuracy at a snapshot step is that of the network snapshotted there: the
    # evaluation happened after exactly that many steps
    for step in log_run.steps_with_snapshots[1:3]:
        model, data = log_run.model(1, step=step), log_run.dataset(1)
        hit = np.argmax(np.asarray(model(data.x_train, train=False)), -1) == np.asarray(data.y_train)
        k = int(np.flatnonzero(steps == step)[0])
        assert hit.mean() == pytest.approx(log_run.history["train_acc"][1, k], abs=1e-6)


def test_log_schedule_is_one_program_with_one_loop_count_per_interval(log_run):
    # compiled within this test: conftest may drop compiled programs between tests (memory maps),
    # so the fixture's compile is not always still there
    grok.train(log_run.config, seeds=(0, 1), progress=False)
    before = grok.trace_count()
    grok.train(log_run.config.override(**{"optim.lr": 3e-3}), seeds=(0, 1), progress=False)
    assert grok.trace_count() == before  # a new dynamic number: nothing traced or compiled again
    static, dyn = engine.stack_dynamic([log_run.config.override(seed=s) for s in (0, 1)])
    sched = engine.group_schedule(static)
    prog = engine.member_program(static)
    state, _ = jax.vmap(prog.init)(dyn)
    one = functools.partial(engine._run_chunk, static, prog.spec, prog.fwd, sched.slots_per_chunk)
    plan = {"length": jnp.asarray(sched.lengths[0]), "slot": jnp.asarray(sched.slots[0])}
    jaxpr = jax.make_jaxpr(jax.vmap(one, in_axes=(0, 0, None)))(state, dyn, plan).jaxpr
    loops = list(_while_loops(jaxpr))
    assert loops
    # the trip count is not batched: every step loop tests one scalar, not one flag per member
    assert all(loop.params["cond_jaxpr"].jaxpr.outvars[0].aval.shape == () for loop in loops)


def _while_loops(jaxpr):
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "while":
            yield eqn
        for value in eqn.params.values():
            for sub in value if isinstance(value, (list, tuple)) else [value]:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _while_loops(inner)


# --------------------------------------------------------------------------- snapshots
def test_snapshots_are_saved_one_file_per_step_and_read_alone(log_run, tmp_path, monkeypatch):
    steps = log_run.steps_with_snapshots
    assert steps[0] == 0 and steps[-1] == 120 and len(steps) == 6
    path = log_run.save(tmp_path / "run")
    assert sorted(p.name for p in (path / "snapshots").iterdir()) == [f"step_{s:09d}.npz" for s in steps]
    back = grok.load_run(path)
    assert back.steps_with_snapshots == steps
    read = []
    real = store.read_npz
    monkeypatch.setattr(store, "read_npz", lambda p: read.append(p.name) or real(p))
    params = back.params_at(steps[2], member=1)
    assert read == [f"step_{steps[2]:09d}.npz"]  # one snapshot read, not all of them
    for name, value in log_run.params_at(steps[2], member=1).items():
        np.testing.assert_array_equal(params[name], value)
    # the last snapshot is the final state
    for name, value in back.params_at(120, 0).items():
        np.testing.assert_array_equal(value, log_run.state[f"params/{name}"][0])


def test_params_at_a_step_without_a_snapshot_names_the_nearest(log_run):
    missing = next(s for s in range(120) if s not in log_run.steps_with_snapshots and s > 10)
    with pytest.raises(grok.ConfigError, match=r"the nearest are \d+, \d+") as err:
        log_run.params_at(missing, 0)
    assert "\n" not in str(err.value)
    with pytest.raises(grok.ConfigError, match=r"member: got 2; allowed: an index in \[0, 2\)"):
        log_run.model(2, step=0)


def test_snapshots_count_in_the_memory_and_disk_checks(monkeypatch, tmp_path, capsys):
    cfg = tiny(**{"train.steps": 40, "train.log_every": 10, "train.snapshots": 5})
    plain = sizing.member_size(cfg.override(**{"train.snapshots": 0})).device
    size = sizing.member_size(cfg)
    with_snaps, per = size.device, size.snapshot
    assert with_snaps - plain >= 5 * per
    with pytest.raises(grok.ConfigError, match="seeds: got '4 members of .*at most 2 members at once"):
        sizing.check_run(cfg, 4, memory_bytes=with_snaps * 3)
    assert size.n_snapshots == 5 and size.disk(3) == 5 * 3 * per

    class Usage:
        free = 5 * 3 * per - 1

    monkeypatch.setattr("shutil.disk_usage", lambda _: Usage)
    before = grok.trace_count()
    with pytest.raises(grok.ConfigError, match="snapshots that fit on disk"):
        grok.train(cfg, seeds=(0, 1, 2), progress=False, out=tmp_path / "run")
    assert grok.trace_count() == before  # refused before anything compiled
