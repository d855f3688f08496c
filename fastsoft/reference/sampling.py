"""NumPy/Python references for :mod:`fastsoft.sampling`, :mod:`fastsoft.inference`
and the vectorized environment.

Written for clarity, not speed: Python loops over episodes and steps, dense
``(S, A, S)`` transition tensors and dense linear solves. Each function names
the kernel or public function it mirrors.

The random stream is the same counter-based SplitMix64 construction as the
kernels, written with Python integers, so :func:`sample_trajectories` returns
*identical* arrays to :func:`fastsoft.sample_trajectories` for the same seed.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, xlog1py, xlogy

__all__ = [
    "splitmix64",
    "splitmix_uniform",
    "splitmix_uniform_pair",
    "stream_key",
    "row_cumsum",
    "sample_trajectories",
    "discounted_returns",
    "policy_evaluation",
    "occupancy_discounted",
    "occupancy_finite",
    "backward_pass",
    "elbo",
    "enumerate_trajectories",
    "mutual_information_exact",
    "step_batch",
]

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_EPISODE = 0xD1B54A32D192ED03


def _mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK
    return z ^ (z >> 31)


def stream_key(seed) -> int:
    """The 64-bit key drawn from ``numpy.random.default_rng(seed)`` (as the kernels do).

    Parameters
    ----------
    seed : int, SeedSequence, Generator or None
        Anything :func:`numpy.random.default_rng` accepts.

    Returns
    -------
    int
        In ``[0, 2**64)``.

    Examples
    --------
    >>> from fastsoft.reference import sampling as rs
    >>> rs.stream_key(0) == rs.stream_key(0)
    True
    """
    return int(np.random.default_rng(seed).integers(0, 2**64, dtype=np.uint64))


def splitmix64(key: int, episode: int, counter: int) -> int:
    """Draw ``counter`` of episode ``episode``'s stream: a 64-bit integer.

    Mirrors ``fastsoft.sampling._draw(_episode_base(key, episode), counter)``.

    Parameters
    ----------
    key : int
        The stream key (:func:`stream_key`).
    episode : int
        Episode index.
    counter : int
        Draw index within the episode.

    Returns
    -------
    int
        In ``[0, 2**64)``.

    Examples
    --------
    >>> from fastsoft.reference import sampling as rs
    >>> key = rs.stream_key(0)
    >>> 0 <= rs.splitmix64(key, 0, 0) < 2**64
    True
    """
    base = _mix64(key ^ ((episode * _EPISODE) & _MASK))
    return _mix64((base + (counter + 1) * _GOLDEN) & _MASK)


def splitmix_uniform(key: int, episode: int, counter: int) -> float:
    """Draw ``counter`` of episode ``episode``'s stream, a double in ``[0, 1)`` (53 bits).

    Mirrors ``fastsoft.sampling._uniform(_episode_base(key, episode), counter)``
    (the start state: draw 0).

    Parameters
    ----------
    key : int
        The stream key (:func:`stream_key`).
    episode : int
        Episode index.
    counter : int
        Draw index within the episode.

    Returns
    -------
    float

    Examples
    --------
    >>> from fastsoft.reference import sampling as rs
    >>> key = rs.stream_key(0)
    >>> 0.0 <= rs.splitmix_uniform(key, 0, 0) < 1.0
    True
    """
    return (splitmix64(key, episode, counter) >> 11) * (1.0 / 9007199254740992.0)


def splitmix_uniform_pair(key: int, episode: int, counter: int) -> tuple[float, float]:
    """Draw ``counter`` split into two doubles in ``[0, 1)``: (high 32 bits, low 32 bits) / 2**32.

    Mirrors ``fastsoft.sampling._uniform_pair(_episode_base(key, episode), counter)``:
    step ``t`` of an episode uses draw ``t + 1``, the first double for the
    action and the second for the successor.

    Parameters
    ----------
    key : int
        The stream key (:func:`stream_key`).
    episode : int
        Episode index.
    counter : int
        Draw index within the episode.

    Returns
    -------
    tuple of float

    Examples
    --------
    >>> from fastsoft.reference import sampling as rs
    >>> key = rs.stream_key(0)
    >>> u, v = rs.splitmix_uniform_pair(key, 0, 1)
    >>> 0.0 <= u < 1.0 and 0.0 <= v < 1.0
    True
    """
    z = splitmix64(key, episode, counter)
    return (z >> 32) * (1.0 / 4294967296.0), (z & 0xFFFFFFFF) * (1.0 / 4294967296.0)


def row_cumsum(indptr, probs) -> np.ndarray:
    """Within-row cumulative probabilities (mirrors ``fastsoft.sampling._row_cumsum``).

    Parameters
    ----------
    indptr : array of int, shape (n_rows + 1,)
    probs : array of float, shape (nnz,)

    Returns
    -------
    ndarray of float64, shape (nnz,)
        The last entry of every row is exactly 1.

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft.reference import sampling as rs
    >>> mdp = fs.random_mdp(5, 2, 3, gamma=0.9, seed=0)
    >>> uniform, start = np.full((5, 2), 0.5), np.full(5, 0.2)
    >>> float(rs.row_cumsum(mdp.indptr, mdp.probs)[2])
    1.0
    """
    out = np.empty(len(probs), dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    for r in range(len(indptr) - 1):
        lo, hi = indptr[r], indptr[r + 1]
        out[lo:hi] = np.cumsum(p[lo:hi])
    return out


def _first_above(cum, u) -> int:
    """First index ``j`` with ``u < cum[j]`` (last index if none)."""
    for j, c in enumerate(cum):
        if u < c:
            return j
    return len(cum) - 1


def _sampling_cumsum(p) -> np.ndarray:
    c = np.cumsum(p)
    pos = np.flatnonzero(np.asarray(p) > 0)
    c[pos[-1]:] = np.inf
    return c


def _term(mdp):
    return np.zeros(mdp.n_states, bool) if mdp.terminal is None else np.asarray(mdp.terminal)


def sample_trajectories(mdp, policy, n_episodes, horizon, seed, initial, *, key=None):
    """Reference of :func:`fastsoft.sample_trajectories` (same stream, same output).

    ``policy`` is float ``(S, A)`` or ``(T, S, A)``; ``initial`` a distribution ``(S,)``.
    ``key`` (optional) replaces the stream key ``stream_key(seed)``.
    Episode ``i`` draws its start state from draw 0 of its stream
    (:func:`splitmix_uniform`) and the action and successor of step ``t`` from
    the two halves of draw ``t + 1`` (:func:`splitmix_uniform_pair`).
    Returns ``(states, actions, rewards, lengths)``.

    Parameters
    ----------
    mdp : TabularMDP
    policy : array of float
        ``(S, A)`` or ``(T, S, A)``.
    n_episodes, horizon : int
    seed : int, SeedSequence, Generator or None
    initial : array of float, shape (S,)
    key : int, optional

    Returns
    -------
    states : ndarray, shape (n_episodes, horizon + 1)
    actions, rewards : ndarray, shape (n_episodes, horizon)
    lengths : ndarray, shape (n_episodes,)

    Examples
    --------
    The kernel draws the same trajectories:

    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft.reference import sampling as rs
    >>> mdp = fs.random_mdp(5, 2, 3, gamma=0.9, seed=0)
    >>> uniform, start = np.full((5, 2), 0.5), np.full(5, 0.2)
    >>> states, actions, rewards, lengths = rs.sample_trajectories(mdp, uniform, 10, 4, 0, start)
    >>> fast = fs.sample_trajectories(mdp, uniform, n_episodes=10, horizon=4, seed=0, initial=start)
    >>> bool(np.array_equal(states, fast.states))
    True
    """
    pol = np.asarray(policy, dtype=np.float64)
    if pol.ndim == 2:
        pol = pol[None]
    key = stream_key(seed) if key is None else int(key)
    A = mdp.n_actions
    term = _term(mdp)
    cum = row_cumsum(mdp.indptr, mdp.probs)
    init_cum = _sampling_cumsum(np.asarray(initial, dtype=np.float64))
    states = np.full((n_episodes, horizon + 1), -1, dtype=np.int64)
    actions = np.full((n_episodes, horizon), -1, dtype=np.int64)
    rewards = np.zeros((n_episodes, horizon))
    lengths = np.zeros(n_episodes, dtype=np.int64)
    for i in range(n_episodes):
        s = _first_above(init_cum, splitmix_uniform(key, i, 0))
        states[i, 0] = s
        if term[s]:
            continue
        length = horizon
        for t in range(horizon):
            pi = pol[min(t, len(pol) - 1), s]
            u_act, u_next = splitmix_uniform_pair(key, i, t + 1)
            a = _first_above(_sampling_cumsum(pi), u_act)
            lo, hi = mdp.indptr[s * A + a], mdp.indptr[s * A + a + 1]
            k = lo + _first_above(cum[lo:hi], u_next)
            actions[i, t] = a
            rewards[i, t] = mdp.rewards[s, a]
            s = int(mdp.indices[k])
            states[i, t + 1] = s
            if term[s]:
                length = t + 1
                break
        lengths[i] = length
    return states, actions, rewards, lengths


def discounted_returns(rewards, lengths, gamma, states=None, bonus=None) -> np.ndarray:
    """``sum_{t < length} gamma^t (r_t + bonus[t, s_t])`` per episode (mirrors ``_returns_kernel``).

    ``bonus`` (optional, with ``states``) has shape ``(T, S)``; row ``min(t, T-1)`` is used.

    Parameters
    ----------
    rewards : array of float, shape (n, T)
    lengths : array of int, shape (n,)
        Steps taken per episode.
    gamma : float
    states : array of int, shape (n, T + 1), optional
    bonus : array of float, shape (T, S), optional
        Per-step, per-state bonus (needs ``states``).

    Returns
    -------
    ndarray of float64, shape (n,)

    Examples
    --------
    >>> import numpy as np
    >>> from fastsoft.reference import sampling as rs
    >>> rs.discounted_returns(np.ones((2, 3)), np.array([3, 1]), 0.5)
    array([1.75, 1.  ])
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    out = np.zeros(rewards.shape[0])
    for i in range(rewards.shape[0]):
        g = 1.0
        for t in range(int(lengths[i])):
            b = 0.0 if bonus is None else bonus[min(t, len(bonus) - 1), states[i, t]]
            out[i] += g * (rewards[i, t] + b)
            g *= gamma
    return out


