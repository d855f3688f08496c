"""pytest-benchmark: one soft sweep and one full solve, fastsoft vs ``fastsoft.reference``.

Run::

    python -m pytest benchmarks/bench_sweep.py --benchmark-only            # small sizes
    FASTSOFT_BENCH_FULL=1 python -m pytest benchmarks/bench_sweep.py --benchmark-only

``FASTSOFT_BENCH_FULL=1`` uses the issue's sizes: ``random_mdp(100_000, 8, 10)``
and the 1000 x 1000 gridworld (slip 0.1, gamma 0.99). Ratios are printed by
``benchmarks/sweep_ratios.py``.
"""

import os

import numpy as np
import pytest

import fastsoft as fs
from fastsoft import reference as ref

FULL = os.environ.get("FASTSOFT_BENCH_FULL") == "1"
N_GRID = 1000 if FULL else 200
N_RAND = 100_000 if FULL else 10_000
TAU = 0.1


@pytest.fixture(scope="module", params=["gridworld", "random"])
def problem(request):
    if request.param == "gridworld":
        mdp = fs.gridworld(N_GRID, N_GRID, slip=0.1, gamma=0.99)
    else:
        mdp = fs.random_mdp(N_RAND, 8, 10, gamma=0.99, seed=0)
    V = np.random.default_rng(0).normal(size=mdp.n_states)
    return request.param, mdp, V


def test_soft_sweep_fastsoft(benchmark, problem):
    name, mdp, V = problem
    benchmark.group = f"soft sweep {name}"
    # the same work as the reference: TV, Q and the policy
    TV = benchmark(lambda: fs.bellman_backup(mdp, V, TAU)[0])
    assert np.all(np.isfinite(TV))


def test_soft_sweep_reference(benchmark, problem):
    name, mdp, V = problem
    benchmark.group = f"soft sweep {name}"
    P = ref.transition_matrix(mdp)
    TV = benchmark(lambda: ref.bellman_backup(mdp, V, TAU, P=P)[0])
    assert np.all(np.isfinite(TV))


def test_full_solve_fastsoft(benchmark, problem):
    name, mdp, _ = problem
    benchmark.group = f"full solve {name}"
    res = benchmark.pedantic(lambda: fs.soft_value_iteration(mdp, TAU, tol=1e-8), rounds=3)
    assert res.converged


def test_full_solve_reference(benchmark, problem):
    name, mdp, _ = problem
    if name == "gridworld" and FULL:
        pytest.skip("the reference needs thousands of 0.4 s sweeps here; see sweep_ratios.py")
    benchmark.group = f"full solve {name}"
    out = benchmark.pedantic(lambda: ref.soft_value_iteration(mdp, TAU, tol=1e-8), rounds=1)
    assert out["converged"]
