"""fastsoft: entropy- and KL-regularized dynamic programming for big tabular MDPs.

Importing fastsoft compiles nothing: kernels are compiled on first use and
cached on disk.
"""

from . import progress  # noqa: F401  (registers the solvers' progress bar hook)
from ._jit import get_num_threads, max_threads, set_num_threads
from ._version import __version__ as __version__
from ._warmup import warmup
from .batch import BatchResult, solve_batch
from .generators import gridworld, huys_planning_task, mattar_daw_maze, random_mdp
from .mdp import TabularMDP
from .pi import (
    modified_policy_iteration,
    policy_evaluation,
    policy_iteration,
    regularized_policy_iteration,
)
from .result import SolveResult
from .sampling import (
    MonteCarloEstimate,
    Occupancy,
    Trajectories,
    monte_carlo_evaluation,
    occupancy,
    sample_trajectories,
)
from .solver import solve
from .vi import bellman_backup, soft_value_iteration, value_iteration

# Submodules with heavier imports load on first attribute access (PEP 562),
# keeping ``import fastsoft`` fast.
_LAZY = ("bounds", "reference", "dra", "distributed", "envs", "inference", "plot")


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "get_num_threads",
    "max_threads",
    "set_num_threads",
    "warmup",
    "BatchResult",
    "solve_batch",
    "MonteCarloEstimate",
    "Occupancy",
    "Trajectories",
    "monte_carlo_evaluation",
    "occupancy",
    "sample_trajectories",
    "inference",
    "TabularMDP",
    "SolveResult",
    "bellman_backup",
    "bounds",
    "gridworld",
    "huys_planning_task",
    "mattar_daw_maze",
    "modified_policy_iteration",
    "policy_evaluation",
    "policy_iteration",
    "random_mdp",
    "reference",
    "regularized_policy_iteration",
    "solve",
    "soft_value_iteration",
    "value_iteration",
]
