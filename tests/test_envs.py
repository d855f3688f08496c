"""Gymnasium environments over fastsoft MDPs (fastsoft.envs)."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from conftest import dense_random_mdp, make_env
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

import fastsoft as fs
from fastsoft.envs import ENV_IDS, TabularEnv, TabularVectorEnv, render_ansi
from fastsoft.envs.vector import _step_batch
from fastsoft.reference import sampling as ref
from fastsoft.sampling import row_cumsum


def _generator_mdps():
    return {
        "grid": fs.gridworld(4, 5, slip=0.1, walls=[(1, 1)], gamma=0.9),
        "garnet": fs.random_mdp(20, 3, 4, gamma=0.9, seed=1),
        "maze": fs.mattar_daw_maze(),
        "maze_switched": fs.mattar_daw_maze(switch=True),
        "huys": fs.huys_planning_task(3),
        "grid32": fs.gridworld(3, 3, slip=0.3, dtype=np.float32),
    }


def _checked(env):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        check_env(env)
    return [str(x.message) for x in w]


# --------------------------------------------------------------------- TabularEnv
@pytest.mark.parametrize("name", list(_generator_mdps()))
def test_check_env_passes(name):
    mdp = _generator_mdps()[name]
    msgs = _checked(TabularEnv(mdp, max_episode_steps=20, render_mode="ansi"))
    # only the note that alternative render modes need a spec
    assert all("not having a spec" in m for m in msgs), msgs


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_registered_ids_pass_check_env(env_id):
    env = gym.make(env_id, render_mode="ansi")
    assert isinstance(env.unwrapped, TabularEnv)
    msgs = _checked(env.unwrapped)  # every mode is made; headless human mode says so
    assert all("cannot open a window" in m for m in msgs), msgs


@pytest.mark.parametrize("name", list(_generator_mdps()))
def test_from_gymnasium_round_trip(name):
    mdp = _generator_mdps()[name]
    back = fs.TabularMDP.from_gymnasium(TabularEnv(mdp), mdp.gamma, dtype=mdp.dtype)
    for f in ("indptr", "indices", "probs", "terminal", "initial"):
        a, b = getattr(back, f), getattr(mdp, f)
        assert (a is None and b is None) or np.array_equal(a, b), f
    assert back.dtype == mdp.dtype
    # rewards come back as sum_k p_k R: equal up to that sum's rounding
    np.testing.assert_allclose(back.rewards, mdp.rewards, rtol=0, atol=4 * np.finfo(mdp.dtype).eps)
    assert back.allclose(mdp, atol=1e-6 if mdp.dtype == np.float32 else 1e-12)


def test_round_trip_exact_for_deterministic_rewards_and_frozenlake():
    maze = fs.mattar_daw_maze()
    assert fs.TabularMDP.from_gymnasium(TabularEnv(maze), maze.gamma) == maze
    lake = fs.TabularMDP.from_gymnasium(make_env("FrozenLake", map_name="4x4"), 0.95)
    back = fs.TabularMDP.from_gymnasium(TabularEnv(lake), 0.95)
    assert back.allclose(lake, atol=1e-12)


def test_round_trip_with_infeasible_actions():
    mdp = dense_random_mdp(6, 3, 0.9, 5, infeasible=0.4, terminal=0.3)
    back = fs.TabularMDP.from_gymnasium(TabularEnv(mdp), 0.9)
    np.testing.assert_array_equal(back.feasible, mdp.feasible)
    live = ~mdp.terminal
    # non-terminal rows come back unchanged (terminal rows become zero-reward self-loops)
    P1, _ = back.to_dense()
    P0, _ = mdp.to_dense()
    np.testing.assert_allclose(P1[live], P0[live], atol=1e-15)
    np.testing.assert_array_equal(back.terminal, mdp.terminal)


def test_transition_table_describes_step():
    mdp = fs.gridworld(3, 4, slip=0.2, walls=[(1, 1)], goals={(2, 3): 5.0})
    env = TabularEnv(mdp)
    P = env.P
    assert env.P is P  # built once
    assert sorted(P) == list(range(12)) and all(sorted(P[s]) == [0, 1, 2, 3] for s in P)
    A = 4
    for s in range(12):
        for a in range(A):
            out = P[s][a]
            if mdp.terminal[s]:
                assert out == [(1.0, s, 0.0, True)]
                continue
            lo, hi = mdp.indptr[s * A + a], mdp.indptr[s * A + a + 1]
            assert [o[1] for o in out] == list(mdp.indices[lo:hi])
            assert [o[0] for o in out] == list(mdp.probs[lo:hi])
            assert all(o[2] == mdp.rewards[s, a] for o in out)
            assert [o[3] for o in out] == list(mdp.terminal[mdp.indices[lo:hi]])
    np.testing.assert_array_equal(env.initial_state_distrib, mdp.initial)
    assert TabularEnv(fs.random_mdp(5, 2, 2, gamma=0.9, seed=0)).initial_state_distrib is None


def test_step_semantics():
    mdp = fs.gridworld(2, 3, goals={(0, 2): 3.0}, step_reward=-1.0, start=(0, 0))
    env = TabularEnv(mdp, max_episode_steps=5)
    s, info = env.reset(seed=0)
    assert s == 0 and info["prob"] == 1.0
    np.testing.assert_array_equal(info["action_mask"], [1, 1, 1, 1])
    s, r, term, trunc, info = env.step(3)  # right
    assert (s, r, term, trunc) == (1, -1.0, False, False) and info["prob"] == 1.0
    s, r, term, trunc, info = env.step(np.int64(3))  # into the goal
    assert (s, r, term, trunc) == (2, 3.0, True, False)
    # stepping on from a terminal state is a zero-reward no-op
    s, r, term, trunc, info = env.step(0)
    assert (s, r, term, trunc) == (2, 0.0, True, False) and info["prob"] == 1.0
    # truncation after max_episode_steps
    env.reset(seed=0)
    for k in range(5):
        s, r, term, trunc, _ = env.step(0)  # bump into the top wall
        assert s == 0 and not term and trunc == (k == 4)
    assert env.elapsed_steps == 5
    # options["state"]
    s, info = env.reset(options={"state": 4})
    assert s == 4 and env.s == 4


def test_reset_draws_from_initial_and_is_seeded():
    mdp = fs.random_mdp(6, 2, 3, gamma=0.9, seed=2).with_initial([0.5, 0, 0, 0.5, 0, 0])
    env = TabularEnv(mdp)
    starts = [env.reset(seed=k)[0] for k in range(200)]
    assert set(starts) == {0, 3}
    assert [env.reset(seed=7)[0] for _ in range(3)] == [env.reset(seed=7)[0]] * 3
    info = env.reset(seed=1)[1]
    assert info["prob"] == 0.5
    # no initial distribution: uniform over non-terminal states
    grid = fs.gridworld(3, 3, walls=[(1, 1)], start=None)
    env = TabularEnv(grid)
    seen = {env.reset(seed=k)[0] for k in range(300)}
    assert seen == set(np.flatnonzero(~grid.terminal))


def test_step_matches_transition_probabilities():
    mdp = dense_random_mdp(4, 2, 0.9, 3)
    P, R = mdp.to_dense()
    env = TabularEnv(mdp)
    env.reset(seed=0)
    n = 8000
    counts = np.zeros(4)
    for _ in range(n):
        env.reset(options={"state": 1})
        s2, r, _, _, info = env.step(1)
        counts[s2] += 1
        assert r == R[1, 1] and info["prob"] == P[1, 1, s2]
    p = P[1, 1]
    assert np.all(np.abs(counts / n - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-12)


def test_step_errors():
    mdp = dense_random_mdp(5, 3, 0.9, 1, infeasible=0.4)
    env = TabularEnv(mdp)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    s_inf, a_inf = np.argwhere(~mdp.feasible)[0]
    env.reset(options={"state": int(s_inf)})
    with pytest.raises(ValueError, match=f"action {a_inf} is infeasible in state {s_inf}"):
        env.step(int(a_inf))
    with pytest.raises(ValueError, match="out of range"):
        env.step(3)
    with pytest.raises(TypeError, match="integer"):
        env.step(0.5)
    with pytest.raises(TypeError, match="integer"):
        env.step(np.array([0, 1]))
    with pytest.raises(ValueError, match="out of range"):
        env.reset(options={"state": 5})
    with pytest.raises(TypeError, match="integer"):
        env.reset(options={"state": "a"})
    with pytest.raises(ValueError, match="render_mode"):
        TabularEnv(mdp, render_mode="rgb")
    with pytest.raises(ValueError, match="max_episode_steps"):
        TabularEnv(mdp, max_episode_steps=0)
    with pytest.raises(TypeError, match="mdp"):
        TabularEnv("not an mdp")
    # the mask in info marks the infeasible action
    _, info = env.reset(options={"state": int(s_inf)})
    assert info["action_mask"][a_inf] == 0
    a = env.action_space.sample(mask=info["action_mask"])
    env.step(a)


def test_render_ansi():
    mdp = fs.gridworld(3, 4, walls=[(1, 1)], goals=[(2, 3)], start=(0, 0))
    env = TabularEnv(mdp, render_mode="ansi")
    env.reset(seed=0)
    assert env.render() == "\nASS.\n.#..\n...G\n".replace("ASS", "A..")
    env.step(1)  # down from (0, 0) to (1, 0)
    text = env.render()
    assert text.splitlines() == ["  (down)", "S...", "A#..", "...G"]
    maze_text = render_ansi(fs.mattar_daw_maze(), 18)
    assert maze_text.splitlines()[1:] == [
        ".......#G", "..#....#.", "A.#....#.", "..#......", ".....#...", "........."]
    other = TabularEnv(fs.random_mdp(5, 2, 2, gamma=0.9, seed=0), render_mode="ansi")
    other.reset(seed=0)
    other.step(1)
    assert "state" in other.render() and "action 1" in other.render()
    with pytest.warns(UserWarning, match="render mode"):
        assert TabularEnv(mdp).render() is None


def test_render_rgb_array_draws_cells_and_agent():
    pytest.importorskip("matplotlib")
    mdp = fs.gridworld(3, 4, walls=[(1, 1)], goals=[(2, 3)], start=(0, 0))
    env = TabularEnv(mdp, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    h, w, _ = frame.shape
    assert (h, w) == (3 * 48, 4 * 48)  # 48 pixels per cell on small grids

    def cell(r, c):
        return frame[int((r + 0.5) * h / 3), int((c + 0.5) * w / 4)].astype(int)

    assert cell(0, 0)[2] > 150 and cell(0, 0)[0] < 100  # the agent (blue) at the start
    assert np.all(np.abs(cell(1, 1) - 89) <= 2)  # the wall, dark grey
    assert cell(2, 3)[0] > 240 and cell(2, 3)[2] < 30  # the goal, gold
    env.step(1)  # down to (1, 0)
    frame2 = env.render()
    assert frame2[int(1.5 * h / 3), int(0.5 * w / 4)][2] > 150
    assert not np.array_equal(frame, frame2)
    env.close()
    # non-grid MDPs: a square array of states
    other = TabularEnv(fs.random_mdp(10, 2, 2, gamma=0.9, seed=0), render_mode="rgb_array")
    other.reset(seed=0)
    assert other.render().shape == (3 * 48, 4 * 48, 3)  # 10 states in 3 rows of 4


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env_with_every_render_mode(env_id):
    """check_env with its render checks on: every declared mode is made and rendered."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg", force=True)  # no windows in test runs, even with a display
    env = gym.make(env_id)
    assert env.spec.max_episode_steps is not None
    assert env.unwrapped.metadata["render_modes"] == ["ansi", "rgb_array", "human"]
    msgs = _checked(env.unwrapped)
    # headless (Agg): human mode draws off screen and says so
    assert all("cannot open a window" in m for m in msgs), msgs


