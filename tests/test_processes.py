"""Worker processes after a parallel solve in the parent: fork, spawn, executors, vector envs.

Every pool call has a timeout, so a worker that dies or hangs fails the test
instead of blocking the suite. Workers receive seeds, not MDPs (pickling MDPs
is tested elsewhere).
"""

import concurrent.futures as cf
import multiprocessing as mp

import numba
import numpy as np
import pytest

import fastsoft as fs
from fastsoft import _jit

TIMEOUT = 240  # seconds; a spawned worker may have to load the kernel cache first


def _big(seed):
    # above PARALLEL_MIN_SIZE, so the parent runs parallel twins
    return fs.random_mdp(6_000, 4, 5, gamma=0.9, seed=seed)


def _solve(seed):
    with _jit.parallel_mode(True):
        res = fs.solve(_big(seed), 0.1, tol=1e-6, method="vi")
    return res.V, res.n_iter, _jit.forked_from_openmp()


@pytest.fixture(scope="module")
def parent_results():
    """Solve in the parent with the parallel twins first: this starts Numba's threads."""
    out = {s: _solve(s) for s in (1, 2)}
    if numba.get_num_threads() > 1:
        numba.threading_layer()  # raises if no parallel region ran
    return out


def _check(results, parent_results):
    for seed, (V, n_iter, _) in zip((1, 2), results, strict=True):
        np.testing.assert_array_equal(V, parent_results[seed][0])
        assert n_iter == parent_results[seed][1]


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_pool_after_parallel_solve(parent_results, method):
    if method not in mp.get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    with mp.get_context(method).Pool(2) as pool:
        results = pool.map_async(_solve, [1, 2]).get(timeout=TIMEOUT)
    _check(results, parent_results)
    if method == "fork":
        layer = numba.threading_layer() if numba.get_num_threads() > 1 else None
        # a child of an OpenMP parent runs serial twins (same bits as checked above)
        assert all(r[2] == (layer == "omp") for r in results)
    else:
        assert not any(r[2] for r in results)


def test_process_pool_executor(parent_results):
    with cf.ProcessPoolExecutor(max_workers=2) as ex:
        futures = [ex.submit(_solve, s) for s in (1, 2)]
        results = [f.result(timeout=TIMEOUT) for f in futures]
    _check(results, parent_results)


def _make_env():
    import fastsoft.envs as fe

    # large enough that building it runs the parallel CSR kernels (serial twins in a
    # child forked from an OpenMP parent)
    mdp = fs.gridworld(120, 120, slip=0.1, gamma=0.95)
    return fe.TabularEnv(mdp, max_episode_steps=50)


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_gymnasium_async_vector_env(parent_results, context):
    gym_vector = pytest.importorskip("gymnasium.vector")
    envs = gym_vector.AsyncVectorEnv([_make_env, _make_env], context=context)
    try:
        obs, _ = envs.reset(seed=[3, 4])
        total = np.zeros(2)
        for _ in range(5):
            obs, rew, term, trunc, _ = envs.step(np.array([1, 3]))
            total += rew
    finally:
        envs.close(terminate=True)
    # the same steps in this process
    ref = np.zeros(2)
    for i, seed in enumerate((3, 4)):
        env = _make_env()
        env.reset(seed=seed)
        for _ in range(5):
            _, r, *_ = env.step([1, 3][i])
            ref[i] += r
    np.testing.assert_array_equal(total, ref)


def test_threads_run_solves_concurrently(parent_results):
    with cf.ThreadPoolExecutor(max_workers=2) as ex:
        results = list(ex.map(_solve, [1, 2], timeout=TIMEOUT))
    _check(results, parent_results)


def test_twins_agree_bitwise():
    """Serial and parallel twins give the same bits (sweeps, greedy step, CSR builders)."""
    m = fs.gridworld(100, 100, slip=0.1, gamma=0.95)
    with _jit.parallel_mode(False):
        a = fs.solve(m, 0.1, tol=1e-6, method="vi")
        ma = fs.gridworld(100, 100, slip=0.1, gamma=0.95)
    with _jit.parallel_mode(True):
        b = fs.solve(m, 0.1, tol=1e-6, method="vi")
        mb = fs.gridworld(100, 100, slip=0.1, gamma=0.95)
    np.testing.assert_array_equal(a.V, b.V)
    np.testing.assert_array_equal(a.policy, b.policy)
    assert a.error_bound == b.error_bound and a.n_iter == b.n_iter
    assert ma == mb


def test_set_num_threads_validates():
    with pytest.raises(ValueError, match="NUMBA_NUM_THREADS"):
        fs.set_num_threads(0)
    with pytest.raises(TypeError, match="int"):
        fs.set_num_threads(1.5)
    before = fs.get_num_threads()
    try:
        fs.set_num_threads(1)
        assert fs.get_num_threads() == 1
    finally:
        fs.set_num_threads(before)
