"""The `progress` probe [N]: formulas against brute force and constructed answers, bad input."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

import grok
from probes import progress_measures as measures

P = 13
K = (P - 1) // 2


def _modes(p: int, freqs: dict[int, float], d: int, rng) -> np.ndarray:
    """An embedding [p, d] made of the given frequencies with the given amplitudes, random directions."""
    j = np.arange(p)[:, None]
    e = np.zeros((p, d))
    for k, amp in freqs.items():
        u, v = rng.normal(size=(2, d))
        e += amp * (np.cos(2 * np.pi * k * j / p) * u + np.sin(2 * np.pi * k * j / p) * v)
    return e


def test_fourier_basis_is_orthonormal():
    F = measures.fourier_basis(P)
    np.testing.assert_allclose(F @ F.T, np.eye(P), atol=1e-12)
    with pytest.raises(ValueError):
        measures.fourier_basis(12)


@pytest.mark.parametrize(
    "p, freqs", [(13, {3: 1.0}), (13, {2: 1.0, 5: 0.5}), (31, {1: 1.0, 4: 0.8, 6: 1.3, 14: 0.6, 15: 1.0})]
)
def test_known_modes_give_exactly_those_key_frequencies(p, freqs):
    """Fewer key frequencies than half of (p − 1)/2: the median is then the noise floor."""
    rng = np.random.default_rng(0)
    e = _modes(p, freqs, 16, rng)
    power = np.asarray(measures.frequency_power(jnp.asarray(e, jnp.float32)))
    assert power.shape == ((p - 1) // 2 + 1,)
    np.testing.assert_allclose(power.sum(), np.sum(e**2), rtol=1e-5)  # Parseval
    assert set(np.flatnonzero(power > 1e-6 * power.max())) == set(freqs)
    mask = np.asarray(measures.key_frequency_mask(jnp.asarray(power)))
    assert set(np.flatnonzero(mask)) == set(freqs)
    # with a noise floor 100× below, the same frequencies stand out
    noisy = e + 0.01 * rng.normal(size=e.shape)
    mask = np.asarray(measures.key_frequency_mask(measures.frequency_power(jnp.asarray(noisy, jnp.float32))))
    assert set(np.flatnonzero(mask)) == set(freqs)


def test_flat_spectrum_has_no_key_frequency():
    rng = np.random.default_rng(1)
    for _ in range(5):
        e = rng.normal(size=(113, 128)) / math.sqrt(128)
        assert not np.any(measures.key_frequency_mask(measures.frequency_power(jnp.asarray(e, jnp.float32))))
    assert not np.any(measures.key_frequency_mask(measures.frequency_power(jnp.zeros((P, 4)))))
    # the constant is never key, however large
    e = np.ones((P, 4)) * 10 + 1e-3 * rng.normal(size=(P, 4))
    assert not measures.key_frequency_mask(measures.frequency_power(jnp.asarray(e)))[0]


def test_gini_against_brute_force():
    rng = np.random.default_rng(2)
    for n in (1, 2, 7, 30):
        x = rng.exponential(size=n)
        brute = np.abs(x[:, None] - x[None, :]).sum() / (2 * n * x.sum())
        np.testing.assert_allclose(float(measures.gini(jnp.asarray(x))), brute, rtol=1e-6, atol=1e-12)
    assert float(measures.gini(jnp.ones(9))) == pytest.approx(0.0, abs=1e-7)
    assert float(measures.gini(jnp.zeros(9))) == 0.0
    assert float(measures.gini(jnp.eye(9)[0])) == pytest.approx(8 / 9)


def _directions(p: int, sign: int) -> np.ndarray:
    """Brute force: unit vectors cos/sin(w_k(a + sign·b)) over the a-major grid, one column per (k, cos|sin)."""
    a, b = np.divmod(np.arange(p * p), p)
    cols = []
    for k in range(1, (p - 1) // 2 + 1):
        for f in (np.cos, np.sin):
            v = f(2 * np.pi * k * (a + sign * b) / p)
            cols.append(v / np.linalg.norm(v))
    return np.stack(cols, axis=1)  # [p², 2K], columns k-major


def _ce(z, y):
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(y)), y].mean()


@pytest.mark.parametrize("sign", [1, -1])
def test_restricted_and_excluded_loss_against_brute_force(sign):
    rng = np.random.default_rng(3)
    n_neurons = 9
    acts = rng.normal(size=(P * P, n_neurons))
    w = rng.normal(size=(n_neurons, P))
    logits = rng.normal(size=(P * P, P)) * 3
    a, b = np.divmod(np.arange(P * P), P)
    labels = (a + sign * b) % P
    train = rng.choice(P * P, size=60, replace=False)
    y_train = rng.integers(0, P, size=60)  # labels may be noisy: the excluded loss uses them as given
    mask = np.zeros(K + 1, bool)
    mask[[2, 5]] = True
    D = _directions(P, sign)
    keep = np.repeat(mask[1:], 2)
    Dk = D[:, keep]
    approx = acts.mean(0) + Dk @ (Dk.T @ acts)
    r_logits = approx @ w
    r_logits += logits.mean(0) - r_logits.mean(0)
    want_r = _ce(r_logits, labels)
    want_e = _ce((logits - Dk @ (Dk.T @ logits))[train], y_train)
    f = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    got_r = measures.restricted_loss(f(acts), f(w), f(logits), jnp.asarray(labels), jnp.asarray(mask), sign)
    got_e = measures.excluded_loss(f(logits), jnp.asarray(train), jnp.asarray(y_train), jnp.asarray(mask), sign)
    np.testing.assert_allclose(float(got_r), want_r, rtol=1e-4)
    np.testing.assert_allclose(float(got_e), want_e, rtol=1e-4)
    none = jnp.zeros(K + 1, bool)
    assert np.isnan(float(measures.restricted_loss(f(acts), f(w), f(logits), jnp.asarray(labels), none, sign)))
    assert np.isnan(float(measures.excluded_loss(f(logits), jnp.asarray(train), jnp.asarray(y_train), none, sign)))


def test_constructed_fourier_logits():
    """Logits Σ_k cos(w_k(a+b−c)) over key frequencies: excluding them leaves flat logits (loss log p);
    restricting neurons equal to the logits (W = I) to them changes nothing."""
    a, b = np.divmod(np.arange(P * P), P)
    c = np.arange(P)
    keys = (1, 3, 4)
    logits = sum(4 * np.cos(2 * np.pi * k * ((a + b)[:, None] - c[None, :]) / P) for k in keys)
    labels = (a + b) % P
    mask = np.zeros(K + 1, bool)
    mask[list(keys)] = True
    f = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    idx = jnp.arange(P * P)
    got_e = measures.excluded_loss(f(logits), idx, jnp.asarray(labels), jnp.asarray(mask))
    np.testing.assert_allclose(float(got_e), math.log(P), rtol=1e-5)
    full = _ce(logits, labels)
    got_r = measures.restricted_loss(f(logits), f(np.eye(P)), f(logits), jnp.asarray(labels), jnp.asarray(mask))
    np.testing.assert_allclose(float(got_r), full, rtol=1e-4, atol=1e-6)
    assert full < 0.1 * math.log(P)  # the constructed logits solve the task


def test_neuron_frequency_fraction():
    rng = np.random.default_rng(4)
    a = np.arange(P)[:, None]
    b = np.arange(P)[None, :]
    w = 2 * np.pi / P
    pure = np.stack(
        [
            np.cos(w * 2 * (a + b)),  # one frequency: all its variance
            np.maximum(0, np.cos(w * 5 * a) + np.cos(w * 5 * b) + 0.3),  # a ReLU of one: mostly it, plus harmonics
            np.cos(w * 1 * a) + np.cos(w * 4 * b),  # two frequencies, equal shares
            np.ones((P, P)),  # dead neuron
        ],
        axis=-1,
    )
    frac, freq = measures.neuron_frequency_fraction(jnp.asarray(pure, jnp.float32))
    np.testing.assert_allclose(np.asarray(frac)[[0, 2, 3]], [1.0, 0.5, 0.0], atol=1e-5)
    assert 0.9 < float(frac[1]) < 1.0
    assert list(np.asarray(freq)[:2]) == [2, 5]
    # brute force on random activations: the explicit 2D Fourier basis products
    acts = rng.normal(size=(P, P, 3))
    F = measures.fourier_basis(P)
    frac, freq = measures.neuron_frequency_fraction(jnp.asarray(acts))
    for n in range(3):
        c = F @ acts[:, :, n] @ F.T
        total = (c**2).sum() - c[0, 0] ** 2
        shares = [
            sum(c[i, j] ** 2 for i in (0, 2 * k - 1, 2 * k) for j in (0, 2 * k - 1, 2 * k) if (i, j) != (0, 0)) / total
            for k in range(1, K + 1)
        ]
        np.testing.assert_allclose(float(frac[n]), max(shares), rtol=1e-5)
        assert int(freq[n]) == 1 + int(np.argmax(shares))


def _cfg(**over) -> grok.Config:
    base = grok.Config(
        task=grok.TaskConfig(kind="modular", op="add", p=11, train_fraction=0.5),
        model=grok.ModelConfig(kind="transformer", d_model=16, n_heads=2, d_mlp=32),
        train=grok.TrainConfig(steps=4, log_every=2, probes=("progress",)),
    )
    return base.override(**over)


@pytest.mark.parametrize(
    "over, field",
    [
        ({"task.op": "mul"}, "task.op"),
        ({"model.kind": "mlp"}, "model.kind"),
        ({"model.layernorm": True}, "model.layernorm"),
        ({"task.kind": "parity", "model.kind": "mlp"}, "task.kind"),
    ],
)
def test_bad_input_names_what_progress_needs(over, field):
    with pytest.raises(grok.ConfigError, match=field.replace(".", r"\.")) as err:
        _cfg(**over)
    assert "progress" in str(err.value)


def test_in_run_measures_match_the_saved_model():
    """The probe inside the compiled run agrees with `progress_measures` on the final saved model."""
    from flax import nnx

    from grok.probing.progress_measures import progress_measures

    measures = nnx.jit(progress_measures, static_argnums=(2, 3))  # one compile, not op-by-op dispatch
    cfg = _cfg(**{"train.steps": 20, "train.log_every": 10, "optim.lr": 1e-2})
    run = grok.train(cfg, seeds=(0, 1), progress=False)
    h = run.history
    k = (11 - 1) // 2
    assert h["fourier_embed"].shape == (2, 3, k + 1) and h["key_freq"].dtype == bool
    assert h["neuron_freq_frac"].shape == (2, 3, 32)
    for i in range(2):
        out = measures(run.model(i), run.dataset(i), 11, "add", key_mask=h["key_freq"][i, -1])
        np.testing.assert_allclose(np.asarray(out["fourier_embed"]), h["fourier_embed"][i, -1], rtol=1e-4)
        np.testing.assert_allclose(float(out["gini_embed"]), h["gini_embed"][i, -1], rtol=1e-4)
        np.testing.assert_allclose(
            np.asarray(out["neuron_freq_frac"]), h["neuron_freq_frac"][i, -1], rtol=1e-3, atol=1e-5
        )
        # with every frequency as key, both losses are defined and finite
        out = measures(run.model(i), run.dataset(i), 11, "add", key_mask=np.r_[False, [True] * k])
        assert np.isfinite(float(out["restricted_loss"])) and np.isfinite(float(out["excluded_loss"]))
    assert np.all(h["n_key_freqs"][:, 0] == 0) and np.all(np.isnan(h["restricted_loss"][:, 0]))


@pytest.fixture(scope="module")
def snap_run():
    """Two members with the probe and a snapshot at every logged step."""
    cfg = _cfg(**{"train.steps": 40, "train.log_every": 10, "train.snapshots": 5, "optim.lr": 1e-2})
    return grok.train(cfg, seeds=(0, 1), progress=False)


COMPARED = (
    "fourier_embed",
    "n_key_freqs",
    "restricted_loss",
    "excluded_loss",
    "gini_embed",
    "gini_logit",
    "sum_sq_weights",
    "neuron_freq_frac",
    "neuron_freq_frac_mean",
)


def test_final_keys_post_hoc_equal_the_in_run_values_where_the_keys_agree(snap_run):
    from grok.probing.progress_measures import final_key_masks

    h = snap_run.history
    values = grok.progress_with_final_keys(snap_run)
    assert list(values["step"]) == snap_run.steps_with_snapshots == list(h["step"])
    final = final_key_masks(snap_run)
    assert final.shape == (2, 6)
    assert np.array_equal(values["key_freq"], np.broadcast_to(final[:, None], values["key_freq"].shape))
    assert np.array_equal(values["current_key_freq"], h["key_freq"])  # each snapshot's own keys, as in the run
    agree = np.all(h["key_freq"] == final[:, None], axis=-1)  # [members, snapshots]
    assert agree[:, -1].all()  # the final snapshot is the final model
    for name in COMPARED:
        assert values[name].shape == h[name].shape, name
        rtol, atol = (1e-3, 1e-5) if name == "neuron_freq_frac" else (1e-4, 1e-6)  # as the test above
        np.testing.assert_allclose(values[name][agree], h[name][agree], rtol=rtol, atol=atol, err_msg=name)


def test_final_keys_come_from_the_final_embedding(snap_run):
    """A final embedding built from known modes: those are the keys at every snapshot, and the losses
    there equal `progress_measures` of the snapshot's model with that mask (finite, where the run's are NaN)."""
    import dataclasses

    from flax import nnx

    from grok.probing.progress_measures import progress_measures

    rng = np.random.default_rng(3)
    emb = np.array(snap_run.state["params/tok_embed"])
    wanted = ({2: 1.0}, {3: 1.0, 5: 0.7})
    for i, freqs in enumerate(wanted):
        emb[i, :11] = _modes(11, freqs, emb.shape[-1], rng)
    run = dataclasses.replace(snap_run, state=snap_run.state | {"params/tok_embed": emb})
    steps = snap_run.steps_with_snapshots[:2]
    values = grok.progress_with_final_keys(run, steps=steps)
    measures = nnx.jit(progress_measures, static_argnums=(2, 3))
    for i, freqs in enumerate(wanted):
        assert set(np.flatnonzero(values["key_freq"][i, 0])) == set(freqs)
        for j, step in enumerate(steps):
            direct = measures(run.model(i, step=step), run.dataset(i), 11, "add", key_mask=values["key_freq"][i, j])
            for name in ("restricted_loss", "excluded_loss"):
                assert np.isfinite(values[name][i, j]), (name, i, step)
                np.testing.assert_allclose(values[name][i, j], float(direct[name]), rtol=1e-4, err_msg=name)
    assert np.all(np.isnan(snap_run.history["restricted_loss"][:, 0]))  # no key in the random start


def test_final_keys_bad_input(snap_run):
    import dataclasses

    from grok.snapshots import Snapshots

    with pytest.raises(grok.ConfigError, match="the nearest are"):
        grok.progress_with_final_keys(snap_run, steps=[15])
    with pytest.raises(grok.ConfigError, match="train.snapshots"):
        grok.progress_with_final_keys(dataclasses.replace(snap_run, snapshots=Snapshots()))


def test_phase_starts_are_saved_with_the_run(snap_run, tmp_path):
    import json

    from grok.phases import progress_phase_record

    record = snap_run.status["progress_phases"]
    assert record == progress_phase_record(snap_run.history)
    assert set(record) == {"memorization", "circuit_formation", "cleanup", "generalized"}
    assert all(len(v) == 2 for v in record.values())
    path = snap_run.save(tmp_path / "run")
    assert json.loads((path / "status.json").read_text())["progress_phases"] == record
    loaded = grok.load_run(path)
    assert loaded.status["progress_phases"] == record
    assert loaded.select([1]).status["progress_phases"] == {k: [v[1]] for k, v in record.items()}


def test_neuron_frequency_fraction_of_a_neuron_with_a_large_mean():
    """5 + 0.01·(signal + noise) in float32: the variance is not lost to rounding (it was 0.984 or 0
    against the true 0.66 before the grid mean was subtracted first)."""
    rng = np.random.default_rng(5)
    a, b = np.arange(P)[:, None], np.arange(P)[None, :]
    signal = np.cos(2 * np.pi / P * 3 * (a + b)) + 0.7 * rng.normal(size=(P, P))
    F = measures.fourier_basis(P)
    c = F @ signal @ F.T
    total = (c**2).sum() - c[0, 0] ** 2
    want = max(
        sum(c[i, j] ** 2 for i in (0, 2 * k - 1, 2 * k) for j in (0, 2 * k - 1, 2 * k) if (i, j) != (0, 0)) / total
        for k in range(1, K + 1)
    )
    for scale in (0.01, 0.001):
        frac, freq = measures.neuron_frequency_fraction(jnp.asarray((5 + scale * signal)[..., None], jnp.float32))
        assert float(frac[0]) == pytest.approx(want, rel=2e-3) and int(freq[0]) == 3
