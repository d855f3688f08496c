"""Plain Python/NumPy reference of DRA (docs/theory.md §6): the yardstick of :mod:`fastsoft.dra`.

One Python iteration per environment step, written like the authors' code
(small NumPy vectors per decision). Given the same random streams it draws the
same numbers in the same order as the Numba kernels of :mod:`fastsoft.dra`
(see :mod:`fastsoft.dra._kernels` for the contract), so on short runs it
produces the same trajectories and the same ``qbar``/``sigma`` (up to rounding:
the kernels may fuse multiply-adds and reassociate short sums).

:func:`train` and :func:`estimate_gradient` take the arguments of their
:mod:`fastsoft.dra` counterparts (validated by the same code) and return the
same result types; runs are sequential.
"""

from __future__ import annotations

import math

import numpy as np

from ..dra import _core
from ..dra import _kernels as K
from ..dra._result import DRAResult, GradientEstimate

__all__ = ["train", "estimate_gradient"]


class _Env:
    """An MDP unpacked for the Python loop."""

    def __init__(self, mdp):
        self.S, self.A = mdp.n_states, mdp.n_actions
        self.indptr = np.asarray(mdp.indptr, dtype=np.int64)
        self.indices = np.asarray(mdp.indices, dtype=np.int64)
        self.probs = np.asarray(mdp.probs, dtype=np.float64)
        self.rewards = np.asarray(mdp.rewards, dtype=np.float64)
        self.feasible = self.rewards > -np.inf
        self.terminal = (np.zeros(self.S, dtype=bool) if mdp.terminal is None
                         else np.asarray(mdp.terminal, dtype=bool))
        self.memory = self.feasible & ~self.terminal[:, None]
        init = np.asarray(mdp.initial, dtype=np.float64)
        self.init_states = np.flatnonzero(init > 0)
        self.init_cum = np.cumsum(init[self.init_states])

    def initial_state(self, rng) -> int:
        if len(self.init_states) == 1:
            return int(self.init_states[0])
        k = int(np.searchsorted(self.init_cum, rng.random(), side="right"))
        return int(self.init_states[min(k, len(self.init_states) - 1)])

    def next_state(self, s: int, a: int, rng) -> int:
        lo, hi = self.indptr[s * self.A + a], self.indptr[s * self.A + a + 1]
        if hi - lo == 1:
            return int(self.indices[lo])
        k = int(np.searchsorted(np.cumsum(self.probs[lo:hi]), rng.random(), side="right"))
        return int(self.indices[lo + min(k, hi - lo - 1)])


def _policy(env, qbar, sigma, s, beta, rng):
    """``zeta ~ N(0, I_A)``; ``e = exp(x - max x)``, ``x = beta (qbar[s] + sigma[s] zeta)``
    (0 for infeasible actions), and its total: ``p = softmax(x) = e / tot``."""
    zeta = rng.standard_normal(env.A)
    x = np.where(env.feasible[s], beta * (qbar[s] + sigma[s] * zeta), -np.inf)
    e = np.exp(x - x.max())
    return zeta, e, e.sum()


def _act(env, qbar, sigma, s, beta, rng):
    """A policy draw and an action ``a ~ p``: ``(zeta, p, a)``."""
    zeta, e, tot = _policy(env, qbar, sigma, s, beta, rng)
    a = _sample(e, rng.random() * tot)
    return zeta, e / tot, a


def _sample(p, u) -> int:
    """First ``b`` with ``u < p_0 + ... + p_b``; the last action with ``p > 0`` otherwise."""
    a = int(np.searchsorted(np.cumsum(p), u, side="right"))
    if a >= len(p):
        a = int(np.flatnonzero(p > 0)[-1])
    return a


def _entropy(p) -> float:
    q = p[p > 0]
    return float(-np.sum(q * np.log(q)))


def _kl(sigma, sigma_base):
    return np.log(sigma_base / sigma) + sigma**2 / (2.0 * sigma_base**2) - 0.5


