"""Anderson-accelerated value iteration and the regularized pessimistic start."""

import numpy as np
import pytest
from conftest import ZOO, small_mdp
from hypothesis import given
from hypothesis import strategies as st

import fastsoft as fs
from fastsoft import reference as ref
from fastsoft._bundles import make_regularizer
from fastsoft.vi import pessimistic_start, use_anderson

REGS = [(0.0, 0.0), (0.3, 0.0), (0.0, 0.5), (0.2, 0.4)]


@pytest.mark.parametrize("name", sorted(ZOO))
@pytest.mark.parametrize("tau,eta", REGS)
@pytest.mark.parametrize("order", ["jacobi", "gauss-seidel"])
@pytest.mark.parametrize("depth", [1, 3])
def test_kernel_matches_reference(name, tau, eta, order, depth):
    mdp = ZOO[name]
    V0 = pessimistic_start(mdp, make_regularizer(mdp, tau, eta, None))
    kw = dict(kl_weight=eta, order=order, acceleration="anderson", anderson_depth=depth,
              parallel=False, V0=V0)
    # the first iterates: the same points, sweep by sweep
    for n in (3, 8):
        k = fs.soft_value_iteration(mdp, tau, tol=1e-300, max_iter=n, **kw)
        r = ref.anderson_value_iteration(mdp, tau, eta, order=order, depth=depth, tol=1e-300,
                                         max_iter=n, V0=V0)
        assert k.n_iter == r["n_iter"] == n
        np.testing.assert_allclose(k.history["error_bound"], r["history"], rtol=1e-7,
                                   atol=1e-11)
        np.testing.assert_allclose(k.V, r["V"], rtol=1e-10, atol=1e-10)
    # the whole run
    k = fs.soft_value_iteration(mdp, tau, tol=1e-9, **kw)
    r = ref.anderson_value_iteration(mdp, tau, eta, order=order, depth=depth, tol=k.tol,
                                     V0=V0)
    assert k.converged and r["converged"]
    assert abs(k.n_iter - r["n_iter"]) <= 1
    np.testing.assert_allclose(k.V, r["V"], atol=2e-9)


@pytest.mark.parametrize("name", sorted(ZOO))
@pytest.mark.parametrize("order", ["jacobi", "gauss-seidel"])
def test_parallel_answer_is_certified_and_thread_independent(name, order, threads):
    mdp = ZOO[name]
    exact = ref.soft_value_iteration(mdp, 0.3, tol=1e-12)["V"]
    runs = []
    for t in sorted({1, threads.before}):
        threads(t)
        runs.append(fs.soft_value_iteration(mdp, 0.3, tol=1e-8, order=order,
                                            acceleration="anderson", parallel=True))
    for res in runs:
        assert res.converged and res.method.endswith("+anderson")
        assert np.max(np.abs(res.V - exact)) <= res.error_bound + 1e-11
        np.testing.assert_array_equal(res.V, runs[0].V)
        assert res.n_iter == runs[0].n_iter


@pytest.mark.parametrize("tau", [0.0, 0.05, 0.2, 0.5])
def test_fewer_sweeps_on_a_soft_grid(tau):
    # far from the goal the soft policy is nearly uniform and plain sweeps relax
    # like a diffusion (400-600 sweeps at tau 0.2-0.5 on 100 x 100); hard and
    # nearly hard runs gain little but must stay correct (hard plain sweeps
    # follow the greedy flow and beat the accelerated alternating ones here)
    mdp = fs.gridworld(100, 100, slip=0.1, gamma=0.99)
    plain = fs.soft_value_iteration(mdp, tau, tol=1e-6, order="gauss-seidel", acceleration=None)
    acc = fs.soft_value_iteration(mdp, tau, tol=1e-6, order="gauss-seidel",
                                  acceleration="anderson")
    assert plain.converged and acc.converged
    if tau >= 0.2:
        assert acc.n_iter * 2 < plain.n_iter
    elif tau > 0:
        assert acc.n_iter <= 1.1 * plain.n_iter
    assert np.max(np.abs(acc.V - plain.V)) <= acc.error_bound + plain.error_bound


def test_auto_choice():
    grid = fs.gridworld(10, 10, slip=0.1)
    garnet = ZOO["garnet"]
    assert use_anderson(grid, make_regularizer(grid, 0.1, 0.0, None), "gauss-seidel")
    assert not use_anderson(grid, make_regularizer(grid, 0.0, 0.0, None), "gauss-seidel")
    assert not use_anderson(grid, make_regularizer(grid, 0.1, 0.0, None), "jacobi")
    assert not use_anderson(garnet, make_regularizer(garnet, 0.1, 0.0, None), "gauss-seidel")
    res = fs.soft_value_iteration(grid, 0.1, order="gauss-seidel")
    assert res.method == "soft_value_iteration[gauss-seidel]+anderson"
    assert fs.solve(grid, 0.1).method.endswith("+anderson")
    assert not fs.soft_value_iteration(grid, 0.1, order="gauss-seidel",
                                       acceleration=None).method.endswith("+anderson")


