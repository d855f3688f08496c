"""The data model: constructors, canonical CSR, gymnasium import, generators, validation."""

import gymnasium as gym
import numpy as np
import pytest
from conftest import dense_random_mdp, make_env

import fastsoft as fs
from fastsoft import _csr
from fastsoft import reference as ref
from fastsoft.mdp import TabularMDP


def _two_state():
    P = np.zeros((2, 2, 2))
    P[0, 0] = [0.5, 0.5]
    P[0, 1] = [0.0, 1.0]
    P[1, :, 1] = 1.0
    R = np.array([[1.0, 0.0], [0.0, 2.0]])
    return P, R


def test_from_dense_roundtrip_and_attributes():
    P, R = _two_state()
    m = TabularMDP.from_dense(P, R, 0.9)
    assert (m.n_states, m.n_actions, m.gamma) == (2, 2, 0.9)
    assert m.indptr.dtype == np.int64 and m.indptr.shape == (5,)
    assert m.indices.dtype == np.int32
    np.testing.assert_array_equal(m.indptr, [0, 2, 3, 4, 5])
    np.testing.assert_array_equal(m.indices, [0, 1, 1, 1, 1])
    P2, R2 = m.to_dense()
    np.testing.assert_array_equal(P2, P)
    np.testing.assert_array_equal(R2, R)
    assert m.terminal is None and m.initial is None


def test_immutable():
    P, R = _two_state()
    m = TabularMDP.from_dense(P, R, 0.9)
    with pytest.raises(AttributeError):
        m.gamma = 0.5
    with pytest.raises(ValueError):
        m.rewards[0, 0] = 3.0
    with pytest.raises(ValueError):
        m.probs[0] = 3.0


def test_transition_rewards_reduced_to_expectation():
    P, _ = _two_state()
    R3 = np.arange(8, dtype=float).reshape(2, 2, 2)
    m = TabularMDP.from_dense(P, R3, 0.9)
    np.testing.assert_allclose(m.rewards, (P * R3).sum(axis=2))


def test_from_csr_merges_duplicates_and_sorts():
    # row 0 lists state 1 twice, unsorted; row 1 has an explicit zero
    indptr = [0, 3, 5, 6, 7]
    indices = [1, 0, 1, 0, 1, 0, 1]
    probs = [0.25, 0.5, 0.25, 0.0, 1.0, 1.0, 1.0]
    m = TabularMDP.from_csr(indptr, indices, probs, np.zeros((2, 2)), 0.5)
    np.testing.assert_array_equal(m.indptr, [0, 2, 3, 4, 5])
    np.testing.assert_array_equal(m.indices, [0, 1, 1, 0, 1])
    np.testing.assert_allclose(m.probs, [0.5, 0.5, 1.0, 1.0, 1.0])


@pytest.mark.parametrize("seed", range(5))
def test_canonicalize_kernel_matches_reference(seed):
    rng = np.random.default_rng(seed)
    n_rows, S = 50, 7
    lens = rng.integers(0, 6, n_rows)
    indptr = np.zeros(n_rows + 1, np.int64)
    np.cumsum(lens, out=indptr[1:])
    indices = rng.integers(0, S, indptr[-1]).astype(np.int32)
    probs = rng.random(indptr[-1]) * (rng.random(indptr[-1]) > 0.2)
    a = _csr.canonicalize_csr(indptr, indices, probs)
    b = ref.canonicalize_csr(indptr, indices, probs)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(a[2], b[2], rtol=1e-15)
    np.testing.assert_allclose(_csr.row_sums(indptr, probs), ref.row_sums(indptr, probs),
                               rtol=1e-14)
    tr = rng.normal(size=indptr[-1])
    np.testing.assert_allclose(_csr.expected_rewards(indptr, probs, tr),
                               ref.expected_rewards(indptr, probs, tr), rtol=1e-12, atol=1e-14)


def test_with_rewards_shares_transitions_and_validates():
    m = fs.random_mdp(20, 3, 4, gamma=0.9, seed=0)
    R = np.ones((20, 3))
    m2 = m.with_rewards(R)
    assert m2.indices is m.indices and m2.probs is m.probs
    np.testing.assert_array_equal(m2.rewards, R)
    with pytest.raises(ValueError, match="shape"):
        m.with_rewards(np.ones((20, 2)))
    with pytest.raises(ValueError, match=r"\(s, a\) = \(3, 1\)"):
        R[3, 1] = np.nan
        m.with_rewards(R)
    R = np.full((20, 3), -np.inf)
    R[:, 0] = 0
    R[5, 0] = -np.inf
    with pytest.raises(ValueError, match="state 5 has no feasible action"):
        m.with_rewards(R)


