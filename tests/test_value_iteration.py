"""Value-iteration kernels against the NumPy reference, known answers and certificates."""

import itertools

import numpy as np
import pytest
from conftest import ZOO, dense_random_mdp, make_env

import fastsoft as fs
from fastsoft import reference as ref

REGS = [  # (temperature, kl_weight, use_prior)
    (0.0, 0.0, False),
    (0.7, 0.0, False),
    (0.0, 0.5, False),
    (0.3, 0.4, False),
    (0.3, 0.4, True),
    (0.0, 1.0, True),
]


def _prior(mdp, seed=0):
    rng = np.random.default_rng(seed)
    mu = rng.random((mdp.n_states, mdp.n_actions)) + 0.05
    mu[~mdp.feasible] = 0.0
    return mu / mu.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("name", sorted(ZOO))
@pytest.mark.parametrize("tau,eta,use_prior", REGS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_backup_matches_reference(name, tau, eta, use_prior, dtype):
    mdp = ZOO[name].astype(dtype)
    prior = _prior(mdp) if use_prior else None
    rng = np.random.default_rng(7)
    for _ in range(3):
        V = rng.normal(scale=5.0, size=mdp.n_states)
        TV, Q, pi = fs.bellman_backup(mdp, V, tau, kl_weight=eta, prior=prior)
        TVr, Qr, pir = ref.bellman_backup(mdp, V, tau, eta, prior)
        np.testing.assert_allclose(TV, TVr, rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(Q, Qr, rtol=1e-11, atol=1e-11)
        if tau + eta > 0:
            np.testing.assert_allclose(pi, pir, rtol=1e-9, atol=1e-12)
        else:  # greedy: compare where the maximiser is clear
            gap = np.sort(Qr, axis=1)[:, -1] - np.sort(Qr, axis=1)[:, -2]
            clear = gap > 1e-9
            np.testing.assert_array_equal(pi[clear], pir[clear])
        assert np.all(pi[~mdp.feasible] == 0.0)
        np.testing.assert_allclose(pi.sum(axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize("name", sorted(ZOO))
@pytest.mark.parametrize("tau,eta,use_prior", REGS)
@pytest.mark.parametrize("order", ["jacobi", "gauss-seidel"])
@pytest.mark.parametrize("parallel", [False, True])
def test_value_iteration_matches_reference(name, tau, eta, use_prior, order, parallel):
    mdp = ZOO[name]
    prior = _prior(mdp) if use_prior else None
    tol = 1e-9
    res = fs.soft_value_iteration(mdp, tau, kl_weight=eta, prior=prior, tol=tol, order=order,
                                  parallel=parallel)
    exp = ref.soft_value_iteration(mdp, tau, eta, prior, tol=1e-11)
    assert res.converged and res.error_bound <= tol
    # the certificate is honest: the true error is within the certified bound
    assert np.max(np.abs(res.V - exp["V"])) <= res.error_bound + 1e-10
    if mdp.has_terminal:
        assert np.all(res.V[mdp.terminal] == 0.0)
    if order == "jacobi":
        assert abs(res.n_iter - exp["n_iter"]) <= 1 or tol != 1e-11
    hist = res.history["error_bound"]
    assert hist.shape == (res.n_iter,) and hist[-1] <= tol


@pytest.mark.parametrize("name", ["garnet", "grid", "dense_terminal"])
def test_float32_storage_solves_the_rounded_mdp(name):
    mdp = ZOO[name]
    m32 = mdp.astype(np.float32)
    res = fs.soft_value_iteration(m32, 0.5, tol=1e-8)
    exp = ref.soft_value_iteration(m32, 0.5, tol=1e-10)  # same float32 data, float64 maths
    assert res.converged
    assert np.max(np.abs(res.V - exp["V"])) <= res.error_bound + 1e-9
    full = fs.soft_value_iteration(mdp, 0.5, tol=1e-8)
    assert np.max(np.abs(res.V - full.V)) < 1e-4 * max(1.0, np.abs(full.V).max())


def test_one_state_closed_form():
    r = np.array([1.0, -0.5, 2.0, 0.3])
    gamma, tau = 0.9, 0.7
    P = np.ones((1, 4, 1))
    mdp = fs.TabularMDP.from_dense(P, r[None, :], gamma)
    res = fs.soft_value_iteration(mdp, tau, tol=1e-12)
    expect = tau * np.log(np.sum(np.exp(r / tau))) / (1 - gamma)
    assert res.V[0] == pytest.approx(expect, abs=1e-11)
    # span stopping makes this exact after one sweep
    assert res.n_iter <= 2
    np.testing.assert_allclose(res.policy[0], np.exp(r / tau) / np.exp(r / tau).sum())


def test_one_state_kl_closed_form():
    r = np.array([1.0, 0.0, 0.5])
    mu = np.array([0.2, 0.5, 0.3])
    gamma, tau, eta = 0.8, 0.4, 0.6
    lam = tau + eta
    mdp = fs.TabularMDP.from_dense(np.ones((1, 3, 1)), r[None, :], gamma)
    res = fs.soft_value_iteration(mdp, tau, kl_weight=eta, prior=mu, tol=1e-12)
    w = mu ** (eta / lam) * np.exp(r / lam)
    assert res.V[0] == pytest.approx(lam * np.log(w.sum()) / (1 - gamma), abs=1e-11)
    np.testing.assert_allclose(res.policy[0], w / w.sum(), rtol=1e-12)


def _frozenlake_lp(mdp):
    """V* of a hard MDP by linear programming (an independent solver)."""
    from scipy.optimize import linprog

    P, R = mdp.to_dense()
    S, A = R.shape
    live = ~mdp.terminal
    rows, rhs = [], []
    for s in np.flatnonzero(live):
        for a in range(A):
            row = -mdp.gamma * P[s, a].copy()
            row[s] += 1.0
            rows.append(-row[live])
            rhs.append(-R[s, a])
    out = linprog(np.ones(live.sum()), A_ub=np.array(rows), b_ub=np.array(rhs),
                  bounds=[(None, None)] * live.sum(), method="highs")
    V = np.zeros(S)
    V[live] = out.x
    return V


@pytest.mark.parametrize("order", ["jacobi", "gauss-seidel"])
def test_frozenlake_8x8_against_linear_programming(order):
    mdp = fs.TabularMDP.from_gymnasium(make_env("FrozenLake", map_name="8x8"), 0.99)
    res = fs.value_iteration(mdp, tol=1e-9, order=order)
    V_lp = _frozenlake_lp(mdp)
    assert res.converged
    np.testing.assert_allclose(res.V, V_lp, atol=1e-7)
    start = np.flatnonzero(mdp.initial)[0]
    assert 0.4 < res.V[start] < 0.6  # known: optimal success probability ~0.54 at gamma 0.99


def _brute_force_finite(mdp, H, tau):
    """Finite-horizon soft value by enumerating all deterministic action sequences? No:
    enumerate all policies' trajectories exactly via recursion over (state, depth)."""
    P, R = mdp.to_dense()
    S, A = R.shape

    def value(s, h):
        if h == 0 or (mdp.terminal is not None and mdp.terminal[s]):
            return 0.0
        q = np.array([R[s, a] + mdp.gamma * sum(P[s, a, t] * value(t, h - 1)
                                                 for t in range(S) if P[s, a, t] > 0)
                      for a in range(A)])
        if tau == 0:
            return q.max()
        return tau * np.log(np.sum(np.exp(q / tau)))

    return np.array([value(s, H) for s in range(S)])


@pytest.mark.parametrize("tau", [0.0, 0.5])
def test_finite_horizon_against_enumeration(tau):
    mdp = dense_random_mdp(4, 2, 1.0, 11, terminal=0.25)
    H = 4
    res = fs.soft_value_iteration(mdp, tau, horizon=H)
    assert res.V.shape == (H + 1, 4) and res.Q.shape == (H, 4, 2)
    np.testing.assert_allclose(res.V[0], _brute_force_finite(mdp, H, tau), rtol=1e-12,
                               atol=1e-12)
    V, Q, pi = ref.finite_horizon(mdp, H, tau)
    np.testing.assert_allclose(res.V, V, atol=1e-12)
    np.testing.assert_allclose(res.Q, Q, atol=1e-12)
    if tau > 0:
        np.testing.assert_allclose(res.policy, pi, atol=1e-12)


def test_finite_horizon_enumerates_action_sequences_deterministic():
    # deterministic MDP: the hard value is the best of all A**H action sequences
    rng = np.random.default_rng(5)
    S, A, H = 3, 2, 3
    nxt = rng.integers(0, S, (S, A))
    P = np.zeros((S, A, S))
    P[np.arange(S)[:, None], np.arange(A)[None, :], nxt] = 1.0
    R = rng.normal(size=(S, A))
    mdp = fs.TabularMDP.from_dense(P, R, 0.9)
    res = fs.soft_value_iteration(mdp, 0.0, horizon=H)
    for s0 in range(S):
        best = -np.inf
        for seq in itertools.product(range(A), repeat=H):
            s, tot = s0, 0.0
            for t, a in enumerate(seq):
                tot += 0.9**t * R[s, a]
                s = nxt[s, a]
            best = max(best, tot)
        assert res.V[0, s0] == pytest.approx(best, abs=1e-12)


def test_terminal_states_are_not_self_loops():
    # terminal state 1 is a zero-reward self-loop in P: with tau > 0 a self-loop
    # would earn tau log|A| / (1 - gamma); a terminal state must stay at 0
    P = np.zeros((2, 3, 2))
    P[0, :, 1] = 1.0
    P[1, :, 1] = 1.0
    R = np.zeros((2, 3))
    gamma, tau = 0.9, 0.5
    term = fs.TabularMDP.from_dense(P, R, gamma, terminal=[1])
    loop = fs.TabularMDP.from_dense(P, R, gamma)
    rt = fs.soft_value_iteration(term, tau, tol=1e-12)
    rl = fs.soft_value_iteration(loop, tau, tol=1e-12)
    assert rt.V[1] == 0.0
    assert rt.V[0] == pytest.approx(tau * np.log(3))
    assert rl.V[1] == pytest.approx(tau * np.log(3) / (1 - gamma))


@pytest.mark.parametrize("scale,tau", [(1e8, 1e-9), (1e-3, 1e3), (1e300, 1.0), (1.0, 1e-300)])
def test_extreme_scales_stay_finite(scale, tau):
    rng = np.random.default_rng(0)
    mdp = dense_random_mdp(6, 3, 0.5, 0).with_rewards(rng.normal(size=(6, 3)) * scale)
    TV, Q, pi = fs.bellman_backup(mdp, np.zeros(6), tau)
    assert np.all(np.isfinite(TV)) and np.all(np.isfinite(pi))
    hard, _, _ = fs.bellman_backup(mdp, np.zeros(6), 0.0)
    # lam -> 0 agrees with the hard max; lam large: tau log A plus the mean
    if tau < 1e-6:
        np.testing.assert_allclose(TV, hard, rtol=1e-12)
    np.testing.assert_allclose(pi.sum(axis=1), 1.0)
    if scale == 1e-3:
        np.testing.assert_allclose(TV, tau * np.log(3) + mdp.rewards.mean(axis=1), rtol=1e-6)


def test_infeasible_actions_get_zero_probability():
    mdp = ZOO["dense_infeasible"]
    res = fs.soft_value_iteration(mdp, 1.0, tol=1e-8)
    assert np.all(res.policy[~mdp.feasible] == 0.0)
    assert np.all(np.isneginf(res.Q[~mdp.feasible]))
    assert np.all(np.isfinite(res.V))


def test_non_convergence_is_reported():
    mdp = fs.gridworld(30, 30, slip=0.1, gamma=0.999)
    res = fs.value_iteration(mdp, tol=1e-10, max_iter=5)
    assert not res.converged and res.n_iter == 5
    assert np.isfinite(res.error_bound) and res.error_bound > 1e-10
    # the bound is honest
    exact = fs.value_iteration(mdp, tol=1e-9, order="gauss-seidel")
    assert np.max(np.abs(res.V - exact.V)) <= res.error_bound + 1e-8


def test_warm_start_needs_fewer_sweeps():
    mdp = ZOO["garnet"]
    cold = fs.soft_value_iteration(mdp, 0.2, tol=1e-10)
    warm = fs.soft_value_iteration(mdp, 0.2, tol=1e-10, V0=cold.V)
    assert warm.n_iter <= 2 and warm.converged
    np.testing.assert_allclose(warm.V, cold.V, atol=2e-10)


def test_gauss_seidel_crosses_grid_faster():
    # from the pessimistic start, alternating sweeps carry values across the grid
    mdp = fs.gridworld(100, 100, slip=0.1, gamma=0.99)
    j = fs.value_iteration(mdp, tol=1e-6)
    g = fs.value_iteration(mdp, tol=1e-6, order="gauss-seidel")
    assert g.n_iter * 3 < j.n_iter
    assert np.max(np.abs(g.V - j.V)) <= g.error_bound + j.error_bound


def test_callback_receives_progress_and_can_stop():
    mdp = fs.gridworld(30, 30, slip=0.1, gamma=0.99)
    seen = []

    def cb(info):
        seen.append(info)
        return info["n_iter"] >= 10

    res = fs.value_iteration(mdp, tol=1e-12, callback=cb)
    assert res.interrupted and not res.converged and 10 <= res.n_iter < 40
    bounds = [s["error_bound"] for s in seen]
    assert all(b > 0 for b in bounds) and seen[-1]["n_iter"] == res.n_iter
    assert res.history["time"].shape == (res.n_iter,)
    assert np.all(np.diff(res.history["time"]) >= 0)


def test_result_object():
    res = fs.soft_value_iteration(ZOO["maze"], 0.1, tol=1e-8)
    np.testing.assert_array_equal(res.action, np.argmax(res.policy, axis=1))
    assert "converged=True" in repr(res) and "certified bound" in res.summary()


@pytest.mark.parametrize(
    "kwargs,exc,pattern",
    [
        ({"temperature": -1.0}, ValueError, "temperature must be >= 0"),
        ({"temperature": "hot"}, TypeError, "temperature must be a real number"),
        ({"temperature": np.nan}, ValueError, "temperature must be finite"),
        ({"kl_weight": -0.1}, ValueError, "kl_weight"),
        ({"tol": 0.0}, ValueError, "tol must be > 0"),
        ({"max_iter": 0}, ValueError, "max_iter must be >= 1"),
        ({"max_iter": 2.5}, TypeError, "max_iter must be an integer"),
        ({"order": "random"}, ValueError, "order must be one of"),
        ({"V0": np.zeros(3)}, ValueError, r"V0 must have shape \(12,\)"),
        ({"V0": np.full(12, np.nan)}, ValueError, "V0 must be finite"),
        ({"horizon": 0}, ValueError, "horizon must be >= 1"),
        ({"prior": np.ones((12, 2))}, ValueError, "prior must have shape"),
        ({"prior": np.full((12, 3), 0.5)}, ValueError, "prior: row of state 0 sums to"),
        ({"prior": -np.ones(3) / 3}, ValueError, "prior must be finite and non-negative"),
        ({"callback": 3}, TypeError, "callback must be callable"),
    ],
)
def test_solver_validation(kwargs, exc, pattern):
    mdp = ZOO["dense"]
    kw = {"temperature": 0.5, **kwargs}
    tau = kw.pop("temperature")
    with pytest.raises(exc, match=pattern):
        fs.soft_value_iteration(mdp, tau, **kw)


def test_solver_rejects_non_mdp_and_gamma_one():
    with pytest.raises(TypeError, match="mdp must be a fastsoft.TabularMDP"):
        fs.value_iteration(np.zeros((3, 3)))
    m = fs.huys_planning_task()
    with pytest.raises(ValueError, match="gamma = 1 needs a finite horizon"):
        fs.value_iteration(m)
    with pytest.raises(ValueError, match=r"V must have shape"):
        fs.bellman_backup(m, np.zeros(3))


def test_prior_without_support_is_rejected():
    mdp = ZOO["dense_infeasible"]
    mu = np.zeros((mdp.n_states, mdp.n_actions))
    # put all mass on an infeasible action of some state: rejected with its (s, a)
    s, a = np.argwhere(~mdp.feasible)[0]
    mu[:, :] = mdp.feasible / mdp.feasible.sum(axis=1, keepdims=True)
    mu[s] = 0.0
    mu[s, a] = 1.0
    with pytest.raises(ValueError, match=rf"prior puts probability 1.0 on infeasible action "
                                         rf"{a} of state {s}: \(s, a\) = \({s}, {a}\)"):
        fs.soft_value_iteration(mdp, 0.1, kl_weight=0.5, prior=mu)


def test_vectorised_exp_matches_numpy():
    from fastsoft import _kernels as K

    rng = np.random.default_rng(0)
    z = -np.concatenate([np.linspace(0, 750, 20001), rng.exponential(5.0, 20000),
                         [np.inf, 0.0, 1e-300, 707.9, 708.1]])
    out = z.copy()
    K._exp_tile(out, np.empty(z.size, dtype=np.int64), z.size)
    expect = np.exp(z)
    kept = z >= -708.0  # below, exp is under 3.3e-308 and taken as exactly 0
    np.testing.assert_allclose(out[kept], expect[kept], rtol=4e-16, atol=0)
    assert np.all(out[~kept] == 0.0) and out[-5] == 0.0
    assert out[-4] == 1.0 and out[-3] == 1.0


@pytest.mark.parametrize("name", ["garnet", "grid", "dense_terminal", "dense_infeasible"])
@pytest.mark.parametrize("tau,eta,use_prior", [(0.5, 0.0, False), (0.2, 0.3, True),
                                               (1e-3, 0.0, False)])
def test_one_jacobi_sweep_matches_reference_backup(name, tau, eta, use_prior):
    # the tiled soft sweep (vectorised exp) against the NumPy operator, elementwise
    mdp = ZOO[name]
    prior = _prior(mdp) if use_prior else None
    V = np.random.default_rng(1).normal(scale=3.0, size=mdp.n_states)
    if mdp.has_terminal:
        V[mdp.terminal] = 0.0  # the solvers pin terminal values to 0
    for parallel in (False, True):
        res = fs.soft_value_iteration(mdp, tau, kl_weight=eta, prior=prior, V0=V, max_iter=1,
                                      tol=1e-300, parallel=parallel)
        TV = ref.bellman_backup(mdp, V, tau, eta, prior)[0]
        # the result is TV shifted by the midpoint of the certificate: undo it
        live = ~mdp.terminal if mdp.has_terminal else np.ones(mdp.n_states, bool)
        shift = res.V[live] - TV[live]
        np.testing.assert_allclose(shift, shift[0], atol=1e-11 * (1 + np.abs(TV).max()))


def test_progress_argument_runs_and_matches(capsys):
    mdp = ZOO["grid"]
    quiet = fs.soft_value_iteration(mdp, 0.2, tol=1e-8)
    shown = fs.soft_value_iteration(mdp, 0.2, tol=1e-8, progress=True)
    np.testing.assert_allclose(shown.V, quiet.V, atol=2e-8)
    assert shown.converged and not shown.interrupted


def test_gauss_seidel_follows_the_greedy_flow():
    # hard sweeps go against the direction the greedy actions move in: a goal in
    # the last cell and its mirror image in the first take the same number of
    # sweeps, far fewer than the accelerated sweeps that keep alternating
    a = fs.value_iteration(fs.gridworld(120, 120, slip=0.1), tol=1e-6, order="gauss-seidel")
    b = fs.value_iteration(fs.gridworld(120, 120, slip=0.1, goals=[(0, 0)], start=None),
                           tol=1e-6, order="gauss-seidel")
    alt = fs.soft_value_iteration(fs.gridworld(120, 120, slip=0.1), 0.0, tol=1e-6,
                                  order="gauss-seidel", acceleration="anderson")
    assert a.converged and b.converged
    assert abs(a.n_iter - b.n_iter) <= 2
    assert a.n_iter < 0.75 * alt.n_iter
    np.testing.assert_allclose(a.V, alt.V, atol=a.error_bound + alt.error_bound)
