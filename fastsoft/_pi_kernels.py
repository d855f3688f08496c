"""Numba kernels of regularized policy evaluation and policy iteration (docs/theory.md §3).

Private: arrays in, preallocated outputs, no validation. The NumPy yardsticks
are in :mod:`fastsoft.reference.pi`.

Conventions (shared with :mod:`fastsoft._kernels`):

- ``pi`` is a float64 ``(S, A)`` stochastic policy; actions with ``pi == 0``
  are skipped, so a deterministic policy costs one action per state.
- ``model``, ``pin``, ``chunks`` and ``reg = (lam, bias, has_bias, sbias)``
  are the bundles of :mod:`fastsoft._bundles`; ``reg`` describes the regularizer of the
  policy's reward ``r_pi(s) = sum_a pi (R + bias) - lam sum_a pi log pi + sbias[s]``
  (``bias = eta log mu``; ``sbias = -eta log |feasible(s)|`` for the uniform prior),
  which is ``sum_a pi R + tau H(pi_s) - eta KL(pi_s || mu_s)``.
- Terminal (pinned) states (``pin.any and pin.mask[s]``) have value 0: their rows of
  ``P_pi`` are empty, and their columns are dropped (``V[t]`` is never read).
"""

from __future__ import annotations

import math

import numpy as np

from ._csr import _sort_row
from ._jit import ijit, jit, pjit, prange
from ._kernels import _round_off_stop, _row_mean

NEG_INF = -np.inf


@pjit
def _policy_reward(R, pi, reg, pin, r):
    """``r[s] = sum_a pi (R + bias) - lam sum_a pi log pi + sbias[s]`` (0 at terminal states)."""
    lam = reg.lam
    bias = reg.bias
    has_bias = reg.has_bias
    sbias = reg.sbias
    term = pin.mask
    has_term = pin.any
    S, A = R.shape[0], R.shape[1]
    for s in prange(S):
        if has_term and term[s]:
            r[s] = 0.0
            continue
        acc = 0.0
        ent = 0.0
        for a in range(A):
            p = pi[s, a]
            if p == 0.0:
                continue
            x = R[s, a] + bias[s, a] if has_bias else R[s, a]
            acc += p * x
            ent += p * math.log(p)
        r[s] = acc - lam * ent + sbias[s]


@ijit
def _policy_backup(s, A, indptr, indices, probs, pi, r, gamma, V):
    """``r[s] + gamma sum_a pi(a|s) sum_s' P(s'|s,a) V[s']``.

    Rows are normalised by their own sum, as in the Bellman kernels; ``V`` is 0
    at terminal states (the sweeps pin it).
    """
    ev = 0.0
    for a in range(A):
        p = pi[s, a]
        if p == 0.0:
            continue
        row = s * A + a
        ev += p * _row_mean(indptr[row], indptr[row + 1], indices, probs, V)
    return r[s] + gamma * ev


@jit
def _policy_block(lo, hi, reverse, model, pin, pi, r, Vin, Vout):
    """Apply ``T_pi`` to states ``lo..hi-1`` (``Vin is Vout``: Gauss-Seidel).

    Returns ``(min d, max d)`` over non-terminal states, ``d = new - old``.
    """
    indptr = model.indptr
    indices = model.indices
    probs = model.probs
    gamma = model.gamma
    term = pin.mask
    has_term = pin.any
    A = pi.shape[1]
    dmin = np.inf
    dmax = -np.inf
    for i in range(hi - lo):
        s = hi - 1 - i if reverse else lo + i
        if has_term and term[s]:
            Vout[s] = 0.0
            continue
        old = Vin[s]
        new = _policy_backup(s, A, indptr, indices, probs, pi, r, gamma, Vin)
        Vout[s] = new
        d = new - old
        if d < dmin:
            dmin = d
        if d > dmax:
            dmax = d
    return dmin, dmax


@pjit
def _policy_jacobi_parallel(chunks, model, pin, pi, r, Vin, Vout):
    bounds = chunks.bounds
    cmin = chunks.cmin
    cmax = chunks.cmax
    for c in prange(bounds.shape[0] - 1):
        lo_d, hi_d = _policy_block(bounds[c], bounds[c + 1], False, model, pin, pi, r, Vin, Vout)
        cmin[c] = lo_d
        cmax[c] = hi_d


