"""Gymnasium registrations of fastsoft's tasks (ids under the ``fastsoft/`` namespace).

``import fastsoft.envs`` registers:

=============================  =======================================  =================
id                             MDP (keyword arguments go to)            max_episode_steps
=============================  =======================================  =================
``fastsoft/GridWorld-v0``      :func:`fastsoft.gridworld` (rows=5,      500
                               cols=5 by default)
``fastsoft/RandomMDP-v0``      :func:`fastsoft.random_mdp` (n_states=   100
                               16, n_actions=4, n_successors=3,
                               gamma=0.99, seed=0 by default)
``fastsoft/MattarDawMaze-v0``  :func:`fastsoft.mattar_daw_maze`         1000
``fastsoft/HuysPlanning-v0``   :func:`fastsoft.huys_planning_task`      100 (episodes end at
                                                                        the depth, <= 6 steps)
=============================  =======================================  =================

Every id has a ``max_episode_steps`` (gymnasium's ``TimeLimit``), so random
agents always finish; pass ``max_episode_steps=...`` to ``gym.make`` for
larger grids.

e.g. ``gym.make("fastsoft/GridWorld-v0", rows=10, cols=10, slip=0.1)``. The
``seed`` keyword of ``RandomMDP-v0`` fixes the MDP; the episode randomness is
seeded by ``reset(seed=...)``. Each id also has a vector entry point, so
``gym.make_vec(id, num_envs=N)`` builds a :class:`~fastsoft.envs.TabularVectorEnv`.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym

from ..generators import gridworld, huys_planning_task, mattar_daw_maze, random_mdp
from ..mdp import TabularMDP
from .tabular import TabularEnv
from .vector import TabularVectorEnv

__all__ = ["ENV_IDS", "register_envs"]


def _gridworld(rows: int = 5, cols: int = 5, **kwargs):
    return gridworld(rows, cols, **kwargs)


def _random_mdp(n_states: int = 16, n_actions: int = 4, n_successors: int = 3, *,
                gamma: float = 0.99, seed=0, **kwargs):
    return random_mdp(n_states, n_actions, n_successors, gamma=gamma, seed=seed, **kwargs)


_BUILDERS: dict[str, Callable[..., TabularMDP]] = {
    "GridWorld": _gridworld,
    "RandomMDP": _random_mdp,
    "MattarDawMaze": mattar_daw_maze,
    "HuysPlanning": huys_planning_task,
}
_MAX_STEPS = {"GridWorld": 500, "RandomMDP": 100, "MattarDawMaze": 1000, "HuysPlanning": 100}

#: The registered ids.
ENV_IDS = tuple(f"fastsoft/{name}-v0" for name in _BUILDERS)


def _env_entry(name: str):
    builder = _BUILDERS[name]

    def make_env(*, render_mode=None, max_episode_steps=None, **kwargs) -> TabularEnv:
        return TabularEnv(builder(**kwargs), render_mode=render_mode,
                          max_episode_steps=max_episode_steps)

    make_env.__name__ = f"make_{name}"
    make_env.__doc__ = (f"Entry point of fastsoft/{name}-v0: "
                        f"TabularEnv({builder.__name__}(**kwargs)).")
    return make_env


def _vector_entry(name: str):
    builder = _BUILDERS[name]

    def make_vector_env(num_envs: int = 1, *, render_mode=None, max_episode_steps=None,
                        autoreset_mode=None, **kwargs) -> TabularVectorEnv:
        extra = {} if autoreset_mode is None else {"autoreset_mode": autoreset_mode}
        return TabularVectorEnv(builder(**kwargs), num_envs, render_mode=render_mode,
                                max_episode_steps=max_episode_steps, **extra)

    make_vector_env.__name__ = f"make_{name}_vector"
    make_vector_env.__doc__ = (f"Vector entry point of fastsoft/{name}-v0: "
                               f"TabularVectorEnv({builder.__name__}(**kwargs), num_envs).")
    return make_vector_env


def register_envs() -> None:
    """Register the ids of :data:`ENV_IDS` with gymnasium (idempotent).

    ``import fastsoft.envs`` calls it.

    Returns
    -------
    None

    Examples
    --------
    >>> import gymnasium as gym
    >>> from fastsoft.envs import register_envs
    >>> register_envs()
    >>> gym.make("fastsoft/GridWorld-v0", rows=3, cols=3).unwrapped.mdp.n_states
    9
    """
    for name in _BUILDERS:
        env_id = f"fastsoft/{name}-v0"
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point=_env_entry(name),
            vector_entry_point=_vector_entry(name),
            max_episode_steps=_MAX_STEPS[name],
        )
