"""fastsoft.plot: figures rendered to PNG with the Agg backend and checked."""

import sys

import numpy as np
import pytest

import fastsoft as fs

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg", force=True)
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from fastsoft import plot  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _png(fig, tmp_path, name="fig.png"):
    path = tmp_path / name
    fig.savefig(path, dpi=60)
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50
    return img


def _assert_nontrivial(img, min_colours=20, max_share=0.9):
    rgb = (img[..., :3] * 255).round().astype(np.uint8).reshape(-1, 3)
    colours = np.unique(rgb, axis=0)
    assert len(colours) >= min_colours, f"only {len(colours)} distinct colours"
    assert rgb.std() > 10  # not a blank canvas
    # not all one colour (line plots are mostly white background)
    _, counts = np.unique(rgb, axis=0, return_counts=True)
    assert counts.max() / rgb.shape[0] < max_share


def _pixel_colour(ax, fig, x, y):
    """RGB of the rendered canvas at data point (x, y)."""
    fig.canvas.draw()
    buf = np.asarray(fig.canvas.buffer_rgba())
    px, py = ax.transData.transform((x, y))
    h = buf.shape[0]
    return buf[int(round(h - py)), int(round(px)), :3].astype(int)


@pytest.fixture(scope="module")
def grid_solution():
    mdp = fs.gridworld(8, 10, slip=0.1, walls=[(2, 3), (3, 3), (4, 3)], gamma=0.95)
    res = fs.soft_value_iteration(mdp, 0.1, tol=1e-8)
    return mdp, res


# ---------------------------------------------------------------- value_heatmap
def test_value_heatmap_renders_values_walls_arrows(grid_solution, tmp_path):
    mdp, res = grid_solution
    ax = plot.value_heatmap(mdp, res.V, res.policy, title="grid")
    img = _png(ax.figure, tmp_path)
    _assert_nontrivial(img)
    assert ax.get_title() == "grid"
    image = ax.get_images()[0]
    arr = image.get_array()
    assert arr.shape == (8, 10)
    # walls are masked, every other cell holds its value
    assert arr.mask[2, 3] and arr.mask[3, 3] and arr.mask[4, 3]
    np.testing.assert_allclose(arr[0, 0], res.V[0])
    np.testing.assert_allclose(arr[7, 9], res.V[79])
    # one arrow per non-wall, non-terminal cell (small grid: every cell)
    quiv = [c for c in ax.collections if isinstance(c, matplotlib.quiver.Quiver)]
    assert len(quiv) == 1
    q = quiv[0]
    n_live = 80 - 3 - 1  # walls and the goal
    assert q.N == n_live
    # next to the goal (7, 8): the arrow points right (+x), and (6, 9) points down (+row)
    offs = q.get_offsets()
    idx_78 = np.flatnonzero((offs[:, 0] == 8) & (offs[:, 1] == 7))[0]
    idx_69 = np.flatnonzero((offs[:, 0] == 9) & (offs[:, 1] == 6))[0]
    assert q.U[idx_78] > 0 and q.V[idx_78] == 0
    assert q.V[idx_69] > 0 and q.U[idx_69] == 0
    # the wall pixel is grey, the value pixels are not
    grey = _pixel_colour(ax, ax.figure, 3, 3)
    assert np.ptp(grey) <= 2
    assert np.ptp(_pixel_colour(ax, ax.figure, 0.35, 0.35)) > 10  # beside the arrow


def test_value_heatmap_accepts_a_result_and_integer_actions(grid_solution, tmp_path):
    mdp, res = grid_solution
    ax = plot.value_heatmap(mdp, res)  # V and policy from the result
    q = [c for c in ax.collections if isinstance(c, matplotlib.quiver.Quiver)][0]
    ax2 = plot.value_heatmap(mdp, res.V, res.action, colorbar=False)
    q2 = [c for c in ax2.collections if isinstance(c, matplotlib.quiver.Quiver)][0]
    np.testing.assert_allclose(q.U, q2.U)
    np.testing.assert_allclose(q.V, q2.V)
    _assert_nontrivial(_png(ax2.figure, tmp_path))


def test_value_heatmap_without_policy_has_no_arrows(grid_solution):
    mdp, res = grid_solution
    ax = plot.value_heatmap(mdp, res.V)
    assert not [c for c in ax.collections if isinstance(c, matplotlib.quiver.Quiver)]


def test_value_heatmap_subsamples_arrows_on_big_grids():
    mdp = fs.gridworld(200, 150, gamma=0.9)
    V = np.linspace(0, 1, mdp.n_states)
    pol = np.zeros(mdp.n_states, dtype=np.int64)
    ax = plot.value_heatmap(mdp, V, pol, max_arrows=20)
    q = [c for c in ax.collections if isinstance(c, matplotlib.quiver.Quiver)][0]
    assert q.N <= 20 * 20


def test_value_heatmap_on_existing_axes(grid_solution):
    mdp, res = grid_solution
    fig, axes = plt.subplots(1, 2)
    out = plot.value_heatmap(mdp, res.V, ax=axes[1], colorbar=False)
    assert out is axes[1]
    assert len(axes[1].get_images()) == 1 and len(axes[0].get_images()) == 0


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
    with pytest.raises(TypeError):
        plot.value_heatmap("not an mdp", res.V)
    bad = fs.TabularMDP(mdp.indptr, mdp.indices, mdp.probs, mdp.rewards, mdp.gamma,
                        mdp.terminal, mdp.initial, dict(mdp.info, grid=(9, 9)))
    with pytest.raises(ValueError, match="does not match"):
        plot.value_heatmap(bad, res.V)


