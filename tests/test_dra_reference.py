"""DRA kernels vs the plain Python reference loop, given the same random streams."""

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastsoft as fs
from fastsoft import dra
from fastsoft.dra import _kernels
from fastsoft.reference import dra as rdra

MAZE = dict(dra.MAZE_PARAMS, n_episodes=4, max_steps=300)

OPTIONS = [
    {},
    dict(psi="q"),
    dict(psi="return"),
    dict(cost="access"),
    dict(entropy_bonus=True),
    dict(psi="q", cost="access", entropy_bonus=True),
    dict(update="q_learning"),
    dict(allocation="equal"),
    dict(allocation="frequency"),
    dict(allocation="stakes", cost="access"),
]


def assert_same(a, b, *, rtol=1e-12):
    """Same trajectories (exact step counts and returns) and the same learned memories."""
    np.testing.assert_array_equal(a.n_steps, b.n_steps)
    np.testing.assert_array_equal(a.state_visits, b.state_visits)
    np.testing.assert_allclose(a.returns, b.returns, rtol=0, atol=1e-12)
    for name in ("qbar", "sigma"):
        x, y = getattr(a, name), getattr(b, name)
        scale = max(1.0, float(np.abs(y).max()))
        np.testing.assert_allclose(x, y, rtol=0, atol=rtol * scale, err_msg=name)
    np.testing.assert_allclose(a.sigma_scalar, b.sigma_scalar, rtol=rtol, atol=0)
    np.testing.assert_array_equal(a.history.episode, b.history.episode)
    for name in ("reward", "cost", "entropy_term", "objective", "state_entropy"):
        x, y = getattr(a.history, name), getattr(b.history, name)
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-9, err_msg=name)


def test_numba_generator_draws_numpys_stream():
    """The contract both implementations rely on: numba's Generator methods draw NumPy's stream."""
    out = np.empty(3000)

    @numba.njit
    def draws(rng, out):
        for i in range(0, out.shape[0], 3):
            out[i] = rng.standard_normal()
            out[i + 1] = rng.standard_normal()
            out[i + 2] = rng.random()

    g1, g2 = np.random.default_rng(42), np.random.default_rng(42)
    draws(g1, out)
    ref = np.empty_like(out)
    for i in range(0, out.shape[0], 3):
        ref[i : i + 2] = g2.standard_normal(2)  # a vector draw = consecutive scalar draws
        ref[i + 2] = g2.random()
    np.testing.assert_array_equal(out, ref)
    assert g1.bit_generator.state == g2.bit_generator.state  # the kernel advanced the state


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items())
                         or "original")
def test_maze_kernel_matches_reference(opts):
    m = fs.mattar_daw_maze()
    kw = dict(MAZE, seed=11, eval_every=2, n_eval=3, **opts)
    # psi="return" multiplies score sums by returns of order 100: rounding is amplified
    rtol = 1e-10 if opts.get("psi") == "return" else 1e-12
    assert_same(dra.train(m, **kw), rdra.train(m, **kw), rtol=rtol)


def test_huys_kernel_matches_reference():
    m = fs.huys_planning_task(4)
    kw = dict(dra.HUYS_PARAMS, alpha_q=0.1, alpha_sigma=1.0, n_episodes=20, n_traj=3,
              seed=5, eval_every=7, n_eval=4, n_runs=2)
    a, b = dra.train(m, **kw), rdra.train(m, **kw)
    assert_same(a, b)
    assert a.qbar.shape == (2, 30, 2)


def test_switch_kernel_matches_reference():
    m = fs.mattar_daw_maze()
    kw = dict(MAZE, n_episodes=6, seed=2, switch_episode=3, eval_every=3, n_eval=2)
    a, b = dra.train(m, **kw), rdra.train(m, **kw)
    assert_same(a, b)
    # after the switch (0, 7) is open and (0, 6) is the terminal goal
    assert a.memories[7].all() and not a.memories[6].any()


def test_estimate_gradient_kernel_matches_reference():
    m = fs.mattar_daw_maze()
    rng = np.random.default_rng(0)
    qbar = rng.normal(size=(m.n_states, 4))
    sigma = rng.uniform(0.5, 4.0, size=(m.n_states, 4))
    for psi in ("advantage", "q", "return"):
        kw = dict(beta=2.0, lam=0.3, sigma_base=5.0, n_traj=4, psi=psi, cost="access",
                  entropy_bonus=True, max_steps=60, seed=9)
        a = dra.estimate_gradient(m, qbar, sigma, **kw)
        b = rdra.estimate_gradient(m, qbar, sigma, **kw)
        assert a.n_steps == b.n_steps
        np.testing.assert_array_equal(a.visits, b.visits)
        for name in ("reward", "entropy", "cost"):
            np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12,
                                       atol=1e-12, err_msg=name)


@st.composite
def episodic_mdps(draw):
    S = draw(st.integers(2, 6))
    A = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    P = rng.random((S, A, S)) * (rng.random((S, A, S)) < 0.6)
    P[..., -1] += 0.05  # the last state is terminal and reachable from everywhere
    P /= P.sum(axis=2, keepdims=True)
    R = np.round(rng.normal(size=(S, A)), 2)
    infeasible = rng.random((S, A)) < 0.25
    infeasible[np.arange(S), rng.integers(0, A, S)] = False
    R[infeasible] = -np.inf
    terminal = np.zeros(S, dtype=bool)
    terminal[-1] = True
    init = rng.random(S) * (rng.random(S) < 0.7)
    init[0] += 0.1
    init[-1] = 0.0
    return fs.TabularMDP.from_dense(P, R, 0.95, terminal=terminal, initial=init / init.sum())


@settings(max_examples=15, deadline=None)
@given(
    mdp=episodic_mdps(),
    opts=st.sampled_from(OPTIONS),
    beta=st.floats(0.5, 5.0),
    sigma0=st.floats(0.1, 3.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_mdps_kernel_matches_reference(mdp, opts, beta, sigma0, seed):
    """Stochastic transitions, infeasible actions, several start states, truncation."""
    kw = dict(beta=beta, lam=0.2, sigma_base=2.0, sigma0=sigma0, alpha_q=0.2, alpha_sigma=0.05,
              n_episodes=3, n_traj=2, max_steps=25, seed=seed, eval_every=2, n_eval=2, **opts)
    a, b = dra.train(mdp, **kw), rdra.train(mdp, **kw)
    assert_same(a, b, rtol=1e-10)
    # infeasible actions: never updated
    inf = ~np.isfinite(mdp.rewards)
    assert np.all(a.qbar[:, inf] == 0.0) and np.all(a.sigma[:, inf] == sigma0)


def test_sample_action_rounding_fallback():
    """``u`` above the rounded total picks the last action with p > 0 (as the reference does)."""
    p = np.array([0.3, 0.3, 0.0])  # total below u
    assert _kernels._sample_action(p, 0.9) == 1
    assert rdra._sample(p, 0.9) == 1
    for u in (0.0, 0.2, 0.3, 0.45, 0.6):
        assert _kernels._sample_action(p, u) == rdra._sample(p, u)
