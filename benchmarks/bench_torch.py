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

Two comparisons, each with the same work on both sides, ms per training step:

- *steps*: the training steps alone. The engine's step (`MemberProgram.step`, divergence checks
  included) in `jit(scan)`, compiled before timing, against PyTorch's loop of steps.
- *runs*: a whole lone run. The engine's `grok.train_members` (data and parameters built from
  the seed, evaluations at the start and the end, the history copied to the host) against
  PyTorch's run from the same initial weights: a fresh `AdamW`, the loss and accuracy on the train
  and test sets before and after the steps (`torch.no_grad()`).

Each round times every contender once, in a fixed order; a contender's figure is its fastest
round. Ratios > 1: the engine is faster. PyTorch's OpenMP threads
wait passively (`OMP_WAIT_POLICY=PASSIVE` unless set): on a loaded 2-core machine its default
spinning made every operation 5–600× slower (measured: an AdamW step of [D]'s 146 k parameters
took 165 ms with two spinning threads, 0.3–0.6 ms passive or with one thread).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, NamedTuple

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads its OpenMP runtime

import jax

import grok
from benchmarks import bench_limits
from grok import engine

ROUNDS = int(os.environ.get("GROK_BENCH_REPEATS", "3"))
SETTINGS = (("[P] softmax collapse", "prieto-softmax-collapse", 30), ("[D] paper-size member", "doshi-coexistence", 30))


class TorchProblem(NamedTuple):
    """`cfg`'s model, data and loss in PyTorch. Targets are what `loss_fn(out, target)` takes:
    labels for cross-entropy, one-hot rows for [D]'s MSE."""

    net: Any
    x: Any  # [m, 2] training pairs
    labels: Any  # [m]
    x_test: Any
    labels_test: Any
    target: Any
    target_test: Any
    loss_fn: Callable
    opt: Any


def torch_problem(cfg: grok.Config, seed: int = 0) -> TorchProblem:
    """`cfg`'s model, its full batch (every pair (a, b), the first `n_train` of a shuffle for
    training, labels (a + b) mod p), its loss and `AdamW` in PyTorch."""
    import torch
    from torch import nn

    p, widths, m = cfg.task.p, cfg.model.widths, cfg.n_train
    torch.manual_seed(seed)
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    pairs = torch.stack([a.reshape(-1), b.reshape(-1)], dim=1)[torch.randperm(p * p)]
    labels_all = (pairs[:, 0] + pairs[:, 1]) % p
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

        def target_of(labels):
            return nn.functional.one_hot(labels, p).float()

        def loss_fn(out, target):
            return nn.functional.mse_loss(out, target)  # mean over samples × classes, as [D]
    else:

        def target_of(labels):
            return labels

        def loss_fn(out, target):
            return nn.functional.cross_entropy(out, target)

    net = Net()
    labels, labels_test = labels_all[:m], labels_all[m:]
    target, target_test = target_of(labels), target_of(labels_test)
    return TorchProblem(net, pairs[:m], labels, pairs[m:], labels_test, target, target_test, loss_fn, adamw(cfg, net))


def adamw(cfg: grok.Config, net) -> Any:
    """`torch.optim.AdamW` over `net`'s parameters with the preset's hyperparameters."""
    import torch

    o = cfg.optim
    return torch.optim.AdamW(net.parameters(), lr=o.lr, betas=(o.b1, o.b2), eps=o.eps, weight_decay=o.weight_decay)


def torch_trainer(cfg: grok.Config, compiled: bool) -> Callable[[int], float]:
    """A function that trains `steps` full-batch steps of `cfg`'s model in PyTorch, going on from
    where the last call stopped; it returns the last training loss."""
    prob = torch_problem(cfg)
    model = compile_module(prob.net) if compiled else prob.net

    def train(steps: int) -> float:
        return float(train_steps(prob, model, prob.opt, steps).detach())

    return train


