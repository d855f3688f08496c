"""fastsoft.dra.train: results, reproducibility, parallel runs, variants and baselines."""

import numpy as np
import pytest

import fastsoft as fs
from fastsoft import dra

SHORT = dict(dra.MAZE_PARAMS, n_episodes=30)


@pytest.fixture(scope="module")
def maze():
    return fs.mattar_daw_maze()


def kl(s, sb):
    return np.log(sb / s) + s**2 / (2 * sb**2) - 0.5


def test_result_shapes_and_bookkeeping(maze):
    r = dra.train(maze, **SHORT, n_runs=3, seed=0, eval_every=10, n_eval=20)
    S, A = maze.n_states, maze.n_actions
    assert isinstance(r, dra.DRAResult) and r.n_runs == 3
    assert r.qbar.shape == r.sigma.shape == (3, S, A)
    assert r.n_steps.dtype == np.int64 and r.n_steps.shape == (3,)
    assert r.returns.shape == (3, 30) and r.state_visits.shape == (3, S)
    np.testing.assert_array_equal(r.history.episode, [10, 20, 30])
    for name in ("reward", "cost", "entropy_term", "objective"):
        assert getattr(r.history, name).shape == (3, 3)
    assert r.history.state_entropy.shape == (3, 3, S)
    assert np.all(np.isnan(r.sigma_scalar))
    # maze: every learning episode reaches the goal; return = 10 - (steps - 1)
    learn_steps = (11 - r.returns).sum(axis=1)
    np.testing.assert_array_equal(r.state_visits.sum(axis=1), learn_steps)
    # n_steps counts learning + gradient + evaluation rollouts
    r0 = dra.train(maze, **SHORT, n_runs=3, seed=0, n_eval=0)
    r1 = dra.train(maze, **{**SHORT, "n_traj": 1}, n_runs=3, seed=0, n_eval=0)
    assert np.all(r.n_steps > r0.n_steps) and np.all(r0.n_steps > r1.n_steps)
    assert np.all(r0.n_steps > learn_steps)
    assert r0.history.reward.shape == (3, 0)
    with pytest.raises(ValueError, match="n_eval"):
        _ = r0.final_reward
    # objective = reward - cost + entropy term; cost = lam * sum of the memories' KL
    h = r.history
    np.testing.assert_allclose(h.objective, h.reward - h.cost + h.entropy_term)
    assert np.all(h.entropy_term == 0.0)
    cost = 0.1 * np.where(r.memories, kl(r.sigma, 5.0), 0.0).sum(axis=(1, 2))
    np.testing.assert_allclose(h.cost[:, -1], cost, rtol=1e-12)
    assert r.final_objective == pytest.approx(h.objective[:, -1].mean())
    assert r.final_reward == pytest.approx(h.reward[:, -1].mean())
    assert r.final_cost == pytest.approx(h.cost[:, -1].mean())
    # memories: feasible actions of non-terminal states (walls and the goal are terminal)
    np.testing.assert_array_equal(r.memories, ~maze.terminal[:, None] & np.ones((1, 4), bool))
    np.testing.assert_array_equal(r.sigma[:, ~r.memories], 3.0)
    np.testing.assert_array_equal(r.qbar[:, ~r.memories], 0.0)
    ent = h.state_entropy
    assert np.all(np.isnan(ent[:, :, maze.terminal]))
    live = ent[:, :, ~maze.terminal]
    assert np.all((live >= 0) & (live <= np.log(4) + 1e-12))
    assert r.params["beta"] == 10.0 and r.params["allocation"] == "dra"


def test_same_seed_same_result_and_run_streams(maze):
    a = dra.train(maze, **SHORT, n_runs=2, seed=5, n_eval=5)
    b = dra.train(maze, **SHORT, n_runs=2, seed=5, n_eval=5)
    np.testing.assert_array_equal(a.qbar, b.qbar)
    np.testing.assert_array_equal(a.history.objective, b.history.objective)
    assert not np.array_equal(a.qbar[0], a.qbar[1])  # runs are independent
    c = dra.train(maze, **SHORT, n_runs=2, seed=6, n_eval=5)
    assert not np.array_equal(a.qbar, c.qbar)
    # run r's stream does not depend on how many runs there are
    one = dra.train(maze, **SHORT, n_runs=1, seed=5, n_eval=5)
    np.testing.assert_array_equal(one.qbar[0], a.qbar[0])
    np.testing.assert_array_equal(one.sigma[0], a.sigma[0])
    # a Generator seed is accepted (and spawns fresh streams)
    g = np.random.default_rng(5)
    d = dra.train(maze, **SHORT, seed=g, n_eval=0)
    np.testing.assert_array_equal(d.qbar[0], one.qbar[0])


