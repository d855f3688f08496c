"""fastsoft.groundtruth: exact optima and certified policy scores for RL benchmarks."""

import gymnasium as gym
import numpy as np
import pytest

import fastsoft as fs
from fastsoft import groundtruth as gt
from fastsoft import reference as ref


def _dense_policy_value(mdp, pol, tau=0.0):
    """V^pi by a dense NumPy solve (independent of the module's sparse code)."""
    P, R = mdp.to_dense()
    term = np.zeros(mdp.n_states, bool) if mdp.terminal is None else mdp.terminal
    Pp = np.einsum("sa,sat->st", pol, P)
    Pp[term] = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        H = -np.where(pol > 0, pol * np.log(pol), 0.0).sum(1)
    r = (np.where(pol > 0, pol * R, 0.0)).sum(1) + tau * H
    r[term] = 0.0
    return np.linalg.solve(np.eye(mdp.n_states) - mdp.gamma * Pp, r)


def test_frozenlake_known_values():
    mdp = fs.TabularMDP.from_gymnasium(gym.make("FrozenLake-v1"), 0.9999)
    opt = gt.optimal(mdp)
    assert opt.error_bound < 1e-9
    # the optimal policy's value is its exact linear solve
    np.testing.assert_allclose(opt.V, _dense_policy_value(mdp, opt.policy), atol=1e-9)
    # its success probability within FrozenLake's 100-step limit: the familiar ~0.74
    P, R = mdp.to_dense()
    Pp = np.einsum("sa,sat->st", opt.policy, P)
    Pp[mdp.terminal] = 0.0
    r = (opt.policy * R).sum(1)
    r[mdp.terminal] = 0.0
    V = np.zeros(16)
    for _ in range(100):
        V = r + Pp @ V
    assert V[0] == pytest.approx(0.7402, abs=1e-4)
    # undiscounted, the optimal success probability is 14/17 = 0.8235...; gamma 0.9999 is close
    assert 0.81 < opt.value < 14 / 17


@pytest.mark.parametrize("env_id", [*gt.TOY_TEXT_IDS, *fs.envs.ENV_IDS])
@pytest.mark.parametrize("tau", [0.0, 0.3])
def test_optimal_is_certified_against_the_reference(env_id, tau):
    opt = gt.ground_truth(env_id, temperature=tau)
    mdp = opt.mdp
    out = ref.soft_value_iteration(mdp, tau, tol=1e-11)
    err = float(np.abs(opt.V - out["V"]).max())
    assert err <= opt.error_bound + 1e-11, (err, opt.error_bound)
    assert opt.error_bound < 1e-8
    # Q* and the policy are consistent with V*
    TV, Q, pol = fs.bellman_backup(mdp, np.array(opt.V), tau)
    np.testing.assert_allclose(opt.Q, Q)
    if tau > 0:
        np.testing.assert_allclose(opt.policy, pol, atol=1e-12)
    assert gt.ground_truth(env_id, temperature=tau) is opt  # cached


def test_score_policy_forms_and_values():
    env = gym.make("FrozenLake-v1")
    opt = gt.optimal(env, gamma=0.95)
    best = gt.score_policy(env, opt.policy, gamma=0.95, optimum=opt)
    assert abs(best.suboptimality) <= best.error_bound < 1e-10
    assert best.certified_within(1e-3)
    uniform = np.full((16, 4), 0.25)
    s = gt.score_policy(env, uniform, gamma=0.95)
    V = _dense_policy_value(opt.mdp, uniform)
    assert s.value == pytest.approx(V[0], abs=1e-12)
    assert s.suboptimality == pytest.approx(opt.V[0] - V[0], abs=1e-12)
    assert not s.certified_within(1e-3)
    # (S,) actions, a callable returning actions, a callable returning probabilities
    acts = np.argmax(opt.policy, axis=1)
    for pol in (acts, lambda s: int(acts[s]), lambda s: opt.policy[s]):
        sc = gt.score_policy(env, pol, gamma=0.95, optimum=opt)
        assert sc.certified_within(1e-9)
    # a mistake in one state shows up
    worse = acts.copy()
    worse[0] = (acts[0] + 2) % 4
    assert gt.score_policy(env, worse, gamma=0.95, optimum=opt).suboptimality > 1e-3


