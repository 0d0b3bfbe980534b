"""The permutation-group task [Power]: its tables against brute-force composition of tuples, the
group axioms, the split and corruption shared with the modular task, errors, and training."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import grok
import tasks
from grok.config import Config
from grok.errors import ConfigError
from grok.registry import TASKS


def _task(n: int = 3, op: str = "compose", **fields):
    fields = {"task.kind": "permutation", "task.permutation.n": n, "task.permutation.op": op, **fields}
    return Config().override(**fields).task


def _brute(n: int, op: str) -> np.ndarray:
    """op(x, y) by composing tuples in plain Python: (a∘b)(i) = a(b(i))."""
    elems = list(itertools.permutations(range(n)))
    index = {e: i for i, e in enumerate(elems)}
    comp = lambda a, b: tuple(a[b[i]] for i in range(n))
    inv = lambda a: tuple(sorted(range(n), key=lambda i: a[i]))
    f = {
        "compose": lambda x, y: comp(x, y),
        "conjugate": lambda x, y: comp(comp(x, y), inv(x)),
        "compose_inverse": lambda x, y: comp(x, inv(y)),
        "compose_aba": lambda x, y: comp(comp(x, y), x),
    }[op]
    return np.array([[index[f(x, y)] for y in elems] for x in elems])


@pytest.mark.parametrize("n", [3, 4])
@pytest.mark.parametrize("op", tasks.PERMUTATION_OPS)
def test_table_matches_brute_force(n, op):
    np.testing.assert_array_equal(tasks.permutation_table(n, op), _brute(n, op))


@pytest.mark.parametrize("n", [3, 4, 5])
def test_compose_is_a_group(n):
    t = tasks.permutation_table(n, "compose").astype(np.int64)
    m = math.factorial(n)
    # closure, and each row and column a permutation of the elements (a Latin square)
    assert np.all(np.sort(t, axis=1) == np.arange(m)) and np.all(np.sort(t, axis=0) == np.arange(m)[:, None])
    np.testing.assert_array_equal(t[0], np.arange(m))  # token 0 is the identity
    np.testing.assert_array_equal(t[:, 0], np.arange(m))
    inverse = np.argmax(t == 0, axis=1)  # y with x∘y = e
    np.testing.assert_array_equal(t[inverse, np.arange(m)], 0)  # y∘x = e too
    abc_left = t[t[:, :, None], np.arange(m)[None, None, :]]  # (a∘b)∘c  [a, b, c]
    abc_right = t[np.arange(m)[:, None, None], t[None, :, :]]  # a∘(b∘c)
    np.testing.assert_array_equal(abc_left, abc_right)  # associativity
    assert np.any(t != t.T)  # S_n, n ≥ 3, is not abelian


def test_derived_ops_from_compose():
    t = tasks.permutation_table(4, "compose").astype(np.int64)
    inv = np.argmax(t == 0, axis=1)
    x, y = np.meshgrid(np.arange(24), np.arange(24), indexing="ij")
    np.testing.assert_array_equal(tasks.permutation_table(4, "conjugate"), t[t[x, y], inv[x]])
    np.testing.assert_array_equal(tasks.permutation_table(4, "compose_inverse"), t[x, inv[y]])


def test_split_and_corruption_like_the_modular_task():
    task = _task(3, "conjugate", **{"task.train_fraction": 0.5})
    spec = TASKS.get("permutation").spec(task)
    assert (spec.n_classes, spec.n_tokens, spec.n_all, spec.n_train) == (6, 6, 36, 18)
    build = jax.jit(lambda k, xi: TASKS.get("permutation").build(task, k, xi, jnp.float32))
    d = build(jax.random.key(3), 0.5)
    table = tasks.permutation_table(3, "conjugate")
    x_tr, x_te = np.asarray(d.x_train), np.asarray(d.x_test)
    np.testing.assert_array_equal(np.asarray(d.y_train_true), table[x_tr[:, 0], x_tr[:, 1]])
    np.testing.assert_array_equal(np.asarray(d.y_test), table[x_te[:, 0], x_te[:, 1]])
    pairs = {tuple(r) for r in np.concatenate([x_tr, x_te])}
    assert len(pairs) == 36  # every pair once, train and test disjoint
    assert int(np.sum(d.corrupted)) == 9  # ⌊0.5·18⌋
    same = np.asarray(d.y_train) == np.asarray(d.y_train_true)
    assert np.all(same[~np.asarray(d.corrupted)])
    d2 = build(jax.random.key(3), 0.0)
    np.testing.assert_array_equal(np.asarray(d2.x_train), x_tr)  # ξ changes the labels only


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("task.permutation.n", 2, "from 3 to 6"),
        ("task.permutation.n", 7, "from 3 to 6"),
        ("task.permutation.op", "power", "one of compose"),
        ("task.train_fraction", 0.01, "at least one train"),
    ],
)
def test_bad_options_are_one_line_errors(field, value, words):
    fields = {"task.permutation.n": 3, field: value}
    with pytest.raises(ConfigError, match=words) as err:
        Config().override(**{"task.kind": "permutation", **fields})
    assert field in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("kind", ["mlp", "transformer"])
def test_token_pair_models_train_on_s3(kind):
    cfg = Config().override(
        **{
            "task.kind": "permutation",
            "task.permutation.n": 3,
            "task.train_fraction": 0.8,
            "model.kind": kind,
            "model.widths": [32],
            "model.d_model": 16,
            "model.n_heads": 2,
            "model.d_mlp": 32,
            "optim.lr": 3e-3,
            "optim.weight_decay": 0.0,
            "train.steps": 300,
            "train.log_every": 100,
        }
    )
    run = grok.train(cfg, seeds=(0,), progress=False)
    assert run.history["train_acc"][0, -1] == 1.0  # 28 training pairs of S_3 fitted
    data, model = run.dataset(0), run.model(0)
    pred = np.argmax(np.asarray(model(data.x_test, train=False)), axis=1)
    assert float(np.mean(pred == np.asarray(data.y_test))) == pytest.approx(run.history["test_acc"][0, -1])
