"""One BLAS thread while XLA:CPU runs LAPACK kernels.

On a CPU, JAX's `svd`, `eigh` and `solve` call the LAPACK that SciPy bundles (OpenBLAS), and XLA
already spreads a batch of them over its own intra-op threads. OpenBLAS's threads, one per core
by default, then compete with XLA's for the same cores: on 2 cores the `spectral` probe over a
run's snapshots took twice as long with them as with one (`benchmarks/bench_spectral.py`,
docs/architecture.md). Programs with a probe registered `lapack=True` therefore run with OpenBLAS
limited to one thread (`threadpoolctl`), and the user's setting comes back afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import jax


def uses_lapack(probe_names: Sequence[str]) -> bool:
    """Whether any of these registered probes calls LAPACK (registered with `lapack=True`)."""
    from grok.registry import PROBES

    return any(PROBES.get(name, "train.probes").lapack for name in probe_names)


@contextlib.contextmanager
def one_blas_thread(active: bool = True) -> Iterator[None]:
    """Within: OpenBLAS/MKL on one thread, on a CPU backend and when `active`; a no-op otherwise."""
    if not active or jax.default_backend() != "cpu":
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield
