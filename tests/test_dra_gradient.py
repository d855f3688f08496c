"""The DRA gradient estimators: score function, note B's entropy term, the memory costs."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy.special import expit

import fastsoft as fs
from fastsoft import dra

BETA = 2.0
R = (1.0, -0.5)
SIGMA = np.array([0.7, 1.3])
N = 100_000


def bandit(rewards=R):
    """One decision state (0) with two actions, both ending in the terminal state 1."""
    P = np.zeros((2, 2, 2))
    P[:, :, 1] = 1.0
    Rm = np.array([rewards, [0.0, 0.0]])
    return fs.TabularMDP.from_dense(P, Rm, 1.0, terminal=np.array([False, True]),
                                    initial=[1.0, 0.0])


def expect(q, sigma, f, beta=BETA):
    """``E_zeta f(p_0)`` with ``p_0 = sigmoid(beta (q0 - q1 + sigma0 z0 - sigma1 z1))``:
    one Gaussian integral in ``sigma0 z0 - sigma1 z1 ~ N(0, sigma0^2 + sigma1^2)``."""
    s = np.hypot(*sigma)

    def g(x):
        return f(expit(beta * (q[0] - q[1] + s * x))) * np.exp(-x * x / 2) / np.sqrt(2 * np.pi)

    return integrate.quad(g, -12, 12, epsabs=1e-14, epsrel=1e-13, limit=400)[0]


def fd_gradient(q, sigma, f, h=1e-5):
    out = np.zeros(2)
    for b in range(2):
        e = np.zeros(2)
        e[b] = h
        out[b] = (expect(q, sigma + e, f) - expect(q, sigma - e, f)) / (2 * h)
    return out


def expected_reward(p0):
    return p0 * R[0] + (1 - p0) * R[1]


def binary_entropy(p0):
    return -(p0 * np.log(p0) + (1 - p0) * np.log1p(-p0)) if 0 < p0 < 1 else 0.0


def memories(q):
    qbar = np.zeros((2, 2))
    qbar[0] = q
    sigma = np.ones((2, 2))
    sigma[0] = SIGMA
    return qbar, sigma


@pytest.mark.parametrize("psi", ["return", "q", "advantage"])
def test_score_function_mean_matches_finite_differences(psi):
    """With qbar = the true action values every psi is unbiased for dE[reward]/dsigma."""
    q = np.array(R)
    qbar, sigma = memories(q)
    g = dra.estimate_gradient(bandit(), qbar, sigma, beta=BETA, lam=0.0, sigma_base=1.0,
                              n_traj=N, psi=psi, seed=1)
    fd = fd_gradient(q, SIGMA, expected_reward)
    est = g.reward.mean(axis=0)[0]
    se = g.reward.std(axis=0, ddof=1)[0] / np.sqrt(N)
    assert np.all(np.abs(est - fd) < 4 * se + 1e-7), (est, fd, se)
    assert np.all(np.abs(fd) > 10 * se)  # the test has power: the gradient is clearly nonzero
    np.testing.assert_allclose(g.stderr[0], se)
    assert g.n_steps == N


def test_score_function_with_biased_critic_follows_qbar():
    """psi="q" estimates the gradient of E[qbar(a)], whatever the rewards (trusts the critic)."""
    q = np.array([0.3, 0.0])
    qbar, sigma = memories(q)
    g = dra.estimate_gradient(bandit(), qbar, sigma, beta=BETA, lam=0.0, sigma_base=1.0,
                              n_traj=N, psi="q", seed=2)
    fd = fd_gradient(q, SIGMA, lambda p0: p0 * q[0] + (1 - p0) * q[1])
    se = g.reward.std(axis=0, ddof=1)[0] / np.sqrt(N)
    assert np.all(np.abs(g.reward.mean(axis=0)[0] - fd) < 4 * se + 1e-7)


def test_entropy_gradient_mean_matches_finite_differences():
    """Note B's pathwise gradient of ``(lam/T) sum_t H(p_t)`` (T = 1 here)."""
    q = np.array([0.3, 0.0])
    lam = 0.5
    qbar, sigma = memories(q)
    g = dra.estimate_gradient(bandit(), qbar, sigma, beta=BETA, lam=lam, sigma_base=1.0,
                              n_traj=N, psi="return", entropy_bonus=True, seed=3)
    fd = lam * fd_gradient(q, SIGMA, binary_entropy)
    se = g.entropy.std(axis=0, ddof=1)[0] / np.sqrt(N)
    assert np.all(np.abs(g.entropy.mean(axis=0)[0] - fd) < 4 * se + 1e-7), (g.entropy, fd)
    assert np.all(np.abs(fd) > 10 * se)
    assert np.all(g.entropy[:, 1] == 0.0)  # the terminal state has no memories


def softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


@settings(max_examples=30, deadline=None)
@given(
    q=st.lists(st.floats(-2, 2), min_size=2, max_size=2),
    sigma=st.lists(st.floats(0.1, 3.0), min_size=2, max_size=2),
    beta=st.floats(0.2, 3.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_per_sample_gradients_are_exact_derivatives(q, sigma, beta, seed):
    """Each rollout's samples, for its own zeta (replayed from the seed), are the exact
    derivatives: ``d log p_a / d sigma * r_a`` and ``d H(p) / d sigma`` (finite differences)."""
    n = 5
    qbar, sig = np.zeros((2, 2)), np.ones((2, 2))
    qbar[0], sig[0] = q, sigma
    lam = 0.7
    g = dra.estimate_gradient(bandit(), qbar, sig, beta=beta, lam=lam, sigma_base=1.0,
                              n_traj=n, psi="return", entropy_bonus=True, seed=seed)
    rng = np.random.default_rng(seed)  # draws per rollout: zeta_0, zeta_1, u
    h = 1e-6
    for j in range(n):
        zeta = rng.standard_normal(2)
        u = rng.random()
        p = softmax(beta * (np.array(q) + np.array(sigma) * zeta))
        a = 0 if u < p[0] else 1
        s0 = np.array(sigma)
        for b in range(2):
            e = np.zeros(2)
            e[b] = h
            d_logp = (log_prob(q, s0 + e, zeta, beta, a)
                      - log_prob(q, s0 - e, zeta, beta, a)) / (2 * h)
            d_ent = (entropy(q, s0 + e, zeta, beta) - entropy(q, s0 - e, zeta, beta)) / (2 * h)
            assert g.reward[j, 0, b] == pytest.approx(d_logp * R[a], rel=1e-5, abs=1e-7)
            assert g.entropy[j, 0, b] == pytest.approx(lam * d_ent, rel=1e-5, abs=1e-7)


def log_prob(q, sigma, zeta, beta, a):
    return np.log(softmax(beta * (np.asarray(q) + sigma * zeta))[a])


def entropy(q, sigma, zeta, beta):
    p = softmax(beta * (np.asarray(q) + sigma * zeta))
    return -np.sum(p * np.log(p))


def kl(s, sb):
    return np.log(sb / s) + s**2 / (2 * sb**2) - 0.5


@pytest.mark.parametrize("cost", ["allocation", "access"])
def test_cost_gradient(cost):
    m = fs.mattar_daw_maze()
    rng = np.random.default_rng(4)
    qbar = rng.normal(size=(m.n_states, 4))
    sigma = rng.uniform(0.2, 8.0, size=(m.n_states, 4))
    lam, sb = 0.3, 5.0
    g = dra.estimate_gradient(m, qbar, sigma, beta=1.0, lam=lam, sigma_base=sb, n_traj=3,
                              cost=cost, max_steps=40, seed=0)
    h = 1e-6
    fd = lam * (kl(sigma + h, sb) - kl(sigma - h, sb)) / (2 * h)
    mem = ~m.terminal[:, None] & np.ones((1, 4), bool)
    if cost == "access":
        fd = fd * g.visits.mean(axis=0)[:, None]
    np.testing.assert_allclose(g.cost[mem], fd[mem], rtol=1e-6, atol=1e-9)
    assert np.all(g.cost[~mem] == 0.0)
    np.testing.assert_allclose(g.mean, (g.reward + g.entropy).mean(axis=0) - g.cost)


def test_kl_cost_is_minimal_at_sigma_base():
    """The memory cost vanishes at sigma_base: a run whose sigmas stay there pays nothing."""
    m = fs.mattar_daw_maze()
    r = dra.train(m, beta=1.0, lam=0.1, sigma_base=5.0, sigma0=5.0, alpha_q=0.1,
                  alpha_sigma=0.0, n_episodes=2, max_steps=50, n_eval=2, seed=0)
    assert r.history.cost[0, -1] == pytest.approx(0.0, abs=1e-12)
