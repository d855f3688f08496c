"""Control as inference: the optimality variable of docs/theory.md §5 (note A; Levine 2018).

With rewards ``r <= 0``, ``P(O_t = 1 | s_t, a_t) = exp(r(s_t, a_t))``. For a
horizon ``T``, a start distribution and an action prior (uniform over feasible
actions by default) this module computes exactly

* ``log P(O_{1:T} = 1)`` by the log-space backward pass (:func:`backward_pass`),
  and the posterior policy ``pi_t(a|s) = prior(a|s) exp(Q_t(s,a) - V_t(s))``;
* the ELBO of a policy, ``E_pi[sum_t r_t] - KL(q_pi || p)`` (:func:`elbo`);
* the mutual information of note A (docs/theory.md §5.4) between a trajectory ``tau ~ pi`` and
  ``O``: ``I = h(E[p(tau)]) - E[h(p(tau))]`` with ``p(tau) = exp(sum_t r_t)`` and
  ``h`` the binary entropy in nats (:func:`mutual_information`), by enumerating
  all trajectories (tiny problems) or by Monte Carlo from
  :func:`fastsoft.sample_trajectories`.

Conventions
-----------
* The model is undiscounted: ``mdp.gamma`` is ignored.
* Rewards: by default every feasible action of a non-terminal state must have
  ``R(s, a) <= 0`` (else a ``ValueError`` names the first offending ``(s, a)``).
  ``shift=True`` uses ``R - max R`` (the maximum over feasible actions of
  non-terminal states); a number ``c`` uses ``R - c``. The shift is applied per
  step taken, so episodes that end early at a terminal state pay it fewer
  times. Results record the shift used.
* Terminal states end the trajectory: a terminal state reached before the
  horizon contributes ``log 1 = 0`` afterwards (``V_t = 0`` there for every
  ``t``), exactly like an episode of :func:`fastsoft.sample_trajectories`.
* Time runs ``t = 0..T-1`` (Levine 2018 writes ``1..T``); ``V`` has ``T + 1`` rows
  with ``V[T] = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp, xlog1py, xlogy

from ._jit import pjit, prange
from ._validation import check_int, check_mdp, check_real
from .mdp import TabularMDP
from .sampling import (
    _as_f64,
    _pair_matrix,
    _terminal_mask,
    as_initial,
    as_policy,
    as_prior,
    sample_trajectories,
)

__all__ = [
    "BackwardPass",
    "Elbo",
    "MutualInformation",
    "TrajectoryEnumeration",
    "backward_pass",
    "elbo",
    "enumerate_trajectories",
    "count_trajectories",
    "mutual_information",
    "binary_entropy",
]


# ------------------------------------------------------------------- kernel
@pjit
def _log_backward(indptr, indices, probs, rewards, terminal, log_prior, Q, V, policy):
    """Log-space backward pass (exact inference) for ``t = T-1 .. 0``.

    ``V[T]`` must be set by the caller. Terminal states: ``V = Q = 0`` and the
    posterior is the prior. ``log sum_s' P exp(V_{t+1})`` is computed with the
    global shift ``M = max V_{t+1}`` (one ``exp`` per state); a row whose sum
    falls below ``1e-280`` (successor values more than ~640 below ``M``) is
    redone with its own maximum, so nothing underflows.
    """
    T = Q.shape[0]
    S, A = rewards.shape
    ninf = -np.inf
    E = np.empty(S)
    for t in range(T - 1, -1, -1):
        M = ninf
        for s in range(S):
            if V[t + 1, s] > M:
                M = V[t + 1, s]
        for s in range(S):  # serial: one parallel region per step is cheaper
            E[s] = np.exp(V[t + 1, s] - M) if M > ninf else 0.0
        for s in prange(S):
            if terminal[s]:
                V[t, s] = 0.0
                for a in range(A):
                    Q[t, s, a] = 0.0
                    policy[t, s, a] = np.exp(log_prior[s, a])
                continue
            vmax = ninf
            for a in range(A):
                r = rewards[s, a]
                q = ninf
                if r > ninf:
                    lo = indptr[s * A + a]
                    hi = indptr[s * A + a + 1]
                    acc = 0.0
                    for k in range(lo, hi):
                        acc += probs[k] * E[indices[k]]
                    if acc > 1e-280:
                        q = r + M + np.log(acc)
                    else:
                        m = ninf
                        for k in range(lo, hi):
                            v = V[t + 1, indices[k]]
                            if v > m:
                                m = v
                        if m > ninf:
                            acc = 0.0
                            for k in range(lo, hi):
                                acc += probs[k] * np.exp(V[t + 1, indices[k]] - m)
                            q = r + m + np.log(acc)
                Q[t, s, a] = q
                x = log_prior[s, a] + q
                if x > vmax:
                    vmax = x
            if vmax == ninf:
                V[t, s] = ninf
                for a in range(A):
                    policy[t, s, a] = np.exp(log_prior[s, a])
                continue
            acc = 0.0
            for a in range(A):
                acc += np.exp(log_prior[s, a] + Q[t, s, a] - vmax)
            v = vmax + np.log(acc)
            V[t, s] = v
            for a in range(A):
                policy[t, s, a] = np.exp(log_prior[s, a] + Q[t, s, a] - v)


# ------------------------------------------------------------------- helpers
def shifted_rewards(mdp: TabularMDP, shift) -> tuple[np.ndarray, float]:
    """Rewards ``R - c`` (float64) with ``R - c <= 0`` where it matters, and ``c``.

    ``shift=False`` (``c = 0``) requires ``R <= 0``; ``True`` takes ``c = max R``;
    a number is ``c`` itself. Only feasible actions of non-terminal states are
    checked (terminal states collect no reward).
    """
    R = np.array(mdp.rewards, dtype=np.float64)
    live = ~_terminal_mask(mdp)
    feas = mdp.feasible & live[:, None]
    if shift is True:
        c = float(np.max(R[feas]))
    elif shift is False or shift is None:
        c = 0.0
    else:
        c = check_real(shift, "shift")
    out = R - c
    bad = feas & (out > 0)
    if bad.any():
        s, a = np.argwhere(bad)[0]
        hint = "pass shift=True to subtract the maximum reward" if c == 0.0 else (
            f"shift={c!r} is too small")
        raise ValueError(
            f"the optimality model needs rewards <= 0, but R - shift = {out[s, a]!r} > 0 at "
            f"(s, a) = ({s}, {a}); {hint}"
        )
    return out, c


def binary_entropy(p) -> np.ndarray:
    """Binary entropy ``h(p) = -p log p - (1 - p) log(1 - p)`` in nats.

    Parameters
    ----------
    p : array_like
        Probabilities in ``[0, 1]``.

    Returns
    -------
    ndarray
        ``h(p)``, with ``h(0) = h(1) = 0``; accurate for tiny ``p`` (``log1p``).

    Examples
    --------
    >>> from fastsoft import inference
    >>> inference.binary_entropy([0.0, 0.5, 1.0]).round(6) + 0.0
    array([0.      , 0.693147, 0.      ])
    """
    p = np.asarray(p, dtype=np.float64)
    return -xlogy(p, p) - xlog1py(1.0 - p, -p)


def _log_prior(mu: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(mu)


# ------------------------------------------------------------------- results
@dataclass(frozen=True, eq=False)
class BackwardPass:
    """Exact inference in the optimality model by the log-space backward pass.

    Attributes
    ----------
    log_evidence : float
        ``log P(O_{0:T-1} = 1) = log sum_s initial(s) exp(V[0, s])``.
    Q : ndarray, shape (T, S, A)
        ``Q_t(s,a) = r(s,a) + log sum_s' P(s'|s,a) exp(V_{t+1}(s'))`` (``-inf``
        for infeasible actions, 0 at terminal states).
    V : ndarray, shape (T + 1, S)
        ``V_t(s) = log sum_a prior(a|s) exp(Q_t(s,a))``; ``V[T] = 0`` and
        ``V_t = 0`` at terminal states.
    policy : ndarray, shape (T, S, A)
        Posterior policy ``prior(a|s) exp(Q_t(s,a) - V_t(s))`` (uniform over
        feasible actions at terminal states, where nothing is decided).
    shift : float
        The constant subtracted from the rewards.
    horizon : int
    """

    log_evidence: float
    Q: np.ndarray
    V: np.ndarray
    policy: np.ndarray
    shift: float
    horizon: int

    def __repr__(self) -> str:
        return (f"BackwardPass(log_evidence={self.log_evidence:.6g}, horizon={self.horizon}, "
                f"shift={self.shift:g})")


@dataclass(frozen=True, eq=False)
class Elbo:
    """ELBO of a policy in the optimality model.

    Attributes
    ----------
    value : float
        ``expected_reward - kl`` (``<= log_evidence`` of :func:`backward_pass`).
    expected_reward : float
        ``E_q[sum_t r_t]`` with shifted rewards.
    kl : float
        ``KL(q_pi || p) = E_q[sum_t KL(pi_t(.|s_t) || prior(.|s_t))]`` (the
        dynamics and start distribution are shared and cancel).
    shift : float
    horizon : int
    """

    value: float
    expected_reward: float
    kl: float
    shift: float
    horizon: int


@dataclass(frozen=True, eq=False)
class TrajectoryEnumeration:
    """Every trajectory of positive probability under a policy (tiny problems).

    Attributes
    ----------
    log_prob : ndarray, shape (n,)
        ``log q(tau)``: start distribution x policy x dynamics.
    log_prior_prob : ndarray, shape (n,)
        ``log p(tau)``: the same with the action prior instead of the policy
        (``-inf`` where the prior excludes an action the policy takes).
    reward_sum : ndarray, shape (n,)
        ``sum_t R(s_t, a_t)`` with the MDP's (unshifted) rewards.
    lengths : ndarray of int64, shape (n,)
        Steps taken (as in :class:`fastsoft.sampling.Trajectories`).
    states : ndarray of int64, shape (n, horizon + 1)
        The states, ``-1`` after the end.
    actions : ndarray of int64, shape (n, horizon)
        The actions, ``-1`` after the end.
    """

    log_prob: np.ndarray
    log_prior_prob: np.ndarray
    reward_sum: np.ndarray
    lengths: np.ndarray
    states: np.ndarray
    actions: np.ndarray

    @property
    def n_trajectories(self) -> int:
        """Number of trajectories."""
        return int(self.log_prob.shape[0])


@dataclass(frozen=True, eq=False)
class MutualInformation:
    """``I(tau; O) = h(E[p(tau)]) - E[h(p(tau))]`` (nats) and its ingredients.

    Attributes
    ----------
    value : float
    stderr : float
        0 for enumeration; the delta-method standard error for Monte Carlo.
    p_optimal : float
        ``E_pi[p(tau)] = E_pi[exp(sum_t r_t)]`` (shifted rewards).
    mean_entropy : float
        ``E_pi[h(p(tau))]``.
    method : str
        ``"enumerate"`` or ``"monte_carlo"``.
    n : int
        Trajectories enumerated or episodes sampled.
    shift : float
    horizon : int
    """

    value: float
    stderr: float
    p_optimal: float
    mean_entropy: float
    method: str
    n: int
    shift: float
    horizon: int


# ---------------------------------------------------------------- public API
def backward_pass(
    mdp: TabularMDP,
    horizon: int,
    *,
    prior=None,
    initial=None,
    shift: bool | float = False,
) -> BackwardPass:
    """Exact ``log P(O = 1)`` and the posterior policy by the log-space backward pass.

    ``V_T = 0``; for ``t = T-1 .. 0``:
    ``Q_t(s,a) = r(s,a) + log sum_s' P(s'|s,a) exp(V_{t+1}(s'))`` and
    ``V_t(s) = log sum_a prior(a|s) exp(Q_t(s,a))``, every log-sum-exp taken
    after subtracting its maximum. Note the optimistic ``log E exp`` over next
    states (exact inference), not soft value iteration's ``E``.

    Parameters
    ----------
    mdp : TabularMDP
    horizon : int
        ``T >= 1``.
    prior : array of shape (S, A) or (A,), optional
        Action prior; uniform over feasible actions by default.
    initial : int, array of shape (S,) or None
        Start state or distribution (default as in :func:`fastsoft.sample_trajectories`).
    shift : bool or float
        Reward shift, see the module docstring.

    Returns
    -------
    BackwardPass

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft import inference
    >>> mdp = fs.random_mdp(4, 2, 2, gamma=0.9, seed=0, reward_range=(-1.0, 0.0))
    >>> bp = inference.backward_pass(mdp, 3, initial=np.full(4, 0.25))
    >>> round(bp.log_evidence, 6), bp.policy.shape
    (-1.507583, (3, 4, 2))
    """
    mdp = check_mdp(mdp)
    T = check_int(horizon, "horizon", low=1)
    R, c = shifted_rewards(mdp, shift)
    mu = as_prior(mdp, prior)
    p0 = as_initial(mdp, initial)
    S, A = mdp.n_states, mdp.n_actions
    Q = np.empty((T, S, A))
    V = np.empty((T + 1, S))
    V[T] = 0.0
    pol = np.empty((T, S, A))
    _log_backward(mdp.indptr, mdp.indices, _as_f64(mdp, "probs"), R, _terminal_mask(mdp),
                  _log_prior(mu), Q, V, pol)
    with np.errstate(divide="ignore"):
        log_ev = float(logsumexp(V[0], b=p0))
    return BackwardPass(log_ev, Q, V, pol, c, T)


def elbo(
    mdp: TabularMDP,
    policy,
    horizon: int,
    *,
    prior=None,
    initial=None,
    shift: bool | float = False,
) -> Elbo:
    """Exact ELBO ``E_q[sum_t r_t] - KL(q || p)`` of a policy by a backward recursion.

    ``q`` is the trajectory distribution of ``policy`` and ``p`` that of the
    action prior (same start distribution and dynamics), both stopped at
    terminal states and after ``horizon`` steps. ``ELBO <= log P(O = 1)``, with
    equality for the posterior policy of :func:`backward_pass` when the
    dynamics are deterministic and the start state is fixed.

    Parameters
    ----------
    mdp : TabularMDP
    policy : array
        ``(S, A)``, ``(T, S, A)`` with ``T >= horizon``, or ``(S,)`` integer actions.
    horizon : int
    prior, initial, shift
        As in :func:`backward_pass`.

    Returns
    -------
    Elbo
        ``kl`` is ``inf`` when the policy takes an action the prior excludes.

    Examples
    --------
    The ELBO of the posterior policy is below the log-evidence:

    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft import inference
    >>> mdp = fs.random_mdp(4, 2, 2, gamma=0.9, seed=0, reward_range=(-1.0, 0.0))
    >>> bp = inference.backward_pass(mdp, 3, initial=np.full(4, 0.25))
    >>> e = inference.elbo(mdp, bp.policy, 3, initial=np.full(4, 0.25))
    >>> bool(e.value <= bp.log_evidence), round(e.kl, 6)
    (True, 0.041013)
    """
    mdp = check_mdp(mdp)
    T = check_int(horizon, "horizon", low=1)
    R, c = shifted_rewards(mdp, shift)
    pol = as_policy(mdp, policy, horizon=T)
    mu = as_prior(mdp, prior)
    p0 = as_initial(mdp, initial)
    B = _pair_matrix(mdp)
    S, A = mdp.n_states, mdp.n_actions
    live = ~_terminal_mask(mdp)
    er = np.zeros(S)
    kl = np.zeros(S)
    for t in range(T - 1, -1, -1):
        pi = pol[t if t < pol.shape[0] else pol.shape[0] - 1]
        pos = pi > 0
        r_next = (B @ er).reshape(S, A)
        k_next = (B @ kl).reshape(S, A)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_ratio = np.where(pos, np.log(np.where(pos, pi, 1.0)) - np.log(mu), 0.0)
            er = np.where(pos, pi * (np.where(pos, R, 0.0) + r_next), 0.0).sum(axis=1)
            kl = np.where(pos, pi * (log_ratio + k_next), 0.0).sum(axis=1)
        er[~live] = 0.0
        kl[~live] = 0.0
    e = float(p0 @ er)
    k = float(p0[p0 > 0] @ kl[p0 > 0])
    return Elbo(e - k, e, k, c, T)


def count_trajectories(mdp: TabularMDP, policy, horizon: int, *, initial=None) -> float:
    """Number of trajectories of positive probability, without listing them.

    Parameters
    ----------
    mdp : TabularMDP
    policy : array
        ``(S, A)``, ``(T, S, A)`` or ``(S,)`` integer actions.
    horizon : int
    initial : int, array of shape (S,) or None

    Returns
    -------
    float
        The count (a float: it may exceed any integer type), computed by
        propagating path counts forward through the support of the policy.

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft import inference
    >>> mdp = fs.random_mdp(4, 2, 2, gamma=0.9, seed=0, reward_range=(-1.0, 0.0))
    >>> inference.count_trajectories(mdp, np.full((4, 2), 0.5), 3, initial=0)
    64.0
    """
    mdp = check_mdp(mdp)
    T = check_int(horizon, "horizon", low=0)
    pol = as_policy(mdp, policy, horizon=T)
    p0 = as_initial(mdp, initial)
    return _count(mdp, pol, p0, T)


def _count(mdp, pol, p0, T) -> float:
    B = _pair_matrix(mdp)
    Bc = B.copy()
    Bc.data[:] = 1.0
    live = ~_terminal_mask(mdp)
    n = (p0 > 0).astype(np.float64)
    total = 0.0
    for t in range(T):
        total += n[~live].sum()
        pi = pol[t if t < pol.shape[0] else pol.shape[0] - 1]
        w = np.where(live[:, None] & (pi > 0), n[:, None], 0.0)
        n = Bc.T @ w.ravel()
    return float(total + n.sum())


def enumerate_trajectories(
    mdp: TabularMDP,
    policy,
    horizon: int,
    *,
    prior=None,
    initial=None,
    max_trajectories: int = 200_000,
) -> TrajectoryEnumeration:
    """List every trajectory of positive probability under ``policy``.

    Trajectories start from the support of the start distribution, take
    actions with ``policy[t](a|s) > 0`` and stop on entering a terminal state or
    after ``horizon`` steps.

    Parameters
    ----------
    mdp : TabularMDP
    policy : array
        ``(S, A)``, ``(T, S, A)`` or ``(S,)`` integer actions.
    horizon : int
    prior : array, optional
        Action prior for ``log_prior_prob`` (uniform over feasible actions by default).
    initial : int, array of shape (S,) or None
    max_trajectories : int
        Raise ``ValueError`` (before enumerating) when there are more trajectories.

    Returns
    -------
    TrajectoryEnumeration

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft import inference
    >>> mdp = fs.random_mdp(4, 2, 2, gamma=0.9, seed=0, reward_range=(-1.0, 0.0))
    >>> en = inference.enumerate_trajectories(mdp, np.full((4, 2), 0.5), 3, initial=0)
    >>> len(en.log_prob), round(float(np.exp(en.log_prob).sum()), 6)
    (64, 1.0)
    """
    mdp = check_mdp(mdp)
    T = check_int(horizon, "horizon", low=0)
    limit = check_int(max_trajectories, "max_trajectories", low=1)
    pol = as_policy(mdp, policy, horizon=T)
    mu = as_prior(mdp, prior)
    p0 = as_initial(mdp, initial)
    n_total = _count(mdp, pol, p0, T)
    if n_total > limit:
        raise ValueError(
            f"enumeration would list {n_total:.4g} trajectories, more than "
            f"max_trajectories={limit}; use Monte Carlo (method='monte_carlo') or raise the limit"
        )
    A = mdp.n_actions
    term = _terminal_mask(mdp)
    R = np.asarray(mdp.rewards, dtype=np.float64)
    probs = np.asarray(mdp.probs, dtype=np.float64)
    log_pi_all = _log_prior(pol)
    log_mu = _log_prior(mu)
    s0 = np.flatnonzero(p0 > 0)
    n = s0.shape[0]
    states = np.full((n, T + 1), -1, dtype=np.int64)
    actions = np.full((n, T), -1, dtype=np.int64)
    states[:, 0] = s0
    lq = np.log(p0[s0])
    lp = lq.copy()
    rsum = np.zeros(n)
    length = np.zeros(n, dtype=np.int64)
    alive = ~term[s0]
    for t in range(T):
        idx = np.flatnonzero(alive)
        if idx.size == 0:
            break
        log_pi = log_pi_all[t if t < pol.shape[0] else pol.shape[0] - 1]
        s = states[idx, t]
        e_rel, a = np.nonzero(pol[t if t < pol.shape[0] else pol.shape[0] - 1][s] > 0)
        e = idx[e_rel]
        se = s[e_rel]
        rows = se * A + a
        lo = mdp.indptr[rows]
        cnt = mdp.indptr[rows + 1] - lo
        rep = np.repeat(np.arange(e.size), cnt)
        k = np.repeat(lo - np.cumsum(cnt) + cnt, cnt) + np.arange(rep.size)
        parent = e[rep]
        ns = mdp.indices[k].astype(np.int64)
        new_states = states[parent].copy()
        new_states[:, t + 1] = ns
        new_actions = actions[parent].copy()
        new_actions[:, t] = a[rep]
        lp_step = log_mu[se, a][rep]
        new_lq = lq[parent] + log_pi[se, a][rep] + np.log(probs[k])
        new_lp = lp[parent] + lp_step + np.log(probs[k])
        new_r = rsum[parent] + R[se, a][rep]
        new_len = np.full(rep.size, t + 1, dtype=np.int64)
        keep = ~alive
        states = np.concatenate([states[keep], new_states])
        actions = np.concatenate([actions[keep], new_actions])
        lq = np.concatenate([lq[keep], new_lq])
        lp = np.concatenate([lp[keep], new_lp])
        rsum = np.concatenate([rsum[keep], new_r])
        length = np.concatenate([length[keep], new_len])
        alive = np.concatenate([np.zeros(int(keep.sum()), bool), ~term[ns]])
    return TrajectoryEnumeration(lq, lp, rsum, length, states, actions)


def mutual_information(
    mdp: TabularMDP,
    policy,
    horizon: int,
    *,
    method: str = "auto",
    initial=None,
    shift: bool | float = False,
    n_episodes: int = 100_000,
    seed=None,
    max_trajectories: int = 200_000,
) -> MutualInformation:
    """Mutual information ``I(tau; O) = h(E[p(tau)]) - E[h(p(tau))]`` (docs/theory.md §5.4).

    ``tau`` is a trajectory of ``policy`` (stopped at terminal states and after
    ``horizon`` steps), ``p(tau) = exp(sum_t r_t) = P(O = 1 | tau)`` with the
    shifted rewards, and ``h`` the binary entropy in nats. ``I >= 0`` (``h`` is
    concave).

    Parameters
    ----------
    mdp : TabularMDP
    policy : array
        ``(S, A)``, ``(T, S, A)`` or ``(S,)`` integer actions.
    horizon : int
    method : {"auto", "enumerate", "monte_carlo"}
        ``"enumerate"`` is exact (``ValueError`` beyond ``max_trajectories``);
        ``"monte_carlo"`` samples ``n_episodes`` episodes with
        :func:`fastsoft.sample_trajectories` and reports the delta-method
        standard error; ``"auto"`` enumerates when there are at most
        ``max_trajectories`` trajectories.
    initial : int, array of shape (S,) or None
    shift : bool or float
        Reward shift, see the module docstring.
    n_episodes : int
        Monte Carlo sample size.
    seed : seed-like, optional
        Monte Carlo seed.
    max_trajectories : int
        Enumeration limit.

    Returns
    -------
    MutualInformation

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft import inference
    >>> mdp = fs.random_mdp(4, 2, 2, gamma=0.9, seed=0, reward_range=(-1.0, 0.0))
    >>> mi = inference.mutual_information(mdp, np.full((4, 2), 0.5), 3, initial=0)
    >>> mi.method, round(mi.value, 6)
    ('enumerate', 0.011208)
    """
    mdp = check_mdp(mdp)
    T = check_int(horizon, "horizon", low=1)
    if method not in ("auto", "enumerate", "monte_carlo"):
        raise ValueError(f"method must be 'auto', 'enumerate' or 'monte_carlo', got {method!r}")
    R, c = shifted_rewards(mdp, shift)
    limit = check_int(max_trajectories, "max_trajectories", low=1)
    if method == "auto":
        pol = as_policy(mdp, policy, horizon=T)
        n_traj = _count(mdp, pol, as_initial(mdp, initial), T)
        method = "enumerate" if n_traj <= limit else "monte_carlo"
    if method == "enumerate":
        en = enumerate_trajectories(mdp, policy, T, initial=initial, max_trajectories=limit)
        w = np.exp(en.log_prob)
        w = w / w.sum()
        p = np.minimum(np.exp(en.reward_sum - c * en.lengths), 1.0)
        # the normalised weights may sum to 1 + 2e-16: clip the mean back into [0, 1]
        m = min(max(float(w @ p), 0.0), 1.0)
        hbar = float(w @ binary_entropy(p))
        value = float(binary_entropy(m)) - hbar
        return MutualInformation(value, 0.0, m, hbar, "enumerate", en.n_trajectories, c, T)
    n = check_int(n_episodes, "n_episodes", low=2)
    tr = sample_trajectories(mdp, policy, n_episodes=n, horizon=T, seed=seed, initial=initial)
    p = np.minimum(np.exp(tr.rewards.sum(axis=1) - c * tr.lengths), 1.0)
    hp = binary_entropy(p)
    m = min(max(float(p.mean()), 0.0), 1.0)
    hbar = float(hp.mean())
    value = float(binary_entropy(m)) - hbar
    with np.errstate(divide="ignore"):
        dh = np.log1p(-m) - np.log(m) if 0.0 < m < 1.0 else 0.0
    influence = dh * (p - m) - (hp - hbar)
    stderr = float(influence.std(ddof=1) / np.sqrt(n))
    return MutualInformation(value, stderr, m, hbar, "monte_carlo", n, c, T)