def test_results_do_not_depend_on_thread_count(maze, threads):
    kw = dict(SHORT, n_runs=4, seed=3, eval_every=15, n_eval=10)
    threads(threads.counts[0])
    a = dra.train(maze, **kw)
    threads(threads.counts[1])
    b = dra.train(maze, **kw)
    for name in ("qbar", "sigma", "n_steps", "returns", "state_visits"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.history.state_entropy, b.history.state_entropy)


def test_evaluation_has_its_own_stream(maze):
    a = dra.train(maze, **SHORT, seed=1, n_eval=0)
    b = dra.train(maze, **SHORT, seed=1, eval_every=4, n_eval=30)
    np.testing.assert_array_equal(a.qbar, b.qbar)
    np.testing.assert_array_equal(a.sigma, b.sigma)
    np.testing.assert_array_equal(b.history.episode, [4, 8, 12, 16, 20, 24, 28, 30])


def test_hyperparameter_grid_runs_match_single_runs(maze):
    betas = np.array([2.0, 10.0])
    grid = dra.train(maze, **{**SHORT, "beta": betas}, n_runs=2, seed=4, n_eval=3)
    single = dra.train(maze, **{**SHORT, "beta": 10.0}, n_runs=2, seed=4, n_eval=3)
    np.testing.assert_array_equal(grid.qbar[1], single.qbar[1])
    assert not np.array_equal(grid.qbar[0], single.qbar[0])
    np.testing.assert_array_equal(grid.params["beta"], betas)


def test_max_steps_truncates_every_episode(maze):
    r = dra.train(maze, **{**SHORT, "n_episodes": 5, "n_traj": 3}, max_steps=4, seed=0,
                  n_eval=7)
    assert np.all(r.returns >= -4)  # at most 4 steps of reward -1
    assert np.all(r.n_steps <= 5 * (1 + 3) * 4 + 7 * 4)
    assert np.all(r.state_visits.sum(axis=1) <= 5 * 4)


def test_mdp_without_terminal_states_runs_with_max_steps():
    # no terminal state at all: episodes are cut by max_steps
    m = fs.random_mdp(6, 2, 3, gamma=0.9, seed=0).with_initial(np.full(6, 1 / 6))
    r = dra.train(m, beta=1.0, lam=0.1, sigma_base=2.0, sigma0=1.0, alpha_q=0.1,
                  alpha_sigma=0.1, n_episodes=3, n_traj=2, max_steps=7, seed=0, n_eval=2)
    np.testing.assert_array_equal(r.n_steps, [3 * 3 * 7 + 2 * 7])


def test_infeasible_actions_are_never_taken():
    """Action 1 of state 0 is infeasible; its huge successor reward would show if it were taken."""
    P = np.zeros((3, 2, 3))
    P[0, 0, 1] = 1.0
    P[0, 1, 2] = 1.0
    P[1, :, 2] = 1.0
    P[2, :, 2] = 1.0
    R = np.array([[0.0, -np.inf], [1.0, 2.0], [0.0, 0.0]])
    m = fs.TabularMDP.from_dense(P, R, 0.9, terminal=np.array([False, False, True]),
                                 initial=[1.0, 0.0, 0.0])
    r = dra.train(m, beta=1.0, lam=0.1, sigma_base=2.0, sigma0=1.5, alpha_q=0.2,
                  alpha_sigma=0.1, n_episodes=50, seed=0, n_eval=20)
    assert r.qbar[0, 0, 1] == 0.0 and r.sigma[0, 0, 1] == 1.5
    assert r.state_visits[0, 1] == 50  # every episode goes through state 1
    assert not r.memories[0, 1] and r.memories[0, 0]
    assert np.all(np.isfinite(r.returns))


def test_q_learning_and_expected_sarsa_differ(maze):
    a = dra.train(maze, **SHORT, seed=0, n_eval=0)
    b = dra.train(maze, **SHORT, seed=0, n_eval=0, update="q_learning")
    assert not np.allclose(a.qbar, b.qbar)


