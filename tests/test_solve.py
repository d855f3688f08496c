"""fastsoft.solve: every method reaches soft value iteration's fixed point; the auto rule."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import fastsoft as fs
from fastsoft.solver import METHODS, choose_method, solve

PROBLEMS = {
    "random": lambda: fs.random_mdp(60, 3, 4, gamma=0.95, seed=1),
    "grid": lambda: fs.gridworld(8, 9, slip=0.1, gamma=0.98, walls=[(3, 3)]),
}


@pytest.mark.parametrize("name", sorted(PROBLEMS))
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("tau,eta", [(0.0, 0.0), (0.2, 0.0), (0.2, 0.5), (0.0, 0.4)])
def test_every_method_reaches_the_fixed_point(name, method, tau, eta):
    mdp = PROBLEMS[name]()
    vi = fs.soft_value_iteration(mdp, tau, kl_weight=eta, tol=1e-11)
    res = solve(mdp, tau, kl_weight=eta, tol=1e-7, method=method)
    assert res.converged and res.error_bound <= 1e-7
    assert np.max(np.abs(res.V - vi.V)) <= 1e-7 + 1e-11
    np.testing.assert_allclose(res.policy.sum(axis=1), 1.0)


def test_frozenlake_and_prior():
    gym = pytest.importorskip("gymnasium")
    mdp = fs.TabularMDP.from_gymnasium(gym.make("FrozenLake-v1", map_name="4x4"), 0.99)
    mu = np.array([0.4, 0.3, 0.2, 0.1])
    vi = fs.soft_value_iteration(mdp, 0.05, kl_weight=0.1, prior=mu, tol=1e-11)
    for method in ("auto", "pi", "vi-gs"):
        res = solve(mdp, 0.05, kl_weight=0.1, prior=mu, tol=1e-8, method=method)
        assert np.max(np.abs(res.V - vi.V)) <= 1e-8 + 1e-11


def test_auto_rule():
    assert choose_method(fs.random_mdp(100, 3, 4, gamma=0.99, seed=0)) == "vi"
    assert choose_method(fs.gridworld(10, 10, gamma=0.99)) == "vi-gs"
    assert choose_method(fs.gridworld(200, 200, gamma=0.999)) == "vi-gs"
    r = solve(fs.gridworld(10, 10, gamma=0.999), tol=1e-6, method="pi")
    assert r.method.startswith("policy_iteration") and r.converged
    dense = fs.random_mdp(300, 4, 300, gamma=0.99, seed=1)
    assert choose_method(dense) == "pi-iterative"
    assert choose_method(dense, 0.1) == "vi"  # soft policies read every action's rows
    r = solve(dense, tol=1e-8)
    assert r.method == "policy_iteration[iterative]" and r.extra["order"] == "jacobi"
    exact = fs.value_iteration(dense, tol=1e-11)
    assert r.converged and np.max(np.abs(r.V - exact.V)) <= 1e-8 + 1e-11


def test_warm_start_with_new_rewards():
    mdp = fs.gridworld(20, 20, slip=0.1, gamma=0.99)
    first = solve(mdp, 0.1, tol=1e-8)
    R = np.array(mdp.rewards) * 1.01
    R[mdp.terminal] = 0.0
    mdp2 = mdp.with_rewards(R)
    warm = solve(mdp2, 0.1, tol=1e-8, V0=first.V)
    cold = solve(mdp2, 0.1, tol=1e-8)
    assert warm.converged and cold.converged
    assert np.max(np.abs(warm.V - cold.V)) <= 2e-8
    assert warm.n_iter <= cold.n_iter


def test_threads_are_safe():
    mdps = [fs.random_mdp(200, 4, 5, gamma=0.95, seed=s) for s in range(4)]
    want = [solve(m, 0.1, tol=1e-9).V for m in mdps]
    got = [None] * 8

    def work(i):
        got[i] = solve(mdps[i % 4], 0.1, tol=1e-9, method=METHODS[1 + i % 5]).V

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(8):
        assert np.max(np.abs(got[i] - want[i % 4])) <= 2e-9


def test_errors():
    mdp = PROBLEMS["random"]()
    with pytest.raises(TypeError, match="mdp"):
        solve(None)
    with pytest.raises(ValueError, match="method"):
        solve(mdp, method="fast")
    with pytest.raises(ValueError, match="tol"):
        solve(mdp, tol=-1.0)
    with pytest.raises(ValueError, match="temperature"):
        solve(mdp, -0.1)
    with pytest.raises(ValueError, match="V0"):
        solve(mdp, V0=np.zeros(2))
    with pytest.raises(ValueError, match="max_iter"):
        solve(mdp, max_iter=0)
    with pytest.raises(ValueError, match="gamma < 1"):
        solve(mdp.with_gamma(1.0))
    with pytest.raises(TypeError, match="mdp"):
        choose_method("x")


@pytest.mark.parametrize("method", ["vi", "vi-gs", "pi", "mpi"])
def test_solve_callback_stops_and_progress_matches(method):
    mdp = fs.gridworld(40, 40, slip=0.1, gamma=0.99)
    seen = []

    def stop_early(info):
        seen.append(info["error_bound"])
        return True

    part = fs.solve(mdp, 0.1, tol=1e-12, method=method, callback=stop_early)
    assert part.interrupted and not part.converged and len(seen) >= 1
    assert np.isfinite(part.error_bound) and part.error_bound > 1e-12
    full = fs.solve(mdp, 0.1, tol=1e-8, method=method)
    shown = fs.solve(mdp, 0.1, tol=1e-8, method=method, progress=True)
    np.testing.assert_allclose(shown.V, full.V, atol=2e-8)
    with pytest.raises(TypeError, match="callback must be callable"):
        fs.solve(mdp, 0.1, method=method, callback=1)
