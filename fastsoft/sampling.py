"""Trajectory sampling, Monte Carlo policy evaluation and occupancy measures.

Conventions (docs/theory.md §1)
-------------------------------
* A *policy* is an ``(S, A)`` array of probabilities (rows sum to 1, zero on
  infeasible actions), a time-dependent ``(T, S, A)`` array (``policy[t]`` is
  used at step ``t``), or an integer ``(S,)`` array of actions (deterministic).
  Rows of terminal states are never used and are not validated.
* Terminal states end the episode: a trajectory stops when it *enters* a
  terminal state (that state is recorded, no action is taken in it); an
  episode that starts in a terminal state has length 0.
* Rewards are the MDP's expected rewards ``R(s, a)`` (the storage of record has
  no per-transition rewards).
* Randomness: every function takes ``seed`` (anything
  :func:`numpy.random.default_rng` accepts). One 64-bit key is drawn from that
  generator; episode ``i`` then uses its own counter-based stream (SplitMix64
  of the key, the episode index and a draw counter): draw ``c`` is the 64-bit
  word ``mix64(base_i + (c + 1) * golden)`` with ``base_i = mix64(key ^ i *
  C)``. Draw 0 picks the start state (its top 53 bits as a double in
  ``[0, 1)``); draw ``t + 1`` serves step ``t``: its high 32 bits give the
  action's uniform and its low 32 bits the successor's, each ``x * 2**-32``
  in ``[0, 1)``. With this 32-bit resolution an action or successor is drawn
  with its probability up to an error below ``2**-32`` (about ``2.3e-10``)
  per draw. Results do not depend on the number of threads, and the pure
  NumPy reference :func:`fastsoft.reference.sampling.sample_trajectories`
  reproduces them exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.special import xlogy

from ._bundles import memo
from ._jit import jit, pjit, prange
from ._validation import (
    check_distribution,
    check_fits,
    check_int,
    check_mdp,
    check_prior,
    check_real,
    real_array,
    row_sum_atol,
)
from .mdp import TabularMDP

__all__ = [
    "Trajectories",
    "MonteCarloEstimate",
    "Occupancy",
    "sample_trajectories",
    "monte_carlo_evaluation",
    "occupancy",
]

# --------------------------------------------------------------------------- RNG
#: SplitMix64 increment (the golden ratio) and finalizer multipliers.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
#: Odd multiplier that spreads episode indices before they meet the key.
_EPISODE = np.uint64(0xD1B54A32D192ED03)
_TWO_M53 = 1.0 / 9007199254740992.0
_TWO_M32 = 1.0 / 4294967296.0
_LOW32 = np.uint64(0xFFFFFFFF)
#: Array index type of the hot loops: Numba adds negative-index wraparound code
#: to every signed index, which for the short selection loops (and the gathers
#: it forced) cost a third of the sampling time. Casting to ``uintp`` is free.
_U = np.uintp


@jit
def _mix64(z):
    """SplitMix64 finalizer (a bijection of uint64)."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@jit
def _episode_base(key, episode):
    """Stream state of one episode: ``mix64(key ^ (episode * C))``."""
    return _mix64(key ^ (np.uint64(episode) * _EPISODE))


@jit
def _draw(base, counter):
    """Draw number ``counter`` of a stream: 64 random bits (uint64)."""
    return _mix64(base + np.uint64(counter + 1) * _GOLDEN)


@jit
def _uniform(base, counter):
    """Draw number ``counter`` of a stream as a double in ``[0, 1)`` (53 bits)."""
    # the top 53 bits fit an int64, whose conversion to double is a single instruction
    return float(np.int64(_draw(base, counter) >> np.uint64(11))) * _TWO_M53


@jit
def _uniform_pair(base, counter):
    """Draw number ``counter`` split into two doubles in ``[0, 1)`` of 32 bits each.

    ``(high 32 bits * 2**-32, low 32 bits * 2**-32)``: the action and the
    successor of one step come from one SplitMix64 output.
    """
    z = _draw(base, counter)
    return (float(np.int64(z >> np.uint64(32))) * _TWO_M32,
            float(np.int64(z & _LOW32)) * _TWO_M32)


# ------------------------------------------------------------------- kernels
@pjit
def _row_cumsum(indptr, probs, out):
    """``out[k]`` = cumulative probability of row ``r`` up to entry ``k`` (float64)."""
    for r in prange(indptr.shape[0] - 1):
        acc = 0.0
        for k in range(indptr[r], indptr[r + 1]):
            acc += probs[k]
            out[k] = acc


@jit
def _select(cum, lo, last, u):
    """First index ``j`` in ``[lo, last]`` with ``u < cum[j]`` (``last`` if none).

    ``cum`` is non-decreasing on the range, so this is ``lo`` plus the number
    of entries ``cum[lo:last] <= u``: counted without branches for short
    ranges (no mispredictions), by bisection for long ones. ``0 <= lo <= last``
    (indices are used unsigned, without wraparound).
    """
    if last - lo <= 16:
        c = 0
        for j in range(lo, last):
            c += u >= cum[_U(j)]
        return lo + c
    hi = last
    while lo < hi:
        mid = (lo + hi) >> 1
        if u < cum[_U(mid)]:
            hi = mid
        else:
            lo = mid + 1
    return lo