def test_toy_text_grid_render():
    pytest.importorskip("matplotlib")
    mdp = fs.TabularMDP.from_gymnasium(gym.make("Taxi-v4"), 0.9)
    env = TabularEnv(mdp, render_mode="rgb_array")
    env.reset(seed=1)
    assert env.render().shape == (5 * 48, 5 * 48, 3)
    assert "state" in render_ansi(mdp, 3)  # layered grids: no 5x5 text picture


# -------------------------------------------------------------------- registration
def test_make_with_kwargs_builds_the_generator_mdp():
    env = gym.make("fastsoft/GridWorld-v0", rows=10, cols=10, slip=0.1)
    assert env.unwrapped.mdp == fs.gridworld(10, 10, slip=0.1)
    env = gym.make("fastsoft/RandomMDP-v0", n_states=30, seed=4)
    assert env.unwrapped.mdp == fs.random_mdp(30, 4, 3, gamma=0.99, seed=4)
    assert env.spec.max_episode_steps == 100
    env = gym.make("fastsoft/HuysPlanning-v0", depth=4)
    assert env.unwrapped.mdp == fs.huys_planning_task(4)
    env = gym.make("fastsoft/MattarDawMaze-v0", switch=True)
    assert env.unwrapped.mdp == fs.mattar_daw_maze(switch=True)
    env = gym.make("fastsoft/MattarDawMaze-v0", max_episode_steps=7)
    env.reset(seed=0)
    for _ in range(6):
        assert not env.step(2)[3]  # left into the wall
    assert env.step(2)[3]
    assert set(ENV_IDS) <= set(gym.registry)


