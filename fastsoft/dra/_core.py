"""Public layer of :mod:`fastsoft.dra`: validation, dtype conversion, random streams."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import Any, Literal, cast

import numpy as np
import scipy.sparse as sp
from numba.typed import List as NumbaList
from numpy.typing import ArrayLike
from scipy.sparse import csgraph

from .._bundles import memo
from ..mdp import TabularMDP
from . import _kernels as K
from ._result import DRAHistory, DRAResult, GradientEstimate

__all__ = ["train", "estimate_gradient", "PSI", "COSTS", "UPDATES", "ALLOCATIONS"]

PSI = {"advantage": K.PSI_ADVANTAGE, "q": K.PSI_Q, "return": K.PSI_RETURN}
COSTS = {"allocation": K.COST_ALLOCATION, "access": K.COST_ACCESS}
UPDATES = {"expected_sarsa": K.UPDATE_EXPECTED_SARSA, "q_learning": K.UPDATE_Q_LEARNING}
ALLOCATIONS = {
    "dra": K.ALLOC_DRA,
    "equal": K.ALLOC_EQUAL,
    "frequency": K.ALLOC_FREQUENCY,
    "stakes": K.ALLOC_STAKES,
}

#: ``max_steps=None`` in the kernels.
NO_LIMIT = 2**62

#: Order of the per-run hyperparameter rows passed to the kernel.
HP_NAMES = ("beta", "lam", "sigma_base", "sigma0", "alpha_q", "alpha_sigma", "gamma")


# ---------------------------------------------------------------- validation helpers
def _option(value, name: str, table: dict) -> int:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {sorted(table)}; got {value!r}")
    if value not in table:
        raise ValueError(f"{name} must be one of {sorted(table)}, got {value!r}")
    return table[value]


def _int(value, name: str, *, low: int, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    v = int(value)
    if v < low:
        raise ValueError(f"{name} must be >= {low}, got {v}")
    return v


def _hyper(value, name: str, n_runs: int, *, positive: bool, upper: float | None = None):
    """A hyperparameter as a float64 array of shape (n_runs,) (scalar or one value per run)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real number or an array of them, got a bool")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a real number or an array of them, got {value!r}") from None
    if arr.ndim == 0:
        arr = np.full(n_runs, float(arr))
    elif arr.shape != (n_runs,):
        raise ValueError(f"{name} must be a scalar or have shape (n_runs,) = ({n_runs},), "
                         f"got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if not positive and np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    if upper is not None and np.any(arr > upper):
        raise ValueError(f"{name} must be <= {upper}, got {value!r}")
    return arr


def _sigma_clip(value) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in value)
    except (TypeError, ValueError):
        raise TypeError(
            f"sigma_clip must be a pair (sigma_min, sigma_max), got {value!r}") from None
    if not (np.isfinite(lo) and lo > 0):
        raise ValueError(f"sigma_clip: sigma_min must be finite and > 0, got {lo}")
    if not hi > lo:
        raise ValueError(f"sigma_clip must be increasing (sigma_min < sigma_max), got {value!r}")
    return lo, hi


def _check_mdp(mdp, name: str, max_steps: int | None) -> None:
    if not isinstance(mdp, TabularMDP):
        raise TypeError(f"{name} must be a fastsoft.TabularMDP, got {type(mdp).__name__}")
    if mdp.initial is None:
        raise ValueError(f"{name} has no initial distribution: DRA episodes start from "
                         f"mdp.initial (use mdp.with_initial(...))")
    if max_steps is not None:
        return
    if not mdp.has_terminal:
        raise ValueError(f"{name} has no terminal state: pass max_steps to end the episodes")
    # cached on the immutable MDP: the search costs ~0.15 ms, as much as a couple of
    # episodes of the maze
    trap = memo(mdp, "dra_trap_state", lambda: _trap_state(mdp))
    if trap is not None:
        raise ValueError(f"{name}: no terminal state can be reached from state {trap}, which "
                         f"the start states reach; pass max_steps to end the episodes")


