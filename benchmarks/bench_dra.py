"""pytest-benchmark: DRA on the Mattar & Daw maze (learning + gradient loop, no evaluation).

    pytest benchmarks/bench_dra.py --benchmark-only

``extra_info`` holds the environment steps and nanoseconds per step (best round).
``benchmarks/dra_speed.py`` prints the same figures and their ratios in one run.
"""

import numba
import numpy as np
import pytest

import fastsoft as fs
from fastsoft import dra
from fastsoft.reference import dra as rdra

PARAMS = {k: v for k, v in dra.MAZE_PARAMS.items() if k != "n_episodes"}


@pytest.fixture(scope="module")
def maze():
    m = fs.mattar_daw_maze()
    dra.train(m, **PARAMS, n_episodes=2, n_eval=0)  # compile / load the cache
    return m


@pytest.fixture
def threads():
    before = numba.get_num_threads()

    def set_threads(n):
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))

    yield set_threads
    numba.set_num_threads(before)


def record(benchmark, result):
    steps = int(np.sum(result.n_steps))
    benchmark.extra_info["steps"] = steps
    assert steps > 0
    if benchmark.stats is not None:  # None under --benchmark-disable (a smoke run)
        benchmark.extra_info["ns_per_step"] = benchmark.stats.stats.min / steps * 1e9


def test_kernel_one_thread(benchmark, maze, threads):
    threads(1)
    r = benchmark(dra.train, maze, **PARAMS, n_episodes=1000, n_eval=0, seed=0)
    record(benchmark, r)


def test_reference_loop(benchmark, maze):
    r = benchmark.pedantic(rdra.train, args=(maze,),
                           kwargs=dict(PARAMS, n_episodes=10, n_eval=0, seed=0),
                           rounds=1, iterations=1)
    record(benchmark, r)


def test_kernel_same_work_as_reference(benchmark, maze, threads):
    threads(1)
    r = benchmark(dra.train, maze, **PARAMS, n_episodes=10, n_eval=0, seed=0)
    record(benchmark, r)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_parallel_runs(benchmark, maze, threads, n_threads):
    threads(n_threads)
    r = benchmark(dra.train, maze, **PARAMS, n_episodes=500, n_runs=4, n_eval=0, seed=0)
    record(benchmark, r)
