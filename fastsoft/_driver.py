"""Pieces shared by the solvers (``vi``, ``pi``, ``solver``): one private module below them.

Value iteration's pieces (:func:`backup`, :func:`finish` with its certificate
and round-off allowance, :func:`chunk_bounds`, :func:`use_parallel`) and the
policy-iteration loop (:class:`Evaluator`, :func:`pi_loop`) used by
:mod:`fastsoft.pi` and :func:`fastsoft.solve`.

Layering: the public solver modules import from here; this module imports the
kernels, the bundles and the result type, never a solver module or
:mod:`fastsoft.progress`. Progress bars reach the solvers through
:func:`progress_scope`, a hook that :mod:`fastsoft.progress` registers when
the package is imported (so a solver's ``progress=True`` works while no solver
imports the progress interface).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from . import _bundles as B
from . import _kernels as K
from . import _pi_kernels as PK
from ._bundles import Regularizer
from ._certify import (
    CERT_LEN,
    STOP_BUDGET,
    STOP_FLOOR,
    STOP_TOL,
    bellman_allowance,
    floor_message,
    policy_allowance,
    policy_sum_defect,
    residual_bound,
)
from ._jit import run_time
from ._structure import DIRECT_MAX_FILL, envelope_fill
from .mdp import TabularMDP
from .result import SolveResult, Status

#: Problems with at least this many state-action pairs, or this many stored
#: transitions, run the parallel kernels (a sweep's work is ~ pairs + nnz).
PARALLEL_MIN_PAIRS = 20_000
PARALLEL_MIN_NNZ = 100_000


def use_parallel(mdp: TabularMDP, parallel) -> bool:
    """``parallel=None``: parallel kernels from :data:`PARALLEL_MIN_PAIRS` pairs or
    :data:`PARALLEL_MIN_NNZ` transitions on; else ``bool(parallel)``."""
    if parallel is None:
        return (mdp.n_states * mdp.n_actions >= PARALLEL_MIN_PAIRS
                or mdp.nnz >= PARALLEL_MIN_NNZ)
    return bool(parallel)


#: Blocks of the parallel Gauss-Seidel sweep. Fixed (not the thread count), so
#: that results do not depend on the number of threads.
GS_BLOCKS = 8


def chunk_bounds(n_states: int, parallel: bool, gs: bool = False) -> np.ndarray:
    """State ranges: Jacobi load-balancing chunks, or the fixed Gauss-Seidel blocks."""
    if not parallel:
        return np.array([0, n_states], dtype=np.int64)
    n = max(1, min(n_states, GS_BLOCKS if gs else 256))
    return np.linspace(0, n_states, n + 1).astype(np.int64)


def backup(mdp: TabularMDP, V: np.ndarray, reg: Regularizer):
    """``(TV, Q, policy)``: one regularized greedy step of ``V`` (no validation)."""
    S, A = mdp.n_states, mdp.n_actions
    Q = np.empty((S, A))
    pi = np.empty((S, A))
    TV = np.empty(S)
    K._greedy_step(B.model(mdp), reg.kernel, B.pinned(mdp), V, Q, pi, TV)
    return TV, Q, pi


def roundoff_allowance(mdp: TabularMDP, reg: Regularizer, V: np.ndarray) -> float:
    """Round-off allowance of one Bellman step at the magnitude of ``V`` (docs/certificates.md).

    ``fastsoft._certify.bellman_allowance`` evaluated at ``M_out = max |V|`` and
    ``resid = 0``: what a certificate of a combination of certified pieces (the
    closed-set split of :func:`fastsoft.solve`) adds for its own last step.
    """
    vmax = float(np.max(np.abs(V))) if V.size else 0.0
    return bellman_allowance(mdp, reg)(vmax, 0.0)


def roundoff_from_scales(vmax: float, reward_scale: float, gamma: float) -> float:
    """The coarse allowance ``16 eps (max|V| + max|R| + lam log A) / (1 - gamma)``.

    Kept for callers that only know the scales (the distributed solver); the
    solvers here use the derived allowance of :mod:`fastsoft._certify`.
    """
    return 16.0 * np.finfo(np.float64).eps * (vmax + reward_scale) / (1.0 - gamma)


def reward_scale(mdp: TabularMDP, reg: Regularizer) -> float:
    return B.max_abs_reward(mdp) + reg.lam * np.log(mdp.n_actions)


def kernel_tol(mdp: TabularMDP, reg: Regularizer, tol: float, V0: np.ndarray) -> float:
    """A sweep threshold below ``tol`` for kernels without the round-off stopping rule.

    The allowance is estimated from ``|V| <= max(|V0|, scale / (1 - gamma))``,
    doubled. If it would eat more than half of ``tol``, the sweeps aim at
    ``tol / 2`` and the result honestly reports a bound above ``tol``.
    """
    return sweep_tol_from_scales(tol, float(np.max(np.abs(V0))), reward_scale(mdp, reg),
                                 mdp.gamma)


def sweep_tol_from_scales(tol: float, v0max: float, reward_scale: float, gamma: float) -> float:
    """:func:`kernel_tol` from ``max|V0|`` and ``max|R| + lam log A``."""
    vmax = max(v0max, reward_scale / (1.0 - gamma))
    return max(tol - 2.0 * roundoff_from_scales(vmax, reward_scale, gamma), 0.5 * tol)


def _status(converged: bool, interrupted: bool, reason: int, stalled: bool, bound: float):
    """``(status, message)`` of a result (see :class:`fastsoft.result.Status`)."""
    if converged:
        return Status.CONVERGED, "converged"
    if interrupted:
        return Status.INTERRUPTED, "interrupted"
    if reason == STOP_FLOOR:
        return Status.ROUND_OFF_FLOOR, floor_message(bound)
    if stalled:
        return Status.STALLED, f"stalled: best certified bound {bound:.3g}"
    return Status.MAX_ITER, f"max_iter reached: certified bound {bound:.3g}"


def finish(mdp, reg, out, tol, method, t_start, extra=None, stalled=False) -> SolveResult:
    """Midpoint extrapolation, a last greedy step, and the tightest certified bound.

    Two certificates of the returned ``V``, each with the round-off allowance of
    the magnitudes of the step that certifies it (``fastsoft._certify``): the
    run's last sweep (``out["lo"], out["hi"]`` around its output, before the
    midpoint shift) and one more Bellman step of the returned ``V``.
    """
    V = out["V"]
    live = slice(None) if not mdp.has_terminal else ~mdp.terminal
    lo, hi = out["lo"], out["hi"]
    n = out["n_iter"]
    allow = bellman_allowance(mdp, reg)
    bound = np.inf
    residual = np.nan
    if n > 0 or "resid" in out:  # (policy iteration may certify its start: n = 0)
        residual = float(out["resid"] if "resid" in out else out["history"]["residual"][-1])
        if np.isfinite(lo) and np.isfinite(hi):
            m_out = float(np.abs(V).max()) if V.size else 0.0
            V[live] += 0.5 * (lo + hi)
            bound = 0.5 * (hi - lo) + allow(m_out, residual)
    TV, Q, pi = backup(mdp, V, reg)
    # second certificate from the returned V itself: V* - V in [d + c lo', d + c hi']
    d = (TV - V)[live]
    if d.size:
        c = mdp.gamma / (1.0 - mdp.gamma)
        dmin, dmax = float(d.min()), float(d.max())
        if mdp.has_terminal:
            lo2, hi2 = c * min(dmin, 0.0), c * max(dmax, 0.0)
        else:
            lo2, hi2 = c * dmin, c * dmax
        r2 = max(abs(dmin), abs(dmax))
        bound2 = max(dmax + hi2, -(dmin + lo2), 0.0) + allow(float(np.abs(TV).max()), r2)
        bound = min(bound, bound2)
        if n == 0:
            residual = r2
    else:
        bound = 0.0
    if not np.isfinite(bound):
        bound = np.inf
    converged = bool(bound <= tol)
    status, message = _status(converged, out["interrupted"], out.get("reason", STOP_BUDGET),
                              stalled, bound)
    return SolveResult(
        V=V, Q=Q, policy=pi, n_iter=n, residual=residual, error_bound=float(bound),
        converged=converged, history=out["history"], method=method,
        temperature=reg.tau, kl_weight=reg.eta, horizon=None, tol=tol,
        wall_time=run_time(t_start), interrupted=out["interrupted"],
        extra=extra or {}, status=status, message=message,
    )


# ------------------------------------------------------------------------- policy iteration


#: Policy iteration stops ("stalled") when its certificate has not improved by a
#: relative :data:`PI_PROGRESS` for this many iterations (every variant), not
#: counting iterations where it moved by more than a relative :data:`PI_MOVING`
#: (an optimistic start's bound first grows while information spreads; mirror
#: descent's bound is not monotone). Stuck bounds (huge rewards or temperatures,
#: round-off flipping ties) still stop; the budgets bound everything else.
PI_PATIENCE = 8
PI_PROGRESS = 1e-6
PI_MOVING = 1e-3

#: Sweep limit of one certified iterative evaluation.
DEFAULT_EVAL_SWEEPS = 100_000

#: Sweeps or Krylov products that all the evaluations of one policy-iteration run
#: may use together (``"sweeps"`` evaluations: ``max_iter * m``), so that
#: improvements x evaluation sweeps cannot multiply into hours.
EVAL_BUDGET = 200_000


def pi_reward(mdp: TabularMDP, pi: np.ndarray, reg: Regularizer) -> np.ndarray:
    r = np.empty(mdp.n_states)
    PK._policy_reward(mdp.rewards, pi, reg.kernel, B.pinned(mdp), r)
    return r


def pi_matrix(mdp: TabularMDP, pi: np.ndarray) -> sp.csr_matrix:
    model, pin = B.model(mdp), B.pinned(mdp)
    S = mdp.n_states
    mark = np.full(S, -1, dtype=np.int64)
    ptr = np.empty(S + 1, dtype=np.int64)
    PK._ppi_count(model, pin, pi, mark, ptr)
    nnz = int(ptr[-1])
    idx = np.empty(nnz, dtype=mdp.indices.dtype)
    val = np.empty(nnz)
    mark.fill(-1)
    PK._ppi_fill(model, pin, pi, mark, ptr, idx, val)
    return sp.csr_matrix((val, idx, ptr), shape=(S, S))


class Evaluator:
    """Solves ``(I - gamma P_pi) V = r`` for a sequence of policies of one MDP."""

    def __init__(self, mdp: TabularMDP, method: str, order: str, parallel):
        self.mdp = mdp
        self.method = method
        self.gs = order == "gauss-seidel"
        self.par = use_parallel(mdp, parallel)
        S = mdp.n_states
        self.cert = np.zeros(CERT_LEN)  # replaced by a fresh buffer in every sweeps run
        self.work = B.PolicyWork(B.chunks(chunk_bounds(S, self.par)), np.empty(S), self.cert)
        self.c = mdp.gamma / (1.0 - mdp.gamma)
        self.live = None if not mdp.has_terminal or mdp.terminal is None else ~mdp.terminal
        self.sweeps_done = 0

    # -- residual and certificate of any V: ||V - V^pi|| <= ||r - (I - gamma P_pi) V|| / (1-gamma)
    def residual(self, pi, r, V) -> float:
        y = np.empty_like(V)
        PK._policy_matvec(B.model(self.mdp), B.pinned(self.mdp), pi, V, y)
        res = r - y
        if self.live is not None:
            res[~self.live] = 0.0
        return float(np.abs(res).max()) if res.size else 0.0

    def solve(self, pi, r, V, tol, reg, m=None, budget=DEFAULT_EVAL_SWEEPS):
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
        M = sp.identity(mdp.n_states, format="csr") - mdp.gamma * pi_matrix(mdp, pi)
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
        model, pin = B.model(mdp), B.pinned(mdp)
        S = mdp.n_states
        gamma = mdp.gamma
        count = [0]

        def matvec(x):
            x = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
            y = np.empty(S)
            PK._policy_matvec(model, pin, pi, x, y)
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
        has_term = mdp.has_terminal
        if has_term:
            V[mdp.terminal] = 0.0
        clamp = has_term or self.gs
        self.cert = self.allow.buffer()
        self.work = self.work._replace(cert=self.cert)
        args = (B.model(mdp), B.pinned(mdp), pi, r, V, self.work)
        if m is not None:
            ctl = B.PolicyControl(-1.0, self.c, clamp, self.par, self.gs)
            done = PK._policy_run(m, self.sweeps_done, ctl, *args)
            n_ex = 0
        else:
            done, n_ex = self._extrapolated(B.PolicyControl(tol, self.c, clamp, self.par,
                                                            self.gs), args, budget)
        self.sweeps_done += done
        lo, hi = float(self.cert[0]), float(self.cert[1])
        bound = 0.5 * (hi - lo) if np.isfinite(lo) and np.isfinite(hi) else np.inf
        if np.isfinite(bound):
            m_out = float(np.abs(V).max()) if V.size else 0.0
            bound += self.allow(m_out, float(self.cert[7]))
        reason = int(self.cert[6])
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

    def _extrapolated(self, ctl, args, budget):
        """Sweeps of ``T_pi`` to a certified ``tol``, with geometric (Aitken) extrapolation.

        The policy is fixed, so the error decays at a steady rate ``rho`` per pair
        of sweeps (on grids the slow mode is the near-constant "bulk" error that
        sweeps cannot move). Once two successive pair ratios agree to 2%, the
        geometric tail ``D rho / (1 - rho)`` of the last pair's change ``D`` is
        added. This only moves the iterate; the certificate always comes from
        the sweeps themselves.
        """
        V = args[4]
        done = 0
        n_ex = 0
        hist: list[float] = []
        small = V.shape[0] < 2_000  # tiny problems: no Python round trips
        undo = None  # (V before the last extrapolation, its pair change): the safeguard
        while done < budget:
            if small:
                k = PK._policy_run(budget, self.sweeps_done + done, ctl, *args)
                done += k
                break
            old = V.copy()
            k = PK._policy_run(min(2, budget - done), self.sweeps_done + done, ctl, *args)
            done += k
            if self.cert[6] != STOP_BUDGET or k < 2:
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


def auto_evaluation(mdp: TabularMDP) -> str:
    """Direct (sparse LU) when the factor provably stays sparse, else sweeps.

    Decided from the structure, not the state count: the envelope bound of
    :func:`fastsoft._structure.envelope_fill` (a policy matrix's factors fit
    in the band of the reverse Cuthill-McKee order of the support graph) must
    stay below :data:`fastsoft._structure.DIRECT_MAX_FILL` entries. Otherwise
    (random MDPs fill in: a 6000-state Garnet's factor measured 12M entries)
    certified sweeps.
    """
    return "direct" if envelope_fill(mdp) <= DIRECT_MAX_FILL else "iterative"


def cert(TV, V, live, c):
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


def pi_loop(mdp, target, ereg, eta, V, TV, Q, pi, logpi, greedy_start, evaluation, m, tol,
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
        evaluation = auto_evaluation(mdp)
    ev = Evaluator(mdp, "sweeps" if evaluation == "sweeps" else evaluation, order, parallel)
    act = np.argmax(pi, axis=1).astype(np.int64) if hard else None
    if hard:
        pi = np.zeros_like(pi)
        pi[np.arange(S), act] = 1.0
    pin = B.pinned(mdp)
    live = None if not mdp.has_terminal else ~mdp.terminal
    gamma = mdp.gamma
    c = gamma / (1.0 - gamma)
    beta = eta / lam if lam > 0 else 0.0
    allow = bellman_allowance(mdp, target)
    hb, hr, ht, he = [], [], [], []
    lo, hi, resid = cert(TV, V, live, c)
    bound = 0.5 * (hi - lo)
    floor = 0.25 * tol / c if c > 0 else tol  # evaluation error that still certifies tol
    if greedy_start:
        V = TV.copy()  # = T_{pi_0} V0 for the greedy pi_0
    best = np.inf
    last = np.inf
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
    # T V0 - V0 constant, is: V* = T V0 + c d exactly, and finish returns that midpoint)
    m0 = float(np.abs(TV).max()) if TV.size else 0.0
    n_loop = 0 if 0.5 * (hi - lo) + allow(m0, resid) <= tol else max_iter
    for k in range(1, n_loop + 1):  # noqa: B007
        if eval_total >= budget:
            k -= 1
            break
        r = pi_reward(mdp, pi, ereg)
        # forcing tolerance: never loosened (a loose evaluation must not feed back),
        # and ten times tighter whenever the last iteration made no progress
        eval_tol = min(eval_tol, max(floor, 0.1 * resid))
        if bound >= prev_bound:
            eval_tol = max(floor, 0.1 * eval_tol)
        prev_bound = bound
        V, info = ev.solve(pi, r, V, eval_tol, ereg, m if evaluation == "sweeps" else None,
                           budget - eval_total)
        eval_total += info["n_iter"]
        TV, Q, pig = backup(mdp, V, target)
        lo, hi, resid = cert(TV, V, live, c)
        # the bound finish certifies (round-off included), so that stopping here
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
        moving = abs(bound - last) > PI_MOVING * max(bound, last)
        last = bound
        if bound < best * (1.0 - PI_PROGRESS):
            best = bound
            since_best = 0
        elif moving:
            # not better than the best, but not stuck either: an optimistic start's
            # bound grows while information spreads, mirror descent's bound is not
            # monotone (the budgets still bound the run)
            pass
        else:
            since_best += 1
            if since_best >= PI_PATIENCE:  # e.g. only round-off is left to flip ties
                stalled = True
                break
        # ---- improvement
        if hard:
            scale = float(np.abs(TV).max()) if TV.size else 0.0
            thr = max(0.1 * tol / c, 1e-13 * (1.0 + scale))
            changed = PK._improve_hard(Q, act, thr, pi, pin)
            if changed == 0 and evaluation == "direct":
                stalled = True  # thr-greedy and exactly evaluated: nothing left to gain
                break
        elif eta == 0.0:
            pi = pig
        else:
            PK._improve_mirror(Q, logpi, beta, lam, pin, pi)
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
    return finish(mdp, target, out, tol, f"{name}[{label}]", t_start, extra, stalled=stalled)


# ------------------------------------------------------------------------- progress hook
#: ``factory(desc, tol, total, callback)`` -> context manager yielding a callback;
#: registered by :mod:`fastsoft.progress` (see :func:`register_progress`).
_PROGRESS_FACTORY = None


def register_progress(factory) -> None:
    """Install the progress-bar factory used by :func:`progress_scope`.

    ``factory(desc, tol=..., total=..., callback=...)`` must return a context
    manager that yields the callback the solver calls (it chains ``callback``).
    :mod:`fastsoft.progress` registers its bar on import.
    """
    global _PROGRESS_FACTORY
    _PROGRESS_FACTORY = factory


@contextlib.contextmanager
def progress_scope(
    progress: bool, desc: str, *, tol: float | None = None, total: int | None = None,
    callback: Callable[[dict], bool | None] | None = None,
) -> Iterator[Callable[[dict], bool | None] | None]:
    """The callback a solver with a ``progress=`` argument passes to its loop.

    ``progress`` False: ``callback`` unchanged. True: the registered progress
    bar chaining ``callback`` (a clean stop on the first Ctrl-C).
    """
    if not progress:
        yield callback
        return
    if _PROGRESS_FACTORY is None:  # pragma: no cover - fastsoft/__init__ imports progress
        raise RuntimeError("no progress bar registered (import fastsoft.progress)")
    with _PROGRESS_FACTORY(desc, tol=tol, total=total, callback=callback) as cb:
        yield cb