@pytest.mark.parametrize("allocation", ["equal", "frequency", "stakes"])
def test_baselines_share_one_scalar(maze, allocation):
    r = dra.train(maze, **{**SHORT, "n_episodes": 60}, allocation=allocation, n_runs=2,
                  seed=7, n_eval=5)
    c = r.sigma_scalar
    assert np.all(np.isfinite(c)) and np.all(c != 3.0)
    mem = r.memories
    live = np.flatnonzero(mem.any(axis=1))
    for i in range(2):
        if allocation == "equal":
            w = np.ones(maze.n_states)
        elif allocation == "frequency":
            n = r.state_visits[i] + 1.0
            w = n[live].mean() / n
        else:
            d = np.ones(maze.n_states)
            d[live] = [np.std(r.qbar[i, s, mem[s]]) + 1e-6 for s in live]
            w = d[live].mean() / d
        expect = np.clip(c[i] * w[:, None], 0.01, 100.0) * np.ones((1, 4))
        np.testing.assert_allclose(r.sigma[i][mem], expect[mem], rtol=1e-12)
        # sigma is constant within a state: one number per state
        assert np.all(np.ptp(r.sigma[i][live], axis=1) == 0.0)


def test_equal_precision_gradient_is_the_sum_of_memory_gradients(maze):
    """One step of the scalar from sigma0: c1 = sigma0 + alpha * sum(grad - lam dKL/dsigma).

    The gradient rollouts consume the learning stream right after the learning episode;
    ``estimate_gradient`` replays them from a generator positioned there (reference loop)."""
    from fastsoft.reference import dra as rdra

    kw = dict(beta=2.0, lam=0.1, sigma_base=5.0, sigma0=3.0, alpha_q=0.1, alpha_sigma=0.01,
              n_episodes=1, n_traj=5, max_steps=30, seed=8, n_eval=0)
    r = dra.train(maze, allocation="equal", **kw)
    # replay: learning episode, then the gradient rollouts from the same generator
    rng, _ = dra._core._spawn_generators(8, 1)[0]
    env = rdra._Env(maze)
    qbar, sigma, counts = np.zeros((54, 4)), np.full((54, 4), 3.0), np.zeros(54)
    rdra._learn_episode(env, qbar, sigma, 2.0, 0.9, 0.1, 0, 30, rng, counts)
    g = dra.estimate_gradient(maze, qbar, sigma, beta=2.0, lam=0.1, sigma_base=5.0, n_traj=5,
                              max_steps=30, seed=rng)
    mem = r.memories
    total = ((g.reward + g.entropy).mean(axis=0) - g.cost)[mem].sum()
    assert r.sigma_scalar[0] == pytest.approx(3.0 + 0.01 * total, rel=1e-12)
    np.testing.assert_allclose(r.qbar[0], qbar, rtol=0, atol=1e-13)


def test_variants_change_the_objective_terms(maze):
    base = dra.train(maze, **SHORT, seed=2, n_eval=50)
    acc = dra.train(maze, **SHORT, seed=2, n_eval=50, cost="access")
    ent = dra.train(maze, **SHORT, seed=2, n_eval=50, entropy_bonus=True)
    assert np.all(ent.history.entropy_term > 0)
    assert np.all(base.history.entropy_term == 0)
    # the access cost charges every visit: positive, and different from the allocation cost
    assert np.all(acc.history.cost > 0)
    assert not np.allclose(acc.history.cost, base.history.cost)
    assert not np.array_equal(acc.sigma, base.sigma)
    assert not np.array_equal(ent.sigma, base.sigma)


def test_maze_switch_moves_the_goal(maze):
    r = dra.train(maze, **{**dra.MAZE_PARAMS, "n_episodes": 600}, switch_episode=300, seed=0,
                  n_runs=2, n_eval=0)
    # after the switch (0, 6) is the goal: entering it from (0, 5) (state 5, right) pays 10
    assert np.all(r.qbar[:, 5, 3] > 8.0)
    # the old goal (0, 8) is now an ordinary cell with memories
    assert r.memories[8].all() and not r.memories[6].any()
    explicit = dra.train(maze, **{**dra.MAZE_PARAMS, "n_episodes": 600}, switch_episode=300,
                         switch_mdp=fs.mattar_daw_maze(switch=True), seed=0, n_runs=2, n_eval=0)
    np.testing.assert_array_equal(r.qbar, explicit.qbar)


def test_huys_planning_task_learns():
    """Huys et al. task (paper's beta, lam, sigma_base = sigma0): far better than chance."""
    m = fs.huys_planning_task(3)
    assert m.n_states == 24 and m.n_actions == 2 and m.gamma == 1.0
    r = dra.train(m, **dra.HUYS_PARAMS, alpha_q=0.1, alpha_sigma=1.0, n_episodes=3000,
                  n_runs=4, seed=0, n_eval=1000)
    random_policy = -27.5  # expected return of the uniform policy, depth 3, uniform start
    assert r.final_reward > random_policy + 20
    assert np.all(r.sigma[:, r.memories] <= 100.0)
    assert r.final_cost > 0