def _trap_state(mdp: TabularMDP) -> int | None:
    """A state reachable from the initial support from which no terminal state is reachable."""
    S, A = mdp.n_states, mdp.n_actions
    terminal = cast(np.ndarray, mdp.terminal)  # the callers checked both are set
    initial = cast(np.ndarray, mdp.initial)
    rows = np.repeat(np.arange(S * A), np.diff(mdp.indptr))
    src = rows // A
    keep = mdp.feasible.ravel()[rows] & (mdp.probs > 0) & ~terminal[src]
    src, dst = src[keep], mdp.indices[keep].astype(np.int64)
    # node S: a virtual source linked to the initial support
    start = np.flatnonzero(initial > 0)
    g = sp.csr_matrix((np.ones(len(src) + len(start)),
                       (np.concatenate([src, np.full(len(start), S)]),
                        np.concatenate([dst, start]))), shape=(S + 1, S + 1))
    reach = np.zeros(S + 1, bool)
    reach[csgraph.breadth_first_order(g, S, directed=True, return_predecessors=False)] = True
    # node S: a virtual sink linked from the terminal states (reverse graph)
    term = np.flatnonzero(terminal)
    gr = sp.csr_matrix((np.ones(len(src) + len(term)),
                        (np.concatenate([dst, np.full(len(term), S)]),
                         np.concatenate([src, term]))), shape=(S + 1, S + 1))
    back = np.zeros(S + 1, bool)
    back[csgraph.breadth_first_order(gr, S, directed=True, return_predecessors=False)] = True
    bad = np.flatnonzero(reach[:S] & ~back[:S])
    return int(bad[0]) if bad.size else None


def _writable(a, dtype) -> np.ndarray:
    # one compiled signature for every MDP: C-contiguous, writable (the MDP's arrays are
    # read-only, which Numba types differently)
    return np.require(a, dtype=dtype, requirements=["C", "W"])


def _env(mdp: TabularMDP) -> tuple:
    """The kernels' environment tuple (see :mod:`fastsoft.dra._kernels`), cached on the
    immutable MDP: the kernels only read it (results get copies)."""
    return memo(mdp, "dra_env", lambda: _make_env(mdp))


def _make_env(mdp: TabularMDP) -> tuple:
    S = mdp.n_states
    rewards = _writable(mdp.rewards, np.float64)
    feasible = rewards > -np.inf
    terminal = (np.zeros(S, dtype=bool) if mdp.terminal is None
                else _writable(mdp.terminal, np.bool_))
    memory = feasible & ~terminal[:, None]
    init = np.asarray(mdp.initial, dtype=np.float64)
    support = np.flatnonzero(init > 0).astype(np.int64)
    cum = np.cumsum(init[support])
    indptr = _writable(mdp.indptr, np.int64)
    indices = _writable(mdp.indices, np.int64)
    det = np.where(np.diff(indptr) == 1, indices[np.minimum(indptr[:-1], len(indices) - 1)], -1)
    return (
        indptr,
        indices,
        _writable(mdp.probs, np.float64),
        det.astype(np.int64),
        rewards,
        feasible,
        memory,
        terminal,
        support,
        cum,
    )


def _spawn_generators(seed, n_runs: int) -> list[tuple[np.random.Generator, np.random.Generator]]:
    """Per-run ``(learning, evaluation)`` generators.

    ``np.random.default_rng(seed)``'s seed sequence is spawned into ``n_runs``
    children; child ``r`` is spawned into two, each feeding a ``PCG64``: run
    ``r``'s learning/gradient stream and its evaluation stream. Shared with
    :mod:`fastsoft.reference.dra`.
    """
    root = cast(np.random.SeedSequence, np.random.default_rng(seed).bit_generator.seed_seq)
    out = []
    for child in root.spawn(n_runs):
        learn, ev = child.spawn(2)
        out.append((np.random.Generator(np.random.PCG64(learn)),
                    np.random.Generator(np.random.PCG64(ev))))
    return out


