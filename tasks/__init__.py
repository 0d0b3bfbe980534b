"""Task data: modular arithmetic with label corruption [D], polynomial regression [K],
sparse parity [P], binary operations in S_n [Power], the linear teacher of reduced-rank regression
(docs/formulas.md §2).

Pure JAX, no grok import: each task has a `*_spec(task_cfg)` giving static sizes and a
`build_*(task_cfg, key, corrupt_fraction, dtype)` giving a `Dataset` pytree (jittable with the
config static, vmappable over `key` and ξ). grok registers them as task kinds
(`grok.task_kinds`) and finds them by `task.kind`.
"""

from tasks.dataset import (
    COUNT_TOLERANCE_EPS,
    Dataset,
    TaskSpec,
    corrupt_labels,
    count_of,
    dataset_from_split,
    dataset_from_table,
    n_corrupted,
    subkeys,
)
from tasks.linear_teacher import build_linear_teacher, linear_teacher_spec, teacher_matrix
from tasks.modular import MODULAR_OPS, all_pairs, build_modular, inverse_table, modular_label, modular_spec
from tasks.parity import build_parity, parity_label, parity_spec, unique_bit_rows
from tasks.permutation import (
    PERMUTATION_N,
    PERMUTATION_OPS,
    build_permutation,
    permutation_pairs,
    permutation_spec,
    permutation_table,
    permutations,
)
from tasks.polynomial import build_polynomial, hermite_e, polynomial_spec, polynomial_target, project

__all__ = [
    "COUNT_TOLERANCE_EPS",
    "count_of",
    "MODULAR_OPS",
    "PERMUTATION_N",
    "PERMUTATION_OPS",
    "Dataset",
    "TaskSpec",
    "all_pairs",
    "build_linear_teacher",
    "build_modular",
    "build_parity",
    "build_permutation",
    "build_polynomial",
    "corrupt_labels",
    "dataset_from_split",
    "dataset_from_table",
    "hermite_e",
    "inverse_table",
    "linear_teacher_spec",
    "modular_label",
    "modular_spec",
    "n_corrupted",
    "parity_label",
    "parity_spec",
    "permutation_pairs",
    "permutation_spec",
    "permutation_table",
    "permutations",
    "polynomial_spec",
    "polynomial_target",
    "project",
    "subkeys",
    "teacher_matrix",
    "unique_bit_rows",
]