def test_astype_and_equality():
    m = fs.random_mdp(30, 2, 3, gamma=0.9, seed=1)
    m32 = m.astype(np.float32)
    assert m32.probs.dtype == np.float32 and m32.rewards.dtype == np.float32
    assert m32.allclose(m, atol=1e-6) and m32 != m
    assert m == fs.random_mdp(30, 2, 3, gamma=0.9, seed=1)
    assert m != fs.random_mdp(30, 2, 3, gamma=0.9, seed=2)
    assert m.with_gamma(0.5).gamma == 0.5
    with pytest.raises(TypeError, match="dtype"):
        m.astype(np.int32)


# ----------------------------------------------------------------------- gymnasium
@pytest.mark.parametrize(
    "env_id,kwargs",
    [
        ("FrozenLake", {"map_name": "4x4", "is_slippery": True}),
        ("FrozenLake", {"map_name": "4x4", "is_slippery": False}),
        ("FrozenLake", {"map_name": "8x8", "is_slippery": True}),
        ("FrozenLake", {"map_name": "8x8", "is_slippery": False}),
        ("Taxi", {}),
        ("CliffWalking", {}),
    ],
)
def test_from_gymnasium_matches_transition_table(env_id, kwargs):
    env = make_env(env_id, **kwargs)
    P = env.unwrapped.P
    m = TabularMDP.from_gymnasium(env, 0.95)
    S = len(P)
    assert m.n_states in (S, S + 1)
    dense, R = m.to_dense()
    for s in range(S):
        for a in range(len(P[s])):
            if m.terminal is not None and s < m.n_states and m.terminal[s]:
                continue
            expect = np.zeros(m.n_states)
            r = 0.0
            for p, ns, rew, done in P[s][a]:
                target = S if (done and m.n_states == S + 1) else ns
                expect[target] += p
                r += p * rew
            np.testing.assert_allclose(dense[s, a], expect, atol=1e-12)
            assert R[s, a] == pytest.approx(r)
    np.testing.assert_allclose(m.initial[:S], env.unwrapped.initial_state_distrib)
    assert m.has_terminal


def test_frozenlake_terminal_states_are_holes_and_goal():
    env = make_env("FrozenLake", map_name="4x4")
    m = TabularMDP.from_gymnasium(env, 0.9)
    desc = env.unwrapped.desc.ravel()
    expect = np.isin(desc, [b"H", b"G"])
    np.testing.assert_array_equal(m.terminal, expect)
    # slippery FrozenLake lists duplicate outcomes: merged in the CSR
    assert np.all(np.diff(m.indptr) <= 3)


def test_taxi_gets_a_sink_terminal_state():
    m = TabularMDP.from_gymnasium(make_env("Taxi"), 0.9)
    assert m.n_states == 501 and m.terminal.sum() == 1 and m.terminal[500]


def test_from_gymnasium_rejects_env_without_table():
    with pytest.raises(TypeError, match="unwrapped.P"):
        TabularMDP.from_gymnasium(gym.make("CartPole-v1"), 0.9)


# ----------------------------------------------------------------------- generators
def test_gridworld_structure():
    m = fs.gridworld(3, 4, slip=0.0, walls=[(1, 1)], goals={(2, 3): 5.0}, step_reward=-1.0)
    S = 12
    assert m.n_states == S and m.n_actions == 4
    P, R = m.to_dense()
    s = 0  # (0, 0): up -> stays, down -> (1, 0), left -> stays, right -> (0, 1)
    assert P[s, 0, 0] == 1 and P[s, 1, 4] == 1 and P[s, 2, 0] == 1 and P[s, 3, 1] == 1
    assert P[1 * 4 + 0, 3, 4] == 1  # (1,0) right is blocked by the wall at (1,1)
    assert R[2 * 4 + 2, 3] == 5.0 and R[0, 0] == -1.0  # entering the goal pays its reward
    assert m.terminal[2 * 4 + 3] and m.terminal[1 * 4 + 1]
    assert m.initial[0] == 1.0
    assert m.info["grid"] == (3, 4)


def test_gridworld_slip_probabilities():
    m = fs.gridworld(3, 3, slip=0.2, goals=[(2, 2)])
    P, _ = m.to_dense()
    c = 4  # centre
    assert P[c, 0, 1] == pytest.approx(0.8 + 0.05)
    assert P[c, 0, 7] == pytest.approx(0.05)
    np.testing.assert_allclose(P.sum(axis=2)[~m.terminal], 1.0)


