"""Many copies of a tabular MDP stepped at once (:class:`gymnasium.vector.VectorEnv`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from .._jit import jit
from .._validation import check_int, check_mdp
from ..mdp import TabularMDP
from ..sampling import _as_f64, _guarded_cumsum, _terminal_mask, as_initial, row_cumsum
from .tabular import _check_render_mode, render_ansi

__all__ = ["TabularVectorEnv"]


@jit
def _step_batch(indptr, indices, cum_probs, probs, rewards, terminal, states, actions, u,
                active, out_next, out_rew, out_prob, out_done):
    """One transition of every active copy, driven by the uniforms ``u``.

    A copy at a terminal state stays there with reward 0, probability 1 and
    ``done``; otherwise its successor is the first entry of the row of
    ``(s, a)`` whose cumulative probability exceeds ``u[i]``.
    """
    A = rewards.shape[1]
    for i in range(states.shape[0]):
        if not active[i]:
            continue
        s = states[i]
        if terminal[s]:
            out_next[i] = s
            out_rew[i] = 0.0
            out_prob[i] = 1.0
            out_done[i] = True
            continue
        a = actions[i]
        row = s * A + a
        k = indptr[row]
        last = indptr[row + 1] - 1
        while k < last and u[i] >= cum_probs[k]:
            k += 1
        s2 = indices[k]
        out_next[i] = s2
        out_rew[i] = rewards[s, a]
        out_prob[i] = probs[k]
        out_done[i] = terminal[s2]


class TabularVectorEnv(VectorEnv):
    """``num_envs`` independent copies of a :class:`fastsoft.TabularMDP`, stepped with NumPy.

    Follows :class:`gymnasium.vector.VectorEnv`: ``observation_space`` and
    ``action_space`` are :class:`~gymnasium.spaces.MultiDiscrete` batches of
    ``single_observation_space = Discrete(S)`` and ``single_action_space =
    Discrete(A)``; ``step(actions)`` takes an integer array of shape
    ``(num_envs,)`` and returns ``(obs, rewards, terminations, truncations,
    infos)`` as arrays of that shape; ``infos`` holds ``"prob"`` (``P(s'|s,
    a)``, or ``P(s_0)`` after a reset) and ``"action_mask"`` (``(num_envs, A)``
    int8), each with its ``"_key"`` mask. Semantics of one copy are those of
    :class:`fastsoft.envs.TabularEnv` (expected rewards, a no-op at terminal
    states, ``ValueError`` for infeasible actions, truncation after
    ``max_episode_steps``). All randomness comes from :attr:`np_random`
    (seeded by ``reset(seed=...)``).

    Autoreset (``metadata["autoreset_mode"]``):

    * ``NEXT_STEP`` (default, gymnasium's): a copy that terminated or was
      truncated is reset by the *next* ``step`` call, which ignores its action
      and returns the new start state with reward 0 and both flags ``False``.
    * ``SAME_STEP``: the copy is reset within the same call; the returned
      observation is the new start state and ``infos["final_obs"]`` (int64,
      ``-1`` where unused, with mask ``"_final_obs"``) the state it ended in.
    * ``DISABLED``: no autoreset; reset copies with
      ``reset(options={"reset_mask": mask})``.

    Parameters
    ----------
    mdp : TabularMDP
    num_envs : int
    max_episode_steps : int, optional
    autoreset_mode : AutoresetMode or str
    render_mode : {None, "ansi"}
        ``render()`` returns a tuple of texts, one per copy.
    """

    def __init__(self, mdp: TabularMDP, num_envs: int, *, max_episode_steps: int | None = None,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
                 render_mode: str | None = None):
        self.mdp = check_mdp(mdp)
        self.num_envs = check_int(num_envs, "num_envs", low=1)
        self.max_episode_steps = check_int(max_episode_steps, "max_episode_steps", low=1,
                                           allow_none=True)
        try:
            mode = (autoreset_mode if isinstance(autoreset_mode, AutoresetMode)
                    else AutoresetMode(autoreset_mode))
        except ValueError:
            raise ValueError(
                f"autoreset_mode must be one of {[m.value for m in AutoresetMode]}, "
                f"got {autoreset_mode!r}"
            ) from None
        self.autoreset_mode = mode
        self.metadata = {"autoreset_mode": mode, "render_modes": ["ansi"], "render_fps": 4}
        self.render_mode = _check_render_mode(render_mode, ["ansi"])
        S, A = mdp.n_states, mdp.n_actions
        N = self.num_envs
        self.single_observation_space = spaces.Discrete(S)
        self.single_action_space = spaces.Discrete(A)
        self.observation_space = spaces.MultiDiscrete(np.full(N, S, dtype=np.int64))
        self.action_space = spaces.MultiDiscrete(np.full(N, A, dtype=np.int64))
        self._cum = row_cumsum(mdp)
        self._probs = _as_f64(mdp, "probs")
        self._rewards = _as_f64(mdp, "rewards")
        self._terminal = _terminal_mask(mdp)
        self._feasible = mdp.feasible
        self._mask = mdp.feasible.astype(np.int8)
        self._start = as_initial(mdp, None)
        self._start_cum = _guarded_cumsum(self._start)
        self._states = np.zeros(N, dtype=np.int64)
        self._elapsed = np.zeros(N, dtype=np.int64)
        self._needs_reset = np.zeros(N, dtype=bool)
        self._last_actions = np.full(N, -1, dtype=np.int64)
        self._started = False

    def _draw_starts(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        s = np.searchsorted(self._start_cum, self.np_random.random(n), side="right")
        return s.astype(np.int64), self._start[s]

    def _infos(self, prob: np.ndarray) -> dict[str, Any]:
        ones = np.ones(self.num_envs, dtype=bool)
        return {"prob": prob, "_prob": ones, "action_mask": self._mask[self._states],
                "_action_mask": ones.copy()}

    def reset(self, *, seed: int | list[int] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset all copies (or those of ``options["reset_mask"]``).

        ``seed`` seeds :attr:`np_random`, which drives every copy.

        Parameters
        ----------
        seed : int or None
            Seeds :attr:`np_random`.
        options : dict, optional
            ``{"reset_mask": mask}`` resets only the copies where the boolean
            ``mask`` (num_envs,) is true.

        Returns
        -------
        observations : ndarray of int64, shape (num_envs,)
        info : dict
            ``prob`` and ``action_mask`` per copy (gymnasium's vector layout).

        Examples
        --------
        >>> import fastsoft as fs
        >>> from fastsoft.envs import TabularVectorEnv
        >>> envs = TabularVectorEnv(fs.gridworld(2, 3, gamma=0.9), 2)
        >>> envs.reset(seed=0)[0]
        array([0, 0])
        """
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an integer or None, got {type(seed).__name__}")
        super().reset(seed=seed)
        mask = np.ones(self.num_envs, dtype=bool)
        if options and "reset_mask" in options:
            mask = np.asarray(options["reset_mask"])
            if mask.dtype != np.bool_ or mask.shape != (self.num_envs,):
                raise ValueError(f"options['reset_mask'] must be a bool array of shape "
                                 f"({self.num_envs},), got {mask.dtype} {mask.shape}")
            if not self._started and not mask.all():
                raise ValueError("the first reset must reset every copy")
        prob = np.ones(self.num_envs)
        s, p = self._draw_starts(int(mask.sum()))
        self._states[mask] = s
        prob[mask] = p
        if self._started:
            prob[~mask] = np.nan
        self._elapsed[mask] = 0
        self._needs_reset[mask] = False
        self._last_actions[mask] = -1
        self._started = True
        infos = self._infos(prob)
        infos["_prob"] = mask.copy()
        return self._states.copy(), infos

    def _check_actions(self, actions, active) -> np.ndarray:
        a = np.asarray(actions)
        if a.shape != (self.num_envs,):
            raise ValueError(f"actions must have shape ({self.num_envs},), got {a.shape}")
        if not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"actions must be integers, got dtype {a.dtype}")
        a = a.astype(np.int64)
        bad = active & ((a < 0) | (a >= self.mdp.n_actions))
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"actions[{i}] = {a[i]} out of range [0, {self.mdp.n_actions})")
        a = np.where(active, a, 0)
        bad = active & ~self._feasible[self._states, a]
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"actions[{i}] = {a[i]} is infeasible in state "
                             f"{self._states[i]} (reward -inf) of copy {i}")
        return a

    def step(self, actions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                     dict[str, Any]]:
        """Step every copy; see the class docstring for autoreset.

        Parameters
        ----------
        actions : array of int, shape (num_envs,)
            One feasible action per copy.

        Returns
        -------
        observations : ndarray of int64, shape (num_envs,)
        rewards : ndarray of float64, shape (num_envs,)
        terminations, truncations : ndarray of bool, shape (num_envs,)
        info : dict
            ``prob`` and ``action_mask`` per copy.

        Examples
        --------
        >>> import numpy as np
        >>> import fastsoft as fs
        >>> from fastsoft.envs import TabularVectorEnv
        >>> envs = TabularVectorEnv(fs.gridworld(2, 3, gamma=0.9), 2)
        >>> _ = envs.reset(seed=0)
        >>> envs.step(np.array([3, 1]))[0]   # right, down
        array([1, 3])
        """
        if not self._started:
            raise RuntimeError("call reset() before step()")
        N = self.num_envs
        mode = self.autoreset_mode
        if mode == AutoresetMode.NEXT_STEP:
            active = ~self._needs_reset
        elif mode == AutoresetMode.DISABLED:
            if self._needs_reset.any():
                i = int(np.argmax(self._needs_reset))
                raise RuntimeError(f"copy {i} has ended: reset it with "
                                   "reset(options={'reset_mask': ...}) (autoreset is disabled)")
            active = np.ones(N, dtype=bool)
        else:
            active = np.ones(N, dtype=bool)
        a = self._check_actions(actions, active)
        u = self.np_random.random(N)
        nxt = self._states.copy()
        rew = np.zeros(N)
        prob = np.ones(N)
        term = np.zeros(N, dtype=bool)
        _step_batch(self.mdp.indptr, self.mdp.indices, self._cum, self._probs, self._rewards,
                    self._terminal, self._states, a, u, active, nxt, rew, prob, term)
        self._elapsed[active] += 1
        self._last_actions[active] = a[active]
        if self.max_episode_steps is None:
            trunc = np.zeros(N, dtype=bool)
        else:
            trunc = active & (self._elapsed >= self.max_episode_steps)
        self._states = nxt
        infos: dict[str, Any] = {}
        ended = term | trunc
        if mode == AutoresetMode.NEXT_STEP:
            resetting = ~active
            if resetting.any():
                s, p = self._draw_starts(int(resetting.sum()))
                self._states[resetting] = s
                prob[resetting] = p
                self._elapsed[resetting] = 0
                self._last_actions[resetting] = -1
            self._needs_reset = ended
        elif mode == AutoresetMode.SAME_STEP:
            final = np.full(N, -1, dtype=np.int64)
            final[ended] = nxt[ended]
            if ended.any():
                s, p = self._draw_starts(int(ended.sum()))
                self._states[ended] = s
                prob[ended] = p
                self._elapsed[ended] = 0
            infos["final_obs"] = final
            infos["_final_obs"] = ended.copy()
        else:
            self._needs_reset = ended
        infos.update(self._infos(prob))
        return self._states.copy(), rew, term, trunc, infos

    def render(self) -> tuple[str, ...] | None:
        """One ANSI text per copy (``render_mode="ansi"``), else ``None``.

        Returns
        -------
        tuple of str, or None

        Examples
        --------
        >>> import fastsoft as fs
        >>> from fastsoft.envs import TabularVectorEnv
        >>> envs = TabularVectorEnv(fs.gridworld(2, 3, gamma=0.9), 2, render_mode="ansi")
        >>> _ = envs.reset(seed=0)
        >>> len(envs.render())
        2
        """
        if self.render_mode is None:
            return None
        return tuple(
            render_ansi(self.mdp, int(s), None if la < 0 else int(la), int(t))
            for s, la, t in zip(self._states, self._last_actions, self._elapsed, strict=True)
        )

    def __repr__(self) -> str:
        return f"TabularVectorEnv({self.mdp!r}, num_envs={self.num_envs})"
