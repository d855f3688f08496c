"""Numba kernels of one block of a partitioned MDP (:mod:`fastsoft.distributed`).

A block holds the states ``lo..hi-1`` of a larger MDP as a *local* CSR: row
``i * A + a`` holds the successors of ``(lo + i, a)``, and ``indices`` point
into an *extended* value vector ``V`` of length ``n + n_halo``: positions
``0..n-1`` are the block's own states, positions ``n..`` the halo (successors
held by other blocks, copied in before each round). The operator is that of
docs/theory.md §2, written exactly as :func:`fastsoft.reference.blocks.block_backup`
computes it in NumPy:

- ``Q(s, a) = R(s, a) + gamma * sum_k p_k V[idx_k] / sum_k p_k`` (``-inf``
  for an infeasible action; the division keeps a float32-rounded row
  stochastic, as the whole-MDP kernels do);
- ``x_a = Q(s, a) + bias[s, a]`` (``bias = eta log mu`` when ``has_bias``);
- ``TV(s) = max_a x_a + sbias[s]`` for ``lam == 0``, else
  ``m + lam log sum_a exp((x_a - m) / lam) + sbias[s]`` with ``m = max_a x_a``;
- terminal states (``term[s]`` when ``has_term``) have ``TV = 0``.

Private: arrays in, preallocated outputs, no validation.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import ijit, jit, pjit, prange

NEG_INF = -np.inf


@ijit
def _state_x(s, A, indptr, indices, probs, R, gamma, V, bias, has_bias, q, x):
    """``q[a] = Q(s, a)``, then ``x[a] = Q(s, a) + bias[s, a]`` (both ``-inf`` when
    infeasible; ``q`` may be ``x``); returns ``max_a x[a]``."""
    m = NEG_INF
    for a in range(A):
        row = s * A + a
        ev = 0.0
        ps = 0.0
        for k in range(indptr[row], indptr[row + 1]):
            p = probs[k]
            ev += p * V[indices[k]]
            ps += p
        r = R[s, a]
        qa = r + gamma * (ev / max(ps, 1e-300)) if r != NEG_INF else NEG_INF
        q[a] = qa
        xa = qa + bias[s, a] if (has_bias and r != NEG_INF) else qa
        x[a] = xa
        if xa > m:
            m = xa
    return m


@ijit
def _soft_max(x, m, A, lam, sb):
    """The regularized max of ``x`` (its maximum ``m`` given), plus ``sb``."""
    if lam == 0.0:
        return m + sb
    acc = 0.0
    for a in range(A):
        if x[a] != NEG_INF:
            acc += math.exp((x[a] - m) / lam)
    return m + lam * math.log(acc) + sb


@jit
def _block_range(lo, hi, reverse, indptr, indices, probs, R, gamma, Vin, Vout, lam, bias,
                 has_bias, sbias, term, has_term):
    """Back up local states ``lo..hi-1`` reading ``Vin``, writing ``Vout``.

    ``Vin is Vout`` is a Gauss-Seidel sweep (in place; decreasing order when
    ``reverse``). Returns ``(min d, max d)`` of ``d = new - old`` over the
    non-terminal states (``(inf, -inf)`` when there is none).
    """
    A = R.shape[1]
    x = np.empty(A)
    dmin = np.inf
    dmax = -np.inf
    for i in range(hi - lo):
        s = hi - 1 - i if reverse else lo + i
        if not (has_term and term[s]):
            m = _state_x(s, A, indptr, indices, probs, R, gamma, Vin, bias, has_bias, x, x)
            new = _soft_max(x, m, A, lam, sbias[s])
            d = new - Vin[s]  # read before the write: Vin may be Vout
            dmin = min(dmin, d)
            dmax = max(dmax, d)
            Vout[s] = new
        else:
            Vout[s] = 0.0
    return dmin, dmax


@pjit
def _block_jacobi(bounds, indptr, indices, probs, R, gamma, Vin, Vout, lam, bias, has_bias,
                  sbias, term, has_term, cmin, cmax):
    """One Jacobi sweep of the block's own states over fixed chunks ``bounds`` (in parallel).

    The result does not depend on the thread count: every state is computed
    alone and the min/max reductions are exact.
    """
    for c in prange(bounds.shape[0] - 1):
        lo_d, hi_d = _block_range(bounds[c], bounds[c + 1], False, indptr, indices, probs, R,
                                  gamma, Vin, Vout, lam, bias, has_bias, sbias, term, has_term)
        cmin[c] = lo_d
        cmax[c] = hi_d


@jit
def _block_round(n_sweeps, gs, it0, bounds, indptr, indices, probs, R, gamma, V, W, C, lam, bias,
                 has_bias, sbias, term, has_term, cmin, cmax):
    """One round of a block: a certifying Jacobi sweep, then ``n_sweeps - 1`` more.

    On entry ``V`` (extended, halo filled in) is the current iterate. The first
    sweep writes ``C[:n] = (T V)[:n]`` and returns its ``(min d, max d)``: the
    certificate of ``C`` when every block's ``V`` is the same global vector.
    The further sweeps read the same (now stale) halo: Jacobi sweeps
    (``gs`` false), or Gauss-Seidel sweeps in place alternating the state order
    (by the global sweep count ``it0 + k``). On exit ``V[:n]`` holds the new
    iterate; ``W`` (extended, same halo as ``V``) is scratch.
    """
    n = R.shape[0]
    _block_jacobi(bounds, indptr, indices, probs, R, gamma, V, C, lam, bias, has_bias, sbias,
                  term, has_term, cmin, cmax)
    dmin = np.inf
    dmax = -np.inf
    for c in range(cmin.shape[0]):
        dmin = min(dmin, cmin[c])
        dmax = max(dmax, cmax[c])
    for i in range(n):
        V[i] = C[i]
    for k in range(1, n_sweeps):
        if gs:
            _block_range(0, n, (it0 + k) % 2 == 1, indptr, indices, probs, R, gamma, V, V, lam,
                         bias, has_bias, sbias, term, has_term)
        else:
            _block_jacobi(bounds, indptr, indices, probs, R, gamma, V, W, lam, bias, has_bias,
                          sbias, term, has_term, cmin, cmax)
            for i in range(n):
                V[i] = W[i]
    return dmin, dmax


@pjit
def _block_greedy(indptr, indices, probs, R, gamma, V, lam, bias, has_bias, sbias, term,
                  has_term, Q, pi, TV):
    """``Q``, the regularized greedy policy and ``TV`` of the block's own states.

    ``pi ∝ exp((Q + bias - m) / lam)``; for ``lam == 0`` all mass on the
    lowest-index maximiser. Terminal states get ``Q = 0``, ``TV = 0`` and the
    uniform policy over their feasible actions.
    """
    A = R.shape[1]
    for s in prange(R.shape[0]):
        x = np.empty(A)
        if has_term and term[s]:
            nf = 0
            for a in range(A):
                Q[s, a] = 0.0
                nf += R[s, a] != NEG_INF
            for a in range(A):
                pi[s, a] = 1.0 / nf if R[s, a] != NEG_INF else 0.0
            TV[s] = 0.0
            continue
        m = _state_x(s, A, indptr, indices, probs, R, gamma, V, bias, has_bias, Q[s], x)
        arg = 0
        for a in range(A):
            if x[a] > x[arg]:
                arg = a
        TV[s] = _soft_max(x, m, A, lam, sbias[s])
        if lam == 0.0:
            for a in range(A):
                pi[s, a] = 0.0
            pi[s, arg] = 1.0
        else:
            tot = 0.0
            for a in range(A):
                e = math.exp((x[a] - m) / lam) if x[a] != NEG_INF else 0.0
                pi[s, a] = e
                tot += e
            for a in range(A):
                pi[s, a] /= tot


@jit
def _block_one_step(R, lam, bias, has_bias, sbias, term, has_term):
    """``min_s (T 0)(s)`` over the block's non-terminal states (``inf`` if none)."""
    A = R.shape[1]
    x = np.empty(A)
    out = np.inf
    for s in range(R.shape[0]):
        if has_term and term[s]:
            continue
        m = NEG_INF
        for a in range(A):
            v = R[s, a] + bias[s, a] if has_bias else R[s, a]
            v = v if R[s, a] != NEG_INF else NEG_INF
            x[a] = v
            m = max(m, v)
        out = min(out, _soft_max(x, m, A, lam, sbias[s]))
    return out
