"""Figures (the ``plot`` extra: matplotlib).

- :func:`value_heatmap`: values (or the policy's entropy) of a grid MDP as a
  heatmap, with walls, holes, cliffs, goals and the start marked in a legend,
  and policy arrows (one per action, length = probability, for soft policies);
  large grids get block-averaged arrows;
- :func:`dra_maps`: DRA memory noise ``sigma`` and choice-entropy maps like
  the figures of Patel, Acerbi & Pouget (2020);
- :func:`dra_history`: reward and objective of DRA runs over episodes (mean
  over runs, min-max band), the memory cost on its own y axis;
- :func:`convergence`: certified error bound (log scale) against sweeps,
  policy-iteration steps (a separate x axis) or time; a bound that reaches
  exactly 0 is drawn at a marked floor instead of vanishing from the log axis.

Every figure carries a title, labelled axes, integer ticks where the axis
counts, colour bars of the same height as their axes, and a legend for every
marker. matplotlib is imported when a function is called, not when this
module is imported; without it the functions raise ``ImportError`` naming the
extra (``pip install fastsoft[plot]``). The functions draw on the axes (or
figure) they are given, or on new ones, and return them; they never call ``show``.

Grid layouts come from ``mdp.info``: ``grid = (rows, cols)`` with state
``r * cols + c`` (or ``grid_index``, an int array ``(layers, rows, cols)`` of
the state in each cell, ``-1`` for none, as for Taxi), and optional cell lists
``walls``, ``holes``, ``cliff``, ``goals`` and ``actions`` (names); with
``grid_index``, ``layer_goals`` etc. give the cells of each layer.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .mdp import TabularMDP

__all__ = ["value_heatmap", "dra_maps", "dra_history", "convergence", "grid_shape",
           "grid_layout", "cell_mask"]

#: Arrow direction (dx, dy) in image coordinates (row 0 at the top) per action name.
_ARROWS = {"up": (0.0, -1.0), "down": (0.0, 1.0), "left": (-1.0, 0.0), "right": (1.0, 0.0),
           "north": (0.0, -1.0), "south": (0.0, 1.0), "west": (-1.0, 0.0),
           "east": (1.0, 0.0)}
_DEFAULT_ACTIONS = ("up", "down", "left", "right")
#: Cell categories drawn as coloured overlays: info key -> (legend label, colour).
_CELL_KINDS = {"walls": ("wall", "0.45"), "holes": ("hole", "black"),
               "cliff": ("cliff", "#b2182b")}
_GOAL_STYLE = dict(marker="*", color="gold", markersize=15, markeredgecolor="black",
                   markeredgewidth=0.8, linestyle="none")
_START_STYLE = dict(marker="o", color="tab:cyan", markersize=9, markeredgecolor="black",
                    markeredgewidth=0.8, linestyle="none")
#: Colour bar width and gap, in fractions of the axes width.
_CBAR_BOUNDS = (1.03, 0.0, 0.04, 1.0)


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            "fastsoft.plot needs matplotlib: pip install fastsoft[plot]"
        ) from None
    return plt


def _new_axes(ax, *, figsize=None):
    plt = _pyplot()
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def _integer_ticks(axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _colorbar(ax, mappable, label: str):
    """A colour bar exactly as tall as ``ax`` (an inset at its right edge)."""
    cax = ax.inset_axes(_CBAR_BOUNDS)
    cb = ax.figure.colorbar(mappable, cax=cax)
    cb.set_label(label)
    return cb


def grid_shape(mdp: TabularMDP) -> tuple[int, int]:
    """``(rows, cols)`` of a grid MDP (``mdp.info["grid"]``).

    Raises
    ------
    TypeError
        If ``mdp`` is not a TabularMDP.
    ValueError
        If the MDP has no grid layout, or (without ``info["grid_index"]``)
        its size does not match ``rows * cols``.

    Examples
    --------
    >>> import fastsoft as fs
    >>> grid_shape(fs.gridworld(3, 4))
    (3, 4)
    """
    if not isinstance(mdp, TabularMDP):
        raise TypeError(f"mdp must be a fastsoft.TabularMDP, got {type(mdp).__name__}")
    grid = mdp.info.get("grid")
    if grid is None:
        raise ValueError(
            "this MDP has no grid layout (mdp.info['grid'] is missing); value_heatmap and "
            "the spatial dra_maps need a grid MDP"
        )
    try:
        rows, cols = (int(x) for x in grid)
    except (TypeError, ValueError):
        raise ValueError(f"mdp.info['grid'] must be (rows, cols), got {grid!r}") from None
    if mdp.info.get("grid_index") is None and rows * cols != mdp.n_states:
        raise ValueError(
            f"mdp.info['grid'] = {(rows, cols)} does not match the {mdp.n_states} states"
        )
    return rows, cols


def grid_layout(mdp: TabularMDP, layer: int = 0) -> np.ndarray:
    """The state in each cell of a grid MDP: int array ``(rows, cols)``, ``-1`` for none.

    Parameters
    ----------
    mdp : TabularMDP
        A grid MDP (``info["grid"]``, optionally ``info["grid_index"]`` of
        shape ``(layers, rows, cols)``, e.g. Taxi's passenger/destination
        configurations).
    layer : int
        Which layer of ``info["grid_index"]`` (ignored without one).

    Returns
    -------
    ndarray of int64, shape (rows, cols)

    Examples
    --------
    >>> import fastsoft as fs
    >>> grid_layout(fs.gridworld(2, 3)).tolist()
    [[0, 1, 2], [3, 4, 5]]
    """
    rows, cols = grid_shape(mdp)
    gi = mdp.info.get("grid_index")
    if gi is None:
        return np.arange(rows * cols, dtype=np.int64).reshape(rows, cols)
    gi = np.asarray(gi, dtype=np.int64)
    if gi.ndim != 3 or gi.shape[1:] != (rows, cols):
        raise ValueError(f"mdp.info['grid_index'] must have shape (layers, {rows}, {cols}), "
                         f"got {gi.shape}")
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) \
            or not 0 <= layer < gi.shape[0]:
        raise ValueError(f"layer must be an integer in [0, {gi.shape[0]}), got {layer!r}")
    return gi[int(layer)]


def cell_mask(mdp: TabularMDP, key: str, layer: int = 0) -> np.ndarray:
    """Boolean ``(rows, cols)`` mask of the cells listed in ``mdp.info[key]``.

    Parameters
    ----------
    mdp : TabularMDP
        A grid MDP.
    key : str
        ``"walls"``, ``"holes"``, ``"cliff"``, ``"goals"`` (or any list of cells).
    layer : int
        For layered grids: ``info["layer_" + key][layer]`` when it exists.

    Returns
    -------
    ndarray of bool

    Examples
    --------
    >>> import fastsoft as fs
    >>> int(cell_mask(fs.gridworld(3, 3), "goals")[2, 2])
    1
    """
    rows, cols = grid_shape(mdp)
    mask = np.zeros((rows, cols), dtype=bool)
    cells = mdp.info.get(key, ()) or ()
    per_layer = mdp.info.get(f"layer_{key}")
    if mdp.info.get("grid_index") is not None and per_layer is not None:
        cells = per_layer[layer]
    for cell in cells:
        r, c = (int(x) for x in cell)
        mask[r, c] = True
    return mask


def _start_cells(mdp: TabularMDP, index: np.ndarray) -> np.ndarray:
    """Cells holding start states (when the start distribution has at most 4 states)."""
    if mdp.initial is None:
        return np.zeros(index.shape, dtype=bool)
    starts = np.flatnonzero(np.asarray(mdp.initial) > 0)
    if starts.size > 4:
        return np.zeros(index.shape, dtype=bool)
    return np.isin(index, starts)


def _state_vector(x, n: int, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
    return arr


def _actions_of(mdp: TabularMDP) -> tuple[str, ...]:
    names = mdp.info.get("actions")
    if names is None:
        names = _DEFAULT_ACTIONS[: mdp.n_actions] if mdp.n_actions <= 4 else None
    if names is None or len(names) != mdp.n_actions:
        raise ValueError("arrows need the action names (mdp.info['actions']) of a grid MDP")
    names = tuple(str(n) for n in names)
    if not set(names) & set(_ARROWS):
        raise ValueError(f"arrows need actions among {sorted(_ARROWS)}, got {names}")
    return names


def _policy_table(mdp: TabularMDP, policy) -> np.ndarray:
    """``(S, A)`` probabilities from probabilities or ``(S,)`` integer actions."""
    S, A = mdp.n_states, mdp.n_actions
    pol = np.asarray(policy)
    if pol.ndim == 1:
        if pol.shape != (S,) or not np.issubdtype(pol.dtype, np.integer):
            raise ValueError(f"policy must be (S, A) = {(S, A)} probabilities or (S,) = ({S},) "
                             f"integer actions, got shape {pol.shape} dtype {pol.dtype}")
        if np.any((pol < 0) | (pol >= A)):
            raise ValueError(f"policy: action out of range [0, {A})")
        out = np.zeros((S, A))
        out[np.arange(S), pol] = 1.0
        return out
    if pol.shape == (S, A):
        out = np.asarray(pol, dtype=np.float64)
        if not np.all(np.isfinite(out)) or np.any(out < 0):
            raise ValueError("policy probabilities must be finite and >= 0")
        return out
    raise ValueError(f"policy must be (S, A) = {(S, A)} probabilities or (S,) = ({S},) integer "
                     f"actions, got shape {pol.shape}")


def _entropy(pol: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(pol > 0, pol * np.log(pol), 0.0)
    return -t.sum(axis=1)


def _block_mean(x: np.ndarray, k: int) -> np.ndarray:
    """NaN-mean of ``(rows, cols, ...)`` over ``k x k`` blocks (edge blocks partial)."""
    rows, cols = x.shape[:2]
    br, bc = -(-rows // k), -(-cols // k)
    pad = np.full((br * k, bc * k) + x.shape[2:], np.nan)
    pad[:rows, :cols] = x
    pad = pad.reshape((br, k, bc, k) + x.shape[2:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(pad, axis=(1, 3))


def _draw_arrows(ax, pol, index, live, names, max_arrows: int, mode: str) -> None:
    """Policy arrows: one per action (length = probability) or the most probable one.

    Grids wider than ``max_arrows`` cells are cut into ``k x k`` blocks and the
    block's mean policy is drawn at the block's centre.
    """
    rows, cols = index.shape
    A = pol.shape[1]
    cell_pol = np.full((rows, cols, A), np.nan)
    ok = live & (index >= 0)
    cell_pol[ok] = pol[index[ok]]
    k = max(1, int(np.ceil(max(rows, cols) / max_arrows)))
    blk = _block_mean(cell_pol, k) if k > 1 else cell_pol
    br, bc = blk.shape[:2]
    yy, xx = np.mgrid[0:br, 0:bc]
    # the centre of each block's cells inside the grid
    cx = (xx * k + np.minimum((xx + 1) * k, cols) - 1) / 2.0
    cy = (yy * k + np.minimum((yy + 1) * k, rows) - 1) / 2.0
    valid = ~np.isnan(blk[..., 0])
    dirs = np.array([_ARROWS.get(n, (0.0, 0.0)) for n in names])
    X, Y, U, W = [], [], [], []
    if mode == "soft":
        for a in range(A):
            if not dirs[a].any():
                continue
            p = np.where(valid, blk[..., a], 0.0)
            sel = p > 0.02
            X.append(cx[sel])
            Y.append(cy[sel])
            U.append(dirs[a, 0] * 0.48 * k * p[sel])
            W.append(dirs[a, 1] * 0.48 * k * p[sel])
        pivot = "tail"
    else:
        moving = np.where(dirs.any(axis=1), 0.0, -np.inf)
        best = np.argmax(np.where(valid[..., None], blk, 0.0) + moving, axis=2)
        sel = valid
        X, Y = [cx[sel]], [cy[sel]]
        U = [dirs[best[sel], 0] * 0.38 * k]
        W = [dirs[best[sel], 1] * 0.38 * k]
        pivot = "middle"
    X, Y, U, W = (np.concatenate(v) if v else np.zeros(0) for v in (X, Y, U, W))
    ax.quiver(X, Y, U, W, color="white", angles="xy", scale_units="xy", scale=1.0,
              width=0.005, headwidth=3.5, headlength=4, headaxislength=3.5, pivot=pivot,
              edgecolor="black", linewidth=0.4, label="_policy", zorder=5)


def _marker_legend(ax, handles, *, below: bool = True) -> None:
    if not handles:
        return
    if below:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02),
                  ncol=min(len(handles), 5), frameon=False, fontsize="small",
                  handlelength=1.2, columnspacing=1.2)
    else:
        ax.legend(handles=handles, fontsize="small")


def _grid_decorations(ax, mdp: TabularMDP, index: np.ndarray,
                      layer: int) -> tuple[list, np.ndarray]:
    """Overlay walls/holes/cliff, mark goals and starts; return legend handles and dead cells."""
    from matplotlib.colors import to_rgba
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    rows, cols = index.shape
    handles = []
    overlay = np.zeros((rows, cols, 4))
    dead = np.zeros((rows, cols), dtype=bool)
    for key, (label, colour) in _CELL_KINDS.items():
        m = cell_mask(mdp, key, layer)
        if m.any():
            overlay[m] = to_rgba(colour)
            handles.append(Patch(facecolor=colour, edgecolor="none", label=label))
            dead |= m
    nostate = (index < 0) & ~dead
    if nostate.any():
        overlay[nostate] = to_rgba("0.75")
        handles.append(Patch(facecolor="0.75", edgecolor="none", label="no state"))
    dead = dead | nostate
    if overlay[..., 3].any():
        ax.imshow(overlay, interpolation="nearest", origin="upper", zorder=2)
    goals = cell_mask(mdp, "goals", layer)
    if goals.any():
        r, c = np.nonzero(goals)
        ax.plot(c, r, zorder=4, clip_on=False, **_GOAL_STYLE, label="goal")
        handles.append(Line2D([], [], **_GOAL_STYLE, label="goal"))
    starts = _start_cells(mdp, index)
    if starts.any():
        r, c = np.nonzero(starts)
        ax.plot(c, r, zorder=4, clip_on=False, **_START_STYLE, label="start")
        handles.append(Line2D([], [], **_START_STYLE, label="start"))
    return handles, dead


def _image_axes(ax, rows: int, cols: int) -> None:
    """Row 0 at the top, integer ticks, column axis on top (the legend goes below)."""
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    _integer_ticks(ax.xaxis)
    _integer_ticks(ax.yaxis)
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_xlabel("column")
    ax.set_ylabel("row")


def _default_title(mdp: TabularMDP, res, what: str) -> str:
    src = str(mdp.info.get("source") or mdp.info.get("kind") or "MDP")
    if src.startswith("gymnasium:"):
        src = src[len("gymnasium:"):]
    if res is None:
        return f"{src}: {what}"
    tau = float(getattr(res, "temperature", 0.0) or 0.0)
    eta = float(getattr(res, "kl_weight", 0.0) or 0.0)
    reg = "hard" if tau == 0 and eta == 0 else ", ".join(
        x for x in (f"τ = {tau:g}" if tau else "", f"η = {eta:g}" if eta else "") if x)
    return f"{src}: {what} ({reg}, γ = {mdp.gamma:g})"


def value_heatmap(
    mdp: TabularMDP,
    V,
    policy=None,
    ax=None,
    *,
    show: str = "value",
    arrows: str = "auto",
    layer: int = 0,
    cmap: str | None = None,
    max_arrows: int = 32,
    colorbar: bool = True,
    legend: bool = True,
    title: str | None = None,
):
    """Heatmap of state values (or policy entropy) on the grid, with policy arrows.

    Parameters
    ----------
    mdp : TabularMDP
        A grid MDP (see the module docstring): ``info["grid"] = (rows, cols)``;
        ``walls``, ``holes`` and ``cliff`` cells are drawn in a flat colour,
        ``goals`` starred, start cells (from the initial distribution) circled,
        all named in a legend below the map.
    V : array of shape (S,), or SolveResult
        Values; a :class:`~fastsoft.SolveResult` gives ``V`` and (unless
        ``policy`` is given) its policy. A finite-horizon result is shown at ``t = 0``.
    policy : array of shape (S, A) or (S,), optional
        Probabilities or integer actions. Action names are ``info["actions"]``
        (default up, down, left, right); actions that do not move (Taxi's
        pickup) get no arrow.
    ax : matplotlib Axes, optional
        Where to draw (default a new figure).
    show : {"value", "entropy"}
        Colour layer: ``V``, or the policy's entropy per state in nats
        (``0`` deterministic, ``log A`` uniform).
    arrows : {"auto", "soft", "mode", "none"}
        ``"soft"``: one arrow per action, its length proportional to the
        action's probability; ``"mode"``: one arrow for the most probable
        action; ``"auto"``: soft when the policy is stochastic somewhere.
    layer : int
        For layered grids (``info["grid_index"]``, e.g. Taxi's 20
        passenger/destination configurations): which layer to draw.
    cmap : str, optional
        Colour map (default viridis for values, cividis for entropy).
    max_arrows : int
        At most this many arrows along each side: larger grids are cut into
        ``k x k`` blocks and each block shows its mean policy at its centre.
    colorbar : bool
        Add a colour bar of the axes' height.
    legend : bool
        Name the marked cells in a legend below the map.
    title : str, optional
        Default: the MDP's source, what is shown and the regularization;
        ``""`` for none.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        If the MDP has no grid layout or an argument has the wrong shape or value.
    ImportError
        Without matplotlib.

    Examples
    --------
    >>> import fastsoft as fs
    >>> mdp = fs.gridworld(6, 8, slip=0.1)
    >>> res = fs.solve(mdp, 0.1)
    >>> ax = value_heatmap(mdp, res)  # doctest: +SKIP
    """
    rows, cols = grid_shape(mdp)
    res = None
    if hasattr(V, "V") and hasattr(V, "policy"):  # a SolveResult
        res = V
        V = res.V if res.V.ndim == 1 else res.V[0]
        if policy is None:
            policy = res.policy if res.policy.ndim == 2 else res.policy[0]
    V = _state_vector(V, mdp.n_states, "V")
    if show not in ("value", "entropy"):
        raise ValueError(f"show must be 'value' or 'entropy', got {show!r}")
    if arrows not in ("auto", "soft", "mode", "none"):
        raise ValueError(f"arrows must be 'auto', 'soft', 'mode' or 'none', got {arrows!r}")
    if isinstance(max_arrows, bool) or not isinstance(max_arrows, (int, np.integer)) \
            or max_arrows < 1:
        raise ValueError(f"max_arrows must be an integer >= 1, got {max_arrows!r}")
    pol = _policy_table(mdp, policy) if policy is not None else None
    if show == "entropy" and pol is None:
        raise ValueError("show='entropy' needs a policy")
    names = _actions_of(mdp) if (pol is not None and arrows != "none") else ()
    index = grid_layout(mdp, layer)
    plt = _pyplot()
    aspect = rows / max(cols, 1)
    _, ax = _new_axes(ax, figsize=(6.4, min(max(5.0 * aspect, 1.5), 8.0) + 1.5))
    term = (np.asarray(mdp.terminal, dtype=bool) if mdp.terminal is not None
            else np.zeros(mdp.n_states, dtype=bool))
    handles, dead = _grid_decorations(ax, mdp, index, layer)
    if show == "value":
        vals, label = V, "V(s)"
        cm = plt.get_cmap(cmap or "viridis")
        vmin = vmax = None
    else:
        vals, label = np.where(term, np.nan, _entropy(pol)), "policy entropy (nats)"
        cm = plt.get_cmap(cmap or "plasma")
        vmin, vmax = 0.0, float(np.log(mdp.n_actions))
    img = np.full((rows, cols), np.nan)
    img[index >= 0] = vals[index[index >= 0]]
    masked = np.ma.masked_array(img, mask=dead | ~np.isfinite(img))
    im = ax.imshow(masked, cmap=cm.with_extremes(bad="0.85"), interpolation="nearest",
                   origin="upper", vmin=vmin, vmax=vmax, zorder=1)
    if colorbar:
        _colorbar(ax, im, label)
    if pol is not None and arrows != "none":
        live = ~dead & (index >= 0)
        live[index >= 0] &= ~term[index[index >= 0]]
        mode = arrows
        if mode == "auto":
            stoch = pol[index[live]].max(axis=1) < 0.99 if live.any() else np.zeros(0, bool)
            mode = "soft" if stoch.any() else "mode"
        _draw_arrows(ax, pol, index, live, names, max_arrows, mode)
        if mode == "soft":
            from matplotlib.lines import Line2D

            handles.append(Line2D([], [], color="white", marker=r"$\rightarrow$",
                                  markeredgecolor="black", markersize=12, linestyle="none",
                                  label="arrow length ∝ π(a|s)"))
    _image_axes(ax, rows, cols)
    if legend:
        _marker_legend(ax, handles)
    if title is None:
        title = _default_title(mdp, res, "values" if show == "value" else "policy entropy")
        gi = mdp.info.get("layer_names")
        if gi is not None and mdp.info.get("grid_index") is not None:
            title += f"\n{gi[layer]}"
    if title:
        ax.set_title(title)
    return ax


def _nanmean0(x: np.ndarray) -> np.ndarray:
    """Mean over axis 0 ignoring NaN; NaN where a column has no finite entry."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=0)