@jit
def _policy_sweep(parallel, gs, reverse, chunks, model, pin, pi, r, Vin, Vout):
    """One sweep of the policy operator ``T_pi V = r + gamma P_pi V``. Returns (min d, max d)."""
    S = pi.shape[0]
    if gs:
        return _policy_block(0, S, reverse, model, pin, pi, r, Vout, Vout)
    if parallel:
        _policy_jacobi_parallel(chunks, model, pin, pi, r, Vin, Vout)
        return chunks[1].min(), chunks[2].max()
    return _policy_block(0, S, False, model, pin, pi, r, Vin, Vout)


@jit
def _policy_run(n_sweeps, it0, ctl, model, pin, pi, r, V, work):
    """Up to ``n_sweeps`` sweeps of ``T_pi``; stop once the span bound on ``|V - V^pi|`` <= tol.

    ``ctl = (tol, c, clamp, parallel, gs)`` (:class:`fastsoft._bundles.PolicyControl`),
    ``work = (chunks, W, cert)`` (:class:`fastsoft._bundles.PolicyWork`).
    The iterate ends in ``V`` (the last ``T_pi V``; ``W`` is scratch); ``cert``
    receives the certificate ``(lo, hi)``: ``T_pi V + lo <= V^pi <= T_pi V + hi``
    (it is the certificate buffer of ``fastsoft._certify``: with ``tol >= 0`` the
    stopping rule is ``_kernels._round_off_stop``, its reason in ``cert[6]``, the
    last sweep's ``max |T_pi V - V|`` in ``cert[7]``).
    ``tol < 0`` runs all ``n_sweeps``. Sweep ``it0 + k`` of a Gauss-Seidel run goes
    in decreasing state order when odd. Returns the number of sweeps done.
    """
    tol = ctl.tol
    c = ctl.c
    clamp = ctl.clamp
    parallel = ctl.parallel
    gs = ctl.gs
    chunks = work.chunks
    W = work.W
    shift = work.cert
    cur = V
    nxt = W
    swapped = False
    done = 0
    shift[0] = -np.inf
    shift[1] = np.inf
    for k in range(n_sweeps):
        reverse = ((it0 + k) % 2) == 1
        if gs:
            dmin, dmax = _policy_sweep(parallel, True, reverse, chunks, model, pin, pi, r, cur,
                                       cur)
        else:
            dmin, dmax = _policy_sweep(parallel, False, False, chunks, model, pin, pi, r, cur,
                                       nxt)
            tmp = cur
            cur = nxt
            nxt = tmp
            swapped = not swapped
        done = k + 1
        if dmin > dmax:
            shift[0] = 0.0
            shift[1] = 0.0
            shift[6] = 1
            break
        resid = max(abs(dmin), abs(dmax))
        shift[7] = resid
        if clamp:
            dmin = min(dmin, 0.0)
            dmax = max(dmax, 0.0)
        shift[0] = c * dmin
        shift[1] = c * dmax
        if tol >= 0.0:
            why = _round_off_stop(0.5 * (shift[1] - shift[0]), resid, cur, tol, c, it0 + k,
                                  shift)
            if why != 0:
                shift[6] = why
                break
    if swapped:
        V[:] = cur
    return done


@pjit
def _policy_matvec(model, pin, pi, x, y):
    """``y = (I - gamma P_pi) x`` (terminal rows: ``y = x``; terminal columns dropped).

    Rows of ``P`` are normalised by their own sum, as in the Bellman kernels.
    """
    indptr = model.indptr
    indices = model.indices
    probs = model.probs
    gamma = model.gamma
    term = pin.mask
    has_term = pin.any
    S, A = pi.shape[0], pi.shape[1]
    for s in prange(S):
        if has_term and term[s]:
            y[s] = x[s]
            continue
        ev = 0.0
        for a in range(A):
            p = pi[s, a]
            if p == 0.0:
                continue
            row = s * A + a
            acc = 0.0
            ps = 0.0
            for k in range(indptr[row], indptr[row + 1]):
                j = indices[k]
                ps += probs[k]
                if not (has_term and term[j]):
                    acc += probs[k] * x[j]
            ev += p * acc / max(ps, 1e-300)
        y[s] = x[s] - gamma * ev


@jit
def _ppi_count(model, pin, pi, mark, counts):
    """First pass of the ``P_pi`` assembly: distinct successors per state row.

    ``mark`` (S,) int64 must hold values ``< 0`` on entry. ``counts`` (S + 1,)
    receives the row pointers (``counts[0] = 0``, cumulative).
    """
    indptr = model[0]
    indices = model[1]
    term = pin.mask
    has_term = pin.any
    S, A = pi.shape[0], pi.shape[1]
    counts[0] = 0
    for s in range(S):
        n = 0
        if not (has_term and term[s]):
            for a in range(A):
                if pi[s, a] == 0.0:
                    continue
                row = s * A + a
                for k in range(indptr[row], indptr[row + 1]):
                    j = indices[k]
                    if has_term and term[j]:
                        continue
                    if mark[j] != s:
                        mark[j] = s
                        n += 1
        counts[s + 1] = counts[s] + n


