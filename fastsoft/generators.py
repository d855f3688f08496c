"""MDP generators: gridworlds, Garnet-style random MDPs and the DRA paper's tasks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from . import _csr
from ._validation import check_count, check_fits, check_float_dtype, check_gamma, make_rng
from .mdp import TabularMDP

__all__ = ["gridworld", "random_mdp", "mattar_daw_maze", "huys_planning_task", "GRID_ACTIONS",
           "grid_rows", "garnet_rows"]

#: Action order of every gridworld: (name, d_row, d_col).
GRID_ACTIONS = (("up", -1, 0), ("down", 1, 0), ("left", 0, -1), ("right", 0, 1))


def _cells(cells, rows: int, cols: int, name: str) -> list[tuple[int, int]]:
    out = []
    for c in cells:
        try:
            r, k = (int(x) for x in c)
        except (TypeError, ValueError):
            raise TypeError(f"{name}: each cell must be a (row, col) pair, got {c!r}") from None
        if not (0 <= r < rows and 0 <= k < cols):
            raise ValueError(f"{name}: cell {(r, k)} outside the {rows}x{cols} grid")
        out.append((r, k))
    return out


def gridworld(
    rows: int,
    cols: int,
    *,
    slip: float = 0.0,
    walls: Iterable[tuple[int, int]] = (),
    goals: Mapping[tuple[int, int], float] | Iterable[tuple[int, int]] | None = None,
    goal_reward: float = 0.0,
    step_reward: float = -1.0,
    gamma: float = 0.99,
    start: tuple[int, int] | None = (0, 0),
    dtype=np.float64,
) -> TabularMDP:
    """A ``rows x cols`` gridworld with four actions (up, down, left, right).

    State of cell ``(r, c)`` is ``r * cols + c``. With probability ``1 - slip``
    the chosen move is made; with probability ``slip`` a uniformly random one of
    the four moves is made instead (it may be the chosen one). Moving off the
    grid or into a wall leaves the agent in place. Every step pays
    ``step_reward``, except a step that enters a goal, which pays that goal's
    reward instead. Goals are terminal. Wall cells stay in the state space (so
    that indices are ``r * cols + c``) but are unreachable and marked terminal.

    Parameters
    ----------
    rows, cols : int
        Grid size (README.md, "Run it", quotes the build time and memory of a
        1000 x 1000 grid).
    slip : float
        Probability in ``[0, 1]`` that the move is replaced by a random one.
    walls : iterable of (row, col)
        Blocked cells.
    goals : mapping (row, col) -> reward, or iterable of (row, col), optional
        Terminal goal cells; default the bottom-right corner. An iterable gets
        ``goal_reward`` for each.
    goal_reward, step_reward : float
        Reward of entering a goal given as a bare cell, and of every other step.
    gamma : float
        Discount in ``[0, 1]``.
    start : (row, col) or None
        Start cell (the initial distribution); ``None`` for none.
    dtype : float64 or float32
        Storage dtype of the transition probabilities and rewards.

    Returns
    -------
    TabularMDP
        ``rows * cols`` states, 4 actions; ``info`` holds ``"grid"``, ``"walls"``
        and ``"goals"`` (used by :mod:`fastsoft.plot`).

    Examples
    --------
    >>> import fastsoft as fs
    >>> mdp = fs.gridworld(4, 5, slip=0.1, walls=[(1, 1)], gamma=0.9)
    >>> mdp.n_states, mdp.n_actions, int(mdp.terminal.sum())  # goal + wall
    (20, 4, 2)
    >>> mdp.info["grid"]
    (4, 5)
    """
    rows = check_count(rows, "rows")
    cols = check_count(cols, "cols")
    # the MDP's arrays (4 successors per pair: index and probability, the rewards,
    # per-state masks), with the builder's peak of about 2x on top
    check_fits(2.0 * rows * cols * (4 * (16 * 4 + 8) + 64), f"gridworld {rows}x{cols}")
    slip = float(slip)
    if not 0.0 <= slip <= 1.0:
        raise ValueError(f"slip must lie in [0, 1], got {slip}")
    gamma = check_gamma(gamma)
    dt = check_float_dtype(dtype)
    wall_list = _cells(walls, rows, cols, "walls")
    if goals is None:
        goals = {(rows - 1, cols - 1): goal_reward}
    elif not isinstance(goals, Mapping):
        goals = {g: goal_reward for g in _cells(goals, rows, cols, "goals")}
    goal_map = {c: float(v) for c, v in zip(_cells(goals.keys(), rows, cols, "goals"),
                                             goals.values(), strict=True)}
    bad = [("step_reward", float(step_reward))] + [(f"goals[{c}]", v) for c, v in goal_map.items()]
    for name, v in bad:
        if not np.isfinite(v):
            raise ValueError(f"{name} must be finite, got {v}")
    if set(goal_map) & set(wall_list):
        raise ValueError("goals and walls overlap")
    S, A = rows * cols, 4
    wall_ids = np.unique(np.array([r * cols + c for r, c in wall_list], dtype=np.int64))
    goal_items = sorted((r * cols + c, v) for (r, c), v in goal_map.items())
    goal_ids = np.array([k for k, _ in goal_items], dtype=np.int64)
    goal_vals = np.array([v for _, v in goal_items], dtype=np.float64)
    if wall_ids.size + goal_ids.size >= S:
        raise ValueError("every cell is a wall or a goal")
    idx_dtype = np.int32 if S < 2**31 - 1 else np.int64
    # states in blocks (a block's rows are bitwise those of the whole grid), the
    # successors kept as (S, 4) indices; the CSR is then written in canonical
    # form straight into its final arrays (no raw 16-entry rows, no re-sorting)
    dest = np.empty((S, 4), dtype=idx_dtype)
    R = np.empty((S, A), dtype=np.float64)
    terminal = np.empty(S, dtype=bool)
    for lo in range(0, S, _GRID_BLOCK):
        hi = min(S, lo + _GRID_BLOCK)
        dest[lo:hi], R[lo:hi], terminal[lo:hi] = _grid_moves(
            rows, cols, lo, hi, slip, wall_ids, goal_ids, goal_vals, step_reward)
    indptr, indices, probs = _csr.grid_csr(dest, _move_probs(slip), idx_dtype, dt)
    del dest
    mdp = TabularMDP(
        indptr,
        indices,
        probs,
        R.astype(dt, copy=False),
        gamma,
        terminal,
        _start_dist(start, rows, cols, S, terminal),
        {
            "kind": "gridworld",
            "grid": (rows, cols),
            "walls": tuple(wall_list),
            "goals": tuple(goal_map),
            "actions": tuple(a[0] for a in GRID_ACTIONS),
            "slip": slip,
        },
    )
    return mdp


def _member(x: np.ndarray, sorted_ids: np.ndarray) -> np.ndarray:
    """``x in sorted_ids`` elementwise (``sorted_ids`` sorted, unique)."""
    if sorted_ids.size == 0:
        return np.zeros(x.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_ids, x), sorted_ids.size - 1)
    return sorted_ids[pos] == x


#: States per block while gridworld() computes moves and rewards (bounds the temporaries).
_GRID_BLOCK = 1 << 16


def _move_probs(slip: float) -> np.ndarray:
    """``pm[a, d] = P(move d | action a)``: ``1 - slip`` on the chosen move plus ``slip / 4``."""
    pm = np.full((4, 4), slip / 4.0)
    pm[np.arange(4), np.arange(4)] += 1.0 - slip
    return pm


def _grid_moves(rows, cols, lo, hi, slip, wall_ids, goal_ids, goal_vals, step_reward):
    """Successor of every move, expected rewards and terminal mask of states ``lo..hi-1``.

    Returns ``dest (hi - lo, 4)`` int64 (terminal states: themselves),
    ``R (hi - lo, 4)`` float64 and ``terminal (hi - lo,)`` bool.
    """
    S = rows * cols
    s = np.arange(lo, hi, dtype=np.int64)
    rr, cc = np.divmod(s, cols)
    goal = _member(s, goal_ids)
    terminal = _member(s, wall_ids) | goal
    dest = np.empty((s.shape[0], 4), dtype=np.int64)
    for d, (_, dr, dc) in enumerate(GRID_ACTIONS):
        r2 = rr + dr
        c2 = cc + dc
        inside = (r2 >= 0) & (r2 < rows) & (c2 >= 0) & (c2 < cols)
        cand = np.where(inside, r2 * cols + c2, s)
        cand = np.where(_member(np.clip(cand, 0, S - 1), wall_ids), s, cand)
        dest[:, d] = cand
    # terminal cells: absorbing self-loops (never used by the solvers)
    dest[terminal] = s[terminal, None]
    pm = _move_probs(slip)
    # expected reward: step reward, or the goal's reward when the move enters a goal
    enters = _member(dest, goal_ids) & ~terminal[:, None]  # (n, 4)
    gpos = np.minimum(np.searchsorted(goal_ids, dest), max(goal_ids.size - 1, 0))
    step_part = np.where(enters, goal_vals[gpos] if goal_ids.size else 0.0, step_reward)
    # R[s, a] = sum_d step_part[s, d] pm[a, d], summed in direction order (elementwise,
    # so that a block's rewards are bitwise those of the whole grid)
    R = step_part[:, None, 0] * pm[None, :, 0]
    for d in range(1, 4):
        R = R + step_part[:, None, d] * pm[None, :, d]
    R[terminal] = 0.0
    return dest, R, terminal


def grid_rows(rows, cols, lo, hi, slip, wall_ids, goal_ids, goal_vals, step_reward):
    """Raw transition rows of the gridworld states ``lo..hi-1`` (see :func:`gridworld`).

    Every state-action pair gets four candidate entries, one per move
    direction (``GRID_ACTIONS`` order), not yet merged. ``wall_ids`` and
    ``goal_ids`` are sorted state indices; ``goal_vals`` the goals' rewards.
    Each state's rows depend on that state alone, so any block of states gives
    exactly the corresponding rows of the whole grid (used by
    :class:`fastsoft.distributed.GridBlocks`).

    Returns
    -------
    indices : ndarray of int64, shape ((hi - lo) * 16,)
    probs : ndarray of float64, shape ((hi - lo) * 16,)
    rewards : ndarray of float64, shape (hi - lo, 4)
    terminal : ndarray of bool, shape (hi - lo,)
    """
    dest, R, terminal = _grid_moves(rows, cols, lo, hi, slip, wall_ids, goal_ids, goal_vals,
                                    step_reward)
    n, A = dest.shape[0], 4
    pm = _move_probs(slip)
    cand_idx = np.broadcast_to(dest[:, None, :], (n, A, 4)).reshape(-1)
    cand_p = np.broadcast_to(pm[None, :, :], (n, A, 4)).reshape(-1)
    return cand_idx, np.ascontiguousarray(cand_p), R, terminal


def _start_dist(start, rows, cols, S, terminal):
    if start is None:
        return None
    (r, c), = _cells([start], rows, cols, "start")
    if terminal[r * cols + c]:
        raise ValueError(f"start {(r, c)} is a wall or a goal")
    init = np.zeros(S)
    init[r * cols + c] = 1.0
    return init


def random_mdp(
    n_states: int,
    n_actions: int,
    n_successors: int,
    *,
    gamma: float,
    seed=None,
    reward_range: tuple[float, float] = (0.0, 1.0),
    dtype=np.float64,
) -> TabularMDP:
    """A Garnet-style sparse random MDP.

    Every ``(s, a)`` has ``n_successors`` distinct next states drawn uniformly
    without replacement; their probabilities are a uniform random partition of
    ``[0, 1]`` (sorted uniform cut points). Rewards ``R(s, a)`` are uniform on
    ``reward_range``. No terminal states.

    Parameters
    ----------
    n_states, n_actions : int
        Sizes (at least 1).
    n_successors : int
        Next states of every pair, in ``1..n_states``.
    gamma : float
        Discount in ``[0, 1]``.
    seed : int, Generator or None
        Anything :func:`numpy.random.default_rng` accepts.
    reward_range : (low, high)
        Bounds of the uniform rewards.
    dtype : float64 or float32
        Storage dtype of the transition probabilities and rewards.

    Returns
    -------
    TabularMDP
        ``n_states * n_actions * n_successors`` transitions, no terminal states.

    Examples
    --------
    >>> import fastsoft as fs
    >>> mdp = fs.random_mdp(100, 4, 5, gamma=0.9, seed=0)
    >>> mdp.nnz, mdp.has_terminal
    (2000, False)
    >>> mdp == fs.random_mdp(100, 4, 5, gamma=0.9, seed=0)  # same seed, same MDP
    True
    """
    S = check_count(n_states, "n_states")
    A = check_count(n_actions, "n_actions")
    K = check_count(n_successors, "n_successors")
    if not 1 <= K <= S:
        raise ValueError(f"n_successors must lie in [1, n_states={S}], got {K}")
    gamma = check_gamma(gamma)
    try:
        lo, hi = (float(x) for x in reward_range)
    except (TypeError, ValueError):
        raise TypeError(f"reward_range must be a pair of reals, got {reward_range!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
        raise ValueError(f"reward_range must be finite with low <= high, got {reward_range!r}")
    if not np.isfinite(hi - lo):
        raise ValueError(f"reward_range: high - low overflows float64, got {reward_range!r}")
    n_rows = S * A
    # dense draws (K > S/4) sort a random (S*A, S) matrix; sparse ones keep (S*A, K)
    need = 16.0 * n_rows * S + 32.0 * n_rows * K if K * 4 > S else 5 * 32.0 * n_rows * K
    check_fits(need, f"random_mdp with {S:,} states x {A} actions x {K} successors")
    rng = make_rng(seed)
    nxt, p = garnet_rows(rng, n_rows, S, K, index_dtype=np.int32 if S < 2**31 - 1 else np.int64)
    R = rng.uniform(lo, hi, size=(S, A))
    indptr = np.arange(0, n_rows * K + 1, K, dtype=np.int64)
    return TabularMDP._build(
        indptr,
        nxt.reshape(-1),
        p.reshape(-1),
        R,
        None,
        S,
        A,
        gamma,
        None,
        None,
        check_float_dtype(dtype),
        {"kind": "random_mdp", "n_successors": K},
        owned=True,
    )


#: Rows per block of the repeat check in :func:`garnet_rows` (bounds its temporaries).
_GARNET_BLOCK = 1 << 16


def garnet_rows(rng: np.random.Generator, n_rows: int, n_states: int, n_successors: int,
                *, index_dtype=np.int64):
    """Draw ``n_rows`` Garnet rows from ``rng`` (the draws of :func:`random_mdp`).

    Each row gets ``n_successors`` distinct next states uniform on
    ``[0, n_states)``, sorted (rows with a repeat are redrawn; with
    ``4 * n_successors > n_states`` a random permutation's first entries), then
    probabilities from a uniform random partition of ``[0, 1]`` (sorted
    uniform cut points). Returns ``(next_states (n_rows, K), probs (n_rows, K))``,
    the next states as ``index_dtype`` (converted before the probabilities are
    drawn, so that the int64 draws and the probabilities never coexist).
    """
    S, K = n_states, n_successors
    if K * 4 > S:
        nxt = np.argsort(rng.random((n_rows, S)), axis=1)[:, :K]
    else:
        nxt = rng.integers(0, S, size=(n_rows, K))
        nxt.sort(axis=1)
        while True:
            redo = np.concatenate([
                lo + np.flatnonzero((np.diff(nxt[lo:lo + _GARNET_BLOCK], axis=1) == 0).any(axis=1))
                for lo in range(0, n_rows, _GARNET_BLOCK)
            ] or [np.zeros(0, dtype=np.int64)])
            if not redo.size:
                break
            fresh = rng.integers(0, S, size=(redo.size, K))
            fresh.sort(axis=1)
            nxt[redo] = fresh
    nxt.sort(axis=1)
    if nxt.dtype != np.dtype(index_dtype):
        nxt = nxt.astype(index_dtype)
    # probabilities: differences of [0, sorted cuts, 1], written into one array
    # (bitwise np.diff of the concatenated edges: x - 0.0 == x)
    cuts = rng.random((n_rows, K - 1))
    cuts.sort(axis=1)
    p = np.empty((n_rows, K))
    if K == 1:
        p[:, 0] = 1.0
    else:
        p[:, 0] = cuts[:, 0]
        np.subtract(cuts[:, 1:], cuts[:, :-1], out=p[:, 1:-1])
        np.subtract(1.0, cuts[:, -1], out=p[:, -1])
    return nxt, p


#: Mattar & Daw maze layout (docs/theory.md §6.7).
MAZE_SHAPE = (6, 9)
MAZE_START = (2, 0)
MAZE_GOAL = (0, 8)
MAZE_GOAL_SWITCHED = (0, 6)
MAZE_OBSTACLES = ((1, 2), (2, 2), (3, 2), (0, 7), (1, 7), (2, 7), (4, 5))


def mattar_daw_maze(switch: bool = False, *, gamma: float = 0.9, dtype=np.float64) -> TabularMDP:
    """The 6 x 9 maze of Mattar & Daw used by DRA (docs/theory.md §6.7).

    Start (2, 0), goal (0, 8) (terminal), obstacles (1,2) (2,2) (3,2) (0,7)
    (1,7) (2,7) (4,5); reward +10 on entering the goal, -1 for every other step;
    bumping into a wall or obstacle leaves the agent in place. State index
    ``row * 9 + col``; actions up, down, left, right. ``switch=True`` gives the
    maze after the environment switch: obstacle (0, 7) removed, goal at (0, 6).

    Parameters
    ----------
    switch : bool
        The maze after the switch instead of before.
    gamma : float
        Discount in ``[0, 1]`` (the paper's 0.9 by default).
    dtype : float64 or float32
        Storage dtype of the transition probabilities and rewards.

    Returns
    -------
    TabularMDP
        54 states (obstacles stay in the state space, unreachable and marked
        terminal), 4 actions, the start state as initial distribution.

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> maze = fs.mattar_daw_maze()
    >>> maze.n_states, maze.n_actions, np.flatnonzero(maze.initial)
    (54, 4, array([18]))
    """
    obstacles = [o for o in MAZE_OBSTACLES if not (switch and o == (0, 7))]
    goal = MAZE_GOAL_SWITCHED if switch else MAZE_GOAL
    mdp = gridworld(
        *MAZE_SHAPE,
        walls=obstacles,
        goals={goal: 10.0},
        step_reward=-1.0,
        gamma=gamma,
        start=MAZE_START,
        dtype=dtype,
    )
    info = dict(mdp.info, kind="mattar_daw_maze", switch=bool(switch))
    return TabularMDP(mdp.indptr, mdp.indices, mdp.probs, mdp.rewards, mdp.gamma,
                      mdp.terminal, mdp.initial, info)


#: Huys et al. planning task: from -> ((to, reward), (to, reward)).
HUYS_TRANSITIONS = (
    ((1, 140.0), (3, 20.0)),
    ((2, -20.0), (4, -70.0)),
    ((3, -20.0), (5, -70.0)),
    ((1, 20.0), (4, -20.0)),
    ((0, -70.0), (5, -20.0)),
    ((0, -20.0), (2, 20.0)),
)


def huys_planning_task(depth: int = 3, *, gamma: float = 1.0, dtype=np.float64) -> TabularMDP:
    """The Huys et al. planning task unrolled over the remaining depth (docs/theory.md §6.7).

    Six base states, two actions each, deterministic. The unrolled state
    ``t * 6 + i`` is base state ``i`` after ``t`` moves (``t = 0..depth``); the
    states with ``t = depth`` are terminal. The initial distribution is uniform
    over the six states at ``t = 0``. Default ``gamma = 1`` (episodic).

    Parameters
    ----------
    depth : int
        Moves per episode (the paper uses 3, 4 and 5).
    gamma : float
        Discount in ``[0, 1]``.
    dtype : float64 or float32
        Storage dtype of the transition probabilities and rewards.

    Returns
    -------
    TabularMDP
        ``6 * (depth + 1)`` states, 2 actions.

    Examples
    --------
    >>> import fastsoft as fs
    >>> task = fs.huys_planning_task(3)
    >>> task.n_states, task.n_actions, int(task.terminal.sum())
    (24, 2, 6)
    """
    depth = int(depth)
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    S, A = 6 * (depth + 1), 2
    indices = np.empty(S * A, dtype=np.int64)
    R = np.zeros((S, A))
    for t in range(depth + 1):
        for i in range(6):
            s = t * 6 + i
            for a in range(2):
                j, r = HUYS_TRANSITIONS[i][a]
                if t < depth:
                    indices[s * A + a] = (t + 1) * 6 + j
                    R[s, a] = r
                else:
                    indices[s * A + a] = s
    terminal = np.zeros(S, dtype=bool)
    terminal[depth * 6:] = True
    initial = np.zeros(S)
    initial[:6] = 1.0 / 6.0
    return TabularMDP._build(
        np.arange(S * A + 1, dtype=np.int64), indices, np.ones(S * A), R, None, S, A,
        check_gamma(gamma), terminal, initial, check_float_dtype(dtype),
        {"kind": "huys_planning_task", "depth": depth},
    )
