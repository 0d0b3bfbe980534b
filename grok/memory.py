"""Memory: a member's estimated bytes while training (the sweep's and `grok train`'s check) and
its per-step working set (the engine's CPU member blocks), the devices' capacity, and the check
that refuses a group whose batches would not fit (before anything compiles).
"""

from __future__ import annotations

import os

import jax
import numpy as np
from flax import nnx

from grok import member
from grok.config import Config
from grok.errors import ConfigError
from grok.optim import optimizer_from_config
from grok.probing.evaluate import slow_chunk
from grok.registry import MODELS, PROBES
from grok.schedule import schedule
from grok.snapshots import snapshot_bytes

MEMORY_FRACTION = 0.9  # of the device (or RAM) a batch's estimate may use


def activation_width(cfg: Config) -> int:
    """Values one example (one row of a batch) holds in a member's model, outputs excluded.

    A model registered with `activations=` says it (the transformer counts its three positions:
    embeddings, q, k, v, residual, MLP and attention scores); otherwise 3 values per hidden unit of
    `model.widths` (pre-activation, dropout or BatchNorm output, activation). The one activation
    count of both `estimate_member_bytes` (device memory) and `member_working_set` (CPU blocks).
    """
    own = MODELS.get(cfg.model.kind, "model.kind").activations
    return own(cfg) if own is not None else 3 * sum(cfg.model.widths)


def optimizer_bytes(cfg: Config) -> int:
    """Bytes of one member's optimizer state (every transform of the chain), from abstract shapes."""
    params = nnx.state(member.abstract_model(cfg), nnx.Param)
    state = jax.eval_shape(optimizer_from_config(cfg.optim).init, params)
    return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(state))


def member_working_set(cfg: Config, param_bytes: int) -> int:
    """Rough bytes one member touches per step, to size CPU member blocks: parameters ×4 (weights,
    gradients, two moments) + 3 × (hidden units + outputs) per row of a batch.

    `param_bytes` is `grok.member.param_bytes(cfg)`.
    """
    spec = cfg.spec
    per_row = activation_width(cfg) + 3 * max(spec.n_classes, 1)
    n_rows = cfg.optim.batch_size or spec.n_train
    itemsize = np.dtype(cfg.train.param_dtype).itemsize
    return 4 * param_bytes + itemsize * n_rows * per_row


def estimate_member_bytes(cfg: Config, param_bytes: int | None = None) -> int:
    """A rough upper estimate of one member's device memory while training (bytes).

    Parameters ×(1 + optimizer slots + gradients/updates/temporaries), the data set, activations
    of a training step and of an evaluation pass, the logged history, and the NTK Jacobians
    and each chosen probe's own (`memory=` at registration, e.g. the NTK's Jacobians). Used to
    refuse runs and sweeps that cannot fit before anything compiles.
    `param_bytes`: one member's parameter bytes (default: `grok.member.param_bytes(cfg)`).
    """
    spec = cfg.spec
    item = np.dtype(cfg.train.param_dtype).itemsize
    loss_item = max(item, np.dtype(cfg.loss.dtype).itemsize)
    params = member.param_bytes(cfg) if param_bytes is None else param_bytes
    probes = [PROBES.get(name, "train.probes") for name in cfg.train.probes]
    keeps_params0 = any(p.initial_params for p in probes)
    total = params * (1 + 4 + (1 if keeps_params0 else 0)) + optimizer_bytes(cfg)
    if spec.n_tokens:  # token pairs and int labels: x_all, y_all and the train/test copies
        data = spec.n_all * 5 * 4 * 2
    else:
        data = (spec.n_train + spec.n_test + spec.n_all) * (spec.input_dim * item + 8)
    total += data
    n_out = max(spec.n_classes, 1)
    m = cfg.model
    hidden = activation_width(cfg)
    batch = cfg.optim.batch_size or spec.n_train
    total += batch * (hidden * item * 2 + n_out * loss_item * 3)  # a training step, forward and backward
    total += (spec.n_train + spec.n_test) * (hidden * item + n_out * loss_item * 2)  # evaluation
    widest = max(m.widths) if m.kind != "transformer" else m.d_mlp
    total += cfg.n_intervals * (32 + widest + cfg.train.ipr_histogram_bins) * 8
    total += sum(p.memory(cfg, params) for p in probes if p.memory is not None)
    return int(total + snapshot_memory(cfg))


def _schedule(cfg: Config):
    """The run's schedule, as the engine lays it out (`grok.engine.group_schedule`)."""
    return schedule(cfg.train, slow_chunk(cfg))


def snapshot_memory(cfg: Config) -> int:
    """Bytes one member's snapshots hold: a chunk's buffer on the device (its slots and a spare)
    and every snapshot on the host (the same memory on a CPU)."""
    if not cfg.train.snapshots:
        return 0
    sched = _schedule(cfg)
    return (sched.slots_per_chunk + 1 + len(sched.snapshots)) * snapshot_bytes(cfg)


def snapshot_disk_bytes(cfg: Config, n_members: int) -> int:
    """Bytes the snapshots of `n_members` members take in a run directory (uncompressed .npz)."""
    if not cfg.train.snapshots:
        return 0
    return len(_schedule(cfg).snapshots) * n_members * snapshot_bytes(cfg)


def snapshot_plan(cfg: Config, n_members: int) -> str:
    """One line: how many snapshots, of what size, and their disk size."""
    n = len(_schedule(cfg).snapshots)
    each = snapshot_bytes(cfg)
    return (
        f"snapshots: {n} steps x {n_members} member(s) x {each / 2**20:.2f} MiB = "
        f"{snapshot_disk_bytes(cfg, n_members) / 2**20:.1f} MiB on disk"
    )


def check_run(cfg: Config, n_members: int, *, out=None, n_devices: int = 1, memory_bytes: int | None = None) -> None:
    """Refuse, before anything compiles, a run whose members (with their snapshots) cannot fit in
    memory, or whose snapshots cannot fit on the disk of `out`."""
    check_group_memory(cfg, n_members, n_devices=n_devices, memory_bytes=memory_bytes)
    if out is not None and cfg.train.snapshots:
        import shutil
        from pathlib import Path

        target = Path(out).resolve()
        while not target.exists():
            target = target.parent
        free = shutil.disk_usage(target).free
        disk = snapshot_disk_bytes(cfg, n_members)
        if disk > free:
            raise ConfigError(
                "train.snapshots",
                cfg.train.snapshots,
                f"snapshots that fit on disk: they need {disk / 2**30:.2f} GiB, "
                f"{free / 2**30:.2f} GiB free at {target}",
            )


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
    per = estimate_member_bytes(cfg)
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
