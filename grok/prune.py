"""Find and prune memorizing neurons [D] (docs/formulas.md §5–6).

Rank the first hidden layer's neurons by Fourier IPR (`probes.neurons.neuron_ipr`), then
cumulatively zero each pruned neuron's incoming and outgoing weights
(the model's registered `prune`, `grok.models.apply_neuron_mask` for the MLPs) — no retraining — in one of three orders:

- ``low``: lowest IPR first (the memorizing neurons of [D] go first),
- ``high``: highest IPR first (the generalizing, Fourier-mode neurons go first),
- ``random``: a seeded random order (the control).

After each step the accuracy is measured on the train set (against the noisy labels), the clean
and the corrupted train examples (against the noisy labels, and against their true labels), the
test set and all p² pairs. The whole curve is one compiled program: a `[n_fractions, N]` mask
matrix, the masked forward pass `jax.vmap`-ed over it inside one `jax.jit` (in chunks of masks,
still one program, when the activations of every mask at once would not fit in memory).

[D] Doshi, Das, He, Gromov, *To grok or not to grok* (ICLR 2024), §4 (pruning, Fig. 4).

    import grok
    run = grok.load_run("runs/coexistence")
    res = grok.prune(run, order="low")
    print(res.table())
    res.save_pruned(0.3, "runs/coexistence-pruned")   # a run directory; grok.load_run reads it
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from grok.config import Config
from grok.errors import ConfigError
from grok.lazy_import import nnx
from grok.registry import MODELS
from grok.sizing import activation_width

ORDERS = ("low", "high", "random")
ORDER_LABELS = {
    "low": "lowest IPR first",
    "high": "highest IPR first",
    "random": "random order",
}
# Accuracy columns, named as in `Run.history`, with short table headers and plot titles.
ACCURACIES = (
    ("train_acc", "train", "train (noisy labels)"),
    ("train_acc_clean", "clean", "clean train"),
    ("train_acc_corrupted", "corrupted", "corrupted train (noisy labels)"),
    ("corrupted_true_acc", "corr→true", "corrupted train (true labels)"),
    ("test_acc", "test", "test"),
    ("all_acc", "all p²", "all pairs"),
)
ACCURACY_NAMES = tuple(name for name, _, _ in ACCURACIES)
DEFAULT_POINTS = 40  # default curve: min(N, 40) + 1 evenly spaced fractions (every neuron count when N ≤ 40)
EVAL_BYTES = 256 * 2**20  # activations held at once by the batched evaluation (masks are chunked above it)

# How many times the batched curve program was traced / called (tests count them).
_COUNTS = {"traces": 0, "calls": 0}


# --------------------------------------------------------------------------- result
@dataclasses.dataclass(eq=False)
class PruneResult:
    """One pruning curve: rows are pruning steps (fractions), columns accuracies.

    `neuron_order[:n_pruned[i]]` are the neurons zeroed at row i; `ipr[k]` is neuron k's
    Fourier IPR before pruning. Accuracy columns are `[n_fractions]` float arrays (NaN where the
    set is empty, e.g. corrupted examples at ξ = 0).
    """

    order: str
    fractions: np.ndarray
    n_pruned: np.ndarray
    neuron_order: np.ndarray
    ipr: np.ndarray
    train_acc: np.ndarray
    train_acc_clean: np.ndarray
    train_acc_corrupted: np.ndarray
    corrupted_true_acc: np.ndarray
    test_acc: np.ndarray
    all_acc: np.ndarray
    member: int = 0
    seed: int = 0
    model_kind: str = ""
    run: Any = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def n_neurons(self) -> int:
        return int(self.ipr.shape[0])

    @property
    def accuracies(self) -> dict[str, np.ndarray]:
        """Accuracy name → `[n_fractions]` array."""
        return {name: getattr(self, name) for name in ACCURACY_NAMES}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in ACCURACY_NAMES:
            raise KeyError(f"{name!r}; allowed: {', '.join(ACCURACY_NAMES)}")
        return getattr(self, name)

    def mask(self, fraction: float) -> np.ndarray:
        """The 0/1 neuron mask `[N]` after pruning `fraction` of the neurons in this order."""
        (k,) = n_pruned_for(np.asarray([check_fraction(fraction)]), self.n_neurons)
        keep = np.ones(self.n_neurons, np.float32)
        keep[self.neuron_order[:k]] = 0.0
        return keep

    def table(self, digits: int = 3) -> str:
        """The curve as aligned text columns, one row per fraction."""
        heads = ["fraction", "pruned"] + [short for _, short, _ in ACCURACIES]
        rows = []
        for i in range(len(self.fractions)):
            cells = [f"{self.fractions[i]:.3f}", f"{int(self.n_pruned[i])}/{self.n_neurons}"]
            cells += [_fmt(getattr(self, name)[i], digits) for name in ACCURACY_NAMES]
            rows.append(cells)
        widths = [max(len(h), *(len(r[j]) for r in rows)) for j, h in enumerate(heads)]
        lines = ["  ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True))]
        lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        return "\n".join(lines)

    def describe(self) -> str:
        """A one-line header for the table."""
        return (
            f"prune {self.model_kind} member {self.member}: {ORDER_LABELS[self.order]} "
            f"({self.n_neurons} first-layer neurons, mean IPR {float(np.mean(self.ipr)):.3f})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: plain lists of numbers; a NaN accuracy (empty set) becomes None."""
        out: dict[str, Any] = {
            "order": self.order,
            "member": self.member,
            "seed": self.seed,
            "model_kind": self.model_kind,
            "n_neurons": self.n_neurons,
            "fractions": self.fractions.tolist(),
            "n_pruned": self.n_pruned.tolist(),
            "neuron_order": self.neuron_order.tolist(),
            "ipr": self.ipr.tolist(),
        }
        out |= {name: [None if np.isnan(a) else float(a) for a in arr] for name, arr in self.accuracies.items()}
        return out

    def pruned_run(self, fraction: float):
        """A `Run` of one member whose final state is this member's, pruned at `fraction`.

        Its config and history are the source member's (the history is the training that led to
        the unpruned network); `status["pruned"]` records order, fraction and neurons.
        """
        if self.run is None:
            raise ValueError("this PruneResult holds no run; use grok.prune.save_pruned(run, result, fraction, dir)")
        return pruned_run(self.run, self, fraction)

    def save_pruned(self, fraction: float, out_dir: str | Path) -> Path:
        """Write `pruned_run(fraction)` as a run directory (read it back with `grok.load_run`)."""
        return self.pruned_run(fraction).save(out_dir)


