"""`GROK_CPU_MATMUL=eigen`: XLA:CPU multiplies matrices with Eigen instead of YNNPACK.

jaxlib 0.10 and 0.11 hand a CPU program's matrix products (and some reductions) to YNNPACK. With
`--xla_cpu_experimental_ynn_fusion_type=` in `$XLA_FLAGS`, Eigen computes them. Which is faster
depends on the machine and the model: on a 2-core Intel Xeon (AVX-512; `python -m benchmarks
bench_cpu_matmul`, the two compiled side by side in one process) Eigen took [P]'s step 11–20%
faster and a 2048² matmul 7–15%, [N]'s the same, and [D]'s paper-size and tiny members 0–6% slower.
So XLA's default stays, and `GROK_CPU_MATMUL=eigen` (set before `import grok`) asks for Eigen;
the benchmark says which is faster on a given machine.

XLA reads its flags once, at its first compilation, and stops the process on a flag it does not
know, so the flag is set only for the jaxlib releases known to have it and only while nothing has
been compiled (otherwise a GrokWarning says it was not). Every program of the process then
compiles with Eigen, so the lab's bit-for-bit guarantees (a member alone equals the member in
company, a resumed run an uninterrupted one, a probe after the fact the probe during training)
hold; Eigen and YNNPACK round differently, so results differ from the default's at that level.
"""

from __future__ import annotations

import os
import warnings

FLAG = "--xla_cpu_experimental_ynn_fusion_type="
# jaxlib releases whose XLA has the flag (checked for 0.10.2 and 0.11.2; an unknown flag aborts the process)
KNOWN_JAXLIBS = ("0.10.", "0.11.")
CHOICES = ("xla", "eigen")


def jaxlib_version() -> str:
    """The installed jaxlib's version string."""
    import jaxlib

    return getattr(jaxlib, "__version__", "") or jaxlib.version.__version__


def _compiled_anything() -> bool:
    from jax._src import xla_bridge

    return xla_bridge.backends_are_initialized()


def use_chosen_matmul() -> str:
    """Apply `$GROK_CPU_MATMUL` (`xla`, the default, or `eigen`); returns what this process's XLA_FLAGS ask for."""
    wanted = os.environ.get("GROK_CPU_MATMUL", "") or "xla"
    if wanted not in CHOICES:
        raise ValueError(f"GROK_CPU_MATMUL={wanted!r}: expected one of {', '.join(CHOICES)}")
    flags = os.environ.get("XLA_FLAGS", "")
    if wanted == "xla" or FLAG.strip("-=") in flags:  # a flag of the user's own is left alone
        return in_use()
    if not jaxlib_version().startswith(KNOWN_JAXLIBS):
        reason = f"jaxlib {jaxlib_version()} is not one known to have {FLAG!r}"
    elif _compiled_anything():
        reason = "JAX had compiled a program before `import grok`; set it before JAX starts"
    else:
        os.environ["XLA_FLAGS"] = f"{flags} {FLAG}".strip()
        return in_use()
    from grok.errors import GrokWarning

    warnings.warn(f"GROK_CPU_MATMUL=eigen not applied: {reason}", GrokWarning, stacklevel=2)
    return in_use()


def in_use() -> str:
    """What `$XLA_FLAGS` asks of XLA:CPU's products now: `eigen` (YNNPACK's fusions off), `xla` (XLA's
    default) or the flag's own value."""
    for token in os.environ.get("XLA_FLAGS", "").split():
        if token.startswith(FLAG):
            return token[len(FLAG) :] or "eigen"
    return "xla"
