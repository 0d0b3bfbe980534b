"""Grokfast [G], the fixed weight norm [O] and Muon as registered transforms (docs/formulas.md §4.7–4.9):
against brute-force NumPy filters, their range checks, their place in the chain, per-member numbers."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optax import contrib

import grok
from grok.config import OptimConfig
from grok.optim import fixed_norm, grokfast_ema, grokfast_ma, make_optimizer
from grok.optim.base import adamw
from grok.optim.muon import hidden_matrix_labels, muon

SHAPES = {"a": (3, 4), "b": (5,)}


def _grads(steps: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()} for _ in range(steps)]


def _run(tx: optax.GradientTransformation, grads: list[dict]) -> list[dict]:
    params = {k: jnp.zeros(s, jnp.float32) for k, s in SHAPES.items()}
    state = tx.init(params)
    update = jax.jit(tx.update)
    out = []
    for g in grads:
        u, state = update(g, state, params)
        out.append({k: np.asarray(v) for k, v in u.items()})
    return out


def _ema_ref(grads: list[dict], alpha: float, lamb: float) -> list[dict]:
    """The released code's loop: h starts at the first gradient, then h ← αh + (1−α)g; g + λh."""
    out, h = [], None
    for g in grads:
        g = {k: v.astype(np.float64) for k, v in g.items()}
        h = dict(g) if h is None else h
        h = {k: alpha * h[k] + (1 - alpha) * g[k] for k in g}
        out.append({k: g[k] + lamb * h[k] for k in g})
    return out


def _ma_ref(grads: list[dict], window: int, lamb: float, warmup: bool) -> list[dict]:
    """A Python list as the deque: amplify by λ·mean(last w) once full (or always without warmup)."""
    out, seen = [], []
    for g in grads:
        seen = (seen + [g])[-window:]
        if not warmup or len(seen) == window:
            out.append({k: g[k] + lamb * np.mean([s[k] for s in seen], axis=0, dtype=np.float64) for k in g})
        else:
            out.append(g)
    return out


@pytest.mark.parametrize(("alpha", "lamb"), [(0.98, 2.0), (0.5, 0.3), (0.0, 1.0)])
def test_grokfast_ema_matches_the_brute_force_filter(alpha, lamb):
    grads = _grads(12)
    got, want = _run(grokfast_ema(alpha, lamb), grads), _ema_ref(grads, alpha, lamb)
    for g, w in zip(got, want, strict=True):
        for k in SHAPES:
            np.testing.assert_allclose(g[k], w[k], rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize(
    ("window", "lamb", "warmup"), [(1, 5.0, True), (4, 5.0, True), (4, 0.7, False), (20, 2.0, True)]
)
def test_grokfast_ma_matches_the_brute_force_filter(window, lamb, warmup):
    grads = _grads(11, seed=1)
    got, want = _run(grokfast_ma(window, lamb, warmup), grads), _ma_ref(grads, window, lamb, warmup)
    for g, w in zip(got, want, strict=True):
        for k in SHAPES:
            np.testing.assert_allclose(g[k], w[k], rtol=2e-5, atol=2e-6)


def test_grokfast_numbers_are_per_member_under_vmap():
    grads = _grads(6, seed=2)
    alphas, lambs = jnp.asarray([0.9, 0.2]), jnp.asarray([2.0, 0.5])

    @jax.jit
    @functools.partial(jax.vmap, in_axes=(0, 0))
    def run(alpha, lamb):
        tx = make_optimizer(
            "sgd", lr=1.0, transforms=["grokfast_ema"], options={"grokfast_ema.alpha": alpha, "grokfast_ema.lamb": lamb}
        )
        params = {k: jnp.zeros(s) for k, s in SHAPES.items()}
        state, outs = tx.init(params), []
        for g in grads:
            u, state = tx.update(g, state, params)
            outs.append(u)
        return outs[-1]

    got = run(alphas, lambs)
    for i in range(2):
        want = _ema_ref(grads, float(alphas[i]), float(lambs[i]))[-1]
        for k in SHAPES:
            np.testing.assert_allclose(-np.asarray(got[k][i]), want[k], rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"optim.transforms": ["grokfast_ema"], "optim.grokfast_ema.alpha": 1.0}, "optim.grokfast_ema.alpha"),
        ({"optim.transforms": ["grokfast_ema"], "optim.grokfast_ema.alpha": -0.1}, "optim.grokfast_ema.alpha"),
        ({"optim.transforms": ["grokfast_ma"], "optim.grokfast_ma.window": 0}, "optim.grokfast_ma.window"),
        ({"optim.transforms": ["fixed_norm"], "optim.fixed_norm.multiple": 0.0}, "optim.fixed_norm.multiple"),
        ({"optim.transforms": ["fixed_norm"], "optim.fixed_norm.multiple": -2.0}, "optim.fixed_norm.multiple"),
        ({"optim.transforms": ["fixed_norm"], "optim.weight_decay": 1.0}, "optim.weight_decay"),
        ({"optim.kind": "muon", "optim.muon.beta": 1.5}, "optim.muon.beta"),
        ({"optim.kind": "muon", "optim.muon.rms": -0.2}, "optim.muon.rms"),
    ],
)
def test_bad_hyperparameters_are_one_line_config_errors(overrides, field):
    with pytest.raises(grok.ConfigError) as err:
        grok.Config().override(**overrides)
    assert err.value.field == field and "\n" not in str(err.value)