def test_huys_episode_ends_at_depth():
    env = gym.make("fastsoft/HuysPlanning-v0", depth=3)
    s, _ = env.reset(seed=3)
    assert s < 6
    total = 0.0
    for t in range(3):
        s, r, term, trunc, _ = env.step(0)
        total += r
        assert term == (t == 2) and not trunc
    assert s >= 18


# ------------------------------------------------------------------ vector env
def test_step_batch_kernel_matches_reference():
    mdp = dense_random_mdp(7, 3, 0.9, 4, terminal=0.3)
    rng = np.random.default_rng(0)
    n = 500
    states = rng.integers(0, 7, n)
    actions = rng.integers(0, 3, n)
    u = rng.random(n)
    active = rng.random(n) < 0.8
    out = (states.copy(), np.zeros(n), np.ones(n), np.zeros(n, bool))
    _step_batch(mdp.indptr, mdp.indices, row_cumsum(mdp), np.asarray(mdp.probs, float),
                np.asarray(mdp.rewards, float), mdp.terminal, states, actions, u, active, *out)
    exp = ref.step_batch(mdp, states, actions, u, active)
    for x, y in zip(out, exp, strict=True):
        np.testing.assert_array_equal(x, y)


def test_vector_env_spaces_and_reproducibility():
    mdp = fs.gridworld(4, 4, slip=0.3)
    venv = TabularVectorEnv(mdp, 8)
    assert venv.single_observation_space == gym.spaces.Discrete(16)
    assert venv.single_action_space == gym.spaces.Discrete(4)
    assert venv.observation_space.shape == (8,) and venv.action_space.shape == (8,)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP

    def run(seed):
        obs, _ = venv.reset(seed=seed)
        out = [obs]
        venv.action_space.seed(seed)
        for _ in range(30):
            obs, r, te, tr, info = venv.step(venv.action_space.sample())
            out.append(obs)
            assert obs in venv.observation_space
            assert r.shape == (8,) and te.dtype == bool and tr.dtype == bool
            assert info["prob"].shape == (8,) and info["_prob"].all()
            assert info["action_mask"].shape == (8, 4)
        return np.array(out)

    np.testing.assert_array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


