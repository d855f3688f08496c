"""Interop: scipy.sparse, quantecon's DiscreteDP, pymdptoolbox, float32 rows, clear errors."""

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import dense_random_mdp

import fastsoft as fs
from fastsoft.mdp import ROW_SUM_ULPS, TabularMDP


def _mdp(seed=0, S=7, A=3, **kw):
    return dense_random_mdp(S, A, 0.9, seed, density=0.5, **kw)


def _same(a, b):
    """Same structure; probabilities within an ulp (every constructor rescales rows whose
    float64 sum is not exactly 1, which can move a probability by an ulp)."""
    return a.allclose(b, atol=4e-16)


@pytest.mark.parametrize("seed", range(4))
def test_from_scipy_pairs_and_action_list_equal_from_dense(seed):
    m = _mdp(seed, infeasible=0.3)
    P, R = m.to_dense()
    S, A = m.n_states, m.n_actions
    flat = sp.csr_array(P.reshape(S * A, S))
    assert _same(TabularMDP.from_scipy(flat, R, 0.9), m)
    assert _same(TabularMDP.from_scipy(sp.coo_matrix(flat), R.reshape(-1), 0.9), m)
    per_action = [sp.csr_matrix(P[:, a, :]) for a in range(A)]
    assert _same(TabularMDP.from_scipy(per_action, R, 0.9), m)


def test_from_scipy_transition_rewards_and_to_scipy():
    m = _mdp(1)
    P, _ = m.to_dense()
    S, A = m.n_states, m.n_actions
    rng = np.random.default_rng(5)
    Rt = rng.normal(size=(S, A, S))
    Pm = sp.csr_array(P.reshape(S * A, S))
    Rm = sp.csr_array(Rt.reshape(S * A, S))
    got = TabularMDP.from_scipy(Pm, Rm, 0.9)
    np.testing.assert_allclose(got.rewards, (P * Rt).sum(axis=2), rtol=0, atol=1e-13)
    P2, R2 = got.to_scipy()
    assert isinstance(P2, sp.csr_array) and P2.shape == (S * A, S)
    np.testing.assert_allclose(P2.toarray(), P.reshape(S * A, S), rtol=0, atol=4e-16)
    np.testing.assert_array_equal(R2, got.rewards)
    assert _same(TabularMDP.from_scipy(P2, R2, 0.9), got)


def test_from_scipy_shape_errors():
    with pytest.raises(ValueError, match=r"\(S\*A, S\)"):
        TabularMDP.from_scipy(sp.csr_array(np.eye(3)[:, :2]), np.zeros((1, 2)), 0.9)
    with pytest.raises(ValueError, match=r"P\[1\] must have shape \(2, 2\)"):
        TabularMDP.from_scipy([sp.eye(2), sp.eye(3)], np.zeros((2, 2)), 0.9)
    with pytest.raises(ValueError, match="R must have shape"):
        TabularMDP.from_scipy(sp.eye(2), np.zeros((3, 3)), 0.9)


@pytest.mark.parametrize("ctor", ["dense", "csr_probs", "csr_indices"])
def test_sparse_where_dense_expected_names_the_layouts(ctor):
    P = sp.csr_array(np.eye(4))
    with pytest.raises(TypeError, match="from_scipy") as err:
        if ctor == "dense":
            TabularMDP.from_dense(P, np.zeros((4, 1)), 0.9)
        elif ctor == "csr_probs":
            TabularMDP.from_csr(np.arange(5), np.arange(4), P, np.zeros((4, 1)), 0.9)
        else:
            TabularMDP.from_csr(np.arange(5), P, np.ones(4), np.zeros((4, 1)), 0.9)
    msg = str(err.value)
    assert "(S*A, S)" in msg and "(S, A, S)" in msg and "mdptoolbox" in msg
    assert "dtype object" not in msg


@pytest.mark.parametrize("seed", range(3))
def test_float32_normalised_rows_accepted(seed):
    rng = np.random.default_rng(seed)
    S, A = 40, 3
    P = rng.random((S, A, S)).astype(np.float32)
    P /= P.sum(axis=2, keepdims=True)  # normalised in float32: rows off by ~S * 6e-8
    sums = P.astype(np.float64).sum(axis=2)
    assert np.abs(sums - 1).max() > 1e-8  # the case that used to be rejected
    m = TabularMDP.from_dense(P, rng.normal(size=(S, A)), 0.9)
    np.testing.assert_allclose(m.to_dense()[0], P, rtol=1e-6, atol=0)
    P_sa = P.reshape(S * A, S)
    m2 = TabularMDP.from_csr(np.arange(0, S * A * S + 1, S), np.tile(np.arange(S), S * A),
                             P_sa.reshape(-1), m.rewards, 0.9)
    assert m2.allclose(m, atol=1e-15)


def test_float32_tolerance_is_not_loose_for_float64():
    P = np.zeros((2, 1, 2))
    P[:, 0] = [0.5, 0.5 + 1e-6]
    with pytest.raises(ValueError, match="sums to"):
        TabularMDP.from_dense(P, np.zeros((2, 1)), 0.9)
    # the float32 tolerance is ROW_SUM_ULPS * eps32 * n: 1e-6 on 2 entries is beyond it
    assert ROW_SUM_ULPS * np.finfo(np.float32).eps * 2 < 1e-6
    with pytest.raises(ValueError, match="float32"):
        TabularMDP.from_dense(P.astype(np.float32), np.zeros((2, 1)), 0.9)