@jit
def _ppi_fill(model, pin, pi, pos, out_ptr, out_idx, out_val):
    """Second pass: fill ``P_pi`` rows (merged, sorted by successor, ``P`` rows normalised).

    ``pos`` (S,) int64 scratch must hold values ``< 0`` on entry (it is left dirty).
    """
    indptr = model[0]
    indices = model[1]
    probs = model[2]
    term = pin.mask
    has_term = pin.any
    S, A = pi.shape[0], pi.shape[1]
    for s in range(S):
        if has_term and term[s]:
            continue
        start = out_ptr[s]
        n = 0
        for a in range(A):
            p = pi[s, a]
            if p == 0.0:
                continue
            row = s * A + a
            ps = 0.0
            for k in range(indptr[row], indptr[row + 1]):
                ps += probs[k]
            w = p / max(ps, 1e-300)
            for k in range(indptr[row], indptr[row + 1]):
                j = indices[k]
                if has_term and term[j]:
                    continue
                q = pos[j]
                if q >= start and q < start + n and out_idx[q] == j:
                    out_val[q] += w * probs[k]
                else:
                    q = start + n
                    pos[j] = q
                    out_idx[q] = j
                    out_val[q] = w * probs[k]
                    n += 1
        # sort the (short) row by successor, as the CSR canonicalisation does
        _sort_row(out_idx, out_val, start, start + n)


@pjit
def _improve_hard(Q, act, thr, pi, pin):
    """Greedy improvement with stable ties: keep ``act[s]`` unless some action beats
    it by more than ``thr``; then take the lowest-index maximiser. Writes the
    one-hot ``pi``; returns the number of states whose action changed.
    """
    term = pin.mask
    has_term = pin.any
    S, A = Q.shape[0], Q.shape[1]
    changed = 0
    for s in prange(S):
        if has_term and term[s]:
            continue
        cur = act[s]
        best = cur
        m = Q[s, cur]
        for a in range(A):
            if Q[s, a] > m:
                m = Q[s, a]
                best = a
        if best != cur and m - Q[s, cur] > thr:
            pi[s, cur] = 0.0
            pi[s, best] = 1.0
            act[s] = best
            changed += 1
    return changed


@pjit
def _improve_mirror(Q, logpi, beta, lam, pin, pi):
    """Mirror-descent step ``pi' ∝ pi^beta exp(Q / lam)`` in log space (``beta = eta/lam``).

    Evaluated as ``beta log pi + (Q - max Q) / lam`` so that a tiny (even
    subnormal) ``lam`` cannot overflow. Updates ``logpi`` in place and writes
    ``pi = exp(logpi)``; infeasible actions (``Q == -inf``) and actions outside
    the support keep ``logpi = -inf``. Terminal states keep their policy.
    Returns the largest change ``max |log pi' - log pi|`` over the support.
    """
    term = pin.mask
    has_term = pin.any
    S, A = Q.shape[0], Q.shape[1]
    delta = 0.0
    for s in prange(S):
        if has_term and term[s]:
            continue
        qm = NEG_INF
        for a in range(A):
            if Q[s, a] != NEG_INF and logpi[s, a] != NEG_INF and Q[s, a] > qm:
                qm = Q[s, a]
        m = NEG_INF
        for a in range(A):
            q = Q[s, a]
            if q == NEG_INF or logpi[s, a] == NEG_INF:
                pi[s, a] = NEG_INF
                continue
            x = beta * logpi[s, a] + (q - qm) / lam
            pi[s, a] = x  # scratch: the unnormalised log-policy
            if x > m:
                m = x
        tot = 0.0
        for a in range(A):
            if pi[s, a] != NEG_INF:
                tot += math.exp(pi[s, a] - m)
        lt = m + math.log(tot)
        dl = 0.0
        for a in range(A):
            x = pi[s, a]
            if x == NEG_INF:
                logpi[s, a] = NEG_INF
                pi[s, a] = 0.0
                continue
            new = x - lt
            dd = abs(new - logpi[s, a])
            if dd > dl:
                dl = dd
            logpi[s, a] = new
            pi[s, a] = math.exp(new)
        delta = max(delta, dl)
    return delta
