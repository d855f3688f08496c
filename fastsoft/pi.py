"""Regularized policy evaluation and policy iteration (docs/theory.md §3).

- :func:`policy_evaluation`: the regularized value ``V^pi`` of a fixed policy,
  the solution of ``(I - gamma P_pi) V = r_pi`` with
  ``r_pi(s) = sum_a pi R + tau H(pi_s) - eta KL(pi_s || mu_s)``, by a sparse
  direct solve, sweeps of the policy operator, or a Krylov method.
- :func:`regularized_policy_iteration`: policy mirror descent
  ``pi_{k+1} ∝ pi_k^(eta/(eta+tau)) exp(Q_k / (eta+tau))`` with
  ``Q_k = R + gamma P V^{pi_k}`` (entropy weight ``tau``, no KL term); its fixed
  point is soft value iteration's with temperature ``tau`` (no KL).
- :func:`policy_iteration` (hard, ``tau = eta = 0``) and
  :func:`modified_policy_iteration` (``m`` sweeps per evaluation).

Every iteration is certified like value iteration (docs/theory.md §2.4): one Bellman step
of the target operator on the current ``V`` gives ``d = TV - V`` and the
MacQueen bounds; the run stops when the certified error is ``<= tol``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from . import _bundles as B
from ._bundles import Regularizer, make_regularizer, n_feasible
from ._certify import STOP_FLOOR, check_scale, floor_message
from ._driver import (
    Evaluator,
    auto_evaluation,
    backup,
    pi_loop,
    pi_matrix,
    pi_reward,
)
from ._jit import run_time
from ._validation import check_int, check_mdp, check_policy, check_real, check_vector
from .mdp import TabularMDP
from .result import SolveResult, Status

__all__ = [
    "policy_evaluation",
    "regularized_policy_iteration",
    "policy_iteration",
    "modified_policy_iteration",
    "policy_matrix",
    "policy_reward",
    "DIRECT_MAX_STATES",
    "EVALUATION_METHODS",
]

#: Kept for reference: ``method="auto"`` used the sparse direct solver up to this
#: many states whatever the fill; it now decides by :func:`_auto_evaluation`.
DIRECT_MAX_STATES = 20_000

#: Evaluation methods accepted by :func:`policy_evaluation`.
EVALUATION_METHODS = ("auto", "direct", "iterative", "gmres", "bicgstab")
#: ... and by :func:`regularized_policy_iteration` (``"sweeps"``: exactly ``m`` sweeps).
_PI_EVALUATIONS = EVALUATION_METHODS + ("sweeps",)
_ORDERS = ("jacobi", "gauss-seidel")

DEFAULT_MAX_ITER = 10_000


# ----------------------------------------------------------------- building blocks
def _eval_regularizer(reg: Regularizer) -> Regularizer:
    """Entropy weight only (the ``Q_k`` of policy iteration: no KL term)."""
    return B.entropy_only(reg.tau, reg.sbias.shape[0])


def policy_matrix(mdp: TabularMDP, policy) -> sp.csr_matrix:
    """The state-to-state transition matrix ``P_pi`` of a policy, as sparse CSR.

    ``P_pi[s, s'] = sum_a pi(a|s) P(s'|s,a)``, duplicates merged, rows sorted.
    Rows of terminal states are empty and columns of terminal states dropped
    (their value is 0), so ``(I - gamma P_pi) V = r_pi`` is the evaluation system.
    Never densified: its size is at most the policy's share of the MDP's CSR.
    """
    mdp = check_mdp(mdp)
    return pi_matrix(mdp, check_policy(mdp, policy))


def policy_reward(mdp: TabularMDP, policy, temperature: float = 0.0, *,
                  kl_weight: float = 0.0, prior=None) -> np.ndarray:
    """``r_pi(s) = sum_a pi R + tau H(pi_s) - eta KL(pi_s || mu_s)`` (0 at terminal states)."""
    mdp = check_mdp(mdp)
    pi = check_policy(mdp, policy)
    reg = make_regularizer(mdp, temperature, kl_weight, prior)
    _check_kl_support(mdp, pi, reg)
    return pi_reward(mdp, pi, reg)


def _check_kl_support(mdp: TabularMDP, pi: np.ndarray, reg: Regularizer) -> None:
    if reg.eta > 0 and reg.log_prior is not None:
        bad = (pi > 0) & ~np.isfinite(reg.log_prior)
        if mdp.terminal is not None:
            bad[mdp.terminal] = False
        if bad.any():
            s, a = np.argwhere(bad)[0]
            raise ValueError(
                f"policy puts mass where prior is 0 at (s, a) = ({s}, {a}): "
                "KL(pi || mu) is infinite"
            )


# ----------------------------------------------------------------- policy evaluation
def policy_evaluation(
    mdp: TabularMDP,
    policy,
    *,
    temperature: float = 0.0,
    kl_weight: float = 0.0,
    prior=None,
    method: str = "auto",
    tol: float = 1e-10,
    V0=None,
    order: str = "gauss-seidel",
    parallel: bool | None = None,
) -> SolveResult:
    """Regularized value of a fixed policy (docs/theory.md §3).

    Solves ``(I - gamma P_pi) V = r_pi`` on the non-terminal states, with
    ``r_pi(s) = sum_a pi(a|s) R(s,a) + tau H(pi_s) - eta KL(pi_s || mu_s)``;
    terminal states have ``V = 0``. Then ``Q = R + gamma P V``.

    Parameters
    ----------
    mdp : TabularMDP
    policy : array (S, A) of probabilities, or (S,) of actions
    temperature : float
        Entropy weight ``tau >= 0``.
    kl_weight : float
        KL weight ``eta >= 0`` towards ``prior``.
    prior : array (S, A) or (A,), optional
        ``mu``; uniform over each state's feasible actions by default.
    method : {"auto", "direct", "iterative", "gmres", "bicgstab"}
        ``"direct"``: sparse LU (SuperLU, COLAMD ordering) of ``I - gamma P_pi``
        assembled in CSR; ``"iterative"``: sweeps of the policy operator
        ``T_pi V = r_pi + gamma P_pi V`` (order ``order``) until the span bound
        certifies ``tol``; ``"gmres"`` / ``"bicgstab"``: SciPy's Krylov solvers
        with a Numba matrix-vector product (``P_pi`` is never formed), to the
        absolute residual ``tol (1 - gamma)``. ``"auto"``: direct where the
        envelope of the support graph keeps the factor sparse (chains, banded
        and small grid MDPs), otherwise iterative. Nothing is ever
        densified.
    tol : float
        Certified bound on ``max_s |V(s) - V^pi(s)|`` for the iterative methods.
    V0 : array (S,), optional
        Starting point of the iterative and Krylov methods.
    order : {"gauss-seidel", "jacobi"}
        Sweep order of ``"iterative"``.
    parallel : bool, optional
        Parallel Jacobi sweeps (default: by size).

    Returns
    -------
    SolveResult
        ``V`` (S,), ``Q`` (S, A), ``policy`` (the given policy), ``n_iter``
        (sweeps, Krylov matrix-vector products, or 1 for direct), ``residual``
        ``max |r_pi + gamma P_pi V - V|``, ``error_bound`` (certified
        ``max |V - V^pi|``: ``residual / (1 - gamma)``, or the span bound of the
        sweeps), ``method`` ``"policy_evaluation[<method>]"``.
    """
    t_start = time.perf_counter()
    mdp = check_mdp(mdp)
    pi = check_policy(mdp, policy)
    reg = make_regularizer(mdp, temperature, kl_weight, prior)
    _check_kl_support(mdp, pi, reg)
    if not isinstance(method, str) or method not in EVALUATION_METHODS:
        raise ValueError(f"method must be one of {EVALUATION_METHODS}, got {method!r}")
    if order not in _ORDERS:
        raise ValueError(f"order must be one of {_ORDERS}, got {order!r}")
    tol = check_real(tol, "tol", low=0.0, low_open=True)
    if mdp.gamma >= 1.0:
        raise ValueError("policy_evaluation needs gamma < 1 (use a finite-horizon solver)")
    check_scale(mdp, reg)
    S = mdp.n_states
    V = np.zeros(S) if V0 is None else check_vector(V0, "V0", S)
    if method == "auto":
        method = auto_evaluation(mdp)
    r = pi_reward(mdp, pi, reg)
    ev = Evaluator(mdp, method, order, parallel)
    V, info = ev.solve(pi, r, V, tol, reg)
    res = ev.residual(pi, r, V)
    bound = min(info["error_bound"], ev.residual_bound(V, res))
    converged = bool(bound <= tol)
    if converged:
        status, message = Status.CONVERGED, "converged"
    elif info["reason"] == STOP_FLOOR:
        status, message = Status.ROUND_OFF_FLOOR, floor_message(bound)
    else:
        status, message = Status.MAX_ITER, f"max_iter reached: certified bound {bound:.3g}"
    _, Q, _ = backup(mdp, V, reg)
    pol = check_policy(mdp, policy)
    return SolveResult(
        V=V, Q=Q, policy=pol, n_iter=int(info["n_iter"]), residual=res,
        error_bound=float(bound), converged=converged, status=status, message=message,
        history={"error_bound": np.array([bound]), "residual": np.array([res]),
                 "time": np.array([time.perf_counter() - t_start])},
        method=f"policy_evaluation[{info['method']}]", temperature=reg.tau,
        kl_weight=reg.eta, tol=tol, wall_time=run_time(t_start),
        extra={k: v for k, v in info.items() if k not in ("method", "n_iter", "reason")},
    )


# ----------------------------------------------------------------- policy iteration
def _initial_policy(mdp, reg, policy0, greedy0):
    """``(pi, logpi)`` to start from (see :func:`regularized_policy_iteration`)."""
    if policy0 is not None:
        pi = check_policy(mdp, policy0, "policy0")
    elif reg.eta == 0.0:
        pi = greedy0.copy()
    else:
        feas = mdp.feasible
        pi = feas / n_feasible(mdp)[:, None]
    if mdp.has_terminal:
        feas = mdp.feasible[mdp.terminal]
        pi[mdp.terminal] = feas / feas.sum(axis=1, keepdims=True)
    if reg.tau > 0 and reg.eta > 0:
        bad = (pi <= 0) & mdp.feasible
        if mdp.terminal is not None:
            bad[mdp.terminal] = False
        if bad.any():
            s, a = np.argwhere(bad)[0]
            raise ValueError(
                f"policy0 must put positive mass on every feasible action when temperature > 0 "
                f"and kl_weight > 0 (mirror descent never leaves its support); zero at "
                f"(s, a) = ({s}, {a})"
            )
    with np.errstate(divide="ignore"):
        logpi = np.log(pi)
    return pi, logpi


def _renamed(legacy: dict, func: str) -> None:
    """TypeError for the mirror-descent arguments' old names (one meaning per name)."""
    if "kl_weight" in legacy:
        raise TypeError(
            f"{func}: kl_weight was renamed step_weight (the KL weight of each mirror-descent "
            "step; in solve and soft_value_iteration kl_weight defines the KL-regularized "
            "problem, a different fixed point)")
    if "prior" in legacy:
        raise TypeError(
            f"{func}: prior was renamed policy0 (the starting policy of the mirror-descent "
            "sequence; in solve prior is the KL-regularized problem's prior)")
    if legacy:
        raise TypeError(f"{func}() got an unexpected keyword argument {next(iter(legacy))!r}")