def _prepare(mdp, *, beta, lam, sigma_base, sigma0, alpha_q, alpha_sigma, n_episodes, gamma,
             n_traj, psi, cost, entropy_bonus, update, allocation, sigma_clip, max_steps,
             n_runs, eval_every, n_eval, switch_episode, switch_mdp) -> dict[str, Any]:
    """Validate the arguments of :func:`train` (shared with the reference)."""
    n_runs = _int(n_runs, "n_runs", low=1)
    max_steps = _int(max_steps, "max_steps", low=1, allow_none=True)
    _check_mdp(mdp, "mdp", max_steps)
    n_episodes = _int(n_episodes, "n_episodes", low=0)
    n_traj = _int(n_traj, "n_traj", low=1)
    n_eval = _int(n_eval, "n_eval", low=0)
    eval_every = _int(eval_every, "eval_every", low=1, allow_none=True)
    psi_code = _option(psi, "psi", PSI)
    cost_code = _option(cost, "cost", COSTS)
    update_code = _option(update, "update", UPDATES)
    alloc_code = _option(allocation, "allocation", ALLOCATIONS)
    if not isinstance(entropy_bonus, (bool, np.bool_)):
        raise TypeError(f"entropy_bonus must be a bool, got {type(entropy_bonus).__name__}")
    smin, smax = _sigma_clip(sigma_clip)
    hp = {
        "beta": _hyper(beta, "beta", n_runs, positive=True),
        "lam": _hyper(lam, "lam", n_runs, positive=False),
        "sigma_base": _hyper(sigma_base, "sigma_base", n_runs, positive=True),
        "sigma0": _hyper(sigma0, "sigma0", n_runs, positive=True),
        # a step above 1 overshoots the target and qbar diverges (episodes never end)
        "alpha_q": _hyper(alpha_q, "alpha_q", n_runs, positive=True, upper=1.0),
        "alpha_sigma": _hyper(alpha_sigma, "alpha_sigma", n_runs, positive=False),
        "gamma": _hyper(mdp.gamma if gamma is None else gamma, "gamma", n_runs,
                        positive=False, upper=1.0),
    }
    s0 = hp["sigma0"]
    if np.any((s0 < smin) | (s0 > smax)):
        raise ValueError(f"sigma0 must lie in sigma_clip = ({smin}, {smax}), got {sigma0!r}")
    if switch_episode is None:
        if switch_mdp is not None:
            raise ValueError("switch_mdp is given but switch_episode is None")
        switch_at = n_episodes
        mdp2 = mdp
    else:
        switch_at = _int(switch_episode, "switch_episode", low=0)
        if switch_at > n_episodes:
            raise ValueError(f"switch_episode must be <= n_episodes = {n_episodes}, "
                             f"got {switch_at}")
        if switch_mdp is None:
            if mdp.info.get("kind") != "mattar_daw_maze" or mdp.info.get("switch"):
                raise ValueError("switch_episode without switch_mdp needs the unswitched "
                                 "mattar_daw_maze(); pass switch_mdp otherwise")
            from ..generators import mattar_daw_maze

            switch_mdp = mattar_daw_maze(switch=True, gamma=mdp.gamma)
        _check_mdp(switch_mdp, "switch_mdp", max_steps)
        if (switch_mdp.n_states, switch_mdp.n_actions) != (mdp.n_states, mdp.n_actions):
            raise ValueError(
                f"switch_mdp must have the same states and actions as mdp "
                f"({mdp.n_states}, {mdp.n_actions}), got "
                f"({switch_mdp.n_states}, {switch_mdp.n_actions})")
        mdp2 = switch_mdp
    if n_eval == 0:
        eval_at = np.zeros(0, dtype=np.int64)
    elif eval_every is None:
        eval_at = np.array([n_episodes], dtype=np.int64)
    else:
        eval_at = np.arange(eval_every, n_episodes + 1, eval_every, dtype=np.int64)
        if eval_at.size == 0 or eval_at[-1] != n_episodes:
            eval_at = np.append(eval_at, np.int64(n_episodes))
    eval_at = eval_at[eval_at >= 1] if n_episodes >= 1 else np.zeros(0, dtype=np.int64)
    params = {
        **{k: (float(v[0]) if np.all(v == v[0]) else v.copy()) for k, v in hp.items()},
        "n_episodes": n_episodes, "n_traj": n_traj, "psi": psi, "cost": cost,
        "entropy_bonus": bool(entropy_bonus), "update": update, "allocation": allocation,
        "sigma_clip": (smin, smax), "max_steps": max_steps, "n_runs": n_runs,
        "eval_every": eval_every, "n_eval": n_eval, "switch_episode": switch_episode,
    }
    return dict(
        mdp=mdp, mdp2=mdp2, n_runs=n_runs, max_steps=max_steps, n_episodes=n_episodes,
        n_traj=n_traj, n_eval=n_eval, psi=psi_code, cost=cost_code, update=update_code,
        alloc=alloc_code, entropy_bonus=bool(entropy_bonus), smin=smin, smax=smax,
        hp=np.ascontiguousarray(np.stack([hp[k] for k in HP_NAMES], axis=1)),
        switch_at=switch_at, eval_at=eval_at, params=params,
    )


