"""What a user would pick instead: the [P] and [D] training steps in PyTorch, eager and `torch.compile`,
timed in alternation with the engine in one process. Runs only with the `peers` extra (PyTorch).

The PyTorch programs are written the usual way: an `nn.Module`, `torch.optim.AdamW`, and a loop of
`zero_grad()`, `loss.backward()`, `step()` over the full batch. They compute what the engine
computes: the token pair enters through a row gather of the first layer (`E[a] + E[p + b]`, as
`nn.Embedding`), hidden layers have no biases, the readout is stored [C, N];
[P] (softmax collapse): add mod 113, 40% train, ReLU 200-200, softmax cross-entropy, AdamW
(lr 0.01, β = (0.9, 0.99), ε = 1e-25, no weight decay); [D] (paper-size member): add mod 97,
50% train, N = 500, z², MSE on one-hot targets averaged over samples × classes, AdamW (lr 0.01,
β = (0.9, 0.98), ε = 1e-8). `torch.compile` compiles the module (Inductor, C++ on a CPU); the
optimizer step stays eager, as most code has it.

The engine's figure is a lone run through `grok.train_members` (evaluations at the start and the
end only), compiled before timing. Each round times the engine, then eager, then compiled; a
contender's figure is its fastest round. Ratios > 1: the engine is faster. PyTorch's OpenMP threads
wait passively (`OMP_WAIT_POLICY=PASSIVE` unless set): on a loaded 2-core machine its default
spinning made every operation 5–600× slower (measured: an AdamW step of [D]'s 146 k parameters
took 165 ms with two spinning threads, 0.3–0.6 ms passive or with one thread).
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads its OpenMP runtime

import grok

ROUNDS = int(os.environ.get("GROK_BENCH_REPEATS", "3"))
SETTINGS = (("[P] softmax collapse", "prieto-softmax-collapse", 30), ("[D] paper-size member", "doshi-coexistence", 30))


def torch_problem(cfg: grok.Config, seed: int = 0):
    """(net, x [m, 2], labels [m], loss_fn, optimizer) of `cfg`'s model and full batch in PyTorch."""
    import torch
    from torch import nn

    p, widths, m, o = cfg.task.p, cfg.model.widths, cfg.n_train, cfg.optim
    torch.manual_seed(seed)
    x = torch.randint(0, p, (m, 2))
    labels = torch.randint(0, p, (m,))
    quadratic = cfg.model.kind == "quadratic_mlp"

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.first = nn.Embedding(2 * p, widths[0])
            self.hidden = nn.ModuleList(
                nn.Linear(a, b, bias=False) for a, b in zip(widths[:-1], widths[1:], strict=True)
            )
            self.readout = nn.Linear(widths[-1], p, bias=False)  # weight [C, N]

        def forward(self, x):
            z = self.first(x[:, 0]) + self.first(p + x[:, 1])
            h = z * z if quadratic else torch.relu(z)
            for layer in self.hidden:
                h = torch.relu(layer(h))
            return self.readout(h)

    if quadratic:
        target = nn.functional.one_hot(labels, p).float()

        def loss_fn(out):
            return nn.functional.mse_loss(out, target)  # mean over samples × classes, as [D]
    else:

        def loss_fn(out):
            return nn.functional.cross_entropy(out, labels)

    net = Net()
    opt = torch.optim.AdamW(net.parameters(), lr=o.lr, betas=(o.b1, o.b2), eps=o.eps, weight_decay=o.weight_decay)
    return net, x, labels, loss_fn, opt


def torch_trainer(cfg: grok.Config, compiled: bool):
    """A function that trains `steps` full-batch steps of `cfg`'s model in PyTorch, from a fixed start."""
    import torch

    net, x, _, loss_fn, opt = torch_problem(cfg)
    model = torch.compile(net) if compiled else net

    def train(steps: int) -> float:
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x))
            loss.backward()
            opt.step()
        return float(loss.detach())

    return train


def engine_trainer(cfg: grok.Config):
    """A function that trains one member of `cfg` through `grok.train_members` (one device)."""

    def train(steps: int) -> float:
        run = grok.train_members(cfg, [{"seed": 0}], progress=False, shard=False)
        return float(run.history["train_loss"][0, -1])

    return train


def run() -> dict[str, float]:
    try:
        import torch
    except ImportError:
        print("skipped: PyTorch is not installed (pip install -e '.[peers]')")
        return {}

    torch.set_num_threads(os.cpu_count() or 1)
    print(
        f"torch {torch.__version__} ({torch.get_num_threads()} threads) against the engine, one process, "
        f"{ROUNDS} alternating rounds; ms per step, fastest round; load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'setting':>22}{'engine':>9}{'eager':>9}{'compile':>9}{'eager/engine':>14}{'compile/engine':>16}")
    out: dict[str, float] = {}
    for label, name, steps in SETTINGS:
        cfg = grok.preset(name).override(**{"train.steps": steps, "train.log_every": steps, "train.probes": []})
        trainers = {"engine": engine_trainer(cfg), "eager": torch_trainer(cfg, False)}
        trainers["compile"] = torch_trainer(cfg, True)
        for train in trainers.values():
            train(2)  # warm-up (and compilation; the engine compiles its run of `steps`)
        best = {k: float("inf") for k in trainers}
        for _ in range(ROUNDS):
            for k, train in trainers.items():
                start = time.perf_counter()
                train(steps)
                best[k] = min(best[k], 1e3 * (time.perf_counter() - start) / steps)
        e = best["engine"]
        print(
            f"{label:>22}{e:>9.3g}{best['eager']:>9.3g}{best['compile']:>9.3g}"
            f"{best['eager'] / e:>13.2f}x{best['compile'] / e:>15.2f}x",
            flush=True,
        )
        key = name.replace("-", "_")
        out |= {f"{key}_{k}_ms": v for k, v in best.items()}
        out |= {f"{key}_eager_over_engine": best["eager"] / e, f"{key}_compile_over_engine": best["compile"] / e}
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return out


if __name__ == "__main__":
    run()