def regularized_policy_iteration(
    mdp: TabularMDP,
    temperature: float,
    step_weight: float = 0.0,
    *,
    evaluation: str = "auto",
    m: int | None = None,
    tol: float = 1e-8,
    max_iter: int | None = None,
    policy0=None,
    V0=None,
    order: str = "gauss-seidel",
    parallel: bool | None = None,
    callback: Callable[[dict], bool | None] | None = None,
    **legacy,
) -> SolveResult:
    """Regularized policy iteration: policy mirror descent (docs/theory.md §3).

    With ``lam = tau + eta``, iteration ``k`` evaluates ``pi_k`` (entropy weight
    ``tau``, no KL term), forms ``Q_k = R + gamma P V_k`` and updates

        ``pi_{k+1} ∝ pi_k^(eta/lam) exp(Q_k / lam)``.

    ``eta`` (``step_weight``) is the inverse step size: ``step_weight = 0`` is soft policy iteration
    (``pi_{k+1} = softmax(Q_k / tau)``, Newton's method, a handful of
    iterations), and ``tau = eta = 0`` is hard policy iteration. The fixed point
    is soft value iteration's with temperature ``tau`` and no KL term:
    ``pi* ∝ exp(Q*/tau)``.

    Certificate: after each evaluation one Bellman step ``T`` of that target
    operator gives ``d = T V_k - V_k`` and the MacQueen bounds of docs/theory.md §2.4
    (valid whatever the accuracy of the evaluation); the run stops once the
    certified error is ``<= tol``. The returned ``V`` is the midpoint of those
    bounds around ``T V_k``, and ``error_bound`` the tighter of that bound and
    the one of a further Bellman step, exactly as in
    :func:`fastsoft.soft_value_iteration`.

    Hard ties (``tau = eta = 0``): a state keeps its action unless another is
    better by more than ``0.1 tol (1 - gamma) / gamma`` (or round-off), so exactly
    tied actions never make the iteration cycle; ignoring such gains costs at
    most ``tol / 20`` in the certificate. The run also stops when the
    certificate has not improved for 8 iterations (``converged`` then says
    whether ``tol`` was reached).

    Parameters
    ----------
    mdp : TabularMDP
    temperature : float
        Entropy weight ``tau >= 0`` (not an inverse temperature).
    step_weight : float
        ``eta >= 0``, the weight of ``KL(pi || pi_k)`` in each mirror step (the
        inverse step size; formerly ``kl_weight``, renamed because in
        :func:`fastsoft.solve` ``kl_weight`` defines a different problem).
    evaluation : {"auto", "direct", "iterative", "sweeps", "gmres", "bicgstab"}
        ``"direct"``: exact sparse LU solve; ``"sweeps"``: exactly ``m`` sweeps
        of the policy operator from the last ``TV`` (modified policy
        iteration; ``m = 1`` is a mirror-descent value iteration);
        ``"iterative"``: sweeps until the evaluation error is certified below a
        forcing tolerance ``max(tol (1 - gamma) / (4 gamma), ||T V_k - V_k|| / 10)``
        (never loosened; ten times tighter after an iteration without progress);
        ``"gmres"`` /
        ``"bicgstab"``: Krylov solves to that forcing tolerance (inexact
        policy iteration). ``"auto"``: direct where the factor
        provably stays sparse (see ``_auto_evaluation``), else iterative.
    m : int, optional
        Sweeps per evaluation for ``"sweeps"`` (default 20).
    tol : float
        Certified sup-norm error on ``V*`` to reach.
    max_iter : int, optional
        Improvement steps (default 10000); when hit, ``converged=False``.
    policy0 : array (S, A) or (S,) actions, optional
        The starting policy ``pi_0`` (formerly also ``prior``): with ``pi_0 = mu``
        the first step is exactly the regularized greedy step of docs/theory.md §2.2 with
        ``(tau, eta, mu)``. Default: uniform over feasible actions when
        ``step_weight > 0``; the greedy policy of ``V0`` when ``step_weight = 0``.
    V0 : array (S,), optional
        Starting values: the greedy policy of ``V0`` starts soft/hard policy
        iteration, and the sweeps and Krylov solvers start from it.
    order : {"gauss-seidel", "jacobi"}
        Sweep order of the ``"sweeps"`` and ``"iterative"`` evaluations.
    parallel : bool, optional
        Parallel Jacobi kernels (default: by size).
    callback : callable, optional
        Called after each iteration with ``{"n_iter", "error_bound", "residual",
        "elapsed"}``; returning True stops the run.

    Returns
    -------
    SolveResult
        As :func:`fastsoft.soft_value_iteration`; ``n_iter`` counts improvement
        steps; ``history`` also holds ``"eval_iter"`` (sweeps or products per
        evaluation) and ``extra`` the evaluation method and totals.
    """
    _renamed(legacy, "regularized_policy_iteration")
    t_start = time.perf_counter()
    mdp = check_mdp(mdp)
    reg = make_regularizer(mdp, temperature, step_weight, None)
    tol = check_real(tol, "tol", low=0.0, low_open=True)
    if not isinstance(evaluation, str) or evaluation not in _PI_EVALUATIONS:
        raise ValueError(f"evaluation must be one of {_PI_EVALUATIONS}, got {evaluation!r}")
    if order not in _ORDERS:
        raise ValueError(f"order must be one of {_ORDERS}, got {order!r}")
    m = check_int(m, "m", low=1, allow_none=True)
    if m is not None and evaluation != "sweeps":
        raise ValueError("m is only used with evaluation='sweeps'")
    if evaluation == "sweeps" and m is None:
        m = 20
    max_iter = check_int(max_iter, "max_iter", low=1, allow_none=True) or DEFAULT_MAX_ITER
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable")
    if mdp.gamma >= 1.0:
        raise ValueError("policy iteration needs gamma < 1 (use a finite horizon with "
                         "soft_value_iteration)")
    check_scale(mdp, reg)
    S = mdp.n_states
    V = np.zeros(S) if V0 is None else check_vector(V0, "V0", S)
    if mdp.has_terminal:
        V[mdp.terminal] = 0.0
    target = make_regularizer(mdp, reg.tau, 0.0, None)  # the operator whose fixed point we want
    # one Bellman step of V0: the greedy start policy and the first certificate
    TV, Q, pig = backup(mdp, V, target)
    pi, logpi = _initial_policy(mdp, reg, policy0, pig)
    if reg.lam == 0.0:
        name = "policy_iteration"
    elif reg.eta == 0.0:
        name = "soft_policy_iteration"
    else:
        name = "regularized_policy_iteration"
    greedy_start = policy0 is None and reg.eta == 0.0
    res = pi_loop(mdp, target, _eval_regularizer(reg), reg.eta, V, TV, Q, pi, logpi,
                   greedy_start, evaluation, m, tol, max_iter, order, parallel, callback,
                   name, t_start)
    # the problem solved has no KL term (kl_weight 0); the step's weight is in extra
    return dataclasses.replace(res, extra={**res.extra, "step_weight": reg.eta})