def _wrap(cfg, qbar, sigma, scalars, n_steps, returns, counts, hist, hist_entropy, *,
          done: int | None = None, interrupted: bool = False) -> DRAResult:
    """The result of a run; ``done`` (default: all) episodes completed, so that an
    interrupted run keeps its returns and evaluation points up to there."""
    n_ep = cfg["n_episodes"] if done is None else int(done)
    eval_at = cfg["eval_at"]
    P = int(np.searchsorted(eval_at, n_ep, side="right"))
    history = DRAHistory(
        episode=eval_at[:P].copy(),
        reward=hist[:, :P, 0].copy(),
        cost=hist[:, :P, 1].copy(),
        entropy_term=hist[:, :P, 2].copy(),
        objective=hist[:, :P, 3].copy(),
        state_entropy=hist_entropy[:, :P].copy() if P < eval_at.shape[0] else hist_entropy,
    )
    if n_ep < returns.shape[1]:
        returns = returns[:, :n_ep].copy()
    # the environment of the last episode played
    mdp_end = cfg["mdp2"] if cfg["switch_at"] < n_ep else cfg["mdp"]
    return DRAResult(
        qbar=qbar, sigma=sigma, sigma_scalar=scalars, n_steps=n_steps, returns=returns,
        state_visits=counts, history=history, memories=_env(mdp_end)[6].copy(),
        params=MappingProxyType(cfg["params"]), interrupted=bool(interrupted),
    )


def _outputs(cfg) -> tuple:
    """The arrays of :func:`K._train_runs`, holding the initial state of every run."""
    R, S, A = cfg["n_runs"], cfg["mdp"].n_states, cfg["mdp"].n_actions
    P = cfg["eval_at"].shape[0]
    sigma0 = cfg["hp"][:, HP_NAMES.index("sigma0")]
    scalars = sigma0.copy() if cfg["alloc"] != K.ALLOC_DRA else np.full(R, np.nan)
    return (
        np.zeros((R, S, A)), np.repeat(sigma0, S * A).reshape(R, S, A), scalars,
        np.zeros(R, dtype=np.int64), np.zeros((R, cfg["n_episodes"])), np.zeros((R, S)),
        np.zeros((R, P, 4)), np.zeros((R, P, S)),
    )


def _kernel_state(outs: tuple) -> K.TrainState:
    """:func:`_outputs` (the order of :func:`_wrap`) as the kernels' :class:`K.TrainState`."""
    qbar, sigma, scalars, n_steps, returns, counts, hist, hist_entropy = outs
    return K.TrainState(qbar, sigma, returns, counts, hist, hist_entropy, n_steps, scalars)


#: Wall-clock time aimed at per chunk of episodes when ``train`` reports progress.
CHUNK_SECONDS = 0.2

#: A fixed number of episodes per chunk instead (tests; None: adaptive).
_CHUNK_EPISODES: int | None = None


def _next_chunk(size: int, seconds: float) -> int:
    """Episodes of the next chunk, from the last one's ``size`` and duration: about
    :data:`CHUNK_SECONDS`, growing at most 4-fold (the first call may include compilation)."""
    if _CHUNK_EPISODES is not None:
        return _CHUNK_EPISODES
    if seconds <= 0.0:
        return 4 * size
    return int(min(4 * size, max(1, round(size * CHUNK_SECONDS / seconds))))


