"""pytest-benchmark of fastsoft.solve and policy iteration (small sizes; runs in seconds).

    python -m pytest benchmarks/bench_solve.py --benchmark-only
"""

from __future__ import annotations

import pytest

import fastsoft as fs


@pytest.fixture(scope="module")
def problems():
    return {
        "grid100": fs.gridworld(100, 100, slip=0.1, gamma=0.99),
        "random10k": fs.random_mdp(10_000, 8, 10, gamma=0.99, seed=0),
        "maze": fs.mattar_daw_maze(),
    }


@pytest.mark.parametrize("name", ["grid100", "random10k", "maze"])
@pytest.mark.parametrize("tau", [0.0, 0.1])
def test_solve_auto(benchmark, problems, name, tau):
    mdp = problems[name]
    fs.solve(mdp, tau, tol=1e-6)
    res = benchmark(fs.solve, mdp, tau, tol=1e-6)
    assert res.converged


@pytest.mark.parametrize("evaluation", ["direct", "iterative", "sweeps"])
def test_policy_iteration_grid(benchmark, problems, evaluation):
    mdp = problems["grid100"]
    res = benchmark(fs.regularized_policy_iteration, mdp, 0.1, evaluation=evaluation, tol=1e-6)
    assert res.converged


def test_policy_evaluation_direct(benchmark, problems):
    mdp = problems["grid100"]
    pi = fs.solve(mdp, 0.1, tol=1e-6).policy
    res = benchmark(fs.policy_evaluation, mdp, pi, temperature=0.1, method="direct")
    assert res.converged
