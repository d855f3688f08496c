"""Blocks of states of an MDP, built where they are used (no Dask needed here).

A *block builder* describes an MDP too big for one process: it knows the
sizes and the discount, and ``builder(lo, hi)`` returns the rows of the
states ``lo..hi-1`` as an :class:`MDPBlock`, computed from the description
alone (so each Dask worker of :func:`fastsoft.distributed.solve_partitioned`
builds its own block). ``builder.whole()`` builds the same MDP in one piece as
a :class:`fastsoft.TabularMDP` (for tests and small sizes).

- :class:`GridBlocks`: the rows of :func:`fastsoft.gridworld`, bit for bit.
- :class:`GarnetBlocks`: a Garnet random MDP defined block by block (its own
  random streams, one per chunk of :data:`GARNET_CHUNK` states, so a block does
  not depend on the partition; not the same draws as
  :func:`fastsoft.random_mdp`).
- :class:`SliceBlocks`: the rows of an existing :class:`fastsoft.TabularMDP`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from .. import _csr
from .._validation import check_gamma
from ..generators import GRID_ACTIONS, garnet_rows, grid_rows, gridworld
from ..mdp import TabularMDP

__all__ = ["MDPBlock", "GridBlocks", "GarnetBlocks", "SliceBlocks", "GARNET_CHUNK",
           "partition"]

#: States per random stream of :class:`GarnetBlocks`.
GARNET_CHUNK = 4096

#: :class:`GridBlocks` builds a block this many states at a time.
BUILD_PIECE = 65536


@dataclass(frozen=True, eq=False)
class MDPBlock:
    """The rows of states ``lo..hi-1`` of an MDP with ``n_states`` states.

    Attributes
    ----------
    lo, hi : int
        The block's states.
    n_states, n_actions : int
        Sizes of the whole MDP.
    gamma : float
    indptr : ndarray of int64, shape ((hi - lo) * A + 1,)
        Local row pointers: row ``i * A + a`` holds the successors of ``(lo + i, a)``.
    indices : ndarray of int64, shape (nnz,)
        Global next states (sorted, unique within a row).
    probs : ndarray of float64, shape (nnz,)
    rewards : ndarray of float64, shape (hi - lo, A)
    terminal : ndarray of bool, shape (hi - lo,), or None
    """

    lo: int
    hi: int
    n_states: int
    n_actions: int
    gamma: float
    indptr: np.ndarray
    indices: np.ndarray
    probs: np.ndarray
    rewards: np.ndarray
    terminal: np.ndarray | None

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        arrays = (self.indptr, self.indices, self.probs, self.rewards, self.terminal)
        return int(sum(a.nbytes for a in arrays if a is not None))


def partition(n_states: int, n_parts: int) -> np.ndarray:
    """Boundaries of ``n_parts`` contiguous blocks of near-equal size, shape (n_parts + 1,)."""
    return np.linspace(0, n_states, n_parts + 1).astype(np.int64)


def _check_range(builder, lo, hi) -> tuple[int, int]:
    lo, hi = int(lo), int(hi)
    if not 0 <= lo < hi <= builder.n_states:
        raise ValueError(f"block [{lo}, {hi}) is not a non-empty range of [0, {builder.n_states})")
    return lo, hi


def _canonical_block(builder, lo, hi, indptr, indices, probs, rewards, terminal) -> MDPBlock:
    """Rows stored as :class:`fastsoft.TabularMDP` stores them: sorted, merged,
    then rescaled once where a row does not sum to exactly 1."""
    indptr, indices, probs = _csr.canonicalize_csr(indptr, indices, probs)
    sums = _csr.row_sums(indptr, probs)
    if np.any((sums > 0) & (sums != 1.0)):
        probs = _csr.normalize_rows(indptr, probs)
    term = terminal if terminal is not None and terminal.any() else None
    return MDPBlock(lo, hi, builder.n_states, builder.n_actions, builder.gamma,
                    np.ascontiguousarray(indptr, dtype=np.int64),
                    np.ascontiguousarray(indices, dtype=np.int64),
                    np.ascontiguousarray(probs, dtype=np.float64),
                    np.ascontiguousarray(rewards, dtype=np.float64), term)


class GridBlocks:
    """Block builder of ``fastsoft.gridworld(rows, cols, ...)`` (same arguments).

    ``GridBlocks(...)(lo, hi)`` holds exactly the rows of states ``lo..hi-1``
    of ``gridworld(rows, cols, ...)`` (same successors, same probability and
    reward bits); building it touches only those states (memory ``O(hi - lo)``
    plus the wall and goal lists).

    Examples
    --------
    >>> from fastsoft.distributed import GridBlocks
    >>> b = GridBlocks(4, 5, slip=0.1, gamma=0.9)
    >>> blk = b(5, 10)
    >>> int(blk.hi - blk.lo), blk.rewards.shape
    (5, (5, 4))
    """

    n_actions = len(GRID_ACTIONS)

    def __init__(self, rows: int, cols: int, *, slip: float = 0.0,
                 walls: Iterable[tuple[int, int]] = (),
                 goals: Mapping[tuple[int, int], float] | Iterable[tuple[int, int]] | None = None,
                 goal_reward: float = 0.0, step_reward: float = -1.0, gamma: float = 0.99):
        walls = tuple(tuple(int(x) for x in w) for w in walls)
        if goals is not None and not isinstance(goals, Mapping):
            goals = {tuple(int(x) for x in g): float(goal_reward) for g in goals}
        self.kwargs = dict(slip=float(slip), walls=walls, goals=goals, goal_reward=goal_reward,
                           step_reward=float(step_reward), gamma=check_gamma(gamma))
        # checked here once, not on every block (gridworld checks the whole grid)
        rows, cols = int(rows), int(cols)
        if rows <= 0 or cols <= 0:
            raise ValueError(f"rows and cols must be positive, got {rows}x{cols}")
        if not 0.0 <= self.kwargs["slip"] <= 1.0:
            raise ValueError(f"slip must lie in [0, 1], got {slip}")
        self.rows, self.cols = rows, cols
        cells = {(rows - 1, cols - 1): float(goal_reward)} if goals is None else dict(goals)
        for name, cs in (("walls", walls), ("goals", cells)):
            for r, c in cs:
                if not (0 <= r < rows and 0 <= c < cols):
                    raise ValueError(f"{name}: cell {(r, c)} outside the {rows}x{cols} grid")
        if set(cells) & set(walls):
            raise ValueError("goals and walls overlap")
        self._walls = np.unique(np.array([r * cols + c for r, c in walls], dtype=np.int64))
        items = sorted((r * cols + c, float(v)) for (r, c), v in cells.items())
        self._goal_ids = np.array([k for k, _ in items], dtype=np.int64)
        self._goal_vals = np.array([v for _, v in items], dtype=np.float64)
        if self._walls.size + self._goal_ids.size >= rows * cols:
            raise ValueError("every cell is a wall or a goal")

    @property
    def n_states(self) -> int:
        return self.rows * self.cols

    @property
    def gamma(self) -> float:
        return self.kwargs["gamma"]

    def __call__(self, lo: int, hi: int) -> MDPBlock:
        lo, hi = _check_range(self, lo, hi)
        # built in pieces (rows are independent), so the raw candidate rows of the
        # whole block never exist at once: the peak stays near the block's size
        parts = [self._piece(a, min(a + BUILD_PIECE, hi)) for a in range(lo, hi, BUILD_PIECE)]
        if len(parts) == 1:
            return parts[0]
        sizes = np.cumsum([0] + [p.probs.size for p in parts])
        indptr = np.concatenate([parts[0].indptr[:1]] + [
            p.indptr[1:] + off for p, off in zip(parts, sizes, strict=False)])
        term = np.concatenate([np.zeros(p.hi - p.lo, bool) if p.terminal is None else p.terminal
                               for p in parts])
        return MDPBlock(lo, hi, self.n_states, self.n_actions, self.gamma, indptr,
                        np.concatenate([p.indices for p in parts]),
                        np.concatenate([p.probs for p in parts]),
                        np.concatenate([p.rewards for p in parts]), term if term.any() else None)

    def _piece(self, lo: int, hi: int) -> MDPBlock:
        idx, p, R, term = grid_rows(self.rows, self.cols, lo, hi, self.kwargs["slip"],
                                    self._walls, self._goal_ids, self._goal_vals,
                                    self.kwargs["step_reward"])
        indptr = np.arange(0, (hi - lo) * 16 + 1, 4, dtype=np.int64)
        return _canonical_block(self, lo, hi, indptr, idx, p, R, term)

    def whole(self) -> TabularMDP:
        """``fastsoft.gridworld`` with these arguments (no start state)."""
        return gridworld(self.rows, self.cols, start=None, **self.kwargs)

    def __repr__(self) -> str:
        return f"GridBlocks({self.rows}, {self.cols}, slip={self.kwargs['slip']})"


class GarnetBlocks:
    """Block builder of a Garnet random MDP, defined block by block.

    States are cut into chunks of :data:`GARNET_CHUNK` states; chunk ``j``
    draws from ``numpy.random.default_rng(SeedSequence(seed, spawn_key=(j,)))``,
    in this order, for its ``n * A`` state-action pairs: ``n_successors``
    distinct next states uniform on ``[0, n_states)`` (sorted; rows with a
    repeat are redrawn), a uniform random partition of ``[0, 1]`` into their
    probabilities (sorted uniform cut points), then the rewards ``R(s, a)``
    uniform on ``reward_range``. A block draws the chunks it overlaps, so its
    rows do not depend on how the states are partitioned. No terminal states.

    Examples
    --------
    >>> from fastsoft.distributed import GarnetBlocks
    >>> g = GarnetBlocks(10_000, 4, 5, gamma=0.95, seed=0)
    >>> g(0, 100).indices.shape
    (2000,)
    """

    def __init__(self, n_states: int, n_actions: int, n_successors: int, *, gamma: float,
                 seed: int = 0, reward_range: tuple[float, float] = (0.0, 1.0)):
        S, A, K = int(n_states), int(n_actions), int(n_successors)
        if S <= 0 or A <= 0:
            raise ValueError(f"n_states and n_actions must be positive, got {S}, {A}")
        if not 1 <= K <= S:
            raise ValueError(f"n_successors must lie in [1, n_states={S}], got {K}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise TypeError(f"seed must be a non-negative int, got {seed!r}")
        self.n_states, self.n_actions, self.n_successors = S, A, K
        self.gamma = check_gamma(gamma)
        self.seed = int(seed)
        self.reward_range = (float(reward_range[0]), float(reward_range[1]))

    def _chunk(self, j: int):
        S, A, K = self.n_states, self.n_actions, self.n_successors
        lo = j * GARNET_CHUNK
        n = min(S, lo + GARNET_CHUNK) - lo
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(j,)))
        nxt, p = garnet_rows(rng, n * A, S, K)
        R = rng.uniform(*self.reward_range, size=(n, A))
        return nxt, p, R

    def _raw(self, lo: int, hi: int):
        """Unnormalised rows of states ``lo..hi-1``: ``(indices (n*A, K), probs, R)``."""
        parts = [self._chunk(j) for j in range(lo // GARNET_CHUNK, (hi - 1) // GARNET_CHUNK + 1)]
        off = lo - (lo // GARNET_CHUNK) * GARNET_CHUNK
        A, n = self.n_actions, hi - lo
        nxt = np.concatenate([p[0] for p in parts])[off * A:(off + n) * A]
        p = np.concatenate([p[1] for p in parts])[off * A:(off + n) * A]
        R = np.concatenate([p[2] for p in parts])[off:off + n]
        return nxt, p, R

    def __call__(self, lo: int, hi: int) -> MDPBlock:
        lo, hi = _check_range(self, lo, hi)
        nxt, p, R = self._raw(lo, hi)
        K = self.n_successors
        indptr = np.arange(0, nxt.shape[0] * K + 1, K, dtype=np.int64)
        return _canonical_block(self, lo, hi, indptr, nxt.ravel(), p.ravel(), R, None)

    def whole(self) -> TabularMDP:
        """The whole MDP as a :class:`fastsoft.TabularMDP` (validated by ``from_csr``)."""
        nxt, p, R = self._raw(0, self.n_states)
        K = self.n_successors
        indptr = np.arange(0, nxt.shape[0] * K + 1, K, dtype=np.int64)
        return TabularMDP.from_csr(indptr, nxt.ravel(), p.ravel(), R, self.gamma,
                                   info={"kind": "garnet_blocks", "n_successors": K})

    def __repr__(self) -> str:
        return (f"GarnetBlocks({self.n_states}, {self.n_actions}, {self.n_successors}, "
                f"gamma={self.gamma}, seed={self.seed})")


class SliceBlocks:
    """Block builder over an existing :class:`fastsoft.TabularMDP` (its rows, sliced)."""

    def __init__(self, mdp: TabularMDP):
        if not isinstance(mdp, TabularMDP):
            raise TypeError(f"mdp must be a TabularMDP, got {type(mdp).__name__}")
        self.mdp = mdp
        self.n_states, self.n_actions, self.gamma = mdp.n_states, mdp.n_actions, mdp.gamma

    def __call__(self, lo: int, hi: int) -> MDPBlock:
        lo, hi = _check_range(self, lo, hi)
        m, A = self.mdp, self.n_actions
        a, b = int(m.indptr[lo * A]), int(m.indptr[hi * A])
        term = None if m.terminal is None else m.terminal[lo:hi].copy()
        if term is not None and not term.any():
            term = None
        return MDPBlock(lo, hi, self.n_states, A, self.gamma, m.indptr[lo * A:hi * A + 1] - a,
                        m.indices[a:b].astype(np.int64), m.probs[a:b].astype(np.float64),
                        m.rewards[lo:hi].astype(np.float64), term)

    def whole(self) -> TabularMDP:
        return self.mdp
