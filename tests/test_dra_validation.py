"""Every argument error of fastsoft.dra.train and fastsoft.dra.estimate_gradient."""

import numpy as np
import pytest

import fastsoft as fs
from fastsoft import dra
from fastsoft.reference import dra as rdra

OK = dict(beta=1.0, lam=0.1, sigma_base=5.0, sigma0=3.0, alpha_q=0.1, alpha_sigma=0.1,
          n_episodes=2, n_eval=2, max_steps=20)


@pytest.fixture(scope="module")
def maze():
    return fs.mattar_daw_maze()


def chain_with_trap():
    """0 -> 1 (terminal) or 0 -> 2; state 2 loops forever."""
    P = np.zeros((3, 2, 3))
    P[0, 0, 1] = P[0, 1, 2] = 1.0
    P[1, :, 1] = P[2, :, 2] = 1.0
    return fs.TabularMDP.from_dense(P, np.zeros((3, 2)), 0.9,
                                    terminal=np.array([False, True, False]),
                                    initial=[1.0, 0.0, 0.0])


@pytest.mark.parametrize(
    "change, exc, match",
    [
        (dict(beta=0.0), ValueError, "beta must be > 0"),
        (dict(beta=-1.0), ValueError, "beta must be > 0"),
        (dict(beta=np.nan), ValueError, "beta must be finite"),
        (dict(beta=True), TypeError, "beta"),
        (dict(beta="ten"), TypeError, "beta"),
        (dict(beta=[1.0, 2.0, 3.0]), ValueError, r"beta must be a scalar or have shape"),
        (dict(lam=-0.1), ValueError, "lam must be >= 0"),
        (dict(sigma_base=0.0), ValueError, "sigma_base must be > 0"),
        (dict(sigma0=-1.0), ValueError, "sigma0 must be > 0"),
        (dict(sigma0=200.0), ValueError, "sigma0 must lie in sigma_clip"),
        (dict(alpha_q=-0.1), ValueError, "alpha_q must be > 0"),
        (dict(alpha_sigma=-0.1), ValueError, "alpha_sigma must be >= 0"),
        (dict(alpha_sigma=np.inf), ValueError, "alpha_sigma must be finite"),
        (dict(gamma=1.5), ValueError, "gamma must be <= 1"),
        (dict(gamma=-0.5), ValueError, "gamma must be >= 0"),
        (dict(sigma_clip=(1.0, 0.5)), ValueError, "sigma_clip must be increasing"),
        (dict(sigma_clip=(1.0, 1.0)), ValueError, "sigma_clip must be increasing"),
        (dict(sigma_clip=(0.0, 5.0)), ValueError, "sigma_min must be finite and > 0"),
        (dict(sigma_clip=5.0), TypeError, "sigma_clip must be a pair"),
        (dict(sigma_clip=(1.0, 2.0, 3.0)), TypeError, "sigma_clip must be a pair"),
        (dict(psi="adv"), ValueError, "psi must be one of"),
        (dict(psi=1), TypeError, "psi must be a string"),
        (dict(cost="per-step"), ValueError, "cost must be one of"),
        (dict(update="sarsa"), ValueError, "update must be one of"),
        (dict(allocation="uniform"), ValueError, "allocation must be one of"),
        (dict(entropy_bonus=1), TypeError, "entropy_bonus must be a bool"),
        (dict(n_runs=0), ValueError, "n_runs must be >= 1"),
        (dict(n_runs=2.0), TypeError, "n_runs must be an integer"),
        (dict(n_episodes=-1), ValueError, "n_episodes must be >= 0"),
        (dict(n_traj=0), ValueError, "n_traj must be >= 1"),
        (dict(n_eval=-1), ValueError, "n_eval must be >= 0"),
        (dict(eval_every=0), ValueError, "eval_every must be >= 1"),
        (dict(max_steps=0), ValueError, "max_steps must be >= 1"),
        (dict(max_steps=True), TypeError, "max_steps must be an integer"),
        (dict(switch_episode=5), ValueError, "switch_episode must be <= n_episodes"),
        (dict(switch_episode=-1), ValueError, "switch_episode must be >= 0"),
        (dict(switch_mdp=fs.mattar_daw_maze(switch=True)), ValueError,
         "switch_mdp is given but switch_episode is None"),
        (dict(switch_episode=1, switch_mdp="maze"), TypeError,
         "switch_mdp must be a fastsoft.TabularMDP"),
        (dict(switch_episode=1, switch_mdp=fs.gridworld(3, 3)), ValueError,
         "switch_mdp must have the same states and actions"),
        (dict(switch_episode=1, switch_mdp=fs.mattar_daw_maze().with_initial(None)), ValueError,
         "switch_mdp has no initial distribution"),
    ],
)
def test_train_argument_errors(maze, change, exc, match):
    for train in (dra.train, rdra.train):  # the reference validates with the same code
        with pytest.raises(exc, match=match):
            train(maze, **{**OK, **change})


