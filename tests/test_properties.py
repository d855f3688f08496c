"""Laws of the regularized Bellman operator and the docs/theory.md §4 bounds (hypothesis)."""

import numpy as np
import pytest
from conftest import dense_random_mdp, small_mdp
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import minimize

import fastsoft as fs
from fastsoft import bounds

sizes = st.tuples(st.integers(1, 6), st.integers(1, 4), st.integers(0, 10_000))
gammas = st.floats(0.0, 0.98)
temps = st.floats(0.0, 5.0)
weights = st.floats(0.0, 5.0)


def _vec(seed, n, scale=10.0):
    return np.random.default_rng(seed).normal(scale=scale, size=n)


@given(sizes, gammas, temps, weights, st.integers(0, 1000))
def test_contraction(size, gamma, tau, eta, seed):
    mdp = small_mdp(size, gamma, infeasible=0.3)
    V, W = _vec(seed, mdp.n_states), _vec(seed + 1, mdp.n_states)
    TV = fs.bellman_backup(mdp, V, tau, kl_weight=eta)[0]
    TW = fs.bellman_backup(mdp, W, tau, kl_weight=eta)[0]
    assert np.max(np.abs(TV - TW)) <= gamma * np.max(np.abs(V - W)) * (1 + 1e-12) + 1e-12


@given(sizes, gammas, temps, weights, st.integers(0, 1000))
def test_monotone(size, gamma, tau, eta, seed):
    mdp = small_mdp(size, gamma, infeasible=0.3)
    V = _vec(seed, mdp.n_states)
    W = V + np.abs(_vec(seed + 1, mdp.n_states))
    TV = fs.bellman_backup(mdp, V, tau, kl_weight=eta)[0]
    TW = fs.bellman_backup(mdp, W, tau, kl_weight=eta)[0]
    assert np.all(TV <= TW + 1e-12 * (1 + np.abs(TW)))


@given(sizes, gammas, temps, weights, st.floats(-100, 100), st.integers(0, 1000))
def test_constant_shift(size, gamma, tau, eta, c, seed):
    mdp = small_mdp(size, gamma)
    V = _vec(seed, mdp.n_states)
    TV = fs.bellman_backup(mdp, V, tau, kl_weight=eta)[0]
    TVc = fs.bellman_backup(mdp, V + c, tau, kl_weight=eta)[0]
    np.testing.assert_allclose(TVc, TV + gamma * c, atol=1e-10 * (1 + abs(c) + np.abs(TV).max()))


@given(sizes, gammas, st.floats(1e-12, 1e-2), st.integers(0, 1000))
def test_small_temperature_tends_to_hard_max(size, gamma, tau, seed):
    mdp = small_mdp(size, gamma, infeasible=0.3)
    V = _vec(seed, mdp.n_states)
    soft = fs.bellman_backup(mdp, V, tau)[0]
    hard = fs.bellman_backup(mdp, V, 0.0)[0]
    # hard <= soft <= hard + tau log |A|
    assert np.all(soft >= hard - 1e-12 * (1 + np.abs(hard)))
    assert np.all(soft <= hard + tau * np.log(mdp.n_actions) + 1e-12 * (1 + np.abs(hard)))


def _direct_max(q, tau, eta, mu):
    """max over the simplex of pi.q - eta KL(pi||mu) + tau H(pi), numerically."""
    feas = np.isfinite(q)
    qf, muf = q[feas], mu[feas]

    def neg(z):
        p = np.exp(z - z.max())
        p /= p.sum()
        lp = np.log(np.maximum(p, 1e-300))
        return -(p @ qf - eta * np.sum(p * (lp - np.log(muf))) - tau * np.sum(p * lp))

    best = np.inf
    for start in (np.zeros(qf.size), qf / max(tau + eta, 1e-3)):
        r = minimize(neg, start, method="BFGS", options={"gtol": 1e-10})
        best = min(best, r.fun)
    return -best


@given(st.integers(1, 5), st.floats(0.05, 3.0), st.floats(0.0, 3.0), st.integers(0, 10_000))
def test_closed_form_against_numerical_maximisation(A, tau, eta, seed):
    rng = np.random.default_rng(seed)
    q = rng.normal(scale=2.0, size=A)
    mu = rng.random(A) + 0.1
    mu /= mu.sum()
    v, pi = bounds.regularized_greedy(q, tau, eta, mu)
    direct = _direct_max(q, tau, eta, mu)
    assert v[0] == pytest.approx(direct, abs=1e-6)
    # the maximiser attains the value
    attained = pi[0] @ q - eta * bounds.kl_divergence(pi, mu)[0] + tau * bounds.entropy(pi)[0]
    assert attained == pytest.approx(v[0], abs=1e-10)
    # docs/theory.md §2.2: the weight is mu^(eta/lam), not mu (note C's slip)
    lam = tau + eta
    w = mu ** (eta / lam) * np.exp(q / lam)
    np.testing.assert_allclose(pi[0], w / w.sum(), rtol=1e-10)


