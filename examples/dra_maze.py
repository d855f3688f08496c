"""DRA on the Mattar & Daw maze (Patel, Acerbi & Pouget 2020, docs/theory.md §6.7), as text.

Reproduces the paper's qualitative result with its hyperparameters (beta 10,
lam 0.1, sigma_base 5, sigma0 3, gamma 0.9, alpha_q = alpha_sigma = 0.1,
10 gradient rollouts, 5000 episodes, 5 runs): the memories along the route to
the goal become precise (sigma far below sigma_base), those off the route stay
near sigma_base, and the objective rises and settles. Then compares the
baselines fitted to the same objective, and shows the environment switch.
Runs in a few seconds::

    python examples/dra_maze.py
"""

from __future__ import annotations

import time

import numpy as np

import fastsoft as fs
from fastsoft import dra

ROWS, COLS = 6, 9


def grid(values, maze, fmt="{:5.2f}") -> str:
    """A 6 x 9 map: walls ``#####``, the goal ``GOAL``, the start marked with ``*``."""
    walls = {r * COLS + c for r, c in maze.info["walls"]}
    goals = {r * COLS + c for r, c in maze.info["goals"]}
    start = int(np.argmax(maze.initial))
    lines = []
    for r in range(ROWS):
        cells = []
        for c in range(COLS):
            s = r * COLS + c
            if s in walls:
                cells.append("  ### ")
            elif s in goals:
                cells.append("  GOAL")
            else:
                cells.append(("*" if s == start else " ") + fmt.format(values[s]))
        lines.append(" ".join(cells))
    return "\n".join(lines)


def main() -> None:
    maze = fs.mattar_daw_maze()
    t = time.perf_counter()
    res = dra.train(maze, **dra.MAZE_PARAMS, n_runs=5, seed=2020, eval_every=500, n_eval=500)
    elapsed = time.perf_counter() - t
    print(f"DRA, Mattar & Daw maze, 5 runs x 5000 episodes: {elapsed:.1f} s, "
          f"{res.n_steps.sum() / 1e6:.1f} M environment steps")
    print(f"final: reward {res.final_reward:.2f}, cost {res.final_cost:.2f}, "
          f"objective {res.final_objective:.2f}\n")

    h = res.history
    print("episode   reward    cost  objective   (mean over runs)")
    for k, ep in enumerate(h.episode):
        print(f"{ep:7d} {h.reward[:, k].mean():8.2f} {h.cost[:, k].mean():7.2f} "
              f"{h.objective[:, k].mean():10.2f}")

    print("\nmemory noise sigma, mean over actions and runs (sigma_base = 5, * = start):")
    print(grid(res.sigma.mean(axis=(0, 2)), maze))
    print("\nchoice entropy (nats; log 4 = 1.39 is a uniform choice):")
    print(grid(h.state_entropy[:, -1].mean(axis=0), maze))  # NaN at walls and goal
    print("\ndecisions per learning episode:")
    print(grid(res.state_visits.mean(axis=0) / 5000, maze))

    # The baselines ascend the same objective through one shared scalar whose gradient is
    # the sum over the memories: its step size is alpha_sigma / (number of memories).
    n_mem = int(res.memories.sum())
    alpha = dra.MAZE_PARAMS["alpha_sigma"] / n_mem
    print(f"\nbaselines fitted to the same objective (alpha_sigma = 0.1 / {n_mem} memories; "
          f"final, mean over 5 runs):")
    print("allocation   reward    cost  objective  sigma_scalar")
    print(f"{'dra':10s} {res.final_reward:8.2f} {res.final_cost:7.2f} "
          f"{res.final_objective:10.2f}")
    for alloc in ("equal", "frequency", "stakes"):
        b = dra.train(maze, **{**dra.MAZE_PARAMS, "alpha_sigma": alpha}, allocation=alloc,
                      n_runs=5, seed=2020, n_eval=500)
        print(f"{alloc:10s} {b.final_reward:8.2f} {b.final_cost:7.2f} "
              f"{b.final_objective:10.2f} {np.mean(b.sigma_scalar):13.2f}")

    sw = dra.train(maze, **{**dra.MAZE_PARAMS, "n_episodes": 6000}, switch_episode=3000,
                   n_runs=5, seed=2020, eval_every=1000, n_eval=500)
    print("\nenvironment switch after 3000 episodes (obstacle (0, 7) removed, goal (0, 6)):")
    print("episode " + " ".join(f"{e:7d}" for e in sw.history.episode))
    print("reward  " + " ".join(f"{x:7.2f}" for x in sw.history.reward.mean(axis=0)))
    print("sigma after the switch:")
    print(grid(sw.sigma.mean(axis=(0, 2)), fs.mattar_daw_maze(switch=True)))


if __name__ == "__main__":
    main()
