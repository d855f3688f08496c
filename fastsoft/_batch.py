"""Numba kernels of :func:`fastsoft.solve_batch`: Jacobi sweeps of B reward vectors at once.

Private: arrays in, preallocated arrays out, no validation. Values are stored
``V (S, B)``: a transition ``(s, a) -> s'`` is read once per sweep and updates
all B expectations from one contiguous row ``V[s', :]``. The NumPy yardstick
is :func:`fastsoft.reference.batch_value_iteration`.

Bundles (tuples built once per call): ``trans = (indptr, indices, probs)``,
``reg = (lam, bias, has_bias, sbias)``, ``termt = (term, has_term)``,
``work = (W, cmin, cmax, shift, hist_bound, hist_resid)``.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import jit, pjit, prange
from ._kernels import _exp_tile

NEG_INF = -np.inf


@pjit
def _batch_sweep(bounds, trans, R, gamma, Vin, Vout, reg, termt, cmin, cmax):
    """``Vout = T Vin`` column by column; ``cmin/cmax[c, b]``: min/max of ``d`` in chunk ``c``.

    ``R (S, A, B)``; the regularized max of every column is the closed form of
    the single-problem sweeps (row maximum subtracted before the exponentials,
    which run vectorised through ``_exp_tile``). The expectations of the A
    rows of a state accumulate straight into ``x (A*B,)`` from whole rows
    ``Vin[s']`` (B contiguous values), the loops LLVM vectorises.
    """
    indptr, indices, probs = trans
    lam, bias, has_bias, sbias = reg
    term, has_term = termt
    S, A, B = R.shape
    for c in prange(bounds.shape[0] - 1):
        x = np.empty(A * B)
        kbits = np.empty(A * B, dtype=np.int64)
        m = np.empty(B)
        acc = np.empty(B)
        lo = np.full(B, np.inf)
        hi = np.full(B, -np.inf)
        for s in range(bounds[c], bounds[c + 1]):
            vout = Vout[s]
            if has_term and term[s]:
                for b in range(B):
                    vout[b] = 0.0
                continue
            for b in range(B):
                m[b] = NEG_INF
            for a in range(A):
                row = s * A + a
                xa = x[a * B:(a + 1) * B]
                for b in range(B):
                    xa[b] = 0.0
                for k in range(indptr[row], indptr[row + 1]):
                    p = probs[k]
                    vr = Vin[indices[k]]
                    for b in range(B):
                        xa[b] += p * vr[b]
                bb = bias[s, a] if has_bias else 0.0
                ra = R[s, a]
                for b in range(B):
                    r = ra[b]
                    v = r + gamma * xa[b]
                    if has_bias:
                        v += bb
                    v = v if r != NEG_INF else NEG_INF
                    xa[b] = v
                    m[b] = max(m[b], v)
            if lam == 0.0:
                for b in range(B):
                    acc[b] = m[b] + sbias[s]
            else:
                for a in range(A):
                    xa = x[a * B:(a + 1) * B]
                    for b in range(B):
                        xa[b] = (xa[b] - m[b]) / lam
                _exp_tile(x, kbits, A * B)
                for b in range(B):
                    acc[b] = 0.0
                for a in range(A):
                    xa = x[a * B:(a + 1) * B]
                    for b in range(B):
                        acc[b] += xa[b]
                for b in range(B):
                    acc[b] = m[b] + lam * math.log(acc[b]) + sbias[s]
            vin = Vin[s]
            for b in range(B):
                d = acc[b] - vin[b]
                vout[b] = acc[b]
                lo[b] = min(lo[b], d)
                hi[b] = max(hi[b], d)
        for b in range(B):
            cmin[c, b] = lo[b]
            cmax[c, b] = hi[b]


@jit
def _batch_run(ctl, bounds, trans, R, gamma, V, reg, termt, tol, work):
    """Up to ``n_sweeps`` Jacobi sweeps, until every column's certified bound is <= ``tol[b]``.

    ``ctl = (n_sweeps, c, clamp)``: ``c = gamma / (1 - gamma)``; ``clamp``:
    one-sided span bounds (terminal states, docs/theory.md §2.4). On exit ``V`` holds the
    last ``TV``, ``shift[b] = (lo, hi)`` its certificate ``TV + lo <= V* <= TV +
    hi``, ``hist_*[k, b]`` the bound and residual of sweep ``k``. Returns the
    number of sweeps done.
    """
    n_sweeps, c, clamp = ctl
    W, cmin, cmax, shift, hist_bound, hist_resid = work
    B = V.shape[1]
    cur = V
    nxt = W
    swapped = False
    done = 0
    for k in range(n_sweeps):
        _batch_sweep(bounds, trans, R, gamma, cur, nxt, reg, termt, cmin, cmax)
        tmp = cur
        cur = nxt
        nxt = tmp
        swapped = not swapped
        done = k + 1
        all_done = True
        for b in range(B):
            dmin = np.inf
            dmax = -np.inf
            for ch in range(cmin.shape[0]):
                dmin = min(dmin, cmin[ch, b])
                dmax = max(dmax, cmax[ch, b])
            if dmin > dmax:  # no non-terminal state
                lo = 0.0
                hi = 0.0
                resid = 0.0
            else:
                resid = max(abs(dmin), abs(dmax))
                if clamp:
                    dmin = min(dmin, 0.0)
                    dmax = max(dmax, 0.0)
                lo = c * dmin
                hi = c * dmax
            shift[b, 0] = lo
            shift[b, 1] = hi
            hist_bound[k, b] = 0.5 * (hi - lo)
            hist_resid[k, b] = resid
            if 0.5 * (hi - lo) > tol[b]:
                all_done = False
        if all_done:
            break
    if swapped:
        V[:, :] = cur
    return done
