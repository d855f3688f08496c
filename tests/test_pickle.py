"""Pickling and deep copies of TabularMDP and of every result type, and solves in
worker processes (spawn Pool, ProcessPoolExecutor) that return the local bits."""

import copy
import multiprocessing as mp
import pickle
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from conftest import assert_same_result, dense_random_mdp

import fastsoft as fs
from fastsoft import dra, inference

ARRAYS = ("indptr", "indices", "probs", "rewards", "terminal", "initial")


def _roundtrips(obj):
    yield "pickle", pickle.loads(pickle.dumps(obj))
    yield "pickle-5-oob", _oob(obj)
    yield "deepcopy", copy.deepcopy(obj)


def _oob(obj):
    buffers = []
    data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    return pickle.loads(data, buffers=buffers)


@pytest.fixture(scope="module")
def maze():
    return fs.mattar_daw_maze()


def _check_mdp_copy(m, c):
    assert c is not m and type(c) is fs.TabularMDP
    assert c == m
    assert (c.n_states, c.n_actions, c.gamma) == (m.n_states, m.n_actions, m.gamma)
    for name in ARRAYS:
        a, b = getattr(m, name), getattr(c, name)
        if a is None:
            assert b is None
            continue
        assert b.dtype == a.dtype and b.tobytes() == a.tobytes()
        assert not b.flags.writeable, f"{name} must stay read-only"
    assert dict(c.info).keys() == dict(m.info).keys()
    with pytest.raises(TypeError):
        c.info["x"] = 1  # still a read-only mapping
    with pytest.raises(AttributeError):
        c.gamma = 0.5
    assert c._cache == {}


@pytest.mark.parametrize("which", ["maze", "grid_f32", "dense_terminal", "garnet"])
def test_mdp_roundtrip(which, maze):
    m = {
        "maze": maze,
        "grid_f32": fs.gridworld(5, 6, slip=0.1, walls=[(1, 1)], dtype=np.float32),
        "dense_terminal": dense_random_mdp(9, 3, 0.9, 0, terminal=0.3, infeasible=0.2),
        "garnet": fs.random_mdp(50, 3, 4, gamma=0.9, seed=1).with_initial(np.full(50, 0.02)),
    }[which]
    fs.solve(m, 0.1)  # fills the derived cache, which must not travel
    assert m._cache
    for _how, c in _roundtrips(m):
        _check_mdp_copy(m, c)
        assert_same_result(fs.solve(c, 0.1), fs.solve(m, 0.1))


def test_mdp_pickle_is_cheap(monkeypatch, maze):
    """Unpickling goes through the trusted constructor: no validation, no cache shipped."""
    m = fs.random_mdp(2000, 4, 5, gamma=0.9, seed=0)
    fs.solve(m, 0.1, method="vi")
    data = pickle.dumps(m, protocol=5)
    assert len(data) < m.nbytes + 2000  # the arrays, once, and a little framing

    def refuse(*args, **kwargs):
        raise AssertionError("unpickling re-validated the MDP")

    monkeypatch.setattr(fs.TabularMDP, "_build", classmethod(refuse))
    c = pickle.loads(data)
    assert c == m
    # deepcopy copies the arrays (not shared with the original) without validating
    d = copy.deepcopy(m)
    assert not np.shares_memory(d.probs, m.probs) and d == m
    # a shallow copy may share them: the MDP is immutable
    assert copy.copy(m) == m


def _results(maze):
    sol = fs.solve(maze, 0.1)
    pol = sol.policy
    g = fs.gridworld(4, 4, gamma=0.9)
    hyper = dict(beta=10.0, lam=0.1, sigma_base=5.0, sigma0=3.0, alpha_q=0.1, alpha_sigma=0.1)
    trained = dra.train(maze, n_episodes=5, n_eval=2, seed=0, **hyper)
    return {
        "solve": sol,
        "solve_pi": fs.solve(maze, 0.1, method="pi"),
        "finite": fs.soft_value_iteration(g.with_gamma(1.0), 0.1, horizon=4),
        "dra": trained,
        "dra_gradient": dra.estimate_gradient(maze, trained.qbar[0], trained.sigma[0], seed=0,
                                              n_traj=3, **{k: hyper[k] for k in
                                                           ("beta", "lam", "sigma_base")}),
        "trajectories": fs.sample_trajectories(maze, pol, n_episodes=4, horizon=6, seed=0),
        "monte_carlo": fs.monte_carlo_evaluation(maze, pol, n_episodes=4, horizon=6, seed=0),
        "occupancy": fs.occupancy(maze, pol),
        "batch": fs.solve_batch(g, np.stack([g.rewards, g.rewards * 0.5]), temperature=0.1),
        "backward": inference.backward_pass(g, 3, shift=True),
        "enumeration": inference.enumerate_trajectories(g, np.full((16, 4), 0.25), 2),
        "mutual_information": inference.mutual_information(g, np.full((16, 4), 0.25), 2,
                                                           shift=True),
        "elbo": inference.elbo(g, np.full((4, 16, 4), 0.25), 4, shift=True),
    }


def test_results_roundtrip(maze):
    results = _results(maze)
    for name, res in results.items():
        for how, c in _roundtrips(res):
            assert type(c) is type(res), (name, how)
            assert_same_result(res, c, f"{name}/{how}")
    trained = results["dra"]
    c = pickle.loads(pickle.dumps(trained))
    assert type(c.params) is type(trained.params)
    with pytest.raises(TypeError):
        c.params["beta"] = 1.0  # still read-only
    plain = dra.DRAResult(**{**trained.__dict__, "params": {"a": 1}})
    assert type(pickle.loads(pickle.dumps(plain)).params) is dict


def _problems():
    return [fs.mattar_daw_maze(), fs.random_mdp(300, 3, 4, gamma=0.95, seed=2),
            fs.gridworld(6, 7, slip=0.2, gamma=0.95)]


def test_spawn_pool_and_executor_return_local_bits():
    """A solve of a pickled MDP in a fresh (spawn) process returns the local result's bits."""
    probs = _problems()
    local = [fs.solve(m, 0.2) for m in probs]
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        remote = [pool.apply_async(fs.solve, (m, 0.2)).get(timeout=120) for m in probs]
    for a, b in zip(local, remote, strict=True):
        assert_same_result(a, b)
    with ProcessPoolExecutor(1, mp_context=ctx) as ex:
        remote = list(ex.map(fs.solve, probs, [0.2] * len(probs), timeout=120))
    for a, b in zip(local, remote, strict=True):
        assert_same_result(a, b)