def _run_chunked(cfg, args: tuple, outs: tuple, callback) -> tuple[int, bool]:
    """Run the episodes of ``train`` in chunks, reporting to ``callback`` in between.

    Returns ``(episodes done, interrupted)``. The kernel resumes exactly where it
    stopped, so the result does not depend on the chunks. A True from ``callback``
    or a ``KeyboardInterrupt`` (raised in it, or a Ctrl-C during a chunk) stops.
    """
    n_ep = cfg["n_episodes"]
    hist = outs[6]
    eval_at = cfg["eval_at"]
    cursor = np.zeros(1, dtype=np.int64)  # episodes done, set by the kernel
    state = _kernel_state(outs)
    t0 = time.perf_counter()
    size = 1 if _CHUNK_EPISODES is None else _CHUNK_EPISODES

    def report() -> bool:
        done = int(cursor[0])
        P = int(np.searchsorted(eval_at, done, side="right"))
        objective = float(np.mean(hist[:, P - 1, 3])) if P > 0 else float("nan")
        return bool(callback({"episode": done, "n_episodes": n_ep, "objective": objective,
                              "elapsed": time.perf_counter() - t0}))

    try:
        if report():
            return int(cursor[0]), int(cursor[0]) < n_ep
        while cursor[0] < n_ep:
            start = int(cursor[0])
            stop = min(n_ep, start + size)
            tc = time.perf_counter()
            K._train_runs(*args[:4], np.int64(start), np.int64(stop), *args[4:], state,
                          cursor)
            size = _next_chunk(stop - start, time.perf_counter() - tc)
            if report():
                break
    except KeyboardInterrupt:
        pass
    done = int(cursor[0])
    return done, done < n_ep


