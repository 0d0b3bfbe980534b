"""OpenBLAS on one thread while XLA:CPU runs LAPACK probes (grok/blas_threads.py)."""

from __future__ import annotations

import contextlib

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_info, threadpool_limits

import grok
from grok import blas_threads, engine, posthoc


def _blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_which_probes_call_lapack():
    assert blas_threads.uses_lapack(["spectral"]) and blas_threads.uses_lapack(["collapse", "ntk"])
    assert not blas_threads.uses_lapack(["collapse", "neurons"]) and not blas_threads.uses_lapack([])


def test_one_blas_thread_within_and_the_users_setting_after():
    scipy.linalg.svd(np.eye(3))  # SciPy's OpenBLAS, the one JAX's LAPACK kernels call, is loaded
    with threadpool_limits(limits=2, user_api="blas"):  # the user's setting
        with blas_threads.one_blas_thread():
            assert _blas_threads() == {1}
        assert _blas_threads() == {2}
        with blas_threads.one_blas_thread(active=False):
            assert _blas_threads() == {2}


def test_probe_history_and_training_with_a_lapack_probe_take_one_blas_thread(monkeypatch):
    calls = []

    @contextlib.contextmanager
    def record(active=True):
        calls.append(active)
        yield

    monkeypatch.setattr(posthoc, "one_blas_thread", record)
    monkeypatch.setattr(engine, "one_blas_thread", record)
    cfg = grok.preset("prieto-perpgrad").override(
        **{
            "task.p": 11,
            "task.train_fraction": 0.6,
            "model.widths": [24],
            "train.steps": 4,
            "train.log_every": 2,
            "train.snapshots": 2,
        }
    )
    run = grok.train(cfg, progress=False)
    grok.probe_history(run, ["spectral"])
    grok.probe_history(run, ["collapse"])
    grok.train(cfg.override(**{"train.probes": ["spectral"]}), progress=False)
    assert calls == [False, True, False, True]
