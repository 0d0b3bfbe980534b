"""The compiled engine: members, recompilation, divergence, precision, the store."""

import jax
import numpy as np
import pytest

import grok
from grok import engine
from grok.sizing import member_size
from grok.store import RunDirError

TINY = {
    "task.p": 23,
    "task.train_fraction": 0.5,
    "model.widths": [32, 32],
    "train.steps": 40,
    "train.log_every": 10,
}


def tiny(**extra) -> grok.Config:
    return grok.preset("prieto-perpgrad").override(**(TINY | extra))


@pytest.fixture(scope="module")
def three_seeds():
    return grok.train(tiny(), seeds=(0, 1, 2), progress=False)


def test_history_layout(three_seeds):
    run = three_seeds
    assert run.history["step"].tolist() == [0, 10, 20, 30, 40]
    for name in ("train_loss", "train_acc", "test_loss", "test_acc", "train_acc_clean", "weight_norm", "diverged"):
        assert run.history[name].shape == (3, 5), name
    assert run.seeds == [0, 1, 2]
    assert not run.diverged.any()
    # members really differ (different seeds → different init and split)
    assert not np.allclose(run.history["train_loss"][0], run.history["train_loss"][1])


def test_vmapped_members_equal_members_trained_alone(three_seeds):
    # float32: the logged losses agree; parameters drift apart only at float32 rounding,
    # which Adam amplifies for near-zero gradients, so the strict check is done in float64.
    alone = grok.train(tiny(), seeds=(1,), progress=False)
    for name in ("train_loss", "test_loss", "weight_norm"):
        np.testing.assert_allclose(alone.history[name][0], three_seeds.history[name][1], rtol=1e-4)

    cfg64 = tiny(**{"train.param_dtype": "float64", "loss.dtype": "float64"})
    together = grok.train(cfg64, seeds=(0, 1, 2), progress=False)
    for i, seed in enumerate((0, 1, 2)):
        alone = grok.train(cfg64, seeds=(seed,), progress=False)
        for name, value in alone.history.items():
            if name != "step":
                np.testing.assert_allclose(value[0], together.history[name][i], rtol=1e-9, atol=1e-12, err_msg=name)
        for key, value in alone.state.items():
            np.testing.assert_allclose(value[0], together.state[key][i], rtol=1e-9, atol=1e-12, err_msg=key)


def test_changing_dynamic_numbers_never_recompiles():
    first = grok.train(tiny(), seeds=(0, 1), progress=False)
    before = grok.trace_count()
    other = tiny(**{"optim.lr": 3e-3, "optim.weight_decay": 0.5, "optim.b2": 0.98})
    run = grok.train(other, seeds=(5, 6), progress=False)
    assert grok.trace_count() == before
    assert not np.allclose(run.history["train_loss"], first.history["train_loss"])
    grok.train(tiny(**{"model.widths": [16, 16]}), seeds=(0, 1), progress=False)
    assert grok.trace_count() == before + 2  # a static change compiles init and chunk anew


def test_bad_input_raises_before_anything_compiles():
    before = grok.trace_count()
    with pytest.raises(grok.ConfigError, match="task.p: got 22"):
        grok.train(tiny(**{"task.op": "div", "task.p": 22}), progress=False)
    with pytest.raises(grok.ConfigError, match="seed: got -1"):
        grok.train(tiny(), seeds=(0, -1), progress=False)
    assert grok.trace_count() == before


def test_a_diverging_member_is_flagged_and_frozen_others_unaffected():
    cfg = tiny(**{"optim.kind": "sgd", "optim.transforms": [], "loss.kind": "mse_onehot"})
    pair = grok.train_members(cfg, [{"optim.lr": 0.1}, {"optim.lr": 1e10}], progress=False)
    alone = grok.train_members(cfg, [{"optim.lr": 0.1}, {"optim.lr": 0.1}], progress=False)
    assert pair.diverged.tolist() == [False, True]
    assert pair.history["diverged"][1, -1] and not pair.history["diverged"][0].any()
    assert pair.status["diverged_step"][1] >= 0 and pair.status["diverged_step"][0] == -1
    for value in pair.state.values():
        assert np.isfinite(value).all()  # the diverged member keeps its last finite state
    np.testing.assert_allclose(pair.history["train_loss"][0], alone.history["train_loss"][0], rtol=1e-6)
    assert "DIVERGED" in pair.summary().splitlines()[1]


def test_float64_run_keeps_float64(tmp_path):
    cfg = grok.preset("prieto-stablemax").override(**(TINY | {"train.steps": 20}))
    mixed = grok.train(cfg, progress=False)  # float32 parameters, StableMax loss in float64
    assert jax.config.read("jax_enable_x64")
    assert all(v.dtype == np.float32 for k, v in mixed.state.items() if k.startswith("params/"))
    assert mixed.history["train_loss"].dtype == np.float64
    run = grok.train(cfg.override(**{"train.param_dtype": "float64"}), progress=False)
    assert all(v.dtype == np.float64 for k, v in run.state.items() if k.startswith("params/"))
    assert np.isfinite(run.history["train_loss"]).all()
    assert run.history["train_loss"][0, -1] < run.history["train_loss"][0, 0]