#: Episodes advanced in lockstep by one thread: their dependent memory loads
#: overlap (about 2x faster than one at a time; 4, 8 and 16 measure the same).
#: Does not affect the output.
_BLOCK = 8


@jit
def _run_block(i0, m, key, indptr, indices, cum_probs, rewards, terminal, pol_cum, init_cum,
               starts, horizon, gamma, bonus, store, out_s, out_a, out_r, out_ret, out_len):
    """Run episodes ``i0 .. i0+m-1`` in lockstep.

    Episode ``i`` uses the stream ``_episode_base(key, i)``: draw 0 picks the
    start state (unless ``starts`` is non-empty: ``starts[i]``), draw ``t + 1``
    (:func:`_uniform_pair`: high 32 bits, low 32 bits) the action and the
    successor of step ``t``. ``pol_cum`` is the flattened guarded cumulative
    policy ``(T*S*A,)``. With ``store`` the trajectory goes to
    ``out_s``/``out_a``/``out_r`` (``-1``/``-1``/``0`` after the end);
    otherwise the discounted return with ``bonus[t, s]`` added per step goes
    to ``out_ret``. Array indices in the step loop are cast to ``_U``
    (non-negative by construction).
    """
    S, A = rewards.shape
    n_pol = pol_cum.shape[0] // (S * A)
    n_bonus = bonus.shape[0]
    rew = rewards.ravel()
    state = np.empty(m, np.int64)
    base = np.empty(m, np.uint64)
    alive = np.empty(m, np.bool_)
    ret = np.zeros(m)
    disc = np.ones(m)
    n_alive = 0
    for w in range(m):
        i = i0 + w
        base[w] = _episode_base(key, i)
        if starts.shape[0] > 0:
            s = starts[i]
        else:
            s = _select(init_cum, 0, S - 1, _uniform(base[w], 0))
        state[w] = s
        if store:
            out_s[i, 0] = s
        alive[w] = not terminal[s]
        n_alive += alive[w]
        out_len[i] = horizon if alive[w] else 0
    for t in range(horizon):
        if n_alive == 0:
            break
        tp = t if t < n_pol else n_pol - 1
        tb = t if t < n_bonus else n_bonus - 1
        for w in range(m):
            if not alive[w]:
                continue
            i = i0 + w
            s = state[w]
            u_act, u_next = _uniform_pair(base[w], t + 1)
            off = (tp * S + s) * A
            a = _select(pol_cum, off, off + A - 1, u_act) - off
            row = s * A + a
            k = _select(cum_probs, indptr[_U(row)], indptr[_U(row + 1)] - 1, u_next)
            r = rew[_U(row)]
            s2 = indices[_U(k)]
            state[w] = s2
            if store:
                out_a[_U(i), _U(t)] = a
                out_r[_U(i), _U(t)] = r
                out_s[_U(i), _U(t + 1)] = s2
            else:
                ret[w] += disc[w] * (r + bonus[_U(tb), _U(s)])
                disc[w] *= gamma
            if terminal[_U(s2)]:
                alive[w] = False
                n_alive -= 1
                out_len[_U(i)] = t + 1
    for w in range(m):
        i = i0 + w
        if store:
            for t in range(out_len[i], horizon):
                out_a[i, t] = -1
                out_r[i, t] = 0.0
                out_s[i, t + 1] = -1
        else:
            out_ret[i] = ret[w]


@pjit
def _sample_kernel(key, indptr, indices, cum_probs, rewards, terminal, pol_cum, init_cum,
                   starts, horizon, out_s, out_a, out_r, out_len):
    """Sample ``out_len.shape[0]`` episodes into preallocated arrays (parallel over blocks)."""
    n = out_len.shape[0]
    n_blocks = (n + _BLOCK - 1) // _BLOCK
    bonus = np.zeros((1, 1))
    no_ret = np.zeros(0)
    for b in prange(n_blocks):
        i0 = b * _BLOCK
        _run_block(i0, min(_BLOCK, n - i0), key, indptr, indices, cum_probs, rewards, terminal,
                   pol_cum, init_cum, starts, horizon, 1.0, bonus, True, out_s, out_a, out_r,
                   no_ret, out_len)


@pjit
def _returns_kernel(key, indptr, indices, cum_probs, rewards, terminal, pol_cum, init_cum,
                    starts, horizon, gamma, bonus, out_ret, out_len):
    """Discounted returns (plus a per-step bonus) of episodes, without storing them."""
    n = out_len.shape[0]
    n_blocks = (n + _BLOCK - 1) // _BLOCK
    no_i = np.zeros((1, 1), dtype=np.int64)
    no_a = np.zeros((1, 1), dtype=np.int32)
    no_r = np.zeros((1, 1))
    for b in prange(n_blocks):
        i0 = b * _BLOCK
        _run_block(i0, min(_BLOCK, n - i0), key, indptr, indices, cum_probs, rewards, terminal,
                   pol_cum, init_cum, starts, horizon, gamma, bonus, False, no_i, no_a, no_r,
                   out_ret, out_len)


