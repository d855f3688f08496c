"""fastsoft.plot: figures rendered with the Agg backend and their structure checked.

Set ``FASTSOFT_FIGURES_DIR`` (e.g. ``docs/figures``) to keep the PNGs of the
figure gallery test (the README's figures are made that way).
"""

import os
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import fastsoft as fs

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg", force=True)
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.quiver import Quiver  # noqa: E402

from fastsoft import plot  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _png(fig, tmp_path, name="fig.png"):
    out = os.environ.get("FASTSOFT_FIGURES_DIR")
    path = (Path(out) if out else tmp_path) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100 if out else 60)
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50
    rgb = (img[..., :3] * 255).round().astype(np.uint8).reshape(-1, 3)
    assert rgb.std() > 10  # not a blank canvas
    return img


def _quiver(ax):
    q = [c for c in ax.collections if isinstance(c, Quiver)]
    return q[0] if q else None


def _legend_labels(ax_or_fig):
    leg = ax_or_fig.get_legend() if hasattr(ax_or_fig, "get_legend") else None
    if leg is None and hasattr(ax_or_fig, "legends") and ax_or_fig.legends:
        leg = ax_or_fig.legends[0]
    return [t.get_text() for t in leg.get_texts()] if leg is not None else []


def _assert_integer_ticks(axis, lo, hi):
    ticks = [t for t in axis.get_ticklocs() if lo - 1e-9 <= t <= hi + 1e-9]
    assert ticks, "no ticks in range"
    np.testing.assert_array_equal(ticks, np.round(ticks))


def _assert_colorbar_matches(ax):
    """The colour bar (an inset of ``ax``) is exactly as tall as the drawn axes."""
    fig = ax.figure
    fig.canvas.draw()
    cbars = [a for a in ax.child_axes]
    assert len(cbars) == 1
    box, cbox = ax.get_window_extent(), cbars[0].get_window_extent()
    assert abs(box.height - cbox.height) < 1.0 and abs(box.y0 - cbox.y0) < 1.0
    return cbars[0]


@pytest.fixture(scope="module")
def grid_solution():
    mdp = fs.gridworld(8, 10, slip=0.1, walls=[(2, 3), (3, 3), (4, 3)], gamma=0.95)
    res = fs.soft_value_iteration(mdp, 0.3, tol=1e-8)
    return mdp, res


# ---------------------------------------------------------------- value_heatmap
def test_value_heatmap_structure(grid_solution, tmp_path):
    mdp, res = grid_solution
    ax = plot.value_heatmap(mdp, res.V, res.action, title="grid")
    _png(ax.figure, tmp_path, "value_heatmap_small.png")
    assert ax.get_title() == "grid"
    assert len(ax.figure.axes) == 1 and len(ax.child_axes) == 1  # the map, its colour bar
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("column", "row")
    _assert_integer_ticks(ax.xaxis, 0, 9)
    _assert_integer_ticks(ax.yaxis, 0, 7)
    cax = _assert_colorbar_matches(ax)
    assert cax.get_ylabel() == "V(s)"
    assert _legend_labels(ax) == ["wall", "goal", "start"]
    values = [im for im in ax.get_images() if np.ma.isMaskedArray(im.get_array())
              and im.get_array().ndim == 2][0].get_array()
    assert values.shape == (8, 10)
    assert values.mask[2, 3] and values.mask[3, 3] and values.mask[4, 3]
    np.testing.assert_allclose(values[0, 0], res.V[0])
    np.testing.assert_allclose(values[7, 9], res.V[79])
    # integer actions: one arrow per live cell (not walls, not the goal)
    q = _quiver(ax)
    assert q.N == 80 - 3 - 1
    offs = q.get_offsets()
    i78 = np.flatnonzero((offs[:, 0] == 8) & (offs[:, 1] == 7))[0]
    i69 = np.flatnonzero((offs[:, 0] == 9) & (offs[:, 1] == 6))[0]
    assert q.U[i78] > 0 and q.V[i78] == 0  # right, towards the goal
    assert q.V[i69] > 0 and q.U[i69] == 0  # down (+row)


