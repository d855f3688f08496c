"""fastsoft.distributed on a LocalCluster of 2 worker processes (skipped without dask).

map_solve must return the local bits; solve_partitioned must agree with an exact
local solve within its certified bound, whatever the partition or thread count;
a worker memory limit that holds a block but not the whole MDP still solves it;
a worker killed mid-solve is reported within a bounded time.
"""

import importlib.util
import os
import time

import numpy as np
import pytest
from conftest import assert_same_result, dense_random_mdp

import fastsoft as fs

distributed = pytest.importorskip("distributed")

from fastsoft.distributed import (  # noqa: E402
    GarnetBlocks,
    GridBlocks,
    PartitionError,
    iter_solves,
    map_solve,
    solve_partitioned,
    submit_solves,
)

# A LocalCluster starts in seconds, but its fresh worker processes then load the
# compiled kernels from the Numba cache (10-20 s under load, minutes after a cold
# compile): the module runs with the slow tests (CI runs them).
pytestmark = [pytest.mark.slow]
if importlib.util.find_spec("pytest_timeout") is not None:
    pytestmark.append(pytest.mark.timeout(600))


def _cluster(**kw):
    kw = {"n_workers": 2, "processes": True, "threads_per_worker": 1,
          "dashboard_address": ":0", "silence_logs": 50, **kw}
    return distributed.LocalCluster(**kw)


@pytest.fixture(scope="module")
def client():
    with _cluster() as cluster, distributed.Client(cluster) as c:
        yield c


def _problems():
    maze = fs.mattar_daw_maze()
    garnet = fs.random_mdp(400, 4, 5, gamma=0.95, seed=1)
    return [maze, (maze, {"temperature": 0.5}), garnet, (garnet, {"method": "pi"}),
            fs.gridworld(9, 11, slip=0.2, walls=[(3, 3)], gamma=0.97),
            dense_random_mdp(20, 3, 0.9, 4, terminal=0.2, infeasible=0.3)]


def _local(problems, **kw):
    out = []
    for p in problems:
        mdp, extra = (p, {}) if isinstance(p, fs.TabularMDP) else p
        out.append(fs.solve(mdp, **{**kw, **extra}))
    return out


def test_map_solve_returns_local_bits(client):
    problems = _problems()
    local = _local(problems, temperature=0.1, tol=1e-9)
    remote = map_solve(client, problems, temperature=0.1, tol=1e-9, progress=True, timeout=120)
    assert len(remote) == len(problems)
    for a, b in zip(local, remote, strict=True):
        assert_same_result(a, b)
    # a worker pool of 2 Numba threads gives the same bits
    remote2 = map_solve(client, problems, temperature=0.1, tol=1e-9, numba_threads=2)
    for a, b in zip(local, remote2, strict=True):
        assert_same_result(a, b)


def test_iter_and_submit(client):
    problems = _problems()[:4]
    local = _local(problems)
    seen = dict(iter_solves(client, problems, timeout=120))
    assert sorted(seen) == list(range(4))
    for i, res in seen.items():
        assert_same_result(local[i], res)
    futs = submit_solves(client, problems, function="soft_value_iteration", temperature=0.2)
    for f, p in zip(futs, problems, strict=True):
        mdp, extra = (p, {}) if isinstance(p, fs.TabularMDP) else p
        if "method" in extra:
            continue  # not a soft_value_iteration argument: that future holds the error
        kw = {"temperature": 0.2, **extra}
        assert_same_result(f.result(timeout=120), fs.soft_value_iteration(mdp, **kw))


def test_map_solve_batch(client):
    mdp = fs.random_mdp(300, 3, 4, gamma=0.9, seed=5)
    rng = np.random.default_rng(0)
    batches = [rng.random((3, 300, 3)) for _ in range(2)]
    res = map_solve(client, [(mdp, {"rewards": R}) for R in batches], function="solve_batch",
                    temperature=0.1, timeout=120)
    for R, r in zip(batches, res, strict=True):
        assert_same_result(fs.solve_batch(mdp, R, temperature=0.1), r)


def test_map_solve_scatters_each_mdp_once(client, monkeypatch):
    calls = []
    real = client.scatter

    def spy(data, **kw):
        calls.append(len(data))
        return real(data, **kw)

    monkeypatch.setattr(client, "scatter", spy)
    mdp = fs.random_mdp(300, 3, 4, gamma=0.9, seed=0)
    res = map_solve(client, [(mdp, {"temperature": t}) for t in (0.0, 0.1, 0.2, 0.4)])
    assert calls == [1]
    assert [r.temperature for r in res] == [0.0, 0.1, 0.2, 0.4]


