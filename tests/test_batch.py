"""solve_batch: kernel vs NumPy reference, vs single solves, certificates, validation."""

import numpy as np
import pytest
from conftest import dense_random_mdp

import fastsoft as fs
from fastsoft import reference as ref

CASES = [
    # (seed, tau, eta, infeasible, terminal)
    (0, 0.0, 0.0, 0.0, 0.0),
    (1, 0.1, 0.0, 0.0, 0.0),
    (2, 0.3, 0.0, 0.3, 0.2),
    (3, 0.0, 0.5, 0.2, 0.0),
    (4, 0.1, 0.4, 0.0, 0.3),
]


def _problem(seed, infeasible, terminal, B=5, S=30, A=3):
    m = dense_random_mdp(S, A, 0.9, seed, infeasible=infeasible, terminal=terminal,
                         density=0.3)
    R = np.random.default_rng(seed + 100).normal(size=(B, S, A))
    R[:, ~m.feasible] = -np.inf
    return m, R


def _prior(m, seed):
    mu = np.random.default_rng(seed).random((m.n_states, m.n_actions)) + 0.1
    mu[~m.feasible] = 0.0
    return mu / mu.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("seed,tau,eta,infeasible,terminal", CASES)
def test_kernel_matches_reference(seed, tau, eta, infeasible, terminal):
    m, R = _problem(seed, infeasible, terminal)
    prior = _prior(m, seed) if eta else None
    V0 = np.zeros((R.shape[0], m.n_states))
    got = fs.solve_batch(m, R, temperature=tau, kl_weight=eta, prior=prior, tol=1e-7, V0=V0)
    want = ref.batch_value_iteration(m, R, tau, eta, prior, tol=got.results[0].tol, V0=V0,
                                     max_iter=got.n_iter)
    assert want["n_iter"] == got.n_iter
    for b in range(R.shape[0]):
        h = got.results[b].history["error_bound"]
        assert h.shape == (got.n_iter,)
    # same iterates up to round-off; the midpoint shift of the reference is the kernel's
    np.testing.assert_allclose(got.V, want["V"], rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed,tau,eta,infeasible,terminal", CASES)
def test_each_problem_within_its_certificate(seed, tau, eta, infeasible, terminal):
    m, R = _problem(seed, infeasible, terminal)
    prior = _prior(m, seed) if eta else None
    out = fs.solve_batch(m, R, temperature=tau, kl_weight=eta, prior=prior, tol=1e-6)
    assert out.V.shape == (5, m.n_states) and out.policy.shape == (5, m.n_states, m.n_actions)
    assert out.converged.all() and out.status == ("converged",) * 5
    for b in range(5):
        mb = m.with_rewards(R[b])
        exact = ref.soft_value_iteration(mb, tau, eta, prior, tol=1e-12)["V"]
        assert np.abs(out.V[b] - exact).max() <= out.error_bound[b] + 1e-11
        assert out.error_bound[b] <= 1e-6
        single = fs.solve(mb, tau, kl_weight=eta, prior=prior, tol=1e-6)
        assert np.abs(out.V[b] - single.V).max() <= out.error_bound[b] + single.error_bound
        np.testing.assert_allclose(out.policy[b], single.policy, rtol=0, atol=1e-4)


def test_far_warm_start_and_non_convergence():
    m, R = _problem(7, 0.0, 0.2)
    V0 = np.full((5, m.n_states), 1e3)
    out = fs.solve_batch(m, R, temperature=0.2, tol=1e-6, V0=V0)
    for b in range(5):
        exact = ref.soft_value_iteration(m.with_rewards(R[b]), 0.2, tol=1e-12)["V"]
        assert np.abs(out.V[b] - exact).max() <= out.error_bound[b] + 1e-11
    short = fs.solve_batch(m, R, temperature=0.2, tol=1e-9, max_iter=3, V0=V0)
    assert not short.converged.any() and short.n_iter == 3
    assert set(short.status) == {"max_iter"} and "max_iter=3" in short.message[0]
    for b in range(5):
        exact = ref.soft_value_iteration(m.with_rewards(R[b]), 0.2, tol=1e-12)["V"]
        assert np.abs(short.V[b] - exact).max() <= short.error_bound[b] + 1e-9


def test_parallel_and_serial_same_bits():
    m = fs.random_mdp(3000, 4, 5, gamma=0.9, seed=0)
    R = np.random.default_rng(0).normal(size=(8, 3000, 4))
    a = fs.solve_batch(m, R, temperature=0.1, tol=1e-6, parallel=False)
    b = fs.solve_batch(m, R, temperature=0.1, tol=1e-6, parallel=True)
    np.testing.assert_array_equal(a.V, b.V)
    np.testing.assert_array_equal(a.error_bound, b.error_bound)
    assert a.n_iter == b.n_iter


def test_validation():
    m, R = _problem(0, 0.2, 0.0)
    with pytest.raises(ValueError, match=r"\(B, S, A\)"):
        fs.solve_batch(m, R[:, :5])
    bad = R.copy()
    bad[2, 3, 1] = np.nan
    with pytest.raises(ValueError, match=r"\(b, s, a\) = \(2, 3, 1\)"):
        fs.solve_batch(m, bad)
    s, a = np.argwhere(~m.feasible)[0]
    bad = R.copy()
    bad[1, s, a] = 0.0
    with pytest.raises(ValueError, match=rf"feasible.*\(b, s, a\) = \(1, {s}, {a}\)"):
        fs.solve_batch(m, bad)
    with pytest.raises(ValueError, match="V0"):
        fs.solve_batch(m, R, V0=np.zeros((2, m.n_states)))
    with pytest.raises(ValueError, match="tol"):
        fs.solve_batch(m, R, tol=0.0)
    one = fs.solve_batch(m, R[0], temperature=0.1, tol=1e-6)  # a single (S, A) array
    assert len(one) == 1 and one[0].V.shape == (m.n_states,)
