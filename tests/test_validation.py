"""fastsoft._validation: one rule per concept, each error naming the argument (and (s, a))."""

import numpy as np
import pytest
from conftest import dense_random_mdp

import fastsoft as fs
from fastsoft import _validation as V
from fastsoft._bundles import make_regularizer
from fastsoft.sampling import as_initial, as_prior

MDP = dense_random_mdp(6, 3, 0.9, 0, infeasible=0.3, terminal=0.3)
S, A = MDP.n_states, MDP.n_actions
LIVE = ~MDP.terminal
S_INF, A_INF = (int(x) for x in np.argwhere(~MDP.feasible & LIVE[:, None])[0])
S_TERM = int(np.flatnonzero(MDP.terminal)[0])


def _uniform():
    return MDP.feasible / MDP.feasible.sum(axis=1, keepdims=True)


def test_tolerance_constants():
    assert V.ROW_SUM_ATOL == 1e-8 and V.ROW_SUM_ATOL_F32 == 1e-6
    assert V.row_sum_atol(np.float64) == V.ROW_SUM_ATOL
    assert V.row_sum_atol(np.float32) == V.ROW_SUM_ATOL_F32


@pytest.mark.parametrize("x,kw,exc,msg", [
    (True, {}, TypeError, "speed must be a real number, got bool"),
    ("1", {}, TypeError, "speed must be a real number, got str"),
    (np.inf, {}, ValueError, "speed must be finite"),
    (-1.0, {"low": 0.0}, ValueError, "speed must be >= 0.0, got -1.0"),
    (0.0, {"low": 0.0, "low_open": True}, ValueError, "speed must be > 0.0"),
    (3.0, {"high": 2.0}, ValueError, "speed must be <= 2.0, got 3.0"),
])
def test_check_real(x, kw, exc, msg):
    with pytest.raises(exc, match=msg):
        V.check_real(x, "speed", **kw)


def test_check_real_accepts_and_converts():
    assert V.check_real(np.float32(0.5), "x", low=0.0, high=1.0) == 0.5
    assert type(V.check_real(2, "x")) is float


def test_check_int():
    assert V.check_int(np.int64(3), "n", low=1) == 3
    assert V.check_int(None, "n", allow_none=True) is None
    with pytest.raises(TypeError, match="n must be an integer, got bool"):
        V.check_int(True, "n")
    with pytest.raises(TypeError, match="n must be an integer, got float"):
        V.check_int(2.0, "n")
    with pytest.raises(TypeError, match="n must be an integer, got NoneType"):
        V.check_int(None, "n")
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        V.check_int(0, "n", low=1)


def test_gamma_horizon_tol_dtype():
    assert V.check_gamma(1) == 1.0
    with pytest.raises(ValueError, match=r"gamma must lie in \[0, 1\], got 1.5"):
        V.check_gamma(1.5)
    with pytest.raises(TypeError, match="gamma must be a real number, got bool"):
        V.check_gamma(True)
    assert V.check_horizon(4) == 4 and V.check_horizon(None, allow_none=True) is None
    with pytest.raises(ValueError, match="horizon must be >= 1, got 0"):
        V.check_horizon(0)
    assert V.check_tol(1e-6) == 1e-6
    with pytest.raises(ValueError, match="tol must be > 0.0"):
        V.check_tol(0.0)
    assert V.check_float_dtype("float32") == np.float32
    with pytest.raises(TypeError, match="dtype must be float64 or float32, got int64"):
        V.check_float_dtype(np.int64)
    # the same rules behind the public functions
    with pytest.raises(ValueError, match=r"gamma must lie in \[0, 1\]"):
        fs.gridworld(3, 3, gamma=2.0)
    with pytest.raises(TypeError, match="dtype must be float64 or float32"):
        fs.gridworld(3, 3, dtype=np.int32)


def test_arrays_and_vectors():
    with pytest.raises(TypeError, match="R must hold real numbers, got dtype bool"):
        V.real_array(np.ones(3, bool), "R")
    with pytest.raises(TypeError, match="R must hold real numbers, got dtype <U1"):
        V.real_array(["a"], "R")
    x = np.arange(3.0)
    assert V.real_array(x, "R") is x  # no copy
    with pytest.raises(TypeError, match="indices must hold integers"):
        V.index_array([0.5], "indices")
    with pytest.raises(ValueError, match="indices must be one-dimensional"):
        V.index_array([[0]], "indices")
    v = V.check_vector([1, 2, 3], "V0", 3)
    assert v.dtype == np.float64 and v.tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match=r"V0 must have shape \(4,\), got \(3,\)"):
        V.check_vector(v, "V0", 4)
    with pytest.raises(ValueError, match="V0 must be finite; first offending state 1"):
        V.check_vector([0.0, np.nan, 1.0], "V0", 3)


