"""Closed sets solved exactly before the rest (fastsoft._structure) and the user-written zoo."""

import numpy as np
import pytest
from conftest import USER_ZOO, ZOO, dense_random_mdp
from scipy.sparse.csgraph import connected_components

import fastsoft as fs
from fastsoft import _csr
from fastsoft._structure import closed_structure, live_rows, restrict, support_graph


@pytest.fixture(scope="module")
def user_zoo():
    return USER_ZOO


def _labels(mdp):
    return connected_components(support_graph(mdp, live_rows(mdp)), directed=True,
                                connection="strong")[1].astype(np.int64)


def _all_mdps(user_zoo):
    out = {k: ZOO[k] for k in ZOO}
    out.update({f"user_{k}": user_zoo[k] for k in user_zoo})
    out["dense_terminal"] = dense_random_mdp(15, 3, 0.9, 2, terminal=0.3, infeasible=0.3)
    return out


def test_leaving_kernel_matches_reference(user_zoo):
    for name, mdp in _all_mdps(user_zoo).items():
        labels = _labels(mdp)
        n = int(labels.max()) + 1
        leaves = np.full(n, 7, dtype=np.uint8)  # the kernel zeroes it first
        _csr._leaving_classes(mdp.indptr, mdp.indices, live_rows(mdp), mdp.n_actions, labels,
                              leaves)
        ref = fs.reference.leaving_classes(mdp, labels)
        np.testing.assert_array_equal(leaves.astype(bool), ref, err_msg=name)
        # random labellings too: the rule, not just the SCC case
        rng = np.random.default_rng(len(name))
        lab = rng.integers(0, 5, size=mdp.n_states)
        lab[:5] = np.arange(5)
        leaves = np.empty(5, dtype=np.uint8)
        _csr._leaving_classes(mdp.indptr, mdp.indices, live_rows(mdp), mdp.n_actions, lab,
                              leaves)
        np.testing.assert_array_equal(leaves.astype(bool),
                                      fs.reference.leaving_classes(mdp, lab), err_msg=name)


def test_detection(user_zoo):
    g = user_zoo["grid_absorbing"]
    cs = closed_structure(g)
    np.testing.assert_array_equal(cs.selfloops, [g.n_states - 1])
    assert cs.small.size == 0 and cs.large == ()
    assert closed_structure(g) is cs  # cached
    # flagged terminal: nothing left to split off
    assert closed_structure(user_zoo["grid_terminal"]).n_closed == 0
    assert closed_structure(user_zoo["garnet"]).n_closed == 0
    assert closed_structure(user_zoo["riverswim"]).n_closed == 0
    m = user_zoo["maze"]
    cs = closed_structure(m)
    labels = _labels(m)
    ref_closed = ~fs.reference.leaving_classes(m, labels)
    # every listed state is in a closed class, and every closed non-terminal class is listed
    listed = np.concatenate([cs.selfloops, cs.small, *cs.large])
    assert np.all(ref_closed[labels[listed]])
    assert set(listed.tolist()) == set(np.flatnonzero(ref_closed[labels]).tolist())
    assert cs.small.size > 0  # the random walls enclose pockets
    # a closed set's restriction is an MDP of its own (rows stochastic, renumbered)
    sub = restrict(m, cs.small)
    assert sub.n_states == cs.small.size and sub.indices.max() < sub.n_states


def _exact(mdp, tau, eta, prior, V):
    """V* to 1e-10, certified by NumPy value iteration warm-started at ``V``."""
    r = fs.reference.soft_value_iteration(mdp, tau, eta, prior, tol=1e-10, max_iter=40_000,
                                          V0=V)
    assert r["converged"]
    return r["V"]


