"""Grid layouts of gymnasium's toy-text environments, for plots and rendering.

:meth:`fastsoft.TabularMDP.from_gymnasium` calls :func:`toy_text_layout` and
stores what it returns in ``mdp.info``, so :func:`fastsoft.plot.value_heatmap`
and the grid renderers work on these MDPs straight from the API:

- FrozenLake: ``grid`` (rows, cols), ``holes`` and ``goals`` (cells), ``actions``
  (left, down, right, up);
- CliffWalking: ``grid`` (4, 12), ``cliff`` and ``goals`` cells, ``actions``
  (up, right, down, left);
- Taxi: ``grid`` (5, 5) with ``grid_index`` (20, 5, 5): the state of each taxi
  cell for each of the 20 (passenger location, destination) configurations,
  ``layer_names``, ``layer_goals`` (the destination cell of each layer) and
  ``actions`` (south, north, east, west, pickup, dropoff). Taxi's walls lie
  between cells and are not drawn.

Keys follow the conventions of :func:`fastsoft.gridworld` (state ``r * cols + c``
unless ``grid_index`` says otherwise).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["toy_text_layout"]


def _cells(mask: np.ndarray) -> tuple[tuple[int, int], ...]:
    return tuple((int(r), int(c)) for r, c in np.argwhere(mask))


def toy_text_layout(env, n_states: int) -> dict[str, Any]:
    """``mdp.info`` entries describing the grid of a toy-text environment.

    Parameters
    ----------
    env : gymnasium.Env
        FrozenLake, CliffWalking or Taxi (wrapped or not); anything else gives ``{}``.
    n_states : int
        States of the MDP built from it (a layout that does not fit is dropped).

    Returns
    -------
    dict
        Empty when the environment has no known layout.

    Examples
    --------
    >>> import gymnasium as gym
    >>> sorted(toy_text_layout(gym.make("FrozenLake-v1"), 16))
    ['actions', 'goals', 'grid', 'holes']
    """
    u = getattr(env, "unwrapped", env)
    name = type(u).__name__
    if name == "TaxiEnv" and getattr(u, "locs", None) is not None:
        return _taxi(u, n_states)
    if name == "CliffWalkingEnv" and getattr(u, "shape", None) is not None:
        rows, cols = (int(x) for x in u.shape)
        if rows * cols != n_states:
            return {}
        cliff = np.asarray(getattr(u, "_cliff", np.zeros((rows, cols), bool)), dtype=bool)
        return {"grid": (rows, cols), "cliff": _cells(cliff), "goals": ((rows - 1, cols - 1),),
                "actions": ("up", "right", "down", "left")}
    desc = getattr(u, "desc", None)
    if desc is not None and np.ndim(desc) == 2 and np.size(desc) == n_states:
        d = np.asarray(desc)
        rows, cols = d.shape
        out: dict[str, Any] = {"grid": (int(rows), int(cols)), "holes": _cells(d == b"H"),
                               "goals": _cells(d == b"G")}
        if getattr(u.action_space, "n", None) == 4:
            out["actions"] = ("left", "down", "right", "up")
        return out
    return {}


def _taxi(u, n_states: int) -> dict[str, Any]:
    locs = [tuple(int(x) for x in loc) for loc in u.locs]
    rows, cols = 5, 5
    n_pass, n_dest = len(locs) + 1, len(locs)  # passenger: at a location or in the taxi
    if rows * cols * n_pass * n_dest > n_states:
        return {}
    names = "RGYB" if len(locs) == 4 else [str(i) for i in range(len(locs))]
    index = np.empty((n_pass * n_dest, rows, cols), dtype=np.int64)
    layer_names, layer_goals = [], []
    for p in range(n_pass):
        for d in range(n_dest):
            layer = p * n_dest + d
            for r in range(rows):
                for c in range(cols):
                    index[layer, r, c] = ((r * cols + c) * n_pass + p) * n_dest + d
            where = "in the taxi" if p == len(locs) else f"at {names[p]}"
            layer_names.append(f"passenger {where}, destination {names[d]}")
            layer_goals.append((locs[d],))
    return {"grid": (rows, cols), "grid_index": index, "layer_names": tuple(layer_names),
            "layer_goals": tuple(layer_goals),
            "actions": ("south", "north", "east", "west", "pickup", "dropoff")}
