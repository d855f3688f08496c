"""Regression tests of issue 11's wrong answers, names and unclear errors."""

from __future__ import annotations

import numpy as np
import pytest

import fastsoft as fs
from fastsoft.inference import mutual_information


def test_bellman_backup_ignores_values_at_terminal_states():
    # state 1 terminal: V[1] = 100 must be read as 0 (SPEC 1), as the solvers do
    P = np.zeros((2, 1, 2))
    P[0, 0, 1] = 1.0
    P[1, 0, 1] = 1.0
    mdp = fs.TabularMDP.from_dense(P, np.array([[-1.0], [0.0]]), 0.9,
                                   terminal=np.array([False, True]))
    TV, Q, _ = fs.bellman_backup(mdp, np.array([0.0, 100.0]))
    assert TV[0] == -1.0 and TV[1] == 0.0
    assert Q[0, 0] == -1.0
    # and the reference agrees
    TVr, _, _ = fs.reference.core.bellman_backup(mdp, np.array([0.0, 100.0]))
    np.testing.assert_array_equal(TV, TVr)


def test_mutual_information_zero_when_every_trajectory_is_optimal():
    # rewards 0 everywhere: p(tau) = 1 for every trajectory; the weights' sum may be 1 + 2e-16
    mdp = fs.random_mdp(5, 3, 2, gamma=0.9, seed=2, reward_range=(0.0, 0.0))
    rng = np.random.default_rng(0)
    pi = rng.random((5, 3))
    pi /= pi.sum(axis=1, keepdims=True)
    for method in ("enumerate", "monte_carlo"):
        mi = mutual_information(mdp, pi, 4, method=method, seed=1)
        assert mi.value == 0.0 and mi.p_optimal == 1.0, method


def test_solve_huge_rewards_names_the_rewards():
    mdp = fs.random_mdp(3, 2, 2, gamma=0.9, seed=0, reward_range=(1e307, 1e307))
    for call in (lambda: fs.solve(mdp), lambda: fs.value_iteration(mdp),
                 lambda: fs.policy_iteration(mdp),
                 lambda: fs.policy_evaluation(mdp, np.zeros(3, dtype=int))):
        with pytest.raises(ValueError, match="rewards too large for float64") as exc:
            call()
        assert "V0" not in str(exc.value)
    with pytest.raises(ValueError, match="temperature/kl_weight too large"):
        fs.solve(fs.random_mdp(3, 2, 2, gamma=0.9, seed=0), 1e306)


def test_mirror_descent_names_mean_one_thing():
    mdp = fs.random_mdp(6, 3, 3, gamma=0.9, seed=4)
    mu = np.full((6, 3), 1.0 / 3.0)
    with pytest.raises(TypeError, match="kl_weight was renamed step_weight"):
        fs.modified_policy_iteration(mdp, 0.1, kl_weight=0.5)
    with pytest.raises(TypeError, match="prior was renamed policy0"):
        fs.modified_policy_iteration(mdp, 0.1, prior=mu)
    with pytest.raises(TypeError, match="kl_weight was renamed step_weight"):
        fs.regularized_policy_iteration(mdp, 0.1, kl_weight=0.5)
    # the new names: a step weight changes the path, not the fixed point (soft VI's, no KL)
    a = fs.modified_policy_iteration(mdp, 0.1, step_weight=0.5, policy0=mu, tol=1e-9)
    b = fs.soft_value_iteration(mdp, 0.1, tol=1e-10)
    assert a.converged and np.max(np.abs(a.V - b.V)) <= 2e-9
    assert a.kl_weight == 0.0 and a.extra["step_weight"] == 0.5
    # while solve's kl_weight defines another problem
    c = fs.solve(mdp, 0.1, kl_weight=0.5, prior=mu, tol=1e-9)
    assert np.max(np.abs(c.V - b.V)) > 1e-3


def test_all_terminal_rejected_by_every_constructor():
    P = np.ones((2, 1, 2)) / 2
    R = np.zeros((2, 1))
    for term in (np.array([True, True]), [0, 1, 1], np.array([1, 1, 0])):
        with pytest.raises(ValueError, match="every state is terminal"):
            fs.TabularMDP.from_dense(P, R, 0.9, terminal=term)
    with pytest.raises(ValueError, match="every cell is a wall or a goal"):
        fs.gridworld(1, 1)


def test_sampling_from_terminal_start_says_so():
    mdp = fs.gridworld(2, 2, gamma=0.9)
    goal = mdp.n_states - 1
    with pytest.warns(RuntimeWarning, match="every start state is terminal"):
        fs.sample_trajectories(mdp, np.zeros(mdp.n_states, dtype=int), n_episodes=3,
                               horizon=5, initial=goal, seed=0)


