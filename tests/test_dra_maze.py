"""The paper's qualitative result on the Mattar & Daw maze, with its hyperparameters.

5000 episodes x 5 runs (about 1.5 s with the kernels on two threads).
"""

from collections import deque

import numpy as np
import pytest

import fastsoft as fs
from fastsoft import dra
from fastsoft.generators import GRID_ACTIONS

ROWS, COLS = 6, 9


@pytest.fixture(scope="module")
def run():
    maze = fs.mattar_daw_maze()
    r = dra.train(maze, **dra.MAZE_PARAMS, n_runs=5, seed=2020, eval_every=250, n_eval=200)
    return maze, r


def greedy_route(maze, qbar):
    """States visited by the greedy policy of ``qbar`` from the start to the goal."""
    s = int(np.argmax(maze.initial))
    route = [s]
    while not maze.terminal[s] and len(route) < 40:
        a = int(np.argmax(qbar[s]))
        s = int(maze.indices[maze.indptr[s * 4 + a]])
        route.append(s)
    return route


def distance_to(maze, sources):
    """Grid distance (moves between open cells) of every state to ``sources``."""
    walls = {r * COLS + c for r, c in maze.info["walls"]}
    dist = np.full(maze.n_states, np.inf)
    queue = deque(sources)
    for s in sources:
        dist[s] = 0
    while queue:
        s = queue.popleft()
        r, c = divmod(s, COLS)
        for _, dr, dc in GRID_ACTIONS:
            r2, c2 = r + dr, c + dc
            s2 = r2 * COLS + c2
            if 0 <= r2 < ROWS and 0 <= c2 < COLS and s2 not in walls and dist[s2] == np.inf:
                dist[s2] = dist[s] + 1
                queue.append(s2)
    return dist


def test_maze_memory_allocation(run):
    maze, r = run
    h = r.history
    print(f"\nmaze, paper hyperparameters, 5000 episodes x 5 runs: final reward "
          f"{r.final_reward:.2f}, cost {r.final_cost:.2f}, objective {r.final_objective:.2f}")
    sb = 5.0
    ent = h.state_entropy[:, -1]
    # extra moves of every action: how much each choice matters
    to_goal = distance_to(maze, [8])
    successor = maze.indices.reshape(maze.n_states, 4)
    for i in range(r.n_runs):  # each run finds its own route
        qbar, sigma = r.qbar[i], r.sigma[i]
        route = greedy_route(maze, qbar)
        assert route[-1] == 8  # the greedy route reaches the goal (0, 8)
        assert len(route) - 1 <= 20  # shortest path: 14 moves
        dec = route[:-1]  # decision states along the route
        # per state, the mean over actions (the paper's maps): far below sigma_base along
        # the route, except near the start, where down and right tie (both shortest) and
        # DRA sharpens the bad actions' memories rather than the tied ones
        along = sigma[dec].mean(axis=1)
        assert np.median(along) < 0.3 * sb, along
        assert np.mean(along < 0.5 * sb) >= 0.75, along
        # where a single move is shortest, that move's memory is mostly precise
        extra = np.array([to_goal[successor[s]] - to_goal[s] + 1 for s in dec])
        unique = np.flatnonzero((extra == 0).sum(axis=1) == 1)
        assert len(unique) >= 8
        best = np.array([sigma[dec[k], np.argmin(extra[k])] for k in unique])
        assert np.median(best) < 0.2 * sb and best.mean() < 0.3 * sb, best
        # off the route (open cells at least 2 moves from it): near sigma_base
        dist = distance_to(maze, route)
        off = np.flatnonzero((dist >= 2) & np.isfinite(dist) & ~maze.terminal)
        assert len(off) >= 10
        off_sigma = sigma[off].mean(axis=1)
        assert abs(off_sigma.mean() - sb) < 0.1 * sb, off_sigma
        assert np.all(np.abs(off_sigma - sb) < 0.3 * sb), off_sigma
        # choice entropy: low on the route, high off it
        assert ent[i, dec].mean() < 0.5 * ent[i, off].mean()


def test_maze_objective_rises_and_settles(run):
    maze, r = run
    h = r.history
    obj = h.objective.mean(axis=0)
    late = h.episode >= 3000
    settled = obj[late].mean()
    print("objective at episodes", dict(zip(h.episode.tolist(), np.round(obj, 2).tolist(),
                                            strict=True)))
    assert settled - obj[0] > 10.0  # rises (from -32 after 250 episodes to about -14)
    assert np.all(np.abs(obj[late] - settled) < 1.5)  # settles
    # the agent learns the task: near-shortest paths (14 moves: return -3) in the last episodes
    assert r.returns[:, -1000:].mean() > -10.0
    assert np.all(h.reward[:, -1] > -12.0)
    assert np.all(h.cost[:, -1] > 0)
