"""Trajectory sampling, Monte Carlo evaluation and occupancy measures (fastsoft.sampling)."""

import numpy as np
import pytest
from conftest import SAMPLING_MDPS, dense_random_mdp
from hypothesis import given
from hypothesis import strategies as st

import fastsoft as fs
from fastsoft.reference import sampling as ref
from fastsoft.sampling import (
    Occupancy,
    Trajectories,
    as_initial,
    monte_carlo_evaluation,
    occupancy,
    sample_trajectories,
)


def _random_policy(mdp, seed, T=None):
    rng = np.random.default_rng(seed)
    shape = (mdp.n_states, mdp.n_actions) if T is None else (T, mdp.n_states, mdp.n_actions)
    p = rng.random(shape) * mdp.feasible
    return p / p.sum(axis=-1, keepdims=True)


def _uniform_policy(mdp):
    f = mdp.feasible.astype(float)
    return f / f.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def mdps():
    return SAMPLING_MDPS


# ---------------------------------------------------------------- sampling kernel
@pytest.mark.parametrize("name", ["grid", "terminal_infeasible", "garnet", "huys"])
def test_kernel_matches_reference_exactly(mdps, name):
    mdp = mdps[name]
    pi = _random_policy(mdp, 0)
    tr = sample_trajectories(mdp, pi, n_episodes=103, horizon=12, seed=42)
    s, a, r, n = ref.sample_trajectories(mdp, pi, 103, 12, 42, as_initial(mdp, None))
    np.testing.assert_array_equal(tr.states, s)
    np.testing.assert_array_equal(tr.actions, a)
    np.testing.assert_array_equal(tr.rewards, r)
    np.testing.assert_array_equal(tr.lengths, n)


def test_time_dependent_and_deterministic_policies_match_reference(mdps):
    mdp = mdps["terminal_infeasible"]
    pol = _random_policy(mdp, 1, T=8)
    tr = sample_trajectories(mdp, pol, n_episodes=50, horizon=6, seed=7, initial=0)
    init = np.eye(mdp.n_states)[0]
    s, a, r, n = ref.sample_trajectories(mdp, pol, 50, 6, 7, init)
    np.testing.assert_array_equal(tr.states, s)
    np.testing.assert_array_equal(tr.actions, a)
    acts = np.argmax(mdp.feasible, axis=1)
    tr = sample_trajectories(mdp, acts, n_episodes=30, horizon=6, seed=8)
    s, a, _, _ = ref.sample_trajectories(mdp, np.eye(mdp.n_actions)[acts], 30, 6, 8,
                                         as_initial(mdp, None))
    np.testing.assert_array_equal(tr.states, s)
    np.testing.assert_array_equal(tr.actions, a)
    live = tr.actions >= 0
    np.testing.assert_array_equal(tr.actions[live], acts[tr.states[:, :-1][live]])


def test_time_dependent_policy_is_followed():
    mdp = fs.gridworld(5, 5, goals=[(4, 4)], start=(0, 0))
    T = 4
    pol = np.zeros((T, 25, 4))
    pol[:, :, 1] = 1.0  # down
    pol[2:, :, :] = 0.0
    pol[2:, :, 3] = 1.0  # right from t = 2 on
    tr = sample_trajectories(mdp, pol, n_episodes=5, horizon=T, seed=0)
    np.testing.assert_array_equal(tr.actions, np.tile([1, 1, 3, 3], (5, 1)))
    np.testing.assert_array_equal(tr.states[0], [0, 5, 10, 11, 12])


def test_thread_count_does_not_change_results(mdps, threads):
    mdp = mdps["garnet"]
    pi = _random_policy(mdp, 2)
    out = []
    for th in threads.counts:
        threads(th)
        tr = sample_trajectories(mdp, pi, n_episodes=257, horizon=40, seed=11)
        mc = monte_carlo_evaluation(mdp, pi, n_episodes=257, horizon=40, seed=11,
                                    temperature=0.3)
        out.append((tr, mc))
    (t1, m1), (t2, m2) = out
    for f in ("states", "actions", "rewards", "lengths"):
        np.testing.assert_array_equal(getattr(t1, f), getattr(t2, f))
    np.testing.assert_array_equal(m1.returns, m2.returns)


