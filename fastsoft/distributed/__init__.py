"""fastsoft on a Dask cluster (the optional extra ``fastsoft[distributed]``).

Two ways past one machine, both on ``dask.distributed`` (imported only when a
function here is called, so ``import fastsoft`` never needs Dask):

- many solves: :func:`map_solve` (results in order), :func:`iter_solves`
  (as they finish) and :func:`submit_solves` (Dask futures): every MDP is
  scattered once, each worker solves on one Numba thread pool, and the results
  are the bits local solves give;
- one MDP too big for one process: :func:`solve_partitioned`, block Jacobi
  value iteration over contiguous blocks of states held by Dask actors, with
  block builders (:class:`GridBlocks`, :class:`GarnetBlocks`) that make each
  worker build only its own rows.

See ``docs/distributed.md`` for the design and the sizing of a 1e9-state grid.
"""

from ._map import FUNCTIONS, iter_solves, map_solve, submit_solves
from ._partitioned import MAX_SWEEPS_PER_ROUND, PartitionError, solve_partitioned
from .blocks import GARNET_CHUNK, GarnetBlocks, GridBlocks, MDPBlock, SliceBlocks, partition

__all__ = [
    "FUNCTIONS",
    "GARNET_CHUNK",
    "MAX_SWEEPS_PER_ROUND",
    "GarnetBlocks",
    "GridBlocks",
    "MDPBlock",
    "PartitionError",
    "SliceBlocks",
    "iter_solves",
    "map_solve",
    "partition",
    "solve_partitioned",
    "submit_solves",
]