def _dense(mdp):
    P, R = mdp.to_dense()
    return P, R


def _uniform_prior(mdp):
    f = mdp.feasible.astype(np.float64)
    return f / f.sum(axis=1, keepdims=True)


def policy_evaluation(mdp, policy, temperature=0.0, kl_weight=0.0, prior=None):
    """Dense solve of ``(I - gamma P_pi) V = r_pi`` on non-terminal states (docs/theory.md §3).

    ``r_pi(s) = sum_a pi R + tau H(pi_s) - eta KL(pi_s || mu_s)``; terminal states
    have ``V = 0``. Returns ``(V, Q)`` with ``Q = R + gamma P V``.

    Parameters
    ----------
    mdp : TabularMDP
    policy : array of float, shape (S, A)
    temperature, kl_weight : float
        ``tau, eta >= 0``.
    prior : array, optional
        ``mu`` (S, A) or (A,).

    Returns
    -------
    V : ndarray, shape (S,)
    Q : ndarray, shape (S, A)

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft.reference import sampling as rs
    >>> mdp = fs.random_mdp(5, 2, 3, gamma=0.9, seed=0)
    >>> uniform, start = np.full((5, 2), 0.5), np.full(5, 0.2)
    >>> V, Q = rs.policy_evaluation(mdp, uniform, 0.1)
    >>> bool(np.allclose(V, fs.policy_evaluation(mdp, uniform, temperature=0.1).V))
    True
    """
    P, R = _dense(mdp)
    pi = np.asarray(policy, dtype=np.float64)
    S, A = R.shape
    mu = _uniform_prior(mdp) if prior is None else np.asarray(prior, dtype=np.float64)
    live = ~_term(mdp)
    Rm = np.where(pi > 0, R, 0.0)
    r_pi = (pi * Rm).sum(axis=1) - temperature * xlogy(pi, pi).sum(axis=1)
    if kl_weight:
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(pi > 0, pi * np.log(pi / mu), 0.0).sum(axis=1)
        r_pi = r_pi - kl_weight * kl
    P_pi = np.einsum("sa,sat->st", pi, P)
    P_pi[~live] = 0.0
    P_pi[:, ~live] = 0.0
    r_pi[~live] = 0.0
    M = np.eye(S) - mdp.gamma * P_pi
    V = np.zeros(S)
    idx = np.flatnonzero(live)
    V[idx] = np.linalg.solve(M[np.ix_(idx, idx)], r_pi[idx])
    with np.errstate(invalid="ignore"):
        Q = R + mdp.gamma * P @ V
    Q[~live] = 0.0
    return V, Q