def _learn_episode(env, qbar, sigma, beta, gamma, alpha_q, update, max_steps, rng, counts):
    s = env.initial_state(rng)
    t, ret = 0, 0.0
    while t < max_steps and not env.terminal[s]:
        _, _, a = _act(env, qbar, sigma, s, beta, rng)
        s2 = env.next_state(s, a, rng)
        r = env.rewards[s, a]
        counts[s] += 1.0
        ret += r
        t += 1
        f2 = env.feasible[s2]
        if env.terminal[s2]:
            target = r
        elif update == K.UPDATE_EXPECTED_SARSA:
            _, e2, tot2 = _policy(env, qbar, sigma, s2, beta, rng)
            p2 = e2 / tot2
            target = r + gamma * np.sum(p2[f2] * qbar[s2, f2])
        else:
            target = r + gamma * np.max(qbar[s2, f2])
        qbar[s, a] += alpha_q * (target - qbar[s, a])
        s = s2
    return t, ret


def _rollout_gradient(env, qbar, sigma, beta, lam, psi, entropy_bonus, max_steps, rng,
                      grad_r, grad_h, visits) -> int:
    """One gradient rollout, added to the sums ``grad_r``, ``grad_h``, ``visits``; its steps."""
    S, A = env.S, env.A
    per_traj = psi == K.PSI_RETURN or entropy_bonus
    eg = np.zeros((S, A)) if per_traj else grad_r
    hg = np.zeros((S, A))
    s = env.initial_state(rng)
    t, ret = 0, 0.0
    while t < max_steps and not env.terminal[s]:
        zeta, p, a = _act(env, qbar, sigma, s, beta, rng)
        f = env.feasible[s]
        if psi == K.PSI_ADVANTAGE:
            w = qbar[s, a] - np.mean(qbar[s, f])
        elif psi == K.PSI_Q:
            w = qbar[s, a]
        else:
            w = 1.0
        score = np.where(f, beta * zeta * ((np.arange(A) == a) - p), 0.0)
        if psi == K.PSI_RETURN:
            eg[s] += score
        else:
            grad_r[s] += score * w
        if entropy_bonus:
            h = _entropy(p)
            m = p > 0
            hg[s, m] -= beta * zeta[m] * p[m] * (np.log(p[m]) + h)
        visits[s] += 1.0
        ret += env.rewards[s, a]
        s = env.next_state(s, a, rng)
        t += 1
    if psi == K.PSI_RETURN:
        grad_r += ret * eg
    if entropy_bonus:
        grad_h += (lam / t if t > 0 else 0.0) * hg
    return t


def _weights(alloc, memory, counts, qbar):
    S = memory.shape[0]
    if alloc == K.ALLOC_EQUAL:
        return np.ones(S)
    has = memory.any(axis=1)
    x = np.zeros(S)
    for s in np.flatnonzero(has):
        if alloc == K.ALLOC_FREQUENCY:
            x[s] = counts[s] + 1.0
        else:
            x[s] = np.std(qbar[s, memory[s]]) + K.STAKES_EPS
    w = np.zeros(S)
    w[has] = x[has].mean() / x[has]
    return w


def _update_sigma(memory, sigma, grad_r, grad_h, visits, n_traj, lam, sigma_base, alpha_sigma,
                  cost, alloc, w, scalar, smin, smax):
    g = (grad_r + grad_h) / n_traj
    cg = sigma / sigma_base**2 - 1.0 / sigma
    if cost == K.COST_ACCESS:
        cg = cg * (visits / n_traj)[:, None]
    d = g - lam * cg
    if alloc == K.ALLOC_DRA:
        sigma[memory] = np.clip(sigma + alpha_sigma * d, smin, smax)[memory]
        return scalar
    v = scalar * w[:, None]
    inside = memory & (smin < v) & (v < smax)
    total = float(np.sum((w[:, None] * d)[inside]))
    scalar = min(max(scalar + alpha_sigma * total, smin), smax)
    sigma[memory] = np.clip(scalar * w[:, None] * np.ones_like(sigma), smin, smax)[memory]
    return scalar