def _fmt(x: float, digits: int) -> str:
    return "—" if not np.isfinite(x) else f"{x:.{digits}f}"


# --------------------------------------------------------------------------- input checks
def check_fraction(f: Any, name: str = "fractions") -> float:
    """`f` as a float in [0, 1], or a ConfigError naming `name`."""
    ok = isinstance(f, (int, float, np.integer, np.floating)) and not isinstance(f, bool)
    if not ok or not math.isfinite(float(f)) or not 0.0 <= float(f) <= 1.0:
        raise ConfigError(name, f, "numbers in [0, 1] (the fraction of first-layer neurons to prune)")
    return float(f)


def check_fractions(fractions: Any, n_neurons: int) -> np.ndarray:
    """`fractions` as a float64 array, each in [0, 1]; None → min(N, 40) + 1 evenly spaced points."""
    if fractions is None:
        return np.linspace(0.0, 1.0, min(n_neurons, DEFAULT_POINTS) + 1)
    if isinstance(fractions, (int, float, np.integer, np.floating)):
        fractions = [fractions]
    try:
        values = list(np.asarray(fractions, dtype=object).ravel())
    except Exception as err:  # anything unreadable is bad input
        raise ConfigError("fractions", fractions, "a list of numbers in [0, 1]") from err
    if not values:
        raise ConfigError("fractions", fractions, "a non-empty list of numbers in [0, 1]")
    return np.asarray([check_fraction(f) for f in values], np.float64)


def n_pruned_for(fractions: np.ndarray, n_neurons: int) -> np.ndarray:
    """Neurons pruned at each fraction: round(f·N), halves rounded up (float slack 1e-9)."""
    return np.clip(np.floor(fractions * n_neurons + 0.5 + 1e-9), 0, n_neurons).astype(np.int64)