def test_seed_semantics(mdps):
    mdp = mdps["grid"]
    pi = _uniform_policy(mdp)
    a = sample_trajectories(mdp, pi, n_episodes=20, horizon=10, seed=3)
    b = sample_trajectories(mdp, pi, n_episodes=20, horizon=10, seed=np.random.default_rng(3))
    c = sample_trajectories(mdp, pi, n_episodes=20, horizon=10, seed=4)
    np.testing.assert_array_equal(a.states, b.states)
    assert not np.array_equal(a.states, c.states)
    # a prefix of episodes does not depend on how many are drawn
    d = sample_trajectories(mdp, pi, n_episodes=7, horizon=10, seed=3)
    np.testing.assert_array_equal(a.states[:7], d.states)


def test_terminal_and_padding_conventions(mdps):
    mdp = mdps["terminal_infeasible"]
    term = mdp.terminal
    pi = _random_policy(mdp, 3)
    H = 4
    tr = sample_trajectories(mdp, pi, n_episodes=400, horizon=H, seed=0)
    assert tr.states.shape == (400, H + 1) and tr.actions.shape == (400, H)
    assert tr.actions.dtype == np.int32 and tr.lengths.dtype == np.int64
    for i in range(400):
        L = tr.lengths[i]
        s = tr.states[i]
        assert np.all(s[: L + 1] >= 0) and np.all(s[L + 1:] == -1)
        assert np.all(tr.actions[i, :L] >= 0) and np.all(tr.actions[i, L:] == -1)
        assert np.all(tr.rewards[i, L:] == 0.0)
        assert not term[s[:L]].any()  # no action is taken in a terminal state
        if L < H:
            assert term[s[L]]  # ended by entering a terminal state
        acts = tr.actions[i, :L]
        np.testing.assert_array_equal(tr.rewards[i, :L], mdp.rewards[s[:L], acts])
        assert mdp.feasible[s[:L], acts].all()
    assert (tr.lengths < H).any() and (tr.lengths == H).any()
    # starting in a terminal state: length 0
    t0 = int(np.flatnonzero(term)[0])
    with pytest.warns(RuntimeWarning, match="every start state is terminal"):
        tr0 = sample_trajectories(mdp, pi, n_episodes=3, horizon=4, seed=0, initial=t0)
    np.testing.assert_array_equal(tr0.lengths, 0)
    np.testing.assert_array_equal(tr0.states[:, 0], t0)
    assert np.all(tr0.states[:, 1:] == -1) and np.all(tr0.actions == -1)
    assert np.all(tr0.rewards == 0)
    assert tr.n_steps == tr.lengths.sum() and tr.n_episodes == 400 and tr.horizon == H
    assert "Trajectories" in repr(tr)


def test_empirical_distributions_match_model():
    mdp = dense_random_mdp(5, 3, 0.9, 7)
    pi = _random_policy(mdp, 4)
    n = 40_000
    tr = sample_trajectories(mdp, pi, n_episodes=n, horizon=1, seed=1, initial=2)
    P, _ = mdp.to_dense()
    # joint frequency of (a_0, s_1) against pi(a|2) P(s'|2, a), 5 standard errors
    joint = np.zeros((3, 5))
    np.add.at(joint, (tr.actions[:, 0], tr.states[:, 1]), 1.0 / n)
    expect = pi[2][:, None] * P[2]
    se = np.sqrt(expect * (1 - expect) / n)
    assert np.all(np.abs(joint - expect) <= 5 * se + 1e-12)
    # start distribution
    init = np.array([0.1, 0.0, 0.6, 0.3, 0.0])
    tr = sample_trajectories(mdp, pi, n_episodes=n, horizon=0, seed=2, initial=init)
    freq = np.bincount(tr.states[:, 0], minlength=5) / n
    assert freq[1] == 0 and freq[4] == 0
    assert np.all(np.abs(freq - init) <= 5 * np.sqrt(init * (1 - init) / n) + 1e-12)