def test_value_heatmap_soft_arrows_have_probability_lengths(grid_solution, tmp_path):
    mdp, res = grid_solution
    ax = plot.value_heatmap(mdp, res)  # V, policy, default title from the result
    assert "τ = 0.3" in ax.get_title() and "γ = 0.95" in ax.get_title()
    assert "arrow length ∝ π(a|s)" in _legend_labels(ax)
    q = _quiver(ax)
    offs = q.get_offsets()
    lengths = np.hypot(q.U, q.V)
    # cell (0, 5): one arrow per action above 2% probability, length 0.48 * p
    at = np.flatnonzero((offs[:, 0] == 5) & (offs[:, 1] == 0))
    p = res.policy[5]
    np.testing.assert_allclose(np.sort(lengths[at]), np.sort(0.48 * p[p > 0.02]))
    _png(ax.figure, tmp_path, "value_heatmap_soft.png")


def test_value_heatmap_entropy_layer(grid_solution, tmp_path):
    mdp, res = grid_solution
    ax = plot.value_heatmap(mdp, res, show="entropy", arrows="none")
    assert _quiver(ax) is None
    img = [im for im in ax.get_images() if im.get_array().ndim == 2][0]
    arr = img.get_array()
    p = res.policy[12]
    np.testing.assert_allclose(arr[1, 2], -(p * np.log(p)).sum())
    assert arr.mask[7, 9]  # terminal: no choice there
    assert img.get_clim() == (0.0, pytest.approx(np.log(4)))
    assert _assert_colorbar_matches(ax).get_ylabel() == "policy entropy (nats)"
    _png(ax.figure, tmp_path, "value_heatmap_entropy.png")


def test_value_heatmap_1000x1000_block_arrows_and_markers(tmp_path):
    n = 1000
    mdp = fs.gridworld(n, n, gamma=0.9)  # no solve needed: synthetic values and policy
    r, c = np.divmod(np.arange(n * n), n)
    V = -((n - 1 - r) + (n - 1 - c)).astype(float)
    pol = np.where(r < c, 1, 3).astype(np.int64)  # down above the diagonal, else right
    ax = plot.value_heatmap(mdp, V, pol, max_arrows=25)
    q = _quiver(ax)
    assert q.N == 25 * 25  # one arrow per 40 x 40 block
    offs = q.get_offsets()
    np.testing.assert_allclose(np.unique(offs[:, 0]), 19.5 + 40 * np.arange(25))
    assert np.all(np.hypot(q.U, q.V) == pytest.approx(0.38 * 40))
    # the goal star and start circle keep a readable size at any grid size
    marks = {ln.get_label(): ln for ln in ax.get_lines()}
    assert marks["goal"].get_markersize() >= 12 and marks["start"].get_markersize() >= 8
    _assert_integer_ticks(ax.xaxis, 0, n - 1)
    _assert_colorbar_matches(ax)
    _png(ax.figure, tmp_path, "value_heatmap_1000x1000.png")


def test_value_heatmap_on_existing_axes(grid_solution):
    mdp, res = grid_solution
    fig, axes = plt.subplots(1, 2)
    out = plot.value_heatmap(mdp, res.V, ax=axes[1], colorbar=False, legend=False, title="")
    assert out is axes[1]
    assert len(axes[0].get_images()) == 0 and out.get_legend() is None
    assert out.get_title() == "" and not out.child_axes


def test_value_heatmap_invalid_input(grid_solution):
    mdp, res = grid_solution
    garnet = fs.random_mdp(20, 2, 3, gamma=0.9, seed=0)
    with pytest.raises(ValueError, match="grid"):
        plot.value_heatmap(garnet, np.zeros(20))
    with pytest.raises(ValueError, match=r"V must have shape \(80,\)"):
        plot.value_heatmap(mdp, np.zeros(81))
    with pytest.raises(ValueError, match="policy"):
        plot.value_heatmap(mdp, res.V, np.zeros((80, 3)))
    with pytest.raises(ValueError, match="policy"):
        plot.value_heatmap(mdp, res.V, np.zeros(80))  # float "actions"
    with pytest.raises(ValueError, match="out of range"):
        plot.value_heatmap(mdp, res.V, np.full(80, 4))
    with pytest.raises(ValueError, match="max_arrows"):
        plot.value_heatmap(mdp, res.V, res.policy, max_arrows=0)
    with pytest.raises(ValueError, match="show"):
        plot.value_heatmap(mdp, res.V, show="speed")
    with pytest.raises(ValueError, match="arrows"):
        plot.value_heatmap(mdp, res.V, res.policy, arrows="big")
    with pytest.raises(ValueError, match="needs a policy"):
        plot.value_heatmap(mdp, res.V, show="entropy")
    with pytest.raises(TypeError):
        plot.value_heatmap("not an mdp", res.V)
    bad = fs.TabularMDP(mdp.indptr, mdp.indices, mdp.probs, mdp.rewards, mdp.gamma,
                        mdp.terminal, mdp.initial, dict(mdp.info, grid=(9, 9)))
    with pytest.raises(ValueError, match="does not match"):
        plot.value_heatmap(bad, res.V)