def test_map_solve_errors(client):
    mdp = fs.mattar_daw_maze()
    with pytest.raises(TypeError, match="single TabularMDP"):
        map_solve(client, mdp)
    with pytest.raises(TypeError, match=r"problems\[1\]"):
        map_solve(client, [mdp, "maze"])
    with pytest.raises(ValueError, match="function"):
        map_solve(client, [mdp], function="nope")
    with pytest.raises(ValueError, match="numba_threads"):
        map_solve(client, [mdp], numba_threads=0)
    with pytest.raises(RuntimeError, match=r"problems\[1\]") as info:
        map_solve(client, [mdp, (mdp, {"temperature": -1.0})], timeout=60)
    assert "temperature" in str(info.value)


def _exact(mdp, tau=0.0, eta=0.0, prior=None):
    method = "pi" if mdp.has_terminal else "vi"
    return fs.solve(mdp, tau, kl_weight=eta, prior=prior, tol=1e-11, method=method)


@pytest.mark.parametrize("case", ["grid", "garnet", "dense_kl"])
def test_partitioned_within_certificate(client, case):
    if case == "grid":
        src, tau, eta, prior = GridBlocks(24, 30, slip=0.1, walls=[(5, 5)], gamma=0.95), \
            0.1, 0.0, None
        mdp = src.whole()
    elif case == "garnet":
        src, tau, eta, prior = GarnetBlocks(3000, 4, 5, gamma=0.95, seed=3), 0.0, 0.0, None
        mdp = src.whole()
    else:
        mdp = dense_random_mdp(40, 3, 0.9, 5, terminal=0.1, infeasible=0.3)
        src, tau, eta, prior = mdp, 0.05, 0.3, np.array([0.5, 0.3, 0.2])
    exact = _exact(mdp, tau, eta, prior)
    assert exact.error_bound < 1e-10
    results = []
    for n_parts, threads in ((2, 1), (3, 2)):
        r = solve_partitioned(client, src, n_parts, tau, kl_weight=eta, prior=prior, tol=1e-7,
                              numba_threads=threads, timeout=120)
        assert r.converged and r.error_bound <= 1e-7
        err = np.abs(r.V - exact.V).max()
        assert err <= r.error_bound + exact.error_bound
        # policy and Q are those of the returned V (a last greedy step)
        TV, Q, pi = fs.bellman_backup(mdp, r.V, tau, kl_weight=eta, prior=prior)
        np.testing.assert_allclose(r.Q, Q, rtol=0, atol=1e-12)
        np.testing.assert_allclose(r.policy, pi, rtol=0, atol=1e-12)
        assert r.extra["n_parts"] == n_parts and len(r.extra["halo"]) == n_parts
        assert r.history["sweeps"][-1] == r.n_iter
        results.append(r)
    a, b = results
    assert np.abs(a.V - b.V).max() <= a.error_bound + b.error_bound


def test_partitioned_one_sweep_per_round_is_jacobi_value_iteration(client):
    """One sweep per round is global Jacobi value iteration: the local iterates, bit for bit
    (hard backups; soft local sweeps use a vectorised exp, the block kernel math.exp)."""
    mdp = fs.random_mdp(2000, 3, 4, gamma=0.9, seed=2)
    local = fs.soft_value_iteration(mdp, 0.0, tol=1e-8, order="jacobi", acceleration=None)
    r = solve_partitioned(client, mdp, 3, 0.0, tol=1e-8, sweeps_per_round=1, order="jacobi")
    assert r.n_iter == local.n_iter
    assert np.array_equal(r.history["error_bound"], local.history["error_bound"])


