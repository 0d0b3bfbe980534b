"""The `spectral` probe [MM, CSN, RV], registered like a user's (docs/formulas.md §5.6).

Every log interval, for every weight matrix (a parameter leaf with two or more axes, named as the
`weight_norm/<layer>` metrics of `collapse`): `spectral_norm/<layer>`, `frobenius_norm/<layer>`,
`stable_rank/<layer>`, `effective_rank/<layer>`, and the HTSR power-law fit of the ESD λ = σ²:
`alpha/<layer>`, `alpha_xmin/<layer>`, `alpha_ks/<layer>` (KS distance), `alpha_tail/<layer>`
(eigenvalues in the tail) and `alpha_status/<layer>` (`probes.spectral.FIT_STATUS`: why α is NaN).
With `train.spectral_esd_bins` > 0 also `esd_hist/<layer>` [bins] and `esd_range/<layer>` [2]
(log10 λ). The fit's x_min rule is `train.spectral_ks`; layers with fewer than
`train.spectral_min_evals` eigenvalues above 1e-5 get α = NaN (status 1). It calls LAPACK's SVD,
so on a CPU its groups run on one device. `grok.probe_history(run, ["spectral"])` computes the same
on a run's snapshots.
"""

from __future__ import annotations

import functools
import math

import jax

from grok.errors import ConfigError
from grok.lazy_import import nnx
from grok.registry import ProbeInputs, register_probe
from probes import spectral
from probes.collapse import leaf_name

Array = jax.Array


def weight_matrices(params) -> dict[str, Array]:
    """The parameter leaves with two or more axes, by layer name (as `weight_norm/<layer>`)."""
    flat, _ = jax.tree_util.tree_flatten_with_path(params)
    return {leaf_name(path): leaf for path, leaf in flat if len(leaf.shape) >= 2}


def matrix_shapes(cfg) -> dict[str, tuple[int, int]]:
    """Each weight matrix of a config's model as the [N, M] the probe reads (nothing is allocated)."""
    from grok.member import registration_tokens

    return dict(_matrix_shapes(cfg, registration_tokens(cfg)))


@functools.lru_cache(maxsize=64)
def _matrix_shapes(cfg, tokens: tuple[int, ...]) -> tuple[tuple[str, tuple[int, int]], ...]:
    from grok.member import abstract_model

    del tokens  # part of the cache key: a model registered again may change its shapes
    params = nnx.state(abstract_model(cfg), nnx.Param)
    return tuple((name, (math.prod(w.shape[:-1]), w.shape[-1])) for name, w in weight_matrices(params).items())


def spectral_probe(x: ProbeInputs) -> dict[str, Array]:
    """Norms, stable and effective rank and the HTSR α fit of every weight matrix."""
    train = x.config.train
    out: dict[str, Array] = {}
    for name, w in weight_matrices(x.params).items():
        summary = spectral.spectral_summary(
            w, min_evals=train.spectral_min_evals, ks=train.spectral_ks, esd_bins=train.spectral_esd_bins
        )
        out |= {f"{metric}/{name}": value for metric, value in summary.items()}
    return out


def _requires(cfg) -> str | None:
    shapes = matrix_shapes(cfg)
    if not shapes:
        kind = cfg.model.kind
        return f"needs a model with weight matrices (parameters of two or more axes); model.kind={kind!r} has none"
    n_min = cfg.train.spectral_min_evals
    if all(min(shape) < n_min for shape in shapes.values()):
        sizes = ", ".join(f"{name} {n}x{m}" for name, (n, m) in shapes.items())
        raise ConfigError(
            "train.spectral_min_evals",
            n_min,
            f"at most the eigenvalue count min(N, M) of some weight matrix to fit α (this model has {sizes})",
        )
    return None


def _memory(cfg, param_bytes: int) -> int:
    """The fit's [n, n] candidate × tail arrays (a few of them) for the largest layer, in the
    parameters' dtype or float32, whichever is wider."""
    n = max((min(shape) for shape in matrix_shapes(cfg).values()), default=0)
    return 6 * n * n * max(param_bytes, 4)


register_probe(
    "spectral",
    spectral_probe,
    requires=_requires,
    fields=("train.spectral_min_evals", "train.spectral_ks", "train.spectral_esd_bins"),
    memory=_memory,
    lapack=True,
)
