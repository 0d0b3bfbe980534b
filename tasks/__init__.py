"""Task data: modular arithmetic with label corruption [D], polynomial regression [K],
sparse parity [P] (DESIGN.md §2).

`spec(task_cfg)` gives static sizes; `build(task_cfg, key, corrupt_fraction, dtype)` gives a
`Dataset` pytree and is jittable (config static) and vmappable over `key` and ξ.
"""

from grok.config import MODULAR_OPS
from tasks.dataset import COUNT_TOLERANCE, Dataset, TaskSpec, build, corrupt_labels, n_corrupted, spec, subkeys
from tasks.modular import all_pairs, build_modular, inverse_table, modular_label
from tasks.parity import build_parity, parity_label, unique_bit_rows
from tasks.polynomial import build_polynomial, hermite_e, polynomial_target, project

__all__ = [
    "COUNT_TOLERANCE",
    "MODULAR_OPS",
    "Dataset",
    "TaskSpec",
    "all_pairs",
    "build",
    "build_modular",
    "build_parity",
    "build_polynomial",
    "corrupt_labels",
    "hermite_e",
    "inverse_table",
    "modular_label",
    "n_corrupted",
    "parity_label",
    "polynomial_target",
    "project",
    "spec",
    "subkeys",
    "unique_bit_rows",
]
