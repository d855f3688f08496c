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
import scipy.sparse.linalg as spla

from . import _pi_kernels as PK
from ._certify import (
    STOP_BUDGET,
    STOP_FLOOR,
    STOP_TOL,
    bellman_allowance,
    check_scale,
    floor_message,
    policy_allowance,
    policy_sum_defect,
    residual_bound,
)
from ._common import (
    Regularizer,
    check_int,
    check_mdp,
    check_policy,
    check_real,
    check_vector,
    kernel_arrays,
    make_regularizer,
    n_feasible,
)
from ._jit import run_time
from ._structure import DIRECT_MAX_FILL, envelope_fill
from .mdp import TabularMDP
from .result import SolveResult, Status
from .vi import _backup, _chunk_bounds, _finish, _use_parallel

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

#: Policy iteration stops ("stalled") when its certificate has not improved by a
#: relative :data:`_PROGRESS` for this many iterations (every variant).
_PATIENCE = 8
_PROGRESS = 1e-6
DEFAULT_MAX_ITER = 10_000
_DEFAULT_EVAL_SWEEPS = 100_000

#: Sweeps or Krylov products that all the evaluations of one policy-iteration run
#: may use together (``"sweeps"`` evaluations: ``max_iter * m``), so that
#: improvements x evaluation sweeps cannot multiply into hours.
EVAL_BUDGET = 200_000


# ----------------------------------------------------------------- building blocks
def _eval_regularizer(reg: Regularizer) -> Regularizer:
    """Entropy weight only (the ``Q_k`` of policy iteration: no KL term)."""
    return Regularizer(reg.tau, 0.0, reg.tau, np.zeros((0, 0)), False,
                       np.zeros(reg.sbias.shape[0]), None)


def _reward(mdp: TabularMDP, pi: np.ndarray, reg: Regularizer) -> np.ndarray:
    _, _, _, R, term, has_term = kernel_arrays(mdp)
    r = np.empty(mdp.n_states)
    PK._policy_reward(R, pi, reg.lam, reg.bias, reg.has_bias, reg.sbias, term, has_term, r)
    return r


def _matrix(mdp: TabularMDP, pi: np.ndarray) -> sp.csr_matrix:
    indptr, indices, probs, _, term, has_term = kernel_arrays(mdp)
    S = mdp.n_states
    mark = np.full(S, -1, dtype=np.int64)
    ptr = np.empty(S + 1, dtype=np.int64)
    PK._ppi_count(indptr, indices, pi, term, has_term, mark, ptr)
    nnz = int(ptr[-1])
    idx = np.empty(nnz, dtype=indices.dtype)
    val = np.empty(nnz)
    mark.fill(-1)
    PK._ppi_fill(indptr, indices, probs, pi, term, has_term, mark, ptr, idx, val)
    return sp.csr_matrix((val, idx, ptr), shape=(S, S))


def policy_matrix(mdp: TabularMDP, policy) -> sp.csr_matrix:
    """The state-to-state transition matrix ``P_pi`` of a policy, as sparse CSR.

    ``P_pi[s, s'] = sum_a pi(a|s) P(s'|s,a)``, duplicates merged, rows sorted.
    Rows of terminal states are empty and columns of terminal states dropped
    (their value is 0), so ``(I - gamma P_pi) V = r_pi`` is the evaluation system.
    Never densified: its size is at most the policy's share of the MDP's CSR.
    """
    mdp = check_mdp(mdp)
    return _matrix(mdp, check_policy(mdp, policy))


def policy_reward(mdp: TabularMDP, policy, temperature: float = 0.0, *,
                  kl_weight: float = 0.0, prior=None) -> np.ndarray:
    """``r_pi(s) = sum_a pi R + tau H(pi_s) - eta KL(pi_s || mu_s)`` (0 at terminal states)."""
    mdp = check_mdp(mdp)
    pi = check_policy(mdp, policy)
    reg = make_regularizer(mdp, temperature, kl_weight, prior)
    _check_kl_support(mdp, pi, reg)
    return _reward(mdp, pi, reg)


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


