"""Regularized value iteration (docs/theory.md §2): the public layer over the Bellman kernels."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from . import _bundles as B
from . import _kernels as K
from ._bundles import Regularizer, make_regularizer
from ._certify import STOP_BUDGET, bellman_allowance, check_scale
from ._driver import backup, chunk_bounds, finish, progress_scope, use_parallel
from ._jit import parallel_mode, run_time
from ._validation import check_fits, check_int, check_mdp, check_real, check_vector
from .mdp import TabularMDP
from .result import SolveResult

__all__ = ["soft_value_iteration", "value_iteration", "bellman_backup", "DEFAULT_MAX_ITER"]

#: ``max_iter=None`` means this many sweeps.
DEFAULT_MAX_ITER = 100_000

_ORDERS = ("jacobi", "gauss-seidel")
_ACCELERATIONS = ("auto", "anderson", None)

#: Default depth of Anderson acceleration (past differences combined).
ANDERSON_DEPTH = 2


def pessimistic_start(mdp: TabularMDP, reg: Regularizer | None = None) -> np.ndarray:
    """A lower bound of the regularized V*: the constant ``m / (1 - gamma)``.

    ``m`` is the smallest one-step regularized value ``(T 0)(s)`` over
    non-terminal states, i.e. ``min_s lam log sum_a exp((R(s, a) + eta log
    mu(a|s)) / lam)`` (``min_s max_a R(s, a)`` when ``lam = 0``; ``reg=None``
    means the hard operator). Since ``T(V + k) >= TV + gamma k`` for constants
    ``k <= 0`` (and ``= TV + gamma k`` for every ``k`` without terminal
    states), ``V_0 = m / (1 - gamma)`` satisfies ``T V_0 >= V_0``, so ``V_0 <=
    V*``; with terminal states ``m`` is first capped at 0. Terminal states get 0.

    Value iteration starts here by default. Information then travels with the
    Gauss-Seidel sweep order (a state's value rises as soon as a better
    neighbour is known), so on grids one sweep carries it across the grid; an
    optimistic start such as 0 only lets bad news travel one cell per sweep.
    With a temperature the bound includes the entropy bonus (``tau log |A|``
    per step where all actions tie), which removes most of the initial error
    in the regions where the soft policy is nearly uniform.
    """
    if reg is None:
        reg = B.entropy_only(0.0, mdp.n_states)

    def build() -> float:
        m = float(one_step_values(mdp, reg).min())
        if not np.isfinite(m):
            m = 0.0
        if mdp.has_terminal:
            m = min(m, 0.0)
        return m / (1.0 - mdp.gamma) if mdp.gamma < 1 else 0.0

    if reg.log_prior is None:
        v = B.pessimistic_value(mdp, (reg.tau, reg.eta), build)
    else:
        v = build()
    V = np.full(mdp.n_states, v)
    if mdp.has_terminal:
        V[mdp.terminal] = 0.0
    return V


def one_step_values(mdp: TabularMDP, reg: Regularizer | None = None) -> np.ndarray:
    """``(T 0)(s) = lam log sum_a exp((R(s, a) + eta log mu(a|s)) / lam)`` per state.

    ``max_a R(s, a)`` when ``lam = 0`` (``reg=None``: the hard operator);
    ``+inf`` at terminal states.
    """
    if reg is None:
        reg = B.entropy_only(0.0, mdp.n_states)
    out = np.empty(mdp.n_states)
    K._one_step_values(mdp.rewards, reg.kernel, B.pinned(mdp), out)
    return out


def use_anderson(mdp: TabularMDP, reg: Regularizer, order: str) -> bool:
    """``acceleration="auto"``: Anderson acceleration for soft (``lam > 0``)
    Gauss-Seidel sweeps on problems with terminal states.

    That is where plain sweeps are slow: the error of a soft gridworld relaxes
    like a diffusion, and Anderson acceleration cuts the sweeps several times.
    Hard value iteration does not gain (its greedy policy keeps changing, so
    the sweep map is not smooth), and without terminal states Jacobi sweeps
    stop on the two-sided span certificate sooner than accelerated ones. The
    measured sweep counts, with their commands, are in docs/performance.md.
    """
    return reg.lam > 0.0 and order == "gauss-seidel" and mdp.has_terminal


#: With a callback, value iteration returns to Python after at most this many stored
#: transitions read (sweeps times nnz), about 0.1 s of sweeping.
BATCH_ENTRIES = 20_000_000

#: With Gauss-Seidel and no terminal states, every this many sweeps is a Jacobi
#: sweep whose two-sided certificate can stop the run.
GS_CHECK_EVERY = 4

def bellman_backup(
    mdp: TabularMDP, V, temperature: float = 0.0, *, kl_weight: float = 0.0, prior=None
):
    """Apply the regularized Bellman operator once (docs/theory.md §2).

    Parameters
    ----------
    mdp : TabularMDP
    V : array, shape (S,)
        Values; entries at terminal states are ignored (read as 0).
    temperature : float
        Entropy weight ``tau >= 0``.
    kl_weight : float
        KL weight ``eta >= 0`` towards ``prior``.
    prior : array (S, A) or (A,), optional
        ``mu``; uniform over the feasible actions when omitted.

    Returns
    -------
    TV : ndarray (S,)
    Q : ndarray (S, A)
    policy : ndarray (S, A)
    """
    mdp = check_mdp(mdp)
    V = check_vector(V, "V", mdp.n_states)
    reg = make_regularizer(mdp, temperature, kl_weight, prior)
    if mdp.has_terminal:
        V[mdp.terminal] = 0.0  # terminal values are 0 (SPEC 1), whatever V holds there
    return backup(mdp, V, reg)


def soft_value_iteration(
    mdp: TabularMDP,
    temperature: float,
    *,
    kl_weight: float = 0.0,
    prior=None,
    horizon: int | None = None,
    tol: float = 1e-8,
    max_iter: int | None = None,
    V0=None,
    order: str = "jacobi",
    parallel: bool | None = None,
    callback: Callable[[dict], bool | None] | None = None,
    progress: bool = False,
    acceleration: str | None = "auto",
    anderson_depth: int = ANDERSON_DEPTH,
) -> SolveResult:
    """Entropy- and KL-regularized value iteration with a certified stopping rule.

    Iterates ``(T V)(s) = lam log sum_a exp((Q(s,a) + eta log mu(a|s)) / lam)``,
    ``lam = tau + eta``, ``Q = R + gamma P V`` (the hard max when ``lam = 0``).
    After each sweep, with ``d = TV - V`` and ``c = gamma / (1 - gamma)``, the
    MacQueen bounds ``TV + c min d <= V* <= TV + c max d`` hold; the returned
    ``V`` is their midpoint and ``error_bound`` the half-width, a certified
    bound on ``max_s |V(s) - V*(s)|``. With terminal states or Gauss-Seidel
    sweeps the bounds use ``min(min d, 0)`` and ``max(max d, 0)`` (the operator
    then shifts constants by at most ``gamma c``, not exactly).

    Parameters
    ----------
    mdp : TabularMDP
    temperature : float
        Entropy weight ``tau >= 0`` (same units as rewards; not an inverse
        temperature).
    kl_weight : float
        KL weight ``eta >= 0``.
    prior : array (S, A) or (A,), optional
        The prior policy ``mu``; uniform over each state's feasible actions by default.
    horizon : int, optional
        Finite horizon ``H``: exact backward induction, results with a leading
        time axis; ``gamma = 1`` is allowed. ``V0`` is then ``V_H`` (default 0).
    tol : float
        Certified sup-norm error to reach.
    max_iter : int, optional
        Sweep limit (default :data:`DEFAULT_MAX_ITER`); when it is hit,
        ``converged=False`` and the certified bound reached is reported.
    V0 : array (S,), optional
        Starting values (warm start). Terminal states are pinned to 0. Default:
        the pessimistic bound of :func:`pessimistic_start`.
    order : {"jacobi", "gauss-seidel"}
        Jacobi sweeps (parallel over states on large problems) or in-place
        Gauss-Seidel sweeps alternating increasing and decreasing state order
        (on grids it carries information across the grid in one sweep). The
        parallel Gauss-Seidel sweep splits the states into
        :data:`fastsoft._driver.GS_BLOCKS`
        fixed blocks, each swept in place while reading the other blocks'
        values from the start of the sweep (block Gauss-Seidel): the result
        does not depend on the number of threads.
    parallel : bool, optional
        Force the parallel (True) or serial (False) kernels; default by size.
    callback : callable, optional
        Called between kernel calls with a dict ``{"n_iter", "error_bound",
        "residual", "elapsed"}``; returning True stops the run (the partial
        result keeps its certificate). Ctrl-C does the same while a callback is set.
    progress : bool
        Show a progress bar of the certified bound (tqdm, when stderr is a
        terminal) and turn Ctrl-C into a clean stop with the partial result.
    acceleration : {"auto", "anderson", None}
        ``"anderson"``: Anderson acceleration of depth ``anderson_depth`` over
        the sweep map (one Jacobi sweep, or a forward and a backward
        Gauss-Seidel sweep; see :mod:`fastsoft._anderson`). The certificate is
        unchanged: every sweep output is certified on its own and the result
        is a sweep output. ``"auto"`` (default) uses it where it pays, see
        :func:`use_anderson`; ``None`` never.
    anderson_depth : int
        Number of past differences Anderson acceleration combines (1 to 20).

    Returns
    -------
    SolveResult
        ``method`` ends in ``+anderson`` when the acceleration ran.
    """
    t_start = time.perf_counter()
    mdp = check_mdp(mdp)
    reg = make_regularizer(mdp, temperature, kl_weight, prior)
    tol = check_real(tol, "tol", low=0.0, low_open=True)
    if order not in _ORDERS:
        raise ValueError(f"order must be one of {_ORDERS}, got {order!r}")
    if horizon is not None:
        H = check_int(horizon, "horizon", low=1)
        return _finite(mdp, reg, H, V0, t_start)
    if mdp.gamma >= 1.0:
        raise ValueError("gamma = 1 needs a finite horizon (pass horizon=H)")
    check_scale(mdp, reg)
    max_iter = check_int(max_iter, "max_iter", low=1, allow_none=True) or DEFAULT_MAX_ITER
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable")
    if acceleration not in _ACCELERATIONS:
        raise ValueError(f"acceleration must be one of {_ACCELERATIONS}, got {acceleration!r}")
    depth = check_int(anderson_depth, "anderson_depth", low=1)
    if depth > 20:
        raise ValueError(f"anderson_depth must be at most 20, got {depth}")
    S = mdp.n_states
    V = pessimistic_start(mdp, reg) if V0 is None else check_vector(V0, "V0", S)
    par = use_parallel(mdp, parallel)
    gs = order == "gauss-seidel"
    if acceleration == "auto":
        acceleration = "anderson" if use_anderson(mdp, reg, order) else None
    name = "value iteration" if reg.lam == 0 else "soft value iteration"
    with progress_scope(bool(progress), name, tol=tol, callback=callback) as cb:
        out = _run_sweeps(mdp, reg, V, tol, max_iter, par, gs, cb,
                          t_start, anderson=depth if acceleration == "anderson" else 0)
    method = f"value_iteration[{order}]" if reg.lam == 0 else f"soft_value_iteration[{order}]"
    if acceleration == "anderson":
        method += "+anderson"
    return finish(mdp, reg, out, tol, method, t_start)


def value_iteration(mdp: TabularMDP, **kwargs) -> SolveResult:
    """Hard value iteration: :func:`soft_value_iteration` with temperature 0 and no KL."""
    return soft_value_iteration(mdp, 0.0, **kwargs)


def _run_sweeps(mdp, reg, V, tol, max_iter, par, gs, callback, t_start, anderson=0):
    """Drive ``_vi_run`` (or ``_vi_run_anderson`` with depth ``anderson``).

    Returns a dict with the certified iterate (the output of the last sweep).
    """
    model = B.model(mdp, coded=True)
    pin = B.pinned(mdp)
    kreg = reg.kernel
    has_term = mdp.has_terminal
    if has_term:
        V[mdp.terminal] = 0.0
    S = mdp.n_states
    cg = B.chunks(chunk_bounds(S, par, gs))
    h0 = min(max_iter, _HISTORY0)
    hist_b = np.empty(h0)
    hist_r = np.empty(h0)
    hist_t = np.empty(h0)
    cert = bellman_allowance(mdp, reg).buffer()
    c = mdp.gamma / (1.0 - mdp.gamma)
    clamp = has_term
    # without terminal states a periodic Jacobi sweep gives Gauss-Seidel the
    # two-sided span certificate (the one-sided one can need 100x more sweeps)
    check_every = GS_CHECK_EVERY if (gs and not has_term) else 0
    if anderson:
        from . import _anderson as AA

        cj = B.chunks(chunk_bounds(S, par, False))
        nj = len(cj.bounds) - 1
        aa = B.AndersonWork(
            cj=cj, cg=cg, g=V.copy(), snap=np.empty(S), fp=np.empty(S), gp=np.empty(S),
            dF=np.zeros((anderson, S)), dG=np.zeros((anderson, S)),
            H=np.zeros((anderson, anderson)), state=np.zeros(3, dtype=np.int64),
            best=np.full(1, np.inf), part=np.empty((nj, 2 * anderson)),
            coef=np.empty(anderson), hist_bound=hist_b, hist_resid=hist_r, cert=cert)
        ctl = B.AndersonControl(tol, c, clamp, par, gs, bool(check_every))
        # whole maps per kernel call, so that the history survives a callback
        per_map = (3 if check_every else 2) if gs else 1

        def run(n, done, hist_b, hist_r):
            return AA._vi_run_anderson(n, done, ctl, model, kreg, pin, V,
                                       aa._replace(hist_bound=hist_b, hist_resid=hist_r))
    else:
        per_map = 1
        work = B.VIWork(cg, np.empty_like(V), hist_b, hist_r, cert)
        vctl = B.VIControl(tol, c, clamp, par, gs, check_every)

        def run(n, done, hist_b, hist_r):
            return K._vi_run(n, done, vctl, model, kreg, pin, V,
                             work._replace(hist_bound=hist_b, hist_resid=hist_r))
    done = 0
    interrupted = False
    batch = max_iter if callback is None else per_map
    t_prev = time.perf_counter() - t_start
    while done < max_iter:
        n = min(batch, max_iter - done)
        if done + n > hist_b.shape[0]:
            # the history grows with the run (max_iter may be a huge cap); runs in
            # chunks give the same iterates as one call (the kernels keep their state)
            n = min(n, max(hist_b.shape[0], 1024))
            hist_b, hist_r, hist_t = (_grow(h, done + n) for h in (hist_b, hist_r, hist_t))
        try:
            with parallel_mode(par):  # the twins agree with the sweeps' algorithm
                k = run(n, done, hist_b, hist_r)
        except KeyboardInterrupt:  # pragma: no cover - only with a callback
            interrupted = True
            break
        t_now = time.perf_counter() - t_start
        hist_t[done:done + k] = t_prev + (t_now - t_prev) / k * np.arange(1, k + 1)
        done += k
        t_prev = t_now
        if cert[6] != STOP_BUDGET:
            break
        if callback is not None:
            info = {"n_iter": done, "error_bound": float(hist_b[done - 1]),
                    "residual": float(hist_r[done - 1]), "elapsed": t_now}
            try:
                stop = callback(info)
            except KeyboardInterrupt:
                interrupted = True
                break
            if stop:
                interrupted = True
                break
            # twice the sweeps (plus one) per call, up to about BATCH_ENTRIES stored
            # transitions read per call (~0.1 s): counted, never timed, and the kernels
            # carry their state across calls, so the iterate is the same with or
            # without a callback
            cap = max(per_map, BATCH_ENTRIES // max(mdp.nnz, 1))
            batch = min(2 * batch + 1, cap)
            batch = max(per_map, batch - batch % per_map)
    return {
        "V": aa.g if anderson else V, "n_iter": done, "lo": float(cert[0]),
        "hi": float(cert[1]), "reason": int(cert[6]),
        "history": {"error_bound": hist_b[:done].copy(), "residual": hist_r[:done].copy(),
                    "time": hist_t[:done].copy()},
        "interrupted": interrupted,
    }


#: The first kernel call of a run records at most this many sweeps of history;
#: the arrays then grow (doubling) as the run goes on.
_HISTORY0 = 4096


def _grow(h: np.ndarray, n: int) -> np.ndarray:
    """``h`` copied into a longer array of length ``max(n, 2 len(h))``."""
    out = np.empty(max(n, 2 * h.shape[0]))
    out[:h.shape[0]] = h
    return out


def _finite(mdp, reg, H, V0, t_start) -> SolveResult:
    S, A = mdp.n_states, mdp.n_actions
    check_fits(8.0 * ((H + 1) * S + 2.0 * H * S * A),
               f"horizon={H:,} over {S:,} states x {A} actions")
    VT = np.zeros(S) if V0 is None else check_vector(V0, "V0", S)
    Vt = np.empty((H + 1, S))
    Qt = np.empty((H, S, A))
    pit = np.empty((H, S, A))
    K._finite_horizon(H, B.model(mdp), reg.kernel, B.pinned(mdp), VT, Vt, Qt, pit)
    method = "backward_induction" if reg.lam == 0 else "soft_backward_induction"
    return SolveResult(
        V=Vt, Q=Qt, policy=pit, n_iter=H, residual=0.0, error_bound=0.0, converged=True,
        history={"error_bound": np.zeros(H), "residual": np.zeros(H), "time": np.zeros(H)},
        method=method, temperature=reg.tau, kl_weight=reg.eta, horizon=H, tol=0.0,
        wall_time=run_time(t_start),
    )
