"""benchmarks/bench_torch.py's PyTorch programs compute the step the engine computes: the [P] and
[D] losses of the torch modules, recomputed in NumPy from their weights (gather first layer, ReLU
or z², readout stored [C, N], softmax cross-entropy or one-hot MSE over samples × classes), and
AdamW with the preset's hyperparameters. Needs the `peers` extra (PyTorch)."""

import numpy as np
import pytest

import grok

torch = pytest.importorskip("torch")

from benchmarks.bench_torch import torch_problem, torch_trainer  # noqa: E402


def numpy_loss(cfg, net, x, labels):
    p = cfg.task.p
    w = {k: v.detach().double().numpy() for k, v in net.state_dict().items()}
    x, labels = x.numpy(), labels.numpy()
    z = w["first.weight"][x[:, 0]] + w["first.weight"][p + x[:, 1]]
    h = z * z if cfg.model.kind == "quadratic_mlp" else np.maximum(z, 0)
    for i in range(len(cfg.model.widths) - 1):
        h = np.maximum(h @ w[f"hidden.{i}.weight"].T, 0)
    out = h @ w["readout.weight"].T
    if cfg.model.kind == "quadratic_mlp":
        return np.mean((out - np.eye(p)[labels]) ** 2)
    out = out - out.max(axis=1, keepdims=True)
    logp = out - np.log(np.exp(out).sum(axis=1, keepdims=True))
    return -np.mean(logp[np.arange(len(labels)), labels])


@pytest.mark.peers
@pytest.mark.parametrize(
    "name, sets",
    [("prieto-softmax-collapse-small", {}), ("doshi-coexistence", {"task.p": 13, "model.widths": [24]})],
)
def test_torch_step_is_the_engines_step(name, sets):
    cfg = grok.preset(name).override(**sets)
    net, x, labels, loss_fn, opt = torch_problem(cfg)
    assert x.shape == (cfg.n_train, 2) and tuple(net.readout.weight.shape) == (cfg.task.p, cfg.model.widths[-1])
    with torch.no_grad():
        loss = float(loss_fn(net(x)))
    assert loss == pytest.approx(numpy_loss(cfg, net, x, labels), rel=1e-5)
    o = cfg.optim
    d = opt.defaults
    assert (d["lr"], d["betas"], d["eps"], d["weight_decay"]) == (o.lr, (o.b1, o.b2), o.eps, o.weight_decay)
    train = torch_trainer(cfg, compiled=False)
    assert train(20) < loss  # it trains: full-batch AdamW lowers the training loss
