"""NumPy yardsticks of the block kernels of :mod:`fastsoft.distributed` (``_block_kernels``).

A block is a local CSR over the states ``lo..hi-1`` whose ``indices`` point
into an extended value vector (own states first, then the halo); see
:mod:`fastsoft.distributed.blocks`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .core import regularized_max

__all__ = ["block_backup", "block_round"]


def block_backup(indptr, indices, probs, R, gamma, V, temperature=0.0, kl_weight=0.0,
                 prior=None, terminal=None):
    """``(TV, Q, policy)`` of the block's own states from the extended ``V``.

    Rows are normalised by their own sums (as the kernels do). Terminal states
    have ``TV = 0``, ``Q = 0`` and the uniform policy over feasible actions.
    """
    R = np.asarray(R, dtype=np.float64)
    n, A = R.shape
    V = np.asarray(V, dtype=np.float64)
    P = sp.csr_matrix((np.asarray(probs, dtype=np.float64), indices, indptr),
                      shape=(n * A, V.shape[0]))
    sums = np.asarray(P.sum(axis=1)).ravel()
    ev = (P @ V) / np.maximum(sums, 1e-300)
    feas = R > -np.inf
    Q = np.where(feas, R + gamma * ev.reshape(n, A), -np.inf)
    TV, pi = regularized_max(Q, temperature, kl_weight, prior)
    if terminal is not None:
        t = np.asarray(terminal, dtype=bool)
        TV[t] = 0.0
        Q[t] = 0.0
        pi[t] = feas[t] / feas[t].sum(axis=1, keepdims=True)
    return TV, Q, pi


def block_round(n_sweeps, gs, it0, indptr, indices, probs, R, gamma, V, temperature=0.0,
                kl_weight=0.0, prior=None, terminal=None):
    """One round of a block: ``(C, V_new, dmin, dmax)``.

    ``C = (T V)[:n]`` (a Jacobi sweep) with ``d = C - V[:n]`` over non-terminal
    states; then ``n_sweeps - 1`` further sweeps with the halo ``V[n:]`` fixed:
    Jacobi, or Gauss-Seidel state by state in place, in decreasing order when
    ``(it0 + k) % 2 == 1`` for the ``k``-th sweep.
    """
    R = np.asarray(R, dtype=np.float64)
    n, A = R.shape
    live = np.ones(n, bool) if terminal is None else ~np.asarray(terminal, dtype=bool)
    V = np.array(V, dtype=np.float64)
    C, _, _ = block_backup(indptr, indices, probs, R, gamma, V, temperature, kl_weight, prior,
                           terminal)
    d = (C - V[:n])[live]
    dmin, dmax = (float(d.min()), float(d.max())) if d.size else (np.inf, -np.inf)
    V[:n] = C
    for k in range(1, n_sweeps):
        if not gs:
            V[:n] = block_backup(indptr, indices, probs, R, gamma, V, temperature, kl_weight,
                                 prior, terminal)[0]
            continue
        order = range(n - 1, -1, -1) if (it0 + k) % 2 == 1 else range(n)
        for s in order:
            rows = slice(s * A, (s + 1) * A + 1)
            ip = indptr[rows] - indptr[s * A]
            a, b = indptr[s * A], indptr[(s + 1) * A]
            t = None if terminal is None else np.asarray(terminal)[s:s + 1]
            mu = None if prior is None else np.asarray(prior)
            V[s] = block_backup(ip, indices[a:b], probs[a:b], R[s:s + 1], gamma, V,
                                temperature, kl_weight, mu, t)[0][0]
    return C, V, dmin, dmax