def test_fixed_norm_with_weight_decay_needs_the_explicit_option():
    with pytest.raises(grok.ConfigError, match="allow_weight_decay"):
        grok.Config().override(**{"optim.transforms": ["fixed_norm"], "optim.weight_decay": 0.1})
    cfg = grok.Config().override(
        **{"optim.transforms": ["fixed_norm"], "optim.weight_decay": 0.1, "optim.fixed_norm.allow_weight_decay": True}
    )
    assert cfg.optim.weight_decay == 0.1


def test_fixed_norm_goes_after_the_base_and_holds_the_global_norm():
    cfg = OptimConfig(kind="adamw", transforms=("fixed_norm", "grokfast_ema"))
    assert cfg.chain == ("grokfast_ema", "adamw", "fixed_norm")
    rng = np.random.default_rng(3)
    params = {k: jnp.asarray(rng.normal(size=s), jnp.float32) for k, s in SHAPES.items()}
    norm0 = np.sqrt(sum(np.sum(np.asarray(v, np.float64) ** 2) for v in params.values()))
    tx = fixed_norm(0.5)
    state = tx.init(params)
    for g in _grads(3, seed=4):
        u, state = tx.update(g, state, params)
        moved = {k: np.asarray(params[k], np.float64) + g[k] for k in SHAPES}  # the base's step, then the rescale
        new = {k: params[k] + u[k] for k in SHAPES}
        norm = np.sqrt(sum(np.sum(np.asarray(v, np.float64) ** 2) for v in new.values()))
        np.testing.assert_allclose(norm, 0.5 * norm0, rtol=1e-5)
        scale = 0.5 * norm0 / np.sqrt(sum(np.sum(v**2) for v in moved.values()))
        for k in SHAPES:  # one scale for the whole network, not one per layer
            np.testing.assert_allclose(np.asarray(new[k]), moved[k] * scale, rtol=1e-5, atol=1e-6)
        params = new


def test_muon_takes_the_hidden_matrices_and_adamw_the_rest():
    cfg = grok.preset("prieto-perpgrad-small")
    assert cfg.model.widths == (128, 128)
    rng = np.random.default_rng(5)
    params = {
        "first": {"kernel": jnp.asarray(rng.normal(size=(6, 8)), jnp.float32)},
        "hidden": [{"kernel": jnp.asarray(rng.normal(size=(8, 8)), jnp.float32)}],
        "readout": {"kernel": jnp.asarray(rng.normal(size=(3, 8)), jnp.float32)},
        "bias": jnp.asarray(rng.normal(size=(8,)), jnp.float32),
    }
    labels = hidden_matrix_labels(params)
    assert labels == {
        "first": {"kernel": "adamw"},
        "hidden": [{"kernel": "muon"}],
        "readout": {"kernel": "adamw"},
        "bias": "adamw",
    }
    grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)
    tx = muon(1e-2, 0.9, 0.98, 1e-8, 0.0)
    u, _ = tx.update(grads, tx.init(params), params)
    ref_m = contrib.muon(1e-2, beta=0.95, eps=1e-8, nesterov=True)
    um, _ = ref_m.update(grads["hidden"], ref_m.init(params["hidden"]), params["hidden"])
    np.testing.assert_allclose(u["hidden"][0]["kernel"], um[0]["kernel"], rtol=1e-5, atol=1e-7)
    ref_a = adamw(1e-2, 0.9, 0.98, 1e-8, 0.0)
    rest = {k: params[k] for k in ("first", "readout", "bias")}
    ua, _ = ref_a.update({k: grads[k] for k in rest}, ref_a.init(rest), rest)
    for k in rest:
        np.testing.assert_allclose(jax.tree.leaves(u[k]), jax.tree.leaves(ua[k]), rtol=1e-6)