def test_partitioned_reports_nonconvergence_and_bad_input(client):
    g = GridBlocks(20, 20, slip=0.1, gamma=0.99)
    r = solve_partitioned(client, g, 2, tol=1e-10, max_iter=6, sweeps_per_round=2)
    assert not r.converged and r.n_iter == 6
    exact = _exact(g.whole())
    assert np.abs(r.V - exact.V).max() <= r.error_bound + exact.error_bound
    stops = []
    r = solve_partitioned(client, g, 2, tol=1e-10, callback=lambda info: stops.append(info) or
                          len(stops) == 3)
    assert r.interrupted and len(stops) == 3 and not r.converged
    assert np.abs(r.V - exact.V).max() <= r.error_bound + exact.error_bound
    with pytest.raises(ValueError, match="n_parts"):
        solve_partitioned(client, g, 401)
    with pytest.raises(ValueError, match="prior"):
        solve_partitioned(client, g, 2, prior=np.ones((400, 4)) / 4)
    with pytest.raises(ValueError, match="order"):
        solve_partitioned(client, g, 2, order="red-black")
    with pytest.raises(TypeError, match="builder"):
        solve_partitioned(client, object(), 2)
    with pytest.raises(ValueError, match="prior puts no mass"):
        solve_partitioned(client, dense_random_mdp(10, 3, 0.9, 0, infeasible=0.6), 2,
                          kl_weight=0.1, prior=np.array([0.0, 0.0, 1.0]))


def _rss(dask_worker=None):
    import psutil

    return psutil.Process().memory_info().rss


def test_memory_limit_holds_a_block_not_the_whole_mdp():
    """With the nanny's limit set just above a worker's footprint plus one block, the
    partitioned solve succeeds and the whole-MDP solve on such a worker is killed."""
    g = GridBlocks(1100, 1100, slip=0.1, gamma=0.5)
    config = {"distributed.worker.memory.target": False, "distributed.worker.memory.spill": False,
              "distributed.worker.memory.pause": False,
              "distributed.worker.memory.terminate": 0.95,
              "distributed.scheduler.allowed-failures": 0}
    import dask

    with dask.config.set(config), _cluster(n_workers=4, memory_limit="16GiB") as cluster, \
            distributed.Client(cluster) as c:
        # warm up (imports, compiled kernels), then measure each worker's footprint
        solve_partitioned(c, GridBlocks(30, 30, slip=0.1, gamma=0.5), 4, tol=1e-6)
        base = max(c.run(_rss).values())
        # four blocks of 302 500 states need about 220 MB each at their peak; the whole
        # MDP's arrays alone take more than 300 MB (asserted below), so no builder,
        # however lean, can fit it in the 300 MB allowed above the footprint
        whole_bytes = g.whole().nbytes
        assert whole_bytes > 300e6
        limit = int((base + 300e6) / 0.95)

        def set_limit(dask_worker):
            dask_worker.memory_manager.memory_limit = limit

        c.run(set_limit, nanny=True)
        r = solve_partitioned(c, g, 4, tol=1e-6, timeout=120)
        assert r.converged
        assert max(c.run(_rss).values()) < 0.95 * limit
        exact = fs.solve(g.whole(), tol=1e-10)
        assert np.abs(r.V - exact.V).max() <= r.error_bound + exact.error_bound
        t0 = time.perf_counter()
        fut = c.submit(lambda b: fs.solve(b.whole(), tol=1e-6).V[:1], g, pure=False)
        with pytest.raises(distributed.KilledWorker):
            fut.result(timeout=120)
        assert time.perf_counter() - t0 < 120


def _kill_me():
    os._exit(1)


def _killer(c, victim, at_round):
    seen = []

    def cb(info):
        seen.append(info)
        if len(seen) == at_round:
            seen.append(c.submit(_kill_me, workers=[victim], pure=False))
            time.sleep(1.0)

    return cb, seen


def test_killed_worker_is_reported_or_survived():
    g = GridBlocks(60, 60, slip=0.1, gamma=0.99)
    exact = _exact(g.whole())
    with _cluster() as cluster, distributed.Client(cluster) as c:
        victim = sorted(c.scheduler_info()["workers"])[1]
        cb, seen = _killer(c, victim, 3)
        t0 = time.perf_counter()
        with pytest.raises(PartitionError, match="block 1"):
            solve_partitioned(c, g, 2, tol=1e-12, sweeps_per_round=1, timeout=20, callback=cb)
        assert time.perf_counter() - t0 < 90
        assert len(seen) >= 4
        # with retries the lost block is rebuilt on a live worker and the solve goes on
        c.wait_for_workers(2, timeout=60)
        victim = sorted(c.scheduler_info()["workers"])[0]
        cb, seen = _killer(c, victim, 3)
        r = solve_partitioned(c, g, 2, tol=1e-6, timeout=20, retries=2, callback=cb)
        assert len(seen) >= 4 and r.extra["recovered"]
        assert r.extra["recovered"][0]["block"] == 0
        assert r.converged
        assert np.abs(r.V - exact.V).max() <= r.error_bound + exact.error_bound