def _evaluate(env, qbar, sigma, beta, lam, sigma_base, cost, entropy_bonus, max_steps, n_eval,
              rng):
    kl = np.where(env.memory, _kl(sigma, sigma_base), 0.0)
    kls = kl.sum(axis=1)
    steps = 0
    tot_r = tot_c = tot_h = 0.0
    for _ in range(n_eval):
        s = env.initial_state(rng)
        t, hs = 0, 0.0
        while t < max_steps and not env.terminal[s]:
            _, p, a = _act(env, qbar, sigma, s, beta, rng)
            if entropy_bonus:
                hs += _entropy(p)
            tot_c += kls[s]
            tot_r += env.rewards[s, a]
            s = env.next_state(s, a, rng)
            t += 1
        if t > 0:
            tot_h += hs / t
        steps += t
    reward = tot_r / n_eval
    c = lam * kl.sum() if cost == K.COST_ALLOCATION else lam * tot_c / n_eval
    h = lam * tot_h / n_eval if entropy_bonus else 0.0
    ent = np.full(env.S, np.nan)
    for s in range(env.S):
        if env.terminal[s]:
            continue
        pbar = np.zeros(env.A)
        for _ in range(n_eval):
            _, e, tot = _policy(env, qbar, sigma, s, beta, rng)
            pbar += e / tot
        ent[s] = _entropy(pbar / n_eval)
    return (reward, c, h, reward - c + h), ent, steps


def _train_one(cfg, hp, rng, erng):
    env1, env2 = _Env(cfg["mdp"]), _Env(cfg["mdp2"])
    beta, lam, sigma_base, sigma0, alpha_q, alpha_sigma, gamma = (float(x) for x in hp)
    S, A = env1.S, env1.A
    max_steps = math.inf if cfg["max_steps"] is None else cfg["max_steps"]
    n_traj, alloc, cost = cfg["n_traj"], cfg["alloc"], cfg["cost"]
    smin, smax = cfg["smin"], cfg["smax"]
    qbar = np.zeros((S, A))
    sigma = np.full((S, A), sigma0)
    counts = np.zeros(S)
    returns = np.zeros(cfg["n_episodes"])
    eval_at = list(cfg["eval_at"])
    hist = np.zeros((len(eval_at), 4))
    hist_ent = np.zeros((len(eval_at), S))
    scalar = sigma0 if alloc != K.ALLOC_DRA else math.nan
    w = np.ones(S)
    steps = 0
    k = 0
    for ep in range(cfg["n_episodes"]):
        env = env1 if ep < cfg["switch_at"] else env2
        t, ret = _learn_episode(env, qbar, sigma, beta, gamma, alpha_q, cfg["update"],
                                max_steps, rng, counts)
        steps += t
        returns[ep] = ret
        if alloc != K.ALLOC_DRA:
            w = _weights(alloc, env.memory, counts, qbar)
            sigma[env.memory] = np.clip(scalar * w[:, None] * np.ones_like(sigma),
                                        smin, smax)[env.memory]
        grad_r = np.zeros((S, A))
        grad_h = np.zeros((S, A))
        visits = np.zeros(S)
        for _ in range(n_traj):
            steps += _rollout_gradient(env, qbar, sigma, beta, lam, cfg["psi"],
                                       cfg["entropy_bonus"], max_steps, rng, grad_r, grad_h,
                                       visits)
        scalar = _update_sigma(env.memory, sigma, grad_r, grad_h, visits, n_traj, lam,
                               sigma_base, alpha_sigma, cost, alloc, w, scalar, smin, smax)
        while k < len(eval_at) and eval_at[k] == ep + 1:
            row, ent, t = _evaluate(env, qbar, sigma, beta, lam, sigma_base, cost,
                                    cfg["entropy_bonus"], max_steps, cfg["n_eval"], erng)
            hist[k] = row
            hist_ent[k] = ent
            steps += t
            k += 1
    return qbar, sigma, scalar, steps, returns, counts, hist, hist_ent


