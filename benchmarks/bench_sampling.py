"""pytest-benchmark suite for sampling, Monte Carlo, occupancy and inference.

Run with ``pytest benchmarks/bench_sampling.py --benchmark-only``. The
``steps_per_s`` extra info of the sampling benchmarks is the throughput; compare
``test_python_loop_tabular_env`` for the Python baseline (same MDP and policy).
"""

import numpy as np
import pytest

import fastsoft as fs
from fastsoft.envs import TabularEnv, TabularVectorEnv
from fastsoft.inference import backward_pass
from fastsoft.sampling import monte_carlo_evaluation, occupancy, sample_trajectories


def _rate(benchmark, steps):
    """Record steps per second (median time) when timings were taken."""
    if benchmark.stats is not None:
        benchmark.extra_info["steps_per_s"] = steps / benchmark.stats.stats.median


@pytest.fixture(scope="module")
def garnet():
    mdp = fs.random_mdp(1000, 4, 8, gamma=0.99, seed=0)
    return mdp, np.full((1000, 4), 0.25)


def test_sample_trajectories(benchmark, garnet):
    mdp, pi = garnet
    n, H = 5_000, 1_000
    sample_trajectories(mdp, pi, n_episodes=10, horizon=10, seed=0)
    tr = benchmark(sample_trajectories, mdp, pi, n_episodes=n, horizon=H, seed=0)
    _rate(benchmark, tr.n_steps)
    assert tr.n_steps == n * H


def test_monte_carlo_returns(benchmark, garnet):
    mdp, pi = garnet
    n, H = 5_000, 1_000
    monte_carlo_evaluation(mdp, pi, n_episodes=10, horizon=10, seed=0)
    mc = benchmark(monte_carlo_evaluation, mdp, pi, n_episodes=n, horizon=H, seed=0)
    _rate(benchmark, n * H)
    assert np.isfinite(mc.value)


def test_python_loop_tabular_env(benchmark, garnet):
    mdp, pi = garnet
    env = TabularEnv(mdp)
    cum = np.cumsum(pi, axis=1)
    cum[:, -1] = np.inf
    n = 20_000

    def loop():
        s, _ = env.reset(seed=0)
        rng = env.np_random
        for _ in range(n):
            s, _r, term, trunc, _ = env.step(int(np.searchsorted(cum[s], rng.random(), "right")))
            if term or trunc:
                s, _ = env.reset()

    benchmark.pedantic(loop, rounds=3, iterations=1)
    _rate(benchmark, n)


def test_vector_env_step(benchmark, garnet):
    mdp, _ = garnet
    venv = TabularVectorEnv(mdp, 10_000)
    venv.reset(seed=0)
    actions = np.zeros(10_000, dtype=np.int64)
    benchmark(venv.step, actions)
    _rate(benchmark, 10_000)


def test_occupancy_direct(benchmark):
    mdp = fs.gridworld(100, 100, slip=0.1, gamma=0.99)
    pi = np.full((mdp.n_states, 4), 0.25)
    occ = benchmark(occupancy, mdp, pi)
    assert occ.state.sum() <= 1 + 1e-9


def test_backward_pass(benchmark):
    mdp = fs.gridworld(100, 100, slip=0.1, gamma=0.99)
    backward_pass(mdp, 2, shift=True)
    bp = benchmark(backward_pass, mdp, 100, shift=True)
    assert np.isfinite(bp.log_evidence)