def test_muon_leaves_the_alpha_nets_input_layer_to_adamw():
    """The α-net has one weight matrix, its input layer `w` (stored [N, D]): no hidden matrix for Muon."""
    from flax import nnx

    from grok.member import abstract_model

    cfg = grok.preset("kumar-fig1").override(**{"task.dim": 6, "task.n_train": 10, "model.widths": [4]})
    params = nnx.state(abstract_model(cfg), nnx.Param)
    assert set(jax.tree.leaves(hidden_matrix_labels(params))) == {"adamw"}


def test_muon_consistent_rms_gives_hidden_updates_the_chosen_rms():
    """Orthogonalized n×n updates have RMS ≈ 1/√n; `rms=r` rescales them to RMS ≈ r (times lr)."""
    n, lr = 64, 1e-2
    rng = np.random.default_rng(6)
    params = {"hidden": [{"kernel": jnp.asarray(rng.normal(size=(n, n)), jnp.float32)}]}
    grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)

    def update_rms(**kw):
        tx = muon(lr, 0.9, 0.98, 1e-8, 0.0, **kw)
        u, _ = tx.update(grads, tx.init(params), params)
        return float(jnp.sqrt(jnp.mean(u["hidden"][0]["kernel"] ** 2))) / lr

    width_scale, consistent = update_rms(), update_rms(rms=0.2)
    assert 0.5 / np.sqrt(n) < width_scale < 1.5 / np.sqrt(n)  # optax's default: √max(1, fan_out/fan_in) = 1
    np.testing.assert_allclose(consistent / width_scale, 0.2 * np.sqrt(n), rtol=1e-5)  # exactly r·√max(n, n)
    assert 0.1 < consistent < 0.3


def test_transform_numbers_are_swept_without_recompiling():
    base = grok.preset("prieto-perpgrad-small").override(
        **{"optim.transforms": ["grokfast_ema", "fixed_norm"], "train.steps": 20, "train.log_every": 10}
    )
    grok.train(base, seeds=(0, 1), progress=False)
    before = grok.trace_count()
    over = [{"optim.grokfast_ema.alpha": 0.5, "optim.fixed_norm.multiple": 0.5}, {"optim.grokfast_ema.lamb": 0.0}]
    run = grok.train_members(base, over, progress=False)
    assert grok.trace_count() == before
    norm0 = run.history["weight_norm"][:, 0]
    np.testing.assert_allclose(run.history["weight_norm"][:, -1], norm0 * np.asarray([0.5, 1.0]), rtol=1e-4)


def test_perp_grad_grokfast_and_fixed_norm_combine_in_one_chain():
    from grok.optim import perp_grad

    cfg = OptimConfig(kind="adamw", lr=1e-2, transforms=("fixed_norm", "perp_grad", "grokfast_ema"))
    assert cfg.chain == ("perp_grad", "grokfast_ema", "adamw", "fixed_norm")
    tx = make_optimizer("adamw", lr=1e-2, transforms=cfg.transforms)
    ref = optax.chain(perp_grad(True), grokfast_ema(0.98, 2.0), adamw(1e-2, 0.9, 0.999, 1e-8, 0.0), fixed_norm(1.0))
    rng = np.random.default_rng(6)
    params = {k: jnp.asarray(rng.normal(size=s), jnp.float32) for k, s in SHAPES.items()}
    s1, s2 = tx.init(params), ref.init(params)
    for g in _grads(3, seed=7):
        u1, s1 = tx.update(g, s1, params)
        u2, s2 = ref.update(g, s2, params)
        for k in SHAPES:
            np.testing.assert_allclose(u1[k], u2[k], rtol=1e-5, atol=1e-6)  # θ·c/‖θ‖ − θ: rounding of θ
        params = jax.tree.map(lambda p, u: p + u, params, u1)
