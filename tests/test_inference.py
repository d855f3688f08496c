"""The optimality variable (docs/theory.md §5): backward pass, ELBO, mutual information."""

import numpy as np
import pytest
from conftest import dense_random_mdp
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import logsumexp

import fastsoft as fs
from fastsoft.inference import (
    BackwardPass,
    backward_pass,
    binary_entropy,
    count_trajectories,
    elbo,
    enumerate_trajectories,
    mutual_information,
    shifted_rewards,
)
from fastsoft.reference import sampling as ref
from fastsoft.sampling import as_initial, as_prior, sample_trajectories


def _tiny(seed=3, **kw):
    return dense_random_mdp(4, 2, 0.9, seed, **kw)


def _random_policy(mdp, seed, T=None):
    rng = np.random.default_rng(seed)
    shape = (mdp.n_states, mdp.n_actions) if T is None else (T, mdp.n_states, mdp.n_actions)
    p = rng.random(shape) * mdp.feasible
    return p / p.sum(axis=-1, keepdims=True)


def _nonpositive(mdp, scale=1.0):
    """The same MDP with rewards -scale*|R| (feasible actions)."""
    return mdp.with_rewards(np.where(mdp.feasible, -scale * np.abs(mdp.rewards), -np.inf))


TINY = {
    "plain": lambda: _tiny(3),
    "terminal_infeasible": lambda: _tiny(3, terminal=0.3, infeasible=0.2),
    "huys": lambda: fs.huys_planning_task(3),
    "grid": lambda: fs.gridworld(2, 3, slip=0.2, gamma=0.9),
}


# ------------------------------------------------------------------ backward pass
@pytest.mark.parametrize("name", list(TINY))
def test_backward_pass_matches_reference(name):
    mdp = TINY[name]()
    prior = _random_policy(mdp, 1)
    bp = backward_pass(mdp, 4, prior=prior, shift=True)
    R, c = shifted_rewards(mdp, True)
    assert bp.shift == c
    le, Q, V, pol = ref.backward_pass(mdp, 4, R, as_prior(mdp, prior), as_initial(mdp, None))
    assert bp.log_evidence == pytest.approx(le, abs=1e-12)
    np.testing.assert_allclose(bp.Q, Q, atol=1e-12)
    np.testing.assert_allclose(bp.V, V, atol=1e-12)
    np.testing.assert_allclose(bp.policy, pol, atol=1e-12)
    assert bp.Q.shape == (4, mdp.n_states, mdp.n_actions) and bp.V.shape == (5, mdp.n_states)
    np.testing.assert_array_equal(bp.V[4], 0.0)
    np.testing.assert_allclose(bp.policy.sum(axis=2), 1.0, atol=1e-12)
    assert np.all(bp.policy[:, ~mdp.feasible] == 0)
    assert isinstance(bp, BackwardPass) and "log_evidence" in repr(bp)


@pytest.mark.parametrize("name", list(TINY))
def test_log_evidence_equals_enumerated_sum(name):
    """log P(O=1) = log sum_tau p_prior(tau) exp(sum_t r_t)."""
    mdp = TINY[name]()
    prior = _random_policy(mdp, 2)
    T = 3
    bp = backward_pass(mdp, T, prior=prior, shift=True)
    en = enumerate_trajectories(mdp, prior, T, prior=prior)
    assert en.n_trajectories == count_trajectories(mdp, prior, T)
    np.testing.assert_allclose(np.exp(logsumexp(en.log_prob)), 1.0, atol=1e-12)
    np.testing.assert_array_equal(en.log_prob, en.log_prior_prob)
    log_sum = logsumexp(en.log_prior_prob + en.reward_sum - bp.shift * en.lengths)
    assert bp.log_evidence == pytest.approx(log_sum, abs=1e-12)
    # the independent depth-first reference enumeration
    items = ref.enumerate_trajectories(mdp, prior, T, prior, as_initial(mdp, None))
    assert len(items) == en.n_trajectories
    ref_sum = logsumexp([lp + r - bp.shift * n for _, lp, r, n in items])
    assert bp.log_evidence == pytest.approx(ref_sum, abs=1e-12)