def test_gridworld_large_builds_small():
    m = fs.gridworld(300, 300, slip=0.1)
    assert m.nnz <= 16 * m.n_states
    assert m.nbytes < 300 * 300 * 4 * 4 * 13 + 300 * 300 * 4 * 8 + 10_000_000


def test_random_mdp_properties():
    m = fs.random_mdp(500, 3, 7, gamma=0.9, seed=3)
    assert np.all(np.diff(m.indptr) == 7)
    np.testing.assert_allclose(ref.row_sums(m.indptr, m.probs), 1.0, atol=1e-12)
    assert m == fs.random_mdp(500, 3, 7, gamma=0.9, seed=3)
    assert np.all((m.rewards >= 0) & (m.rewards <= 1))
    small = fs.random_mdp(5, 2, 5, gamma=0.9, seed=0)
    assert np.all(np.diff(small.indptr) == 5)


def test_maze_layout():
    m = fs.mattar_daw_maze()
    assert (m.n_states, m.n_actions, m.gamma) == (54, 4, 0.9)
    assert m.initial[2 * 9 + 0] == 1.0
    goal = 0 * 9 + 8
    assert m.terminal[goal]
    _, R = m.to_dense()
    assert R[1 * 9 + 8, 0] == 10.0  # up from (1,8) enters the goal
    assert R[2 * 9 + 0, 3] == -1.0
    P, _ = m.to_dense()
    assert P[2 * 9 + 1, 3, 2 * 9 + 1] == 1.0  # (2,1) right into obstacle (2,2): stays
    sw = fs.mattar_daw_maze(switch=True)
    assert sw.terminal[6] and not sw.terminal[7]


def test_huys_task():
    m = fs.huys_planning_task(depth=3)
    assert (m.n_states, m.n_actions) == (24, 2)
    P, R = m.to_dense()
    assert P[0, 0, 6 + 1] == 1 and R[0, 0] == 140.0 and R[0, 1] == 20.0
    assert m.terminal[18:].all() and not m.terminal[:18].any()
    np.testing.assert_allclose(m.initial[:6], 1 / 6)
    # best 3-step return from state 0: 140 -> (1) ... brute force
    best = max(
        sum(r for r in rs)
        for rs in _huys_paths(0, 3)
    )
    res = fs.soft_value_iteration(m, 0.0, horizon=3)
    assert res.V[0, 0] == pytest.approx(best)


def _huys_paths(i, d):
    if d == 0:
        yield []
        return
    for j, r in fs.generators.HUYS_TRANSITIONS[i]:
        for rest in _huys_paths(j, d - 1):
            yield [r, *rest]


# ----------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "mutate,exc,pattern",
    [
        (lambda P, R: (P[:, :, :1], R), ValueError, r"P must have shape \(S, A, S\)"),
        (lambda P, R: (P, R[:, :1]), ValueError, "R must have shape"),
        (lambda P, R: (P.astype(str), R), TypeError, "P must hold real numbers"),
        (lambda P, R: (P, R.astype(complex)), TypeError, "R must hold real numbers"),
        (lambda P, R: (_set(P, (1, 0, 0), -0.5, (1, 0, 1), 1.5), R), ValueError,
         r"non-negative; first offending \(s, a\) = \(1, 0\)"),
        (lambda P, R: (_set(P, (0, 1, 0), 0.3), R), ValueError,
         r"row of \(s, a\) = \(0, 1\) sums to"),
        (lambda P, R: (P, _set(R, (1, 1), np.nan)), ValueError,
         r"NaN or \+inf; first offending \(s, a\) = \(1, 1\)"),
        (lambda P, R: (P, _set(R, (0, 0), np.inf)), ValueError, r"\(s, a\) = \(0, 0\)"),
        (lambda P, R: (P, _set(R, (1, 0), -np.inf, (1, 1), -np.inf)), ValueError,
         "state 1 has no feasible action"),
        (lambda P, R: (_set(P, (0, 0, 0), np.nan), R), ValueError, "probs must be finite"),
    ],
)
def test_from_dense_validation(mutate, exc, pattern):
    P, R = _two_state()
    P2, R2 = mutate(P.copy(), R.copy())
    with pytest.raises(exc, match=pattern):
        TabularMDP.from_dense(P2, R2, 0.9)


def _set(arr, *pairs):
    arr = arr.copy()
    for idx, val in zip(pairs[::2], pairs[1::2], strict=True):
        arr[idx] = val
    return arr