def test_out_buffers_are_reused(mdps):
    mdp = mdps["grid"]
    pi = _uniform_policy(mdp)
    a = sample_trajectories(mdp, pi, n_episodes=40, horizon=9, seed=1)
    buf = sample_trajectories(mdp, pi, n_episodes=40, horizon=9, seed=2)
    ptr = buf.states.ctypes.data
    b = sample_trajectories(mdp, pi, n_episodes=40, horizon=9, seed=1, out=buf)
    assert b is buf and b.states.ctypes.data == ptr
    for f in ("states", "actions", "rewards", "lengths"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    with pytest.raises(ValueError, match=r"out.states .* shape \(41, 10\)"):
        sample_trajectories(mdp, pi, n_episodes=41, horizon=9, seed=1, out=buf)
    with pytest.raises(TypeError, match="Trajectories"):
        sample_trajectories(mdp, pi, n_episodes=40, horizon=9, seed=1, out=(1, 2))


def test_discounted_returns_helper(mdps):
    mdp = mdps["grid"]
    tr = sample_trajectories(mdp, _uniform_policy(mdp), n_episodes=30, horizon=25, seed=0)
    np.testing.assert_allclose(tr.discounted_returns(0.9),
                               ref.discounted_returns(tr.rewards, tr.lengths, 0.9), rtol=1e-12)


# ------------------------------------------------------------- Monte Carlo evaluation
def test_returns_kernel_replays_sample_stream(mdps):
    mdp = mdps["terminal_infeasible"]
    pi = _random_policy(mdp, 5)
    tr = sample_trajectories(mdp, pi, n_episodes=99, horizon=20, seed=9)
    mc = monte_carlo_evaluation(mdp, pi, n_episodes=99, horizon=20, seed=9, temperature=0.4,
                                kl_weight=0.2)
    np.testing.assert_array_equal(mc.lengths, tr.lengths)
    from scipy.special import xlogy

    mu = _uniform_policy(mdp)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(pi > 0, pi * np.log(pi / mu), 0.0).sum(axis=1)
    bonus = (0.4 * -xlogy(pi, pi).sum(axis=1) - 0.2 * kl)[None]
    expect = ref.discounted_returns(tr.rewards, tr.lengths, mdp.gamma, tr.states, bonus)
    np.testing.assert_allclose(mc.returns, expect, rtol=1e-12, atol=1e-12)


def _policy_values(mdp, pi, tau=0.0, eta=0.0):
    """Reference values, and fastsoft.policy_evaluation's when it exists."""
    V, _ = ref.policy_evaluation(mdp, pi, tau, eta)
    pe = getattr(fs, "policy_evaluation", None)
    if pe is not None:
        V2 = pe(mdp, pi, temperature=tau, kl_weight=eta).V
        np.testing.assert_allclose(V2, V, atol=1e-7)
    return V


@pytest.mark.parametrize("tau,eta", [(0.0, 0.0), (0.5, 0.0), (0.2, 0.7)])
def test_monte_carlo_agrees_with_policy_evaluation(mdps, tau, eta):
    mdp = mdps["terminal_infeasible"]
    pi = _random_policy(mdp, 6)
    V = _policy_values(mdp, pi, tau, eta)
    mc = monte_carlo_evaluation(mdp, pi, n_episodes=4000, horizon=150, seed=1, temperature=tau,
                                kl_weight=eta, per_state=True)
    assert mc.value.shape == (9,) and mc.returns.shape == (9, 4000)
    assert mc.bias_bound < 1e-6
    live = ~mdp.terminal
    z = np.abs(mc.value[live] - V[live]) / mc.stderr[live]
    assert np.all(z < 4.5), z
    np.testing.assert_array_equal(mc.value[~live], 0.0)
    # from the start distribution
    init = as_initial(mdp, None)
    mc0 = monte_carlo_evaluation(mdp, pi, n_episodes=20_000, horizon=150, seed=2,
                                 temperature=tau, kl_weight=eta)
    assert abs(mc0.value - init @ V) < 4.5 * mc0.stderr
    assert np.ndim(mc0.value) == 0 and "MonteCarloEstimate" in repr(mc0)


def test_monte_carlo_gridworld_time_dependent_equals_stationary(mdps):
    mdp = mdps["grid"]
    pi = _random_policy(mdp, 7)
    V = _policy_values(mdp, pi)
    a = monte_carlo_evaluation(mdp, pi, n_episodes=3000, horizon=200, seed=5)
    b = monte_carlo_evaluation(mdp, np.broadcast_to(pi, (200,) + pi.shape), n_episodes=3000,
                               horizon=200, seed=5)
    np.testing.assert_array_equal(a.returns, b.returns)
    assert abs(a.value - V[0]) < 4.5 * a.stderr + a.bias_bound


def test_monte_carlo_gamma_one_bias_bound():
    mdp = fs.huys_planning_task(3)
    pi = _uniform_policy(mdp)
    mc = monte_carlo_evaluation(mdp, pi, n_episodes=100, horizon=3, seed=0)
    assert mc.bias_bound == np.inf
    np.testing.assert_array_equal(mc.lengths, 3)


# ------------------------------------------------------------------------ occupancy
@pytest.mark.parametrize("name", ["grid", "terminal_infeasible", "garnet"])
def test_discounted_occupancy_matches_reference(mdps, name):
    mdp = mdps[name]
    pi = _random_policy(mdp, 8)
    init = as_initial(mdp, None)
    occ = occupancy(mdp, pi)
    d, dsa = ref.occupancy_discounted(mdp, pi, init)
    np.testing.assert_allclose(occ.state, d, atol=1e-12)
    np.testing.assert_allclose(occ.state_action, dsa, atol=1e-12)
    it = occupancy(mdp, pi, method="iterate", tol=1e-13)
    np.testing.assert_allclose(it.state, d, atol=1e-10)
    assert isinstance(occ, Occupancy) and occ.horizon is None and "Occupancy" in repr(occ)
    # (1 - gamma) initial @ V^pi = sum d(s, a) R(s, a)
    V = _policy_values(mdp, pi)
    R = np.where(mdp.feasible, mdp.rewards, 0.0)
    assert abs((occ.state_action * R).sum() - (1 - mdp.gamma) * init @ V) < 1e-10


def test_occupancy_with_terminal_states_normalization(mdps):
    mdp = mdps["terminal_infeasible"]
    pi = _random_policy(mdp, 9)
    occ = occupancy(mdp, pi)
    assert 0 < occ.state.sum() < 1
    np.testing.assert_array_equal(occ.state_action[mdp.terminal], 0.0)
    # the entry into a terminal state counts: mass there = (1-g) sum_t g^t P(enter at t)
    H = 400
    fin = occupancy(mdp, pi, horizon=H)
    w = (1 - mdp.gamma) * mdp.gamma ** np.arange(H + 1)
    np.testing.assert_allclose(occ.state, w @ fin.state, atol=1e-12)
    # sum d = 1 - E[gamma^(T_end + 1)]: compare with sampled episode ends
    tr = sample_trajectories(mdp, pi, n_episodes=20_000, horizon=H, seed=0)
    ended = tr.lengths < H
    x = np.where(ended, 1 - mdp.gamma ** (tr.lengths + 1.0), 1.0)
    assert abs(occ.state.sum() - x.mean()) < 5 * x.std() / np.sqrt(x.size)


def test_finite_horizon_marginals(mdps):
    mdp = mdps["terminal_infeasible"]
    pol = _random_policy(mdp, 10, T=6)
    init = as_initial(mdp, None)
    fin = occupancy(mdp, pol, horizon=6)
    st_, sa = ref.occupancy_finite(mdp, pol, init, 6)
    assert fin.state.shape == (7, 9) and fin.state_action.shape == (6, 9, 3)
    np.testing.assert_allclose(fin.state, st_, atol=1e-14)
    np.testing.assert_allclose(fin.state_action, sa, atol=1e-14)
    np.testing.assert_allclose(fin.state[0], init)
    assert np.all(np.diff(fin.state.sum(axis=1)) <= 1e-12)  # mass only leaves
    # against the empirical frequencies of sampled episodes
    n = 20_000
    tr = sample_trajectories(mdp, pol, n_episodes=n, horizon=6, seed=4)
    for t in range(7):
        freq = np.bincount(tr.states[:, t][tr.states[:, t] >= 0], minlength=9) / n
        se = np.sqrt(fin.state[t] * (1 - fin.state[t]) / n)
        assert np.all(np.abs(freq - fin.state[t]) <= 5 * se + 1e-12)


@given(S=st.integers(2, 12), A=st.integers(1, 4), k=st.integers(1, 4), seed=st.integers(0, 10**6),
       gamma=st.floats(0.0, 0.99))
def test_occupancy_is_a_distribution_without_terminals(S, A, k, seed, gamma):
    mdp = fs.random_mdp(S, A, min(k, S), gamma=gamma, seed=seed)
    pi = _random_policy(mdp, seed)
    occ = occupancy(mdp, pi)
    assert abs(occ.state.sum() - 1.0) < 1e-10
    assert np.all(occ.state >= -1e-15)
    np.testing.assert_allclose(occ.state_action.sum(axis=1), occ.state, atol=1e-14)
    fin = occupancy(mdp, pi, horizon=5)
    np.testing.assert_allclose(fin.state.sum(axis=1), 1.0, atol=1e-12)


@given(seed=st.integers(0, 10**6), gamma=st.floats(0.0, 0.95))
def test_occupancy_is_stationary_flow(seed, gamma):
    """d = (1 - gamma) mu + gamma P_pi^T d (terminal rows zeroed): the defining equation."""
    mdp = dense_random_mdp(6, 3, gamma, seed % 1000, terminal=0.3, infeasible=0.3)
    pi = _random_policy(mdp, seed)
    init = as_initial(mdp, None)
    occ = occupancy(mdp, pi)
    P, _ = mdp.to_dense()
    flow = np.einsum("sa,sat->t", occ.state_action, P)
    np.testing.assert_allclose(occ.state, (1 - gamma) * init + gamma * flow, atol=1e-12)


# ------------------------------------------------------------------------- validation
def test_validation_errors(mdps):
    mdp = mdps["terminal_infeasible"]
    S, A = mdp.n_states, mdp.n_actions
    pi = _random_policy(mdp, 0)
    kw = dict(n_episodes=5, horizon=3, seed=0)
    with pytest.raises(TypeError, match="mdp"):
        sample_trajectories("mdp", pi, **kw)
    with pytest.raises(ValueError, match="n_episodes"):
        sample_trajectories(mdp, pi, n_episodes=-1, horizon=3)
    with pytest.raises(TypeError, match="n_episodes"):
        sample_trajectories(mdp, pi, n_episodes=2.5, horizon=3)
    with pytest.raises(ValueError, match="horizon"):
        sample_trajectories(mdp, pi, n_episodes=2, horizon=-1)
    with pytest.raises(TypeError, match="horizon"):
        sample_trajectories(mdp, pi, n_episodes=2, horizon=True)
    with pytest.raises(ValueError, match="shape"):
        sample_trajectories(mdp, pi[:, :2], **kw)
    with pytest.raises(ValueError, match="shape"):
        sample_trajectories(mdp, pi[None, None], **kw)
    with pytest.raises(TypeError, match="policy"):
        sample_trajectories(mdp, pi > 0, **kw)
    with pytest.raises(TypeError, match="policy"):
        sample_trajectories(mdp, np.full((S, A), "x"), **kw)
    live = int(np.flatnonzero(~mdp.terminal)[0])
    bad = pi.copy()
    bad[live] *= 2
    with pytest.raises(ValueError, match=f"state {live} sum"):
        sample_trajectories(mdp, bad, **kw)
    bad = pi.copy()
    bad[live, 0] = np.nan
    with pytest.raises(ValueError, match=f"state {live}"):
        sample_trajectories(mdp, bad, **kw)
    s_inf, a_inf = np.argwhere(~mdp.feasible & ~mdp.terminal[:, None])[0]
    bad = pi.copy()
    bad[s_inf] = 0.0
    bad[s_inf, a_inf] = 1.0
    with pytest.raises(ValueError, match=f"infeasible action {a_inf} of state {s_inf}"):
        sample_trajectories(mdp, bad, **kw)
    # terminal rows are not validated
    ok = pi.copy()
    ok[mdp.terminal] = 7.0
    sample_trajectories(mdp, ok, **kw)
    # time-dependent
    with pytest.raises(ValueError, match="horizon = 3"):
        sample_trajectories(mdp, np.stack([pi, pi]), **kw)
    bad3 = np.stack([pi, pi, pi])
    bad3[2, live] *= 0.5
    with pytest.raises(ValueError, match=f"state {live} at time 2"):
        sample_trajectories(mdp, bad3, **kw)
    with pytest.raises(ValueError, match="stationary"):
        occupancy(mdp, np.stack([pi, pi]))
    # deterministic policies
    acts = np.argmax(mdp.feasible, axis=1)
    bad_a = acts.copy()
    bad_a[s_inf] = a_inf
    with pytest.raises(ValueError, match=f"infeasible at state {s_inf}"):
        sample_trajectories(mdp, bad_a, **kw)
    bad_a = acts.copy()
    bad_a[live] = A
    with pytest.raises(ValueError, match=f"out of range .* at state {live}"):
        sample_trajectories(mdp, bad_a, **kw)
    with pytest.raises(ValueError, match="integer"):
        sample_trajectories(mdp, acts[:-1], **kw)
    # initial
    with pytest.raises(ValueError, match="initial"):
        sample_trajectories(mdp, pi, initial=S, **kw)
    with pytest.raises(ValueError, match="initial"):
        sample_trajectories(mdp, pi, initial=np.ones(S), **kw)
    with pytest.raises(ValueError, match="initial"):
        sample_trajectories(mdp, pi, initial=np.ones(S + 1) / (S + 1), **kw)
    neg = np.full(S, 2.0 / S)
    neg[3] = -1.0
    with pytest.raises(ValueError, match="state 3"):
        sample_trajectories(mdp, pi, initial=neg, **kw)
    # Monte Carlo
    with pytest.raises(ValueError, match="per_state"):
        monte_carlo_evaluation(mdp, pi, n_episodes=5, horizon=3, initial=0, per_state=True)
    with pytest.raises(ValueError, match="n_episodes"):
        monte_carlo_evaluation(mdp, pi, n_episodes=1, horizon=3)
    with pytest.raises(ValueError, match="temperature"):
        monte_carlo_evaluation(mdp, pi, n_episodes=5, horizon=3, temperature=-1.0)
    with pytest.raises(ValueError, match="kl_weight"):
        monte_carlo_evaluation(mdp, pi, n_episodes=5, horizon=3, kl_weight=-1.0)
    prior = _uniform_policy(mdp)
    s0 = int(np.flatnonzero(~mdp.terminal & (mdp.feasible.sum(axis=1) >= 2))[0])
    a_pos = int(np.argmax(pi[s0] > 0))
    prior[s0] = mdp.feasible[s0] * 1.0
    prior[s0, a_pos] = 0.0
    prior[s0] /= prior[s0].sum()
    with pytest.raises(ValueError, match=f"action {a_pos} of state {s0}"):
        monte_carlo_evaluation(mdp, pi, n_episodes=5, horizon=3, kl_weight=1.0, prior=prior)
    with pytest.raises(ValueError, match="prior"):
        monte_carlo_evaluation(mdp, pi, n_episodes=5, horizon=3, kl_weight=1.0,
                               prior=np.ones((S, A)))
    # occupancy
    with pytest.raises(ValueError, match="method"):
        occupancy(mdp, pi, method="magic")
    with pytest.raises(ValueError, match="gamma < 1"):
        occupancy(fs.huys_planning_task(3), _uniform_policy(fs.huys_planning_task(3)))
    with pytest.raises(ValueError, match="horizon"):
        occupancy(mdp, pi, horizon=-2)
    # non-convergence is reported like the solvers', not raised
    short = occupancy(mdp, pi, method="iterate", max_iter=2)
    full = occupancy(mdp, pi, method="direct")
    assert not short.converged and short.n_iter == 2 and short.status == 1
    assert short.message.startswith("max_iter reached")
    assert np.abs(short.state - full.state).sum() <= short.error_bound
    done = occupancy(mdp, pi, method="iterate", tol=1e-12)
    assert done.converged and done.message == "converged"
    assert np.abs(done.state - full.state).sum() <= done.error_bound
    with pytest.raises(ValueError, match="tol"):
        occupancy(mdp, pi, method="iterate", tol=0.0)
    with pytest.raises(ValueError, match="max_iter"):
        occupancy(mdp, pi, method="iterate", max_iter=0)
    with pytest.raises(ValueError, match=r"shape \(T, 9, 3\)"):
        sample_trajectories(mdp, np.ones((3, S, A + 1)) / (A + 1), **kw)
    neg_prior = _uniform_policy(mdp)
    neg_prior[live] = -neg_prior[live]
    with pytest.raises(ValueError, match=rf"prior must be finite and non-negative; first "
                                         rf"offending \(s, a\) = \({live}, "):
        monte_carlo_evaluation(mdp, pi, n_episodes=5, horizon=3, kl_weight=1.0, prior=neg_prior)
    tr = sample_trajectories(mdp, pi, **kw)
    with pytest.raises(ValueError, match="gamma"):
        tr.discounted_returns(1.5)


def test_result_types(mdps):
    mdp = mdps["grid"]
    tr = sample_trajectories(mdp, _uniform_policy(mdp), n_episodes=2, horizon=2, seed=0)
    assert isinstance(tr, Trajectories)
    assert tr.states.dtype == mdp.indices.dtype
    empty = sample_trajectories(mdp, _uniform_policy(mdp), n_episodes=0, horizon=5, seed=0)
    assert empty.states.shape == (0, 6) and empty.n_steps == 0


# ------------------------------------------------------------------ random stream
_M64 = (1 << 64) - 1


def _unmix64(z):
    """Inverse of the SplitMix64 finalizer (``fastsoft.reference.sampling._mix64``)."""
    z ^= (z >> 31) ^ (z >> 62)
    z = (z * pow(ref._MIX2, -1, 1 << 64)) & _M64
    z ^= (z >> 27) ^ (z >> 54)
    z = (z * pow(ref._MIX1, -1, 1 << 64)) & _M64
    z ^= (z >> 30) ^ (z >> 60)
    return z


def _key_for_draw(z, counter):
    """A stream key whose episode 0 has the 64-bit word ``z`` as draw ``counter``."""
    base = (_unmix64(z) - (counter + 1) * ref._GOLDEN) & _M64
    key = _unmix64(base)  # episode 0: base = mix64(key ^ 0)
    assert ref.splitmix64(key, 0, counter) == z
    return key


def test_counter_based_stream_matches_reference_and_is_uniform():
    from scipy import stats

    from fastsoft.sampling import _draw, _episode_base, _key, _uniform, _uniform_pair

    key = _key(123)
    assert int(key) == ref.stream_key(123)
    for ep, k in [(0, 0), (1, 0), (0, 1), (12345, 678), (2**40, 3), (7, 2**31)]:
        base = np.uint64(_episode_base(key, ep))
        z = ref.splitmix64(int(key), ep, k)
        assert int(_draw(base, k)) == z
        assert _uniform(base, k) == ref.splitmix_uniform(int(key), ep, k) == (z >> 11) / 2.0**53
        hi, lo = _uniform_pair(base, k)
        assert (hi, lo) == ref.splitmix_uniform_pair(int(key), ep, k)
        assert (hi, lo) == ((z >> 32) / 2.0**32, (z & 0xFFFFFFFF) / 2.0**32)
    pairs = np.array([ref.splitmix_uniform_pair(int(key), ep, k)
                      for ep in range(200) for k in range(1, 101)])
    u53 = np.array([ref.splitmix_uniform(int(key), ep, 0) for ep in range(2000)])
    for u in (pairs[:, 0], pairs[:, 1], u53):
        assert np.all((u >= 0) & (u < 1))
        assert stats.kstest(u, "uniform").pvalue > 1e-4
    # the two halves of a draw, neighbouring episodes and neighbouring draws are not correlated
    assert abs(np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1]) < 0.03
    for h in (0, 1):
        a = pairs[:, h].reshape(200, 100)
        assert abs(np.corrcoef(a[:-1].ravel(), a[1:].ravel())[0, 1]) < 0.03
        assert abs(np.corrcoef(a[:, :-1].ravel(), a[:, 1:].ravel())[0, 1]) < 0.03


