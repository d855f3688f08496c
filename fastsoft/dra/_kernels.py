"""Numba kernels of DRA (docs/theory.md §6).

Private: arrays in, preallocated outputs, no validation.

An environment is passed as one tuple ``env``::

    (indptr, indices, probs, det, rewards, feasible, memory, terminal, init_states, init_cum)

``indptr``/``indices`` int64 (state-action-pair CSR), ``probs`` and ``rewards``
float64 (``rewards`` (S, A), ``-inf`` where infeasible), ``det`` int64 (S*A,) the
successor of a row with a single successor, else -1, ``feasible`` and
``memory`` bool (S, A) (``memory = feasible & ~terminal``), ``terminal`` bool
(S,), ``init_states`` int64 and ``init_cum`` float64: the support of the
initial distribution and its cumulative probabilities.

Order of random draws (the contract shared with :mod:`fastsoft.reference.dra`):

* initial state: one ``rng.random()`` unless the support has one state;
* a policy draw at ``s``: ``A`` calls ``rng.standard_normal()`` (``zeta_0..zeta_{A-1}``,
  infeasible actions included); with ``x_b = beta (qbar[s, b] + sigma[s, b] zeta_b)``,
  ``e_b = exp(x_b - max x)`` (0 if infeasible) and ``tot = e_0 + ... + e_{A-1}``,
  ``p = e / tot``. When an action is taken: one ``rng.random()`` ``u``, and the first
  ``b`` with ``u * tot < e_0 + ... + e_b`` (the last ``b`` with ``e_b > 0`` if rounding
  leaves ``u * tot`` above the total);
* a transition: one ``rng.random()`` against the running sum of the CSR row,
  skipped when the row has a single successor.

A learning step draws: policy at ``s`` + action, transition, then (expected
SARSA, non-terminal ``s'``) a fresh policy draw at ``s'`` with no action.

Speed (a step costs tens of nanoseconds, see ``benchmarks/dra_speed.py``): the
exponentials are :func:`fastsoft.dra._exp.exp` (libm's algorithm, inline: the same
values); the per-decision helpers are inlined or have a single exit, so that Numba's
reference-count pruning leaves no atomic incref/decref in the step loops (check
``NRT_incref`` in ``inspect_llvm()`` after changing them); the action is sampled
without a data-dependent branch.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from .._jit import ijit, jit, pjit, prange
from ._exp import exp

# option codes (see fastsoft.dra._core)
PSI_ADVANTAGE, PSI_Q, PSI_RETURN = 0, 1, 2
COST_ALLOCATION, COST_ACCESS = 0, 1
UPDATE_EXPECTED_SARSA, UPDATE_Q_LEARNING = 0, 1
ALLOC_DRA, ALLOC_EQUAL, ALLOC_FREQUENCY, ALLOC_STAKES = 0, 1, 2, 3

#: eps of the stakes weights ``(mean spread + eps) / (spread + eps)``.
STAKES_EPS = 1e-6


@jit
def _initial_state(init_states, init_cum, rng):
    # a single exit: see _draw_successor
    n = init_states.shape[0]
    k = 0
    if n > 1:  # else no draw
        u = rng.random()
        while k < n - 1 and not u < init_cum[k]:
            k += 1
    return init_states[k]


@jit
def _draw_successor(indptr, indices, probs, row, rng):
    """The successor of CSR row ``row``: the first ``k`` with ``u < probs[lo] + ... + probs[k]``,
    else the last one.

    Written so that every array's last use ends the block it is in (no ``return`` inside
    the loop): Numba's reference-count pruning then removes the increfs/decrefs (atomic
    operations) of the array arguments, which would otherwise cost more than the draw."""
    lo = indptr[row]
    hi = indptr[row + 1]
    u = rng.random()
    k = lo
    c = probs[lo]
    while k < hi - 1 and not u < c:
        k += 1
        c += probs[k]
    return indices[k]


@ijit
def _policy(qbar, sigma, feasible, s, beta, rng, zeta, p):
    """Draw ``zeta ~ N(0, I_A)``; ``p = exp(x - max x)`` with ``x = beta (qbar[s] + sigma[s]
    zeta)`` over the feasible actions (0 elsewhere), unnormalised; returns the total.

    Inlined into its callers (a call costs about as much as the softmax). Written so that
    Numba's reference-count pruning removes the increfs/decrefs (atomic operations) of the
    inlined copies of the array arguments: ``feasible`` is last read in the first loop
    (``x = -inf`` marks an infeasible action, ``exp(-inf) = 0``; every state has a feasible
    action, so ``m`` is finite) and the second loop, the last use of ``p``, has a single
    exit (``A >= 1``, no zero-trip guard that LLVM would split the decref over)."""
    A = p.shape[0]
    m = -np.inf
    for b in range(A):
        z = rng.standard_normal()
        zeta[b] = z
        x = -np.inf
        if feasible[s, b]:
            x = beta * (qbar[s, b] + sigma[s, b] * z)
            m = max(m, x)
        p[b] = x
    tot = 0.0
    b = 0
    while True:
        e = exp(p[b] - m)
        p[b] = e
        tot += e
        b += 1
        if b == A:
            break
    return tot


@jit
def _normalize(p, tot):
    for b in range(p.shape[0]):
        p[b] = p[b] / tot


@jit
def _sample_action(p, u):
    """First ``b`` with ``u < p_0 + ... + p_b``, else the last ``b`` with ``p_b > 0``.

    Without a data-dependent branch (an early exit mispredicts about once a decision): the
    partial sums are nondecreasing, so that first ``b`` is the number ``k`` of partial sums
    ``<= u`` (and ``p_k > 0``); ``k = A`` when rounding leaves ``u`` above the total."""
    A = p.shape[0]
    c = 0.0
    k = 0
    last = 0
    for b in range(A):
        pb = p[b]
        c += pb
        k += np.int64(c <= u)
        last = b if pb > 0.0 else last
    return k if k < A else last


@jit
def _entropy(p):
    h = 0.0
    for b in range(p.shape[0]):
        if p[b] > 0.0:
            h -= p[b] * np.log(p[b])
    return h


@jit
def _kl(sigma, sigma_base):
    """``KL(N(0, sigma^2) || N(0, sigma_base^2))``."""
    return np.log(sigma_base / sigma) + sigma * sigma / (2.0 * sigma_base * sigma_base) - 0.5


#: Per-run scratch buffers of the episode kernels, allocated once per run.
Scratch = namedtuple("Scratch", "zeta p p2 pbar qmean eg hg touched tlist w")
#: The sums the gradient rollouts add to: reward and entropy gradients, state visits.
Grads = namedtuple("Grads", "grad_r grad_h visits")
#: What a gradient rollout needs to know besides the memories.
Rollout = namedtuple("Rollout", "beta lam psi entropy_bonus max_steps")


@jit
def _new_scratch(S, A):
    """A fresh :class:`Scratch` for ``S`` states and ``A`` actions."""
    return Scratch(np.empty(A), np.empty(A), np.empty(A), np.empty(A), np.empty(S),
                   np.zeros((S, A)), np.zeros((S, A)), np.zeros(S, dtype=np.bool_),
                   np.empty(S, dtype=np.int64), np.ones(S))


@jit
def _learn_episode(env, qbar, sigma, hp, update, max_steps, rng, scr, counts):
    """One learning episode with online updates of ``qbar``; returns (steps, return).
    ``hp`` as in :func:`_train_one`; ``scr`` a :class:`Scratch`."""
    indptr, indices, probs, det, rewards, feasible, memory, terminal, init_states, init_cum = env
    beta = hp[0]
    alpha_q = hp[4]
    gamma = hp[6]
    zeta = scr.zeta
    p = scr.p
    p2 = scr.p2
    A = qbar.shape[1]
    s = _initial_state(init_states, init_cum, rng)
    t = 0
    ret = 0.0
    while t < max_steps and not terminal[s]:
        tot = _policy(qbar, sigma, feasible, s, beta, rng, zeta, p)
        a = _sample_action(p, rng.random() * tot)
        row = s * A + a
        s2 = det[row]  # the single successor, else -1: draw one
        if s2 < 0:
            s2 = _draw_successor(indptr, indices, probs, row, rng)
        r = rewards[s, a]
        counts[s] += 1.0
        ret += r
        t += 1
        if terminal[s2]:
            target = r
        elif update == UPDATE_EXPECTED_SARSA:
            tot2 = _policy(qbar, sigma, feasible, s2, beta, rng, zeta, p2)
            v = 0.0
            for b in range(A):
                if feasible[s2, b]:
                    v += p2[b] / tot2 * qbar[s2, b]  # p2 normalised on the fly
            target = r + gamma * v
        else:
            v = -np.inf
            for b in range(A):
                if feasible[s2, b] and qbar[s2, b] > v:
                    v = qbar[s2, b]
            target = r + gamma * v
        qbar[s, a] += alpha_q * (target - qbar[s, a])
        s = s2
    return t, ret


@jit
def _feasible_means(qbar, feasible, out):
    """``out[s]`` = mean of ``qbar[s, :]`` over the feasible actions."""
    S, A = qbar.shape
    for s in range(S):
        mq = 0.0
        nf = 0
        for b in range(A):
            if feasible[s, b]:
                mq += qbar[s, b]
                nf += 1
        out[s] = mq / nf


@jit
def _grad_rollouts(env, qbar, sigma, ro, n_traj, rng, scr, grads):
    """``n_traj`` rollouts with frozen ``qbar, sigma``; adds to the sums of the
    :class:`Grads` ``grads``: ``grad_r`` (reward score-function gradient), ``grad_h``
    (``lam/T`` times the pathwise action-entropy gradient) and ``visits`` (state visits).
    ``ro`` is a :class:`Rollout`, ``scr`` a :class:`Scratch`. Returns the number of steps."""
    indptr, indices, probs, det, rewards, feasible, memory, terminal, init_states, init_cum = env
    beta = ro.beta
    lam = ro.lam
    psi = ro.psi
    entropy_bonus = ro.entropy_bonus
    max_steps = ro.max_steps
    zeta = scr.zeta
    p = scr.p
    qmean = scr.qmean
    eg = scr.eg
    hg = scr.hg
    touched = scr.touched
    tlist = scr.tlist
    grad_r = grads.grad_r
    grad_h = grads.grad_h
    visits = grads.visits
    A = qbar.shape[1]
    per_traj = psi == PSI_RETURN or entropy_bonus
    if psi == PSI_ADVANTAGE:
        _feasible_means(qbar, feasible, qmean)
    steps = 0
    for _ in range(n_traj):
        s = _initial_state(init_states, init_cum, rng)
        t = 0
        ret = 0.0
        nt = 0
        while t < max_steps and not terminal[s]:
            tot = _policy(qbar, sigma, feasible, s, beta, rng, zeta, p)
            a = _sample_action(p, rng.random() * tot)
            if entropy_bonus:
                _normalize(p, tot)
                tot = 1.0  # p[b] / tot below: the normalised p[b] in either case
            if psi == PSI_ADVANTAGE:
                w = qbar[s, a] - qmean[s]
            elif psi == PSI_Q:
                w = qbar[s, a]
            else:
                w = 1.0
            if per_traj and not touched[s]:
                touched[s] = True
                tlist[nt] = s
                nt += 1
            for b in range(A):
                if feasible[s, b]:
                    ind = 1.0 if b == a else 0.0
                    sc = beta * zeta[b] * (ind - p[b] / tot)
                    if psi == PSI_RETURN:
                        eg[s, b] += sc
                    else:
                        grad_r[s, b] += sc * w
            if entropy_bonus:
                h = _entropy(p)
                for b in range(A):
                    if p[b] > 0.0:
                        hg[s, b] -= beta * zeta[b] * p[b] * (np.log(p[b]) + h)
            visits[s] += 1.0
            ret += rewards[s, a]
            row = s * A + a
            s = det[row]  # the single successor, else -1: draw one
            if s < 0:
                s = _draw_successor(indptr, indices, probs, row, rng)
            t += 1
        steps += t
        if per_traj:
            scale = lam / t if t > 0 else 0.0
            for k in range(nt):
                x = tlist[k]
                touched[x] = False
                for b in range(A):
                    if psi == PSI_RETURN:
                        grad_r[x, b] += ret * eg[x, b]
                        eg[x, b] = 0.0
                    if entropy_bonus:
                        grad_h[x, b] += scale * hg[x, b]
                        hg[x, b] = 0.0
    return steps


@jit
def _gradient_samples(env, qbar, sigma, ro, rng, out_r, out_h, out_v):
    """Per-trajectory gradient samples: ``out_r[j], out_h[j], out_v[j]`` of rollout ``j``
    (``ro`` a :class:`Rollout`)."""
    S, A = qbar.shape
    scr = _new_scratch(S, A)
    steps = 0
    for j in range(out_r.shape[0]):
        steps += _grad_rollouts(env, qbar, sigma, ro, 1, rng, scr,
                                Grads(out_r[j], out_h[j], out_v[j]))
    return steps


@jit
def _state_weights(alloc, memory, counts, qbar, w):
    """Per-state weights of the scalar allocations: ``sigma[s, a] = sigma_scalar * w[s]``."""
    S, A = qbar.shape
    if alloc == ALLOC_EQUAL:
        w[:] = 1.0
        return
    tot = 0.0
    n = 0
    for s in range(S):
        is_mem = False
        for b in range(A):
            if memory[s, b]:
                is_mem = True
        if not is_mem:
            w[s] = 0.0
            continue
        if alloc == ALLOC_FREQUENCY:
            x = counts[s] + 1.0
        else:  # stakes: population std of qbar[s, :] over feasible actions, + eps
            m = 0.0
            k = 0
            for b in range(A):
                if memory[s, b]:
                    m += qbar[s, b]
                    k += 1
            m /= k
            v = 0.0
            for b in range(A):
                if memory[s, b]:
                    d = qbar[s, b] - m
                    v += d * d
            x = np.sqrt(v / k) + STAKES_EPS
        w[s] = x
        tot += x
        n += 1
    mean = tot / n
    for s in range(S):
        if w[s] > 0.0:
            w[s] = mean / w[s]


@jit
def _clip(x, lo, hi):
    return min(max(x, lo), hi)


@jit
def _apply_scalar(memory, w, scalar, smin, smax, sigma):
    S, A = sigma.shape
    for s in range(S):
        for b in range(A):
            if memory[s, b]:
                sigma[s, b] = _clip(scalar * w[s], smin, smax)


@jit
def _update_sigma(memory, sigma, grads, hp, cfg, w, scalar):
    """One gradient step on ``sigma`` (DRA) or on the shared scalar; returns the scalar.
    ``grads`` a :class:`Grads`, ``hp`` and ``cfg`` as in :func:`_train_one`."""
    grad_r = grads.grad_r
    grad_h = grads.grad_h
    visits = grads.visits
    lam = hp[1]
    sigma_base = hp[2]
    alpha_sigma = hp[5]
    n_traj = cfg.n_traj
    cost = cfg.cost
    alloc = cfg.alloc
    smin = cfg.smin
    smax = cfg.smax
    S, A = sigma.shape
    sb2 = sigma_base * sigma_base
    total = 0.0
    for s in range(S):
        for b in range(A):
            if not memory[s, b]:
                continue
            sg = sigma[s, b]
            g = (grad_r[s, b] + grad_h[s, b]) / n_traj
            cg = sg / sb2 - 1.0 / sg
            if cost == COST_ACCESS:
                cg *= visits[s] / n_traj
            d = g - lam * cg
            if alloc == ALLOC_DRA:
                sigma[s, b] = _clip(sg + alpha_sigma * d, smin, smax)
            else:
                v = scalar * w[s]
                if smin < v < smax:
                    total += w[s] * d
    if alloc != ALLOC_DRA:
        scalar = _clip(scalar + alpha_sigma * total, smin, smax)
        _apply_scalar(memory, w, scalar, smin, smax, sigma)
    return scalar


@jit
def _evaluate(env, qbar, sigma, hp, cfg, rng, scr, out, out_entropy):
    """``n_eval`` fresh rollouts: ``out = (reward, cost, entropy term, objective)``; the
    entropy of the mean choice distribution of every non-terminal state (``n_eval`` draws
    each) into ``out_entropy``. Returns the number of steps. ``hp``, ``cfg`` as in
    :func:`_train_one`, ``scr`` a :class:`Scratch`."""
    indptr, indices, probs, det, rewards, feasible, memory, terminal, init_states, init_cum = env
    beta = hp[0]
    lam = hp[1]
    sigma_base = hp[2]
    cost = cfg.cost
    entropy_bonus = cfg.entropy_bonus
    max_steps = cfg.max_steps
    n_eval = cfg.n_eval
    zeta = scr.zeta
    p = scr.p
    pbar = scr.pbar
    S, A = qbar.shape
    kl_alloc = 0.0
    kls = np.zeros(S)
    for s in range(S):
        for b in range(A):
            if memory[s, b]:
                k = _kl(sigma[s, b], sigma_base)
                kls[s] += k
                kl_alloc += k
    steps = 0
    tot_r = 0.0
    tot_c = 0.0
    tot_h = 0.0
    for _ in range(n_eval):
        s = _initial_state(init_states, init_cum, rng)
        t = 0
        hs = 0.0
        while t < max_steps and not terminal[s]:
            tot = _policy(qbar, sigma, feasible, s, beta, rng, zeta, p)
            a = _sample_action(p, rng.random() * tot)
            _normalize(p, tot)
            if entropy_bonus:
                hs += _entropy(p)
            tot_c += kls[s]
            tot_r += rewards[s, a]
            row = s * A + a
            s = det[row]  # the single successor, else -1: draw one
            if s < 0:
                s = _draw_successor(indptr, indices, probs, row, rng)
            t += 1
        if t > 0:
            tot_h += hs / t
        steps += t
    reward = tot_r / n_eval
    if cost == COST_ALLOCATION:
        c = lam * kl_alloc
    else:
        c = lam * tot_c / n_eval
    h = lam * tot_h / n_eval if entropy_bonus else 0.0
    out[0] = reward
    out[1] = c
    out[2] = h
    out[3] = reward - c + h
    for s in range(S):
        if terminal[s]:
            out_entropy[s] = np.nan
            continue
        pbar[:] = 0.0
        for _ in range(n_eval):
            _normalize(p, _policy(qbar, sigma, feasible, s, beta, rng, zeta, p))
            for b in range(A):
                pbar[b] += p[b]
        for b in range(A):
            pbar[b] /= n_eval
        out_entropy[s] = _entropy(pbar)
    return steps


#: The settings shared by every run (all but the per-run hyperparameters ``hp``);
#: ``switch_episode``: the first episode played in the second environment.
TrainConfig = namedtuple(
    "TrainConfig",
    "switch_episode n_traj psi cost entropy_bonus update alloc smin smax max_steps eval_at "
    "n_eval",
)
#: The state and outputs of the runs, each with a leading run axis.
TrainState = namedtuple(
    "TrainState", "qbar sigma returns counts hist hist_entropy n_steps scalars"
)


@jit
def _train_one(env1, env2, cfg, hp, ep_start, ep_stop, rng, erng, qbar, sigma, out, scalar):
    """Episodes ``ep_start .. ep_stop - 1`` of one DRA run in the environment tuples
    ``env1`` then ``env2``; ``cfg`` a :class:`TrainConfig`,
    ``hp = (beta, lam, sigma_base, sigma0, alpha_q, alpha_sigma, gamma)``,
    ``out = (returns, counts, hist, hist_entropy)`` of this run.

    The state of the run lives in its arguments, so that a run split into chunks of
    episodes resumes exactly where it stopped: ``qbar, sigma`` (S, A) and ``counts`` (S,)
    learning visits (initialised by the caller: 0, ``sigma0``, 0), ``scalar`` the shared
    scalar of the baselines (``sigma0`` at the start, NaN for DRA), and the generators
    ``rng``, ``erng`` (advanced in place). Writes ``returns[ep]`` and the evaluation points
    ``k`` with ``ep_start < eval_at[k] <= ep_stop`` into ``hist`` (P, 4) and
    ``hist_entropy`` (P, S). Returns (steps of these episodes, scalar).
    """
    # fields by name, never unpacked (see fastsoft._bundles: unpacked arrays can be copies)
    switch_episode = cfg.switch_episode
    n_traj = cfg.n_traj
    update = cfg.update
    alloc = cfg.alloc
    smin = cfg.smin
    smax = cfg.smax
    max_steps = cfg.max_steps
    eval_at = cfg.eval_at
    returns = out[0]
    counts = out[1]
    hist = out[2]
    hist_entropy = out[3]
    # hp[3] = sigma0: the caller's
    ro = Rollout(hp[0], hp[1], cfg.psi, cfg.entropy_bonus, max_steps)
    S, A = qbar.shape
    scr = _new_scratch(S, A)
    grads = Grads(np.zeros((S, A)), np.zeros((S, A)), np.zeros(S))
    grad_r = grads.grad_r
    grad_h = grads.grad_h
    visits = grads.visits
    w = scr.w
    steps = 0
    n_points = eval_at.shape[0]
    k = 0  # the first evaluation point not yet reached (eval_at is increasing)
    while k < n_points and eval_at[k] <= ep_start:
        k += 1
    for ep in range(ep_start, ep_stop):
        env = env1 if ep < switch_episode else env2
        memory = env[6]
        t, ret = _learn_episode(env, qbar, sigma, hp, update, max_steps, rng, scr, counts)
        steps += t
        returns[ep] = ret
        if alloc != ALLOC_DRA:
            _state_weights(alloc, memory, counts, qbar, w)
            _apply_scalar(memory, w, scalar, smin, smax, sigma)
        grad_r[:] = 0.0
        grad_h[:] = 0.0
        visits[:] = 0.0
        steps += _grad_rollouts(env, qbar, sigma, ro, n_traj, rng, scr, grads)
        scalar = _update_sigma(memory, sigma, grads, hp, cfg, w, scalar)
        while k < n_points and eval_at[k] == ep + 1:
            steps += _evaluate(env, qbar, sigma, hp, cfg, erng, scr, hist[k], hist_entropy[k])
            k += 1
    return steps, scalar


@pjit
def _train_runs(env1, env2, cfg, hp, ep_start, ep_stop, rngs, erngs, state, cursor):
    """Episodes ``ep_start .. ep_stop - 1`` of independent runs in parallel (one generator
    pair and one scratch set per run), resuming from the :class:`TrainState` ``state``
    (``qbar, sigma, counts``, ``scalars``) and the generators; adds the steps to
    ``state.n_steps``. ``hp`` (runs, 7) holds each run's hyperparameters. With
    ``ep_start = 0`` the state must be the initial one (see :func:`_train_one`). Sets
    ``cursor[0] = ep_stop`` when done (the episodes the state holds, whatever interrupts
    the caller)."""
    qbar = state.qbar
    sigma = state.sigma
    returns = state.returns
    counts = state.counts
    hist = state.hist
    hist_entropy = state.hist_entropy
    n_steps = state.n_steps
    scalars = state.scalars
    n_runs = qbar.shape[0]
    for r in prange(n_runs):
        i = np.int64(r)
        st, sc = _train_one(env1, env2, cfg, hp[i], ep_start, ep_stop, rngs[i], erngs[i], qbar[i],
                            sigma[i], (returns[i], counts[i], hist[i], hist_entropy[i]),
                            scalars[i])
        n_steps[i] += st
        scalars[i] = sc
    cursor[0] = ep_stop