# --------------------------------------------------------------- validation
def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _terminal_mask(mdp: TabularMDP) -> np.ndarray:
    """Read-only bool ``(S,)`` terminal mask (all False when the MDP has none)."""
    if mdp.terminal is not None:
        return mdp.terminal
    return memo(mdp, "no_terminal", lambda: _readonly(np.zeros(mdp.n_states, dtype=np.bool_)))


def _as_f64(mdp: TabularMDP, name: str) -> np.ndarray:
    """Read-only float64 view or copy of ``mdp.probs`` / ``mdp.rewards`` (cached).

    Kernels always see read-only float64 arrays, so one compiled signature serves
    float32 and float64 MDPs alike.
    """
    a = getattr(mdp, name)
    if a.dtype == np.float64 and not a.flags.writeable and a.flags.c_contiguous:
        return a
    return memo(mdp, f"{name}_f64", lambda: _readonly(np.array(a, dtype=np.float64)))


def row_cumsum(mdp: TabularMDP) -> np.ndarray:
    """Within-row cumulative transition probabilities, float64 ``(nnz,)`` (cached)."""
    def build():
        out = np.empty(mdp.nnz, dtype=np.float64)
        _row_cumsum(mdp.indptr, _as_f64(mdp, "probs"), out)
        return _readonly(out)

    return memo(mdp, "row_cumsum", build)


def as_policy(mdp: TabularMDP, policy, name: str = "policy", *, horizon: int | None = None,
              allow_time: bool = True) -> np.ndarray:
    """Validate a policy and return it as float64 ``(T, S, A)`` (``T = 1`` if stationary).

    Accepts ``(S, A)`` probabilities, ``(T, S, A)`` time-dependent probabilities
    (``T >= horizon`` when ``horizon`` is given) or an integer ``(S,)`` array of
    actions. Rows of non-terminal states must be finite, non-negative, sum to 1
    (atol :data:`fastsoft._validation.ROW_SUM_ATOL`, ``ROW_SUM_ATOL_F32`` for float32
    input) and put no mass on infeasible
    actions. Rows of terminal states are replaced by the uniform distribution
    over feasible actions (they are never used).
    """
    S, A = mdp.n_states, mdp.n_actions
    arr = real_array(policy, name)
    term = _terminal_mask(mdp)
    feasible = mdp.feasible
    if np.issubdtype(arr.dtype, np.integer):
        if arr.shape != (S,):
            raise ValueError(
                f"{name}: an integer (deterministic) policy must have shape ({S},), "
                f"got {arr.shape}"
            )
        bad = ((arr < 0) | (arr >= A)) & ~term
        if bad.any():
            s = int(np.argmax(bad))
            raise ValueError(f"{name}: action {int(arr[s])} out of range [0, {A}) at state {s}")
        acts = np.where(term, 0, arr).astype(np.int64)
        bad = ~feasible[np.arange(S), acts] & ~term
        if bad.any():
            s = int(np.argmax(bad))
            raise ValueError(f"{name}: action {int(arr[s])} is infeasible at state {s}")
        pol = np.zeros((1, S, A))
        pol[0, np.arange(S), acts] = 1.0
    else:
        atol = row_sum_atol(arr.dtype)
        if arr.ndim == 2:
            if arr.shape != (S, A):
                raise ValueError(f"{name} must have shape ({S}, {A}), got {arr.shape}")
            pol = np.array(arr, dtype=np.float64)[None]
        elif arr.ndim == 3:
            if not allow_time:
                raise ValueError(
                    f"{name} must be stationary with shape ({S}, {A}), got {arr.shape}"
                )
            if arr.shape[1:] != (S, A) or arr.shape[0] == 0:
                raise ValueError(f"{name} must have shape (T, {S}, {A}), got {arr.shape}")
            if horizon is not None and arr.shape[0] < horizon:
                raise ValueError(
                    f"{name}: a time-dependent policy needs at least horizon = {horizon} "
                    f"steps, got T = {arr.shape[0]}"
                )
            pol = np.array(arr, dtype=np.float64)
        else:
            raise ValueError(
                f"{name} must have shape ({S}, {A}), (T, {S}, {A}) or ({S},) integer actions, "
                f"got {arr.shape}"
            )
        live = ~term
        bad = (~np.isfinite(pol) | (pol < 0)) & live[None, :, None]
        if bad.any():
            t, s, a = np.argwhere(bad)[0]
            when = f"time {t}, " if pol.shape[0] > 1 else ""
            raise ValueError(
                f"{name} must be finite and non-negative; first offending entry at "
                f"{when}state {s}, action {a}"
            )
        sums = pol.sum(axis=2)
        bad = (np.abs(sums - 1.0) > atol) & live[None, :]
        if bad.any():
            t, s = np.argwhere(bad)[0]
            when = f" at time {t}" if pol.shape[0] > 1 else ""
            raise ValueError(
                f"{name}: probabilities of state {s}{when} sum to {sums[t, s]!r}, not 1"
            )
        bad = (pol > 0) & ~feasible[None] & live[None, :, None]
        if bad.any():
            t, s, a = np.argwhere(bad)[0]
            when = f" at time {t}" if pol.shape[0] > 1 else ""
            raise ValueError(
                f"{name} puts probability {pol[t, s, a]!r} on infeasible action {a} of "
                f"state {s}{when}"
            )
    if term.any():
        uni = feasible[term] / feasible[term].sum(axis=1, keepdims=True)
        pol[:, term] = uni[None]
    return pol


