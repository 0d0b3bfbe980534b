"""The image tasks `digits` and `mnist` (tasks/images.py, docs/formulas.md §2.4)."""

import gzip
import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import grok
from tasks import digits, images, mnist

needs_sklearn = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="digits needs scikit-learn")


def _digits_task(n_train=1000):
    return grok.Config(task=grok.TaskConfig(kind="digits", n_train=n_train)).task


def _split(key, n):
    """The permutation the task draws from its data seed (subkey 0)."""
    from tasks.dataset import subkeys

    return np.asarray(jax.random.permutation(subkeys(key, 3)[0], n))


@needs_sklearn
def test_digits_split_standardization_and_corruption():
    task = _digits_task(1000)
    pool_x, pool_y = digits.digits_arrays()
    assert pool_x.shape == (1797, 64) and pool_x.max() == 16 and sorted(set(pool_y)) == list(range(10))
    key = jax.random.key(3)
    data = jax.jit(lambda k, xi: digits.build_digits(task, k, xi))(key, 0.25)
    perm = _split(key, 1797)
    train, test = perm[:1000], perm[1000:]
    assert sorted(perm.tolist()) == list(range(1797))  # train and test are disjoint and cover the 1 797
    x01 = pool_x / 16.0
    mu, sd = x01[train].mean(), x01[train].std()  # the training images' pixels, all together
    np.testing.assert_allclose(data.x_train, (x01[train] - mu) / sd, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(data.x_test, (x01[test] - mu) / sd, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(data.y_train_true, pool_y[train])
    np.testing.assert_array_equal(data.y_test, pool_y[test])
    # labels: exactly ⌊ξ·n⌋ are corrupted, the others keep their true label
    corrupted = np.asarray(data.corrupted)
    assert corrupted.sum() == 250
    np.testing.assert_array_equal(np.asarray(data.y_train)[~corrupted], pool_y[train][~corrupted])
    assert np.mean(np.asarray(data.y_train)[corrupted] != pool_y[train][corrupted]) > 0.8  # ~90% really change


def test_standardize_uses_training_statistics():
    x_train = jnp.asarray(np.random.default_rng(0).random((50, 8)), jnp.float32)
    x_test = jnp.asarray(np.random.default_rng(1).random((20, 8)), jnp.float32)
    a, b = images.standardize(x_train, x_test)
    mu, sd = np.mean(np.asarray(x_train)), np.std(np.asarray(x_train))
    np.testing.assert_allclose(a, (np.asarray(x_train) - mu) / sd, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b, (np.asarray(x_test) - mu) / sd, rtol=1e-5, atol=1e-6)
    c, _ = images.standardize(jnp.ones((4, 3)), jnp.ones((2, 3)))
    assert np.all(np.asarray(c) == 0)  # constant images: centred, not divided by 0


@needs_sklearn
def test_data_seed_changes_the_split_and_vmaps():
    task = _digits_task(300)
    keys = jax.vmap(jax.random.key)(jnp.arange(3))
    data = jax.vmap(lambda k, xi: digits.build_digits(task, k, xi))(keys, jnp.asarray([0.0, 0.1, 0.5]))
    assert np.asarray(data.corrupted).sum(axis=1).tolist() == [0, 30, 150]
    assert not np.array_equal(np.asarray(data.y_train_true[0]), np.asarray(data.y_train_true[1]))
    one = digits.build_digits(task, jax.random.key(1), 0.1)
    np.testing.assert_array_equal(one.y_train, data.y_train[1])


@needs_sklearn
def test_digits_too_many_training_images_is_one_config_error():
    with pytest.raises(grok.ConfigError, match=r"task.n_train: got 1797; allowed: at most 1796 of the 1797 digits"):
        _digits_task(1797)


# --------------------------------------------------------------------------- mnist from a local file
def _write_idx(path, array, gz):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _fake_mnist(rng, n_train=120, n_test=40):
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test).astype(np.uint8),
    }


