"""The `spectral` probe on a run's snapshots against weightwatcher 0.7.7, in one process.

One run of the [P]-size MLP (`prieto-perpgrad`: layers 226×200, 200×200, 113×200), 4 members
(seeds), 20 snapshots. grok: `grok.probe_history(run, ["spectral"])`, every layer × snapshot ×
member in one compiled program (norms, stable and effective rank, α, x_min, KS distance, tail);
compiled by a first, untimed call, then the fastest of a few calls (each re-stacks the snapshots,
as a user's call does). weightwatcher: its default `analyze()` of a PyTorch copy of each member at
each snapshot, one model after the other, as one analyses checkpoints with it (the copy is made
outside the timing). Needs the optional `peers` extra (torch, weightwatcher 0.7.7); without it the
benchmark reports grok's time alone.

Both sides run with OpenBLAS/MKL limited to one thread (`threadpoolctl`, installed with weightwatcher's
scikit-learn): their SVDs go through the same LAPACK, whose threads otherwise fight XLA's and each
other's on a 2-core machine (measured there: a 200×226 SVD takes ~60 ms with the default threads
and ~5 ms with one under load, for NumPy and JAX alike; the whole `probe_history` call 607–857 ms
against 279–361 ms). The two sides alternate, `ROUNDS` times, and each keeps its fastest round.
"""

from __future__ import annotations

import logging
import time

import numpy as np

import grok

MEMBERS = 4
SNAPSHOTS = 20
LAYERS = ("first/kernel", "hidden/0/kernel", "readout/kernel")
ROUNDS = 3


def _run() -> grok.Run:
    cfg = grok.preset("prieto-perpgrad").override(
        **{"train.steps": 200, "train.log_every": 10, "train.snapshots": SNAPSHOTS}
    )
    return grok.train(cfg, seeds=tuple(range(MEMBERS)), progress=False)


def _torch_models(run: grok.Run) -> list:
    import torch

    models = []
    for step in run.steps_with_snapshots:
        for m in range(run.n_members):
            params = run.params_at(step, m)
            layers = []
            for name in LAYERS:
                w = np.asarray(params[name], np.float32).T  # grok stores [in, out]; torch's Linear [out, in]
                lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
                with torch.no_grad():
                    lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
                layers.append(lin)
            models.append(torch.nn.Sequential(layers[0], torch.nn.ReLU(), layers[1], torch.nn.ReLU(), layers[2]))
    return models


def _ww_alphas(models: list) -> np.ndarray:
    import weightwatcher as ww

    return np.stack([ww.WeightWatcher(model=model).analyze()["alpha"].to_numpy() for model in models])


def _load_lapack() -> None:
    """Load every LAPACK the timings use (JAX's, SciPy's, torch's), so that `threadpool_limits` sees them."""
    import jax.numpy as jnp
    import scipy.linalg

    w = np.eye(3, dtype=np.float32)
    jnp.linalg.svd(jnp.asarray(w), compute_uv=False).block_until_ready()
    scipy.linalg.svd(w, compute_uv=False)
    try:
        import torch
        import weightwatcher  # noqa: F401

        torch.linalg.svdvals(torch.from_numpy(w))
    except ImportError:
        pass


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def run() -> dict[str, float]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # without the `peers` extra: with the user's threads
        return _measure()
    _load_lapack()
    with threadpool_limits(limits=1):
        return _measure()


def _measure() -> dict[str, float]:
    run_ = _run()
    snapshots = len(run_.steps_with_snapshots)
    n = MEMBERS * snapshots
    grok.probe_history(run_, ["spectral"])  # compile
    print(f"{MEMBERS} members × {snapshots} snapshots × {len(LAYERS)} layers")
    try:
        import torch  # noqa: F401
        import weightwatcher  # noqa: F401
    except ImportError:
        t_ours = min(_timed(lambda: grok.probe_history(run_, ["spectral"]))[0] for _ in range(ROUNDS))
        print(f"grok probe_history(['spectral'])   {t_ours * 1e3:8.1f} ms   ({t_ours / n * 1e3:.2f} ms per model)")
        print("weightwatcher / torch not installed (pip install 'grok-lab[peers]'): no comparison")
        return {"grok_seconds": t_ours}
    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    models = _torch_models(run_)
    _ww_alphas(models[:1])  # imports and first-call set-up, untimed
    ours_times, ww_times = [], []
    for _ in range(ROUNDS):
        seconds, ours = _timed(lambda: grok.probe_history(run_, ["spectral"]))
        ours_times.append(seconds)
        seconds, theirs = _timed(lambda: _ww_alphas(models))
        ww_times.append(seconds)
    t_ours, t_ww = min(ours_times), min(ww_times)
    print(f"grok probe_history(['spectral'])   {t_ours * 1e3:8.1f} ms   ({t_ours / n * 1e3:.2f} ms per model)")
    out = {"grok_seconds": t_ours}
    mine = np.stack([ours[f"alpha/{name}"].T.reshape(-1) for name in LAYERS], axis=1)  # [snapshot·member, layer]
    gap = np.nanmax(np.abs(mine - theirs))
    print(f"weightwatcher 0.7.7 analyze()      {t_ww * 1e3:8.1f} ms   ({t_ww / n * 1e3:.2f} ms per model)")
    print(f"speed-up {t_ww / t_ours:.1f}x;  max |α_grok − α_ww| = {gap:.4f} (the same estimator; float32 SVD here)")
    return out | {"weightwatcher_seconds": t_ww, "speedup": t_ww / t_ours, "max_alpha_gap": float(gap)}


if __name__ == "__main__":
    run()