# ---------------------------------------------------------------- convergence
def test_convergence_separate_axes_for_sweeps_and_pi_steps(grid_solution, tmp_path):
    mdp, res = grid_solution
    hard = fs.value_iteration(mdp, tol=1e-8, order="gauss-seidel")
    pi = fs.policy_iteration(mdp, tol=1e-8)
    ax = plot.convergence({"soft VI": res, "hard VI": hard, "hard PI": pi})
    assert ax.get_yscale() == "log"
    assert len(ax.figure.axes) == 2  # sweeps below, policy-iteration steps on top
    assert ax.get_xlabel() == "value-iteration sweep"
    assert ax.pi_axes.get_xlabel().startswith("policy-iteration step")
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    x, y = lines["soft VI"].get_data()
    np.testing.assert_array_equal(x, np.arange(1, res.n_iter + 1))
    np.testing.assert_allclose(y, res.history["error_bound"])
    assert "hard PI" in {ln.get_label() for ln in ax.pi_axes.get_lines()}
    assert "hard PI" not in lines
    labels = _legend_labels(ax)
    assert labels[:4] == ["soft VI", "hard VI", "hard PI", "tol"]
    _png(ax.figure, tmp_path, "convergence.png")
    ax.figure.canvas.draw()
    _assert_integer_ticks(ax.xaxis, 1, res.n_iter)
    _assert_integer_ticks(ax.pi_axes.xaxis, 1, pi.n_iter)


def test_convergence_keeps_a_final_exact_zero(grid_solution):
    mdp, res = grid_solution
    exact = fs.SolveResult(**{**{f: getattr(res, f) for f in res.__dataclass_fields__},
                              "history": {"error_bound": np.array([1.0, 1e-3, 0.0]),
                                          "residual": np.zeros(3), "time": np.arange(3.0)}})
    ax = plot.convergence({"exact": exact}, show_tol=False)
    x, y = ax.get_lines()[0].get_data()
    np.testing.assert_array_equal(x, [1, 2, 3])
    np.testing.assert_allclose(y, [1.0, 1e-3, 1e-4])  # 0 drawn a decade below 1e-3
    assert any(lab.startswith("bound = 0 (drawn at 1e-04)") for lab in _legend_labels(ax))
    zeros = [ln for ln in ax.get_lines() if ln.get_marker() == "v"]
    assert len(zeros) == 1 and zeros[0].get_xdata()[0] == 3


def test_convergence_time_and_invalid_input(grid_solution):
    mdp, res = grid_solution
    ax = plot.convergence(res, x="time", title="")
    assert ax.get_xlabel() == "time (s)" and ax.get_title() == ""
    with pytest.raises(TypeError):
        plot.convergence(42)
    with pytest.raises(ValueError, match="x must be"):
        plot.convergence(res, x="sweeps")
    with pytest.raises(ValueError, match="labels"):
        plot.convergence([res, res], labels=["a"])
    with pytest.raises(ValueError, match="empty"):
        plot.convergence([])


# ---------------------------------------------------------------- DRA
@pytest.fixture(scope="module")
def maze_dra():
    from fastsoft import dra

    mdp = fs.mattar_daw_maze()
    res = dra.train(mdp, **{**dra.MAZE_PARAMS, "n_episodes": 600}, n_runs=2, seed=1,
                    eval_every=100, n_eval=30)
    return mdp, res