def test_from_csr_reward_per_transition():
    indptr = [0, 2, 3, 4, 5]
    indices = [0, 1, 1, 1, 0]
    probs = [0.25, 0.75, 1.0, 1.0, 1.0]
    rt = np.array([4.0, 8.0, 1.0, 2.0, 3.0])
    m = TabularMDP.from_csr(indptr, indices, probs, rt, 0.9, n_actions=2)
    np.testing.assert_allclose(m.rewards, [[7.0, 1.0], [2.0, 3.0]])
    with pytest.raises(ValueError, match="n_actions"):
        TabularMDP.from_csr(indptr, indices, probs, rt, 0.9)
    with pytest.raises(ValueError, match="multiple"):
        TabularMDP.from_csr(indptr, indices, probs, rt, 0.9, n_actions=3)
    with pytest.raises(ValueError, match=r"first offending \(s, a\) = \(0, 1\)"):
        TabularMDP.from_csr(indptr, indices, probs, np.where(np.arange(5) == 2, np.nan, rt),
                            0.9, n_actions=2)


# ----------------------------------------------------------------------------- quantecon
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("sa_pair", [False, True])
def test_quantecon_round_trip_and_values(seed, sa_pair):
    qe = pytest.importorskip("quantecon")
    m = _mdp(seed, infeasible=0.3)
    ddp = m.to_quantecon(sa_pair=sa_pair)
    assert isinstance(ddp, qe.markov.DiscreteDP)
    assert ddp._sa_pair == sa_pair
    if sa_pair:
        assert sp.issparse(ddp.Q)
    # quantecon keeps no rows for infeasible pairs
    P, R = m.to_dense()
    assert _same(TabularMDP.from_quantecon(ddp),
                 TabularMDP.from_dense(P * m.feasible[..., None], R, 0.9))
    res = ddp.solve(method="policy_iteration")
    ours = fs.solve(m, 0.0, tol=1e-10)
    np.testing.assert_allclose(ours.V, res.v, rtol=0, atol=1e-8)


def test_quantecon_state_action_form_in():
    pytest.importorskip("quantecon")
    from quantecon.markov import DiscreteDP

    # pairs listed out of order, dense and sparse Q; pair (1, 1) absent -> infeasible
    s_idx = [1, 0, 0]
    a_idx = [0, 1, 0]
    R = np.array([2.0, 0.0, 1.0])
    Q = np.array([[0.5, 0.5], [0.0, 1.0], [1.0, 0.0]])
    for Qx in (Q, sp.csr_matrix(Q)):
        m = TabularMDP.from_quantecon(DiscreteDP(R, Qx, 0.8, s_idx, a_idx))
        assert m.gamma == 0.8
        np.testing.assert_array_equal(m.rewards, [[1.0, 0.0], [2.0, -np.inf]])
        P, _ = m.to_dense()
        np.testing.assert_array_equal(P[0], [[1.0, 0.0], [0.0, 1.0]])
        np.testing.assert_array_equal(P[1, 0], [0.5, 0.5])


def test_quantecon_terminal_states_become_zero_self_loops():
    pytest.importorskip("quantecon")
    m = fs.gridworld(3, 4, slip=0.1, gamma=0.9)
    assert m.has_terminal
    ddp = m.to_quantecon()
    res = ddp.solve(method="policy_iteration")
    np.testing.assert_allclose(fs.solve(m, 0.0, tol=1e-10).V, res.v, rtol=0, atol=1e-8)
    with pytest.raises(ValueError, match="gamma < 1"):
        m.with_gamma(1.0).to_quantecon()


# --------------------------------------------------------------------------- mdptoolbox
@pytest.mark.parametrize("seed", range(3))
def test_mdptoolbox_layouts(seed):
    m = _mdp(seed)
    P, R = m.to_dense()
    Pt = P.transpose(1, 0, 2)  # (A, S, S)
    assert _same(TabularMDP.from_mdptoolbox(Pt, R, 0.9), m)
    assert _same(TabularMDP.from_mdptoolbox([sp.csr_matrix(x) for x in Pt], R, 0.9), m)
    rs = np.arange(m.n_states, dtype=float)
    np.testing.assert_array_equal(TabularMDP.from_mdptoolbox(Pt, rs, 0.9).rewards,
                                  np.repeat(rs[:, None], m.n_actions, axis=1))
    Rt = np.random.default_rng(seed).normal(size=Pt.shape)
    want = (Pt * Rt).sum(axis=2).T
    np.testing.assert_allclose(TabularMDP.from_mdptoolbox(Pt, Rt, 0.9).rewards, want,
                               rtol=0, atol=1e-13)
    got = TabularMDP.from_mdptoolbox(Pt, [sp.csr_matrix(x) for x in Rt], 0.9)
    np.testing.assert_allclose(got.rewards, want, rtol=0, atol=1e-13)
    with pytest.raises(TypeError, match="from_scipy"):
        TabularMDP.from_mdptoolbox(sp.csr_array(P.reshape(-1, m.n_states)), R, 0.9)


def test_mdptoolbox_values_agree():
    mtb = pytest.importorskip("mdptoolbox.mdp")
    m = _mdp(3)
    P, R = m.to_dense()
    pi = mtb.PolicyIteration(P.transpose(1, 0, 2), R, 0.9)
    pi.run()
    ours = fs.solve(TabularMDP.from_mdptoolbox(P.transpose(1, 0, 2), R, 0.9), 0.0, tol=1e-10)
    np.testing.assert_allclose(ours.V, np.asarray(pi.V), rtol=0, atol=1e-8)
    np.testing.assert_array_equal(ours.policy.argmax(axis=1), np.asarray(pi.policy))