def test_enumeration_records_trajectories():
    mdp = TINY["terminal_infeasible"]()
    pi = _random_policy(mdp, 3)
    en = enumerate_trajectories(mdp, pi, 3)
    term = mdp.terminal
    for i in range(en.n_trajectories):
        L = en.lengths[i]
        s, a = en.states[i], en.actions[i]
        assert np.all(s[L + 1:] == -1) and np.all(a[L:] == -1)
        assert not term[s[:L]].any() and (L == 3 or term[s[L]])
        assert en.reward_sum[i] == pytest.approx(mdp.rewards[s[:L], a[:L]].sum())
    # distinct trajectories
    keys = {tuple(x) + tuple(y) for x, y in zip(en.states, en.actions, strict=True)}
    assert len(keys) == en.n_trajectories


def test_log_evidence_by_monte_carlo():
    """E_{tau ~ prior}[exp(sum r)] = P(O = 1): sampled trajectories agree."""
    mdp = _tiny(5, terminal=0.2)
    prior = _random_policy(mdp, 4)
    T = 5
    bp = backward_pass(mdp, T, prior=prior, shift=True)
    tr = sample_trajectories(mdp, prior, n_episodes=100_000, horizon=T, seed=0)
    p = np.exp(tr.rewards.sum(axis=1) - bp.shift * tr.lengths)
    assert abs(p.mean() - np.exp(bp.log_evidence)) < 5 * p.std() / np.sqrt(p.size)


def test_terminal_states_contribute_log_one():
    mdp = fs.gridworld(1, 3, goals={(0, 2): 0.0}, step_reward=-1.0, start=(0, 1))
    bp = backward_pass(mdp, 5)
    np.testing.assert_array_equal(bp.V[:, 2], 0.0)  # the goal, at every time
    # from (0, 1), horizon 1: "right" enters the goal (reward 0), the others pay -1
    bp1 = backward_pass(mdp, 1, initial=1)
    assert bp1.log_evidence == pytest.approx(np.log(0.25 + 0.75 * np.exp(-1.0)), abs=1e-14)
    # horizon 2 from (0, 0): up, down and left bump (stay, -1), right reaches (0, 1) (-1)
    bp2 = backward_pass(mdp, 2, initial=0)
    v1 = np.log(0.25 + 0.75 * np.exp(-1.0))  # V_1 at (0, 1): after the goal, log 1
    expect = np.log(0.75 * np.exp(-1.0 + -1.0) + 0.25 * np.exp(-1.0 + v1))
    assert bp2.log_evidence == pytest.approx(expect, abs=1e-14)
    # the posterior at terminal states is the (uniform) prior
    np.testing.assert_allclose(bp.policy[:, 2], 0.25)


def test_large_rewards_are_stable():
    mdp = _nonpositive(_tiny(6, terminal=0.25), scale=1e4)
    bp = backward_pass(mdp, 6)
    le, Q, V, _ = ref.backward_pass(mdp, 6, np.asarray(mdp.rewards), as_prior(mdp, None),
                                    as_initial(mdp, None))
    assert np.isfinite(bp.log_evidence)
    assert bp.log_evidence == pytest.approx(le, rel=1e-12)
    np.testing.assert_allclose(bp.V, V, rtol=1e-12)
    assert np.all(np.isfinite(bp.policy))


# ---------------------------------------------------------------------------- ELBO
@pytest.mark.parametrize("name", list(TINY))
def test_elbo_matches_enumeration(name):
    mdp = TINY[name]()
    T = 3
    pol = _random_policy(mdp, 5, T=T)
    prior = _random_policy(mdp, 6)
    e = elbo(mdp, pol, T, prior=prior, shift=True)
    R, _ = shifted_rewards(mdp, True)
    expect = ref.elbo(mdp, pol, T, R, prior, as_initial(mdp, None))
    assert e.value == pytest.approx(expect, abs=1e-12)
    assert e.value == pytest.approx(e.expected_reward - e.kl, abs=1e-14)
    assert e.kl >= 0