@pytest.mark.parametrize("gamma,exc", [(1.5, ValueError), (-0.1, ValueError), ("0.9", TypeError),
                                       (None, TypeError), (True, TypeError)])
def test_gamma_validation(gamma, exc):
    P, R = _two_state()
    with pytest.raises(exc, match="gamma"):
        TabularMDP.from_dense(P, R, gamma)


def test_csr_validation_messages():
    R = np.zeros((2, 2))
    ok = dict(indptr=[0, 1, 2, 3, 4], indices=[0, 1, 0, 1], probs=[1.0, 1.0, 1.0, 1.0])
    TabularMDP.from_csr(**ok, R=R, gamma=0.9)
    with pytest.raises(ValueError, match=r"next state 5 out of range \[0, 2\) at \(s, a\) = "
                                         r"\(1, 0\)"):
        TabularMDP.from_csr(ok["indptr"], [0, 1, 5, 1], ok["probs"], R, 0.9)
    with pytest.raises(ValueError, match="indptr must have length"):
        TabularMDP.from_csr([0, 1, 2, 4], ok["indices"], ok["probs"], R, 0.9)
    with pytest.raises(ValueError, match="same length"):
        TabularMDP.from_csr(ok["indptr"], [0, 1, 0], ok["probs"], R, 0.9)
    with pytest.raises(TypeError, match="indices must hold integers"):
        TabularMDP.from_csr(ok["indptr"], [0.0, 1.0, 0.0, 1.0], ok["probs"], R, 0.9)
    with pytest.raises(ValueError, match="non-decreasing"):
        TabularMDP.from_csr([0, 2, 1, 3, 4], ok["indices"], ok["probs"], R, 0.9)
    with pytest.raises(ValueError, match="R must have shape"):
        TabularMDP.from_csr(**ok, R=np.zeros(4), gamma=0.9)
    with pytest.raises(ValueError, match="sums to"):
        TabularMDP.from_csr(ok["indptr"], ok["indices"], [1.0, 0.5, 1.0, 1.0], R, 0.9)


def test_terminal_and_initial_validation():
    P, R = _two_state()
    with pytest.raises(ValueError, match=r"terminal must have shape \(2,\)"):
        TabularMDP.from_dense(P, R, 0.9, terminal=np.array([True, False, True]))
    with pytest.raises(TypeError, match="terminal must be a boolean mask"):
        TabularMDP.from_dense(P, R, 0.9, terminal=np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="every state is terminal"):
        TabularMDP.from_dense(P, R, 0.9, terminal=np.array([True, True]))
    with pytest.raises(ValueError, match="initial must sum to 1"):
        TabularMDP.from_dense(P, R, 0.9, initial=[0.5, 0.6])
    with pytest.raises(ValueError, match="initial must be non-negative"):
        TabularMDP.from_dense(P, R, 0.9, initial=[1.5, -0.5])
    m = TabularMDP.from_dense(P, R, 0.9, terminal=[1])
    np.testing.assert_array_equal(m.terminal, [False, True])


def test_terminal_rows_need_not_sum_to_one():
    P, R = _two_state()
    P[1] = 0.0
    m = TabularMDP.from_dense(P, R, 0.9, terminal=np.array([False, True]))
    assert m.has_terminal


def test_generator_validation():
    with pytest.raises(ValueError, match="slip"):
        fs.gridworld(3, 3, slip=1.5)
    with pytest.raises(ValueError, match="walls: cell"):
        fs.gridworld(3, 3, walls=[(5, 5)])
    with pytest.raises(TypeError, match="goals"):
        fs.gridworld(3, 3, goals=[3])
    with pytest.raises(ValueError, match="overlap"):
        fs.gridworld(3, 3, walls=[(2, 2)], goals=[(2, 2)])
    with pytest.raises(ValueError, match="rows must be >= 1"):
        fs.gridworld(0, 3)
    with pytest.raises(ValueError, match="start"):
        fs.gridworld(3, 3, start=(2, 2))
    with pytest.raises(ValueError, match="n_successors"):
        fs.random_mdp(5, 2, 6, gamma=0.9, seed=0)
    with pytest.raises(ValueError, match="n_states"):
        fs.random_mdp(0, 2, 1, gamma=0.9, seed=0)
    with pytest.raises(ValueError, match="depth"):
        fs.huys_planning_task(0)


def test_dense_random_helper_is_valid():
    m = dense_random_mdp(10, 3, 0.9, 0, infeasible=0.5, terminal=0.3)
    assert m.feasible.any(axis=1).all()
