"""Pure NumPy/SciPy yardsticks for every Numba kernel in fastsoft.

These are deliberately plain (vectorised NumPy, SciPy sparse, Python loops
where the algorithm is a loop) and are what tests and benchmarks compare the
kernels against. Submodules: :mod:`fastsoft.reference.core` (CSR helpers,
Bellman backups, value iteration), :mod:`fastsoft.reference.pi` (policy
evaluation and iteration), :mod:`fastsoft.reference.dra` (the DRA loop),
:mod:`fastsoft.reference.sampling` (rollouts, occupancy, inference),
:mod:`fastsoft.reference.blocks` (the block sweeps of :mod:`fastsoft.distributed`).
"""

from . import blocks, dra, pi, sampling
from .core import (
    anderson_value_iteration,
    batch_value_iteration,
    bellman_backup,
    canonicalize_csr,
    dictionary_codes,
    expected_rewards,
    finite_horizon,
    gauss_seidel_sweep,
    grid_csr,
    leaving_classes,
    normalize_rows,
    numpy_value_iteration,
    plain_backup,
    q_values,
    regularized_max,
    row_sums,
    soft_value_iteration,
    transition_matrix,
    value_iteration,
)

__all__ = [
    "blocks",
    "dra",
    "anderson_value_iteration",
    "batch_value_iteration",
    "gauss_seidel_sweep",
    "pi",
    "leaving_classes",
    "numpy_value_iteration",
    "plain_backup",
    "sampling",
    "bellman_backup",
    "canonicalize_csr",
    "dictionary_codes",
    "grid_csr",
    "normalize_rows",
    "expected_rewards",
    "finite_horizon",
    "q_values",
    "regularized_max",
    "row_sums",
    "soft_value_iteration",
    "transition_matrix",
    "value_iteration",
]