def _dra_arrays(mdp, sigma, entropy, memories):
    """Pull sigma / entropy / memories out of a DRAResult, average runs, check shapes."""
    n_runs = 1
    if hasattr(sigma, "sigma") and hasattr(sigma, "history"):  # a DRAResult
        res = sigma
        sigma = res.sigma
        if entropy is None and getattr(res.history, "state_entropy", None) is not None:
            ent = np.asarray(res.history.state_entropy)
            if ent.ndim == 3 and ent.shape[1] > 0:
                entropy = ent[:, -1, :]
        if memories is None:
            memories = getattr(res, "memories", None)
    S, A = mdp.n_states, mdp.n_actions
    sig = np.asarray(sigma, dtype=np.float64)
    if sig.ndim == 3 and sig.shape[1:] == (S, A):
        n_runs = sig.shape[0]
        sig = sig.mean(axis=0)
    if sig.shape != (S, A):
        raise ValueError(f"sigma must have shape (S, A) = {(S, A)} or (n_runs, S, A), "
                         f"got {np.shape(sigma)}")
    ent = None
    if entropy is not None:
        ent = np.asarray(entropy, dtype=np.float64)
        if ent.ndim == 3 and ent.shape[-1] == S:  # (n_runs, P, S): last evaluation
            ent = ent[:, -1, :]
        if ent.ndim == 2 and ent.shape[-1] == S:
            ent = _nanmean0(ent)
        if ent.shape != (S,):
            raise ValueError(f"entropy must have shape (S,) = ({S},), (n_runs, S) or "
                             f"(n_runs, P, S), got {np.shape(entropy)}")
    if memories is None:
        mem = mdp.feasible.copy()
        if mdp.terminal is not None:
            mem[mdp.terminal] = False
    else:
        mem = np.asarray(memories, dtype=bool)
        if mem.shape != (S, A):
            raise ValueError(f"memories must have shape (S, A) = {(S, A)}, got {mem.shape}")
    return sig, ent, mem, n_runs


