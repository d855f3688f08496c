"""DRA: dynamic allocation of limited memory resources (Patel, Acerbi & Pouget 2020).

The algorithm and its variants are written up in docs/theory.md §6.

Numba sampling loops of the paper's agent and of its variants:

- :func:`train` runs independent DRA agents (seeds or hyperparameter grids) in
  parallel: the original algorithm (``cost="allocation"``), note B's per-access
  cost (``cost="access"``) and action-entropy term (``entropy_bonus=True``), and the
  baselines ``allocation="equal"`` (one shared sigma fitted to the same objective),
  ``"frequency"`` and ``"stakes"``.
- :func:`estimate_gradient` returns per-rollout samples of the gradient with
  respect to ``sigma`` (step 2 of :func:`train`).

The tasks of the paper are :func:`fastsoft.mattar_daw_maze` (with its environment
switch: ``train(..., switch_episode=3000)``) and :func:`fastsoft.huys_planning_task`.
A plain Python loop of the same algorithm, fed the same random streams, is
:mod:`fastsoft.reference.dra`.

DRA keeps the paper's *inverse* temperature ``beta``; fastsoft's solvers take
``temperature = tau`` instead (docs/theory.md §7).
"""

from ._core import ALLOCATIONS, COSTS, PSI, UPDATES, estimate_gradient, train
from ._result import DRAHistory, DRAResult, GradientEstimate

#: Paper hyperparameters of the Mattar & Daw maze (docs/theory.md §6.7), for
#: ``train(maze, **MAZE_PARAMS)``.
MAZE_PARAMS = dict(beta=10.0, lam=0.1, sigma_base=5.0, sigma0=3.0, gamma=0.9, alpha_q=0.1,
                   alpha_sigma=0.1, n_traj=10, n_episodes=5000, sigma_clip=(0.01, 100.0))

#: Paper hyperparameters of the Huys et al. planning task (docs/theory.md §6.7); ``alpha_q``,
#: ``alpha_sigma`` and ``n_episodes`` are not given by the paper and left to the caller.
HUYS_PARAMS = dict(beta=10.0, lam=1.0, sigma_base=100.0, sigma0=100.0, gamma=1.0)

__all__ = [
    "train",
    "estimate_gradient",
    "DRAResult",
    "DRAHistory",
    "GradientEstimate",
    "MAZE_PARAMS",
    "HUYS_PARAMS",
    "PSI",
    "COSTS",
    "UPDATES",
    "ALLOCATIONS",
]
