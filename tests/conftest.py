"""Test set-up: 4 host CPU devices for sharding tests, strict JAX promotion rules, a private compile cache."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# No shared persistent compilation cache in the tests (their subprocesses and notebook kernels inherit
# this): two xdist workers reading and writing one cache directory aborted inside JAX's cache read.
# Each test process keeps a private one instead (below).
os.environ.setdefault("GROK_CACHE_DIR", "off")
flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in flags:
    os.environ["XLA_FLAGS"] = (flags + " --xla_force_host_platform_device_count=4").strip()

import atexit  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")

# This process (an xdist worker, or pytest alone) keeps a persistent compilation cache of its own, in
# a fresh directory removed at exit: a program that an earlier test compiled from the same HLO (the
# init or training chunk of a config that differs only in, say, train.steps) is read back instead of
# compiled again; the same executable, so the same numbers. XLA's compiles were ~58% of the suite's
# time (JAX_LOG_COMPILES, one run: 1375 s, the init program 530 s of it). Nothing else touches the
# directory: subprocesses and notebook kernels inherit GROK_CACHE_DIR=off, so no entry is read while
# another process writes it, or left half-written by a test's kill -9.
_COMPILE_CACHE = tempfile.mkdtemp(prefix="grok-tests-jax-cache-")
atexit.register(shutil.rmtree, _COMPILE_CACHE, ignore_errors=True)
jax.config.update("jax_compilation_cache_dir", _COMPILE_CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


@pytest.fixture(autouse=True, scope="session")
def _mnist_file(tmp_path_factory):
    """The mnist presets read their file from $GROK_MNIST: without one, a stand-in of the right sizes
    (random pixels) so that every preset builds."""
    import numpy as np

    if os.environ.get("GROK_MNIST"):
        yield
        return
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("mnist") / "mnist.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (1000, 28, 28), dtype=np.uint8),
        y_train=rng.integers(0, 10, 1000).astype(np.uint8),
        x_test=rng.integers(0, 256, (10000, 28, 28), dtype=np.uint8),
        y_test=rng.integers(0, 10, 10000).astype(np.uint8),
    )
    os.environ["GROK_MNIST"] = str(path)
    yield
    del os.environ["GROK_MNIST"]


def _memory_maps() -> int:
    try:
        with open("/proc/self/maps", "rb") as f:
            return sum(1 for _ in f)
    except OSError:  # not Linux
        return 0


def _max_memory_maps() -> int:
    try:
        with open("/proc/sys/vm/max_map_count") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 65530


_MAPS_BUDGET = _max_memory_maps() // 2


@pytest.fixture(autouse=True)
def _drop_compiled_programs_before_the_maps_run_out():
    """Every program XLA:CPU compiles keeps ~9 memory mappings until JAX's caches let it go, and an
    xdist worker compiles thousands: past Linux's `vm.max_map_count` (65 530) the next compilation
    fails inside LLVM ("Cannot allocate memory") or the worker dies. Measured: a worker held 23 000
    mappings a third of the way through the suite. When a test leaves more than half the limit,
    `jax.clear_caches()` drops the compiled programs (later tests compile what they need again)."""
    yield
    if _memory_maps() > _MAPS_BUDGET:
        jax.clear_caches()