@pytest.mark.parametrize("t,z,first_action,first_successor", [
    (0, _M64, False, False),                 # first step, both uniforms 1 - 2**-32
    (0, 0, True, True),                      # both uniforms exactly 0
    (4, 0xFFFFFFFF_00000000, False, True),   # last step; high half -> action
    (4, 0x00000000_FFFFFFFF, True, False),   # low half -> successor
])
def test_step_draw_edge_values_match_reference(monkeypatch, t, z, first_action,
                                               first_successor):
    """Draw ``t + 1`` forced to ``z``: extreme uniforms select the extreme positive entries."""
    import fastsoft.sampling as sampling

    S, A, H = 3, 4, 5
    P = np.zeros((S, A, S))
    P[:, :, 0], P[:, :, 2] = 0.3, 0.7  # successor 1 has probability 0 (not stored)
    mdp = fs.TabularMDP.from_dense(P, np.arange(S * A, dtype=float).reshape(S, A), 0.9)
    # zero-probability first and last actions; the row sums to 1 - 1e-9 < 1 - 2**-32
    pi = np.tile([0.0, 0.3, 0.7 - 1e-9, 0.0], (S, 1))
    key = _key_for_draw(z, t + 1)
    monkeypatch.setattr(sampling, "_key", lambda seed: np.uint64(key))
    tr = sample_trajectories(mdp, pi, n_episodes=3, horizon=H, seed=0, initial=0)
    s, a, r, n = ref.sample_trajectories(mdp, pi, 3, H, None, np.eye(S)[0], key=key)
    np.testing.assert_array_equal(tr.states, s)
    np.testing.assert_array_equal(tr.actions, a)
    np.testing.assert_array_equal(tr.rewards, r)
    np.testing.assert_array_equal(tr.lengths, n)
    assert tr.actions[0, t] == (1 if first_action else 2)
    assert tr.states[0, t + 1] == (0 if first_successor else 2)
    mc = monte_carlo_evaluation(mdp, pi, n_episodes=3, horizon=H, seed=0, initial=0)
    np.testing.assert_allclose(mc.returns, tr.discounted_returns(mdp.gamma), rtol=1e-12)


def test_row_cumsum_matches_reference(mdps):
    from fastsoft.sampling import row_cumsum

    for mdp in mdps.values():
        np.testing.assert_array_equal(row_cumsum(mdp), ref.row_cumsum(mdp.indptr, mdp.probs))