def check_prunable(cfg: Config) -> None:
    """A ConfigError unless `cfg`'s model is registered as prunable (`neurons=` and `prune=`, e.g. the
    (quadratic) MLP) on token inputs: the nets with IPR-ranked neurons [D]."""
    kind = cfg.model.kind
    if not MODELS.get(kind, "model.kind").prunable:
        prunable = [name for name in MODELS.names() if MODELS.get(name).prunable]
        raise ConfigError(
            "model.kind",
            kind,
            f"a model registered as prunable ({', '.join(prunable)}) on the modular task: pruning ranks "
            "first-hidden-layer neurons by their Fourier IPR over the p tokens [D]",
        )
    if cfg.task.kind != "modular":  # a permutation task has tokens too, but no order to take a Fourier transform over
        raise ConfigError(
            "task.kind",
            cfg.task.kind,
            f"modular: a {kind}'s neurons have a Fourier IPR only over the residues mod p [D]",
        )


def neuron_order(ipr: np.ndarray, order: str, seed: int = 0) -> np.ndarray:
    """The pruning order of neurons [N] (ties by neuron index)."""
    if order == "low":
        return np.argsort(ipr, kind="stable")
    if order == "high":
        return np.argsort(-ipr, kind="stable")
    if order == "random":
        return np.random.default_rng(seed).permutation(ipr.shape[0])
    raise ConfigError("order", order, "one of " + ", ".join(ORDERS))