def test_seed_slip_is_not_the_closed_form():
    q, mu, tau, eta = np.array([1.0, 0.0]), np.array([0.9, 0.1]), 0.5, 0.5
    v, _ = bounds.regularized_greedy(q, tau, eta, mu)
    slip = (tau + eta) * np.log(np.sum(mu * np.exp(q / (tau + eta))))
    assert abs(v[0] - slip) > 1e-3
    assert v[0] == pytest.approx(_direct_max(q, tau, eta, mu), abs=1e-7)


@given(st.integers(1, 6), st.floats(0.01, 10.0), st.integers(0, 10_000))
def test_softmax_gap_chain(A, tau, seed):
    q = np.random.default_rng(seed).normal(scale=5.0, size=(3, A))
    gap, ent, worst = bounds.softmax_gap(q, tau)
    assert np.all(gap >= -1e-12)
    assert np.all(gap <= ent + 1e-9)
    assert np.all(ent <= worst + 1e-12)


@given(st.integers(2, 6), st.integers(2, 4), st.floats(0.0, 0.95), st.floats(0.01, 3.0),
       st.integers(0, 10_000))
def test_soft_optimal_policy_loses_at_most_tau_log_a(S, A, gamma, tau, seed):
    mdp = dense_random_mdp(S, A, gamma, seed)
    soft = fs.soft_value_iteration(mdp, tau, tol=1e-11)
    hard = fs.value_iteration(mdp, tol=1e-11)
    P, R = mdp.to_dense()
    Ppi = np.einsum("sa,sat->st", soft.policy, P)
    rpi = np.sum(soft.policy * R, axis=1)
    V_soft_policy = np.linalg.solve(np.eye(S) - gamma * Ppi, rpi)
    loss = hard.V - V_soft_policy
    assert np.all(loss >= -1e-8)
    assert np.all(loss <= bounds.soft_policy_loss_bound(A, tau, gamma) + 1e-8)


@given(st.integers(1, 5), st.floats(0.0, 2.0), st.floats(0.0, 2.0), st.integers(0, 10_000))
def test_greedy_step_bound(A, tau, eta, seed):
    rng = np.random.default_rng(seed)
    q, qh = rng.normal(size=(2, 4, A))
    mu = rng.random((4, A)) + 0.05
    mu /= mu.sum(axis=1, keepdims=True)
    muh = rng.random((4, A)) + 0.05
    muh /= muh.sum(axis=1, keepdims=True)
    if tau + eta == 0:
        tau = 0.1
    v, _ = bounds.regularized_greedy(q, tau, eta, mu)
    vh, _ = bounds.regularized_greedy(qh, tau, eta, muh)
    assert np.all(np.abs(v - vh) <= bounds.greedy_step_bound(q, qh, eta, mu, muh) + 1e-12)


def test_bounds_validation():
    with pytest.raises(ValueError, match="temperature must be > 0"):
        bounds.softmax_gap([1.0, 2.0], 0.0)
    with pytest.raises(ValueError, match="gamma must be < 1"):
        bounds.soft_policy_loss_bound(3, 0.1, 1.0)
    with pytest.raises(ValueError, match="n_actions"):
        bounds.soft_policy_loss_bound(0, 0.1, 0.5)
    with pytest.raises(ValueError, match="same shape"):
        bounds.greedy_step_bound(np.zeros((2, 3)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="same infeasible"):
        bounds.greedy_step_bound([0.0, -np.inf], [0.0, 1.0])
    with pytest.raises(ValueError, match="NaN"):
        bounds.regularized_greedy([np.nan, 1.0], 0.1)
    with pytest.raises(ValueError, match="no finite entry"):
        bounds.regularized_greedy([-np.inf, -np.inf], 0.1)
    with pytest.raises(TypeError, match="real numbers"):
        bounds.regularized_greedy(["a", "b"], 0.1)
    with pytest.raises(ValueError, match="prior: row of state 0"):
        bounds.regularized_greedy([1.0, 2.0], 0.1, 0.5, [0.3, 0.3])


def test_regularized_greedy_matches_reference_and_kernel():
    mdp = dense_random_mdp(10, 4, 0.9, 3, infeasible=0.3)
    V = np.random.default_rng(0).normal(size=10)
    TV, Q, pi = fs.bellman_backup(mdp, V, 0.4, kl_weight=0.3)
    v2, pi2 = bounds.regularized_greedy(Q, 0.4, 0.3)
    np.testing.assert_allclose(TV, v2, rtol=1e-12)
    np.testing.assert_allclose(pi, pi2, rtol=1e-10, atol=1e-15)
    v3, pi3 = fs.reference.regularized_max(Q, 0.4, 0.3)
    np.testing.assert_allclose(v3, v2, rtol=1e-12)
