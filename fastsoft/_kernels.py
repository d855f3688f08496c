"""Numba kernels of the regularized Bellman operator (docs/theory.md §2).

All kernels are private: they take arrays and the bundles of
:mod:`fastsoft._bundles`, write into preallocated outputs and validate
nothing. Their NumPy yardsticks are in :mod:`fastsoft.reference.core`.

Conventions shared by every kernel here (bundle fields in brackets):

- ``model = (indptr, indices, probs, codes, offsets, cprobs, R, gamma)``:
  the CSR transitions, their coded form (used when ``codes`` is not empty),
  rewards and discount.
- ``reg = (lam, bias, has_bias, sbias)``: ``lam = eta + tau``; ``lam == 0`` is
  the hard max. ``bias`` is an ``(S, A)`` array holding ``eta * log mu(a|s)``
  (used when ``has_bias``), otherwise ``sbias`` (S,) holds a per-state
  constant added after the log-sum-exp (``-eta log |feasible(s)|`` for the
  uniform prior).
- ``pin = (mask, any, value)``: a ``uint8 (S,)`` mask of pinned (terminal)
  states, used when ``any``; the sweeps write ``value[s]`` there (0 for a
  terminal state), and the other kernels take a pinned state as terminal.
- ``chunks = (bounds, cmin, cmax)``: state ranges of a sweep and per-chunk
  outputs. Every kernel takes the fields it reads by name before its loops
  (never by unpacking: see :mod:`fastsoft._bundles`).
- Values are float64 whatever the storage dtype of ``probs``/``R``.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import ijit, jit, pjit, prange

NEG_INF = -np.inf

#: Hard Gauss-Seidel sweeps go against the greedy flow when the mean over states
#: of P(successor index > s) - P(successor index < s) exceeds this in magnitude.
FLOW_MIN = 0.4

#: ... measured on every this many sweeps (it costs a second pass over each
#: state's greedy row).
FLOW_EVERY = 4


@ijit
def _row_mean(lo, hi, indices, probs, V):
    """``sum_k p_k V[idx_k] / sum_k p_k`` over one CSR row (0 for an empty row).

    Normalising by the row's own sum keeps the operator that of an exactly
    stochastic ``P`` under float32 storage (float64 rows are stored exactly
    normalised). Branch-free on purpose: an early ``continue`` for infeasible
    rows measured 2x slower on sparse sweeps.
    """
    if hi - lo >= 16:
        out = _row_mean_long(lo, hi, indices, probs, V)
    else:
        ev = 0.0
        ps = 0.0
        for k in range(lo, hi):
            p = probs[k]
            ev += p * V[indices[k]]
            ps += p
        out = ev / max(ps, 1e-300)
    return out


@ijit
def _row_mean_long(lo, hi, indices, probs, V):
    """:func:`_row_mean` for long rows: four independent accumulators.

    Without ``reassoc`` a single running sum is bound by the latency of the
    floating-point add; dense rows (thousands of successors) measured 3x
    faster this way.
    """
    e0 = e1 = e2 = e3 = 0.0
    p0 = p1 = p2 = p3 = 0.0
    k = lo
    while k + 4 <= hi:
        a0 = probs[k]
        a1 = probs[k + 1]
        a2 = probs[k + 2]
        a3 = probs[k + 3]
        e0 += a0 * V[indices[k]]
        e1 += a1 * V[indices[k + 1]]
        e2 += a2 * V[indices[k + 2]]
        e3 += a3 * V[indices[k + 3]]
        p0 += a0
        p1 += a1
        p2 += a2
        p3 += a3
        k += 4
    while k < hi:
        a0 = probs[k]
        e0 += a0 * V[indices[k]]
        p0 += a0
        k += 1
    ps = (p0 + p1) + (p2 + p3)
    return ((e0 + e1) + (e2 + e3)) / max(ps, 1e-300)


@ijit
def _row_mean_split(lo, hi, indices, probs, V, Vs, blo, bhi):
    """:func:`_row_mean` reading ``V`` inside the block ``[blo, bhi)``, ``Vs`` outside."""
    ev = 0.0
    ps = 0.0
    for k in range(lo, hi):
        p = probs[k]
        j = indices[k]
        ev += p * (V[j] if (j >= blo and j < bhi) else Vs[j])
        ps += p
    return ev / max(ps, 1e-300)


@ijit
def _row_mean_coded(lo, hi, s, codes, otab, ptab, V):
    """:func:`_row_mean` of a row of state ``s`` stored as codes (see ``_bundles.coded_arrays``).

    Entry ``k`` is successor ``s + otab[codes[k]]`` with probability
    ``ptab[codes[k]]``: the same numbers in the same order as the CSR row, so
    the same result, from one byte per entry instead of twelve.
    """
    ev = 0.0
    ps = 0.0
    for k in range(lo, hi):
        c = codes[k]
        p = ptab[c]
        ev += p * V[s + otab[c]]
        ps += p
    return ev / max(ps, 1e-300)


@ijit
def _row_mean_coded_split(lo, hi, s, codes, otab, ptab, V, Vs, blo, bhi):
    """:func:`_row_mean_coded` reading ``V`` inside the block ``[blo, bhi)``, ``Vs`` outside."""
    ev = 0.0
    ps = 0.0
    for k in range(lo, hi):
        c = codes[k]
        p = ptab[c]
        j = s + otab[c]
        ev += p * (V[j] if (j >= blo and j < bhi) else Vs[j])
        ps += p
    return ev / max(ps, 1e-300)


@ijit
def _q_value(s, a, A, indptr, indices, probs, R, gamma, V):
    """``R[s, a] + gamma * sum_s' P(s'|s,a) V[s']`` (``-inf`` stays ``-inf``)."""
    row = s * A + a
    r = R[s, a]
    q = r + gamma * _row_mean(indptr[row], indptr[row + 1], indices, probs, V)
    return q if r != NEG_INF else NEG_INF


_LOG2E = 1.4426950408889634
_LN2_HI = 0.693145751953125
_LN2_LO = 1.4286068203094173e-06
#: Below this ``exp`` is taken as 0 (``exp(-708) ~ 3e-308``, the smallest normal).
_EXP_MIN = -708.0
#: States per tile of the tiled Jacobi sweep.
TILE = 128


@ijit
def _exp_tile(z, kbits, n):
    """``z[j] <- exp(z[j])`` for ``j < n`` and ``z[j] <= 0`` (``-inf`` gives 0).

    Branch-free so that LLVM vectorises it (libm's ``exp`` is a scalar call):
    ``exp(z) = 2^k exp(r)``, ``k = round(z / ln 2)``, ``|r| <= ln(2) / 2``,
    ``exp(r)`` by its Taylor polynomial of degree 12 (truncation error below
    2e-16 relative), ``2^k`` built in the exponent bits of ``kbits``, an int64
    scratch array whose float64 view multiplies the result. Arguments below
    ``-708`` give exactly 0. Tested against ``numpy.exp`` to a few ulp.
    """
    scale = kbits.view(np.float64)
    for j in range(n):
        x = z[j]
        xc = max(x, _EXP_MIN)
        kf = math.floor(xc * _LOG2E + 0.5)
        r = (xc - kf * _LN2_HI) - kf * _LN2_LO
        p = 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        kbits[j] = (np.int64(kf) + 1023) << 52
        z[j] = p if x >= _EXP_MIN else 0.0
    for j in range(n):
        z[j] *= scale[j]


@jit
def _sweep_block_tiled(lo, hi, model, reg, pin, Vin, Vout):
    """Jacobi soft backup of states ``lo..hi-1`` (``lam > 0``) in tiles of :data:`TILE` states.

    Same result as :func:`_sweep_block` with ``lam > 0``, computed in three
    passes per tile so that the exponentials run vectorised: (1) ``x_a =
    Q(s, a) + bias`` and the row maximum ``m``, stored as ``(x_a - m) / lam``;
    (2) :func:`_exp_tile` over the whole tile; (3) ``m + lam log sum_a`` and
    the differences ``d``. Returns ``(min d, max d)`` over non-pinned states.
    """
    indptr = model.indptr
    indices = model.indices
    probs = model.probs
    codes = model.codes
    otab = model.offsets
    ptab = model.cprobs
    R = model.R
    gamma = model.gamma
    lam = reg.lam
    bias = reg.bias
    has_bias = reg.has_bias
    sbias = reg.sbias
    term = pin.mask
    has_term = pin.any
    pval = pin.value
    A = R.shape[1]
    coded = codes.shape[0] > 0
    z = np.empty(TILE * A)
    kbits = np.empty(TILE * A, dtype=np.int64)
    mt = np.empty(TILE)
    dmin = np.inf
    dmax = -np.inf
    for t0 in range(lo, hi, TILE):
        n = min(TILE, hi - t0)
        for i in range(n):
            s = t0 + i
            m = NEG_INF
            rlo = indptr[s * A]
            for a in range(A):
                rhi = indptr[s * A + a + 1]
                r = R[s, a]
                if coded:
                    ev = _row_mean_coded(rlo, rhi, s, codes, otab, ptab, Vin)
                else:
                    ev = _row_mean(rlo, rhi, indices, probs, Vin)
                x = r + gamma * ev
                rlo = rhi
                if has_bias:
                    x += bias[s, a]
                x = x if r != NEG_INF else NEG_INF
                z[i * A + a] = x
                m = max(m, x)
            mt[i] = m
            for a in range(A):
                z[i * A + a] = (z[i * A + a] - m) / lam
        _exp_tile(z, kbits, n * A)
        for i in range(n):
            s = t0 + i
            if has_term and term[s]:
                Vout[s] = pval[s]
                continue
            acc = 0.0
            for a in range(A):
                acc += z[i * A + a]
            new = mt[i] + lam * math.log(acc) + sbias[s]
            d = new - Vin[s]
            Vout[s] = new
            if d < dmin:
                dmin = d
            if d > dmax:
                dmax = d
    return dmin, dmax, 0.0


@jit
def _sweep_block(lo, hi, reverse, model, reg, pin, Vin, Vout, Vsnap, split, tiled, want_flow):
    """Back up states ``lo..hi-1`` reading ``Vin``, writing ``Vout``.

    ``model``, ``reg``, ``pin``: the :mod:`fastsoft._bundles` bundles.
    ``Vin is Vout`` gives a Gauss-Seidel sweep (in place), in decreasing index
    order when ``reverse``. With ``split``, successors outside ``[lo, hi)`` are
    read from the snapshot ``Vsnap`` instead (block Gauss-Seidel: blocks are
    then independent, so they can run in parallel with a result that does not
    depend on the thread count). Returns ``(min d, max d, flow)``: ``d = new -
    old`` over non-pinned states, and with ``want_flow`` the sum, over states
    whose actions are not all tied, of the probability that the greedy action
    moves to a higher minus to a lower state index (0 otherwise). With
    ``tiled`` (Jacobi only: ``Vin`` and ``Vout`` distinct) soft backups go to
    the vectorised :func:`_sweep_block_tiled`.
    """
    lam = reg[0]
    if tiled and lam > 0.0:
        return _sweep_block_tiled(lo, hi, model, reg, pin, Vin, Vout)
    indptr = model.indptr
    indices = model.indices
    probs = model.probs
    codes = model.codes
    otab = model.offsets
    ptab = model.cprobs
    R = model.R
    gamma = model.gamma
    lam = reg.lam
    bias = reg.bias
    has_bias = reg.has_bias
    sbias = reg.sbias
    term = pin.mask
    has_term = pin.any
    pval = pin.value
    A = R.shape[1]
    coded = codes.shape[0] > 0
    buf = np.empty(A)
    dmin = np.inf
    dmax = -np.inf
    flow = 0.0
    n = hi - lo
    for i in range(n):
        s = hi - 1 - i if reverse else lo + i
        if has_term and term[s]:
            Vout[s] = pval[s]
            continue
        old = Vin[s]
        # The regularized max of docs/theory.md §2, written out here rather than called:
        # a per-state function call measured 2x slower. Pass 1: x_a = Q(s,a) +
        # bias and their maximum m; pass 2: m + lam log sum exp((x_a - m)/lam),
        # which cannot overflow and needs no exp for the maximiser.
        m = NEG_INF
        mlow = np.inf
        arg = -1
        rlo = indptr[s * A]
        for a in range(A):
            rhi = indptr[s * A + a + 1]
            r = R[s, a]
            if coded:
                if split:
                    ev = _row_mean_coded_split(rlo, rhi, s, codes, otab, ptab, Vin, Vsnap, lo,
                                               hi)
                else:
                    ev = _row_mean_coded(rlo, rhi, s, codes, otab, ptab, Vin)
            elif split:
                ev = _row_mean_split(rlo, rhi, indices, probs, Vin, Vsnap, lo, hi)
            else:
                ev = _row_mean(rlo, rhi, indices, probs, Vin)
            x = r + gamma * ev
            rlo = rhi
            if has_bias:
                x += bias[s, a]
            x = x if r != NEG_INF else NEG_INF
            buf[a] = x
            if x > m:
                m = x
                arg = a
            if x < mlow and x != NEG_INF:
                mlow = x
        if lam == 0.0:
            new = m + sbias[s]
        else:
            acc = 1.0
            for a in range(A):
                if a != arg:
                    acc += math.exp((buf[a] - m) / lam)
            new = m + lam * math.log(acc) + sbias[s]
        Vout[s] = new
        d = new - old
        if d < dmin:
            dmin = d
        if d > dmax:
            dmax = d
        if want_flow and m - mlow > 1e-9 * (1.0 + abs(m)):
            # direction of the greedy action's successors, up (+) or down (-), where
            # the actions are not all tied (ties go to the lowest action index)
            row = s * A + arg
            for k in range(indptr[row], indptr[row + 1]):
                if coded:
                    off = otab[codes[k]]
                    p = ptab[codes[k]]
                else:
                    off = np.int64(indices[k]) - s
                    p = probs[k]
                if off > 0:
                    flow += p
                elif off < 0:
                    flow -= p
    return dmin, dmax, flow


@pjit
def _jacobi_sweep_parallel(chunks, model, reg, pin, Vin, Vout):
    """One Jacobi sweep, states split in the fixed ``chunks`` run in parallel."""
    bounds = chunks.bounds
    cmin = chunks.cmin
    cmax = chunks.cmax
    for c in prange(bounds.shape[0] - 1):
        lo_d, hi_d, _ = _sweep_block(bounds[c], bounds[c + 1], False, model, reg, pin, Vin, Vout,
                                     Vin, False, True, False)
        cmin[c] = lo_d
        cmax[c] = hi_d


@pjit
def _block_gs_parallel(chunks, reverse, model, reg, pin, V, Vsnap, cflow, want_flow):
    """One block Gauss-Seidel sweep: ``Vsnap = V``, then every block in place, in parallel."""
    bounds = chunks.bounds
    cmin = chunks.cmin
    cmax = chunks.cmax
    n = V.shape[0]
    for i in prange(n):
        Vsnap[i] = V[i]
    for c in prange(bounds.shape[0] - 1):
        lo_d, hi_d, fl = _sweep_block(bounds[c], bounds[c + 1], reverse, model, reg, pin, V, V,
                                      Vsnap, True, False, want_flow)
        cmin[c] = lo_d
        cmax[c] = hi_d
        cflow[c] = fl


@jit
def _sweep(parallel, gs, reverse, chunks, model, reg, pin, Vin, Vout, want_flow):
    """One sweep; returns ``(min d, max d, flow)`` (see :func:`_sweep_block`).

    Jacobi: reads ``Vin``, writes ``Vout`` (``chunks.bounds`` are load-balancing
    chunks). Gauss-Seidel: updates ``Vout`` in place; serial, or with
    ``parallel`` block Gauss-Seidel over the fixed blocks ``chunks.bounds`` with
    ``Vin`` as the snapshot buffer.
    """
    S = model[6].shape[0]
    cmin = chunks[1]
    cmax = chunks[2]
    if gs:
        if parallel:
            cflow = np.empty(cmin.shape[0])
            _block_gs_parallel(chunks, reverse, model, reg, pin, Vout, Vin, cflow, want_flow)
            flow = 0.0
            for c in range(cflow.shape[0]):
                flow += cflow[c]
            return cmin.min(), cmax.max(), flow
        return _sweep_block(0, S, reverse, model, reg, pin, Vout, Vout, Vout, False, False,
                            want_flow)
    if parallel:
        _jacobi_sweep_parallel(chunks, model, reg, pin, Vin, Vout)
        return cmin.min(), cmax.max(), 0.0
    return _sweep_block(0, S, False, model, reg, pin, Vin, Vout, Vin, False, True, False)


@jit
def _certificate(dmin, dmax, c, clamp):
    """Lower/upper shift of V* around TV: ``TV + lo <= V* <= TV + hi`` (docs/theory.md §2.4)."""
    if dmin > dmax:  # no non-terminal state
        return 0.0, 0.0
    if clamp:
        dmin = min(dmin, 0.0)
        dmax = max(dmax, 0.0)
    return c * dmin, c * dmax


#: A run stops as "round-off floor reached" once its certified bound is within this
#: factor of the smallest allowance any later iterate could have (see
#: :func:`_round_off_stop`).
FLOOR_RATIO = 1.5

#: ... and measures ``max |W|`` at least every this many sweeps.
MEASURE_EVERY = 32


@pjit
def _absmax(V):
    """``max_s |V[s]|`` (0 for an empty vector)."""
    m = 0.0
    for s in prange(V.shape[0]):
        m = max(m, abs(V[s]))
    return m


@jit
def _round_off_stop(half, resid, W, tol, c, it, cert):
    """Stopping rule of every run kernel, with the round-off allowance of ``fastsoft._certify``.

    ``half``: the MacQueen half-width of the sweep whose output is ``W``;
    ``resid``: its ``max |W - V|``; ``cert``: the certificate buffer
    (``cert[2:5]`` the allowance ``a_out M + a_res resid + const``, ``cert[5]``
    the last measured ``M = max |W|``). Returns 1 when ``half`` plus the
    allowance is ``<= tol``; 2 when that bound is within :data:`FLOOR_RATIO` of
    the smallest allowance a later iterate could get (``max |V*| >= M - |V* - W|``),
    so that further sweeps cannot certify ``tol``; 0 otherwise. ``M`` is
    measured (an O(S) pass) only when the bound may be near a stop, and at
    least every :data:`MEASURE_EVERY` sweeps.
    """
    a_out = cert[2]
    a_res = cert[3]
    const = cert[4]
    M = cert[5]
    if M >= 0.0 and it % MEASURE_EVERY != 0:
        est = a_out * M + a_res * resid + const
        if half > tol and half > 2.0 * est:
            return 0
    M = _absmax(W)
    cert[5] = M
    allow = a_out * M + a_res * resid + const
    bound = half + allow
    if bound <= tol:
        return 1
    reach = max(M - c * resid - bound, 0.0)
    if bound <= FLOOR_RATIO * (a_out * reach + const):
        return 2
    return 0


@jit
def _vi_run(n_sweeps, it0, ctl, model, reg, pin, V, work):
    """Up to ``n_sweeps`` sweeps; stop once the certified midpoint error is <= ctl.tol.

    ``ctl`` is a :class:`fastsoft._bundles.VIControl`, ``work`` a
    :class:`fastsoft._bundles.VIWork`. On entry the current iterate is in
    ``V``; on exit the last ``TV`` is in ``V`` (buffers swapped back as needed;
    ``work.W`` is scratch). ``work.cert`` is the certificate buffer of
    ``fastsoft._certify`` (``CERT_LEN``): it receives the certificate ``(lo,
    hi)`` of the last sweep, the stopping rule is :func:`_round_off_stop`,
    whose reason lands in ``cert[6]`` (0: budget), and ``cert[7]`` carries the
    greedy flow (below) from one call to the next. ``work.hist_*[it0 + k]``
    records sweep ``k``. Returns the number of sweeps done.

    ``clamp``: one-sided bounds for Jacobi sweeps (terminal states); Gauss-Seidel
    sweeps always use them. With ``gs`` and ``check_every > 0`` every
    ``check_every``-th sweep is a Jacobi sweep, whose two-sided span
    certificate can stop the run long before the one-sided Gauss-Seidel one.

    Gauss-Seidel sweeps alternate increasing and decreasing state order, except
    for hard backups (``lam == 0``) while the greedy actions mostly move one way
    in index (``|flow| > FLOW_MIN``, the mean over non-terminal states,
    measured on every ``FLOW_EVERY``-th sweep): then
    every sweep goes against that flow, so that each state reads successors
    already updated (fewer sweeps on a gridworld with its goal in the last row:
    docs/performance.md; on a grid with its goal in the centre the flow
    balances and the order keeps alternating). Soft policies spread over all actions: far from
    the goal the error relaxes like a diffusion, which alternating orders serve
    better.
    """
    tol = ctl.tol
    c = ctl.c
    clamp = ctl.clamp
    parallel = ctl.parallel
    gs = ctl.gs
    check_every = ctl.check_every
    chunks = work.chunks
    W = work.W
    hist_bound = work.hist_bound
    hist_resid = work.hist_resid
    shift = work.cert
    term = pin.mask
    has_term = pin.any
    lam = reg[0]
    cur = V
    nxt = W
    swapped = False
    done = 0
    n_live = model[6].shape[0]
    if has_term:
        for s in range(term.shape[0]):
            n_live -= term[s]
    flow = shift[7]  # the flow measured by the previous call (chunked runs match one call)
    for k in range(n_sweeps):
        it = it0 + k
        if flow > FLOW_MIN:
            reverse = True
        elif flow < -FLOW_MIN:
            reverse = False
        else:
            reverse = (it % 2) == 1
        jacobi = (not gs) or (check_every > 0 and (it + 1) % check_every == 0)
        if jacobi:
            dmin, dmax, _ = _sweep(parallel, False, False, chunks, model, reg, pin, cur, nxt,
                                   False)
            tmp = cur
            cur = nxt
            nxt = tmp
            swapped = not swapped
            lo, hi = _certificate(dmin, dmax, c, clamp)
        else:
            measure = lam == 0.0 and it % FLOW_EVERY == 0
            dmin, dmax, fsum = _sweep(parallel, True, reverse, chunks, model, reg, pin, nxt, cur,
                                      measure)
            lo, hi = _certificate(dmin, dmax, c, True)
            if measure:
                flow = fsum / max(n_live, 1)
        shift[0] = lo
        shift[1] = hi
        done = k + 1
        hist_bound[it] = 0.5 * (hi - lo)
        if dmin > dmax:
            hist_resid[it] = 0.0
        else:
            hist_resid[it] = max(abs(dmin), abs(dmax))
        why = _round_off_stop(0.5 * (hi - lo), hist_resid[it], cur, tol, c, it, shift)
        if why != 0:
            shift[6] = why
            break
    shift[7] = flow
    if swapped:
        V[:] = cur
    return done


@pjit
def _greedy_step(model, reg, pin, V, Q, pi, TV):
    """``Q = R + gamma P V``, the regularized greedy policy and ``TV`` (docs/theory.md §2.2).

    ``lam > 0``: ``pi ∝ exp((Q + bias) / lam)`` (``bias = eta log mu``) and
    ``TV = lam log sum exp((Q + bias) / lam) + sbias``. ``lam == 0``: greedy,
    all mass on the lowest-index maximiser. Terminal states get ``Q = 0``,
    ``TV = 0`` and the uniform policy over their feasible actions.
    """
    indptr = model.indptr
    indices = model.indices
    probs = model.probs
    R = model.R
    gamma = model.gamma
    lam = reg.lam
    bias = reg.bias
    has_bias = reg.has_bias
    sbias = reg.sbias
    term = pin.mask
    has_term = pin.any
    S, A = R.shape[0], R.shape[1]
    for s in prange(S):
        if has_term and term[s]:
            nf = 0
            for a in range(A):
                Q[s, a] = 0.0
                if R[s, a] != NEG_INF:
                    nf += 1
            for a in range(A):
                pi[s, a] = 1.0 / nf if R[s, a] != NEG_INF else 0.0
            TV[s] = 0.0
            continue
        m = NEG_INF
        arg = 0
        for a in range(A):
            q = _q_value(s, a, A, indptr, indices, probs, R, gamma, V)
            Q[s, a] = q
            x = q + bias[s, a] if has_bias else q
            if x > m:
                m = x
                arg = a
        if lam == 0.0:
            for a in range(A):
                pi[s, a] = 0.0
            pi[s, arg] = 1.0
            TV[s] = m + sbias[s]
        else:
            tot = 0.0
            for a in range(A):
                x = Q[s, a] + bias[s, a] if has_bias else Q[s, a]
                e = math.exp((x - m) / lam) if x != NEG_INF else 0.0
                pi[s, a] = e
                tot += e
            for a in range(A):
                pi[s, a] /= tot
            TV[s] = m + lam * math.log(tot) + sbias[s]


@pjit
def _one_step_values(R, reg, pin, out):
    """``out = T 0`` (the regularized max of ``R(s, .)``), ``+inf`` at terminal states."""
    lam = reg.lam
    bias = reg.bias
    has_bias = reg.has_bias
    sbias = reg.sbias
    term = pin.mask
    has_term = pin.any
    S, A = R.shape[0], R.shape[1]
    for s in prange(S):
        if has_term and term[s]:
            out[s] = np.inf
            continue
        m = NEG_INF
        for a in range(A):
            x = R[s, a] + bias[s, a] if has_bias else R[s, a]
            x = x if R[s, a] != NEG_INF else NEG_INF
            m = max(m, x)
        if lam == 0.0:
            out[s] = m + sbias[s]
        else:
            tot = 0.0
            for a in range(A):
                x = R[s, a] + bias[s, a] if has_bias else R[s, a]
                if R[s, a] != NEG_INF:
                    tot += math.exp((x - m) / lam)
            out[s] = m + lam * math.log(tot) + sbias[s]


@jit
def _finite_horizon(H, model, reg, pin, VT, Vt, Qt, pit):
    """Backward induction: ``Vt[H] = VT``; ``Vt[t], Qt[t], pit[t]`` for ``t = H-1..0``."""
    term = pin.mask
    has_term = pin.any
    S = VT.shape[0]
    for s in range(S):
        Vt[H, s] = 0.0 if (has_term and term[s]) else VT[s]
    for i in range(H):
        t = H - 1 - i
        _greedy_step(model, reg, pin, Vt[t + 1], Qt[t], pit[t], Vt[t])
