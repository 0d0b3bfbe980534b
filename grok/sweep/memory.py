"""Memory: a member's estimated bytes while training, the devices' capacity, and the check that
refuses a sweep whose batches would not fit (before anything compiles).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

import tasks
from grok import engine
from grok.config import Config
from grok.errors import ConfigError

if TYPE_CHECKING:
    from grok.sweep.spec import Batch, SweepSpec

MEMORY_FRACTION = 0.9  # of the device (or RAM) a batch's estimate may use


def activation_width(cfg: Config) -> int:
    """Hidden units one example (one row of a batch) touches in a member's model, outputs excluded.

    MLP, quadratic MLP, α-net: `sum(model.widths)`. Transformer: its three positions [a, b, =]
    × (6·d_model: embedding, LayerNorm, q, k, v, residual stream; + d_mlp; + 3 attention scores
    per head). The one activation count of both `estimate_member_bytes` (device memory) and
    `member_working_set` (CPU member blocks).
    """
    m = cfg.model
    if m.kind == "transformer":
        # The more careful of the two transformer formulas this function replaces: the sweep
        # estimate's 3·(6·d_model + d_mlp + 3·n_heads), not engine.member_working_set's
        # 3·(4·d_model + d_mlp). It also counts the attention scores and two more d_model-wide
        # tensors per position, is the larger for every config, and is close to what
        # `grok.models` computes per example (17–20·d_model + 3·d_mlp + 6·n_heads values).
        return 3 * (6 * m.d_model + m.d_mlp + 3 * m.n_heads)
    return sum(m.widths)


def member_working_set(cfg: Config, param_bytes: int) -> int:
    """Rough bytes one member touches per step, to size CPU member blocks: parameters ×4 (weights,
    gradients, two moments) + 3 × (hidden units + outputs) per row of a batch.

    `grok.engine.member_working_set`'s formula with `activation_width` (so, for a transformer,
    the sweep estimate's count); `param_bytes` is `grok.engine.param_bytes(cfg)`.
    """
    spec = tasks.spec(cfg.task)
    per_row = activation_width(cfg) + max(spec.n_classes, 1)
    n_rows = cfg.optim.batch_size or spec.n_train
    itemsize = np.dtype(cfg.train.param_dtype).itemsize
    return 4 * param_bytes + 3 * itemsize * n_rows * per_row


def estimate_member_bytes(cfg: Config, param_bytes: int | None = None) -> int:
    """A rough upper estimate of one member's device memory while training (bytes).

    Parameters ×(1 + optimizer slots + gradients/updates/temporaries), the data set, activations
    of a training step and of an evaluation pass, the logged history, and the NTK Jacobians
    when that probe is on. Used to refuse sweeps that cannot fit before anything compiles.
    `param_bytes`: one member's parameter bytes (default: `grok.engine.param_bytes(cfg)`).
    """
    spec = tasks.spec(cfg.task)
    item = np.dtype(cfg.train.param_dtype).itemsize
    loss_item = max(item, np.dtype(cfg.loss.dtype).itemsize)
    params = engine.param_bytes(cfg) if param_bytes is None else param_bytes
    slots = {"adamw": 2, "adam": 2, "sgd": 1}[cfg.optim.kind]
    total = params * (1 + slots + 4 + (1 if cfg.train.probes else 0))
    if spec.kind == "modular":
        data = spec.n_all * 5 * 4 * 2
    else:
        data = (spec.n_train + spec.n_test + spec.n_all) * (spec.input_dim * item + 8)
    total += data
    n_out = max(spec.n_classes, 1)
    m = cfg.model
    # activation values per example: an MLP's hidden unit holds three (pre-activation, dropout or
    # BatchNorm output, activation); the transformer's width already counts each of its tensors
    hidden = activation_width(cfg) * (1 if m.kind == "transformer" else 3)
    batch = cfg.optim.batch_size or spec.n_train
    total += batch * (hidden * item * 2 + n_out * loss_item * 3)  # a training step, forward and backward
    total += (spec.n_train + spec.n_test) * (hidden * item + n_out * loss_item * 2)  # evaluation
    widest = max(m.widths) if m.kind != "transformer" else m.d_mlp
    total += cfg.n_intervals * (32 + widest + cfg.train.ipr_histogram_bins) * 8
    if "ntk" in cfg.train.probes:
        n_probe = 2 * cfg.train.ntk_subset
        total += 3 * n_probe * n_out * params + 3 * n_probe * n_probe * 8
    return int(total)


def device_memory() -> tuple[int, str, int]:
    """(bytes available to one batch, a description, devices sharing the members).

    CPU: total RAM (forced host devices share it). Accelerators: the smallest per-device limit.
    """
    import jax

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


def check_memory(spec: SweepSpec, batches: Sequence[Batch], *, memory_bytes: int | None, shard: bool) -> None:
    """Refuse a sweep whose batches would not fit (ConfigError naming the remedy)."""
    if memory_bytes is None:
        capacity, where, n_dev = device_memory()
        if not capacity:
            return
    else:
        capacity, where, n_dev = int(memory_bytes), f"{memory_bytes / 2**30:.3g} GiB (given)", 1
    budget = MEMORY_FRACTION * capacity
    seen: set[int] = set()
    for batch in batches:
        if batch.group.index in seen:
            continue
        seen.add(batch.group.index)
        per = estimate_member_bytes(batch.group.config)
        devs = n_dev if shard and batch.size >= n_dev else 1
        on_one = -(-batch.size // devs)
        if per > budget:
            what = ", ".join(f"{k}={v}" for k, v in batch.group.static.items()) or "the base config"
            raise ConfigError(
                "sweep memory",
                f"{per / 2**30:.3g} GiB per member ({what})",
                f"a member that fits in {where} (estimated; reduce the model or the data)",
            )
        if on_one * per > budget:
            fit = max(1, int(budget // per)) * devs
            raise ConfigError(
                "max_members_per_program",
                spec.max_members_per_program,
                f"at most {fit}: {batch.size} members of {per / 2**20:.3g} MiB each (estimated) do not fit in {where}",
            )
