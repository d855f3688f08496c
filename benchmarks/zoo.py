"""A zoo of MDPs written from arrays the way QuantEcon / pymdptoolbox users write them.

Built independently of ``fastsoft.generators`` (which the kernels were tuned
on): plain NumPy arrays of successors, probabilities and rewards handed to
``TabularMDP.from_csr`` / ``from_dense``, goals as zero-reward absorbing
self-loops unless the problem says otherwise, no terminal flags, no metadata.

    from benchmarks.zoo import build, NAMES
    mdp = build("maze", 90_000)             # ~ size states
    mdp = build("chain", 100_000, gamma=0.999)

``size`` is the (approximate) number of states: grids and mazes are
``round(sqrt(size))`` squared, the toy-text environments and ``dense`` ignore it
(``dense`` is 2000 states whatever the size). Everything is seeded
(``seed=0``): the same arrays every run.

Problems
--------
grid_absorbing  n x n grid, 4 moves, slip 0.1 (the move is replaced by a uniform
                one), reward -1 per step, goal corner an absorbing zero-reward
                self-loop.
grid_terminal   the same arrays, goal flagged ``terminal``.
maze            grid with 25% random walls (moving into a wall or the border
                leaves you in place; a wall cell is an inert zero-reward
                self-loop, pockets enclosed by walls stay), absorbing goal.
chain           n states in a line, left / right with slip 0.1, reward -1,
                absorbing goal at the right end (default gamma 0.999).
riverswim       RiverSwim-style chain, nothing absorbing: a small reward for
                staying at the left end, a large one at the right end, a weak
                current (default gamma 0.999).
banded          banded random MDP: 4 actions, 6 successors within +-8 of the
                state, Dirichlet probabilities, uniform rewards.
garnet          Garnet(n, 8, 10): 10 uniformly random successors per pair.
dense           2000 states x 8 actions, dense random P.
frozenlake, taxi, cliffwalking
                gymnasium toy-text (FrozenLake 8x8 slippery, Taxi, CliffWalking),
                through ``TabularMDP.from_gymnasium`` (terminations flagged).
"""

from __future__ import annotations

import numpy as np

import fastsoft as fs

#: Problem names, in table order.
NAMES = ("grid_absorbing", "grid_terminal", "maze", "chain", "riverswim", "banded", "garnet",
         "dense", "frozenlake", "taxi", "cliffwalking")

#: Default discount per problem.
GAMMA = {"chain": 0.999, "riverswim": 0.999}

#: Kinds, for the targets of issue 10 (structured: >= 10x the best peer; random: >= 3x).
STRUCTURED = ("grid_absorbing", "grid_terminal", "maze", "chain", "riverswim")
RANDOM = ("banded", "garnet", "dense")

_MOVES = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)])


def _grid_arrays(n: int, walls: np.ndarray, slip: float, goal: int):
    """CSR of an n x n grid: 4 moves, each replaced by a uniform move w.p. ``slip``."""
    S = n * n
    r, c = np.divmod(np.arange(S), n)
    dest = np.empty((S, 4), dtype=np.int64)
    for b, (dr, dc) in enumerate(_MOVES):
        rr, cc = r + dr, c + dc
        ok = (rr >= 0) & (rr < n) & (cc >= 0) & (cc < n)
        t = np.where(ok, rr * n + cc, np.arange(S))
        t = np.where(walls[np.clip(t, 0, S - 1)], np.arange(S), t)
        dest[:, b] = t
    # row (s, a): successors dest[s, b] with prob (1 - slip) [a == b] + slip / 4
    A = 4
    idx = np.repeat(dest[:, None, :], A, axis=1)  # (S, A, 4)
    pr = np.full((S, A, 4), slip / 4)
    pr[:, np.arange(A), np.arange(A)] += 1.0 - slip
    inert = walls.copy()
    inert[goal] = True
    idx[inert] = np.arange(S)[inert][:, None, None]
    R = np.full((S, A), -1.0)
    R[inert] = 0.0
    return _csr(idx.reshape(S * A, 4), pr.reshape(S * A, 4)), R


def _csr(idx: np.ndarray, pr: np.ndarray):
    rows, k = idx.shape
    return np.arange(0, rows * k + 1, k, dtype=np.int64), idx.ravel(), pr.ravel()


def grid(n: int, *, gamma: float = 0.99, terminal: bool = False, wall_frac: float = 0.0,
         seed: int = 0) -> fs.TabularMDP:
    S = n * n
    rng = np.random.default_rng(seed)
    walls = rng.random(S) < wall_frac
    goal = S - 1
    walls[[0, goal]] = False
    (indptr, indices, probs), R = _grid_arrays(n, walls, 0.1, goal)
    term = None
    if terminal:
        term = np.zeros(S, bool)
        term[goal] = True
    return fs.TabularMDP.from_csr(indptr, indices, probs, R, gamma, terminal=term)


