"""One JAX CPU device per core, so a group's members are trained on every core at once.

XLA runs the small matrix products of one member on one core; members sharded over
several host devices run side by side (docs/architecture.md: members are sharded over all
devices). JAX starts with a single CPU device, and the count can only be set before
its first computation, so `import grok` sets it then. Accelerator devices are not
affected: on a GPU machine `jax.devices()` still lists the GPUs.

`$GROK_CPU_DEVICES` chooses the count (1 keeps JAX's single CPU device). An explicit
`--xla_force_host_platform_device_count` in `$XLA_FLAGS` or an earlier
`jax.config.update("jax_num_cpu_devices", n)` is left alone.
"""

from __future__ import annotations

import os

import jax


def usable_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def use_cpu_cores() -> int | None:
    """Ask JAX for one CPU device per usable core; returns the count set, or None when left alone."""
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return None
    if jax.config.jax_num_cpu_devices != -1:
        return None
    wanted = os.environ.get("GROK_CPU_DEVICES")
    try:
        count = int(wanted) if wanted else usable_cores()
    except ValueError:
        raise ValueError(f"GROK_CPU_DEVICES={wanted!r}: expected a whole number of CPU devices, e.g. 1 or 2") from None
    if count < 1:
        raise ValueError(f"GROK_CPU_DEVICES={wanted!r}: expected at least 1")
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:  # JAX has already computed something: its devices are fixed
        return None
    return count
