"""``fastsoft.solve_batch``: one MDP, many reward vectors, one pass over the transitions per sweep.

Inverse RL, parameter sweeps and reward learning solve the same transitions
for many rewards. :func:`solve_batch` runs Jacobi value iteration on all of
them at once: the values live in one ``(S, B)`` array, so each stored
transition is read once per sweep and updates B expectations from one
contiguous row. Every problem gets its own span certificate (docs/theory.md §2.4) and
its own result, exactly as :func:`fastsoft.soft_value_iteration` with
``order="jacobi"`` would certify it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from . import _batch as KB
from . import _bundles
from ._bundles import make_regularizer
from ._driver import chunk_bounds, finish, kernel_tol
from ._jit import parallel_mode, run_time
from ._validation import check_int, check_mdp, check_real
from .mdp import TabularMDP
from .result import SolveResult
from .vi import DEFAULT_MAX_ITER, pessimistic_start

__all__ = ["BatchResult", "solve_batch"]

#: Sweeps per kernel call (a fixed count: the iterate never depends on it).
BATCH_SWEEPS = 128


@dataclass(frozen=True, repr=False)
class BatchResult:
    """Solutions of one MDP under B reward vectors.

    Attributes
    ----------
    V : ndarray (B, S)
        Values of each problem (midpoint of its certified interval).
    policy : ndarray (B, S, A)
        The regularized greedy policy of each ``V`` (docs/theory.md §2.2).
    Q : ndarray (B, S, A)
    error_bound : ndarray (B,)
        Certified ``max_s |V[b, s] - V*_b(s)|`` of each problem.
    converged : ndarray of bool (B,)
        ``error_bound <= tol``.
    n_iter : int
        Sweeps run (all problems sweep together until the last one is certified).
    status : tuple of str
        Per problem: ``"converged"`` or ``"max_iter"``.
    message : tuple of str
        Per problem, in words.
    results : tuple of SolveResult
        The per-problem results (history, residual, ...).
    tol, temperature, kl_weight, wall_time : float
    """

    V: np.ndarray
    policy: np.ndarray
    Q: np.ndarray
    error_bound: np.ndarray
    converged: np.ndarray
    n_iter: int
    status: tuple[str, ...]
    message: tuple[str, ...]
    results: tuple[SolveResult, ...]
    tol: float
    temperature: float
    kl_weight: float
    wall_time: float

    def __len__(self) -> int:
        return self.V.shape[0]

    def __getitem__(self, b: int) -> SolveResult:
        return self.results[b]

    def __repr__(self) -> str:
        return (f"BatchResult(B={len(self)}, S={self.V.shape[1]}, n_iter={self.n_iter}, "
                f"converged={int(self.converged.sum())}/{len(self)}, "
                f"max error_bound={float(self.error_bound.max()):.3g})")


def _check_rewards(mdp: TabularMDP, rewards) -> np.ndarray:
    from .mdp import _as_real_array

    R = _as_real_array(rewards, "rewards")
    S, A = mdp.n_states, mdp.n_actions
    if R.ndim == 2 and R.shape == (S, A):
        R = R[None]
    if R.ndim != 3 or R.shape[1:] != (S, A) or R.shape[0] == 0:
        raise ValueError(f"rewards must have shape (B, S, A) = (B, {S}, {A}) with B >= 1, "
                         f"got {R.shape}")
    if np.isnan(R).any() or (R == np.inf).any():
        b, s, a = np.argwhere(np.isnan(R) | (R == np.inf))[0]
        raise ValueError(f"rewards must not hold NaN or +inf; first offending (b, s, a) = "
                         f"({b}, {s}, {a})")
    mismatch = (R > -np.inf) != mdp.feasible[None]
    if mismatch.any():
        b, s, a = np.argwhere(mismatch)[0]
        raise ValueError(
            f"rewards: every problem must have the MDP's feasible actions (-inf exactly where "
            f"mdp.rewards is -inf); first offending (b, s, a) = ({b}, {s}, {a})")
    return R


def solve_batch(
    mdp: TabularMDP,
    rewards,
    *,
    temperature: float = 0.0,
    kl_weight: float = 0.0,
    prior=None,
    tol: float = 1e-8,
    max_iter: int | None = None,
    V0=None,
    parallel: bool | None = None,
) -> BatchResult:
    """Solve ``mdp`` for each of B reward arrays with one pass over the transitions per sweep.

    Parameters
    ----------
    mdp : TabularMDP
        The transitions (its own rewards only fix which actions are feasible).
    rewards : array (B, S, A)
        One reward array per problem; ``-inf`` exactly where ``mdp.rewards``
        is ``-inf``.
    temperature, kl_weight, prior
        The regularizer, shared by all problems (as in :func:`fastsoft.solve`).
    tol : float
        Certified sup-norm error each problem must reach.
    max_iter : int, optional
        Sweep limit (default :data:`fastsoft.vi.DEFAULT_MAX_ITER`).
    V0 : array (B, S), optional
        Warm starts; default each problem's pessimistic start (as ``solve``).
    parallel : bool, optional
        As in :func:`fastsoft.solve`.

    Returns
    -------
    BatchResult
        ``V (B, S)``, ``policy (B, S, A)``, ``error_bound (B,)``,
        ``converged (B,)``, a status and message per problem, and the
        per-problem :class:`SolveResult` objects.

    Notes
    -----
    All problems sweep together until the last one is certified, so a problem
    that converges early receives extra sweeps (which only tighten its bound).
    The sweeps are Jacobi sweeps whatever ``mdp`` is; each problem's answer
    lies within its certificate, hence within ``tol + tol_single`` of what
    :func:`fastsoft.solve` returns for it.

    Examples
    --------
    >>> import numpy as np, fastsoft as fs
    >>> mdp = fs.random_mdp(50, 3, 4, gamma=0.9, seed=0)
    >>> R = np.random.default_rng(0).normal(size=(8, 50, 3))
    >>> out = fs.solve_batch(mdp, R, temperature=0.1, tol=1e-6)
    >>> out.V.shape, bool(out.converged.all())
    ((8, 50), True)
    >>> one = fs.solve(mdp.with_rewards(R[3]), 0.1, tol=1e-6)
    >>> bool(np.abs(out.V[3] - one.V).max() <= out.error_bound[3] + one.error_bound)
    True
    """
    t_start = time.perf_counter()
    mdp = check_mdp(mdp)
    R = _check_rewards(mdp, rewards)
    tol = check_real(tol, "tol", low=0.0, low_open=True)
    max_iter = check_int(max_iter, "max_iter", low=1, allow_none=True) or DEFAULT_MAX_ITER
    if mdp.gamma >= 1.0:
        raise ValueError("solve_batch needs gamma < 1")
    B, S, A = R.shape
    reg = make_regularizer(mdp, temperature, kl_weight, prior)
    mdps = [mdp.with_rewards(R[b]) for b in range(B)]
    if V0 is None:
        V = np.stack([pessimistic_start(m, reg) for m in mdps], axis=1)
    else:
        V0 = np.asarray(V0, dtype=np.float64)
        if V0.shape != (B, S) or not np.isfinite(V0).all():
            raise ValueError(f"V0 must be a finite array of shape (B, S) = ({B}, {S}), "
                             f"got shape {V0.shape}")
        V = np.ascontiguousarray(V0.T)
    if mdp.has_terminal:
        V[mdp.terminal] = 0.0
    ktol = np.array([kernel_tol(m, reg, tol, V[:, b]) for b, m in enumerate(mdps)])
    model, pin = _bundles.model(mdp), _bundles.pinned(mdp)
    indptr, indices, probs = model.indptr, model.indices, model.probs
    term, has_term = pin.mask, pin.any
    Rk = np.ascontiguousarray(R.transpose(1, 2, 0), dtype=np.float64)  # (S, A, B)
    par = parallel if parallel is not None else (S * A * B >= 20_000 or mdp.nnz * B >= 100_000)
    bounds = chunk_bounds(S, bool(par))
    nb = len(bounds) - 1
    W = np.empty_like(V)
    cmin = np.empty((nb, B))
    cmax = np.empty((nb, B))
    shift = np.zeros((B, 2))
    hb, hr = [], []
    done = 0
    c = mdp.gamma / (1.0 - mdp.gamma)
    trans = (indptr, indices, probs.astype(np.float64, copy=False))
    regt = (reg.lam, reg.bias, reg.has_bias, reg.sbias)
    termt = (term, has_term)
    with parallel_mode(parallel):
        while done < max_iter:
            n = min(BATCH_SWEEPS, max_iter - done)
            hist_b = np.empty((n, B))
            hist_r = np.empty((n, B))
            k = KB._batch_run((n, c, has_term), bounds, trans, Rk, mdp.gamma, V, regt, termt,
                              ktol, (W, cmin, cmax, shift, hist_b, hist_r))
            hb.append(hist_b[:k])
            hr.append(hist_r[:k])
            done += k
            if k < n:
                break
        hist_b = np.concatenate(hb)
        hist_r = np.concatenate(hr)
        results = []
        for b, m in enumerate(mdps):
            out = {"V": V[:, b].copy(), "n_iter": done, "lo": float(shift[b, 0]),
                   "hi": float(shift[b, 1]), "interrupted": False,
                   "history": {"error_bound": hist_b[:, b].copy(),
                               "residual": hist_r[:, b].copy(), "time": np.full(done, np.nan)}}
            method = ("value_iteration[batch-jacobi]" if reg.lam == 0
                      else "soft_value_iteration[batch-jacobi]")
            results.append(finish(m, reg, out, tol, method, t_start))
    bound = np.array([r.error_bound for r in results])
    conv = bound <= tol
    status = tuple("converged" if ok else "max_iter" for ok in conv)
    message = tuple(
        f"certified error {eb:.3g} <= tol {tol:.3g}" if ok else
        f"max_iter={max_iter} sweeps reached with certified error {eb:.3g} > tol {tol:.3g}"
        for eb, ok in zip(bound, conv, strict=True))
    return BatchResult(
        V=np.stack([r.V for r in results]), policy=np.stack([r.policy for r in results]),
        Q=np.stack([r.Q for r in results]), error_bound=bound, converged=conv, n_iter=done,
        status=status, message=message, results=tuple(results), tol=tol,
        temperature=reg.tau, kl_weight=reg.eta, wall_time=run_time(t_start))