def test_callback_batches_do_not_change_the_run():
    mdp = fs.gridworld(40, 40, slip=0.1, gamma=0.99)
    kw = dict(tol=1e-7, order="gauss-seidel", acceleration="anderson")
    plain = fs.soft_value_iteration(mdp, 0.1, **kw)
    seen = []
    cb = fs.soft_value_iteration(mdp, 0.1, callback=lambda info: seen.append(info["n_iter"]),
                                 **kw)
    assert len(seen) > 2
    assert cb.n_iter == plain.n_iter
    np.testing.assert_array_equal(cb.V, plain.V)
    stopped = fs.soft_value_iteration(mdp, 0.1, callback=lambda info: info["n_iter"] >= 6, **kw)
    assert stopped.interrupted and not stopped.converged and stopped.n_iter >= 6
    assert np.max(np.abs(stopped.V - plain.V)) <= stopped.error_bound + plain.error_bound


def test_non_convergence_is_reported_with_an_honest_bound():
    mdp = fs.gridworld(30, 30, slip=0.1, gamma=0.999)
    res = fs.soft_value_iteration(mdp, 0.2, tol=1e-10, max_iter=7, order="gauss-seidel",
                                  acceleration="anderson")
    assert not res.converged and res.n_iter == 7
    exact = fs.soft_value_iteration(mdp, 0.2, tol=1e-9, order="gauss-seidel")
    assert np.max(np.abs(res.V - exact.V)) <= res.error_bound + 1e-8


@pytest.mark.parametrize(
    "kwargs,exc,pattern",
    [
        ({"acceleration": "aitken"}, ValueError, "acceleration must be one of"),
        ({"anderson_depth": 0}, ValueError, "anderson_depth must be >= 1"),
        ({"anderson_depth": 21}, ValueError, "anderson_depth must be at most 20"),
        ({"anderson_depth": 2.5}, TypeError, "anderson_depth must be an integer"),
    ],
)
def test_validation(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        fs.soft_value_iteration(ZOO["grid"], 0.1, **kwargs)


@given(st.integers(1, 6), st.integers(1, 4), st.floats(0.0, 0.97), st.floats(0.0, 3.0),
       st.floats(0.0, 3.0), st.booleans(), st.integers(0, 10_000))
def test_pessimistic_start_is_a_lower_bound(S, A, gamma, tau, eta, terminal, seed):
    mdp = small_mdp((S, A, seed), gamma, infeasible=0.3, terminal=0.3 if terminal else 0.0)
    reg = make_regularizer(mdp, tau, eta, None)
    V0 = pessimistic_start(mdp, reg)
    TV0 = fs.bellman_backup(mdp, V0, tau, kl_weight=eta)[0]
    scale = 1e-10 * (1 + np.max(np.abs(V0)))
    assert np.all(TV0 >= V0 - scale)  # a sub-solution, hence below V*
    exact = ref.soft_value_iteration(mdp, tau, eta, tol=1e-10)["V"]
    assert np.all(V0 <= exact + 1e-8 * (1 + np.abs(exact)))
    if mdp.has_terminal:
        assert np.all(V0[mdp.terminal] == 0.0)


def test_pessimistic_start_includes_the_entropy_bonus():
    grid = fs.gridworld(5, 5, slip=0.1, gamma=0.9)
    hard = pessimistic_start(grid)
    soft = pessimistic_start(grid, make_regularizer(grid, 0.5, 0.0, None))
    live = ~grid.terminal
    np.testing.assert_allclose(hard[live], -1.0 / 0.1)
    np.testing.assert_allclose(soft[live], (-1.0 + 0.5 * np.log(4)) / 0.1)


@given(st.integers(1, 8), st.integers(1, 4), st.floats(0.0, 0.97), st.floats(0.0, 2.0),
       st.booleans(), st.sampled_from(["jacobi", "gauss-seidel"]), st.integers(1, 5),
       st.integers(0, 10_000))
def test_accelerated_answer_is_certified(S, A, gamma, tau, terminal, order, depth, seed):
    mdp = small_mdp((S, A, seed), gamma, infeasible=0.3, terminal=0.3 if terminal else 0.0)
    res = fs.soft_value_iteration(mdp, tau, tol=1e-8, order=order, acceleration="anderson",
                                  anderson_depth=depth)
    exact = ref.soft_value_iteration(mdp, tau, tol=1e-12)["V"]
    assert res.converged and np.all(np.isfinite(res.V))
    assert np.max(np.abs(res.V - exact)) <= res.error_bound + 1e-10


@pytest.mark.parametrize("name", sorted(ZOO))
@pytest.mark.parametrize("tau,eta,use_prior", [(0.0, 0.0, False), (0.3, 0.0, False),
                                               (0.2, 0.4, False), (0.2, 0.4, True)])
def test_one_step_values_match_the_reference_backup_of_zero(name, tau, eta, use_prior):
    from fastsoft import _bundles as B
    from fastsoft import _kernels as K

    mdp = ZOO[name]
    prior = None
    if use_prior:
        mu = np.random.default_rng(0).random((mdp.n_states, mdp.n_actions)) + 0.05
        mu[~mdp.feasible] = 0.0
        prior = mu / mu.sum(axis=1, keepdims=True)
    reg = make_regularizer(mdp, tau, eta, prior)
    out = np.empty(mdp.n_states)
    K._one_step_values(mdp.rewards, reg.kernel, B.pinned(mdp), out)
    exp = ref.bellman_backup(mdp, np.zeros(mdp.n_states), tau, eta, prior)[0]
    live = np.ones(mdp.n_states, bool) if mdp.terminal is None else ~mdp.terminal
    np.testing.assert_allclose(out[live], exp[live], rtol=1e-12, atol=1e-12)
    assert np.all(out[~live] == np.inf)