def dra_maps(
    mdp: TabularMDP,
    sigma,
    entropy=None,
    *,
    memories=None,
    per_action: bool = False,
    sigma_base: float | None = None,
    fig=None,
    cmap: str = "magma",
    entropy_cmap: str = "viridis",
    title: str | None = None,
):
    """Maps of DRA's memory noise and choice entropy (Patel, Acerbi & Pouget 2020).

    On a grid MDP (``mdp.info["grid"]``): a map of ``sigma`` averaged over the
    actions of each state (or one map per action with ``per_action=True``),
    and a map of the per-state choice entropy; walls are drawn grey, states
    without memories (terminal ones) light grey, the goal starred and the
    start circled, with a legend. Low ``sigma`` (dark) marks precisely stored
    memories; in the maze they line the route to the goal. On other MDPs: an
    ``(S, A)`` image of ``sigma`` and a bar chart of the entropy.

    Parameters
    ----------
    mdp : TabularMDP
    sigma : array (S, A) or (n_runs, S, A), or DRAResult
        Noise levels (averaged over runs). A :class:`fastsoft.dra.DRAResult`
        also gives the entropy (its last evaluation point) and the memories.
    entropy : array (S,), (n_runs, S) or (n_runs, P, S), optional
        Choice entropy per state in nats (``DRAHistory.state_entropy``; the
        last evaluation point, averaged over runs).
    memories : bool array (S, A), optional
        Which entries are memories (default: feasible actions of non-terminal states).
    per_action : bool
        One sigma map per action instead of the mean over actions.
    sigma_base : float, optional
        Upper end of the sigma colour scale (e.g. the prior's noise level).
    fig : matplotlib Figure or SubFigure, optional
        Draw into this figure (it is cleared); default a new one.
    cmap, entropy_cmap : str
    title : str, optional
        Figure title (default names the runs averaged; ``""`` for none).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        On arrays of the wrong shape.

    Examples
    --------
    >>> import fastsoft as fs
    >>> from fastsoft import dra
    >>> mdp = fs.mattar_daw_maze()
    >>> res = dra.train(mdp, n_episodes=50, n_runs=1, seed=0)  # doctest: +SKIP
    >>> fig = dra_maps(mdp, res, sigma_base=5.0)  # doctest: +SKIP
    """
    if not isinstance(mdp, TabularMDP):
        raise TypeError(f"mdp must be a fastsoft.TabularMDP, got {type(mdp).__name__}")
    sig, ent, mem, n_runs = _dra_arrays(mdp, sigma, entropy, memories)
    plt = _pyplot()
    S, A = mdp.n_states, mdp.n_actions
    sig_m = np.where(mem, sig, np.nan)
    vmax = float(sigma_base) if sigma_base is not None else None
    is_grid = mdp.info.get("grid") is not None
    n_sig = A if (per_action and is_grid) else 1
    n_panels = n_sig + (ent is not None)
    if fig is None:
        if is_grid:
            rows, cols = grid_shape(mdp)
            w, h = 3.9 * n_panels, min(max(3.0 * rows / max(cols, 1), 1.2), 6.0) + 1.2
        else:
            w, h = 5.0 * n_panels, 3.9
        fig = plt.figure(figsize=(w, h), layout="constrained")
    else:
        fig.clear()
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    runs = f"mean of {n_runs} runs" if n_runs > 1 else "one run"
    if is_grid:
        rows, cols = grid_shape(mdp)
        index = grid_layout(mdp)
        names = mdp.info.get("actions") or tuple(f"a{a}" for a in range(A))
        no_mem = ~mem.any(axis=1)
        mean_sig = _nanmean0(sig_m.T)
        panels = ([(sig_m[:, a], f"σ[{names[a]}]") for a in range(A)] if n_sig > 1
                  else [(mean_sig, "memory noise σ (mean over actions)")])
        maps = [(vals, lab, cmap, 0.0, vmax, "σ") for vals, lab in panels]
        if ent is not None:
            maps.append((ent, "choice entropy", entropy_cmap, 0.0, float(np.log(A)), "nats"))
        handles = []
        for ax, (vals, label, cm_name, lo, hi, unit) in zip(axes, maps, strict=True):
            img = np.full((rows, cols), np.nan)
            img[index >= 0] = np.where(no_mem, np.nan, vals)[index[index >= 0]]
            handles, dead = _grid_decorations(ax, mdp, index, 0)
            nomem_cells = ~dead & np.isnan(img)
            im = ax.imshow(np.ma.masked_array(img, mask=dead | np.isnan(img)),
                           cmap=plt.get_cmap(cm_name).with_extremes(bad="0.85"),
                           vmin=lo, vmax=hi, interpolation="nearest", zorder=1)
            _colorbar(ax, im, unit)
            ax.set_title(label)
            ax.set_xticks([])
            ax.set_yticks([])
        if nomem_cells.any():
            from matplotlib.patches import Patch

            handles.append(Patch(facecolor="0.85", edgecolor="0.6", label="no memory"))
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles),
                   frameon=False, fontsize="small")
    else:
        ax = axes[0]
        cm = plt.get_cmap(cmap).with_extremes(bad="0.85")
        im = ax.imshow(np.ma.masked_invalid(sig_m), cmap=cm, vmin=0.0, vmax=vmax,
                       aspect="auto", interpolation="nearest")
        _colorbar(ax, im, "σ")
        ax.set_xlabel("action")
        ax.set_ylabel("state")
        _integer_ticks(ax.yaxis)
        ax.set_xticks(range(A))
        ax.set_title("memory noise σ (grey: no memory)")
        if ent is not None:
            ax = axes[-1]
            vals = np.where(np.isfinite(ent), ent, 0.0)
            ax.bar(np.arange(S), vals, color=plt.get_cmap(entropy_cmap)(vals / max(np.log(A),
                                                                                   1e-12)))
            ax.set_xlabel("state")
            ax.set_ylabel("choice entropy (nats)")
            _integer_ticks(ax.xaxis)
            ax.set_ylim(0, max(np.log(A), 1e-12) * 1.05)
            ax.set_title("choice entropy")
    if title is None:
        title = f"DRA memories: {runs}"
    if title:
        fig.suptitle(title)
    return fig