def policy_iteration(
    mdp: TabularMDP,
    *,
    evaluation: str = "auto",
    tol: float = 1e-8,
    max_iter: int | None = None,
    policy0=None,
    V0=None,
    order: str = "gauss-seidel",
    parallel: bool | None = None,
    callback: Callable[[dict], bool | None] | None = None,
) -> SolveResult:
    """Hard (``tau = eta = 0``) policy iteration with stable tie-breaking.

    :func:`regularized_policy_iteration` with temperature 0 and no KL: exact
    (or forcing-tolerance) evaluation, greedy improvement that keeps the current
    action on ties, and a certified stop. See there for the parameters.
    """
    return regularized_policy_iteration(
        mdp, 0.0, 0.0, evaluation=evaluation, tol=tol, max_iter=max_iter, policy0=policy0,
        V0=V0, order=order, parallel=parallel, callback=callback,
    )


def modified_policy_iteration(
    mdp: TabularMDP,
    temperature: float = 0.0,
    *,
    step_weight: float = 0.0,
    m: int = 20,
    tol: float = 1e-8,
    max_iter: int | None = None,
    policy0=None,
    V0=None,
    order: str = "gauss-seidel",
    parallel: bool | None = None,
    callback: Callable[[dict], bool | None] | None = None,
    **legacy,
) -> SolveResult:
    """Modified policy iteration: ``m`` sweeps of the policy operator per evaluation.

    :func:`regularized_policy_iteration` with ``evaluation="sweeps"``; hard for
    ``temperature = 0`` (the default). Each evaluation starts from the last
    Bellman step ``T V`` and applies ``T_pi`` ``m`` times (Gauss-Seidel by
    default, alternating the state order). ``step_weight`` and ``policy0`` are
    the mirror-descent step's KL weight and the starting policy (see there;
    they were called ``kl_weight`` and ``prior``, which :func:`fastsoft.solve`
    uses for the KL-regularized problem itself).
    """
    _renamed(legacy, "modified_policy_iteration")
    return regularized_policy_iteration(
        mdp, temperature, step_weight, evaluation="sweeps", m=m, tol=tol,
        max_iter=max_iter, policy0=policy0, V0=V0, order=order, parallel=parallel,
        callback=callback,
    )
