"""benchmarks/bench_torch.py's PyTorch programs compute the step the engine computes: the [P] and
[D] losses of the torch modules, recomputed in NumPy from their weights (gather first layer, ReLU
or z², readout stored [C, N], softmax cross-entropy or one-hot MSE over samples × classes), and
AdamW with the preset's hyperparameters. Needs the `peers` extra (PyTorch)."""

import numpy as np
import pytest

import grok

torch = pytest.importorskip("torch")

from benchmarks.bench_torch import torch_problem, torch_runner, torch_trainer  # noqa: E402


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
    prob = torch_problem(cfg)
    net, x, labels, opt = prob.net, prob.x, prob.labels, prob.opt
    p = cfg.task.p
    assert x.shape == (cfg.n_train, 2) and tuple(net.readout.weight.shape) == (p, cfg.model.widths[-1])
    pairs = torch.cat([x, prob.x_test]).numpy()
    assert sorted(map(tuple, pairs)) == [(a, b) for a in range(p) for b in range(p)]  # every pair once
    assert np.array_equal(torch.cat([labels, prob.labels_test]).numpy(), pairs.sum(axis=1) % p)
    with torch.no_grad():
        loss = float(prob.loss_fn(net(x), prob.target))
    assert loss == pytest.approx(numpy_loss(cfg, net, x, labels), rel=1e-5)
    o = cfg.optim
    d = opt.defaults
    assert (d["lr"], d["betas"], d["eps"], d["weight_decay"]) == (o.lr, (o.b1, o.b2), o.eps, o.weight_decay)
    train = torch_trainer(cfg, compiled=False)
    assert train(20) < loss  # it trains: full-batch AdamW lowers the training loss


@pytest.mark.peers
def test_torch_run_restarts_from_the_same_weights_and_evaluates_both_sets():
    cfg = grok.preset("doshi-coexistence").override(**{"task.p": 13, "model.widths": [24]})
    run = torch_runner(cfg, compiled=False)
    first, again = run(20), run(20)
    assert first == again  # the same initial weights and a fresh AdamW each call
    start = run(0)
    assert set(first) == {"train_loss", "train_acc", "test_loss", "test_acc"}
    assert first["train_loss"] < start["train_loss"]
