"""Certificates that never lie: |V - V_exact| <= error_bound for every solver and method.

The exact values come from long-double references written here from the
mathematics (docs/certificates.md), independent of the kernels: policy values by
iterative refinement of the linear system in ``np.longdouble``, optimal values by
long-double Bellman iteration with the MacQueen midpoint, started from a
float64 solution.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastsoft as fs
from fastsoft.result import Status

LD = np.longdouble


# ----------------------------------------------------------------- long-double references
def _dense(mdp):
    P, R = mdp.to_dense()
    P = P.astype(LD)
    tot = P.sum(axis=2, keepdims=True)
    P = np.divide(P, tot, out=np.zeros_like(P), where=tot > 0)
    term = np.zeros(mdp.n_states, bool) if mdp.terminal is None else np.asarray(mdp.terminal)
    return P, R.astype(LD), term


def _log_prior(mdp, prior):
    feas = mdp.feasible
    if prior is None:
        mu = feas / feas.sum(axis=1, keepdims=True)
    else:
        mu = np.broadcast_to(np.asarray(prior, float), feas.shape)
    with np.errstate(divide="ignore"):
        return np.log(mu.astype(LD))


def ld_backup(mdp, V, tau=0.0, eta=0.0, prior=None):
    """The regularized Bellman operator of SPEC 2 in long double."""
    P, R, term = _dense(mdp)
    V = np.where(term, LD(0), V.astype(LD))
    Q = R + LD(mdp.gamma) * (P @ V)
    Q[~mdp.feasible] = -np.inf
    lam = LD(tau) + LD(eta)
    if lam == 0:
        TV = Q.max(axis=1)
    else:
        x = Q + LD(eta) * _log_prior(mdp, prior) if eta > 0 else Q
        m = x.max(axis=1)
        TV = m + lam * np.log(np.exp((x - m[:, None]) / lam).sum(axis=1))
    return np.where(term, LD(0), TV)


def ld_optimal(mdp, tau=0.0, eta=0.0, prior=None, V=None, max_iter=200_000):
    """V* in long double: Bellman iteration with the MacQueen midpoint. Returns (V*, its bound)."""
    if V is None:
        V = fs.solve(mdp, tau, kl_weight=eta, prior=prior, tol=1e-9).V
    V = np.asarray(V).astype(LD)
    g = LD(mdp.gamma)
    c = g / (1 - g)
    live = ~(np.zeros(mdp.n_states, bool) if mdp.terminal is None else mdp.terminal)
    for _ in range(max_iter):
        TV = ld_backup(mdp, V, tau, eta, prior)
        d = (TV - V)[live]
        lo, hi = d.min(), d.max()
        if mdp.terminal is not None and mdp.terminal.any():
            lo, hi = min(lo, LD(0)), max(hi, LD(0))
        # plain iteration (a contraction); the midpoint only certifies the last step
        V = TV
        half = c * (hi - lo) / 2
        if half <= LD(1e-17) * max(LD(1), np.abs(V).max()):
            break
    V = V.copy()
    V[live] += c * (lo + hi) / 2
    assert np.all(np.isfinite(V)) and np.isfinite(half), "reference failed"
    return V, float(half)


def ld_policy_value(mdp, pi, tau=0.0, eta=0.0, prior=None):
    """V^pi in long double by iterative refinement of (I - gamma P_pi) V = r_pi."""
    P, R, term = _dense(mdp)
    pi = np.asarray(pi, float)
    piL = pi.astype(LD)
    with np.errstate(divide="ignore", invalid="ignore"):
        logpi = np.where(piL > 0, np.log(np.where(piL > 0, piL, 1)), LD(0))
        logmu = _log_prior(mdp, prior)
        Rm = np.where(piL > 0, R, LD(0))
        kl = np.where(piL > 0, logpi - logmu, LD(0)) if eta > 0 else np.zeros_like(piL)
    r = (piL * (Rm - LD(tau) * logpi - LD(eta) * kl)).sum(axis=1)
    Ppi = np.einsum("sa,sat->st", piL, P)
    Ppi[:, term] = 0
    Ppi[term] = 0
    r[term] = 0
    M = np.eye(mdp.n_states, dtype=LD) - LD(mdp.gamma) * Ppi
    M64 = M.astype(float)
    V = np.linalg.solve(M64, r.astype(float)).astype(LD)
    for _ in range(6):
        res = r - M @ V
        V = V + np.linalg.solve(M64, res.astype(float)).astype(LD)
    return V


def _err(V, Vx):
    return float(np.max(np.abs(np.asarray(V, dtype=LD) - Vx))) if len(V) else 0.0


def _check(res, Vx, slack=0.0):
    err = _err(res.V, Vx)
    assert err <= res.error_bound + slack, (res.method, err, res.error_bound)
    if res.converged:
        assert res.error_bound <= res.tol
        assert res.status == Status.CONVERGED and res.message == "converged"
    else:
        assert res.status != Status.CONVERGED and res.message
    return err


# ----------------------------------------------------------------- random MDPs
@st.composite
def mdps(draw, max_states=8, terminal=True):
    S = draw(st.integers(1, max_states))
    A = draw(st.integers(1, 3))
    K = draw(st.integers(1, S))
    gamma = draw(st.sampled_from([0.0, 0.5, 0.9, 0.99, 0.999]))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([1e-6, 1.0, 1e3, 1e6]))
    shift = draw(st.sampled_from([0.0, -1e4]))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    mdp = fs.random_mdp(S, A, K, gamma=gamma, seed=seed, reward_range=(-scale, scale))
    if shift:
        mdp = mdp.with_rewards(np.asarray(mdp.rewards, float) + shift)
    if terminal and S > 1 and draw(st.booleans()):
        P, R = mdp.to_dense()
        term = np.zeros(S, bool)
        term[draw(st.integers(0, S - 1))] = True
        mdp = fs.TabularMDP.from_dense(P, R, gamma, terminal=term)
    return mdp.astype(dtype) if dtype is np.float32 else mdp


def _policy(mdp, rng, deterministic):
    S, A = mdp.n_states, mdp.n_actions
    if deterministic:
        return rng.integers(0, A, size=S)
    pi = rng.random((S, A)) + 1e-3
    return pi / pi.sum(axis=1, keepdims=True)


# the property sweeps take a minute or two each on a loaded 2-core machine: slow
# (run by `pytest -m slow` and CI); the cases below stay in the default run
SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
slow = pytest.mark.slow
TEMPS = st.sampled_from([0.0, 1e-8, 0.1, 10.0])
V0S = st.sampled_from([None, 0.0, 1e10, 1e16, 1e100, -1e20])


@slow
@SETTINGS
@given(mdp=mdps(), method=st.sampled_from(["direct", "iterative", "gmres", "bicgstab"]),
       order=st.sampled_from(["jacobi", "gauss-seidel"]), tau=TEMPS, det=st.booleans(),
       seed=st.integers(0, 1000), tol=st.sampled_from([1e-4, 1e-8, 1e-12]))
def test_policy_evaluation_certificate(mdp, method, order, tau, det, seed, tol):
    if mdp.gamma == 0.0 and method in ("gmres", "bicgstab"):
        tol = max(tol, 1e-12)
    rng = np.random.default_rng(seed)
    pi = _policy(mdp, rng, det)
    res = fs.policy_evaluation(mdp, pi, temperature=tau, method=method, order=order, tol=tol)
    _check(res, ld_policy_value(mdp, res.policy, tau))


def _vi_case(mdp, tau, v0):
    V0 = None if v0 is None else np.full(mdp.n_states, v0)
    return V0


@slow
@SETTINGS
@given(mdp=mdps(), tau=TEMPS, v0=V0S, order=st.sampled_from(["jacobi", "gauss-seidel"]),
       accel=st.sampled_from([None, "anderson"]), tol=st.sampled_from([1e-3, 1e-8, 1e-13]))
def test_value_iteration_certificate(mdp, tau, v0, order, accel, tol):
    V0 = _vi_case(mdp, tau, v0)
    res = fs.soft_value_iteration(mdp, tau, V0=V0, order=order, acceleration=accel, tol=tol,
                                  max_iter=200_000)
    Vx, half = ld_optimal(mdp, tau)
    _check(res, Vx, slack=half)


@slow
@SETTINGS
@given(mdp=mdps(), tau=TEMPS, eta=st.sampled_from([0.1, 1.0]), v0=V0S)
def test_kl_value_iteration_certificate(mdp, tau, eta, v0):
    V0 = _vi_case(mdp, tau, v0)
    res = fs.soft_value_iteration(mdp, tau, kl_weight=eta, V0=V0, tol=1e-9)
    Vx, half = ld_optimal(mdp, tau, eta)
    _check(res, Vx, slack=half)


@slow
@SETTINGS
@given(mdp=mdps(), tau=TEMPS, v0=V0S,
       method=st.sampled_from(["vi", "vi-gs", "pi", "pi-iterative", "mpi"]),
       tol=st.sampled_from([1e-4, 1e-9, 1e-13]))
def test_solve_certificate(mdp, tau, v0, method, tol):
    V0 = _vi_case(mdp, tau, v0)
    res = fs.solve(mdp, tau, V0=V0, method=method, tol=tol)
    Vx, half = ld_optimal(mdp, tau)
    _check(res, Vx, slack=half)


@slow
@SETTINGS
@given(mdp=mdps(), tau=st.sampled_from([0.0, 1e-8, 0.3]), v0=V0S,
       evaluation=st.sampled_from(["direct", "iterative", "sweeps", "gmres", "bicgstab"]),
       eta=st.sampled_from([0.0, 0.5]))
def test_policy_iteration_certificate(mdp, tau, v0, evaluation, eta):
    V0 = _vi_case(mdp, tau, v0)
    if tau == 0.0:
        eta = 0.0
    res = fs.regularized_policy_iteration(mdp, tau, eta, evaluation=evaluation, V0=V0,
                                          tol=1e-9, max_iter=300)
    Vx, half = ld_optimal(mdp, tau)
    _check(res, Vx, slack=half)


@slow
@SETTINGS
@given(mdp=mdps(), v0=V0S, m=st.sampled_from([1, 5, 20]))
def test_modified_policy_iteration_certificate(mdp, v0, m):
    V0 = _vi_case(mdp, 0.0, v0)
    res = fs.modified_policy_iteration(mdp, m=m, V0=V0, tol=1e-9, max_iter=2000)
    Vx, half = ld_optimal(mdp)
    _check(res, Vx, slack=half)


# ----------------------------------------------------------------- the cases
def _self_loop(R, gamma):
    P = np.ones((1, 1, 1))
    return fs.TabularMDP.from_dense(P, np.array([[R]]), gamma)


@pytest.mark.parametrize("method", ["direct", "iterative", "gmres", "bicgstab"])
def test_policy_evaluation_self_loop_has_round_off_allowance(method):
    # R = 2e6, gamma 0.999: the sweeps reach a float64 fixed point 1e-4 away from V^pi
    mdp = _self_loop(2e6, 0.999)
    res = fs.policy_evaluation(mdp, np.array([0]), method=method, order="jacobi")
    exact = LD(2e6) / (1 - LD(0.999))
    err = float(abs(LD(res.V[0]) - exact))
    assert res.error_bound > 0.0
    assert err <= res.error_bound
    # the floor stays within a small factor of what float64 can do at this magnitude
    assert res.error_bound < 1e4 * np.finfo(float).eps * 2e9 / 1e-3


def _two_state(gamma=0.99):
    P = np.zeros((6, 2, 6))
    rng = np.random.default_rng(3)
    P[:] = rng.random((6, 2, 6))
    P /= P.sum(axis=2, keepdims=True)
    R = rng.random((6, 2))
    return fs.TabularMDP.from_dense(P, R, gamma)


@pytest.mark.parametrize("v0", [1e10, 1e14, 1e16, 1e18, 1e20, 1e100, -1e50])
@pytest.mark.parametrize("method", ["soft_vi", "solve"])
def test_far_warm_start_is_certified(v0, method):
    mdp = _two_state()
    V0 = np.full(6, v0)
    if method == "soft_vi":
        res = fs.soft_value_iteration(mdp, 0.1, V0=V0, tol=1e-8)
    else:
        res = fs.solve(mdp, 0.1, V0=V0, tol=1e-8)
    Vx, half = ld_optimal(mdp, 0.1)
    err = _check(res, Vx, slack=half)
    # the iteration contracts back to V*: the result is accurate, not just honest
    assert res.converged and err <= 1e-8


def test_recentred_rewards_warm_start_is_certified():
    # the inverse-RL pattern: re-centre the rewards by -1e4 and warm start from the old V
    mdp = fs.random_mdp(6, 3, 3, gamma=0.99, seed=1)
    old = fs.solve(mdp, 0.5, tol=1e-10)
    new = mdp.with_rewards(np.asarray(mdp.rewards) - 1e4)
    Vx, half = ld_optimal(new, 0.5)
    # V ~ -1e6 at gamma 0.99: 1e-9 is below what float64 can certify; say so, honestly
    res = fs.solve(new, 0.5, V0=old.V, tol=1e-9)
    _check(res, Vx, slack=half)
    assert res.status == Status.ROUND_OFF_FLOOR and res.error_bound < 1e-6
    res = fs.solve(new, 0.5, V0=old.V, tol=1e-6)
    err = _check(res, Vx, slack=half)
    assert res.converged and err <= 1e-6


def test_certificate_tight_above_the_floor():
    # loose tolerances: the bound stays within 10x of the true error
    mdp = _two_state(0.99)
    Vx, _ = ld_optimal(mdp, 0.1)
    for tol in (1e-2, 1e-4, 1e-6):
        for order in ("jacobi", "gauss-seidel"):
            res = fs.soft_value_iteration(mdp, 0.1, tol=tol, order=order, acceleration=None,
                                          V0=np.zeros(6))
            err = _err(res.V, Vx)
            assert err <= res.error_bound <= max(10 * err, 1e-12), (tol, err, res.error_bound)


def test_policy_evaluation_iterative_random_mdps_honest():
    # the audit's failing family: random MDPs, random stochastic policies, rewards to 1e6
    for seed in range(30):
        rng = np.random.default_rng(seed)
        S = int(rng.integers(2, 20))
        A = int(rng.integers(1, 4))
        mdp = fs.random_mdp(S, A, int(rng.integers(1, S + 1)),
                            gamma=float(rng.choice([0.9, 0.99, 0.999])), seed=seed,
                            reward_range=(-1e6, 1.0))
        pi = _policy(mdp, rng, False)
        Vx = ld_policy_value(mdp, pi)
        for order in ("jacobi", "gauss-seidel"):
            res = fs.policy_evaluation(mdp, pi, method="iterative", order=order, tol=1e-10)
            _check(res, Vx)


def test_tol_below_floor_reported_at_once():
    P = np.array([[[0.5, 0.5]], [[0.2, 0.8]]])
    mdp = fs.TabularMDP.from_dense(P, np.array([[1.0], [0.9]]), 0.999)
    for solver in (lambda: fs.value_iteration(mdp, tol=1e-14),
                   lambda: fs.policy_iteration(mdp, tol=1e-14),
                   lambda: fs.policy_iteration(mdp, tol=1e-14, evaluation="iterative"),
                   lambda: fs.policy_iteration(mdp, tol=1e-14, evaluation="gmres"),
                   lambda: fs.regularized_policy_iteration(mdp, 0.1, 0.5, tol=1e-14),
                   lambda: fs.modified_policy_iteration(mdp, tol=1e-14),
                   lambda: fs.solve(mdp, 0.1, tol=1e-14, method="mpi")):
        res = solver()
        assert not res.converged
        assert res.status == Status.ROUND_OFF_FLOOR, (res.method, res.message)
        assert res.message.startswith("tol below round-off floor: best certified bound")
        assert res.error_bound < 1e-8
        assert res.n_iter < 5000


def test_soft_gridworld_stall_stops_honestly():
    mdp = fs.gridworld(30, 30, slip=0.1, gamma=0.999)
    res = fs.solve(mdp, 0.1, tol=1e-12)
    assert not res.converged and res.status == Status.ROUND_OFF_FLOOR
    assert res.n_iter < 20_000


@pytest.mark.parametrize("kind", ["pi", "rpi", "mpi", "iterative"])
def test_zero_span_start_runs(kind):
    # every state's best reward is equal: T(0) - 0 has zero span
    P = np.zeros((3, 2, 3))
    P[0, 0, 1] = P[0, 1, 2] = P[1, 0, 0] = P[1, 1, 2] = P[2, 0, 2] = P[2, 1, 0] = 1.0
    R = np.array([[1.0, 0.0], [1.0, -1.0], [1.0, 0.5]])
    mdp = fs.TabularMDP.from_dense(P, R, 0.9)
    run = {"pi": lambda: fs.policy_iteration(mdp, V0=np.zeros(3)),
           "rpi": lambda: fs.regularized_policy_iteration(mdp, 0.1, V0=np.zeros(3)),
           "mpi": lambda: fs.modified_policy_iteration(mdp, V0=np.zeros(3)),
           "iterative": lambda: fs.policy_iteration(mdp, evaluation="iterative",
                                                    V0=np.zeros(3))}[kind]
    res = run()
    # the start's certificate is exact up to round-off: V* = T V0 + c d (no iteration
    # needed), and the result is that midpoint, not T V0
    assert res.converged and res.status == Status.CONVERGED
    Vx, half = ld_optimal(mdp, 0.1 if kind == "rpi" else 0.0)
    _check(res, Vx, slack=half)


@pytest.mark.parametrize("big", ["rewards", "temperature"])
def test_policy_iteration_huge_scale_stops(big):
    mdp = _two_state(0.9)
    if big == "rewards":
        mdp = mdp.with_rewards(np.asarray(mdp.rewards) * 1e300)
        tau = 0.0
    else:
        tau = 1e300
    for ev in ("direct", "iterative", "sweeps"):
        res = fs.regularized_policy_iteration(mdp, tau, evaluation=ev, tol=1e-8)
        assert res.n_iter < 100
        assert not res.converged
        assert res.status in (Status.ROUND_OFF_FLOOR, Status.STALLED), res.message


def test_mpi_converges_where_vi_does():
    mdp = fs.gridworld(8, 8, slip=0.1, gamma=0.99)
    vi = fs.solve(mdp, 0.1, tol=1e-9, method="vi")
    mpi = fs.solve(mdp, 0.1, tol=1e-9, method="mpi")
    assert vi.converged and mpi.converged
    assert mpi.error_bound <= 1e-9


def test_pi_evaluation_budget_is_bounded():
    mdp = _two_state(0.999)
    res = fs.policy_iteration(mdp, evaluation="iterative", tol=1e-12, max_iter=10_000)
    assert res.extra["eval_iter_total"] <= res.extra["eval_budget"]


def test_huge_max_iter_does_not_allocate_up_front():
    mdp = _two_state(0.9)
    res = fs.value_iteration(mdp, max_iter=10**12, tol=1e-8)
    assert res.converged and len(res.history["error_bound"]) == res.n_iter


def test_chunked_history_matches_one_call():
    # a run longer than the first history chunk gives the same iterates as a short cap
    mdp = fs.gridworld(12, 12, slip=0.2, gamma=0.999)
    a = fs.value_iteration(mdp, max_iter=6000, tol=1e-300, order="gauss-seidel")
    b = fs.value_iteration(mdp, max_iter=10**9, tol=1e-300, order="gauss-seidel")
    assert a.n_iter <= 6000
    if b.n_iter <= 6000:
        np.testing.assert_array_equal(a.V, b.V)


def test_status_fields_on_every_result():
    mdp = _two_state(0.9)
    r = fs.value_iteration(mdp, max_iter=2, tol=1e-12)
    assert r.status == Status.MAX_ITER and r.message.startswith("max_iter reached")
    stop = fs.value_iteration(mdp, callback=lambda info: True, tol=1e-12)
    assert stop.status == Status.INTERRUPTED and stop.message == "interrupted"
    ok = fs.value_iteration(mdp, tol=1e-6)
    assert ok.status == 0 and ok.message == "converged"