def _P_pi(mdp, pi):
    P, _ = _dense(mdp)
    P_pi = np.einsum("sa,sat->st", pi, P)
    P_pi[_term(mdp)] = 0.0
    return P_pi


def occupancy_discounted(mdp, policy, initial):
    """Dense solve of ``(I - gamma P_pi^T) d = (1 - gamma) mu``, terminal rows of ``P_pi`` zero.

    Returns ``(d, d_sa)`` with ``d_sa = 0`` at terminal states.

    Parameters
    ----------
    mdp : TabularMDP
        ``gamma < 1``.
    policy : array of float, shape (S, A)
    initial : array of float, shape (S,)
        The start distribution ``mu``.

    Returns
    -------
    d : ndarray, shape (S,)
    d_sa : ndarray, shape (S, A)

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft.reference import sampling as rs
    >>> mdp = fs.random_mdp(5, 2, 3, gamma=0.9, seed=0)
    >>> uniform, start = np.full((5, 2), 0.5), np.full(5, 0.2)
    >>> d, d_sa = rs.occupancy_discounted(mdp, uniform, start)
    >>> bool(np.allclose(d, fs.occupancy(mdp, uniform, initial=start).state))
    True
    """
    pi = np.asarray(policy, dtype=np.float64)
    P_pi = _P_pi(mdp, pi)
    S = mdp.n_states
    g = mdp.gamma
    d = np.linalg.solve(np.eye(S) - g * P_pi.T, (1 - g) * np.asarray(initial, dtype=np.float64))
    d_sa = d[:, None] * pi
    d_sa[_term(mdp)] = 0.0
    return d, d_sa