_DRA_LABELS = {"reward": "expected return", "objective": "objective (return − cost)",
               "cost": "memory cost", "entropy_term": "action-entropy term"}


def dra_history(result, ax=None, *, what: Sequence[str] = ("reward", "cost", "objective"),
                title: str | None = None):
    """Learning curves of DRA runs: mean over runs (line) and min-max over runs (band).

    Return-like series (expected return, objective, entropy term) share the
    left y axis; the memory cost, on a different scale, gets its own axis on
    the right.

    Parameters
    ----------
    result : DRAResult
        From :func:`fastsoft.dra.train`, with evaluation points (``eval_every``).
    ax : matplotlib Axes, optional
    what : sequence of {"reward", "cost", "objective", "entropy_term"}
    title : str, optional
        Default names the number of runs; ``""`` for none.

    Returns
    -------
    matplotlib.axes.Axes
        The left axes (the cost axes, when drawn, is ``ax.cost_axes``).

    Raises
    ------
    ValueError
        If the result has no evaluation points or ``what`` names an unknown series.

    Examples
    --------
    >>> ax = dra_history(res)  # doctest: +SKIP
    """
    hist = getattr(result, "history", None)
    if hist is None or not hasattr(hist, "episode"):
        raise TypeError("result must be a fastsoft.dra.DRAResult")
    ep = np.asarray(hist.episode)
    if ep.size == 0:
        raise ValueError("the DRA result has no evaluation points (train with n_eval >= 1)")
    known = tuple(_DRA_LABELS)
    bad = [w for w in what if w not in known]
    if bad or not what:
        raise ValueError(f"what must name series among {known}, got {list(what)}")
    from matplotlib.patches import Patch

    _, ax = _new_axes(ax, figsize=(6.4, 4))
    left = [w for w in what if w != "cost"]
    cax = None
    if "cost" in what:
        cax = ax.twinx() if left else ax
        ax.cost_axes = cax
    handles = []
    n_runs = 1
    colours = {"reward": "tab:blue", "cost": "tab:red", "objective": "tab:green",
               "entropy_term": "tab:purple"}
    for name in what:
        target = cax if name == "cost" else ax
        y = np.asarray(getattr(hist, name), dtype=np.float64)
        n_runs = y.shape[0]
        line, = target.plot(ep, y.mean(axis=0), label=_DRA_LABELS[name], color=colours[name],
                            marker="." if ep.size < 30 else None,
                            linestyle="--" if name == "cost" and left else "-")
        handles.append(line)
        if n_runs > 1:
            target.fill_between(ep, y.min(axis=0), y.max(axis=0), alpha=0.18,
                                color=line.get_color(), linewidth=0)
    if n_runs > 1:
        handles.append(Patch(facecolor="0.5", alpha=0.3, label=f"min-max over {n_runs} runs"))
    ax.set_xlabel("learning episode")
    _integer_ticks(ax.xaxis)
    if left:
        ax.set_ylabel(" / ".join(_DRA_LABELS[w].split(" (")[0] for w in left)
                      + " (undiscounted)")
    if cax is not None:
        cax.set_ylabel("memory cost λ·ΣKL", color=colours["cost"] if left else "black")
        if left:
            cax.tick_params(axis="y", colors=colours["cost"])
    ax.legend(handles=handles, fontsize="small", loc="best")
    ax.grid(alpha=0.3)
    if title is None:
        title = f"DRA evaluation: mean of {n_runs} runs" if n_runs > 1 else "DRA evaluation"
    if title:
        ax.set_title(title)
    return ax


