"""The fused GPU kernels of a token layer and readout (`grok/models/_token_kernel.py`).

On a CPU the kernels run in Pallas's interpret mode, so these tests check their values and
gradients against the plain layer, and lower them for CUDA (Triton) without a GPU: shapes,
masks and indexing that Triton rejects fail here, not on the first GPU that runs them.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_token_layer_form_trains_the_same

from grok.models._common import activation
from grok.models._token_kernel import TILING, Tiling, token_readout

P, WIDTH, MEMBERS = 13, 100, 3  # width and example counts are not multiples of the tiles
# small tiles, so that every loop of every kernel runs several times and the last program of the
# embedding-gradient kernel has fewer rows than the others (26 = 5 × 5 + 1)
SMALL = Tiling(
    logits_examples=16,
    logits_units=32,
    logits_warps=4,
    readout_units=32,
    readout_examples=16,
    readout_warps=4,
    token_rows=5,
    token_units=32,
    token_row_tiles=(16,),
    token_warps=4,
    readout_in_token_kernel=False,
)
SMALL_ONE_BACKWARD = dataclasses.replace(SMALL, readout_in_token_kernel=True)  # ∂W summed with ∂E


def _pairs(n: int, seed: int = 0) -> np.ndarray:
    """n token pairs in random order; past P² the pairs repeat (a row of E then has more examples
    than the embedding-gradient kernel takes at once)."""
    grid = np.array([(a, b) for a in range(P) for b in range(P)], np.int32)
    return np.concatenate([grid, grid, grid])[np.random.default_rng(seed).permutation(3 * P * P)[:n]]


def _plain(e, w, x, name):
    return activation(name, e[x[:, 0]] + e[P + x[:, 1]]) @ w.T


def _members(seed: int = 1):
    rng = np.random.default_rng(seed)
    e = jnp.asarray(rng.normal(size=(MEMBERS, 2 * P, WIDTH)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(MEMBERS, P, WIDTH)) / np.sqrt(WIDTH), jnp.float32)
    return e, w


def _value_and_grads(f, e, w, cotangent):
    """Vmapped over members: f's value and the gradient of ⟨f, cotangent⟩ in (E, W)."""

    def one(e, w, c):
        value, pullback = jax.vjp(f, e, w)
        return value, pullback(c)

    return jax.jit(jax.vmap(one))(e, w, cotangent)


@pytest.mark.parametrize(
    "tiling", [TILING, SMALL, SMALL_ONE_BACKWARD], ids=["default-tiles", "small-tiles", "small-tiles-one-backward"]
)
@pytest.mark.parametrize("name", ["quadratic", "relu", "linear"])
@pytest.mark.parametrize("n", [TILING.logits_examples + 22, 40, 2 * P * P])
def test_fused_values_and_gradients_match_the_plain_layer(name, n, tiling):
    x = jnp.asarray(_pairs(n))
    e, w = _members()
    cotangent = jnp.asarray(np.random.default_rng(2).normal(size=(MEMBERS, n, P)), jnp.float32)
    got = _value_and_grads(lambda e, w: token_readout(e, w, x, P, name, True, tiling), e, w, cotangent)
    want = _value_and_grads(lambda e, w: _plain(e, w, x, name), e, w, cotangent)
    for g, v in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        scale = float(jnp.max(jnp.abs(v)))
        np.testing.assert_allclose(np.asarray(g), np.asarray(v), rtol=0, atol=2e-6 * scale)


def test_rows_no_example_uses_get_exactly_zero_gradient():
    x = _pairs(P * P)
    x = jnp.asarray(x[(x[:, 0] != 3) & (x[:, 1] != 5)])  # token a = 3 and token b = 5 never appear
    e, w = _members()
    cotangent = jnp.ones((MEMBERS, x.shape[0], P), jnp.float32)
    _, (de, dw) = _value_and_grads(lambda e, w: token_readout(e, w, x, P, "quadratic", True), e, w, cotangent)
    assert np.all(np.asarray(de[:, 3]) == 0) and np.all(np.asarray(de[:, P + 5]) == 0)
    assert np.all(np.abs(np.asarray(de[:, 4])) > 0) and np.all(np.isfinite(np.asarray(dw)))