def train(mdp, *, beta, lam, sigma_base, sigma0, alpha_q, alpha_sigma, n_episodes, gamma=None,
          n_traj=10, psi="advantage", cost="allocation", entropy_bonus=False,
          update="expected_sarsa", allocation="dra", sigma_clip=(0.01, 100.0), max_steps=None,
          n_runs=1, seed=None, eval_every=None, n_eval=100, switch_episode=None,
          switch_mdp=None) -> DRAResult:
    """Reference of :func:`fastsoft.dra.train` (same arguments, same result, sequential runs).

    Parameters
    ----------
    mdp : TabularMDP
    beta, lam, sigma_base, sigma0, alpha_q, alpha_sigma, n_episodes
        As in :func:`fastsoft.dra.train`.
    gamma, n_traj, psi, cost, entropy_bonus, update, allocation, sigma_clip
        As in :func:`fastsoft.dra.train`.
    max_steps, n_runs, seed, eval_every, n_eval, switch_episode, switch_mdp
        As in :func:`fastsoft.dra.train`.

    Returns
    -------
    DRAResult
        Equal (to round-off in ``qbar`` and ``sigma``) to the result of
        :func:`fastsoft.dra.train` with the same arguments.

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft import dra
    >>> from fastsoft.reference import dra as rd
    >>> kw = dict(dra.MAZE_PARAMS, n_episodes=3, seed=0)
    >>> maze = fs.mattar_daw_maze()
    >>> bool(np.allclose(rd.train(maze, **kw).sigma, dra.train(maze, **kw).sigma))
    True
    """
    cfg = _core._prepare(
        mdp, beta=beta, lam=lam, sigma_base=sigma_base, sigma0=sigma0, alpha_q=alpha_q,
        alpha_sigma=alpha_sigma, n_episodes=n_episodes, gamma=gamma, n_traj=n_traj, psi=psi,
        cost=cost, entropy_bonus=entropy_bonus, update=update, allocation=allocation,
        sigma_clip=sigma_clip, max_steps=max_steps, n_runs=n_runs, eval_every=eval_every,
        n_eval=n_eval, switch_episode=switch_episode, switch_mdp=switch_mdp,
    )
    outs = [_train_one(cfg, cfg["hp"][r], rng, erng)
            for r, (rng, erng) in enumerate(_core._spawn_generators(seed, cfg["n_runs"]))]
    qbar, sigma, scalars, n_steps, returns, counts, hist, hist_ent = (
        np.array([o[i] for o in outs]) for i in range(8))
    S = mdp.n_states
    P = len(cfg["eval_at"])
    return _core._wrap(cfg, qbar, sigma, scalars.astype(np.float64), n_steps.astype(np.int64),
                       returns.reshape(len(outs), cfg["n_episodes"]), counts,
                       hist.reshape(len(outs), P, 4), hist_ent.reshape(len(outs), P, S))


def estimate_gradient(mdp, qbar, sigma, *, beta, lam, sigma_base, n_traj=10, psi="advantage",
                      cost="allocation", entropy_bonus=False, max_steps=None,
                      seed=None) -> GradientEstimate:
    """Reference of :func:`fastsoft.dra.estimate_gradient`.

    Parameters
    ----------
    mdp : TabularMDP
    qbar, sigma : array of float, shape (S, A)
    beta, lam, sigma_base, n_traj, psi, cost, entropy_bonus, max_steps, seed
        As in :func:`fastsoft.dra.estimate_gradient`.

    Returns
    -------
    GradientEstimate
        Equal to the result of :func:`fastsoft.dra.estimate_gradient`.

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft import dra
    >>> from fastsoft.reference import dra as rd
    >>> maze = fs.mattar_daw_maze()
    >>> qbar, sigma = np.zeros((54, 4)), np.full((54, 4), 3.0)
    >>> kw = dict(beta=10.0, lam=0.1, sigma_base=5.0, n_traj=2, seed=0)
    >>> ref_g = rd.estimate_gradient(maze, qbar, sigma, **kw)
    >>> bool(np.allclose(ref_g.reward, dra.estimate_gradient(maze, qbar, sigma, **kw).reward))
    True
    """
    a = _core._gradient_args(mdp, qbar, sigma, beta=beta, lam=lam, sigma_base=sigma_base,
                             n_traj=n_traj, psi=psi, cost=cost, entropy_bonus=entropy_bonus,
                             max_steps=max_steps)
    env = _Env(mdp)
    rng = np.random.default_rng(seed)
    max_steps = math.inf if max_steps is None else a["max_steps"]
    n, S, A = a["n_traj"], env.S, env.A
    out_r, out_h, out_v = np.zeros((n, S, A)), np.zeros((n, S, A)), np.zeros((n, S))
    steps = 0
    for j in range(n):
        steps += _rollout_gradient(env, a["qbar"], a["sigma"], a["beta"], a["lam"], a["psi"],
                                   a["entropy_bonus"], max_steps, rng, out_r[j], out_h[j],
                                   out_v[j])
    cg = np.where(env.memory, a["lam"] * (a["sigma"] / a["sigma_base"] ** 2 - 1.0 / a["sigma"]),
                  0.0)
    if a["cost"] == K.COST_ACCESS:
        cg = cg * out_v.mean(axis=0)[:, None]
    return GradientEstimate(reward=out_r, entropy=out_h, visits=out_v, cost=cg,
                            n_steps=steps)