@pytest.mark.parametrize("name", ["grid_absorbing", "maze", "chain", "cliffwalking"])
@pytest.mark.parametrize("tau,eta", [(0.0, 0.0), (0.1, 0.0), (0.05, 0.2)])
def test_split_solve_is_certified(user_zoo, name, tau, eta):
    mdp = user_zoo[name]
    if name == "chain":
        mdp = mdp.with_gamma(0.99)
    prior = None
    if eta > 0:
        rng = np.random.default_rng(0)
        prior = rng.random((mdp.n_states, mdp.n_actions)) + 0.1
        prior /= prior.sum(axis=1, keepdims=True)
    for method in ("auto", "vi", "pi"):
        r = fs.solve(mdp, tau, kl_weight=eta, prior=prior, tol=1e-6, method=method)
        assert r.converged and r.error_bound <= 1e-6
        Vx = _exact(mdp, tau, eta, prior, r.V)
        err = float(np.max(np.abs(r.V - Vx)))
        assert err <= r.error_bound + 1e-10, (method, err, r.error_bound)
        if closed_structure(mdp).n_closed:
            assert r.extra["closed_states"] == closed_structure(mdp).n_closed


def test_selfloop_closed_form(user_zoo):
    """An absorbing zero-reward goal is worth tau log|A|/(1 - gamma) (docs/theory.md §1), not 0."""
    g = user_zoo["grid_absorbing"]
    goal = g.n_states - 1
    r = fs.solve(g, 0.1, tol=1e-8)
    assert r.V[goal] == pytest.approx(0.1 * np.log(4) / (1 - g.gamma), rel=1e-12)
    assert fs.solve(g, 0.0, tol=1e-8).V[goal] == 0.0
    # the same values as the flagged-terminal version, shifted by the goal's value
    t = fs.solve(g, 0.0, tol=1e-9)
    u = fs.solve(user_zoo["grid_terminal"], 0.0, tol=1e-9)
    np.testing.assert_allclose(t.V, u.V, atol=2e-9)


def test_everything_closed():
    """Two disconnected absorbing states and nothing else: no iteration at all."""
    P = np.zeros((2, 2, 2))
    P[0, :, 0] = 1.0
    P[1, :, 1] = 1.0
    R = np.array([[1.0, 0.0], [-1.0, -2.0]])
    mdp = fs.TabularMDP.from_dense(P, R, 0.9)
    r = fs.solve(mdp, 0.0, tol=1e-8)
    np.testing.assert_allclose(r.V, [10.0, -10.0], rtol=1e-14)
    assert r.converged and r.n_iter == 0
    r = fs.solve(mdp, 0.5, tol=1e-8)
    m = 0.5 * np.log(np.exp(1 / 0.5) + 1.0), 0.5 * np.log(np.exp(-2.0) + np.exp(-4.0))
    np.testing.assert_allclose(r.V, np.array(m) / 0.1, rtol=1e-12)


def test_user_zoo_builds(user_zoo):
    for name in user_zoo:
        mdp = user_zoo[name]
        assert mdp.n_states >= 16, name
        assert np.all(np.isfinite(fs.reference.plain_backup(mdp)(np.zeros(mdp.n_states))))


@pytest.mark.parametrize("tau,eta", [(0.0, 0.0), (0.1, 0.0), (0.0, 0.3), (0.2, 0.5)])
def test_plain_backup_matches_reference(user_zoo, tau, eta):
    rng = np.random.default_rng(1)
    for name, mdp in _all_mdps(user_zoo).items():
        prior = None
        if eta > 0 and name.startswith("user_"):
            prior = rng.random((mdp.n_states, mdp.n_actions)) + 0.05
            prior /= prior.sum(axis=1, keepdims=True)
        V = rng.normal(size=mdp.n_states) * 10
        ref = fs.reference.bellman_backup(mdp, V, tau, eta, prior)[0]
        got = fs.reference.plain_backup(mdp, tau, eta, prior)(V)
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-10, err_msg=name)