# --------------------------------------------------------------------------- the batched curve
def _eval_layout(data) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Inputs to run once and, per set, the rows of their outputs.

    Modular train and test pairs are a partition of `x_all`, so one pass over `x_all` covers all
    three sets; otherwise (never for the tasks pruning accepts) the sets are concatenated.
    """
    x_all, x_train, x_test = (np.asarray(a) for a in (data.x_all, data.x_train, data.x_test))
    if x_all.ndim == 2 and x_all.shape[1] == 2 and np.issubdtype(x_all.dtype, np.integer):
        p = int(max(x_all.max(), x_train.max(), x_test.max())) + 1
        pos = np.full(p * p, -1, np.int64)
        pos[x_all[:, 0] * p + x_all[:, 1]] = np.arange(len(x_all))
        idx_train, idx_test = pos[x_train[:, 0] * p + x_train[:, 1]], pos[x_test[:, 0] * p + x_test[:, 1]]
        if (idx_train >= 0).all() and (idx_test >= 0).all():
            return x_all, {"train": idx_train, "test": idx_test, "all": np.arange(len(x_all))}
    x = np.concatenate([x_train, x_test, x_all])
    a, b = len(x_train), len(x_train) + len(x_test)
    return x, {"train": np.arange(a), "test": np.arange(a, b), "all": np.arange(b, len(x))}


def _count(hit, where):
    """Hits inside `where`, per mask row → int32 [F]."""
    return jnp.sum(hit & where[None, :], axis=-1, dtype=jnp.int32)


@functools.partial(jax.jit, static_argnames=("graphdef", "model_cfg", "batch"))
def _curve(graphdef, model_cfg, batch: int | None, params, rest, scale, masks, x, sets):
    """Hit counts for every mask row: one program, the masked forward vmapped over the masks.

    Counts, not means, so that the host divides in float64 and an accuracy here equals
    `np.mean(hits)` computed any other way, bit for bit.
    """
    _COUNTS["traces"] += 1
    from grok.engine import Forward

    fwd = Forward(graphdef)

    def predict(mask):
        out, _ = fwd.apply(MODELS.get(model_cfg.kind).prune(params, mask, model_cfg), rest, x, False, scale)
        return jnp.argmax(out, axis=-1).astype(jnp.int32)

    pred = jax.vmap(predict)(masks) if batch is None else jax.lax.map(predict, masks, batch_size=batch)
    p_train, p_test, p_all = pred[:, sets["idx_train"]], pred[:, sets["idx_test"]], pred[:, sets["idx_all"]]
    hit_noisy = p_train == sets["y_train"][None, :]
    hit_true = p_train == sets["y_train_true"][None, :]
    corrupted = sets["corrupted"]
    everyone = jnp.ones_like(corrupted)
    return {
        "train_acc": _count(hit_noisy, everyone),
        "train_acc_clean": _count(hit_noisy, ~corrupted),
        "train_acc_corrupted": _count(hit_noisy, corrupted),
        "corrupted_true_acc": _count(hit_true, corrupted),
        "test_acc": _count(p_test == sets["y_test"][None, :], jnp.ones_like(sets["y_test"], jnp.bool_)),
        "all_acc": _count(p_all == sets["y_all"][None, :], jnp.ones_like(sets["y_all"], jnp.bool_)),
    }


def evaluate_masks(run, masks: np.ndarray, member: int = 0, *, model: nnx.Module | None = None) -> dict:
    """Accuracies of member `member` with each row of `masks` ([F, N], 0 = pruned) applied: one compiled call.

    Returns accuracy name → float64 `[F]` (NaN for an empty set). `model`: the member's network,
    if already built (`run.model(member)`).
    """
    cfg = run.member_config(member)
    check_prunable(cfg)
    model = run.model(member) if model is None else model
    data = run.dataset(member)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    masks = np.asarray(masks, np.float32)
    n = int(MODELS.get(cfg.model.kind).neurons(model)[0].shape[0])
    if masks.ndim != 2 or masks.shape[1] != n:
        raise ValueError(f"masks must be [n_masks, {n}], got {masks.shape}")
    x, idx = _eval_layout(data)
    n_out = max(int(cfg.spec.n_classes), 1)
    per_mask = 8 * len(x) * (activation_width(cfg) + n_out)  # activations and logits, with slack
    batch = max(1, EVAL_BYTES // per_mask)
    sets = {
        "idx_train": jnp.asarray(idx["train"]),
        "idx_test": jnp.asarray(idx["test"]),
        "idx_all": jnp.asarray(idx["all"]),
        "y_train": jnp.asarray(data.y_train),
        "y_train_true": jnp.asarray(data.y_train_true),
        "corrupted": jnp.asarray(data.corrupted, jnp.bool_),
        "y_test": jnp.asarray(data.y_test),
        "y_all": jnp.asarray(data.y_all),
    }
    _COUNTS["calls"] += 1
    out = _curve(
        graphdef,
        cfg.model,
        None if batch >= len(masks) else int(batch),
        params,
        rest,
        jnp.asarray(cfg.loss.logit_scale, jnp.float32),
        jnp.asarray(masks, model.first.kernel.dtype),
        jnp.asarray(x),
        sets,
    )
    corrupted = np.asarray(data.corrupted, bool)
    sizes = {
        "train_acc": corrupted.size,
        "train_acc_clean": int((~corrupted).sum()),
        "train_acc_corrupted": int(corrupted.sum()),
        "corrupted_true_acc": int(corrupted.sum()),
        "test_acc": len(idx["test"]),
        "all_acc": len(idx["all"]),
    }
    return {
        name: np.asarray(out[name], np.float64) / size if size else np.full(len(masks), np.nan)
        for name, size in sizes.items()
    }


# --------------------------------------------------------------------------- the public call
@jax.jit
def _neuron_ipr(u, v, w):
    from probes.neurons import neuron_ipr

    return neuron_ipr(u, v, w)


def neuron_iprs(run, member: int = 0, *, model: nnx.Module | None = None) -> np.ndarray:
    """Fourier IPR of each first-hidden-layer neuron of member `member` [D] → float64 [N].

    `probes.neurons.neuron_ipr` of the model's registered `neurons` (`grok.models.neuron_weights`):
    the mean over U row, V row and readout column (U and V only for a deeper MLP). `model`: the
    member's network, if already built.
    """
    check_prunable(run.member_config(member))
    u, v, w = MODELS.get(run.config.model.kind, "model.kind").neurons(run.model(member) if model is None else model)
    return np.asarray(_neuron_ipr(u, v, w), np.float64)


def prune(run, order: str = "low", fractions: Sequence[float] | None = None, member: int = 0, seed: int = 0):
    """Prune a trained run's first-layer neurons by IPR rank and measure accuracy after each step [D].

    `order`: "low" (lowest IPR first), "high" (highest first) or "random" (seeded by `seed`).
    `fractions`: fractions of the N first-layer neurons to prune, each in [0, 1]; row i zeroes
    the first round(fractions[i]·N) neurons of the order (so the pruning is cumulative). Default:
    min(N, 40) + 1 evenly spaced fractions from 0 to 1. Returns a `PruneResult`.

    >>> res = grok.prune(run, order="low"); print(res.table())
    """
    if order not in ORDERS:
        raise ConfigError("order", order, "one of " + ", ".join(ORDERS))
    if isinstance(member, bool) or not isinstance(member, (int, np.integer)) or not 0 <= member < run.n_members:
        raise ConfigError("member", member, f"an integer in [0, {run.n_members - 1}]")
    member = int(member)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError("seed", seed, "a non-negative integer (the random order's seed)")
    cfg = run.member_config(member)
    check_prunable(cfg)
    if fractions is not None:
        check_fractions(fractions, 1)  # bad input is refused before the model is built
    model = run.model(member)
    ipr = neuron_iprs(run, member, model=model)
    n = ipr.shape[0]  # the model's own neuron view says how many there are
    fracs = check_fractions(fractions, n)
    ranking = neuron_order(ipr, order, seed)
    counts = n_pruned_for(fracs, n)
    masks = np.ones((len(fracs), n), np.float32)
    for i, k in enumerate(counts):
        masks[i, ranking[:k]] = 0.0
    acc = evaluate_masks(run, masks, member, model=model)
    return PruneResult(
        order=order,
        fractions=fracs,
        n_pruned=counts,
        neuron_order=ranking.astype(np.int64),
        ipr=ipr,
        member=member,
        seed=int(seed),
        model_kind=cfg.model.kind,
        run=run,
        **acc,
    )


def prune_all(run, fractions: Sequence[float] | None = None, member: int = 0, seed: int = 0) -> dict:
    """`prune` in every order → {"low": …, "high": …, "random": …} (the program compiles once)."""
    return {order: prune(run, order, fractions, member, seed) for order in ORDERS}


# --------------------------------------------------------------------------- pruned runs
def pruned_run(run, result: PruneResult, fraction: float):
    """A one-member `Run`: `result.member` of `run` with the neurons of `result` pruned at `fraction`."""
    from grok.run import flatten_state

    fraction = check_fraction(fraction, "fraction")
    i = result.member
    cfg = run.member_config(i)
    mask = result.mask(fraction)
    _, params, _ = nnx.split(run.model(i), nnx.Param, ...)
    masked = MODELS.get(cfg.model.kind).prune(params, jnp.asarray(mask), cfg.model)
    one = run.select([i])
    one.state |= {f"params/{name}": np.asarray(arr)[None] for name, arr in flatten_state(masked).items()}
    status = copy.deepcopy(one.status)
    row = int(np.argmin(np.abs(result.fractions - fraction)))
    status["pruned"] = {
        "order": result.order,
        "seed": result.seed,
        "source_member": i,
        "fraction": fraction,
        "n_pruned": int(n_pruned_for(np.asarray([fraction]), result.n_neurons)[0]),
        "neurons": [int(k) for k in np.nonzero(mask == 0)[0]],
        "note": "history is the unpruned member's training; accuracies below are after pruning",
        "accuracy": (
            {name: float(arr[row]) for name, arr in result.accuracies.items()}
            if np.isclose(result.fractions[row], fraction)
            else None
        ),
    }
    return dataclasses.replace(one, status=status)


def save_pruned(run, result: PruneResult, fraction: float, out_dir: str | Path) -> Path:
    """Write `pruned_run(run, result, fraction)` as a run directory; `grok.load_run` reads it."""
    return pruned_run(run, result, fraction).save(out_dir)


def model_run(cfg: Config, model: nnx.Module, *, status: Mapping[str, Any] | None = None):
    """A one-member `Run` holding `model`'s weights under `cfg` (e.g. the analytic solution), so it can be pruned.

    `cfg` must build a network of the same shapes (e.g. quadratic_mlp, task.p = p, widths = (N,)).
    The history is empty (one interval of NaN accuracies at step 0).
    """
    from grok.run import Run, state_arrays

    _, params, rest = nnx.split(model, nnx.Param, ...)
    state = {k: v[None] for k, v in state_arrays(params, rest).items()}
    nan = np.full((1, 1), np.nan, np.float32)
    history = {"step": np.zeros(1, np.int64)} | {name: nan for name in ("train_loss", "test_loss", *ACCURACY_NAMES)}
    history.pop("all_acc")
    info = {"state": "finished", "diverged": [False], "diverged_step": [-1], "source": "model_run"}
    run = Run(config=cfg, members=[{"seed": cfg.seed}], history=history, state=state, status=info | dict(status or {}))
    run.model(0)  # fail now, clearly, if the shapes do not match
    return run