def _as_results(results) -> list[tuple[str, Any]]:
    if isinstance(results, Mapping):
        items = list(results.items())
    elif hasattr(results, "history") and hasattr(results, "method"):
        items = [(results.method, results)]
    elif isinstance(results, Sequence) and not isinstance(results, str):
        items = [(getattr(r, "method", f"run {i}"), r) for i, r in enumerate(results)]
    else:
        raise TypeError("results must be a SolveResult, a sequence of them or a mapping "
                        "label -> SolveResult")
    if not items:
        raise ValueError("results is empty")
    for label, r in items:
        h = getattr(r, "history", None)
        if not isinstance(h, Mapping) or "error_bound" not in h:
            raise TypeError(f"{label!r}: not a SolveResult (no history['error_bound'])")
    return items


def _is_pi(res) -> bool:
    """Policy-iteration results count improvement steps (their history has ``eval_iter``)."""
    return "eval_iter" in res.history


def convergence(results, ax=None, *, x: str = "iterations", labels: Sequence[str] | None = None,
                show_tol: bool = True, title: str | None = None):
    """Certified error bound (log scale) against iterations or time.

    Value-iteration sweeps and policy-iteration steps are different units of
    work: with ``x="iterations"`` sweeps run along the bottom axis and
    policy-iteration steps along a separate top axis (only the one needed is
    drawn when all results are of one kind). A bound of exactly 0 (an exact
    solve) cannot sit on a log axis: it is drawn at a floor a decade below the
    smallest positive bound, with a downward triangle named in the legend.

    Parameters
    ----------
    results : SolveResult, sequence of SolveResult, or mapping label -> SolveResult
        Each needs ``history["error_bound"]`` (and ``history["time"]`` for ``x="time"``).
    ax : matplotlib Axes, optional
    x : {"iterations", "time"}
        Horizontal axis: sweep / step number, or seconds since the start.
    labels : sequence of str, optional
        Legend labels (default the mapping's keys or each result's ``method``).
    show_tol : bool
        Draw each distinct ``tol`` as a dotted horizontal line.
    title : str, optional
        Default "certified error bound"; ``""`` for none.

    Returns
    -------
    matplotlib.axes.Axes
        The axes of the bottom x axis (the policy-iteration axes, when both
        kinds are drawn, is ``ax.pi_axes``).

    Raises
    ------
    ValueError
        For an unknown ``x``, empty ``results``, a wrong number of labels, or
        histories whose lengths disagree.

    Examples
    --------
    >>> import fastsoft as fs
    >>> mdp = fs.gridworld(10, 10, slip=0.1)
    >>> ax = convergence({"VI": fs.solve(mdp, 0.1, method="vi")})  # doctest: +SKIP
    """
    if x not in ("iterations", "time"):
        raise ValueError(f"x must be 'iterations' or 'time', got {x!r}")
    items = _as_results(results)
    if labels is not None:
        labels = list(labels)
        if len(labels) != len(items):
            raise ValueError(f"got {len(labels)} labels for {len(items)} results")
        items = [(lab, r) for lab, (_, r) in zip(labels, items, strict=True)]
    from matplotlib.lines import Line2D

    _, ax = _new_axes(ax, figsize=(6.4, 4.2))
    series = []
    for label, r in items:
        b = np.asarray(r.history["error_bound"], dtype=np.float64)
        if x == "time":
            if "time" not in r.history:
                raise ValueError(f"{label!r}: history has no 'time'")
            xs = np.asarray(r.history["time"], dtype=np.float64)
            if xs.shape != b.shape:
                raise ValueError(f"{label!r}: history['time'] and history['error_bound'] "
                                 f"have different lengths ({xs.size} and {b.size})")
        else:
            xs = np.arange(1, b.size + 1)
        series.append((label, r, xs, b))
    pos = np.concatenate([b[np.isfinite(b) & (b > 0)] for *_, b in series] + [np.zeros(0)])
    tols = sorted({float(r.tol) for _, r, *_ in series if getattr(r, "tol", 0) > 0})
    drawn = [*pos.tolist(), *(tols if show_tol else [])]
    low = min(drawn) if drawn else 1.0
    floor = 10.0 ** (np.floor(np.log10(low)) - 1.0)
    kinds = {_is_pi(r) for _, r, *_ in series}
    both = x == "iterations" and len(kinds) == 2
    pi_ax = ax.twiny() if both else None
    if pi_ax is not None:
        ax.pi_axes = pi_ax  # shares the y axis
    handles = []
    zero_hit = False
    for i, (label, r, xs, b) in enumerate(series):
        target = pi_ax if (pi_ax is not None and _is_pi(r)) else ax
        colour = f"C{i}"
        ok = np.isfinite(b) & (b >= 0)
        y = np.where(b > 0, b, floor)
        line, = target.plot(xs[ok], y[ok], color=colour, label=label,
                            marker="." if b.size <= 30 else None,
                            linestyle="--" if target is pi_ax else "-")
        zero = ok & (b == 0)
        if zero.any():
            zero_hit = True
            target.plot(xs[zero], y[zero], linestyle="none", marker="v", color=colour,
                        markersize=8, markeredgecolor="black", label="_zero")
        handles.append(line)
    ax.set_yscale("log")
    if show_tol and tols:
        for t in tols:
            ax.axhline(t, color="0.4", linestyle=":", linewidth=1, label="_tol")
        handles.append(Line2D([], [], color="0.4", linestyle=":", label="tol"))
    if zero_hit:
        handles.append(Line2D([], [], linestyle="none", marker="v", color="0.6",
                              markeredgecolor="black",
                              label=f"bound = 0 (drawn at {floor:.0e})"))
    if x == "time":
        ax.set_xlabel("time (s)")
    else:
        if kinds == {True}:
            ax.set_xlabel("policy-iteration step")
        else:
            ax.set_xlabel("value-iteration sweep")
        _integer_ticks(ax.xaxis)
        if pi_ax is not None:
            pi_ax.set_xlabel("policy-iteration step (dashed)")
            _integer_ticks(pi_ax.xaxis)
    ax.set_ylabel("certified error bound on ‖V − V*‖∞")
    ax.grid(alpha=0.3, which="major")
    ax.legend(handles=handles, fontsize="small")
    if title is None:
        title = "certified error bound"
    if title:
        (pi_ax or ax).set_title(title)
    return ax