# ---------------------------------------------------------------- public functions
def train(
    mdp: TabularMDP,
    *,
    beta: float | Sequence[float],
    lam: float | Sequence[float],
    sigma_base: float | Sequence[float],
    sigma0: float | Sequence[float],
    alpha_q: float | Sequence[float],
    alpha_sigma: float | Sequence[float],
    n_episodes: int,
    gamma: float | Sequence[float] | None = None,
    n_traj: int = 10,
    psi: Literal["advantage", "q", "return"] = "advantage",
    cost: Literal["allocation", "access"] = "allocation",
    entropy_bonus: bool = False,
    update: Literal["expected_sarsa", "q_learning"] = "expected_sarsa",
    allocation: Literal["dra", "equal", "frequency", "stakes"] = "dra",
    sigma_clip: tuple[float, float] = (0.01, 100.0),
    max_steps: int | None = None,
    n_runs: int = 1,
    seed: int | np.random.SeedSequence | np.random.Generator | None = None,
    eval_every: int | None = None,
    n_eval: int = 100,
    switch_episode: int | None = None,
    switch_mdp: TabularMDP | None = None,
    callback: Callable[[dict], bool | None] | None = None,
) -> DRAResult:
    """Train dynamic-resource-allocation agents (Patel, Acerbi & Pouget 2020; docs/theory.md §6).

    Every ``(s, a)`` has a memory: a mean ``qbar[s, a]`` (initially 0) and a noise
    level ``sigma[s, a]`` (initially ``sigma0``). At each decision the agent draws
    ``zeta ~ N(0, I_A)`` and acts from ``p = softmax(beta * (qbar[s] + sigma[s] * zeta))``
    (soft Thompson sampling; infeasible actions, reward ``-inf``, get ``p = 0``).
    Each episode has three parts:

    1. a learning episode from a start state (drawn from ``mdp.initial``) to a
       terminal state (or ``max_steps`` steps), updating ``qbar`` online by
       expected SARSA, ``delta = r + gamma * sum_a' p'(a') qbar[s', a'] - qbar[s, a]``
       with ``p'`` a fresh policy draw at ``s'`` (target ``r`` at a terminal ``s'``),
       or by Q-learning (``update="q_learning"``: ``max_a' qbar[s', a']``);
    2. ``n_traj`` rollouts with ``qbar, sigma`` frozen, estimating the gradient of the
       expected return by the score function: at each step, for every feasible ``b``,
       ``grad[s, b] += beta * zeta_b * (1[a = b] - p_b) * psi`` with ``psi`` the
       advantage ``qbar[s, a] - mean_b qbar[s, b]`` (mean over feasible actions),
       ``qbar[s, a]``, or (``psi="return"``) 1 per step with the rollout's sum
       multiplied by its undiscounted return; averaged over rollouts;
    3. ``sigma += alpha_sigma * (grad - lam * dcost/dsigma)``, clipped to ``sigma_clip``.

    ``cost="allocation"`` (the paper's): ``lam * sum KL(N(0, sigma^2) || N(0, sigma_base^2))``
    over all memories, ``KL = log(sigma_base/sigma) + sigma^2/(2 sigma_base^2) - 1/2``.
    ``cost="access"`` (note B, Eq. 8): every visit to ``s`` costs the KL of the memories
    of ``s``; its gradient is weighted by the mean visits of the gradient rollouts.
    ``entropy_bonus=True`` (note B, Eqs. 8, 10) adds ``(lam/T) sum_t H(p_t)`` (``T`` the
    rollout's length) to the objective, with its pathwise gradient
    ``-beta * zeta_b * p_b * (log p_b + H(p))`` (the dependence of the visited states on
    ``sigma`` is not differentiated, as in the seed).

    The memories are the feasible actions of non-terminal states; other entries of
    ``sigma`` are never updated.

    .. note:: DRA keeps the paper's *inverse* temperature ``beta``; fastsoft's solvers
       take ``temperature = tau`` (an entropy weight in reward units) instead (docs/theory.md §7).

    Parameters
    ----------
    mdp : TabularMDP
        An episodic task: it needs ``initial`` and, unless ``max_steps`` is given,
        terminal states reachable from every state the start states reach.
    beta : float or array of shape (n_runs,)
        Inverse temperature of the soft Thompson sampling (> 0).
    lam : float or array
        Cost weight (>= 0).
    sigma_base : float or array
        Noise level of the base (prior) memory distribution (> 0).
    sigma0 : float or array
        Initial noise level (> 0, inside ``sigma_clip``).
    alpha_q, alpha_sigma : float or array
        Learning rates of ``qbar`` (in ``(0, 1]``; larger steps diverge) and ``sigma`` (>= 0).
    n_episodes : int
        Learning episodes (each followed by ``n_traj`` gradient rollouts).
    gamma : float or array, optional
        Discount of the learning updates; default ``mdp.gamma``.
    n_traj : int
        Gradient rollouts per episode.
    psi : {"advantage", "q", "return"}
        Weight of the score function (see above).
    cost : {"allocation", "access"}
        Memory cost paid once for all memories, or per access along the trajectory.
    entropy_bonus : bool
        Add note B's action-entropy term.
    update : {"expected_sarsa", "q_learning"}
        Learning rule of ``qbar``.
    allocation : {"dra", "equal", "frequency", "stakes"}
        ``"dra"``: one ``sigma`` per memory, updated as above. The baselines share one
        scalar ``c`` (initially ``sigma0``) with ``sigma[s, a] = clip(c * w[s])`` and
        ascend the same objective: ``dJ/dc = sum over memories (unclipped) of
        w[s] * (grad[s, a] - lam * dcost/dsigma[s, a])`` (the chain rule; for ``"equal"``
        this is the sum of the per-memory gradients). Weights, recomputed after every
        learning episode: ``"equal"`` ``w = 1``; ``"frequency"`` ``w[s] = mean(n + 1) / (n[s] + 1)``
        with ``n[s]`` the decisions taken in ``s`` in the learning episodes so far
        (``sigma = c / relative frequency``); ``"stakes"`` ``w[s] = mean(d + eps) / (d[s] + eps)``
        with ``d[s]`` the standard deviation of ``qbar[s, :]`` over the feasible actions
        (what is at stake in choosing at ``s``) and ``eps = 1e-6``. Means are over the
        states that have memories.
    sigma_clip : (float, float)
        ``(sigma_min, sigma_max)``, ``0 < sigma_min < sigma_max``.
    max_steps : int, optional
        Every episode (learning, gradient, evaluation) also ends after this many steps.
    n_runs : int
        Independent runs; they run in parallel on Numba's threads.
    seed : int, SeedSequence, Generator or None
        Anything :func:`numpy.random.default_rng` accepts. Run ``r`` gets its own
        streams (see ``_spawn_generators``): its results do not depend on the number
        of threads, and a given seed reproduces them.
    eval_every : int, optional
        Evaluate after every ``eval_every`` episodes and after the last one (default:
        after the last one only).
    n_eval : int
        Rollouts per evaluation (and ``zeta`` draws per state for the choice
        entropy); 0 disables evaluation.
    switch_episode : int, optional
        Number of episodes played in ``mdp`` before the environment switches to
        ``switch_mdp`` (the paper: 3000). With the maze and no ``switch_mdp``, the
        switched maze ``mattar_daw_maze(switch=True)``.
    switch_mdp : TabularMDP, optional
        Environment after the switch (same states and actions).
    callback : callable, optional
        Progress reports and a clean stop for long runs (e.g.
        :func:`fastsoft.progress.progress_callback` with ``total=n_episodes``).
        The episodes then run in chunks of about :data:`CHUNK_SECONDS` each, and
        ``callback(info)`` is called before the first and after every chunk with
        ``info = {"episode": episodes done, "n_episodes": n_episodes, "objective":
        mean over runs at the last evaluation point passed (NaN before the first),
        "elapsed": seconds}``. Returning True, or a ``KeyboardInterrupt`` raised in
        the callback (or by a Ctrl-C during a chunk), stops the runs: the result
        holds their state after the last completed chunk (``returns`` and
        ``history`` up to there) and ``interrupted=True``. The results are the
        same, bit for bit, with or without a callback (the chunks resume exactly
        where they stopped).

    Returns
    -------
    DRAResult

    Raises
    ------
    TypeError, ValueError
        On invalid arguments, naming the argument.

    Examples
    --------
    Two runs of the paper's maze agent, 200 episodes each:

    >>> import fastsoft as fs
    >>> from fastsoft import dra
    >>> maze = fs.mattar_daw_maze()
    >>> out = dra.train(maze, **dict(dra.MAZE_PARAMS, n_episodes=200), n_runs=2, seed=0)
    >>> out.qbar.shape, out.sigma.shape
    ((2, 54, 4), (2, 54, 4))
    """
    cfg = _prepare(
        mdp, beta=beta, lam=lam, sigma_base=sigma_base, sigma0=sigma0, alpha_q=alpha_q,
        alpha_sigma=alpha_sigma, n_episodes=n_episodes, gamma=gamma, n_traj=n_traj, psi=psi,
        cost=cost, entropy_bonus=entropy_bonus, update=update, allocation=allocation,
        sigma_clip=sigma_clip, max_steps=max_steps, n_runs=n_runs, eval_every=eval_every,
        n_eval=n_eval, switch_episode=switch_episode, switch_mdp=switch_mdp,
    )
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
    gens = _spawn_generators(seed, cfg["n_runs"])
    rngs = NumbaList([g[0] for g in gens])
    erngs = NumbaList([g[1] for g in gens])
    outs = _outputs(cfg)
    # the kernel's arguments, less (ep_start, ep_stop) after the fourth, the state and cursor
    args = (
        _env(cfg["mdp"]), _env(cfg["mdp2"]),
        K.TrainConfig(
            np.int64(cfg["switch_at"]), np.int64(cfg["n_traj"]), np.int64(cfg["psi"]),
            np.int64(cfg["cost"]),
            cfg["entropy_bonus"], np.int64(cfg["update"]), np.int64(cfg["alloc"]),
            cfg["smin"], cfg["smax"],
            np.int64(NO_LIMIT if cfg["max_steps"] is None else cfg["max_steps"]),
            cfg["eval_at"], np.int64(cfg["n_eval"]),
        ),
        cfg["hp"], rngs, erngs,
    )
    if callback is None:
        K._train_runs(*args[:4], np.int64(0), np.int64(cfg["n_episodes"]), *args[4:],
                      _kernel_state(outs), np.zeros(1, dtype=np.int64))
        return _wrap(cfg, *outs)
    done, interrupted = _run_chunked(cfg, args, outs, callback)
    return _wrap(cfg, *outs, done=done, interrupted=interrupted)