class _Evaluator:
    """Solves ``(I - gamma P_pi) V = r`` for a sequence of policies of one MDP."""

    def __init__(self, mdp: TabularMDP, method: str, order: str, parallel):
        self.mdp = mdp
        self.method = method
        self.gs = order == "gauss-seidel"
        self.par = _use_parallel(mdp, parallel)
        S = mdp.n_states
        self.bounds = _chunk_bounds(S, self.par)
        nb = len(self.bounds) - 1
        self.cmin = np.empty(nb)
        self.cmax = np.empty(nb)
        self.W = np.empty(S)
        self.c = mdp.gamma / (1.0 - mdp.gamma)
        self.live = None if not mdp.has_terminal else ~mdp.terminal
        self.sweeps_done = 0

    # -- residual and certificate of any V: ||V - V^pi|| <= ||r - (I - gamma P_pi) V|| / (1-gamma)
    def residual(self, pi, r, V) -> float:
        indptr, indices, probs, _, term, has_term = kernel_arrays(self.mdp)
        y = np.empty_like(V)
        PK._policy_matvec(indptr, indices, probs, pi, self.mdp.gamma, V, term, has_term, y)
        res = r - y
        if self.live is not None:
            res[~self.live] = 0.0
        return float(np.abs(res).max()) if res.size else 0.0

    def solve(self, pi, r, V, tol, reg, m=None, budget=_DEFAULT_EVAL_SWEEPS):
        """Return ``(V, info)``; ``V`` (S,) is overwritten when possible.

        ``tol``: certified ``max |V - V^pi|`` to reach; ``reg``: the regularizer
        of the reward ``r`` (for the round-off allowance); ``m``: exactly ``m``
        sweeps; ``budget``: at most this many sweeps or Krylov products.
        ``info["error_bound"]`` is certified with round-off (``fastsoft._certify``)
        and ``info["reason"]`` says why the evaluation stopped.
        """
        defect = policy_sum_defect(pi, self.live)
        self.allow = policy_allowance(self.mdp, reg, defect)
        self.reg, self.defect = reg, defect
        method = self.method
        if method == "direct":
            return self._direct(pi, r)
        if method in ("gmres", "bicgstab"):
            return self._krylov(pi, r, V, tol, method, budget)
        return self._sweeps(pi, r, V, tol, m, budget)

    def residual_bound(self, V, res) -> float:
        """Certified ``max |V - V^pi|`` from the computed residual ``res`` of ``V``."""
        return residual_bound(self.mdp, self.reg, self.defect, V, res)

    def _direct(self, pi, r):
        mdp = self.mdp
        M = sp.identity(mdp.n_states, format="csr") - mdp.gamma * _matrix(mdp, pi)
        lu = spla.splu(M.tocsc(), permc_spec="COLAMD")
        V = lu.solve(r)
        if self.live is not None:
            V[~self.live] = 0.0
        res = self.residual(pi, r, V)
        # an exact solve: what is left is round-off, the floor of this evaluation
        return V, {"method": "direct", "n_iter": 1, "residual": res,
                   "error_bound": self.residual_bound(V, res), "reason": STOP_FLOOR,
                   "lu_nnz": int(lu.L.nnz + lu.U.nnz)}

    def _krylov(self, pi, r, V, tol, method, budget):
        mdp = self.mdp
        indptr, indices, probs, _, term, has_term = kernel_arrays(mdp)
        S = mdp.n_states
        gamma = mdp.gamma
        count = [0]

        def matvec(x):
            x = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
            y = np.empty(S)
            PK._policy_matvec(indptr, indices, probs, pi, gamma, x, term, has_term, y)
            count[0] += 1
            return y

        op = spla.LinearOperator((S, S), matvec=matvec, dtype=np.float64)
        # ||V - V^pi||_inf <= ||res||_inf / (1 - gamma) <= ||res||_2 / (1 - gamma)
        atol = max(tol * (1.0 - gamma), 1e-300)
        solver = spla.gmres if method == "gmres" else spla.bicgstab
        kw = {"restart": 50} if method == "gmres" else {}
        # maxiter counts restart cycles for GMRES (up to 50 products each)
        cap = max(1, budget // 50) if method == "gmres" else max(1, budget // 2)
        x, _ = solver(op, r, x0=V, rtol=0.0, atol=atol, maxiter=min(max(10, 20 * S), cap),
                      **kw)
        if self.live is not None:
            x[~self.live] = 0.0
        res = self.residual(pi, r, x)
        bound = self.residual_bound(x, res)
        floor = self.residual_bound(x, 0.0)
        reason = STOP_TOL if bound <= tol else (STOP_FLOOR if bound <= 2.0 * floor
                                                else STOP_BUDGET)
        return x, {"method": method, "n_iter": count[0], "residual": res,
                   "error_bound": bound, "reason": reason}

    def _sweeps(self, pi, r, V, tol, m, budget):
        mdp = self.mdp
        indptr, indices, probs, _, term, has_term = kernel_arrays(mdp)
        if has_term:
            V[mdp.terminal] = 0.0
        clamp = has_term or self.gs
        self.shift = self.allow.buffer()
        args = (self.bounds, indptr, indices, probs, pi, r, mdp.gamma, V, self.W, term,
                has_term, self.cmin, self.cmax, self.shift)
        if m is not None:
            done = PK._policy_run(m, self.sweeps_done, -1.0, self.c, clamp, self.par, self.gs,
                                  *args)
            n_ex = 0
        else:
            done, n_ex = self._extrapolated(tol, clamp, args, budget)
        self.sweeps_done += done
        lo, hi = float(self.shift[0]), float(self.shift[1])
        bound = 0.5 * (hi - lo) if np.isfinite(lo) and np.isfinite(hi) else np.inf
        if np.isfinite(bound):
            m_out = float(np.abs(V).max()) if V.size else 0.0
            bound += self.allow(m_out, float(self.shift[7]))
        reason = int(self.shift[6])
        if np.isfinite(bound) and m is None:
            # midpoint of the certified interval around V^pi (not after a fixed number of
            # sweeps: a wide interval's midpoint would be amplified by the next step)
            mid = 0.5 * (lo + hi)
            if self.live is None:
                V += mid
            else:
                V[self.live] += mid
        name = "sweeps" if m is not None else "iterative"
        return V, {"method": f"{name}[{'gauss-seidel' if self.gs else 'jacobi'}]",
                   "n_iter": int(done), "residual": float("nan"), "error_bound": bound,
                   "extrapolations": n_ex, "reason": reason}

    def _extrapolated(self, tol, clamp, args, budget):
        """Sweeps of ``T_pi`` to a certified ``tol``, with geometric (Aitken) extrapolation.

        The policy is fixed, so the error decays at a steady rate ``rho`` per pair
        of sweeps (on grids the slow mode is the near-constant "bulk" error that
        sweeps cannot move). Once two successive pair ratios agree to 2%, the
        geometric tail ``D rho / (1 - rho)`` of the last pair's change ``D`` is
        added. This only moves the iterate; the certificate always comes from
        the sweeps themselves.
        """
        V = args[7]
        done = 0
        n_ex = 0
        hist: list[float] = []
        small = V.shape[0] < 2_000  # tiny problems: no Python round trips
        undo = None  # (V before the last extrapolation, its pair change): the safeguard
        while done < budget:
            if small:
                k = PK._policy_run(budget, self.sweeps_done + done, tol, self.c,
                                   clamp, self.par, self.gs, *args)
                done += k
                break
            old = V.copy()
            k = PK._policy_run(min(2, budget - done), self.sweeps_done + done, tol, self.c,
                               clamp, self.par, self.gs, *args)
            done += k
            if self.shift[6] != STOP_BUDGET or k < 2:
                break
            D = V - old
            hist.append(float(np.abs(D).max()))
            if undo is not None and len(hist) == 1:
                if not hist[0] < undo[1]:
                    # the extrapolation made the changes grow (the error was not one
                    # geometric mode, e.g. Jacobi's oscillating modes): undo it, and
                    # no more extrapolation in this evaluation
                    V[:] = undo[0]
                    n_ex = -n_ex if n_ex > 0 else n_ex
                    hist = []
                undo = None
            if n_ex >= 0 and len(hist) >= 3 and hist[-2] > 0 and hist[-3] > 0:
                r1 = hist[-1] / hist[-2]
                r0 = hist[-2] / hist[-3]
                if abs(r1 - r0) < 0.02 * r1 and r1 < 0.9999:
                    undo = (V.copy(), hist[-1])
                    V += D * (r1 / (1.0 - r1))
                    n_ex += 1
                    hist = []
        return done, abs(n_ex)


def _auto_evaluation(mdp: TabularMDP) -> str:
    """Direct (sparse LU) when the factor provably stays sparse, else sweeps.

    Decided from the structure, not the state count: the envelope bound of
    :func:`fastsoft._structure.envelope_fill` (a policy matrix's factors fit
    in the band of the reverse Cuthill-McKee order of the support graph) must
    stay below :data:`fastsoft._structure.DIRECT_MAX_FILL` entries. Otherwise
    (random MDPs fill in: a 6000-state Garnet's factor measured 12M entries)
    certified sweeps.
    """
    return "direct" if envelope_fill(mdp) <= DIRECT_MAX_FILL else "iterative"


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
        method = _auto_evaluation(mdp)
    r = _reward(mdp, pi, reg)
    ev = _Evaluator(mdp, method, order, parallel)
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
    _, Q, _ = _backup(mdp, V, reg)
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
def _cert(TV, V, live, c):
    """MacQueen shifts ``(lo, hi)`` of docs/theory.md §2.4 from ``d = TV - V``, and ``max |d|``.

    With terminal states the shifts are clamped (``min(d, 0)``, ``max(d, 0)``)
    as in :func:`fastsoft.soft_value_iteration`.
    """
    d = TV - V if live is None else (TV - V)[live]
    if not d.size:
        return 0.0, 0.0, 0.0
    dmin, dmax = float(d.min()), float(d.max())
    resid = max(abs(dmin), abs(dmax))
    if live is not None:
        dmin, dmax = min(dmin, 0.0), max(dmax, 0.0)
    return c * dmin, c * dmax, resid


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
    TV, Q, pig = _backup(mdp, V, target)
    pi, logpi = _initial_policy(mdp, reg, policy0, pig)
    if reg.lam == 0.0:
        name = "policy_iteration"
    elif reg.eta == 0.0:
        name = "soft_policy_iteration"
    else:
        name = "regularized_policy_iteration"
    greedy_start = policy0 is None and reg.eta == 0.0
    res = _pi_loop(mdp, target, _eval_regularizer(reg), reg.eta, V, TV, Q, pi, logpi,
                   greedy_start, evaluation, m, tol, max_iter, order, parallel, callback,
                   name, t_start)
    # the problem solved has no KL term (kl_weight 0); the step's weight is in extra
    return dataclasses.replace(res, extra={**res.extra, "step_weight": reg.eta})


def _pi_loop(mdp, target, ereg, eta, V, TV, Q, pi, logpi, greedy_start, evaluation, m, tol,
             max_iter, order, parallel, callback, name, t_start) -> SolveResult:
    """The policy-iteration loop shared by :func:`regularized_policy_iteration` and solve.

    ``target``: the operator whose fixed point is sought (certificate and, for
    ``eta == 0``, the Newton/greedy improvement ``pi <- greedy(T V)``);
    ``ereg``: the regularizer of the policy's reward; ``eta > 0``: mirror step
    ``pi ∝ pi^(eta/lam) exp(Q/lam)`` with ``lam = target.tau + eta``.
    ``TV, Q`` are one Bellman step of ``V``; ``pi, logpi`` the start policy.
    """
    S = mdp.n_states
    lam = target.lam + eta
    hard = lam == 0.0
    if evaluation == "auto":
        evaluation = _auto_evaluation(mdp)
    ev = _Evaluator(mdp, "sweeps" if evaluation == "sweeps" else evaluation, order, parallel)
    act = np.argmax(pi, axis=1).astype(np.int64) if hard else None
    if hard:
        pi = np.zeros_like(pi)
        pi[np.arange(S), act] = 1.0
    _, _, _, _, term, has_term = kernel_arrays(mdp)
    live = None if not mdp.has_terminal else ~mdp.terminal
    gamma = mdp.gamma
    c = gamma / (1.0 - gamma)
    beta = eta / lam if lam > 0 else 0.0
    allow = bellman_allowance(mdp, target)
    hb, hr, ht, he = [], [], [], []
    lo, hi, resid = _cert(TV, V, live, c)
    bound = 0.5 * (hi - lo)
    floor = 0.25 * tol / c if c > 0 else tol  # evaluation error that still certifies tol
    if greedy_start:
        V = TV.copy()  # = T_{pi_0} V0 for the greedy pi_0
    best = np.inf
    since_best = 0
    interrupted = False
    stalled = False
    reason = STOP_BUDGET
    eval_total = 0
    budget = max_iter * m if evaluation == "sweeps" else EVAL_BUDGET
    eval_tol = np.inf
    prev_bound = np.inf
    k = 0
    # a warm start may already be certified, round-off included (a zero-span start,
    # T V0 - V0 constant, is: V* = T V0 + c d exactly, and _finish returns that midpoint)
    m0 = float(np.abs(TV).max()) if TV.size else 0.0
    n_loop = 0 if 0.5 * (hi - lo) + allow(m0, resid) <= tol else max_iter
    for k in range(1, n_loop + 1):  # noqa: B007
        if eval_total >= budget:
            k -= 1
            break
        r = _reward(mdp, pi, ereg)
        # forcing tolerance: never loosened (a loose evaluation must not feed back),
        # and ten times tighter whenever the last iteration made no progress
        eval_tol = min(eval_tol, max(floor, 0.1 * resid))
        if bound >= prev_bound:
            eval_tol = max(floor, 0.1 * eval_tol)
        prev_bound = bound
        V, info = ev.solve(pi, r, V, eval_tol, ereg, m if evaluation == "sweeps" else None,
                           budget - eval_total)
        eval_total += info["n_iter"]
        TV, Q, pig = _backup(mdp, V, target)
        lo, hi, resid = _cert(TV, V, live, c)
        # the bound _finish certifies (round-off included), so that stopping here
        # means converged there
        m_out = float(np.abs(TV).max()) if TV.size else 0.0
        bound = 0.5 * (hi - lo) + allow(m_out, resid)
        if not np.isfinite(bound):
            bound = np.inf
        hb.append(bound)
        hr.append(resid)
        he.append(info["n_iter"])
        ht.append(time.perf_counter() - t_start)
        if callback is not None:
            stop = callback({"n_iter": k, "error_bound": bound, "residual": resid,
                             "elapsed": ht[-1]})
            if stop:
                interrupted = True
                break
        if bound <= tol:
            break
        reach = allow.a_out * max(m_out - c * resid - bound, 0.0) + allow.const
        if bound <= 1.5 * reach:
            reason = STOP_FLOOR  # round-off is all that is left
            break
        if bound < best * (1.0 - _PROGRESS):
            best = bound
            since_best = 0
        else:
            since_best += 1
            if since_best >= _PATIENCE:  # e.g. only round-off is left to flip ties
                stalled = True
                break
        # ---- improvement
        if hard:
            scale = float(np.abs(TV).max()) if TV.size else 0.0
            thr = max(0.1 * tol / c, 1e-13 * (1.0 + scale))
            changed = PK._improve_hard(Q, act, thr, pi, term, has_term)
            if changed == 0 and evaluation == "direct":
                stalled = True  # thr-greedy and exactly evaluated: nothing left to gain
                break
        elif eta == 0.0:
            pi = pig
        else:
            PK._improve_mirror(Q, logpi, beta, lam, term, has_term, pi)
        # start the next evaluation from the last Bellman step
        V = TV.copy() if evaluation != "direct" else V
    n = k
    hist = {"error_bound": np.array(hb), "residual": np.array(hr), "time": np.array(ht),
            "eval_iter": np.array(he, dtype=np.int64)}
    out = {"V": TV, "n_iter": n, "lo": lo, "hi": hi, "history": hist, "resid": resid,
           "interrupted": interrupted, "reason": reason}
    label = evaluation if evaluation != "sweeps" else f"sweeps={m}"
    extra = {"evaluation": evaluation, "eval_iter_total": int(eval_total), "stalled": stalled,
             "order": order, "eval_budget": int(budget)}
    return _finish(mdp, target, out, tol, f"{name}[{label}]", t_start, extra, stalled=stalled)


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