def test_numpy_value_iteration_certified(user_zoo):
    mdp = user_zoo["garnet"]
    r = fs.reference.numpy_value_iteration(mdp, 0.1, tol=1e-8)
    assert r["converged"]
    s = fs.solve(mdp, 0.1, tol=1e-9)
    assert np.max(np.abs(r["V"] - s.V)) <= r["error_bound"] + s.error_bound


def test_evaluation_choice_by_envelope(user_zoo):
    """Direct LU only where the factor provably stays sparse, not by the state count."""
    from fastsoft._driver import auto_evaluation as _auto_evaluation
    from fastsoft._structure import DIRECT_MAX_FILL, envelope_fill

    chain = user_zoo["chain"]
    assert envelope_fill(chain) <= 5 * chain.n_states  # bandwidth 1 after RCM (or 2)
    assert _auto_evaluation(chain) == "direct"
    assert _auto_evaluation(user_zoo["banded"]) == "direct"
    g = fs.random_mdp(8000, 2, 5, gamma=0.95, seed=0)  # under the old 20 000-state rule: LU
    assert envelope_fill(g) > DIRECT_MAX_FILL
    assert _auto_evaluation(g) == "iterative"
    r = fs.policy_evaluation(g, np.zeros(8000, dtype=np.int64), tol=1e-8)
    assert r.converged and "iterative" in r.method


def test_auto_switches_to_policy_iteration_when_sweeps_crawl(user_zoo):
    from conftest import assert_same_result

    mdp = user_zoo["banded"]  # local transitions, no mixing: Jacobi needs > 1000 sweeps
    for tau in (0.0, 0.1):
        r = fs.solve(mdp, tau, tol=1e-6)
        assert r.extra.get("switched_from", "").startswith(("value_iteration",
                                                             "soft_value_iteration"))
        assert r.converged and r.error_bound <= 1e-6
        Vx = _exact(mdp, tau, 0.0, None, r.V)
        assert np.max(np.abs(r.V - Vx)) <= r.error_bound + 1e-10
        # the switch point is a fixed sweep count: the same result every run
        assert_same_result(r, fs.solve(mdp, tau, tol=1e-6))
    # a well-mixing MDP stops on the span bound before the first checkpoint
    g = fs.solve(user_zoo["garnet"], 0.0, tol=1e-6)
    assert "switched_from" not in g.extra and g.method.startswith("value_iteration")


def test_float32_split_keeps_the_certificate():
    # A float32 MDP whose closed set (state 1, a self-loop) is split off: the reward
    # paid on entering it is rounded to float32 in the reduced MDP, and the
    # restricted sub-MDPs keep the stored rows bit for bit, so the bound still holds
    # (found by the slow hypothesis property test_solve_certificate).
    worst = 0.0
    for seed in range(700):
        m = fs.random_mdp(2, 1, 1, gamma=0.5, seed=seed,
                          reward_range=(-1e-6, 1e-6)).astype(np.float32)
        res = fs.solve(m, 0.0, method="vi", tol=1e-4)
        P, R = m.to_dense()
        P, R = P[:, 0, :].astype(np.longdouble), R[:, 0].astype(np.longdouble)
        M = np.eye(2, dtype=np.longdouble) - np.longdouble(m.gamma) * P
        Vx = np.linalg.solve(M.astype(float), R.astype(float)).astype(np.longdouble)
        for _ in range(4):
            Vx = Vx + np.linalg.solve(M.astype(float), (R - M @ Vx).astype(float))
        err = float(np.max(np.abs(res.V.astype(np.longdouble) - Vx)))
        worst = max(worst, err / res.error_bound)
    assert worst <= 1.0


def test_restrict_keeps_float32_rows_bit_for_bit():
    m = fs.random_mdp(40, 3, 5, gamma=0.9, seed=3).astype(np.float32)
    states = np.arange(40)
    sub = restrict(m, states)
    assert np.array_equal(sub.probs, m.probs) and np.array_equal(sub.indices, m.indices)
    assert np.array_equal(sub.rewards, m.rewards) and sub.probs.dtype == np.float32
