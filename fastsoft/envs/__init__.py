"""Gymnasium environments over fastsoft MDPs.

* :class:`TabularEnv`: a :class:`gymnasium.Env` stepping one copy of a
  :class:`fastsoft.TabularMDP`.
* :class:`TabularVectorEnv`: a :class:`gymnasium.vector.VectorEnv` stepping
  many copies at once with NumPy arrays and a Numba kernel.

Importing this module registers ``fastsoft/GridWorld-v0``,
``fastsoft/RandomMDP-v0``, ``fastsoft/MattarDawMaze-v0`` and
``fastsoft/HuysPlanning-v0`` (see :mod:`fastsoft.envs.registration`), so
``gym.make("fastsoft/GridWorld-v0", rows=10, cols=10, slip=0.1)`` works after
``import fastsoft.envs`` (or use the id ``"fastsoft.envs:fastsoft/GridWorld-v0"``).
"""

from .registration import ENV_IDS, register_envs
from .tabular import TabularEnv, render_ansi
from .vector import TabularVectorEnv

__all__ = ["ENV_IDS", "TabularEnv", "TabularVectorEnv", "register_envs", "render_ansi"]

register_envs()
