"""How big a run is, sized in one pass, and the pre-flight checks that refuse what would not fit.

`member_size(cfg)` shapes one member abstractly (nothing is allocated) and returns every byte
count the checks and the engine use: parameters, optimizer state, one snapshot and how many
the schedule keeps, the activations per example, the per-step working set (the engine's CPU
member blocks) and the estimated device memory while training. `check_run` refuses a group whose
members, or whose snapshots on disk, cannot fit, before anything compiles.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

from grok.config import Config
from grok.errors import ConfigError
from grok.lazy_import import nnx
from grok.member import abstract_model, registration_tokens
from grok.optim import optimizer_from_config
from grok.probing.evaluate import slow_chunk
from grok.registry import MODELS, PROBES
from grok.schedule import schedule
from grok.snapshots import state_leaves

MEMORY_FRACTION = 0.9  # of the device (or RAM) a batch's estimate may use


@dataclass(frozen=True)
class MemberSize:
    """One member's sizes in bytes (and counts), from abstract shapes."""

    params: int  # trainable parameters
    optimizer: int  # the optimizer state of the whole transform chain
    snapshot: int  # one snapshot: parameters and the rest of the model state
    n_snapshots: int  # snapshots the schedule keeps
    snapshot_slots: int  # the chunk's snapshot buffer on the device (its slots and a spare)
    activations: int  # values one example holds in the model (`activation_width`)
    working_set: int  # bytes touched per training step (sizes the engine's CPU member blocks)
    device: int  # estimated device memory while training, snapshots included

    def disk(self, n_members: int) -> int:
        """Bytes the snapshots of `n_members` members take in a run directory (uncompressed .npz)."""
        return self.n_snapshots * n_members * self.snapshot

    def plan(self, n_members: int) -> str:
        """One line: how many snapshots, of what size, and their disk size."""
        return (
            f"snapshots: {self.n_snapshots} steps x {n_members} member(s) x {self.snapshot / 2**20:.2f} MiB = "
            f"{self.disk(n_members) / 2**20:.1f} MiB on disk"
        )


def member_size(cfg: Config) -> MemberSize:
    """Every size of one member of `cfg` (cached on the config and its registrations).

    >>> grok.sizing.member_size(grok.preset("prieto-perpgrad-small")).device  # bytes
    """
    return _member_size(cfg, registration_tokens(cfg))


@functools.lru_cache(maxsize=128)
def _member_size(cfg: Config, tokens: tuple[int, ...]) -> MemberSize:
    del tokens  # part of the cache key only
    _, params, rest = nnx.split(abstract_model(cfg), nnx.Param, ...)
    param_bytes = _bytes(jax.tree.leaves(params))
    optimizer = _bytes(jax.tree.leaves(jax.eval_shape(optimizer_from_config(cfg.optim).init, params)))
    snapshot = _bytes(state_leaves(params, rest).values())
    n_snapshots, slots = 0, 0
    if cfg.train.snapshots:
        sched = schedule(cfg.train, slow_chunk(cfg))
        n_snapshots, slots = len(sched.snapshots), sched.slots_per_chunk + 1
    activations = activation_width(cfg)
    device = _training_bytes(cfg, param_bytes, optimizer, activations) + (slots + n_snapshots) * snapshot
    return MemberSize(
        params=param_bytes,
        optimizer=optimizer,
        snapshot=snapshot,
        n_snapshots=n_snapshots,
        snapshot_slots=slots,
        activations=activations,
        working_set=_working_set(cfg, param_bytes, activations),
        device=int(device),
    )


def _bytes(leaves) -> int:
    return int(sum(math.prod(leaf.shape) * np.dtype(leaf.dtype).itemsize for leaf in leaves))


def activation_width(cfg: Config) -> int:
    """Values one example (one row of a batch) holds in a member's model, outputs excluded.

    A model registered with `activations=` says it (the transformer counts its three positions:
    embeddings, q, k, v, residual, MLP and attention scores); otherwise 3 values per hidden unit of
    `model.widths` (pre-activation, dropout or BatchNorm output, activation).
    """
    own = MODELS.get(cfg.model.kind, "model.kind").activations
    return own(cfg) if own is not None else 3 * sum(cfg.model.widths)


def _working_set(cfg: Config, param_bytes: int, activations: int) -> int:
    """Rough bytes one member touches per step: parameters ×4 (weights, gradients, two moments) +
    3 × (hidden units + outputs) per row of a batch."""
    spec = cfg.spec
    per_row = activations + 3 * max(spec.n_classes, 1)
    n_rows = cfg.optim.batch_size or spec.n_train
    return 4 * param_bytes + np.dtype(cfg.train.param_dtype).itemsize * n_rows * per_row