def test_distribution_rule_in_every_place():
    p = V.check_distribution([0.25, 0.75], "initial", 2)
    assert p.tolist() == [0.25, 0.75]
    with pytest.raises(ValueError, match="initial must be non-negative and finite; first "
                                         "offending state 1"):
        V.check_distribution([1.5, -0.5], "initial", 2)
    with pytest.raises(ValueError, match="initial must sum to 1"):
        V.check_distribution([0.5, 0.4], "initial", 2)
    # the MDP constructor and the samplers use the same rule
    with pytest.raises(ValueError, match="initial must sum to 1"):
        MDP.with_initial(np.full(S, 0.1))
    with pytest.raises(ValueError, match="start must be non-negative and finite; first "
                                         "offending state 0"):
        as_initial(MDP, np.r_[-1.0, 2.0, np.zeros(S - 2)], "start")
    with pytest.raises(ValueError, match="start must sum to 1"):
        as_initial(MDP, np.full(S, 0.1), "start")


def test_check_mdp():
    assert V.check_mdp(MDP) is MDP
    with pytest.raises(TypeError, match="model must be a fastsoft.TabularMDP, got dict"):
        V.check_mdp({}, "model")


@pytest.mark.parametrize("where", ["solvers", "sampling"])
def test_prior_rule_is_the_same_for_solvers_and_samplers(where):
    """One rule: both make_regularizer (solvers) and sampling.as_prior apply check_prior."""
    def check(prior):
        if where == "solvers":
            return make_regularizer(MDP, 0.1, 0.5, prior).log_prior
        return as_prior(MDP, prior)

    mu = _uniform()
    mu[S_INF] = 0.0
    mu[S_INF, A_INF] = 1.0
    with pytest.raises(ValueError, match=rf"prior puts probability 1.0 on infeasible action "
                                         rf"{A_INF} of state {S_INF}: \(s, a\) = "
                                         rf"\({S_INF}, {A_INF}\)"):
        check(mu)
    bad = _uniform()
    bad[LIVE] *= 1.01
    s0 = int(np.flatnonzero(LIVE)[0])
    with pytest.raises(ValueError, match=f"prior: row of state {s0} sums to"):
        check(bad)
    neg = _uniform()
    neg[s0] = -neg[s0]
    a0 = int(np.flatnonzero(MDP.feasible[s0])[0])
    with pytest.raises(ValueError, match=rf"prior must be finite and non-negative; first "
                                         rf"offending \(s, a\) = \({s0}, {a0}\)"):
        check(neg)
    with pytest.raises(ValueError, match=rf"prior must have shape \({S}, {A}\) or \({A},\)"):
        check(np.ones((S, A + 1)) / (A + 1))
    # rows of terminal states are never used: anything goes there, and they become uniform
    ok = _uniform()
    ok[S_TERM] = np.nan
    out = check(ok)
    with np.errstate(divide="ignore"):
        exp = np.log(_uniform()) if where == "solvers" else _uniform()
    np.testing.assert_array_equal(out, exp)


@pytest.mark.parametrize("where", ["solvers", "sampling"])
def test_vector_prior_is_used_as_given_in_every_state(where):
    """A shape (A,) prior: its mass on a state's infeasible actions is unused, not an error."""
    mu = np.array([0.5, 0.3, 0.2])
    if where == "solvers":
        out = np.exp(make_regularizer(MDP, 0.1, 0.5, mu).log_prior)
    else:
        out = as_prior(MDP, mu)
    np.testing.assert_array_equal(out[LIVE], np.broadcast_to(mu, (S, A))[LIVE])
    np.testing.assert_array_equal(out[S_TERM], _uniform()[S_TERM])
    s_bad = int(np.flatnonzero(LIVE & ~MDP.feasible[:, 0])[0])  # action 0 infeasible there
    check = (lambda p: make_regularizer(MDP, 0.1, 0.5, p)) if where == "solvers" else (
        lambda p: as_prior(MDP, p))
    with pytest.raises(ValueError, match=f"prior puts no mass on a feasible action of "
                                         f"state {s_bad}"):
        check(np.array([1.0, 0.0, 0.0]))


def test_prior_within_tolerance_is_accepted_and_copied():
    mu = _uniform()
    mu[LIVE] *= 1.0 + 0.5 * V.ROW_SUM_ATOL / A
    out = V.check_prior(MDP, mu)
    assert out is not mu and np.array_equal(out[LIVE], mu[LIVE])
    # a shape (A,) prior is used in every state (here every action is feasible)
    grid = fs.gridworld(3, 3)
    out = V.check_prior(grid, [0.1, 0.2, 0.3, 0.4])
    assert out.shape == (9, 4) and np.all(out[~grid.terminal] == [0.1, 0.2, 0.3, 0.4])


def test_check_policy():
    pi = V.check_policy(MDP, _uniform())
    np.testing.assert_array_equal(pi, _uniform())
    acts = np.argmax(MDP.feasible, axis=1)
    np.testing.assert_array_equal(V.check_policy(MDP, acts), np.eye(A)[acts])
    with pytest.raises(ValueError, match="policy0: action 7 out of range at state 0"):
        V.check_policy(MDP, np.full(S, 7), "policy0")
    with pytest.raises(ValueError, match=rf"policy puts probability on infeasible action "
                                         rf"\(s, a\) = \({S_INF}, {A_INF}\)"):
        V.check_policy(MDP, np.full((S, A), 1.0 / A))
    with pytest.raises(TypeError, match="policy must hold real numbers"):
        V.check_policy(MDP, np.full((S, A), "x"))
