"""Anderson-accelerated value iteration (kernels).

Value iteration's error decays at the slowest rate of the sweep map ``G``
(gamma for Jacobi; on large soft gridworlds about 0.98 per Gauss-Seidel sweep,
because far from the goal the soft policy is nearly uniform and the error
relaxes like a diffusion). Anderson acceleration (type II, depth ``m``; Walker
& Ni 2011; for value iteration Geist & Scherrer 2018) replaces the next point
``g_k = G(x_k)`` by the combination ``x_{k+1} = g_k - dG gamma``, ``gamma``
minimising ``|f_k - dF gamma|_2``, where ``f = G(x) - x`` and ``dF``, ``dG``
hold the last ``m`` differences of ``f`` and ``g``. Near the fixed point ``G``
is affine and this is a Krylov method on the sweep map.

Certification does not depend on the extrapolation: every sweep's output gets
its own MacQueen certificate (docs/theory.md §2.4) from that sweep's ``min d``/``max d``,
and the solver returns the output of a sweep, never an extrapolated point.

All dot products are summed per fixed chunk of states and then over chunks in
a fixed order, so results do not depend on the number of threads. The NumPy
yardstick is :func:`fastsoft.reference.core.anderson_value_iteration`.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit, pjit, prange
from ._kernels import _certificate, _round_off_stop, _sweep

#: Ridge added to the Gram matrix, relative to its largest diagonal entry.
RIDGE = 1e-10


@pjit
def _aa_differences(x, g, fp, gp, dF, dG, j, first, chunks, part):
    """Fused pass over the states, in parallel over the fixed ``chunks``.

    With ``f = g - x``: unless ``first``, ``dF[j] = f - fp`` and ``dG[j] = g - gp``;
    then ``fp = f`` and ``gp = g``. ``part[c, i]`` and ``part[c, m + i]`` receive
    chunk ``c``'s partial sums of ``dF[i] . dF[j]`` and ``dF[i] . f``.
    """
    m = dF.shape[0]
    for c in prange(chunks.shape[0] - 1):
        acc = np.zeros(2 * m)
        for s in range(chunks[c], chunks[c + 1]):
            f = g[s] - x[s]
            if not first:
                dfj = f - fp[s]
                dF[j, s] = dfj
                dG[j, s] = g[s] - gp[s]
                for i in range(m):
                    di = dF[i, s]
                    acc[i] += di * dfj
                    acc[m + i] += di * f
            fp[s] = f
            gp[s] = g[s]
        for i in range(2 * m):
            part[c, i] = acc[i]


@pjit
def _pcopy(src, dst):
    """``dst[:] = src`` in parallel."""
    for s in prange(src.shape[0]):
        dst[s] = src[s]


@pjit
def _aa_combine(x, g, dG, coef, nvalid):
    """``x = g - sum_i coef[i] dG[i]`` over the first ``nvalid`` history slots."""
    for s in prange(x.shape[0]):
        v = g[s]
        for i in range(nvalid):
            v -= coef[i] * dG[i, s]
        x[s] = v


@jit
def _small_solve(H, b, n, ridge, out):
    """Solve ``(H + ridge max(diag H) I) y = b`` on the leading ``n x n`` block.

    Gaussian elimination with partial pivoting; returns False (and leaves
    ``out`` undefined) if the system is singular or the result is not finite.
    """
    M = np.empty((n, n + 1))
    dmax = 0.0
    for i in range(n):
        dmax = max(dmax, H[i, i])
    if not dmax > 0.0:
        return False
    for i in range(n):
        for k in range(n):
            M[i, k] = H[i, k]
        M[i, i] += ridge * dmax
        M[i, n] = b[i]
    for k in range(n):
        p = k
        for i in range(k + 1, n):
            if abs(M[i, k]) > abs(M[p, k]):
                p = i
        if M[p, k] == 0.0:
            return False
        if p != k:
            for q in range(n + 1):
                t = M[k, q]
                M[k, q] = M[p, q]
                M[p, q] = t
        for i in range(k + 1, n):
            r = M[i, k] / M[k, k]
            for q in range(k, n + 1):
                M[i, q] -= r * M[k, q]
    for i in range(n - 1, -1, -1):
        v = M[i, n]
        for q in range(i + 1, n):
            v -= M[i, q] * out[q]
        out[i] = v / M[i, i]
        if not np.isfinite(out[i]):
            return False
    return True


@jit
def _aa_update(x, g, fp, gp, dF, dG, H, state, chunks, part, coef, restart):
    """One Anderson step after ``g = G(x)``: writes the next point into ``x``.

    ``state = [n_pairs_seen, next_slot, n_valid]``. ``restart`` drops the
    history first (the step is then the plain ``x = g``).
    """
    m = dF.shape[0]
    if restart:
        state[0] = 0
        state[1] = 0
        state[2] = 0
    first = state[0] == 0
    j = state[1]
    _aa_differences(x, g, fp, gp, dF, dG, j, first, chunks, part)
    state[0] += 1
    if first:
        _pcopy(g, x)
        return
    nvalid = min(state[2] + 1, m)
    state[2] = nvalid
    state[1] = (j + 1) % m
    b = np.zeros(m)
    col = np.zeros(m)
    for c in range(chunks.shape[0] - 1):
        for i in range(m):
            col[i] += part[c, i]
            b[i] += part[c, m + i]
    for i in range(nvalid):
        H[i, j] = col[i]
        H[j, i] = col[i]
    if not _small_solve(H, b, nvalid, RIDGE, coef):
        # drop the differences, keep (f, g) of this map as the new base
        state[1] = 0
        state[2] = 0
        _pcopy(g, x)
        return
    _aa_combine(x, g, dG, coef, nvalid)


@jit
def _vi_run_anderson(n_sweeps, it0, ctl, model, reg, pin, x, aa):
    """Anderson-accelerated sweeps; stop once a certified bound is <= ctl.tol.

    ``ctl`` is a :class:`fastsoft._bundles.AndersonControl`, ``aa`` an
    :class:`fastsoft._bundles.AndersonWork` (``cj``: the Jacobi chunks, which
    also split the dot products; ``cg``: the Gauss-Seidel blocks).
    The map ``G`` is one Jacobi sweep (``gs`` False), or a forward then a
    backward Gauss-Seidel sweep, followed by a Jacobi sweep when
    ``two_sided`` (whose span certificate is two-sided). On entry ``x`` is the
    point to map; on exit ``aa.g`` holds the output of the last sweep (the
    certified iterate, with ``(lo, hi)`` in ``aa.cert[0:2]``) and ``x`` the next point.
    ``state`` and ``best`` (the smallest bound at the end of a map, a restart
    test) carry the history across calls. ``hist_*[it0 + k]`` records sweep
    ``k``; ``aa.cert`` is the certificate buffer (stopping rule and reason as in
    :func:`fastsoft._kernels._vi_run`). Returns the number of sweeps done
    (whole maps only, unless tol or ``n_sweeps`` ends the run inside one).
    """
    tol = ctl.tol
    c = ctl.c
    clamp = ctl.clamp
    parallel = ctl.parallel
    gs = ctl.gs
    two_sided = ctl.two_sided
    cj = aa.cj
    cg = aa.cg
    g = aa.g
    snap = aa.snap
    fp = aa.fp
    gp = aa.gp
    dF = aa.dF
    dG = aa.dG
    H = aa.H
    state = aa.state
    best = aa.best
    part = aa.part
    coef = aa.coef
    hist_bound = aa.hist_bound
    hist_resid = aa.hist_resid
    shift = aa.cert
    bj = cj[0]
    n_map = (2 + (1 if two_sided else 0)) if gs else 1
    done = 0
    bound = np.inf
    why = 0
    while done < n_sweeps:
        if gs:
            _pcopy(x, g)
        stop = False
        for k in range(n_map):
            it = it0 + done
            if not gs:
                dmin, dmax, _ = _sweep(parallel, False, False, cj, model, reg, pin, x, g, False)
                lo, hi = _certificate(dmin, dmax, c, clamp)
            elif k < 2:
                dmin, dmax, _ = _sweep(parallel, True, k == 1, cg, model, reg, pin, snap, g,
                                       False)
                lo, hi = _certificate(dmin, dmax, c, True)
            else:
                dmin, dmax, _ = _sweep(parallel, False, False, cj, model, reg, pin, g, snap,
                                       False)
                _pcopy(snap, g)
                lo, hi = _certificate(dmin, dmax, c, clamp)
            shift[0] = lo
            shift[1] = hi
            bound = 0.5 * (hi - lo)
            hist_bound[it] = bound
            hist_resid[it] = 0.0 if dmin > dmax else max(abs(dmin), abs(dmax))
            done += 1
            why = _round_off_stop(bound, hist_resid[it], g, tol, c, it, shift)
            if why != 0:
                shift[6] = why
            if why != 0 or done >= n_sweeps:
                stop = True
                break
        if stop:
            if done % n_map != 0 or why != 0:
                # ended inside a map (or converged): the history no longer matches
                state[0] = 0
                _pcopy(g, x)
            else:
                _aa_update(x, g, fp, gp, dF, dG, H, state, bj, part, coef, bound > 4.0 * best[0])
            break
        _aa_update(x, g, fp, gp, dF, dG, H, state, bj, part, coef, bound > 4.0 * best[0])
        best[0] = min(best[0], bound)
    return done