def test_vector_env_transitions_match_single_env_law():
    mdp = dense_random_mdp(4, 2, 0.9, 3)
    P, R = mdp.to_dense()
    n = 20_000
    venv = TabularVectorEnv(mdp.with_initial(np.eye(4)[1]), n)
    venv.reset(seed=0)
    obs, r, _, _, info = venv.step(np.ones(n, dtype=np.int64))
    freq = np.bincount(obs, minlength=4) / n
    p = P[1, 1]
    assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-12)
    np.testing.assert_array_equal(r, R[1, 1])
    np.testing.assert_array_equal(info["prob"], P[1, 1, obs])


def test_vector_env_next_step_autoreset():
    mdp = fs.gridworld(1, 3, goals={(0, 2): 1.0}, start=(0, 0), step_reward=-1.0)
    venv = TabularVectorEnv(mdp, 3, max_episode_steps=3)
    obs, _ = venv.reset(seed=0)
    np.testing.assert_array_equal(obs, [0, 0, 0])
    right, left = 3, 2
    obs, r, te, tr, _ = venv.step(np.array([right, right, left]))
    np.testing.assert_array_equal(obs, [1, 1, 0])
    obs, r, te, tr, _ = venv.step(np.array([right, left, left]))
    np.testing.assert_array_equal(obs, [2, 0, 0])
    np.testing.assert_array_equal(r, [1.0, -1.0, -1.0])
    np.testing.assert_array_equal(te, [True, False, False])
    obs, r, te, tr, info = venv.step(np.array([right, left, left]))
    # copy 0 is reset (its action ignored); copies 1 and 2 are truncated after 3 steps
    np.testing.assert_array_equal(obs, [0, 0, 0])
    np.testing.assert_array_equal(r, [0.0, -1.0, -1.0])
    np.testing.assert_array_equal(te, [False, False, False])
    np.testing.assert_array_equal(tr, [False, True, True])
    assert info["prob"][0] == 1.0
    obs, r, te, tr, _ = venv.step(np.array([right, right, right]))
    np.testing.assert_array_equal(obs, [1, 0, 0])  # copy 0 moves, 1 and 2 are reset
    np.testing.assert_array_equal(r, [-1.0, 0.0, 0.0])
    np.testing.assert_array_equal(tr, [False, False, False])