def torch_runner(cfg: grok.Config, compiled: bool) -> Callable[[int], dict[str, float]]:
    """A function that runs `cfg`'s model for `steps` steps in PyTorch from the same initial
    weights each call: a fresh `AdamW`, then the loss and accuracy on the train and test sets
    before and after the steps, returned as {"train_loss", "train_acc", "test_loss", "test_acc"}
    of the end."""
    import torch

    prob = torch_problem(cfg)
    model = compile_module(prob.net) if compiled else prob.net
    start = [q.detach().clone() for q in prob.net.parameters()]
    splits = (("train", prob.x, prob.target, prob.labels), ("test", prob.x_test, prob.target_test, prob.labels_test))

    def evaluate() -> dict[str, float]:
        out = {}
        with torch.no_grad():
            for split, x, target, labels in splits:
                y = model(x)
                out[f"{split}_loss"] = float(prob.loss_fn(y, target))
                out[f"{split}_acc"] = float((y.argmax(dim=1) == labels).float().mean())
        return out

    def run(steps: int) -> dict[str, float]:
        with torch.no_grad():
            for q, q0 in zip(prob.net.parameters(), start, strict=True):
                q.copy_(q0)
        evaluate()
        train_steps(prob, model, adamw(cfg, prob.net), steps)
        return evaluate()

    return run


def compile_module(net):
    import torch

    return torch.compile(net)


def train_steps(prob: TorchProblem, model, opt, steps: int):
    """`steps` full-batch steps written the usual way; the last loss (None after none)."""
    loss = None
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = prob.loss_fn(model(prob.x), prob.target)
        loss.backward()
        opt.step()
    return loss


def engine_steps(cfg: grok.Config) -> Callable[[int], Any]:
    """The engine's step in `jit(scan)` for one member (`bench_limits.engine_program`); the
    program is built for `cfg.train.steps` steps, which each call runs."""
    fn, args = bench_limits.engine_program(cfg, cfg.train.steps, 1)
    return lambda steps: jax.block_until_ready(fn(*args))


def engine_runner(cfg: grok.Config) -> Callable[[int], float]:
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
    print(
        f"{'setting':>22}{'what':>7}{'engine':>9}{'eager':>9}{'compile':>9}{'eager/engine':>14}{'compile/engine':>16}"
    )
    out: dict[str, float] = {}
    for label, name, steps in SETTINGS:
        cfg = grok.preset(name).override(**{"train.steps": steps, "train.log_every": steps, "train.probes": []})
        engine.ensure_precision(cfg)
        contenders = {
            ("steps", "engine"): engine_steps(cfg),
            ("steps", "eager"): torch_trainer(cfg, False),
            ("steps", "compile"): torch_trainer(cfg, True),
            ("runs", "engine"): engine_runner(cfg),
            ("runs", "eager"): torch_runner(cfg, False),
            ("runs", "compile"): torch_runner(cfg, True),
        }
        for train in contenders.values():
            train(steps)  # warm-up: compilation (the engine compiles for `steps`), caches
        best = dict.fromkeys(contenders, float("inf"))
        for _ in range(ROUNDS):
            for k, train in contenders.items():
                start = time.perf_counter()
                train(steps)
                best[k] = min(best[k], 1e3 * (time.perf_counter() - start) / steps)
        key = name.replace("-", "_")
        for what in ("steps", "runs"):
            e, eager, comp = (best[(what, k)] for k in ("engine", "eager", "compile"))
            print(
                f"{label:>22}{what:>7}{e:>9.3g}{eager:>9.3g}{comp:>9.3g}{eager / e:>13.2f}x{comp / e:>15.2f}x",
                flush=True,
            )
            out |= {f"{key}_{what}_{k}_ms": best[(what, k)] for k in ("engine", "eager", "compile")}
            out |= {f"{key}_{what}_eager_over_engine": eager / e, f"{key}_{what}_compile_over_engine": comp / e}
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return out


if __name__ == "__main__":
    run()
