"""fastsoft: entropy- and KL-regularized dynamic programming for big tabular MDPs.

Importing fastsoft compiles nothing: kernels are compiled on first use and
cached on disk.
"""

from . import bounds, reference
from .generators import gridworld, huys_planning_task, mattar_daw_maze, random_mdp
from .mdp import TabularMDP
from .policy_iteration import (
    modified_policy_iteration,
    policy_evaluation,
    policy_iteration,
    regularized_policy_iteration,
)
from .solve import solve
from .result import SolveResult
from .value_iteration import bellman_backup, soft_value_iteration, value_iteration

__version__ = "0.1.0"

__all__ = [
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