def test_train_mdp_errors(maze):
    with pytest.raises(TypeError, match="mdp must be a fastsoft.TabularMDP"):
        dra.train("maze", **OK)
    no_init = fs.gridworld(3, 3, start=None)
    with pytest.raises(ValueError, match="mdp has no initial distribution"):
        dra.train(no_init, **OK)
    garnet = fs.random_mdp(5, 2, 2, gamma=0.9, seed=0).with_initial(np.full(5, 0.2))
    with pytest.raises(ValueError, match="mdp has no terminal state: pass max_steps"):
        dra.train(garnet, **{**OK, "max_steps": None})
    with pytest.raises(ValueError, match="no terminal state can be reached from state 2"):
        dra.train(chain_with_trap(), **{**OK, "max_steps": None})
    dra.train(chain_with_trap(), **OK)  # fine with max_steps
    with pytest.raises(ValueError, match="switch_episode without switch_mdp needs"):
        dra.train(fs.gridworld(3, 3), **{**OK, "switch_episode": 1})
    with pytest.raises(ValueError, match="switch_episode without switch_mdp needs"):
        dra.train(fs.mattar_daw_maze(switch=True), **{**OK, "switch_episode": 1})


def test_maze_without_max_steps_is_accepted(maze):
    r = dra.train(maze, **{**OK, "max_steps": None, "n_episodes": 1, "n_traj": 1})
    assert r.returns[0, 0] <= 10.0


@pytest.mark.parametrize(
    "change, exc, match",
    [
        (dict(qbar=np.zeros((3, 4))), ValueError, r"qbar must have shape \(S, A\)"),
        (dict(qbar=np.full((54, 4), np.nan)), ValueError, "qbar must be finite"),
        (dict(sigma=np.zeros((54, 4))), ValueError, "sigma must be > 0"),
        (dict(sigma=np.ones((54, 5))), ValueError, r"sigma must have shape \(S, A\)"),
        (dict(beta=0.0), ValueError, "beta must be > 0"),
        (dict(lam=-1.0), ValueError, "lam must be >= 0"),
        (dict(sigma_base=0.0), ValueError, "sigma_base must be > 0"),
        (dict(n_traj=0), ValueError, "n_traj must be >= 1"),
        (dict(psi="x"), ValueError, "psi must be one of"),
        (dict(cost="x"), ValueError, "cost must be one of"),
        (dict(entropy_bonus="yes"), TypeError, "entropy_bonus must be a bool"),
        (dict(max_steps=0), ValueError, "max_steps must be >= 1"),
        (dict(mdp=fs.gridworld(3, 3, start=None)), ValueError, "no initial distribution"),
    ],
)
def test_estimate_gradient_argument_errors(maze, change, exc, match):
    kw = dict(mdp=maze, qbar=np.zeros((54, 4)), sigma=np.ones((54, 4)), beta=1.0, lam=0.1,
              sigma_base=5.0, n_traj=2, max_steps=10)
    kw.update(change)
    for est in (dra.estimate_gradient, rdra.estimate_gradient):
        with pytest.raises(exc, match=match):
            est(**kw)


def test_option_tables_are_exposed():
    assert set(dra.PSI) == {"advantage", "q", "return"}
    assert set(dra.COSTS) == {"allocation", "access"}
    assert set(dra.UPDATES) == {"expected_sarsa", "q_learning"}
    assert set(dra.ALLOCATIONS) == {"dra", "equal", "frequency", "stakes"}