# ---------------------------------------------------------------- convergence
def test_convergence_iterations_and_time(grid_solution, tmp_path):
    mdp, res = grid_solution
    hard = fs.value_iteration(mdp, tol=1e-8, order="gauss-seidel")
    ax = plot.convergence({"soft": res, "hard": hard})
    assert ax.get_yscale() == "log"
    lines = [ln for ln in ax.get_lines() if ln.get_label() in ("soft", "hard")]
    assert len(lines) == 2
    x, y = lines[0].get_data()
    np.testing.assert_array_equal(x, np.arange(1, res.n_iter + 1))
    np.testing.assert_allclose(y, res.history["error_bound"])
    # the tolerance line
    assert any(np.allclose(ln.get_ydata(), 1e-8) for ln in ax.get_lines()
               if ln.get_label().startswith("_"))
    _assert_nontrivial(_png(ax.figure, tmp_path), min_colours=10, max_share=0.97)
    ax2 = plot.convergence([res, hard], x="time", labels=["a", "b"])
    x2, _ = [ln for ln in ax2.get_lines() if ln.get_label() == "a"][0].get_data()
    np.testing.assert_allclose(x2, res.history["time"])
    assert ax2.get_xlabel() == "time (s)"
    ax3 = plot.convergence(res)  # a single result, labelled by its method
    assert ax3.get_legend().get_texts()[0].get_text() == res.method


def test_convergence_invalid_input(grid_solution):
    _, res = grid_solution
    with pytest.raises(ValueError, match="x must be"):
        plot.convergence(res, x="sweeps")
    with pytest.raises(ValueError, match="empty"):
        plot.convergence([])
    with pytest.raises(ValueError, match="labels"):
        plot.convergence([res], labels=["a", "b"])
    with pytest.raises(TypeError):
        plot.convergence([np.zeros(3)])
    with pytest.raises(TypeError):
        plot.convergence(42)


# ---------------------------------------------------------------- DRA maps
@pytest.fixture(scope="module")
def maze_dra():
    from fastsoft import dra

    mdp = fs.mattar_daw_maze()
    res = dra.train(mdp, **{**dra.MAZE_PARAMS, "n_episodes": 600}, n_runs=2, seed=1,
                    eval_every=100, n_eval=30)
    return mdp, res


def test_dra_maps_from_result(maze_dra, tmp_path):
    mdp, res = maze_dra
    fig = plot.dra_maps(mdp, res, sigma_base=5.0, title="maze")
    axes = [a for a in fig.axes if a.get_images() and a.get_title()]
    assert [a.get_title() for a in axes] == ["sigma (mean over actions)",
                                             "choice entropy (nats)"]
    sig_img = axes[0].get_images()[0].get_array()
    assert sig_img.shape == (6, 9)
    # walls and the goal are masked; the start cell shows the run-mean sigma of its memories
    assert sig_img.mask[1, 2] and sig_img.mask[0, 8]
    start = 2 * 9 + 0
    np.testing.assert_allclose(sig_img[2, 0], res.sigma[:, start, :].mean(), rtol=1e-12)
    ent_img = axes[1].get_images()[0].get_array()
    np.testing.assert_allclose(ent_img[2, 0], res.history.state_entropy[:, -1, start].mean())
    assert axes[0].get_images()[0].get_clim() == (0.0, 5.0)
    _assert_nontrivial(_png(fig, tmp_path))


def test_dra_maps_arrays_and_per_action(maze_dra, tmp_path):
    mdp, res = maze_dra
    fig = plot.dra_maps(mdp, res.sigma[0], res.history.state_entropy[0, -1], per_action=True)
    titled = [a for a in fig.axes if a.get_images() and a.get_title()]
    assert [a.get_title() for a in titled] == ["sigma[up]", "sigma[down]", "sigma[left]",
                                               "sigma[right]", "choice entropy (nats)"]
    right = titled[3].get_images()[0].get_array()
    np.testing.assert_allclose(right[3, 4], res.sigma[0, 3 * 9 + 4, 3])
    _assert_nontrivial(_png(fig, tmp_path))
    # no entropy: sigma panel only
    fig2 = plot.dra_maps(mdp, res.sigma)
    assert len([a for a in fig2.axes if a.get_images()]) == 1


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
    bars = [a for a in fig.axes if a.patches][0].patches
    assert len(bars) == mdp.n_states
    _assert_nontrivial(_png(fig, tmp_path), min_colours=10, max_share=0.97)


def test_dra_history(maze_dra, tmp_path):
    mdp, res = maze_dra
    ax = plot.dra_history(res)
    labels = [ln.get_label() for ln in ax.get_lines()]
    assert labels == ["reward", "cost", "objective"]
    x, y = ax.get_lines()[2].get_data()
    np.testing.assert_array_equal(x, res.history.episode)
    np.testing.assert_allclose(y, res.history.objective.mean(axis=0))
    _assert_nontrivial(_png(ax.figure, tmp_path), min_colours=10, max_share=0.97)
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