def test_dra_maps_from_result(maze_dra, tmp_path):
    mdp, res = maze_dra
    fig = plot.dra_maps(mdp, res, sigma_base=5.0)
    axes = [a for a in fig.axes if a.get_images() and a.get_title()]
    assert [a.get_title() for a in axes] == ["memory noise σ (mean over actions)",
                                             "choice entropy"]
    assert fig._suptitle.get_text() == "DRA memories: mean of 2 runs"
    assert len(fig.axes) == 2 and all(len(a.child_axes) == 1 for a in fig.axes)
    assert _legend_labels(fig) == ["wall", "goal", "start", "no memory"]
    sig_img = [im for im in axes[0].get_images() if im.get_array().ndim == 2][0]
    arr = sig_img.get_array()
    assert arr.shape == (6, 9)
    assert arr.mask[1, 2] and arr.mask[0, 8]  # a wall and the goal
    start = 2 * 9 + 0
    np.testing.assert_allclose(arr[2, 0], res.sigma[:, start, :].mean(), rtol=1e-12)
    ent = [im for im in axes[1].get_images() if im.get_array().ndim == 2][0].get_array()
    np.testing.assert_allclose(ent[2, 0], res.history.state_entropy[:, -1, start].mean())
    assert sig_img.get_clim() == (0.0, 5.0)
    for ax in axes:
        _assert_colorbar_matches(ax)
    _png(fig, tmp_path, "dra_maps.png")


def test_dra_maps_arrays_and_per_action(maze_dra, tmp_path):
    mdp, res = maze_dra
    fig = plot.dra_maps(mdp, res.sigma[0], res.history.state_entropy[0, -1], per_action=True)
    titled = [a for a in fig.axes if a.get_images() and a.get_title()]
    assert [a.get_title() for a in titled] == ["σ[up]", "σ[down]", "σ[left]", "σ[right]",
                                               "choice entropy"]
    right = [im for im in titled[3].get_images() if im.get_array().ndim == 2][0].get_array()
    np.testing.assert_allclose(right[3, 4], res.sigma[0, 3 * 9 + 4, 3])
    _png(fig, tmp_path, "dra_maps_per_action.png")
    fig2 = plot.dra_maps(mdp, res.sigma)  # no entropy: the sigma panel only
    assert len([a for a in fig2.axes if a.get_title()]) == 1


def test_dra_maps_non_grid_task(tmp_path):
    from fastsoft import dra

    mdp = fs.huys_planning_task(3)
    res = dra.train(mdp, **dra.HUYS_PARAMS, alpha_q=0.1, alpha_sigma=1.0, n_episodes=200,
                    n_runs=2, seed=0, n_eval=20)
    fig = plot.dra_maps(mdp, res)
    ax = [a for a in fig.axes if a.get_images()][0]
    img = ax.get_images()[0].get_array()
    assert img.shape == (mdp.n_states, 2)
    assert img.mask[-1].all()  # terminal states have no memories
    bar_ax = [a for a in fig.axes if a.patches][0]
    assert len(bar_ax.patches) == mdp.n_states
    assert bar_ax.get_ylabel() == "choice entropy (nats)"
    _png(fig, tmp_path, "dra_maps_huys.png")


def test_dra_history_cost_on_its_own_axis(maze_dra, tmp_path):
    mdp, res = maze_dra
    ax = plot.dra_history(res)
    labels = [ln.get_label() for ln in ax.get_lines()]
    assert labels == ["expected return", "objective (return − cost)"]
    cost = ax.cost_axes.get_lines()
    assert [ln.get_label() for ln in cost] == ["memory cost"]
    np.testing.assert_allclose(cost[0].get_ydata(), res.history.cost.mean(axis=0))
    x, y = ax.get_lines()[1].get_data()
    np.testing.assert_array_equal(x, res.history.episode)
    np.testing.assert_allclose(y, res.history.objective.mean(axis=0))
    assert _legend_labels(ax) == ["expected return", "memory cost",
                                  "objective (return − cost)", "min-max over 2 runs"]
    assert ax.get_ylabel() == "expected return / objective (undiscounted)"
    assert ax.cost_axes.get_ylabel().startswith("memory cost")
    assert ax.get_xlabel() == "learning episode" and "2 runs" in ax.get_title()
    assert len(ax.figure.axes) == 2  # return/objective axes and the cost axes
    _png(ax.figure, tmp_path, "dra_history.png")
    with pytest.raises(ValueError, match="what"):
        plot.dra_history(res, what=("speed",))
    with pytest.raises(TypeError):
        plot.dra_history(np.zeros(3))