def test_vector_env_same_step_and_disabled():
    mdp = fs.gridworld(1, 3, goals={(0, 2): 1.0}, start=(0, 0))
    venv = TabularVectorEnv(mdp, 2, autoreset_mode="SameStep")
    assert venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    venv.reset(seed=0)
    venv.step(np.array([3, 2]))
    obs, r, te, tr, info = venv.step(np.array([3, 2]))
    np.testing.assert_array_equal(obs, [0, 0])
    np.testing.assert_array_equal(te, [True, False])
    np.testing.assert_array_equal(info["final_obs"], [2, -1])
    np.testing.assert_array_equal(info["_final_obs"], [True, False])
    venv = TabularVectorEnv(mdp, 2, autoreset_mode=AutoresetMode.DISABLED)
    venv.reset(seed=0)
    venv.step(np.array([3, 3]))
    obs, *_ = venv.step(np.array([3, 3]))
    np.testing.assert_array_equal(obs, [2, 2])
    with pytest.raises(RuntimeError, match="reset_mask"):
        venv.step(np.array([3, 3]))
    obs, info = venv.reset(options={"reset_mask": np.array([True, False])})
    np.testing.assert_array_equal(obs, [0, 2])
    np.testing.assert_array_equal(info["_prob"], [True, False])
    with pytest.raises(RuntimeError, match="copy 1"):
        venv.step(np.array([3, 3]))


def test_vector_env_errors_and_render():
    mdp = dense_random_mdp(5, 3, 0.9, 1, infeasible=0.4)
    venv = TabularVectorEnv(mdp, 4, render_mode="ansi")
    with pytest.raises(RuntimeError, match="reset"):
        venv.step(np.zeros(4, dtype=int))
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        venv.step(np.zeros(3, dtype=int))
    with pytest.raises(TypeError, match="integers"):
        venv.step(np.zeros(4))
    with pytest.raises(ValueError, match="out of range"):
        venv.step(np.full(4, 3))
    s_inf, a_inf = np.argwhere(~mdp.feasible)[0]
    start = np.zeros(5)
    start[s_inf] = 1.0
    v2 = TabularVectorEnv(mdp.with_initial(start), 3)
    v2.reset(seed=0)
    acts = np.argmax(mdp.feasible[[s_inf] * 3], axis=1)
    acts[1] = a_inf
    with pytest.raises(ValueError, match=rf"actions\[1\] = {a_inf} is infeasible in state "
                                         rf"{s_inf}"):
        v2.step(acts)
    with pytest.raises(TypeError, match="seed"):
        v2.reset(seed=[1, 2, 3])
    fresh = TabularVectorEnv(mdp, 2)
    with pytest.raises(ValueError, match="first reset"):
        fresh.reset(options={"reset_mask": np.array([True, False])})
    with pytest.raises(ValueError, match="autoreset_mode"):
        TabularVectorEnv(mdp, 2, autoreset_mode="sometimes")
    with pytest.raises(ValueError, match="num_envs"):
        TabularVectorEnv(mdp, 0)
    with pytest.raises(ValueError, match="reset_mask"):
        venv.reset(options={"reset_mask": np.ones(3, bool)})
    texts = venv.render()
    assert len(texts) == 4 and all("state" in t for t in texts)
    assert "TabularVectorEnv" in repr(venv) and "TabularEnv" in repr(TabularEnv(mdp))


def test_make_vec_uses_vector_entry_point():
    venv = gym.make_vec("fastsoft/GridWorld-v0", num_envs=5, rows=3, cols=3, slip=0.1)
    assert isinstance(venv.unwrapped, TabularVectorEnv) and venv.num_envs == 5
    assert venv.unwrapped.mdp == fs.gridworld(3, 3, slip=0.1)
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (5,)
    venv = gym.make_vec("fastsoft/RandomMDP-v0", num_envs=2)
    assert venv.unwrapped.max_episode_steps == 100