def as_prior(mdp: TabularMDP, prior, name: str = "prior") -> np.ndarray:
    """Validate an action prior ``mu`` and return float64 ``(S, A)``.

    ``None`` is the uniform distribution over feasible actions. Otherwise the
    rule of :func:`fastsoft._validation.check_prior`: a shape ``(A,)`` array is
    used as given in every state; rows of non-terminal states are non-negative,
    sum to 1 and put mass on a feasible action, and an ``(S, A)`` prior puts
    none on infeasible actions; terminal rows become uniform.
    """
    feasible = mdp.feasible
    if prior is None:
        return feasible / feasible.sum(axis=1, keepdims=True)
    return check_prior(mdp, prior, name)


def as_initial(mdp: TabularMDP, initial, name: str = "initial") -> np.ndarray:
    """Validate a start specification and return a float64 ``(S,)`` distribution.

    ``None``: the MDP's initial distribution, or (when it has none) the uniform
    distribution over non-terminal states. An ``int``: that state. An ``(S,)``
    array: a distribution (:func:`fastsoft._validation.check_distribution`).
    """
    S = mdp.n_states
    if initial is None:
        if mdp.initial is not None:
            return np.asarray(mdp.initial, dtype=np.float64)
        live = ~_terminal_mask(mdp)
        return live / live.sum()
    if isinstance(initial, (int, np.integer)) and not isinstance(initial, bool):
        s = int(initial)
        if not 0 <= s < S:
            raise ValueError(f"{name}: start state {s} out of range [0, {S})")
        p = np.zeros(S)
        p[s] = 1.0
        return p
    p = real_array(initial, name)
    if p.shape != (S,):
        raise ValueError(f"{name} must be a state index or have shape ({S},), got {p.shape}")
    return check_distribution(p, name, S)


def _guarded_cumsum(p: np.ndarray) -> np.ndarray:
    """Cumulative sum along the last axis with ``+inf`` from the last positive entry on.

    Sampling "first ``j`` with ``u < c[j]``" then never picks a zero-probability
    entry and never runs past the end when the row sums to slightly below 1.
    """
    c = np.cumsum(p, axis=-1)
    pos = p > 0
    n = p.shape[-1]
    last = n - 1 - np.argmax(pos[..., ::-1], axis=-1)
    mask = np.arange(n) >= last[..., None]
    c[mask] = np.inf
    return c