def _training_bytes(cfg: Config, param_bytes: int, optimizer: int, hidden: int) -> int:
    """A rough upper estimate of a member's device memory while training, snapshots excluded.

    Parameters ×(1 + gradients/updates/temporaries, + θ₀ when a probe keeps it) and the optimizer
    state, the data set, activations of a training step and of an evaluation pass, the logged
    history, and each chosen probe's own temporaries (`memory=` at registration, e.g. the NTK's
    Jacobians).
    """
    spec = cfg.spec
    item = np.dtype(cfg.train.param_dtype).itemsize
    loss_item = max(item, np.dtype(cfg.loss.dtype).itemsize)
    probes = [PROBES.get(name, "train.probes") for name in cfg.train.probes]
    keeps_params0 = any(p.initial_params for p in probes)
    total = param_bytes * (1 + 4 + (1 if keeps_params0 else 0)) + optimizer
    if spec.n_tokens:  # token pairs and int labels: x_all, y_all and the train/test copies
        total += spec.n_all * 5 * 4 * 2
    else:
        total += (spec.n_train + spec.n_test + spec.n_all) * (spec.input_dim * item + 8)
    n_out = max(spec.n_classes, 1)
    batch = cfg.optim.batch_size or spec.n_train
    total += batch * (hidden * item * 2 + n_out * loss_item * 3)  # a training step, forward and backward
    total += (spec.n_train + spec.n_test) * (hidden * item + n_out * loss_item * 2)  # evaluation
    widest = max(cfg.model.widths) if cfg.model.kind != "transformer" else cfg.model.d_mlp
    total += cfg.n_intervals * (32 + widest + cfg.train.ipr_histogram_bins) * 8
    total += sum(p.memory(cfg, param_bytes) for p in probes if p.memory is not None)
    return int(total)


def device_memory() -> tuple[int, str, int]:
    """(bytes available to one batch, a description, devices sharing the members).

    CPU: total RAM (forced host devices share it). Accelerators: the smallest per-device limit.
    """
    devices = jax.local_devices()
    if devices[0].platform == "cpu":
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return int(ram), f"{ram / 2**30:.1f} GiB of RAM", 1
    limits = []
    for d in devices:
        try:
            limits.append(int((d.memory_stats() or {}).get("bytes_limit", 0)))
        except Exception:  # noqa: BLE001 - a backend without memory_stats
            limits.append(0)
    if not all(limits):
        return 0, "unknown", len(devices)
    return min(limits), f"{min(limits) / 2**30:.1f} GiB per {devices[0].platform} device", len(devices)


def check_run(cfg: Config, n_members: int, *, out=None, n_devices: int = 1, memory_bytes: int | None = None) -> None:
    """Refuse, before anything compiles, a run whose members (with their snapshots) cannot fit in
    memory, or whose snapshots cannot fit on the disk of `out`."""
    check_group_memory(cfg, n_members, n_devices=n_devices, memory_bytes=memory_bytes)
    if out is None or not cfg.train.snapshots:
        return
    target = Path(out).resolve()
    while not target.exists():
        target = target.parent
    free = shutil.disk_usage(target).free
    disk = member_size(cfg).disk(n_members)
    if disk > free:
        raise ConfigError(
            "train.snapshots",
            cfg.train.snapshots,
            f"snapshots that fit on disk: they need {disk / 2**30:.2f} GiB, {free / 2**30:.2f} GiB free at {target}",
        )


def check_group_memory(cfg: Config, n_members: int, *, n_devices: int = 1, memory_bytes: int | None = None) -> None:
    """Refuse a group of `n_members` members of `cfg` that would not fit (ConfigError), before compiling.

    `n_devices`: devices the members are sharded over; `memory_bytes`: the capacity (default:
    the device's, or the machine's RAM on CPU).
    """
    if memory_bytes is None:
        capacity, where, _ = device_memory()
        if not capacity:
            return
    else:
        capacity, where = int(memory_bytes), f"{memory_bytes / 2**30:.3g} GiB (given)"
    budget = MEMORY_FRACTION * capacity
    per = member_size(cfg).device
    if per > budget:
        raise ConfigError(
            "memory",
            f"{per / 2**30:.3g} GiB per member (estimated)",
            f"a run that fits in {where}: fewer log points (a larger train.log_every), fewer snapshots, "
            "a smaller model or data",
        )
    on_one = -(-n_members // max(1, n_devices))
    if on_one * per > budget:
        raise ConfigError(
            "seeds",
            f"{n_members} members of {per / 2**20:.3g} MiB each (estimated)",
            f"at most {max(1, int(budget // per)) * max(1, n_devices)} members at once in {where}",
        )