def test_score_soft_policies():
    mdp = fs.gridworld(4, 4, slip=0.1, gamma=0.9)
    soft = gt.optimal(mdp, temperature=0.5)
    s = gt.score_policy(mdp, soft.policy, temperature=0.5, optimum=soft)
    assert abs(s.suboptimality) <= s.error_bound < 1e-9
    hard = gt.optimal(mdp)
    # the hard-optimal policy forgoes the entropy bonus: strictly suboptimal for tau > 0
    s2 = gt.score_policy(mdp, hard.policy, temperature=0.5, optimum=soft)
    assert s2.suboptimality > 0.1
    np.testing.assert_allclose(s2.V_pi, _dense_policy_value(mdp, hard.policy, 0.5), atol=1e-10)
    # soft optimum = hard optimum + at most tau log|A| / (1 - gamma)
    assert 0 <= soft.value - hard.value <= 0.5 * np.log(4) / 0.1


def test_taxi_policy_over_the_env_states():
    opt = gt.ground_truth("Taxi-v4", gamma=0.99)
    assert opt.mdp.n_states == 501  # from_gymnasium's absorbing sink
    s = gt.score_policy("Taxi-v4", np.argmax(opt.policy[:500], axis=1), gamma=0.99,
                        optimum=opt)
    assert s.certified_within(1e-8)


def test_errors():
    mdp = fs.gridworld(3, 3, gamma=0.9)
    with pytest.raises(ValueError, match="shape"):
        gt.score_policy(mdp, np.zeros((9, 3)))
    with pytest.raises(ValueError, match="sums to"):
        gt.score_policy(mdp, np.zeros((9, 4)))
    with pytest.raises(ValueError, match="out of range"):
        gt.score_policy(mdp, np.full(9, 4))
    with pytest.raises(ValueError, match="integers"):
        gt.score_policy(mdp, np.zeros(9))
    R = np.zeros((2, 2))
    R[0, 1] = -np.inf
    m2 = fs.TabularMDP.from_dense(np.full((2, 2, 2), 0.5), R, 0.9)
    with pytest.raises(ValueError, match="infeasible action 1 of state 0"):
        gt.score_policy(m2, np.full((2, 2), 0.5))
    with pytest.raises(TypeError, match="no transition table"):
        gt.optimal("CartPole-v1")
    with pytest.raises(ValueError, match="cannot be certified"):
        gt.optimal(mdp, tol=1e-300)
    with pytest.raises(ValueError, match="temperature"):
        gt.score_policy(mdp, np.full(9, 0), temperature=0.1, optimum=gt.optimal(mdp))


@pytest.mark.parametrize("rules", [{}, {"sab": False}, {"sab": False, "natural": True}],
                         ids=["sab (default)", "plain", "natural 1.5"])
def test_blackjack_enumeration_matches_the_environment(rules):
    """The exact optimum's value agrees with a Monte Carlo run of gymnasium's Blackjack."""
    from fastsoft.envs.blackjack import blackjack_state

    env = gym.make("Blackjack-v1", **rules)
    opt = gt.optimal(env, gamma=0.999999)
    assert opt.error_bound < 1e-7
    act = np.argmax(opt.policy, axis=1)[:704]  # a policy over the 704 observations
    # the textbook basic strategy at a few hard totals
    assert act[blackjack_state((16, 10, 0))] == 1 and act[blackjack_state((17, 10, 0))] == 0
    assert act[blackjack_state((12, 4, 0))] == 0 and act[blackjack_state((12, 2, 0))] == 1
    rng = np.random.default_rng(0)
    returns = []
    for _ in range(8000):
        obs, _ = env.reset(seed=int(rng.integers(2**31)))
        done, ret = False, 0.0
        while not done:
            obs, r, term, trunc, _ = env.step(int(act[blackjack_state(obs)]))
            ret += r
            done = term or trunc
        returns.append(ret)
    se = np.std(returns) / np.sqrt(len(returns))
    assert abs(np.mean(returns) - opt.value) < 4 * se
    s = gt.score_policy(env, act, gamma=0.999999, optimum=opt)
    assert s.certified_within(1e-6)
    always_hit = np.ones(704, dtype=np.int64)
    assert gt.score_policy(env, always_hit, gamma=0.999999, optimum=opt).suboptimality > 0.3