def _key(seed) -> np.uint64:
    """One 64-bit stream key drawn from ``numpy.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    return np.uint64(rng.integers(0, 2**64, dtype=np.uint64))


def _kernel_inputs(mdp: TabularMDP):
    return mdp.indptr, mdp.indices, row_cumsum(mdp), _as_f64(mdp, "rewards"), _terminal_mask(mdp)


# ---------------------------------------------------------------- results
@dataclass(frozen=True, eq=False)
class Trajectories:
    """Sampled episodes of fixed maximal length ``horizon``.

    Attributes
    ----------
    states : ndarray of int, shape (n, horizon + 1)
        ``states[i, t]`` is ``s_t`` for ``t <= lengths[i]`` and ``-1`` after the end.
    actions : ndarray of int32, shape (n, horizon)
        ``a_t`` for ``t < lengths[i]``, ``-1`` after the end.
    rewards : ndarray of float64, shape (n, horizon)
        ``R(s_t, a_t)`` for ``t < lengths[i]``, ``0`` after the end.
    lengths : ndarray of int64, shape (n,)
        Number of actions taken: ``horizon`` unless the episode entered a terminal
        state earlier (``0`` when it started in one).
    """

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    lengths: np.ndarray

    @property
    def n_episodes(self) -> int:
        """Number of episodes."""
        return int(self.lengths.shape[0])

    @property
    def horizon(self) -> int:
        """Maximal episode length."""
        return int(self.actions.shape[1])

    @property
    def n_steps(self) -> int:
        """Total number of actions taken."""
        return int(self.lengths.sum())

    def discounted_returns(self, gamma: float) -> np.ndarray:
        """``sum_t gamma^t r_t`` per episode.

        Parameters
        ----------
        gamma : float
            Discount in ``[0, 1]``.

        Returns
        -------
        ndarray, shape (n_episodes,)

        Examples
        --------
        >>> import fastsoft as fs
        >>> mdp = fs.gridworld(3, 3, slip=0.1, gamma=0.9)
        >>> pi = fs.soft_value_iteration(mdp, 0.1).policy
        >>> traj = fs.sample_trajectories(mdp, pi, n_episodes=100, horizon=20, seed=0)
        >>> traj.discounted_returns(0.9).shape
        (100,)
        """
        g = check_real(gamma, "gamma", low=0.0, high=1.0)
        w = g ** np.arange(self.horizon, dtype=np.float64)
        return self.rewards @ w

    def __repr__(self) -> str:
        return (f"Trajectories(n_episodes={self.n_episodes}, horizon={self.horizon}, "
                f"n_steps={self.n_steps})")


@dataclass(frozen=True, eq=False)
class MonteCarloEstimate:
    """Monte Carlo estimate of a policy's (regularized) discounted value.

    Attributes
    ----------
    value : float or ndarray of shape (S,)
        Mean discounted return from the start distribution, or per start state
        (``per_state=True``; terminal states have value 0).
    stderr : float or ndarray of shape (S,)
        Standard error of ``value`` (sample standard deviation / sqrt(n)).
    returns : ndarray, shape (n,) or (S, n)
        The discounted return of every episode.
    lengths : ndarray, shape (n,) or (S, n)
        Episode lengths.
    n_episodes : int
        Episodes per estimate.
    horizon : int
        Episodes were cut after ``horizon`` steps.
    bias_bound : float
        Bound on the truncation bias ``gamma^H max|r + bonus| / (1 - gamma)``
        (``inf`` for ``gamma = 1``).
    """

    value: float | np.ndarray
    stderr: float | np.ndarray
    returns: np.ndarray
    lengths: np.ndarray
    n_episodes: int
    horizon: int
    bias_bound: float

    def __repr__(self) -> str:
        if np.ndim(self.value) == 0:
            v = f"value={self.value:.6g}, stderr={self.stderr:.3g}"
        else:
            v = f"value.shape={np.shape(self.value)}, max stderr={np.max(self.stderr):.3g}"
        return (f"MonteCarloEstimate({v}, n_episodes={self.n_episodes}, "
                f"horizon={self.horizon})")


@dataclass(frozen=True, eq=False)
class Occupancy:
    """State and state-action occupancy measures of a policy.

    Discounted (``horizon=None``): ``state[s] = (1 - gamma) sum_t gamma^t
    P(s_t = s)`` and ``state_action[s, a] = state[s] pi(a|s)`` for non-terminal
    ``s``. An episode visits a terminal state once (the entry counts) and stops,
    so ``state_action`` is 0 at terminal states, ``state.sum() = 1 -
    E[gamma^(T_end + 1)]`` (exactly 1 when no terminal state is reachable) and
    ``sum state_action * R = (1 - gamma) * initial @ V^pi``.

    Finite horizon ``H``: ``state[t, s] = P(s_t = s)`` for ``t = 0..H`` and
    ``state_action[t, s, a] = P(s_t = s, a_t = a)`` for ``t < H``, where ``s_t``
    exists only while the episode runs (the step that enters a terminal state
    counts), so ``state[t].sum()`` is the probability that the episode has not
    ended before ``t``.

    Attributes
    ----------
    state : ndarray, shape (S,) or (H + 1, S)
    state_action : ndarray, shape (S, A) or (H, S, A)
    horizon : int or None
    gamma : float
        The discount used (``mdp.gamma``; unused for a finite horizon).
    error_bound : float
        Discounted, ``method="iterate"`` or ``"direct"``: a bound on the L1 error
        of ``state`` (``gamma/(1-gamma)`` times the last change, or the
        residual over ``1 - gamma``); 0 for a finite horizon (exact up to round-off).
    converged : bool
        Whether ``error_bound <= tol`` (always True for ``"direct"`` and finite horizons).
    n_iter : int
        Iterations of ``method="iterate"`` (0 otherwise).
    status, message
        As on :class:`fastsoft.SolveResult` (``Status.MAX_ITER`` when the
        iteration ran out of steps: the result is then the last iterate).
    """

    state: np.ndarray
    state_action: np.ndarray
    horizon: int | None
    gamma: float
    error_bound: float = 0.0
    converged: bool = True
    n_iter: int = 0
    status: int = 0
    message: str = "converged"

    def __repr__(self) -> str:
        return (f"Occupancy(state.shape={self.state.shape}, horizon={self.horizon}, "
                f"gamma={self.gamma})")


# -------------------------------------------------------------- public API
def sample_trajectories(
    mdp: TabularMDP,
    policy,
    *,
    n_episodes: int,
    horizon: int,
    seed=None,
    initial=None,
    out: Trajectories | None = None,
) -> Trajectories:
    """Sample episodes of a policy with a parallel Numba kernel.

    Parameters
    ----------
    mdp : TabularMDP
    policy : array
        ``(S, A)`` probabilities, ``(T, S, A)`` time-dependent probabilities with
        ``T >= horizon`` (``policy[t]`` at step ``t``), or ``(S,)`` integer actions.
    n_episodes : int
        Number of episodes (``>= 0``).
    horizon : int
        Maximal number of steps per episode (``>= 0``).
    seed : int, SeedSequence, Generator or None
        Anything :func:`numpy.random.default_rng` accepts. The result depends
        only on the seed, not on the number of Numba threads.
    initial : int, array of shape (S,) or None
        Start state or start distribution; default the MDP's initial
        distribution, or uniform over non-terminal states when it has none.
    out : Trajectories, optional
        Write into the arrays of an earlier result of the same shape (and
        states dtype) instead of allocating new ones: repeated sampling then
        avoids the page faults of fresh memory, often the larger cost.

    Returns
    -------
    Trajectories
        ``states (n, horizon + 1)`` (``-1`` after the end), ``actions (n,
        horizon)`` (``-1`` after the end), ``rewards (n, horizon)`` (``0`` after
        the end; the expected reward ``R(s, a)`` of each step) and ``lengths
        (n,)``. An episode ends when it enters a terminal state; one that starts
        in a terminal state has length 0.

    Examples
    --------
    >>> import numpy as np, fastsoft as fs
    >>> from fastsoft.sampling import sample_trajectories
    >>> mdp = fs.gridworld(4, 4, slip=0.1)
    >>> pi = np.full((16, 4), 0.25)
    >>> tr = sample_trajectories(mdp, pi, n_episodes=1000, horizon=50, seed=0)
    >>> tr.states.shape, tr.actions.shape
    ((1000, 51), (1000, 50))
    """
    mdp = check_mdp(mdp)
    n = check_int(n_episodes, "n_episodes", low=0)
    H = check_int(horizon, "horizon", low=0)
    pol = as_policy(mdp, policy, horizon=H)
    init = as_initial(mdp, initial)
    if mdp.terminal is not None and not np.any(init[~np.asarray(mdp.terminal)] > 0):
        s0 = int(np.argmax(init > 0))
        import warnings

        warnings.warn(f"initial: every start state is terminal (e.g. state {s0}), so every "
                      "episode is empty (length 0)", RuntimeWarning, stacklevel=2)
    key = _key(seed)
    indptr, indices, cum, rewards, term = _kernel_inputs(mdp)
    if out is None:
        check_fits(float(n) * ((H + 1) * indices.dtype.itemsize + 12.0 * H + 8.0),
                   f"{n:,} episodes x horizon {H:,}")
        states = np.empty((n, H + 1), dtype=indices.dtype)
        actions = np.empty((n, H), dtype=np.int32)
        rew = np.empty((n, H), dtype=np.float64)
        lengths = np.empty(n, dtype=np.int64)
    else:
        if not isinstance(out, Trajectories):
            raise TypeError(f"out must be a Trajectories, got {type(out).__name__}")
        states, actions, rew, lengths = out.states, out.actions, out.rewards, out.lengths
        want = {"states": ((n, H + 1), indices.dtype), "actions": ((n, H), np.int32),
                "rewards": ((n, H), np.float64), "lengths": ((n,), np.int64)}
        for name, (shape, dt) in want.items():
            arr = getattr(out, name)
            if arr.shape != shape or arr.dtype != dt or not arr.flags.c_contiguous \
                    or not arr.flags.writeable:
                raise ValueError(
                    f"out.{name} must be a writeable C-contiguous {np.dtype(dt)} array of "
                    f"shape {shape}, got {arr.dtype} {arr.shape}"
                )
    _sample_kernel(key, indptr, indices, cum, rewards, term, _guarded_cumsum(pol).ravel(),
                   _guarded_cumsum(init), np.zeros(0, dtype=np.int64), H, states, actions,
                   rew, lengths)
    return out if out is not None else Trajectories(states, actions, rew, lengths)


def regularization_bonus(mdp: TabularMDP, pol: np.ndarray, temperature: float,
                         kl_weight: float, prior) -> np.ndarray:
    """Per-step bonus ``tau H(pi_t(.|s)) - eta KL(pi_t(.|s) || mu(.|s))``, shape (T, S).

    Zero at terminal states. ``pol`` is a validated ``(T, S, A)`` policy.
    """
    T, S, _ = pol.shape
    bonus = np.zeros((T, S))
    live = ~_terminal_mask(mdp)
    if temperature > 0:
        bonus += temperature * -xlogy(pol, pol).sum(axis=2)
    if kl_weight > 0:
        mu = as_prior(mdp, prior)
        pos = pol > 0
        bad = pos & (mu[None] == 0) & live[None, :, None]
        if bad.any():
            _, s, a = np.argwhere(bad)[0]
            raise ValueError(
                f"policy puts mass on action {a} of state {s} where the prior is 0 "
                "(infinite KL)"
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(pos, pol * (np.log(np.where(pos, pol, 1.0))
                                      - np.log(np.where(pos, mu[None], 1.0))), 0.0)
        bonus -= kl_weight * kl.sum(axis=2)
    bonus[:, ~live] = 0.0
    return bonus


def monte_carlo_evaluation(
    mdp: TabularMDP,
    policy,
    *,
    n_episodes: int,
    horizon: int,
    seed=None,
    initial=None,
    temperature: float = 0.0,
    kl_weight: float = 0.0,
    prior=None,
    per_state: bool = False,
) -> MonteCarloEstimate:
    """Monte Carlo estimate of the (regularized) discounted value of a policy.

    Each episode's return is ``sum_t gamma^t (R(s_t, a_t) + tau H(pi_t(.|s_t)) -
    eta KL(pi_t(.|s_t) || mu(.|s_t)))`` over its steps, the per-state form of the
    regularized value of docs/theory.md §3 (its expectation is ``V^pi``). Episodes are
    cut after ``horizon`` steps (see ``bias_bound``) and end at terminal states
    (value 0). Returns are accumulated inside the sampling kernel (nothing of
    size ``n * horizon`` is stored), with exactly the random stream of
    :func:`sample_trajectories` for the same ``seed`` and start specification.

    Parameters
    ----------
    mdp : TabularMDP
    policy : array
        As in :func:`sample_trajectories`.
    n_episodes : int
        Episodes per estimate (``>= 2``); with ``per_state`` that many from every state.
    horizon : int
        Maximal episode length.
    seed : seed-like, optional
    initial : int, array of shape (S,) or None
        Start state or distribution (not allowed with ``per_state``).
    temperature : float
        Entropy weight ``tau >= 0``.
    kl_weight : float
        KL weight ``eta >= 0``.
    prior : array of shape (S, A) or (A,), optional
        KL reference policy ``mu``; uniform over feasible actions by default.
    per_state : bool
        Estimate ``V(s)`` for every start state ``s`` instead of the value of
        the start distribution.

    Returns
    -------
    MonteCarloEstimate
        ``value`` and ``stderr`` (float, or ``(S,)`` arrays with ``per_state``).

    Examples
    --------
    The estimate agrees with the exact regularized value of the policy:

    >>> import fastsoft as fs
    >>> mdp = fs.gridworld(3, 3, slip=0.1, gamma=0.9)
    >>> pi = fs.soft_value_iteration(mdp, 0.1).policy
    >>> mc = fs.monte_carlo_evaluation(mdp, pi, n_episodes=2000, horizon=200, seed=0,
    ...                                initial=0, temperature=0.1)
    >>> exact = fs.policy_evaluation(mdp, pi, temperature=0.1).V[0]
    >>> bool(abs(mc.value - exact) <= 4 * mc.stderr + mc.bias_bound)
    True
    """
    mdp = check_mdp(mdp)
    n = check_int(n_episodes, "n_episodes", low=2)
    H = check_int(horizon, "horizon", low=0)
    tau = check_real(temperature, "temperature", low=0.0)
    eta = check_real(kl_weight, "kl_weight", low=0.0)
    if per_state and initial is not None:
        raise ValueError("initial cannot be combined with per_state=True")
    pol = as_policy(mdp, policy, horizon=H)
    bonus = regularization_bonus(mdp, pol, tau, eta, prior)
    S = mdp.n_states
    if per_state:
        starts = np.repeat(np.arange(S, dtype=np.int64), n)
        init = np.full(S, 1.0 / S)
    else:
        starts = np.zeros(0, dtype=np.int64)
        init = as_initial(mdp, initial)
    n_total = starts.shape[0] if per_state else n
    key = _key(seed)
    indptr, indices, cum, rewards, term = _kernel_inputs(mdp)
    rets = np.empty(n_total)
    lengths = np.empty(n_total, dtype=np.int64)
    gamma = mdp.gamma
    _returns_kernel(key, indptr, indices, cum, rewards, term, _guarded_cumsum(pol).ravel(),
                    _guarded_cumsum(init), starts, H, gamma, bonus, rets, lengths)
    live = ~_terminal_mask(mdp)
    if per_state:
        rets = rets.reshape(S, n)
        lengths = lengths.reshape(S, n)
        value = rets.mean(axis=1)
        stderr = rets.std(axis=1, ddof=1) / np.sqrt(n)
    else:
        value = float(rets.mean())
        stderr = float(rets.std(ddof=1) / np.sqrt(n))
    if gamma < 1.0:
        r = np.where(mdp.feasible[live], rewards[live], 0.0)
        rmax = float(np.max(np.abs(r), initial=0.0) + np.max(np.abs(bonus), initial=0.0))
        bias = gamma**H * rmax / (1.0 - gamma)
    else:
        bias = float("inf")
    return MonteCarloEstimate(value, stderr, rets, lengths, n, H, bias)


def _pair_matrix(mdp: TabularMDP) -> sp.csr_matrix:
    """``B`` of shape (S*A, S): row ``s*A + a`` holds ``P(.|s, a)``."""
    S, A = mdp.n_states, mdp.n_actions
    return memo(mdp, "pair_matrix", lambda: sp.csr_matrix(
        (_as_f64(mdp, "probs"), mdp.indices, mdp.indptr), shape=(S * A, S)))


def _policy_weights(mdp: TabularMDP, pi_t: np.ndarray) -> sp.csr_matrix:
    """``W`` of shape (S, S*A) with ``W[s, s*A + a] = pi(a|s)`` (0 at terminal states)."""
    S, A = mdp.n_states, mdp.n_actions
    w = np.where(_terminal_mask(mdp)[:, None], 0.0, pi_t).ravel()
    return sp.csr_matrix((w, np.arange(S * A), np.arange(0, S * A + 1, A)), shape=(S, S * A))


def occupancy(
    mdp: TabularMDP,
    policy,
    *,
    initial=None,
    horizon: int | None = None,
    method: str = "direct",
    tol: float = 1e-12,
    max_iter: int = 100_000,
) -> Occupancy:
    """Discounted or finite-horizon occupancy measures of a policy.

    Parameters
    ----------
    mdp : TabularMDP
    policy : array
        ``(S, A)``, ``(S,)`` integer actions, or (finite horizon only) ``(T, S, A)``.
    initial : int, array of shape (S,) or None
        Start state or distribution (default as in :func:`sample_trajectories`).
    horizon : int or None
        ``None``: the discounted occupancy (``mdp.gamma < 1`` required); an
        integer ``H``: the marginals ``P(s_t = s)`` for ``t = 0..H``.
    method : {"direct", "iterate"}
        Discounted case: a sparse direct solve of ``(I - gamma P_pi^T) d =
        (1 - gamma) mu`` (SuperLU), or the fixed-point iteration ``d <- (1 -
        gamma) mu + gamma P_pi^T d`` until the L1 change is below ``tol``.
    tol : float
        Tolerance of ``method="iterate"``.
    max_iter : int
        Iteration cap of ``method="iterate"``.

    Returns
    -------
    Occupancy
        See its docstring for the normalization: the entry into a terminal
        state counts, nothing after it does.

    Examples
    --------
    >>> import fastsoft as fs
    >>> mdp = fs.gridworld(3, 3, slip=0.1, gamma=0.9)
    >>> pi = fs.soft_value_iteration(mdp, 0.1).policy
    >>> occ = fs.occupancy(mdp, pi, initial=0)
    >>> occ.state.shape, occ.state_action.shape
    ((9,), (9, 4))
    """
    mdp = check_mdp(mdp)
    S, A = mdp.n_states, mdp.n_actions
    H = check_int(horizon, "horizon", low=0, allow_none=True)
    mu = as_initial(mdp, initial)
    B = _pair_matrix(mdp)
    term = _terminal_mask(mdp)
    if H is not None:
        pol = as_policy(mdp, policy, horizon=H)
        state = np.zeros((H + 1, S))
        sa = np.zeros((H, S, A))
        state[0] = mu
        for t in range(H):
            pi_t = pol[t if t < pol.shape[0] else pol.shape[0] - 1]
            w = np.where(term[:, None], 0.0, state[t][:, None] * pi_t)
            sa[t] = w
            state[t + 1] = B.T @ w.ravel()
        return Occupancy(state, sa, H, mdp.gamma)
    if method not in ("direct", "iterate"):
        raise ValueError(f"method must be 'direct' or 'iterate', got {method!r}")
    gamma = mdp.gamma
    if gamma >= 1.0:
        raise ValueError("the discounted occupancy needs gamma < 1; pass a finite horizon")
    pol = as_policy(mdp, policy, allow_time=False)[0]
    PpiT = (_policy_weights(mdp, pol) @ B).T.tocsr()
    b = (1.0 - gamma) * mu
    if method == "direct":
        M = (sp.identity(S, format="csr") - gamma * PpiT).tocsc()
        d = np.asarray(spla.spsolve(M, b), dtype=np.float64).reshape(S)
    else:
        tol = check_real(tol, "tol", low=0.0, low_open=True)
        max_iter = check_int(max_iter, "max_iter", low=1)
        d = b.copy()
        change = np.inf
        n = 0
        for n in range(1, max_iter + 1):  # noqa: B007
            d_new = b + gamma * (PpiT @ d)
            change = float(np.abs(d_new - d).sum())
            d = d_new
            if change <= tol:
                break
        sa = np.where(term[:, None], 0.0, d[:, None] * pol)
        # P_pi^T is an L1 contraction by gamma: ||d - d*||_1 <= gamma/(1-gamma) ||change||_1
        bound = gamma / (1.0 - gamma) * change + 8 * np.finfo(float).eps * S / (1.0 - gamma)
        if change <= tol:
            return Occupancy(d, sa, None, gamma, bound, True, n, 0, "converged")
        from .result import Status

        return Occupancy(d, sa, None, gamma, bound, False, n, int(Status.MAX_ITER),
                         f"max_iter reached: last change {change:.3g} above tol {tol:.3g}")
    sa = np.where(term[:, None], 0.0, d[:, None] * pol)
    return Occupancy(d, sa, None, gamma)