@pytest.mark.parametrize("call, match", [
    (lambda: fs.gridworld(2.7, 3), "rows must be an integer"),
    (lambda: fs.gridworld(3, 0), "cols must be >= 1"),
    (lambda: fs.gridworld(10**6, 10**6), "gridworld 1000000x1000000 needs about"),
    (lambda: fs.random_mdp(10**6, 4, 10**6, gamma=0.9), "random_mdp with 1,000,000 states"),
    (lambda: fs.random_mdp(3, 2, 2, gamma=0.9, seed=-1), "seed must be a non-negative"),
    (lambda: fs.random_mdp(3, 2, 2, gamma=0.9, reward_range=(-np.inf, 1.0)), "reward_range"),
    (lambda: fs.random_mdp(3, 2, 2, gamma=0.9, reward_range=(-1e308, 1e308)),
     "reward_range: high - low overflows"),
])
def test_generator_inputs_named(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call()


class _Env:
    def __init__(self, P):
        self.P = P


@pytest.mark.parametrize("P, match", [
    ({0: {0: [(1.0, 5, 0.0, False)]}, 1: {0: [(1.0, 0, 0.0, False)]}},
     r"P\[0\]\[0\]\[0\]: next state 5 out of range \[0, 2\)"),
    ({0: {"left": [(1.0, 1, 0.0, False)]}, 1: {0: [(1.0, 0, 0.0, False)]}},
     r"P\[0\]: action keys must be the integers"),
    ({0: {0: [(1.0, 1, 0.0)]}, 1: {0: [(1.0, 0, 0.0, False)]}},
     r"P\[0\]\[0\]\[0\] must be a tuple \(prob, next_state, reward, terminated\), got 3"),
    ({0: {0: [(1.0, 1.5, 0.0, False)]}, 1: {0: [(1.0, 0, 0.0, False)]}},
     r"next state must be an integer"),
    ({0: {0: [(1.5, 1, 0.0, False)]}, 1: {0: [(1.0, 0, 0.0, False)]}}, r"probability"),
    ({0: {0: [(1.0, 1, float("nan"), False)]}, 1: {0: [(1.0, 0, 0.0, False)]}}, r"reward"),
])
def test_from_gymnasium_malformed_table(P, match):
    with pytest.raises(ValueError, match=match):
        fs.TabularMDP.from_gymnasium(_Env(P), gamma=0.9)


def test_occupancy_iterate_reports_non_convergence():
    mdp = fs.random_mdp(6, 2, 3, gamma=0.99, seed=0)
    pi = np.full((6, 2), 0.5)
    occ = fs.occupancy(mdp, pi, initial=0, method="iterate", max_iter=3)
    ref = fs.occupancy(mdp, pi, initial=0, method="direct")
    assert not occ.converged and occ.status == 1 and "max_iter" in occ.message
    assert np.abs(occ.state - ref.state).sum() <= occ.error_bound


@pytest.mark.parametrize("alpha_q", [0.0, 1.5, 2.0, -0.1])
def test_dra_refuses_alpha_q_outside_unit_interval(alpha_q):
    maze = fs.mattar_daw_maze()
    with pytest.raises(ValueError, match="alpha_q"):
        fs.dra.train(maze, **{**fs.dra.MAZE_PARAMS, "alpha_q": alpha_q, "n_episodes": 1})


def test_policy_iteration_is_not_stopped_while_its_bound_still_moves():
    # From the default (optimistic) start the MacQueen bound of modified PI first
    # grows while information spreads over the grid, and mirror descent's bound is
    # not monotone: neither is a stall (both stopped as "stalled" at ~1e3 before).
    m = fs.gridworld(30, 30, slip=0.1)
    r = fs.modified_policy_iteration(m)
    assert r.converged and r.error_bound <= 1e-8
    r = fs.regularized_policy_iteration(m, 0.1, 0.3, evaluation="sweeps")
    assert r.converged and r.error_bound <= 1e-8


def test_sizes_that_cannot_fit_are_refused_before_allocating():
    m = fs.random_mdp(54, 4, 3, gamma=0.9, seed=0)
    with pytest.raises(ValueError, match=r"horizon=1,000,000,000 .* needs about [\d,.]+ GiB"):
        fs.soft_value_iteration(m.with_gamma(1.0), 0.1, horizon=10**9)
    pi = np.full((54, 4), 0.25)
    with pytest.raises(ValueError, match=r"100,000,000 episodes x horizon 10,000 needs about"):
        fs.sample_trajectories(m, pi, n_episodes=10**8, horizon=10**4, seed=0)