@pytest.mark.parametrize("one_backward", [False, True])
def test_kernels_lower_for_cuda_on_a_machine_without_a_gpu(one_backward):
    x = jnp.asarray(_pairs(TILING.logits_examples + 22))
    e, w = _members()
    cotangent = jnp.ones((MEMBERS, x.shape[0], P), jnp.float32)
    triton = "__gpu$xla.gpu.triton"
    tiling = dataclasses.replace(TILING, readout_in_token_kernel=one_backward)

    def value_and_grads(e, w, c):
        value, pullback = jax.vjp(lambda e, w: token_readout(e, w, x, P, "quadratic", False, tiling), e, w)
        return value, pullback(c)

    # jax ≥ 0.11's Pallas reads which GPU it lowers for from the abstract mesh when none is present
    h200 = jax.sharding.AbstractDevice(device_kind="NVIDIA H200", num_cores=132, platform="cuda")
    with jax.sharding.use_abstract_mesh(jax.sharding.AbstractMesh((1,), ("gpu",), abstract_device=h200)):
        exported = jax.export.export(
            jax.jit(jax.vmap(value_and_grads)),
            platforms=["cuda"],
            disabled_checks=[jax.export.DisabledSafetyCheck.custom_call(triton)],
        )(e, w, cotangent)
    kernels = 2 if one_backward else 3  # logits, ∂E (with ∂W's parts), or logits, ∂W, ∂E
    assert exported.mlir_module().count(f"custom_call @{triton}") == kernels


def test_model_takes_the_fused_kernels_only_when_asked_on_a_gpu(monkeypatch):
    from flax import nnx

    from grok.models import QuadraticMLP, _mlp

    model = QuadraticMLP(p=P, width=WIDTH, use_dropout=False, rngs=nnx.Rngs(0))
    assert not model._fused_token_readout(train=True)  # a CPU, nothing asked
    monkeypatch.setattr(_mlp, "on_gpu", lambda: True)
    assert not model._fused_token_readout(train=True)  # a GPU, nothing asked
    monkeypatch.setenv(_mlp.FUSED_TOKEN_KERNEL_ENV, "1")
    assert model._fused_token_readout(train=True)
    with_dropout = QuadraticMLP(p=P, width=WIDTH, dropout=0.1, rngs=nnx.Rngs(0))
    assert with_dropout._fused_token_readout(train=False) and not with_dropout._fused_token_readout(train=True)
    half = QuadraticMLP(p=P, width=WIDTH, use_dropout=False, param_dtype=jnp.float16, rngs=nnx.Rngs(0))
    assert not half._fused_token_readout(train=True)


def test_engine_step_with_the_fused_kernels_trains_the_same_numbers(monkeypatch):
    from grok.models import _mlp

    def fused():  # interpreted on this CPU
        monkeypatch.setattr(_mlp, "use_fused_token_kernel", lambda: True)

    assert_token_layer_form_trains_the_same(fused, "pallas_call", rtol=1e-5, atol=1e-6)


def test_sharded_group_with_the_fused_kernels_trains_the_same_numbers(monkeypatch):
    """`grok.train_members` over the test's host devices (`shard_map`), members vmapped at once as on a GPU."""
    import grok
    from grok.models import _mlp

    cfg = grok.preset("doshi-coexistence").override(
        **{"task.p": 11, "model.widths": [16], "train.steps": 20, "train.log_every": 10}
    )
    members = [{"seed": s} for s in range(4)]
    monkeypatch.setenv("GROK_MEMBER_BLOCK", "0")
    want = grok.train_members(cfg, members, progress=False).history
    monkeypatch.setattr(_mlp, "use_fused_token_kernel", lambda: True)  # interpreted on this CPU
    jax.clear_caches()
    got = grok.train_members(cfg, members, progress=False).history
    assert len(jax.devices()) > 1
    for key in ("train_loss", "test_loss", "train_acc", "test_acc"):
        np.testing.assert_allclose(np.asarray(got[key]), np.asarray(want[key]), rtol=1e-5, atol=1e-6, err_msg=key)


def test_expected_padding_matches_sampled_train_sets():
    """The row-tile rule's expectation (Binomial counts) against rows counted in random train sets."""
    from grok.models._token_kernel import _expected_padded_examples

    p, n = 31, int(0.45 * 31 * 31)
    rng = np.random.default_rng(0)
    for tile in (8, 16, 32):
        padded = []
        for _ in range(200):
            pairs = rng.permutation(p * p)[:n]
            counts = np.bincount(np.concatenate([pairs // p, p + pairs % p]), minlength=2 * p)
            padded.append(np.mean(tile * -(-counts // tile)))
        assert _expected_padded_examples(n, p, tile) == pytest.approx(np.mean(padded), rel=0.02)


def test_row_tile_fits_the_rows_expected_counts():
    from grok.models._token_kernel import row_tile_for

    assert row_tile_for(int(0.6 * 97 * 97), 97, (64, 128)) == 64  # [D]'s largest group: 58 pairs a row
    assert row_tile_for(int(0.95 * 113 * 113), 113, (64, 128)) == 128  # 107 a row: one step of 128, not two of 64
    assert row_tile_for(int(0.6 * 97 * 97), 97) == 64  # the default: 64 only (128 spills registers)
    assert row_tile_for(40, 13) == 16  # never more than a row can fill