def occupancy_finite(mdp, policy, initial, horizon):
    """Marginals ``P(s_t = s)``, ``t = 0..H``, and ``P(s_t = s, a_t = a)``, ``t < H``.

    Parameters
    ----------
    mdp : TabularMDP
    policy : array of float, shape (S, A) or (T, S, A)
    initial : array of float, shape (S,)
    horizon : int

    Returns
    -------
    state : ndarray, shape (H + 1, S)
    state_action : ndarray, shape (H, S, A)

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft.reference import sampling as rs
    >>> mdp = fs.random_mdp(5, 2, 3, gamma=0.9, seed=0)
    >>> uniform, start = np.full((5, 2), 0.5), np.full(5, 0.2)
    >>> state, state_action = rs.occupancy_finite(mdp, uniform, start, 3)
    >>> state.shape, state_action.shape
    ((4, 5), (3, 5, 2))
    """
    pol = np.asarray(policy, dtype=np.float64)
    if pol.ndim == 2:
        pol = pol[None]
    S, A = mdp.n_states, mdp.n_actions
    term = _term(mdp)
    P, _ = _dense(mdp)
    state = np.zeros((horizon + 1, S))
    sa = np.zeros((horizon, S, A))
    state[0] = initial
    for t in range(horizon):
        pi = pol[min(t, len(pol) - 1)]
        sa[t] = state[t][:, None] * pi
        sa[t][term] = 0.0
        state[t + 1] = np.einsum("sa,sat->t", sa[t], P)
    return state, sa


