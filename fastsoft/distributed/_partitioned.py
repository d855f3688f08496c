"""One MDP too big for one process: :func:`solve_partitioned` (block Jacobi on Dask actors)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from .._driver import progress_scope, roundoff_from_scales, sweep_tol_from_scales
from .._validation import check_int, check_real
from ..mdp import TabularMDP
from ..result import SolveResult
from ..vi import DEFAULT_MAX_ITER
from ._block import BlockState
from ._map import _dask
from .blocks import SliceBlocks, partition

__all__ = ["solve_partitioned", "PartitionError", "MAX_SWEEPS_PER_ROUND", "ROUND_TRIP_NNZ",
           "default_sweeps_per_round"]

#: Most sweeps per round trip chosen by default.
MAX_SWEEPS_PER_ROUND = 8

#: A round trip to the blocks costs about as much as sweeping this many
#: transitions of a block (2-6 ms per round on a local cluster, against about 1 ns
#: per transition per sweep): the default batches sweeps until a round's sweeps
#: cost at least that (``benchmarks/distributed_speed.py``).
ROUND_TRIP_NNZ = 2_000_000


class PartitionError(RuntimeError):
    """A block of :func:`solve_partitioned` was lost (its worker died) or timed out."""


def _check_builder(b):
    for name in ("n_states", "n_actions", "gamma"):
        if not hasattr(b, name):
            raise TypeError(f"mdp_or_builder must be a TabularMDP or a block builder with "
                            f"n_states, n_actions, gamma and __call__(lo, hi); it has no {name}")
    if not callable(b):
        raise TypeError("mdp_or_builder: a block builder must be callable as builder(lo, hi)")
    return b


def _log_prior(prior, A: int):
    if prior is None:
        return None
    mu = np.asarray(prior)
    if not (np.issubdtype(mu.dtype, np.floating) or np.issubdtype(mu.dtype, np.integer)):
        raise TypeError(f"prior must hold real numbers, got dtype {mu.dtype}")
    if mu.shape != (A,):
        raise ValueError(f"prior must have shape ({A},) (one distribution for every state), "
                         f"got {mu.shape}")
    mu = mu.astype(np.float64)
    if not np.all(np.isfinite(mu)) or np.any(mu < 0) or abs(mu.sum() - 1.0) > 1e-8:
        raise ValueError("prior must be finite, non-negative and sum to 1")
    with np.errstate(divide="ignore"):
        return np.log(mu)


class _Blocks:
    """Driver-side handles of the block actors, with bounded waits and rebuilds."""

    def __init__(self, client, src, cuts, where, numba_threads, timeout):
        self.client, self.src, self.cuts, self.timeout = client, src, cuts, timeout
        self.threads = numba_threads
        self.where = list(where)
        self.futs = [self._submit(k, w) for k, w in enumerate(self.where)]
        self.actors = [self._wait(k) for k in range(len(self.where))]

    def _submit(self, k: int, worker: str):
        lo, hi = int(self.cuts[k]), int(self.cuts[k + 1])
        args = (self.src(lo, hi),) if isinstance(self.src, SliceBlocks) else (self.src, lo, hi)
        return self.client.submit(BlockState, *args, numba_threads=self.threads, actor=True,
                                  workers=[worker], allow_other_workers=False, pure=False)

    def _wait(self, k: int):
        try:
            return self.futs[k].result(timeout=self.timeout)
        except Exception as exc:
            raise PartitionError(f"solve_partitioned: block {k} not built on worker "
                                 f"{self.where[k]} within {self.timeout} s: {exc!r}") from exc

    def call(self, method: str, args_per_block, *, allow_loss: bool = False):
        """Call ``method`` on every block; returns ``(results, lost block indices)``.

        A lost block raises :class:`PartitionError` unless ``allow_loss``.
        """
        futs, lost = [], []
        for k, (actor, args) in enumerate(zip(self.actors, args_per_block, strict=True)):
            try:
                futs.append(getattr(actor, method)(*args))
            except Exception as exc:  # the worker is gone already
                if not allow_loss:
                    raise self._lost(k, exc) from exc
                futs.append(None)
                lost.append(k)
        out = [None] * len(futs)
        for k, f in enumerate(futs):
            if f is None:
                continue
            try:
                out[k] = f.result(timeout=self.timeout)
            except (ValueError, TypeError):
                raise
            except Exception as exc:
                if not allow_loss:
                    raise self._lost(k, exc) from exc
                lost.append(k)
        return out, sorted(lost)

    def rebuild(self, k: int, gone: set) -> str:
        """Build block ``k`` again on the live worker holding the fewest blocks."""
        deadline = time.monotonic() + self.timeout
        while True:  # a nanny restarts a dead worker under a new address: wait for one
            live = [w for w in sorted(self.client.scheduler_info()["workers"]) if w not in gone]
            if live:
                break
            if time.monotonic() > deadline:
                raise PartitionError(f"solve_partitioned: no live worker to rebuild block {k} "
                                     f"on within {self.timeout} s")
            time.sleep(0.25)
        w = min(live, key=lambda a: (self.where.count(a), a))
        self.where[k] = w
        self.futs[k] = self._submit(k, w)
        self.actors[k] = self._wait(k)
        return w

    def close(self):
        self.actors = []
        self.client.cancel(self.futs)

    def _lost(self, k, exc):
        return PartitionError(
            f"solve_partitioned: block {k} (worker {self.where[k]}) did not answer within "
            f"{self.timeout} s or was lost: {exc!r}. Its iterate is gone; pass retries > 0 to "
            f"rebuild lost blocks and go on, or rerun.")


def solve_partitioned(
    client,
    mdp_or_builder,
    n_parts: int | None = None,
    temperature: float = 0.0,
    *,
    kl_weight: float = 0.0,
    prior=None,
    tol: float = 1e-8,
    order: str = "auto",
    sweeps_per_round: int | None = None,
    max_iter: int | None = None,
    numba_threads: int | None = None,
    workers: list[str] | None = None,
    timeout: float = 300.0,
    retries: int = 0,
    callback: Callable[[dict], bool | None] | None = None,
    progress: bool = False,
) -> SolveResult:
    """Solve one MDP whose states are cut into contiguous blocks held on Dask workers.

    Each block lives in a Dask actor pinned to one worker, which builds (or
    receives) only its own rows; the whole transition table never sits in
    one process when ``mdp_or_builder`` is a block builder. The iteration is
    block Jacobi value iteration: every round trip, each block receives the
    current values of its halo (the successors of its states held by other
    blocks, and nothing else), makes one Jacobi sweep that certifies the
    current global iterate, then ``sweeps_per_round - 1`` further sweeps with
    that halo held fixed (Jacobi, or Gauss-Seidel with ``order="gauss-seidel"``),
    and sends back only the values other blocks need. The driver reduces
    ``min d`` and ``max d`` of the certifying sweeps over all blocks into the
    MacQueen bound of docs/theory.md §2.4 (the one :func:`fastsoft.soft_value_iteration`
    uses: one-sided when some state is terminal), stops at ``tol`` after the
    same floating-point allowance, shifts the certified ``TV`` to the midpoint
    of its bounds, and ends with one more halo exchange and greedy step that
    gives ``Q``, the policy and the second certificate of the returned ``V``,
    exactly as the local solver's last step does. The iterate after the extra
    sweeps of a round is always one global vector (all blocks use the same
    halo), so the block Jacobi map is a ``gamma``-contraction with fixed point
    ``V*`` and the bound is a proof whatever the partition.

    Parameters
    ----------
    client : distributed.Client
    mdp_or_builder : TabularMDP or block builder
        A :class:`fastsoft.TabularMDP` (sliced here, each block sent to its
        worker) or a builder such as :class:`fastsoft.distributed.GridBlocks`
        or :class:`fastsoft.distributed.GarnetBlocks` (each worker builds its block).
    n_parts : int, optional
        Number of blocks; default the number of workers. Blocks go to the
        workers round robin.
    temperature, kl_weight : float
        ``tau`` and ``eta`` as in :func:`fastsoft.solve`.
    prior : array (A,), optional
        ``mu``, the same for every state; uniform over each state's feasible
        actions by default.
    tol : float
        Certified bound on ``max_s |V(s) - V*(s)|``.
    order : {"auto", "jacobi", "gauss-seidel"}
        The extra sweeps of a round (the certifying sweep is always Jacobi):
        Gauss-Seidel alternating the state order within each block, or Jacobi.
        ``"auto"``: Gauss-Seidel when some state is terminal, else Jacobi (as
        :func:`fastsoft.solve` chooses).
    sweeps_per_round : int, optional
        Sweeps per round trip; default :func:`default_sweeps_per_round`. Only
        the first sweep of a round sees fresh halo values, so extra sweeps buy
        fewer round trips with some sweeps that do less (on a 100 x 100 grid
        at tau 0.1: 306 rounds of 1 sweep, 50 rounds of 2, 19 rounds of 8).
        Without terminal states the default is 1: the two-sided span bound
        then certifies long before the values converge, but only for sweeps of
        one global iterate (with stale halos a Garnet MDP needed 470 sweeps
        instead of 28).
    max_iter : int, optional
        Maximal number of sweeps (default 100 000).
    numba_threads : int, optional
        Numba threads of each block's sweeps (default: Numba's default).
        Values do not depend on it (fixed chunks, exact min/max reductions).
    workers : list of str, optional
        Worker addresses to use (default all, sorted).
    timeout : float
        Seconds to wait for any one call to a block; a lost or stuck worker
        raises :class:`PartitionError` instead of hanging.
    retries : int
        Blocks lost during the rounds (their worker died) that may be rebuilt
        on a live worker, restarting their states from the pessimistic value
        (0: raise :class:`PartitionError` at the first loss). The round of a
        loss certifies nothing; later rounds certify the iterate as usual, so
        the bound stays a proof (the iteration converges from any start).
    callback : callable, optional
        Called after each round with ``{"n_iter", "error_bound", "residual",
        "round", "elapsed"}``; returning True stops with the partial result and
        its certificate (``interrupted=True``).
    progress : bool
        Progress bar of the certified bound (tqdm).

    Returns
    -------
    SolveResult
        ``method="partitioned_value_iteration[jacobi|gauss-seidel]"``;
        ``history`` per round (``"sweeps"`` counts the sweeps up to each);
        ``extra`` holds ``n_parts``, ``rounds``, ``halo`` (halo sizes per
        block), ``bytes_per_round`` (float64 values exchanged per round, both
        ways), ``block_nbytes`` and ``recovered`` (blocks rebuilt: round, block, worker).

    Examples
    --------
    >>> from distributed import Client, LocalCluster  # doctest: +SKIP
    >>> from fastsoft.distributed import GridBlocks, solve_partitioned
    >>> grid = GridBlocks(300, 300, slip=0.1, gamma=0.95)
    >>> with Client(LocalCluster(n_workers=2, threads_per_worker=1)) as client:  # doctest: +SKIP
    ...     res = solve_partitioned(client, grid, tol=1e-6)
    """
    t_start = time.perf_counter()
    _dask()
    src = SliceBlocks(mdp_or_builder) if isinstance(mdp_or_builder, TabularMDP) else \
        _check_builder(mdp_or_builder)
    S, A, gamma = int(src.n_states), int(src.n_actions), float(src.gamma)
    if not gamma < 1.0:
        raise ValueError("solve_partitioned needs gamma < 1")
    tau = check_real(temperature, "temperature", low=0.0)
    eta = check_real(kl_weight, "kl_weight", low=0.0)
    log_prior = _log_prior(prior, A)
    tol = check_real(tol, "tol", low=0.0, low_open=True)
    if order not in ("auto", "jacobi", "gauss-seidel"):
        raise ValueError(f"order must be 'auto', 'jacobi' or 'gauss-seidel', got {order!r}")
    spr = check_int(sweeps_per_round, "sweeps_per_round", low=1, allow_none=True)
    max_iter = check_int(max_iter, "max_iter", low=1, allow_none=True) or DEFAULT_MAX_ITER
    timeout = check_real(timeout, "timeout", low=0.0, low_open=True)
    retries = check_int(retries, "retries", low=0)
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable")
    pool = sorted(client.scheduler_info()["workers"]) if workers is None else list(workers)
    if not pool:
        raise ValueError("workers: the cluster has no workers")
    n_parts = check_int(len(pool) if n_parts is None else n_parts, "n_parts", low=1)
    if n_parts > S:
        raise ValueError(f"n_parts must be at most n_states = {S}, got {n_parts}")
    cuts = partition(S, n_parts)
    where = [pool[k % len(pool)] for k in range(n_parts)]

    # ---- the blocks, built on their workers (or sliced here and sent)
    blocks = _Blocks(client, src, cuts, where, numba_threads, timeout)
    try:
        return _iterate(blocks, cuts, S, A, gamma, tau, eta, log_prior, tol, order, spr,
                        max_iter, retries, callback, progress, t_start)
    finally:
        blocks.close()


def _routing(infos, cuts):
    """What each block sends and where each block's halo values come from.

    Returns ``(send, gather)``: ``send[j]`` the global states block ``j``
    sends after every call; the concatenation of all sends is the round's
    boundary vector ``B``, and block ``k``'s halo values are ``B[gather[k]]``.
    """
    n = len(infos)
    halos = [np.asarray(i["halo"], dtype=np.int64) for i in infos]
    allh = np.concatenate(halos) if halos else np.zeros(0, np.int64)
    owner_of = np.searchsorted(cuts, allh, side="right") - 1
    send = []
    for j in range(n):
        send.append(np.unique(allh[owner_of == j]))
    offsets = np.concatenate([[0], np.cumsum([s.size for s in send])])
    gather = []
    for h in halos:
        own = np.searchsorted(cuts, h, side="right") - 1
        pos = np.empty(h.size, dtype=np.int64)
        for j in np.unique(own):
            sel = own == j
            pos[sel] = offsets[j] + np.searchsorted(send[j], h[sel])
        gather.append(pos)
    return send, gather


def _iterate(blocks, cuts, S, A, gamma, tau, eta, log_prior, tol, order, spr, max_iter,
             retries, callback, progress, t_start):
    n = len(blocks.actors)
    infos = blocks.call("describe", [()] * n)[0]
    send, gather = _routing(infos, cuts)
    blocks.call("set_send", [(s,) for s in send])
    has_term = any(i["has_terminal"] for i in infos)
    if order == "auto":
        order = "gauss-seidel" if has_term else "jacobi"
    if spr is None:
        spr = default_sweeps_per_round(has_term, max(i["nnz"] for i in infos))
    lam = tau + eta
    rscale = max(i["max_abs_reward"] for i in infos) + lam * math.log(A)
    # pessimistic start (as fastsoft.vi.pessimistic_start): min_s (T 0)(s) / (1 - gamma)
    m = min(blocks.call("regularize", [(tau, eta, log_prior)] * n)[0])
    if not np.isfinite(m):
        m = 0.0
    if has_term:
        m = min(m, 0.0)
    v0 = m / (1.0 - gamma)
    ktol = sweep_tol_from_scales(tol, abs(v0), rscale, gamma)
    c = gamma / (1.0 - gamma)
    B = np.concatenate(blocks.call("start", [(v0,)] * n)[0])
    halo_bytes = 8 * int(B.size + sum(g.size for g in gather))
    hist_b, hist_r, hist_t, hist_n = [], [], [], []
    done = 0
    rnd = 0
    interrupted = False
    lo_s = hi_s = 0.0
    k_now = spr
    recovered: list[dict] = []
    recovered_n = 0
    valid = False
    name = "partitioned value iteration"
    with progress_scope(bool(progress), name, tol=tol, callback=callback) as cb:
        while done < max_iter:
            k_now = min(k_now, max_iter - done)
            outs, lost = blocks.call("round", [(B[g], k_now, order == "gauss-seidel", done)
                                               for g in gather], allow_loss=recovered_n < retries)
            if lost:
                if recovered_n + len(lost) > retries:
                    raise blocks._lost(lost[0], RuntimeError("retries exhausted"))
                gone = {blocks.where[k] for k in lost}
                for k in lost:
                    w = blocks.rebuild(k, gone)
                    blocks.actors[k].set_send(send[k]).result(timeout=blocks.timeout)
                    blocks.actors[k].regularize(tau, eta, log_prior).result(
                        timeout=blocks.timeout)
                    fresh = blocks.actors[k].start(v0).result(timeout=blocks.timeout)
                    outs[k] = (fresh, np.inf, -np.inf)
                    recovered.append({"round": rnd + 1, "block": k, "worker": w})
                recovered_n += len(lost)
            B = np.concatenate([o[0] for o in outs])
            dmin = min(o[1] for o in outs)
            dmax = max(o[2] for o in outs)
            if dmin > dmax:  # no live state
                lo_s = hi_s = 0.0
            elif has_term:
                lo_s, hi_s = c * min(dmin, 0.0), c * max(dmax, 0.0)
            else:
                lo_s, hi_s = c * dmin, c * dmax
            if lost:  # no certificate this round: a block restarted
                lo_s = hi_s = 0.0
            valid = not lost
            bound = 0.5 * (hi_s - lo_s) if valid else np.inf
            done += k_now
            rnd += 1
            hist_b.append(bound)
            hist_r.append(0.0 if dmin > dmax else max(abs(dmin), abs(dmax)))
            hist_t.append(time.perf_counter() - t_start)
            hist_n.append(done)
            if bound <= ktol:
                break
            if cb is not None:
                stop = cb({"n_iter": done, "error_bound": bound, "residual": hist_r[-1],
                           "round": rnd, "elapsed": hist_t[-1]})
                if stop:
                    interrupted = True
                    break
    # the certified TV of the last round, moved to the midpoint of its bounds
    B = np.concatenate(blocks.call("settle", [(0.5 * (lo_s + hi_s),)] * n)[0])
    outs = blocks.call("finish", [(B[g],) for g in gather])[0]
    V = np.concatenate([o[0] for o in outs])
    Q = np.concatenate([o[1] for o in outs])
    pi = np.concatenate([o[2] for o in outs])
    dmin = min(o[3] for o in outs)
    dmax = max(o[4] for o in outs)
    vmax = max(o[5] for o in outs)
    bound = 0.5 * (hi_s - lo_s) if valid else np.inf
    if dmin <= dmax:
        if has_term:
            lo2, hi2 = c * min(dmin, 0.0), c * max(dmax, 0.0)
        else:
            lo2, hi2 = c * dmin, c * dmax
        bound2 = max(dmax + hi2, -(dmin + lo2), 0.0)
        bound = min(bound, bound2) + roundoff_from_scales(vmax, rscale, gamma)
    else:
        bound = 0.0
    method = f"partitioned_value_iteration[{order}]"
    return SolveResult(
        V=V, Q=Q, policy=pi, n_iter=done, residual=float(hist_r[-1]) if hist_r else np.nan,
        error_bound=float(bound), converged=bool(bound <= tol),
        history={"error_bound": np.array(hist_b), "residual": np.array(hist_r),
                 "time": np.array(hist_t), "sweeps": np.array(hist_n, dtype=np.int64)},
        method=method, temperature=tau, kl_weight=eta, horizon=None, tol=tol,
        wall_time=time.perf_counter() - t_start, interrupted=interrupted,
        extra={"n_parts": n, "rounds": rnd, "halo": [int(i["halo"].size) for i in infos],
               "bytes_per_round": halo_bytes,
               "block_nbytes": [int(i["nbytes"]) for i in infos], "recovered": recovered},
    )


def default_sweeps_per_round(has_terminal: bool, block_nnz: int) -> int:
    """Sweeps per round trip of :func:`solve_partitioned` by default.

    1 without terminal states (the span certificate needs sweeps of a global
    iterate); otherwise enough sweeps that a round sweeps at least
    :data:`ROUND_TRIP_NNZ` transitions of the largest block, between 2 (one
    certifying Jacobi sweep and one Gauss-Seidel sweep) and
    :data:`MAX_SWEEPS_PER_ROUND`. A function of the sizes only, never of time.
    """
    if not has_terminal:
        return 1
    return int(min(MAX_SWEEPS_PER_ROUND, max(2, -(-ROUND_TRIP_NNZ // max(block_nnz, 1)))))
