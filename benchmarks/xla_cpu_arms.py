"""One program compiled with each of XLA:CPU's two matrix-product libraries (not a benchmark itself).

jaxlib 0.10–0.11 hand a CPU program's matrix products and some reductions to YNNPACK; with
`xla_cpu_experimental_ynn_fusion_type` empty, Eigen computes them (`grok/cpu_matmul.py`). The
**ynnpack** arm sets XLA's own default list (`INDIVIDUAL_DOT, REDUCE`, which compiles to the same
program as no option at all on jaxlib 0.10.2), so neither arm depends on the process's `$XLA_FLAGS`.
"""

from __future__ import annotations

import jax

from grok import cpu_matmul

OPTION = "xla_cpu_experimental_ynn_fusion_type"
YNN_DEFAULT = "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"
ARMS = {"eigen": {OPTION: ""}, "ynnpack": {OPTION: YNN_DEFAULT}}


def available() -> bool:
    """Whether the two arms can be compiled here: a CPU backend and a jaxlib known to have the option."""
    return jax.default_backend() == "cpu" and cpu_matmul.jaxlib_version().startswith(cpu_matmul.KNOWN_JAXLIBS)


def compiled_arms(fn, args) -> dict:
    """`fn` (jitted) lowered at `args` and compiled once per arm; where the arms are not `available()`,
    once as it is (key `default`)."""
    lowered = fn.lower(*args)
    if not available():
        return {"default": lowered.compile()}
    return {arm: lowered.compile(compiler_options=options) for arm, options in ARMS.items()}