def _gradient_args(mdp, qbar, sigma, *, beta, lam, sigma_base, n_traj, psi, cost,
                   entropy_bonus, max_steps):
    max_steps = _int(max_steps, "max_steps", low=1, allow_none=True)
    _check_mdp(mdp, "mdp", max_steps)
    S, A = mdp.n_states, mdp.n_actions
    arrays = []
    for name, x in (("qbar", qbar), ("sigma", sigma)):
        arr = np.array(x, dtype=np.float64)
        if arr.shape != (S, A):
            raise ValueError(f"{name} must have shape (S, A) = {(S, A)}, got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite")
        arrays.append(arr)
    qbar, sigma = arrays
    if np.any(sigma <= 0):
        raise ValueError("sigma must be > 0")
    beta = float(_hyper(beta, "beta", 1, positive=True)[0])
    lam = float(_hyper(lam, "lam", 1, positive=False)[0])
    sigma_base = float(_hyper(sigma_base, "sigma_base", 1, positive=True)[0])
    n_traj = _int(n_traj, "n_traj", low=1)
    if not isinstance(entropy_bonus, (bool, np.bool_)):
        raise TypeError(f"entropy_bonus must be a bool, got {type(entropy_bonus).__name__}")
    return dict(
        qbar=qbar, sigma=sigma, beta=beta, lam=lam, sigma_base=sigma_base, n_traj=n_traj,
        psi=_option(psi, "psi", PSI), cost=_option(cost, "cost", COSTS),
        entropy_bonus=bool(entropy_bonus),
        max_steps=NO_LIMIT if max_steps is None else max_steps,
    )