def test_save_and_load_round_trip(three_seeds, tmp_path):
    path = three_seeds.save(tmp_path / "run")
    back = grok.load_run(path)
    assert back.config == three_seeds.config and back.members == three_seeds.members
    for name, value in three_seeds.history.items():
        np.testing.assert_array_equal(back.history[name], value)
    for name, value in three_seeds.state.items():
        np.testing.assert_array_equal(back.state[name], value)
    # the rebuilt model reproduces the logged final test accuracy
    model, data = back.model(1), back.dataset(1)
    acc = float(np.mean(np.argmax(np.asarray(model(data.x_test, train=False)), -1) == np.asarray(data.y_test)))
    assert acc == pytest.approx(back.history["test_acc"][1, -1], abs=1e-6)
    assert not list(tmp_path.glob("run/.*tmp"))


def test_incomplete_run_directory_is_a_clear_error(three_seeds, tmp_path):
    path = three_seeds.save(tmp_path / "run")
    (path / "status.json").unlink()
    with pytest.raises(RunDirError, match="incomplete"):
        grok.load_run(path)
    with pytest.raises(RunDirError, match="does not exist"):
        grok.load_run(tmp_path / "nowhere")


def test_chunking_divides_the_run():
    for steps, log_every in [(40, 10), (2000, 20), (300, 10), (70, 10)]:
        cfg = tiny(**{"train.steps": steps, "train.log_every": log_every})
        n = engine.group_schedule(cfg).n_chunk
        assert (steps // log_every) % n == 0


def test_minibatch_and_dropout_run():
    cfg = tiny(**{"optim.batch_size": 64, "model.dropout": 0.1})
    run = grok.train(cfg, seeds=(0, 1), progress=False)
    assert np.isfinite(run.history["train_loss"]).all()
    assert run.history["train_loss"][0, -1] < run.history["train_loss"][0, 0]


def test_members_differing_in_a_static_field_are_refused_before_compiling():
    before = grok.trace_count()
    with pytest.raises(ValueError, match=r"member 1 differs from member 0 in static fields \['task.p'\]"):
        grok.train_members(tiny(), [{"seed": 0}, {"task.p": 29}], progress=False)
    assert grok.trace_count() == before


def test_member_blocks_and_shards_give_the_same_numbers(monkeypatch):
    # float64 so that any difference in what is computed shows; 5 members leave a remainder
    # block (2 + 2 + 1), and sharded over the 4 test devices they are padded to 8 (2 per device)
    cfg64 = tiny(**{"train.param_dtype": "float64", "loss.dtype": "float64"})
    seeds = (0, 1, 2, 3, 4)
    monkeypatch.setenv("GROK_MEMBER_BLOCK", "0")
    whole = grok.train(cfg64, seeds=seeds, progress=False, shard=False)
    for block, shard in (("2", False), ("1", True)):
        monkeypatch.setenv("GROK_MEMBER_BLOCK", block)
        run = grok.train(cfg64, seeds=seeds, progress=False, shard=shard)
        for name, value in whole.history.items():
            np.testing.assert_allclose(run.history[name], value, rtol=1e-9, atol=1e-12, err_msg=f"{block} {name}")
        for key, value in whole.state.items():
            np.testing.assert_allclose(run.state[key], value, rtol=1e-9, atol=1e-12, err_msg=f"{block} {key}")


def test_member_block_choice(monkeypatch):
    cfg = tiny()
    monkeypatch.delenv("GROK_MEMBER_BLOCK", raising=False)
    assert engine.member_block(cfg, 10_000) == 1  # CPU default: one member at a time (reproducible)
    monkeypatch.setenv("GROK_MEMBER_BLOCK", "auto")
    auto = engine.member_block(cfg, 10_000)
    assert auto is not None and auto >= 1  # CPU: blocks of members that fit the cache
    assert engine.member_block(cfg, 1) == 1  # a lone member walks the unbatched step, not a vmap of one
    bigger = cfg.override(**{"task.p": 97, "model.widths": [256, 256]})
    assert member_size(bigger).working_set > member_size(cfg).working_set
    assert engine.member_block(bigger, 10_000) <= auto
    monkeypatch.setenv("GROK_MEMBER_BLOCK", "0")
    assert engine.member_block(cfg, 64) is None
    monkeypatch.setenv("GROK_MEMBER_BLOCK", "8")
    assert engine.member_block(cfg, 64) == 8
    assert engine.member_block(cfg, 8) is None  # a block as large as the device's share is no block
    monkeypatch.setenv("GROK_MEMBER_BLOCK", "eight")
    with pytest.raises(ValueError, match="GROK_MEMBER_BLOCK='eight'"):
        engine.member_block(cfg, 64)


def test_ntk_groups_stay_on_one_cpu_device():
    # the NTK probe's LAPACK solve can deadlock XLA's CPU thread pool when devices run it at once
    assert engine.shardable(tiny())
    assert not engine.shardable(tiny(**{"train.probes": ["ntk"]}))


def test_path_length_adds_each_steps_global_norm_of_the_parameter_change():
    """path_length(t) = Σ_{s<t} ‖θ_{s+1} − θ_s‖ (global L2): with a snapshot after every step, each
    increment is the norm of the difference of two snapshots, computed in float64 by numpy."""
    cfg = tiny(**{"train.steps": 4, "train.log_every": 1, "train.snapshots": [0, 1, 2, 3, 4]})
    run = grok.train(cfg, progress=False)
    snaps = [run.snapshots[s] for s in range(5)]
    moved = [
        np.sqrt(sum(np.sum((b[k].astype(np.float64)[0] - a[k].astype(np.float64)[0]) ** 2) for k in a))
        for a, b in zip(snaps[:-1], snaps[1:], strict=True)
    ]
    assert min(moved) > 0
    np.testing.assert_allclose(np.diff(run.history["path_length"][0]), moved, rtol=1e-5)