def backward_pass(mdp, horizon, rewards, prior, initial):
    """Log-space backward pass with :func:`scipy.special.logsumexp` (mirrors ``_log_backward``).

    ``rewards`` are the shifted rewards (``<= 0``). Returns ``(log_evidence, Q, V, policy)``.

    Parameters
    ----------
    mdp : TabularMDP
    horizon : int
    rewards : array of float, shape (S, A)
        Shifted rewards (``<= 0``).
    prior : array of float, shape (S, A)
        Action prior.
    initial : array of float, shape (S,)

    Returns
    -------
    log_evidence : float
    Q : ndarray, shape (T, S, A)
    V : ndarray, shape (T + 1, S)
    policy : ndarray, shape (T, S, A)

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft.reference import sampling as rs
    >>> mdp = fs.random_mdp(5, 2, 3, gamma=0.9, seed=0)
    >>> uniform, start = np.full((5, 2), 0.5), np.full(5, 0.2)
    >>> R = mdp.rewards - 1.0
    >>> log_evidence = rs.backward_pass(mdp, 3, R, uniform, start)[0]
    >>> fast = fs.inference.backward_pass(mdp.with_rewards(R), 3, initial=start)
    >>> bool(np.isclose(log_evidence, fast.log_evidence))
    True
    """
    P, _ = _dense(mdp)
    S, A = mdp.n_states, mdp.n_actions
    term = _term(mdp)
    R = np.asarray(rewards, dtype=np.float64)
    mu = np.asarray(prior, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_mu = np.log(mu)
    V = np.zeros((horizon + 1, S))
    Q = np.zeros((horizon, S, A))
    pol = np.zeros((horizon, S, A))
    for t in range(horizon - 1, -1, -1):
        with np.errstate(divide="ignore"):
            nxt = logsumexp(np.broadcast_to(V[t + 1], P.shape), b=P, axis=2)
        q = R + nxt
        q[~mdp.feasible] = -np.inf
        v = logsumexp(q + log_mu, axis=1)
        q[term] = 0.0
        v[term] = 0.0
        Q[t], V[t] = q, v
        pol[t] = np.exp(log_mu + q - v[:, None])
        pol[t][term] = mu[term]
    with np.errstate(divide="ignore"):
        log_ev = float(logsumexp(V[0], b=np.asarray(initial, dtype=np.float64)))
    return log_ev, Q, V, pol


def enumerate_trajectories(mdp, policy, horizon, prior, initial):
    """Depth-first recursion over all trajectories with positive probability.

    Returns a list of ``(log q, log p, reward_sum, length)`` with the MDP's rewards.

    Parameters
    ----------
    mdp : TabularMDP
    policy : array of float, shape (S, A) or (T, S, A)
    horizon : int
    prior : array of float, shape (S, A)
    initial : array of float, shape (S,)

    Returns
    -------
    list of tuple

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft.reference import sampling as rs
    >>> mdp = fs.random_mdp(5, 2, 3, gamma=0.9, seed=0)
    >>> uniform, start = np.full((5, 2), 0.5), np.full(5, 0.2)
    >>> items = rs.enumerate_trajectories(mdp, uniform, 2, uniform, start)
    >>> bool(np.isclose(sum(np.exp(lq) for lq, *_ in items), 1.0))
    True
    """
    pol = np.asarray(policy, dtype=np.float64)
    if pol.ndim == 2:
        pol = pol[None]
    P, _ = _dense(mdp)
    term = _term(mdp)
    mu = np.asarray(prior, dtype=np.float64)
    out = []

    def rec(s, t, lq, lp, r):
        if term[s] or t == horizon:
            out.append((lq, lp, r, t))
            return
        pi = pol[min(t, len(pol) - 1), s]
        for a in np.flatnonzero(pi > 0):
            for s2 in np.flatnonzero(P[s, a] > 0):
                lpa = np.log(mu[s, a]) if mu[s, a] > 0 else -np.inf
                rec(s2, t + 1, lq + np.log(pi[a]) + np.log(P[s, a, s2]),
                    lp + lpa + np.log(P[s, a, s2]), r + mdp.rewards[s, a])

    p0 = np.asarray(initial, dtype=np.float64)
    for s in np.flatnonzero(p0 > 0):
        rec(s, 0, np.log(p0[s]), np.log(p0[s]), 0.0)
    return out


def elbo(mdp, policy, horizon, rewards, prior, initial):
    """ELBO ``sum_tau q(tau) [sum r - log q/p]`` by enumeration (shifted ``rewards``).

    Parameters
    ----------
    mdp : TabularMDP
    policy : array of float, shape (S, A) or (T, S, A)
    horizon : int
    rewards : array of float, shape (S, A)
        Shifted rewards (``<= 0``).
    prior : array of float, shape (S, A)
    initial : array of float, shape (S,)

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft.reference import sampling as rs
    >>> mdp = fs.random_mdp(5, 2, 3, gamma=0.9, seed=0)
    >>> uniform, start = np.full((5, 2), 0.5), np.full(5, 0.2)
    >>> R = mdp.rewards - 1.0
    >>> value = rs.elbo(mdp, uniform, 2, R, uniform, start)
    >>> fast = fs.inference.elbo(mdp.with_rewards(R), uniform, 2, initial=start)
    >>> bool(np.isclose(value, fast.value))
    True
    """
    mdp2 = mdp.with_rewards(np.where(mdp.feasible, rewards, -np.inf))
    items = enumerate_trajectories(mdp2, policy, horizon, prior, initial)
    lq = np.array([x[0] for x in items])
    lp = np.array([x[1] for x in items])
    r = np.array([x[2] for x in items])
    q = np.exp(lq)
    return float(q @ (r - (lq - lp)))


def mutual_information_exact(mdp, policy, horizon, rewards, initial):
    """``h(E p) - E h(p)`` by enumeration, ``p = exp(sum of shifted rewards)``.

    Parameters
    ----------
    mdp : TabularMDP
    policy : array of float, shape (S, A) or (T, S, A)
    horizon : int
    rewards : array of float, shape (S, A)
        Shifted rewards (``<= 0``).
    initial : array of float, shape (S,)

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft.reference import sampling as rs
    >>> mdp = fs.random_mdp(5, 2, 3, gamma=0.9, seed=0)
    >>> uniform, start = np.full((5, 2), 0.5), np.full(5, 0.2)
    >>> R = mdp.rewards - 1.0
    >>> mi = rs.mutual_information_exact(mdp, uniform, 2, R, start)
    >>> fast = fs.inference.mutual_information(mdp.with_rewards(R), uniform, 2, initial=start)
    >>> bool(np.isclose(mi, fast.value))
    True
    """
    mdp2 = mdp.with_rewards(np.where(mdp.feasible, rewards, -np.inf))
    items = enumerate_trajectories(mdp2, policy, horizon, _uniform_prior(mdp), initial)
    q = np.exp(np.array([x[0] for x in items]))
    p = np.exp(np.array([x[2] for x in items]))

    def h(x):
        return -xlogy(x, x) - xlog1py(1 - x, -x)

    return float(h(q @ p) - q @ h(p))


def step_batch(mdp, states, actions, u, active):
    """Reference of ``fastsoft.envs.vector._step_batch``.

    For active copies: at a terminal state stay with reward 0 and probability 1;
    otherwise the first successor whose cumulative probability exceeds ``u``.
    Returns ``(next_states, rewards, probs, terminated)``.

    Parameters
    ----------
    mdp : TabularMDP
    states, actions : array of int, shape (n,)
    u : array of float, shape (n,)
        Uniform draws in ``[0, 1)``.
    active : array of bool, shape (n,)
        Copies that step (the others keep their state, reward 0).

    Returns
    -------
    next_states : ndarray of int64, shape (n,)
    rewards, probs : ndarray of float64, shape (n,)
    terminated : ndarray of bool, shape (n,)

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft.reference import sampling as rs
    >>> mdp = fs.random_mdp(5, 2, 3, gamma=0.9, seed=0)
    >>> uniform, start = np.full((5, 2), 0.5), np.full(5, 0.2)
    >>> nxt, rew, prob, term = rs.step_batch(mdp, np.array([0, 1]), np.array([0, 1]),
    ...                                     np.array([0.5, 0.5]), np.array([True, False]))
    >>> int(nxt[1]), float(rew[1])
    (1, 0.0)
    """
    A = mdp.n_actions
    term = _term(mdp)
    cum = row_cumsum(mdp.indptr, mdp.probs)
    n = len(states)
    nxt = np.array(states, dtype=np.int64)
    rew = np.zeros(n)
    prob = np.ones(n)
    done = np.zeros(n, bool)
    for i in range(n):
        if not active[i]:
            continue
        s, a = int(states[i]), int(actions[i])
        if term[s]:
            done[i] = True
            continue
        lo, hi = mdp.indptr[s * A + a], mdp.indptr[s * A + a + 1]
        k = lo + _first_above(cum[lo:hi], u[i])
        nxt[i] = mdp.indices[k]
        rew[i] = mdp.rewards[s, a]
        prob[i] = mdp.probs[k]
        done[i] = term[nxt[i]]
    return nxt, rew, prob, done
