"""One block of a partitioned solve, as held by a Dask worker (plain Python: the
Dask actor of :func:`fastsoft.distributed.solve_partitioned` is this class)."""

from __future__ import annotations

import numpy as np

from .. import _block_kernels as BK
from .blocks import MDPBlock

#: Fixed parallel chunks of a block's Jacobi sweep (not the thread count, so that
#: results do not depend on it).
BLOCK_CHUNKS = 64


def _numba_threads(n: int | None):
    import numba

    if n is not None:
        numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


class BlockState:
    """States ``lo..hi-1`` of a partitioned MDP: local CSR over an extended vector.

    Built from an :class:`~fastsoft.distributed.blocks.MDPBlock` or from
    ``(builder, lo, hi)`` (then the block is built here, on the worker). The
    global successor indices are renumbered once: own states ``0..n-1``,
    halo states (held by other blocks) ``n..n+n_halo-1`` in increasing
    global order (:attr:`halo`).
    """

    def __init__(self, source, lo: int | None = None, hi: int | None = None,
                 numba_threads: int | None = None):
        _numba_threads(numba_threads)
        self.threads = numba_threads
        blk = source if isinstance(source, MDPBlock) else source(lo, hi)
        self.lo, self.hi = blk.lo, blk.hi
        self.n_states, self.n_actions, self.gamma = blk.n_states, blk.n_actions, blk.gamma
        n = blk.hi - blk.lo
        idx = blk.indices
        own = (idx >= blk.lo) & (idx < blk.hi)
        self.halo = np.unique(idx[~own])
        local = np.empty(idx.shape[0], dtype=np.int32 if n + self.halo.size < 2**31 else np.int64)
        local[own] = idx[own] - blk.lo
        local[~own] = n + np.searchsorted(self.halo, idx[~own])
        del own, idx
        self.indptr, self.indices, self.probs = blk.indptr, local, blk.probs
        self.R = blk.rewards
        self.has_term = blk.terminal is not None
        self.term = (blk.terminal.view(np.uint8) if self.has_term else np.zeros(0, np.uint8))
        self.live = None if not self.has_term else ~blk.terminal
        del blk
        m = n + self.halo.size
        self.V = np.zeros(m)
        self.W = np.zeros(m)
        self.C = np.zeros(n)
        self.bounds = np.linspace(0, n, min(n, BLOCK_CHUNKS) + 1).astype(np.int64)
        self.cmin = np.empty(len(self.bounds) - 1)
        self.cmax = np.empty(len(self.bounds) - 1)
        self.send = np.zeros(0, dtype=np.int64)
        self.lam = 0.0
        self.bias = np.zeros((0, 0))
        self.has_bias = False
        self.sbias = np.zeros(n)

    # ------------------------------------------------------------ set-up calls
    def describe(self) -> dict:
        """Sizes, halo (global indices) and reward scale of the block."""
        feas = self.R > -np.inf
        rmax = float(np.abs(self.R[feas]).max()) if feas.any() else 0.0
        return {"lo": self.lo, "hi": self.hi, "halo": self.halo, "nnz": int(self.probs.size),
                "has_terminal": self.has_term, "max_abs_reward": rmax,
                "nbytes": int(sum(a.nbytes for a in (self.indptr, self.indices, self.probs,
                                                     self.R, self.V, self.W, self.C)))}

    def set_send(self, send) -> None:
        """Own states (global indices) whose values other blocks need, sent after each call."""
        self.send = np.asarray(send, dtype=np.int64) - self.lo

    def regularize(self, tau: float, eta: float, log_prior) -> float:
        """Set ``tau``, ``eta`` and ``log mu`` (``(A,)`` or None: uniform over feasible
        actions); returns ``min_s (T 0)(s)`` over the block's non-terminal states."""
        n, A = self.R.shape
        feas = self.R > -np.inf
        self.lam = tau + eta
        self.bias = np.zeros((0, 0))
        self.has_bias = False
        self.sbias = np.zeros(n)
        if log_prior is not None:
            lp = np.asarray(log_prior, dtype=np.float64)
            support = np.isfinite(lp)[None, :] & feas
            if self.has_term:
                support[~self.live] = True
            bad = ~support.any(axis=1)
            if bad.any():
                raise ValueError(f"prior puts no mass on a feasible action of state "
                                 f"{self.lo + int(np.argmax(bad))}")
            if eta > 0:
                self.bias = np.ascontiguousarray(np.broadcast_to(eta * lp, (n, A)))
                self.has_bias = True
        elif eta > 0:
            self.sbias = -eta * np.log(feas.sum(axis=1).astype(np.float64))
        _numba_threads(self.threads)
        return float(BK._block_one_step(self.R, self.lam, self.bias, self.has_bias, self.sbias,
                                        self.term, self.has_term))

    def start(self, v0: float) -> np.ndarray:
        """``V = v0`` on live states (0 at terminal ones); returns the values to send."""
        n = self.C.shape[0]
        self.V[:n] = v0
        if self.has_term:
            self.V[:n][~self.live] = 0.0
        self.C[:] = self.V[:n]
        return self.V[self.send]

    # ------------------------------------------------------------ per-round calls
    def round(self, halo_values, n_sweeps: int, gs: bool, it0: int):
        """A certifying Jacobi sweep plus ``n_sweeps - 1`` more with this halo.

        Returns ``(values to send, min d, max d)`` where ``d`` is the first
        sweep's ``TV - V`` (see :func:`fastsoft._block_kernels._block_round`).
        """
        n = self.C.shape[0]
        self.V[n:] = halo_values
        self.W[n:] = halo_values
        _numba_threads(self.threads)
        dmin, dmax = BK._block_round(int(n_sweeps), bool(gs), int(it0), self.bounds,
                                     self.indptr, self.indices, self.probs, self.R, self.gamma,
                                     self.V, self.W, self.C, self.lam, self.bias, self.has_bias,
                                     self.sbias, self.term, self.has_term, self.cmin, self.cmax)
        return self.V[self.send], float(dmin), float(dmax)

    def settle(self, shift: float) -> np.ndarray:
        """``V = C + shift`` on live states (the certified ``TV`` of the last round,
        moved to the midpoint of its bounds); returns the values to send."""
        n = self.C.shape[0]
        self.V[:n] = self.C
        if self.has_term:
            self.V[:n][self.live] += shift
        else:
            self.V[:n] += shift
        return self.V[self.send]

    def finish(self, halo_values, want_arrays: bool = True):
        """``V``, ``Q``, policy of the settled ``V`` and the ``(min, max)`` of ``TV - V``."""
        n, A = self.R.shape
        self.V[n:] = halo_values
        Q = np.empty((n, A))
        pi = np.empty((n, A))
        TV = np.empty(n)
        _numba_threads(self.threads)
        BK._block_greedy(self.indptr, self.indices, self.probs, self.R, self.gamma, self.V,
                         self.lam, self.bias, self.has_bias, self.sbias, self.term, self.has_term,
                         Q, pi, TV)
        d = TV - self.V[:n]
        if self.has_term:
            d = d[self.live]
        dmin, dmax = (float(d.min()), float(d.max())) if d.size else (np.inf, -np.inf)
        vmax = float(np.abs(self.V[:n]).max())
        V = self.V[:n].copy()
        if not want_arrays:
            Q = pi = None
        return V, Q, pi, dmin, dmax, vmax