def chain(n: int, *, gamma: float = 0.999, slip: float = 0.1) -> fs.TabularMDP:
    s = np.arange(n)
    left, right = np.maximum(s - 1, 0), np.minimum(s + 1, n - 1)
    idx = np.empty((n, 2, 2), dtype=np.int64)
    idx[:, 0] = np.stack([left, right], 1)
    idx[:, 1] = np.stack([right, left], 1)
    pr = np.tile([1.0 - slip, slip], (n, 2, 1))
    idx[n - 1] = n - 1
    R = np.full((n, 2), -1.0)
    R[n - 1] = 0.0
    indptr, indices, probs = _csr(idx.reshape(2 * n, 2), pr.reshape(2 * n, 2))
    return fs.TabularMDP.from_csr(indptr, indices, probs, R, gamma)


def riverswim(n: int, *, gamma: float = 0.999) -> fs.TabularMDP:
    s = np.arange(n)
    left, right = np.maximum(s - 1, 0), np.minimum(s + 1, n - 1)
    idx = np.empty((n, 2, 3), dtype=np.int64)
    pr = np.empty((n, 2, 3))
    idx[:, 0] = np.stack([left, left, left], 1)
    pr[:, 0] = (1.0, 0.0, 0.0)
    idx[:, 1] = np.stack([right, s, left], 1)
    pr[:, 1] = (0.6, 0.35, 0.05)
    R = np.zeros((n, 2))
    R[0, 0] = 0.005
    R[n - 1, 1] = 1.0
    indptr, indices, probs = _csr(idx.reshape(2 * n, 3), pr.reshape(2 * n, 3))
    return fs.TabularMDP.from_csr(indptr, indices, probs, R, gamma)


def banded(n: int, *, gamma: float = 0.99, A: int = 4, k: int = 6, width: int = 8,
           seed: int = 0) -> fs.TabularMDP:
    rng = np.random.default_rng(seed)
    off = rng.integers(-width, width + 1, size=(n * A, k))
    s = np.repeat(np.arange(n), A)[:, None]
    idx = np.clip(s + off, 0, n - 1)
    pr = rng.dirichlet(np.ones(k), size=n * A)
    R = rng.random((n, A))
    indptr, indices, probs = _csr(idx, pr)
    return fs.TabularMDP.from_csr(indptr, indices, probs, R, gamma)


def garnet(n: int, *, gamma: float = 0.99, A: int = 8, b: int = 10,
           seed: int = 0) -> fs.TabularMDP:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n * A, b))
    cuts = np.sort(rng.random((n * A, b - 1)), axis=1)
    pr = np.diff(np.concatenate([np.zeros((n * A, 1)), cuts, np.ones((n * A, 1))], 1), axis=1)
    R = rng.normal(size=(n, A))
    indptr, indices, probs = _csr(idx, pr)
    return fs.TabularMDP.from_csr(indptr, indices, probs, R, gamma)


def dense(n: int = 2000, *, gamma: float = 0.99, A: int = 8, seed: int = 0) -> fs.TabularMDP:
    rng = np.random.default_rng(seed)
    P = rng.random((n, A, n))
    P /= P.sum(axis=2, keepdims=True)
    return fs.TabularMDP.from_dense(P, rng.random((n, A)), gamma)


def _gym(name: str, gamma: float, **kw) -> fs.TabularMDP:
    import gymnasium as gym

    versions = [spec.version for spec in gym.registry.values()
                if spec.name == name and spec.namespace is None and spec.version is not None]
    env = gym.make(f"{name}-v{max(versions)}", **kw)
    return fs.TabularMDP.from_gymnasium(env, gamma)


def build(name: str, size: int = 10_000, *, gamma: float | None = None) -> fs.TabularMDP:
    """The zoo problem ``name`` with about ``size`` states (see the module docstring)."""
    g = GAMMA.get(name, 0.99) if gamma is None else float(gamma)
    n = max(3, int(round(np.sqrt(size))))
    if name == "grid_absorbing":
        return grid(n, gamma=g)
    if name == "grid_terminal":
        return grid(n, gamma=g, terminal=True)
    if name == "maze":
        return grid(n, gamma=g, wall_frac=0.25)
    if name == "chain":
        return chain(max(3, size), gamma=g)
    if name == "riverswim":
        return riverswim(max(3, size), gamma=g)
    if name == "banded":
        return banded(max(20, size), gamma=g)
    if name == "garnet":
        return garnet(max(20, size), gamma=g)
    if name == "dense":
        return dense(2000 if size >= 2000 else max(20, size), gamma=g)
    if name == "frozenlake":
        return _gym("FrozenLake", g, map_name="8x8")
    if name == "taxi":
        return _gym("Taxi", g)
    if name == "cliffwalking":
        return _gym("CliffWalking", g)
    raise ValueError(f"unknown zoo problem {name!r}; one of {NAMES}")


def small_zoo() -> dict[str, fs.TabularMDP]:
    """Small versions (a few hundred states) for the tests."""
    return {name: build(name, 400) for name in NAMES if name not in ("taxi",)}
