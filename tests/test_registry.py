"""The four registries: user probes, transforms, tasks and models, and every bad input around them."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import grok
import tasks
from grok import registry
from grok.config import Config, is_dynamic
from grok.presets import config_from_toml

BASE = {
    "task.p": 11,
    "task.train_fraction": 0.6,
    "model.widths": [16, 16],
    "train.steps": 20,
    "train.log_every": 10,
}


def tiny(**extra) -> grok.Config:
    return grok.preset("prieto-perpgrad-small").override(**(BASE | extra))


@pytest.fixture(autouse=True)
def clean_registries():
    """Each test registers what it needs; the registries are put back as they were afterwards."""
    saved = {
        reg.kind: dict(reg._items) for reg in (registry.PROBES, registry.TRANSFORMS, registry.TASKS, registry.MODELS)
    }
    yield
    for reg in (registry.PROBES, registry.TRANSFORMS, registry.TASKS, registry.MODELS):
        reg._items.clear()
        reg._items.update(saved[reg.kind])


def _first_layer_mean_abs(x: grok.ProbeInputs) -> dict:
    return {"first_layer_mean_abs": jnp.mean(jnp.abs(x.params["first"]["kernel"][...]))}


# --------------------------------------------------------------------------- probes
def test_user_probe_equals_the_same_function_on_the_host():
    grok.register_probe("first_layer_mean_abs", _first_layer_mean_abs)

    @grok.register_probe("margin")  # uses the outputs, the data and a reference taken at step 0
    def margin(x):
        correct = jnp.take_along_axis(x.outputs_train, x.data.y_train[:, None], axis=1)[:, 0]
        return {
            "mean_margin": jnp.mean(correct - jnp.max(x.outputs_train, axis=1)),
            "drift": x.loss_train.mean() - x.ref,
        }

    grok.register_probe("margin", margin, init=lambda x: x.loss_train.mean())  # re-registered: with an init
    cfg = tiny(**{"train.probes": ["collapse", "first_layer_mean_abs", "margin"]})
    run = grok.train(cfg, seeds=(0, 1), progress=False)
    assert run.history["first_layer_mean_abs"].shape == (2, cfg.n_intervals)
    for i in range(2):
        model = run.model(i)
        host = float(jnp.mean(jnp.abs(model.first.kernel[...])))
        np.testing.assert_allclose(run.history["first_layer_mean_abs"][i, -1], host, rtol=1e-6)
        data = run.dataset(i)
        out = np.asarray(model(data.x_train, train=False))
        correct = out[np.arange(len(out)), np.asarray(data.y_train)]
        np.testing.assert_allclose(
            run.history["mean_margin"][i, -1], np.mean(correct - out.max(1)), rtol=1e-5, atol=1e-6
        )
        drift = run.history["train_loss"][i, -1] - run.history["train_loss"][i, 0]
        np.testing.assert_allclose(run.history["drift"][i, -1], drift, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(run.history["drift"][:, 0], 0.0, atol=1e-6)  # the reference is step 0 itself


def test_user_probe_history_survives_save_and_load_without_the_registration(tmp_path):
    grok.register_probe("first_layer_mean_abs", _first_layer_mean_abs)
    run = grok.train(tiny(**{"train.probes": ["first_layer_mean_abs"]}), seeds=(0,), progress=False)
    run.save(tmp_path / "r")
    del registry.PROBES._items["first_layer_mean_abs"]
    loaded = grok.load_run(tmp_path / "r")
    np.testing.assert_array_equal(loaded.history["first_layer_mean_abs"], run.history["first_layer_mean_abs"])
    assert loaded.config.train.probes == ("first_layer_mean_abs",)


def test_a_probe_with_its_own_interval_is_nan_between():
    grok.register_probe(
        "slow_norm", lambda x: {"slow_norm": jnp.sqrt(sum(jnp.sum(p**2) for p in jax.tree.leaves(x.params)))}, every=20
    )
    run = grok.train(tiny(**{"train.steps": 40, "train.probes": ["slow_norm"]}), seeds=(0,), progress=False)
    slow = run.history["slow_norm"][0]
    assert np.isnan(slow[1]) and np.isnan(slow[3])
    np.testing.assert_allclose(slow[[0, 2, 4]], run.history["weight_norm"][0, [0, 2, 4]], rtol=1e-5)


def test_re_registering_a_probe_is_used_by_the_next_run():
    grok.register_probe("constant", lambda x: {"constant": jnp.asarray(1.0)})
    first = grok.train(tiny(**{"train.probes": ["constant"]}), progress=False)
    grok.register_probe("constant", lambda x: {"constant": jnp.asarray(2.0)})  # the same cell, run again
    second = grok.train(tiny(**{"train.probes": ["constant"]}), progress=False)
    assert first.history["constant"][0, -1] == 1.0 and second.history["constant"][0, -1] == 2.0


@pytest.mark.parametrize(
    "fn, message",
    [
        (lambda x: 3, "a dict of metric name -> array"),
        (lambda x: {"v": "high"}, "a numeric array or number"),
        (lambda x: {"v": x.data.y_train[x.data.y_train > 3]}, "shapes fixed by the config"),
        (lambda x: {"v": jnp.zeros(int(x.dyn["optim.lr"] * 1000))}, "shapes fixed by the config"),
        (lambda x: {"test_acc": jnp.asarray(0.0)}, "not already logged by the engine"),
        (lambda x: {"sc_fraction": jnp.asarray(0.0)}, "not already logged by probe 'collapse'"),
    ],
    ids=["not-a-dict", "not-an-array", "data-dependent-shape", "shape-per-member", "engine-name", "probe-name"],
)
def test_bad_probe_outputs_are_refused_naming_the_probe(fn, message):
    grok.register_probe("bad", fn)
    before = grok.trace_count()
    with pytest.raises(grok.ConfigError, match=message) as err:
        grok.train(tiny(**{"train.probes": ["collapse", "bad"]}), progress=False)
    assert "probe 'bad'" in str(err.value)
    assert grok.trace_count() - before <= 1  # stopped while tracing the first program


# --------------------------------------------------------------------------- transforms
def test_user_transform_numbers_differ_per_member_without_recompiling():
    @grok.register_transform("grad_scale", scale=1.0)
    def grad_scale(scale):
        return optax.scale(scale)

    cfg = tiny(**{"optim.kind": "sgd", "optim.transforms": ["grad_scale"], "optim.lr": 0.5})
    assert cfg.get("optim.grad_scale.scale") == 1.0
    first = grok.train_members(cfg, [{"optim.grad_scale.scale": s} for s in (0.0, 1.0)], progress=False)
    traces = grok.trace_count()
    again = grok.train_members(cfg, [{"optim.grad_scale.scale": s} for s in (0.5, 2.0)], progress=False)
    assert grok.trace_count() == traces  # new numbers, the same program
    norms = first.history["weight_norm"]
    np.testing.assert_allclose(norms[0], norms[0, 0], rtol=1e-6)  # scale 0: SGD never moves
    assert not np.allclose(norms[1], norms[1, 0])
    assert not np.allclose(again.history["train_loss"][0], again.history["train_loss"][1])


def test_transform_options_are_checked_and_round_trip(tmp_path):
    grok.register_transform(
        "clip",
        lambda max_norm, mode: optax.clip_by_global_norm(max_norm),
        max_norm=1.0,
        mode="global",
        ranges={"max_norm": (1e-6, 1e6)},
    )
    cfg = tiny(**{"optim.transforms": ["perp_grad", "clip"], "optim.clip.max_norm": 0.5})
    assert cfg.optim.chain == ("perp_grad", "clip", "adamw")
    assert Config.from_json(cfg.to_json()) == cfg
    (tmp_path / "c.toml").write_text(cfg.to_toml())
    assert config_from_toml(tmp_path / "c.toml") == cfg
    with pytest.raises(grok.ConfigError, match=r"optim.clip.max_norm: got 0.0; allowed: a number in \[1e-06"):
        cfg.override(**{"optim.clip.max_norm": 0.0})
    with pytest.raises(grok.ConfigError, match="optim.clip.mode: got 3; allowed: a string"):
        cfg.override(**{"optim.clip.mode": 3})
    with pytest.raises(grok.ConfigError, match="optim.clip.norm: got 1; allowed: an option of transform 'clip'"):
        Config.from_dict(cfg.to_dict() | {"optim": cfg.to_dict()["optim"] | {"clip": {"norm": 1}}})
    assert is_dynamic("optim.clip.max_norm") and not is_dynamic("optim.clip.mode")


def test_perp_grad_is_a_registered_transform_and_old_configs_migrate():
    old = tiny().to_dict()
    old["optim"].pop("transforms"), old["optim"].pop("perp_grad")
    old["optim"] |= {"perp_grad": True, "perp_rescale": False}
    cfg = Config.from_dict(old)
    assert cfg.optim.transforms == ("perp_grad",) and cfg.get("optim.perp_grad.rescale") is False
    with pytest.raises(grok.ConfigError, match="optim.transforms=\\['perp_grad'\\]"):
        tiny(**{"optim.perp_grad": True})


# --------------------------------------------------------------------------- tasks and models
def _copy_spec(task):
    p = task.options_of("copy_a")["p"]
    n_all = p * p
    n_train = math.floor(task.train_fraction * n_all)
    return tasks.TaskSpec("copy_a", p, p, 2, n_train, n_all - n_train, n_all)


def _copy_build(task, key, corrupt_fraction, dtype):
    """(a, b) -> a: the label is the first token."""
    s = _copy_spec(task)
    a, b = jnp.meshgrid(jnp.arange(s.n_classes), jnp.arange(s.n_classes), indexing="ij")
    x = jnp.stack([a.ravel(), b.ravel()], axis=1).astype(jnp.int32)
    perm = jax.random.permutation(key, s.n_all)
    train, test = perm[: s.n_train], perm[s.n_train :]
    return tasks.dataset_from_split(x[train], x[train, 0], x[test], x[test, 0])


class _Wide(nnx.Module):
    """One hidden layer over the concatenated token embeddings."""

    def __init__(self, p: int, width: int, n_classes: int, rngs: nnx.Rngs, param_dtype):
        self.embed = nnx.Embed(p, width, rngs=rngs, param_dtype=param_dtype)
        self.out = nnx.Linear(2 * width, n_classes, rngs=rngs, param_dtype=param_dtype)

    def __call__(self, x, train: bool = False):
        h = self.embed(x).reshape(x.shape[0], -1)
        return self.out(jax.nn.relu(h))


def _build_wide(model_cfg, spec, *, rngs, param_dtype, **dynamic):
    return _Wide(spec.n_tokens, model_cfg.options_of("wide")["width"], spec.n_classes, rngs, param_dtype)


def _register_task_and_model():
    grok.register_task("copy_a", spec=_copy_spec, build=_copy_build, fields=("train_fraction",), p=7)
    grok.register_model("wide", build=_build_wide, width=16)


def test_user_task_and_model_train_save_load_and_rebuild(tmp_path):
    _register_task_and_model()
    cfg = tiny(
        **{
            "task.kind": "copy_a",
            "task.copy_a.p": 5,
            "model.kind": "wide",
            "model.wide.width": 8,
            "optim.transforms": [],
            "train.steps": 600,
            "train.log_every": 100,
        }
    )
    run = grok.train(cfg, seeds=(0, 1), progress=False)
    assert run.history["test_acc"][:, -1].min() == 1.0  # copying a token is learned (measured: by step 600)
    run.save(tmp_path / "r")
    loaded = grok.load_run(tmp_path / "r")
    model = loaded.model(1)
    data = loaded.dataset(1)
    out = model(data.x_test)
    assert float(jnp.mean(jnp.argmax(out, 1) == data.y_test)) == run.history["test_acc"][1, -1]
    with pytest.raises(grok.ConfigError, match="model 'wide'|prunable"):
        grok.prune(loaded)


def test_a_run_with_an_unregistered_model_loads_but_cannot_rebuild(tmp_path):
    _register_task_and_model()
    cfg = tiny(**{"task.kind": "copy_a", "model.kind": "wide"})
    grok.train(cfg, seeds=(0,), progress=False).save(tmp_path / "r")
    del registry.MODELS._items["wide"]
    run = grok.load_run(tmp_path / "r")  # history and config are data
    assert run.config.model.kind == "wide" and run.history["test_acc"].shape == (1, cfg.n_intervals)
    with pytest.raises(grok.ConfigError, match="model.kind: got 'wide'; allowed: a registered model: .*register it"):
        run.model(0)


def test_unregistered_names_are_config_errors_naming_the_registered_ones():
    cases = {
        "train.probes": (["colapse"], "a registered probe: collapse, "),
        "optim.transforms": (
            ["grokfast_typo"],
            "a registered transform: adamw, adam, sgd, fixed_norm, grokfast_ema, grokfast_ma, muon, perp_grad",
        ),
        "optim.kind": ("rmsprop", "a registered transform: adamw"),
        "task.kind": ("modulo", "a registered task: modular, polynomial, parity"),
        "model.kind": ("resnet", "a registered model: "),
    }
    for field, (value, allowed) in cases.items():
        with pytest.raises(grok.ConfigError, match=field.replace(".", r"\.") + r"(\[0\])?: got .*allowed: " + allowed):
            tiny(**{field: value})


def test_taking_over_a_name_another_module_owns_needs_replace():
    with pytest.raises(grok.RegistryError, match="registered by module 'grok.probing.collapse'.*replace=True"):
        grok.register_probe("collapse", _first_layer_mean_abs)
    with pytest.raises(grok.RegistryError, match="grok.optim.base"):
        grok.register_transform("adamw", lambda: optax.sgd(1.0))
    grok.register_probe("collapse", _first_layer_mean_abs, replace=True)
    assert registry.PROBES.get("collapse").fn is _first_layer_mean_abs
    with pytest.raises(grok.RegistryError, match="lower-case identifier"):
        grok.register_probe("My Probe", _first_layer_mean_abs)
    with pytest.raises(grok.RegistryError, match="int, float, bool or str"):
        grok.register_transform("bad_default", lambda rate: optax.scale(rate), rate=[1.0])


def test_a_sweep_resumed_without_its_registration_stops_before_training(tmp_path):
    grok.register_transform("grad_scale", lambda scale: optax.scale(scale), scale=1.0)
    spec = {
        "preset": "prieto-perpgrad-small",
        "seeds": [0],
        "set": BASE | {"optim.kind": "sgd", "optim.transforms": ["grad_scale"]},
        "axes": {"optim.grad_scale.scale": [0.5, 1.0]},
    }
    sw = grok.sweep(spec, out=tmp_path / "s", progress=False)
    assert sw.metric("test_acc").shape == (2, 1)
    del registry.TRANSFORMS._items["grad_scale"]
    traces = grok.trace_count()
    with pytest.raises(grok.ConfigError, match="grad_scale"):
        grok.sweep(json.loads(json.dumps(spec)), out=tmp_path / "s", progress=False)
    assert grok.trace_count() == traces


def test_registered_options_are_sweep_axes_and_inert_ones_are_refused(tmp_path):
    _register_task_and_model()
    spec = {
        "preset": "prieto-perpgrad-small",
        "seeds": [0],
        "set": BASE | {"task.kind": "copy_a", "model.kind": "wide", "optim.transforms": []},
        "axes": {"task.copy_a.p": [3, 5], "model.wide.width": [4, 8]},
    }
    plan = grok.SweepSpec.parse(spec)
    assert plan.static_axes() == ["task.copy_a.p", "model.wide.width"] and len(plan.groups()) == 4
    sw = grok.sweep(spec, out=tmp_path / "s", progress=False)
    run, i = sw.member((1, 0, 0))
    assert run.member_config(i).get("task.copy_a.p") == 5 and run.model(i).embed.embedding.shape == (5, 4)
    with pytest.raises(grok.ConfigError, match="axes.task.op: .*no effect for task.kind='copy_a'"):
        grok.SweepSpec.parse(spec | {"axes": {"task.op": ["add", "mul"]}}).validate()
    with pytest.raises(grok.ConfigError, match="axes.model.d_model: .*no effect for model.kind='wide'"):
        grok.SweepSpec.parse(spec | {"axes": {"model.d_model": [4, 8]}}).validate()
    grok.register_transform("grad_scale", lambda scale: optax.scale(scale), scale=1.0)
    with pytest.raises(grok.ConfigError, match="axes.optim.grad_scale.scale: .*unless 'grad_scale' is chosen"):
        grok.SweepSpec.parse(spec | {"axes": {"optim.grad_scale.scale": [0.5, 1.0]}}).validate()


def test_a_registered_model_with_neurons_is_prunable():
    from grok.models import MLP, apply_neuron_mask, neuron_weights

    def build(model_cfg, spec, *, rngs, init_scale, dropout, param_dtype, **_):
        width = model_cfg.options_of("one_layer")["width"]
        return MLP(
            n_in=2, n_tokens=spec.n_tokens, n_classes=spec.n_classes, widths=(width,), activation="relu",
            init="torch", use_bias=False, batchnorm=False, init_scale=init_scale, dropout=dropout,
            param_dtype=param_dtype, rngs=rngs, use_dropout=False,
        )  # fmt: skip

    grok.register_model("one_layer", build=build, neurons=neuron_weights, prune=apply_neuron_mask, width=24)
    cfg = tiny(**{"model.kind": "one_layer", "train.probes": ["neurons"]})
    run = grok.train(cfg, seeds=(0,), progress=False)
    assert run.history["ipr"].shape == (1, cfg.n_intervals, 24)
    res = grok.prune(run, order="low", fractions=[0.0, 1.0])
    np.testing.assert_allclose(res.accuracies["test_acc"][0], run.history["test_acc"][0, -1], rtol=1e-6)
    assert res.n_pruned.tolist() == [0, 24]


def test_a_probe_that_calls_lapack_keeps_its_group_on_one_cpu_device():
    from grok import engine

    grok.register_probe(
        "top_singular", lambda x: {"top_singular": jnp.linalg.svd(x.params["first"]["kernel"][...])[1][0]}, lapack=True
    )
    grok.register_probe("frobenius", lambda x: {"frobenius": jnp.sqrt(jnp.sum(x.params["first"]["kernel"][...] ** 2))})
    assert not engine.shardable(tiny(**{"train.probes": ["top_singular"]}))
    assert engine.shardable(tiny(**{"train.probes": ["frobenius"]}))
    run = grok.train(tiny(**{"train.probes": ["top_singular"]}), seeds=(0, 1, 2, 3, 4), progress=False)  # no deadlock
    s = np.linalg.svd(np.asarray(run.model(4).first.kernel[...]), compute_uv=False)[0]
    np.testing.assert_allclose(run.history["top_singular"][4, -1], s, rtol=1e-4)