def test_elbo_of_posterior_is_tight_for_deterministic_dynamics():
    mdp = fs.huys_planning_task(3)
    for s0 in range(6):
        bp = backward_pass(mdp, 3, initial=s0, shift=True)
        e = elbo(mdp, bp.policy, 3, initial=s0, shift=True)
        assert e.value == pytest.approx(bp.log_evidence, abs=1e-10)
    # the prior itself: KL = 0
    e = elbo(mdp, as_prior(mdp, None), 3, shift=True)
    assert e.kl == pytest.approx(0.0, abs=1e-14)


@given(seed=st.integers(0, 10**6), T=st.integers(1, 4))
def test_elbo_is_a_lower_bound(seed, T):
    mdp = dense_random_mdp(4, 3, 0.9, seed % 997, terminal=0.3, infeasible=0.2)
    pol = _random_policy(mdp, seed, T=T)
    bp = backward_pass(mdp, T, shift=True)
    assert elbo(mdp, pol, T, shift=True).value <= bp.log_evidence + 1e-12
    assert elbo(mdp, bp.policy, T, shift=True).value <= bp.log_evidence + 1e-12


def test_elbo_infinite_kl():
    mdp = TINY["plain"]()
    prior = np.tile([1.0, 0.0], (4, 1))
    pi = np.full((4, 2), 0.5)
    e = elbo(mdp, pi, 2, prior=prior, shift=True)
    assert e.kl == np.inf and e.value == -np.inf


# -------------------------------------------------------------- mutual information
def test_binary_entropy():
    np.testing.assert_allclose(binary_entropy([0.0, 1.0, 0.5]), [0.0, 0.0, np.log(2)])
    p = 0.3
    assert binary_entropy(p) == pytest.approx(-p * np.log(p) - (1 - p) * np.log(1 - p))
    assert binary_entropy(1e-300) > 0


@pytest.mark.parametrize("name", list(TINY))
def test_mutual_information_enumeration_matches_reference(name):
    mdp = TINY[name]()
    pi = _random_policy(mdp, 7)
    mi = mutual_information(mdp, pi, 3, method="enumerate", shift=True)
    R, _ = shifted_rewards(mdp, True)
    assert mi.value == pytest.approx(ref.mutual_information_exact(mdp, pi, 3, R,
                                                                  as_initial(mdp, None)),
                                     abs=1e-12)
    assert mi.method == "enumerate" and mi.stderr == 0.0
    assert mi.value == pytest.approx(binary_entropy(mi.p_optimal) - mi.mean_entropy)
    assert mutual_information(mdp, pi, 3, shift=True).method == "enumerate"  # auto


@pytest.mark.parametrize("name", ["terminal_infeasible", "grid"])
def test_mutual_information_monte_carlo_agrees_with_enumeration(name):
    mdp = TINY[name]()
    pi = _random_policy(mdp, 8)
    T = 4
    exact = mutual_information(mdp, pi, T, method="enumerate", shift=True)
    mc = mutual_information(mdp, pi, T, method="monte_carlo", shift=True, n_episodes=100_000,
                            seed=1)
    assert mc.method == "monte_carlo" and mc.n == 100_000 and mc.stderr > 0
    assert abs(mc.value - exact.value) < 5 * mc.stderr
    # and the standard error is honest: spread over seeds
    vals = [mutual_information(mdp, pi, T, method="monte_carlo", shift=True, n_episodes=4000,
                               seed=k).value for k in range(30)]
    se = mutual_information(mdp, pi, T, method="monte_carlo", shift=True, n_episodes=4000,
                            seed=99).stderr
    assert 0.5 < np.std(vals, ddof=1) / se < 2.0


