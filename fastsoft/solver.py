"""``fastsoft.solve``: one entry point that picks the fastest certified method."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from ._bundles import make_regularizer
from ._certify import check_scale, floor_message
from ._driver import backup, pi_loop, progress_scope, roundoff_allowance
from ._jit import parallel_mode
from ._structure import closed_structure, reduced, restrict
from ._validation import as_tabular, check_int, check_mdp, check_real, check_vector
from .mdp import TabularMDP
from .result import SolveResult, Status
from .vi import DEFAULT_MAX_ITER, one_step_values, pessimistic_start, soft_value_iteration

__all__ = ["solve", "choose_method", "METHODS", "DENSE_MIN_ROW_NNZ", "SWITCH_MIN_SWEEPS",
           "SWITCH_FACTOR", "SWITCH_PI_BUDGET"]

#: Methods accepted by :func:`solve`.
METHODS = ("auto", "vi", "vi-gs", "pi", "pi-iterative", "mpi")

#: ``"auto"`` solves hard problems without terminal states whose state-action
#: pairs have at least this many successors on average by inexact policy
#: iteration with Jacobi evaluation sweeps: a sweep of one policy reads
#: ``1/A`` of ``P``, a Bellman sweep all of it (dense 2000 x 8: 0.19 s vs 0.31 s).
DENSE_MIN_ROW_NNZ = 256

#: ``"auto"`` watches the certified bound of its value-iteration sweeps from
#: this many sweeps on and switches to policy iteration once the measured rate
#: projects more than :data:`SWITCH_FACTOR` times the sweeps done so far.
SWITCH_MIN_SWEEPS = 50
SWITCH_FACTOR = 2.0

#: After the switch, policy iteration gets this many improvement steps to
#: certify ``tol``; if it has not (it crawls where the greedy policy of the
#: current values is poor), the sweeps resume from its values.
SWITCH_PI_BUDGET = 10


def choose_method(mdp: TabularMDP, temperature: float = 0.0, kl_weight: float = 0.0) -> str:
    """The method ``solve(method="auto")`` starts with on ``mdp`` (see :func:`solve`).

    ``mdp`` is the MDP the iteration runs on: after :func:`solve` has split off
    the closed sets, that is the reduced MDP, whose closed states are terminal.
    """
    mdp = check_mdp(mdp)
    S, A = mdp.n_states, mdp.n_actions
    row_nnz = mdp.nnz / max(1, S * A)
    if not mdp.has_terminal:
        hard = float(temperature) == 0.0 and float(kl_weight) == 0.0
        if hard and A >= 2 and row_nnz >= DENSE_MIN_ROW_NNZ:
            return "pi-iterative"
        return "vi"
    return "vi-gs"


def _projected_sweeps(hist: np.ndarray, tol: float) -> float:
    """Sweeps still needed at the certified bound's rate over the last half of ``hist``."""
    n = hist.size
    b, b0 = float(hist[-1]), float(hist[n // 2])
    if not (np.isfinite(b) and np.isfinite(b0) and b0 > 0) or n - 1 <= n // 2:
        return np.inf
    if b <= tol:  # already there (b = 0 included: no rate to divide by)
        return 0.0
    rate = (b / b0) ** (1.0 / (n - 1 - n // 2))
    return np.inf if rate >= 1.0 else float(np.log(b / tol) / -np.log(rate))


def solve(
    mdp: TabularMDP,
    temperature: float = 0.0,
    *,
    kl_weight: float = 0.0,
    prior=None,
    tol: float = 1e-8,
    method: str = "auto",
    V0=None,
    max_iter: int | None = None,
    callback: Callable[[dict], bool | None] | None = None,
    progress: bool = False,
    gamma: float | None = None,
    parallel: bool | None = None,
) -> SolveResult:
    """Solve a (regularized) MDP to a certified sup-norm error ``tol``.

    The target is the fixed point of the regularized Bellman operator of
    docs/theory.md §2 with entropy weight ``temperature`` and KL weight ``kl_weight``
    towards ``prior`` (the hard optimum for ``temperature = kl_weight = 0``),
    exactly what :func:`fastsoft.soft_value_iteration` computes. Every method
    ends with the same certificate (one Bellman step of the returned ``V``,
    docs/theory.md §2.4), so ``error_bound`` and ``converged`` mean the same whatever ran.

    Methods
    -------
    ``"vi"``
        Value iteration, Jacobi sweeps (parallel on large problems), stopped by
        the span (MacQueen) bound, which on well-mixing MDPs certifies long
        before the values themselves converge.
    ``"vi-gs"``
        Value iteration with Gauss-Seidel sweeps alternating the state order,
        from the pessimistic start: information crosses a grid in one sweep.
    ``"pi"``
        Policy iteration (Newton's method on the regularized operator): exact
        evaluation of each policy by a sparse LU solve of ``I - gamma P_pi``
        where the envelope of the support graph keeps the factor sparse
        (otherwise sweeps to a forcing tolerance), greedy improvement with
        stable tie-breaking. A handful of iterations.
    ``"pi-iterative"``
        Inexact policy iteration: evaluation by extrapolated sweeps to a forcing
        tolerance (Jacobi sweeps with the two-sided span certificate when no
        state is terminal, Gauss-Seidel otherwise).
    ``"mpi"``
        Modified policy iteration: 20 sweeps of the policy operator (same
        order rule) per improvement.

    ``"auto"`` chooses by structure, then by measured progress:

    1. Structure first, whatever the method: closed sets of the support graph
       (states or classes no action leaves, e.g. goals written as absorbing
       self-loops) are split off and solved exactly (closed form for a
       self-loop, exact-evaluation policy iteration for small classes), and
       the rest is solved on the reduced MDP in which they are terminal
       (``extra["closed_states"]``; see ``docs/closed_sets.md``). A terminal
       flag is an optimisation, never a requirement.
    2. Then :func:`choose_method` on what is left: ``"vi-gs"`` with terminal
       states (values flow from them along the alternating sweep order; with
       a temperature Anderson-accelerated), ``"vi"`` without (the two-sided
       span bound stops Jacobi sweeps early when ``P`` mixes), and
       ``"pi-iterative"`` for hard problems with at least
       :data:`DENSE_MIN_ROW_NNZ` successors per pair.
    3. Measured progress (Jacobi sweeps, without a callback or progress bar;
       restarting Gauss-Seidel sweeps from a midpoint measured slower): they run
       in chunks of :data:`SWITCH_MIN_SWEEPS`, then doubling; at each
       checkpoint the certified bound's rate over the chunk's last half is
       extrapolated, and once it projects more than :data:`SWITCH_FACTOR`
       times the sweeps done
       (chains at gamma 0.999, banded or local MDPs that do not mix), the run
       switches to policy iteration from the current values (``"pi"``,
       evaluation by a sparse LU where the factor provably stays sparse, else
       certified sweeps; ``extra["switched_from"]`` names the sweeps).

       Policy iteration gets :data:`SWITCH_PI_BUDGET` steps; if they do not
       certify ``tol``, the sweeps resume from its values.

    Parameters
    ----------
    mdp : TabularMDP or gymnasium.Env
        A gymnasium environment with a transition table (``env.unwrapped.P``:
        FrozenLake, CliffWalking, Taxi, fastsoft's registered ids) is read
        with :meth:`TabularMDP.from_gymnasium`; one without (Blackjack) is a
        TypeError.
    temperature : float
        Entropy weight ``tau >= 0`` (not an inverse temperature).
    kl_weight : float
        KL weight ``eta >= 0`` towards ``prior``.
    prior : array (S, A) or (A,), optional
        ``mu``; uniform over each state's feasible actions by default.
    tol : float
        Certified bound on ``max_s |V(s) - V*(s)|``.
    method : {"auto", "vi", "vi-gs", "pi", "pi-iterative", "mpi"}
    V0 : array (S,), optional
        Warm start (e.g. the previous solution after ``mdp.with_rewards(R)``);
        default the pessimistic bound of :func:`fastsoft.vi.pessimistic_start`.
    max_iter : int, optional
        Sweeps (value iteration) or improvement steps (policy iteration).
    callback : callable, optional
        Called with ``{"n_iter", "error_bound", "residual", ...}`` between kernel
        calls (value iteration) or improvement steps (policy iteration);
        returning True stops with the partial result and its certificate.
    progress : bool
        Progress bar of the certified bound (tqdm, on a terminal) and a clean
        stop on Ctrl-C (``interrupted=True``).
    gamma : float, optional
        Discount of a gymnasium environment (default 0.99; toy-text
        environments have none of their own). Not for a TabularMDP.
    parallel : bool, optional
        ``None`` (default): Numba's threads only on problems large enough to
        gain (:data:`fastsoft._jit.PARALLEL_MIN_SIZE`); ``True``: parallel
        kernels whatever the size; ``False``: serial kernels. The thread count
        is :func:`fastsoft.set_num_threads`'s (default: every core Numba sees,
        ``NUMBA_NUM_THREADS``). The choice changes the sweep algorithm on
        large problems (chunked Jacobi / block Gauss-Seidel), never the result's
        dependence on the thread count.

    Returns
    -------
    SolveResult
        ``method`` names what ran, e.g. ``"value_iteration[gauss-seidel]"``.
    """
    with parallel_mode(parallel):
        return _solve(mdp, temperature, kl_weight, prior, tol, method, V0, max_iter, callback,
                      progress, gamma, parallel)


def _solve(mdp, temperature, kl_weight, prior, tol, method, V0, max_iter, callback, progress,
           gamma, parallel) -> SolveResult:
    t_start = time.perf_counter()
    mdp = as_tabular(mdp, gamma)
    reg = make_regularizer(mdp, temperature, kl_weight, prior)
    tol = check_real(tol, "tol", low=0.0, low_open=True)
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    max_iter = check_int(max_iter, "max_iter", low=1, allow_none=True)
    if mdp.gamma >= 1.0:
        raise ValueError("solve needs gamma < 1 (use soft_value_iteration with a horizon)")
    check_scale(mdp, reg)
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable")
    V = None if V0 is None else check_vector(V0, "V0", mdp.n_states)
    cs = closed_structure(mdp)
    if cs.n_closed == 0:
        return _solve_plain(mdp, reg, prior, tol, method, V, max_iter, callback, progress,
                            parallel, t_start)
    return _solve_split(mdp, reg, prior, tol, method, V, max_iter, callback, progress,
                        parallel, cs, t_start)


def _restrict_prior(prior, states):
    if prior is None:
        return None
    mu = np.asarray(prior)
    return mu if mu.ndim == 1 else mu[states]


def _solve_split(mdp, reg, prior, tol, method, V, max_iter, callback, progress, parallel,
                 cs, t_start) -> SolveResult:
    """Closed sets first (exactly or separately), then the rest on the reduced MDP.

    See :mod:`fastsoft._structure` and ``docs/closed_sets.md``: with ``eps``
    the certified error of the closed sets' values, the reduced MDP's fixed
    point is within ``gamma eps`` of ``V*`` on the other states, so the bound
    reported is ``max(eps, bound_rest + gamma eps)`` plus the round-off allowance.
    """
    S, gamma = mdp.n_states, mdp.gamma
    frozen = np.zeros(S, dtype=bool)
    values = np.zeros(S)
    eps = 0.0
    sub_iter = 0
    if cs.selfloops.size:
        values[cs.selfloops] = one_step_values(mdp, reg)[cs.selfloops] / (1.0 - gamma)
        frozen[cs.selfloops] = True
    parts = [(cs.small, "pi-direct")] if cs.small.size else []
    parts += [(c, "auto") for c in cs.large]
    for states, how in parts:
        sub = restrict(mdp, states)
        sprior = _restrict_prior(prior, states)
        sreg = make_regularizer(sub, reg.tau, reg.eta, sprior)
        r = _solve_plain(sub, sreg, sprior, tol / 8, how, None, None, None, False, parallel,
                         time.perf_counter())
        values[states] = r.V
        frozen[states] = True
        eps = max(eps, r.error_bound)
        sub_iter += r.n_iter
    extra = {"closed_states": int(frozen.sum()), "closed_classes": cs.n_classes,
             "closed_iter": sub_iter}
    rest, delta = reduced(mdp, frozen, values)
    # float32 storage rounds the paid rewards: the reduced values move by delta / (1 - gamma)
    eps_r = gamma * eps + delta / (1.0 - gamma)
    rtol = max(tol - eps_r, 0.5 * tol)
    rreg = make_regularizer(rest, reg.tau, reg.eta, prior)
    if rest.terminal.all():
        V = values
        r = None
    else:
        r = _solve_plain(rest, rreg, prior, rtol, method, V, max_iter, callback, progress,
                         parallel, t_start)
        V = r.V.copy()
        V[frozen] = values[frozen]
    _, Q, pi = backup(mdp, V, reg)
    rest_bound = 0.0 if r is None else r.error_bound
    bound = max(eps, rest_bound + eps_r) + roundoff_allowance(mdp, reg, V)
    converged = bool(bound <= tol)
    if converged:
        status, message = Status.CONVERGED, "converged"
    elif r is not None and r.status != Status.CONVERGED:
        status, message = r.status, r.message
    else:  # every piece converged to its share of tol: what is left is round-off
        status, message = Status.ROUND_OFF_FLOOR, floor_message(bound)
    if r is None:
        return SolveResult(
            V=V, Q=Q, policy=pi, n_iter=0, residual=0.0, error_bound=float(bound),
            converged=converged, status=status, message=message,
            history={"error_bound": np.zeros(0), "residual": np.zeros(0), "time": np.zeros(0)},
            method="closed_sets", temperature=reg.tau, kl_weight=reg.eta, tol=tol,
            wall_time=time.perf_counter() - t_start, extra=extra)
    return dataclasses.replace(
        r, V=V, Q=Q, policy=pi, error_bound=float(bound), converged=converged, status=status,
        message=message,
        tol=tol, wall_time=time.perf_counter() - t_start, extra={**r.extra, **extra})


def _solve_plain(mdp, reg, prior, tol, method, V, max_iter, callback, progress, parallel,
                 t_start) -> SolveResult:
    """``solve`` without the closed-set split (``method="pi-direct"``: PI, LU evaluation)."""
    if V is None:
        V = pessimistic_start(mdp, reg)
    auto = method == "auto"
    if auto:
        method = choose_method(mdp, reg.tau, reg.eta)
    if method in ("vi", "vi-gs"):
        order = "gauss-seidel" if method == "vi-gs" else "jacobi"
        if not auto or method != "vi" or callback is not None or progress:
            return soft_value_iteration(mdp, reg.tau, kl_weight=reg.eta, prior=prior, tol=tol,
                                        max_iter=max_iter, V0=V, order=order,
                                        callback=callback, progress=progress,
                                        parallel=parallel)
        # checkpoints at SWITCH_MIN_SWEEPS, then doubling: deterministic, whatever the timing
        cap = max_iter or DEFAULT_MAX_ITER
        done, chunk = 0, SWITCH_MIN_SWEEPS
        while True:
            r = soft_value_iteration(mdp, reg.tau, kl_weight=reg.eta, prior=prior, tol=tol,
                                     max_iter=min(chunk, cap - done), V0=V, order=order,
                                     parallel=parallel)
            done += r.n_iter
            if r.converged or done >= cap:
                return dataclasses.replace(r, n_iter=done)
            if _projected_sweeps(r.history["error_bound"], tol) > SWITCH_FACTOR * done:
                break
            V = r.V
            chunk = done
        p = _policy_iteration(mdp, reg, tol, "pi", r.V.copy(), SWITCH_PI_BUDGET, None, False,
                              parallel, t_start)
        extra = {"switched_from": r.method, "sweeps_before_switch": done}
        if p.converged:
            return dataclasses.replace(p, extra={**p.extra, **extra})
        # policy iteration crawls here (e.g. ties far from the reward on a chain):
        # back to the sweeps where they stopped (any start is certified)
        r2 = soft_value_iteration(mdp, reg.tau, kl_weight=reg.eta, prior=prior, tol=tol,
                                  max_iter=max(1, cap - done), V0=r.V, order=order,
                                  parallel=parallel)
        return dataclasses.replace(r2, n_iter=done + r2.n_iter,
                                   extra={**r2.extra, **extra, "pi_iterations": p.n_iter})
    return _policy_iteration(mdp, reg, tol, method, V, max_iter, callback, progress, parallel,
                             t_start)


def _policy_iteration(mdp, reg, tol, method, V, max_iter, callback, progress, parallel,
                      t_start) -> SolveResult:
    if mdp.has_terminal:
        V[mdp.terminal] = 0.0
    TV, Q, pig = backup(mdp, V, reg)
    with np.errstate(divide="ignore"):
        logpi = np.log(pig)
    evaluation = {"pi": "auto", "pi-iterative": "iterative", "mpi": "sweeps",
                  "pi-direct": "direct"}[method]
    m = 20 if method == "mpi" else None
    name = "policy_iteration" if reg.lam == 0 else "soft_policy_iteration"
    with progress_scope(bool(progress), name.replace("_", " "), tol=tol,
                         callback=callback) as cb:
        order = "gauss-seidel" if mdp.has_terminal else "jacobi"
        return pi_loop(mdp, reg, reg, 0.0, V, TV, Q, pig, logpi, True, evaluation, m, tol,
                       max_iter or 10_000, order, parallel, cb, name, t_start)
