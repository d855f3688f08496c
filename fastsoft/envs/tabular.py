"""A :class:`gymnasium.Env` over a :class:`fastsoft.TabularMDP`."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .._validation import check_int, check_mdp
from ..mdp import TabularMDP
from ..sampling import _guarded_cumsum, _terminal_mask, as_initial, row_cumsum
from .render import GridRenderer, rendering_available

__all__ = ["TabularEnv", "render_ansi"]


def _check_render_mode(render_mode, modes) -> str | None:
    if render_mode is not None and render_mode not in modes:
        raise ValueError(f"render_mode must be None or one of {list(modes)}, got {render_mode!r}")
    return render_mode


def _action_names(mdp: TabularMDP) -> tuple[str, ...] | None:
    names = mdp.info.get("actions")
    if names is not None and len(names) == mdp.n_actions:
        return tuple(str(n) for n in names)
    return None


def render_ansi(mdp: TabularMDP, state: int | None, last_action: int | None = None,
                elapsed: int = 0) -> str:
    """Text picture of a state.

    Gridworlds (``mdp.info["grid"] = (rows, cols)``, state ``r * cols + c``):
    one line per row with ``#`` walls, ``G`` goals, ``S`` start cells,
    ``.`` free cells and ``A`` the agent, preceded by the last action. Other
    MDPs: one line ``state s/S  step t``.

    Parameters
    ----------
    mdp : TabularMDP
        The MDP (its ``info`` gives the grid layout, if any).
    state : int or None
        The agent's state (``None``: not placed yet).
    last_action : int or None
        Shown above a grid.
    elapsed : int
        Steps taken (shown for MDPs without a grid).

    Returns
    -------
    str

    Examples
    --------
    >>> import fastsoft as fs
    >>> from fastsoft.envs import render_ansi
    >>> print(render_ansi(fs.gridworld(2, 3, gamma=0.9), 0).strip())
    A..
    ..G
    """
    names = _action_names(mdp)
    head = ""
    if last_action is not None:
        head = f"  ({names[last_action] if names else f'action {last_action}'})"
    grid = mdp.info.get("grid")
    if grid is None or mdp.info.get("grid_index") is not None:
        return f"{head}\nstate {state}/{mdp.n_states}  step {elapsed}\n"
    rows, cols = grid
    cells = [["."] * cols for _ in range(rows)]
    if mdp.initial is not None:
        for s in np.flatnonzero(np.asarray(mdp.initial) > 0):
            if s < rows * cols:
                cells[s // cols][s % cols] = "S"
    for r, c in mdp.info.get("walls", ()):
        cells[r][c] = "#"
    for r, c in mdp.info.get("goals", ()):
        cells[r][c] = "G"
    if state is not None and 0 <= state < rows * cols:
        cells[state // cols][state % cols] = "A"
    return head + "\n" + "\n".join("".join(line) for line in cells) + "\n"


def _check_action(action, n_actions: int) -> int:
    if isinstance(action, (int, np.integer)) and not isinstance(action, (bool, np.bool_)):
        a = int(action)
    else:
        arr = np.asarray(action)
        if arr.shape != () or not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"action must be an integer, got {action!r}")
        a = int(arr)
    if not 0 <= a < n_actions:
        raise ValueError(f"action {a} out of range [0, {n_actions})")
    return a


class TabularEnv(gym.Env[int, int]):
    """A gymnasium environment that steps a :class:`fastsoft.TabularMDP`.

    Observations and actions are :class:`gymnasium.spaces.Discrete` (states
    ``0..S-1``, actions ``0..A-1``).

    * ``reset(seed=..., options=None)`` draws the start state from the MDP's
      initial distribution (uniform over non-terminal states when it has none);
      ``options={"state": s}`` starts in ``s``. ``info = {"prob": P(s_0),
      "action_mask": int8 (A,)}``.
    * ``step(a)`` samples ``s' ~ P(.|s, a)`` with :attr:`np_random` and returns
      ``(s', R(s, a), terminated, truncated, info)``: the reward is the MDP's
      expected reward ``R(s, a)``; ``terminated`` when ``s'`` is terminal;
      ``truncated`` once ``max_episode_steps`` steps have been taken (as
      :class:`gymnasium.wrappers.TimeLimit` does); ``info = {"prob": P(s'|s,a),
      "action_mask": ...}`` with the mask of the new state.
    * Stepping from a terminal state (after termination, or when the episode
      started in one) is a no-op: same state, reward 0, ``terminated=True``.
    * **Infeasible actions** (``R(s, a) = -inf``) raise ``ValueError``: they
      have no meaningful outcome and remapping them would corrupt returns.
      ``info["action_mask"]`` (1 = feasible) lets agents avoid them, e.g.
      ``env.action_space.sample(mask=info["action_mask"])``. Every MDP built
      by the generators has only feasible actions, so random-action tools
      such as :func:`gymnasium.utils.env_checker.check_env` work there.

    For :meth:`fastsoft.TabularMDP.from_gymnasium` the environment exposes the
    toy-text transition table :attr:`P` (built on first access) and
    :attr:`initial_state_distrib`; ``from_gymnasium(TabularEnv(mdp), mdp.gamma,
    dtype=mdp.dtype)`` gives back ``mdp`` (rewards up to the rounding of
    ``sum_k p_k R``) whenever the terminal states' rows are zero-reward
    self-loops, as in every generator.

    Parameters
    ----------
    mdp : TabularMDP
    max_episode_steps : int, optional
        Truncate episodes after this many steps.
    render_mode : {None, "ansi", "rgb_array", "human"}
        ``"ansi"``: :meth:`render` returns a text picture (a grid for
        gridworlds); ``"rgb_array"``: a uint8 ``(height, width, 3)`` picture
        (cells, walls, holes, goals and the agent); ``"human"``: the same
        picture in a matplotlib window, shown at each step (off screen, with
        a warning, when no display is available). The two pictures need
        matplotlib (the ``plot`` extra) and are offered only when it is installed.

    Attributes
    ----------
    mdp : TabularMDP
    s : int or None
        Current state (``None`` before the first reset).
    lastaction : int or None
    elapsed_steps : int
    """

    metadata = {"render_modes": ["ansi"] + (["rgb_array", "human"] if rendering_available()
                                            else []),
                "render_fps": 4}

    def __init__(self, mdp: TabularMDP, *, max_episode_steps: int | None = None,
                 render_mode: str | None = None):
        self.mdp = check_mdp(mdp)
        self.max_episode_steps = check_int(max_episode_steps, "max_episode_steps", low=1,
                                           allow_none=True)
        self.render_mode = _check_render_mode(render_mode, self.metadata["render_modes"])
        S, A = mdp.n_states, mdp.n_actions
        # Discrete(n) is a Space[np.int64]; observations are returned as Python ints
        self.observation_space = spaces.Discrete(S)  # type: ignore[assignment]
        self.action_space = spaces.Discrete(A)  # type: ignore[assignment]
        self._n_actions = A
        self._indptr = mdp.indptr
        self._indices = mdp.indices
        self._probs = mdp.probs
        self._cum = row_cumsum(mdp)
        self._rewards = np.asarray(mdp.rewards, dtype=np.float64)
        self._terminal = _terminal_mask(mdp)
        self._feasible = mdp.feasible
        self._mask = mdp.feasible.astype(np.int8)
        self._start = as_initial(mdp, None)
        self._start_cum = _guarded_cumsum(self._start)
        self._P: dict | None = None
        self._renderer: GridRenderer | None = None
        self.s: int | None = None
        self.lastaction: int | None = None
        self.elapsed_steps = 0

    # ------------------------------------------------------------ toy-text view
    @property
    def P(self) -> dict[int, dict[int, list[tuple[float, int, float, bool]]]]:
        """Toy-text transition table ``P[s][a] = [(prob, next_state, reward, terminated)]``.

        It describes :meth:`step`: for a non-terminal ``s`` the rows of the
        MDP with reward ``R(s, a)`` and ``terminated = terminal[s']``; for a
        terminal ``s`` a self-loop ``(1.0, s, 0.0, True)``. Infeasible actions
        carry reward ``-inf`` (their row, or a self-loop when it is empty).
        The probabilities of float32 MDPs are renormalized in float64.
        """
        if self._P is None:
            S, A = self.mdp.n_states, self._n_actions
            indptr = self._indptr.tolist()
            indices = self._indices.tolist()
            p64 = np.asarray(self._probs, dtype=np.float64)
            if self._probs.dtype != np.float64:
                # float32 rows sum to 1 only within ~1e-7: renormalize in float64
                rows = np.repeat(np.arange(S * A), np.diff(self._indptr))
                sums = np.bincount(rows, weights=p64, minlength=S * A)
                p64 = p64 / sums[rows]
            probs = p64.tolist()
            rewards = self._rewards.tolist()
            term = self._terminal.tolist()
            feas = self._feasible.tolist()
            P: dict[int, dict[int, list]] = {}
            for s in range(S):
                Ps = {}
                for a in range(A):
                    if term[s]:
                        Ps[a] = [(1.0, s, 0.0 if feas[s][a] else -np.inf, True)]
                        continue
                    lo, hi = indptr[s * A + a], indptr[s * A + a + 1]
                    r = rewards[s][a]
                    if hi > lo:
                        Ps[a] = [(probs[k], indices[k], r, term[indices[k]])
                                 for k in range(lo, hi)]
                    else:
                        Ps[a] = [(1.0, s, r, False)]
                P[s] = Ps
            self._P = P
        return self._P

    @property
    def initial_state_distrib(self) -> np.ndarray | None:
        """The MDP's initial distribution (``None`` when it has none)."""
        return None if self.mdp.initial is None else np.array(self.mdp.initial)

    # ------------------------------------------------------------ gymnasium API
    def _info(self, s: int, prob: float) -> dict[str, Any]:
        return {"prob": prob, "action_mask": self._mask[s].copy()}

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """Start an episode; see the class docstring.

        Parameters
        ----------
        seed : int or None
            Seeds :attr:`np_random`, which draws the start state and every
            transition.
        options : dict, optional
            ``{"state": s}`` starts in state ``s`` instead of a draw from
            ``mdp.initial``.

        Returns
        -------
        observation : int
            The start state.
        info : dict
            ``prob`` (probability of the start state) and ``action_mask``
            (1 for feasible actions).

        Examples
        --------
        >>> import fastsoft as fs
        >>> from fastsoft.envs import TabularEnv
        >>> env = TabularEnv(fs.gridworld(2, 3, gamma=0.9))
        >>> env.reset(seed=0)[0]
        0
        """
        super().reset(seed=seed)
        if options and options.get("state") is not None:
            s = options["state"]
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
                raise TypeError(f"options['state'] must be an integer, got {s!r}")
            s = int(s)
            if not 0 <= s < self.mdp.n_states:
                raise ValueError(f"options['state'] = {s} out of range [0, {self.mdp.n_states})")
            prob = 1.0
        else:
            s = int(np.searchsorted(self._start_cum, self.np_random.random(), side="right"))
            prob = float(self._start[s])
        self.s = s
        self.lastaction = None
        self.elapsed_steps = 0
        if self.render_mode == "human":
            self.render()
        return s, self._info(s, prob)

    def step(self, action) -> tuple[int, float, bool, bool, dict[str, Any]]:
        """Take one step; see the class docstring.

        Parameters
        ----------
        action : int
            A feasible action of the current state.

        Returns
        -------
        observation : int
            The next state.
        reward : float
            ``R(s, a)`` (the expected reward of the pair).
        terminated : bool
            Whether the next state is terminal.
        truncated : bool
            Whether ``max_episode_steps`` was reached.
        info : dict
            ``prob`` (probability of the transition) and ``action_mask`` of the
            next state.

        Examples
        --------
        >>> import fastsoft as fs
        >>> from fastsoft.envs import TabularEnv
        >>> env = TabularEnv(fs.gridworld(2, 3, gamma=0.9))
        >>> _ = env.reset(seed=0)
        >>> env.step(3)[:4]   # right
        (1, -1.0, False, False)
        """
        if self.s is None:
            raise RuntimeError("call reset() before step()")
        a = _check_action(action, self._n_actions)
        s = self.s
        if not self._feasible[s, a]:
            raise ValueError(
                f"action {a} is infeasible in state {s} (reward -inf); "
                "info['action_mask'] marks the feasible actions"
            )
        self.elapsed_steps += 1
        self.lastaction = a
        truncated = (self.max_episode_steps is not None
                     and self.elapsed_steps >= self.max_episode_steps)
        if self._terminal[s]:
            return s, 0.0, True, truncated, self._info(s, 1.0)
        row = s * self._n_actions + a
        lo = int(self._indptr[row])
        hi = int(self._indptr[row + 1])
        k = lo + int(np.searchsorted(self._cum[lo:hi - 1], self.np_random.random(),
                                     side="right"))
        s2 = int(self._indices[k])
        self.s = s2
        if self.render_mode == "human":
            self.render()
        return (s2, float(self._rewards[s, a]), bool(self._terminal[s2]), truncated,
                self._info(s2, float(self._probs[k])))

    def render(self) -> str | np.ndarray | None:
        """The current state as text, a picture or in a window.

        Returns
        -------
        str, ndarray or None
            Text for ``render_mode="ansi"``, an RGB image (H, W, 3) for
            ``"rgb_array"``; ``None`` for ``"human"`` (drawn in a window) and
            without a render mode.

        Examples
        --------
        >>> import fastsoft as fs
        >>> from fastsoft.envs import TabularEnv
        >>> env = TabularEnv(fs.gridworld(2, 3, gamma=0.9), render_mode="ansi")
        >>> _ = env.reset(seed=0)
        >>> print(env.render().strip())
        A..
        ..G
        """
        if self.render_mode is None:
            gym.logger.warn(
                "You are calling render method without specifying any render mode; "
                f"create the environment with render_mode in {self.metadata['render_modes']}"
            )
            return None
        if self.render_mode == "ansi":
            return render_ansi(self.mdp, self.s, self.lastaction, self.elapsed_steps)
        if self._renderer is None:
            self._renderer = GridRenderer(self.mdp, human=self.render_mode == "human",
                                          fps=self.metadata["render_fps"])
        if self.render_mode == "rgb_array":
            return self._renderer.rgb_array(self.s)
        self._renderer.show(self.s)
        return None

    def close(self) -> None:
        """Close the render window or figure, if any."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        super().close()

    def __repr__(self) -> str:
        return f"TabularEnv({self.mdp!r}, max_episode_steps={self.max_episode_steps})"
