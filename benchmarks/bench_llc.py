"""The LLC sampler's throughput (docs/formulas.md §8), and devinterp's on the same weights when it is installed.

Task: modular addition p = 53, 40% of the pairs, the one-hot pair (a ⊕ b, 106 inputs) → 512 ReLU → 53
logits, softmax cross-entropy, trained briefly with AdamW. Sampling: 8 chains × 500 draws at one ε,
nβ and γ = 0 (devinterp's default), burn-in 0 (devinterp averages every draw), with minibatches of
256 and with full batches. Figures are draws per second (chains × draws / wall seconds), compile
time excluded (every program runs once first), best of `REPEATS`, interleaved.

With devinterp (`pip install -e ".[peers]"`): the same weights copied into a torch MLP, the same data
(a dataset of example indices whose loss looks the rows up), batch size, ε, nβ, γ, chains and draws;
both estimates are printed (they should agree within their chain spread).

Also: λ̂ over 20 snapshots × 4 members × 8 chains × 200 draws (minibatches of 256) of one run in
one call (goal: under 3 minutes on a 2-core CPU).
"""

from __future__ import annotations

import time

import numpy as np

import grok

REPEATS = 2
CHAINS, DRAWS, EPS, GAMMA = 8, 500, 1e-4, 0.0


def _config(steps: int, snapshots: int = 0):
    cfg = grok.preset("interventions-adamw-small").override(
        **{"task.p": 53, "task.train_fraction": 0.4, "model.widths": [512], "train.steps": steps}
    )
    if snapshots:
        cfg = cfg.override(**{"train.schedule": "log", "train.log_points": 40, "train.snapshots": snapshots})
    else:
        cfg = cfg.override(**{"train.log_every": steps})
    return cfg


def _lab(run, batch_size):
    start = time.perf_counter()
    res = grok.llc(run, chains=CHAINS, draws=DRAWS, burnin=0, step_size=EPS, localization=GAMMA, batch_size=batch_size)
    return time.perf_counter() - start, res


def _devinterp(run, batch_size, nbeta):
    """devinterp 2.0.1's estimate on the run's weights and data: (seconds, mean λ̂, std), or None."""
    try:
        import datasets
        import torch
        from devinterp.slt.llc import llc as devinterp_llc
    except ImportError:
        return None
    data = run.dataset(0)
    x, y = np.asarray(data.x_train), np.asarray(data.y_train)
    p = run.config.task.p
    first = np.asarray(run.state["params/first/kernel"][0])  # [2p, 512]: the one-hot matmul's weights
    readout = np.asarray(run.state["params/readout/kernel"][0])  # [53, 512], stored transposed
    width = first.shape[1]
    model = torch.nn.Sequential(
        torch.nn.Linear(2 * p, width, bias=False), torch.nn.ReLU(), torch.nn.Linear(width, p, bias=False)
    )
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(first.T.copy()))
        model[2].weight.copy_(torch.from_numpy(readout.copy()))
    onehot = torch.zeros(len(x), 2 * p)
    onehot[torch.arange(len(x)), torch.from_numpy(x[:, 0]).long()] = 1.0
    onehot[torch.arange(len(x)), p + torch.from_numpy(x[:, 1]).long()] = 1.0
    labels = torch.from_numpy(y).long()
    # devinterp wants sequences of ≥ 2 tokens and a per-token loss [batch, tokens − 1]: each row is (index, index)
    rows = np.arange(len(x))
    dataset = datasets.Dataset.from_dict({"input_ids": np.stack([rows, rows], axis=1)}).with_format("torch")

    def loss_fn(m, input_ids):
        rows = input_ids[:, 0]
        return torch.nn.functional.cross_entropy(m(onehot[rows]), labels[rows], reduction="none")[:, None]

    start = time.perf_counter()
    out = devinterp_llc(
        model, dataset, {}, lr=EPS, n_beta=nbeta, loss_fn=loss_fn, num_chains=CHAINS, num_draws=DRAWS,
        batch_size=batch_size or len(x), localization=GAMMA,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    return seconds, float(out["llc_mean"]), float(out["llc_std"])


def run() -> dict[str, float]:
    trained = grok.train(_config(300), progress=False)
    n = trained.config.spec.n_train
    figures: dict[str, float] = {}
    for label, batch in (("minibatch 256", 256), ("full batch", None)):
        _lab(trained, batch)  # compile
        best, peer, res = np.inf, None, None
        for _ in range(REPEATS):
            seconds, res = _lab(trained, batch)
            best = min(best, seconds)
            other = _devinterp(trained, batch, res.nbeta)
            if other is not None and (peer is None or other[0] < peer[0]):
                peer = other
        rate = CHAINS * DRAWS / best
        key = "mini" if batch else "full"
        figures[f"lab_draws_per_s_{key}"] = rate
        # every chain, as devinterp reports it (with burn-in 0 the rise from w* trends and is flagged)
        line = f"{label:14s} lab {rate:7.0f} draws/s  λ̂ {res.per_chain.mean():.2f} ± {res.per_chain.std():.2f}"
        if peer is not None:
            peer_rate = CHAINS * DRAWS / peer[0]
            figures[f"devinterp_draws_per_s_{key}"] = peer_rate
            figures[f"speedup_{key}"] = rate / peer_rate
            line += f"  | devinterp {peer_rate:7.0f} draws/s  λ̂ {peer[1]:.2f} ± {peer[2]:.2f}"
            line += f"  ({rate / peer_rate:.1f}x)"
        print(line + f"  (n = {n}, nβ = {res.nbeta:.1f}, ε = {EPS:g})", flush=True)
    grid_run = grok.train(_config(2000, snapshots=20), seeds=(0, 1, 2, 3), progress=False)
    start = time.perf_counter()
    res = grok.llc(grid_run, chains=8, draws=200, step_size=EPS, batch_size=256)
    figures["grid_seconds"] = time.perf_counter() - start
    shape = "x".join(map(str, res.traces.shape))
    print(f"λ̂ over {len(res.steps)} snapshots x 4 members x 8 chains x 200 draws ({shape}): "
          f"{figures['grid_seconds']:.0f} s in one call, compile included (goal < 180 s)")  # fmt: skip
    return figures


if __name__ == "__main__":
    run()