def test_dra_maps_invalid_input(maze_dra):
    mdp, res = maze_dra
    S, A = mdp.n_states, mdp.n_actions
    with pytest.raises(ValueError, match="sigma must have shape"):
        plot.dra_maps(mdp, np.ones((S, A + 1)))
    with pytest.raises(ValueError, match="entropy must have shape"):
        plot.dra_maps(mdp, np.ones((S, A)), np.ones(S + 1))
    with pytest.raises(ValueError, match="memories must have shape"):
        plot.dra_maps(mdp, np.ones((S, A)), memories=np.ones((S, 2), bool))
    with pytest.raises(TypeError):
        plot.dra_maps(None, np.ones((S, A)))


def test_missing_matplotlib_names_the_extra(monkeypatch, grid_solution):
    mdp, res = grid_solution
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install fastsoft\[plot\]"):
        plot.value_heatmap(mdp, res.V)
    with pytest.raises(ImportError, match=r"fastsoft\[plot\]"):
        plot.convergence(res)


# ---------------------------------------------------------------- toy-text layouts (from_gymnasium)
def test_frozenlake_layout_and_heatmap(tmp_path):
    env = gym.make("FrozenLake-v1")
    mdp = fs.TabularMDP.from_gymnasium(env, 0.99)
    info = mdp.info
    assert info["grid"] == (4, 4)
    assert set(info["holes"]) == {(1, 1), (1, 3), (2, 3), (3, 0)}
    assert info["goals"] == ((3, 3),)
    assert info["actions"] == ("left", "down", "right", "up")
    res = fs.solve(mdp, 0.05)
    ax = plot.value_heatmap(mdp, res)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["hole", "goal", "start", "arrow length ∝ π(a|s)"]
    assert "FrozenLake-v1" in ax.get_title()
    _png(ax.figure, tmp_path, "value_heatmap_frozenlake.png")


def test_cliffwalking_layout(tmp_path):
    mdp = fs.TabularMDP.from_gymnasium(gym.make("CliffWalking-v1"), 0.99)
    assert mdp.info["grid"] == (4, 12)
    assert mdp.info["cliff"] == tuple((3, c) for c in range(1, 11))
    assert mdp.info["goals"] == ((3, 11),)
    res = fs.solve(mdp)
    ax = plot.value_heatmap(mdp, res)
    _png(ax.figure, tmp_path, "value_heatmap_cliffwalking.png")
    assert [t.get_text() for t in ax.get_legend().get_texts()][:3] == ["cliff", "goal",
                                                                       "start"]
    # the greedy path from the start goes up (action 0) first, never into the cliff
    assert res.action[36] == 0


def test_taxi_layers(tmp_path):
    env = gym.make("Taxi-v4")
    u = env.unwrapped
    mdp = fs.TabularMDP.from_gymnasium(env, 0.95)
    gi = np.asarray(mdp.info["grid_index"])
    assert gi.shape == (20, 5, 5) and mdp.info["grid"] == (5, 5)
    # every state of the environment sits in exactly one cell of one layer
    assert sorted(gi.ravel().tolist()) == list(range(500))
    r, c, p, d = 2, 3, 1, 2
    assert gi[p * 4 + d, r, c] == u.encode(r, c, p, d)
    assert mdp.info["layer_goals"][p * 4 + d] == (tuple(u.locs[d]),)
    res = fs.solve(mdp)
    ax = plot.value_heatmap(mdp, res, layer=p * 4 + d)
    assert "passenger at G, destination Y" in ax.get_title()
    _png(ax.figure, tmp_path, "value_heatmap_taxi.png")
    with pytest.raises(ValueError, match="layer"):
        plot.value_heatmap(mdp, res, layer=20)


def test_solve_accepts_a_gymnasium_env():
    env = gym.make("FrozenLake-v1")
    res = fs.solve(env, gamma=0.9)
    ref = fs.solve(fs.TabularMDP.from_gymnasium(env, 0.9))
    np.testing.assert_array_equal(res.V, ref.V)
    assert fs.solve(env).V.shape == (16,)  # default gamma 0.99
    with pytest.raises(TypeError, match="no transition table"):
        fs.solve(gym.make("CartPole-v1"))
    assert fs.solve(gym.make("Blackjack-v1")).V.shape == (715,)  # enumerated exactly
    with pytest.raises(TypeError, match="TabularMDP or a gymnasium environment"):
        fs.solve("FrozenLake-v1")
    with pytest.raises(ValueError, match="with_gamma"):
        fs.solve(fs.gridworld(3, 3, gamma=0.9), gamma=0.5)