def _cost_gradient(env, sigma, visits_mean, lam, sigma_base, cost_code) -> np.ndarray:
    memory = env[6]
    g = np.where(memory, lam * (sigma / sigma_base**2 - 1.0 / sigma), 0.0)
    if cost_code == K.COST_ACCESS:
        g = g * visits_mean[:, None]
    return g


def estimate_gradient(
    mdp: TabularMDP,
    qbar: ArrayLike,
    sigma: ArrayLike,
    *,
    beta: float,
    lam: float,
    sigma_base: float,
    n_traj: int = 10,
    psi: Literal["advantage", "q", "return"] = "advantage",
    cost: Literal["allocation", "access"] = "allocation",
    entropy_bonus: bool = False,
    max_steps: int | None = None,
    seed: int | np.random.SeedSequence | np.random.Generator | None = None,
) -> GradientEstimate:
    """Per-rollout samples of the DRA gradient with respect to ``sigma`` (step 2 of :func:`train`).

    Runs ``n_traj`` rollouts with ``qbar`` and ``sigma`` frozen, with exactly the
    code path of :func:`train`, and returns every rollout's contribution, so that
    the Monte Carlo error of the mean is available. ``beta`` is the paper's inverse
    temperature (fastsoft's solvers use ``temperature = tau``, docs/theory.md §7).

    Parameters
    ----------
    mdp : TabularMDP
        Episodic task (``initial``; terminal states unless ``max_steps``).
    qbar, sigma : array of shape (S, A)
        Frozen memories (``sigma > 0``).
    beta, lam, sigma_base : float
        Inverse temperature (> 0), cost weight (>= 0) and base noise level (> 0),
        as in :func:`train`.
    n_traj : int
        Rollouts (at least 1).
    psi, cost, entropy_bonus, max_steps
        As in :func:`train`.
    seed : int, SeedSequence, Generator or None
        The rollouts draw from ``np.random.default_rng(seed)`` directly.

    Returns
    -------
    GradientEstimate
        Per-rollout samples (leading axis ``n_traj``) of each gradient term.

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft import dra
    >>> maze = fs.mattar_daw_maze()
    >>> qbar, sigma = np.zeros((54, 4)), np.full((54, 4), 3.0)
    >>> g = dra.estimate_gradient(maze, qbar, sigma, beta=10.0, lam=0.1, sigma_base=5.0,
    ...                           n_traj=10, seed=0)
    >>> g.reward.shape
    (10, 54, 4)
    """
    a = _gradient_args(mdp, qbar, sigma, beta=beta, lam=lam, sigma_base=sigma_base,
                       n_traj=n_traj, psi=psi, cost=cost, entropy_bonus=entropy_bonus,
                       max_steps=max_steps)
    S, A = mdp.n_states, mdp.n_actions
    env = _env(mdp)
    rng = np.random.default_rng(seed)
    out_r = np.zeros((a["n_traj"], S, A))
    out_h = np.zeros((a["n_traj"], S, A))
    out_v = np.zeros((a["n_traj"], S))
    ro = K.Rollout(a["beta"], a["lam"], np.int64(a["psi"]), a["entropy_bonus"],
                   np.int64(a["max_steps"]))
    steps = K._gradient_samples(env, a["qbar"], a["sigma"], ro, rng, out_r, out_h, out_v)
    return GradientEstimate(
        reward=out_r, entropy=out_h, visits=out_v,
        cost=_cost_gradient(env, a["sigma"], out_v.mean(axis=0), a["lam"], a["sigma_base"],
                            a["cost"]),
        n_steps=int(steps),
    )