def _mnist_cfg(path, **task):
    options = (("mnist.path", str(path)),) + tuple((f"mnist.{k}", v) for k, v in task.pop("options", {}).items())
    return grok.Config(task=grok.TaskConfig(kind="mnist", n_train=task.pop("n_train", 100), options=options))


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reads_idx_files_and_npz_alike(tmp_path, gz):
    arrays = _fake_mnist(np.random.default_rng(0))
    idx = tmp_path / "idx"
    idx.mkdir()
    for key, name in mnist.IDX_FILES.items():
        _write_idx(idx / (name + (".gz" if gz else "")), arrays[key], gz)
    np.savez(tmp_path / "mnist.npz", **arrays)
    a = mnist.mnist_arrays(str(idx))
    b = mnist.mnist_arrays(str(tmp_path / "mnist.npz"))
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(a[0], arrays["x_train"].reshape(120, 784))
    cfg = _mnist_cfg(idx, n_train=100, options={"n_test": 30})
    assert cfg.spec.input_dim == 784 and cfg.spec.n_test == 30 and cfg.spec.n_train == 100
    key = jax.random.key(5)
    data = mnist.build_mnist(cfg.task, key, 0.0)
    train = _split(key, 120)[:100]
    x01 = arrays["x_train"].reshape(120, 784) / 255.0
    t01 = arrays["x_test"][:30].reshape(30, 784) / 255.0
    mu, sd = x01[train].mean(), x01[train].std()
    np.testing.assert_allclose(data.x_train, (x01[train] - mu) / sd, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(data.x_test, (t01 - mu) / sd, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(data.y_test, arrays["y_test"][:30])


def test_an_idx_file_rewritten_in_place_is_read_again(tmp_path):
    """The directory's own mtime does not change when a file inside it is overwritten; the cache key does."""
    import os

    idx = tmp_path / "idx"
    idx.mkdir()
    first = _fake_mnist(np.random.default_rng(1))
    for key, name in mnist.IDX_FILES.items():
        _write_idx(idx / name, first[key], False)
    np.testing.assert_array_equal(mnist.mnist_arrays(str(idx))[1], first["y_train"])
    dir_time = os.stat(idx).st_mtime_ns
    second = _fake_mnist(np.random.default_rng(2))
    labels = idx / mnist.IDX_FILES["y_train"]
    _write_idx(labels, second["y_train"], False)
    later = os.stat(labels).st_mtime_ns + 10**9  # a clearly newer file time, whatever the clock's resolution
    os.utime(labels, ns=(later, later))
    assert os.stat(idx).st_mtime_ns == dir_time
    np.testing.assert_array_equal(mnist.mnist_arrays(str(idx))[1], second["y_train"])


def test_mnist_bad_files_are_one_line_config_errors(tmp_path):
    arrays = _fake_mnist(np.random.default_rng(1))
    with pytest.raises(grok.ConfigError, match=r"task.mnist.path: got ''.*no file given.*IDX files"):
        _mnist_cfg("")
    with pytest.raises(grok.ConfigError, match=r"does not exist: task.mnist.path needs the four IDX files"):
        _mnist_cfg(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(grok.ConfigError, match=r"has no train-images-idx3-ubyte\[.gz\]"):
        _mnist_cfg(tmp_path / "empty")
    np.savez(tmp_path / "partial.npz", x_train=arrays["x_train"])
    with pytest.raises(grok.ConfigError, match=r"lacks y_train, x_test, y_test"):
        _mnist_cfg(tmp_path / "partial.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(grok.ConfigError, match=r"is not a readable .npz"):
        _mnist_cfg(tmp_path / "junk.npz")
    bad = tmp_path / "bad"
    bad.mkdir()
    for key, name in mnist.IDX_FILES.items():
        _write_idx(bad / name, arrays[key], False)
    (bad / mnist.IDX_FILES["x_test"]).write_bytes(b"\x00\x00\x08\x03" + (40).to_bytes(4, "big") + b"\x00" * 12)
    with pytest.raises(grok.ConfigError, match=r"header says \(40, 0, 0\) but holds 4 bytes"):
        _mnist_cfg(bad)
    np.savez(tmp_path / "ok.npz", **arrays)
    with pytest.raises(grok.ConfigError, match=r"task.n_train: got 500; allowed: at most the 120 training images"):
        _mnist_cfg(tmp_path / "ok.npz", n_train=500)
    with pytest.raises(grok.ConfigError, match=r"task.mnist.n_test: got 41; allowed: an integer in \[1, 40\]"):
        _mnist_cfg(tmp_path / "ok.npz", options={"n_test": 41})
    with pytest.raises(grok.ConfigError) as err:
        _mnist_cfg(tmp_path / "nowhere")
    assert "\n" not in str(err.value)


def test_digits_without_scikit_learn_says_how_to_install_it(monkeypatch):
    def missing():
        raise ImportError("No module named 'sklearn'")

    monkeypatch.setattr(digits, "digits_arrays", missing)
    with pytest.raises(grok.ConfigError, match=r"digits needs scikit-learn \(pip install 'grok-lab\[images\]'\)"):
        _digits_task(100)


def test_a_saved_mnist_run_loads_on_a_machine_without_its_file(tmp_path):
    np.savez(tmp_path / "mnist.npz", **_fake_mnist(np.random.default_rng(1)))
    cfg = _mnist_cfg(tmp_path / "mnist.npz", n_train=40, options={"n_test": 40}).override(
        **{"model.widths": [8], "train.steps": 4, "train.log_every": 2, "train.schedule": "linear"}
    )
    grok.train(cfg, progress=False, out=tmp_path / "run")
    (tmp_path / "mnist.npz").unlink()
    run = grok.load_run(tmp_path / "run")  # history and config are data: no file needed
    assert run.history["test_acc"].shape == (1, 3)
    with pytest.raises(grok.ConfigError, match="task.mnist.path"):
        run.dataset(0)  # rebuilding the data does need it, and says so