def test_mutual_information_auto_falls_back_to_monte_carlo():
    mdp = fs.gridworld(3, 3, slip=0.3, gamma=0.9)
    pi = np.full((9, 4), 0.25)
    assert count_trajectories(mdp, pi, 8) > 1000
    mi = mutual_information(mdp, pi, 8, max_trajectories=1000, n_episodes=2000, seed=0)
    assert mi.method == "monte_carlo" and mi.value >= -3 * mi.stderr


@given(seed=st.integers(0, 10**6), T=st.integers(1, 3))
def test_mutual_information_is_non_negative(seed, T):
    mdp = dense_random_mdp(3, 2, 0.9, seed % 991, terminal=0.3)
    pi = _random_policy(mdp, seed)
    mi = mutual_information(mdp, pi, T, method="enumerate", shift=True)
    assert mi.value >= -1e-12
    assert 0 < mi.p_optimal <= 1


def test_mutual_information_zero_when_reward_is_constant():
    mdp = fs.random_mdp(4, 2, 2, gamma=0.9, seed=0, reward_range=(-0.5, -0.5))
    mi = mutual_information(mdp, np.full((4, 2), 0.5), 3, method="enumerate")
    assert mi.value == pytest.approx(0.0, abs=1e-12)
    assert mi.p_optimal == pytest.approx(np.exp(-1.5))


# ---------------------------------------------------------------------- validation
def test_validation_errors():
    mdp = TINY["terminal_infeasible"]()
    pos = np.argwhere(mdp.feasible & ~mdp.terminal[:, None] & (mdp.rewards > 0))[0]
    with pytest.raises(ValueError, match=rf"\(s, a\) = \({pos[0]}, {pos[1]}\).*shift=True"):
        backward_pass(mdp, 3)
    with pytest.raises(ValueError, match="too small"):
        backward_pass(mdp, 3, shift=0.1 * float(mdp.rewards[tuple(pos)]))
    bp = backward_pass(mdp, 3, shift=10.0)
    assert bp.shift == 10.0
    with pytest.raises(TypeError, match="shift"):
        backward_pass(mdp, 3, shift="max")
    with pytest.raises(ValueError, match="horizon"):
        backward_pass(mdp, 0, shift=True)
    with pytest.raises(TypeError, match="mdp"):
        backward_pass(None, 3)
    with pytest.raises(ValueError, match="prior"):
        backward_pass(mdp, 3, shift=True, prior=np.ones((4, 2)))
    with pytest.raises(ValueError, match="prior"):
        backward_pass(mdp, 3, shift=True, prior=np.ones((3, 2)) / 2)
    s_inf, a_inf = np.argwhere(~mdp.feasible & ~mdp.terminal[:, None])[0]
    bad = as_prior(mdp, None)
    bad[s_inf] = 0.0
    bad[s_inf, a_inf] = 1.0
    with pytest.raises(ValueError, match=f"infeasible action {a_inf} of state {s_inf}"):
        backward_pass(mdp, 3, shift=True, prior=bad)
    with pytest.raises(ValueError, match="initial"):
        backward_pass(mdp, 3, shift=True, initial=9)
    pi = _random_policy(mdp, 0)
    with pytest.raises(ValueError, match="max_trajectories"):
        enumerate_trajectories(mdp, pi, 3, max_trajectories=5)
    with pytest.raises(ValueError, match="max_trajectories"):
        mutual_information(mdp, pi, 3, method="enumerate", shift=True, max_trajectories=5)
    with pytest.raises(ValueError, match="method"):
        mutual_information(mdp, pi, 3, method="exact", shift=True)
    with pytest.raises(ValueError, match="horizon = 3"):
        elbo(mdp, np.stack([pi, pi]), 3, shift=True)
    with pytest.raises(ValueError, match="state"):
        elbo(mdp, pi * 2, 3, shift=True)
    with pytest.raises(ValueError, match="n_episodes"):
        mutual_information(mdp, pi, 3, method="monte_carlo", shift=True, n_episodes=1)
    with pytest.raises(ValueError, match="horizon"):
        count_trajectories(mdp, pi, -1)
