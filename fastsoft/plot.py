"""Figures (the ``plot`` extra: matplotlib).

- :func:`value_heatmap`: values of a gridworld-like MDP as a heatmap, walls
  masked, goals marked, arrows for the most probable action;
- :func:`dra_maps`: DRA memory noise ``sigma`` and choice-entropy maps like
  the figures of Patel, Acerbi & Pouget (2020);
- :func:`dra_history`: reward, cost and objective of DRA runs over episodes;
- :func:`convergence`: certified error bound (log scale) against iterations
  or time for one or several :class:`~fastsoft.SolveResult`.

matplotlib is imported when a function is called, not when this module is
imported; without it the functions raise ``ImportError`` naming the extra
(``pip install fastsoft[plot]``). The functions draw on the axes (or figure)
they are given, or on new ones, and return them; they never call ``show``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .mdp import TabularMDP

__all__ = ["value_heatmap", "dra_maps", "dra_history", "convergence", "grid_shape"]

#: Arrow direction (dx, dy) in image coordinates (row 0 at the top) per action name.
_ARROWS = {"up": (0.0, -1.0), "down": (0.0, 1.0), "left": (-1.0, 0.0), "right": (1.0, 0.0)}
_DEFAULT_ACTIONS = ("up", "down", "left", "right")


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            "fastsoft.plot needs matplotlib: pip install fastsoft[plot]"
        ) from None
    return plt


def _new_axes(ax, ncols: int = 1, *, figsize=None):
    plt = _pyplot()
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(1, ncols, figsize=figsize, constrained_layout=True)
    return fig, ax


def grid_shape(mdp: TabularMDP) -> tuple[int, int]:
    """``(rows, cols)`` of a gridworld-like MDP (``mdp.info["grid"]``).

    Raises
    ------
    TypeError
        If ``mdp`` is not a TabularMDP.
    ValueError
        If the MDP has no grid layout or its size does not match ``rows * cols``.
    """
    if not isinstance(mdp, TabularMDP):
        raise TypeError(f"mdp must be a fastsoft.TabularMDP, got {type(mdp).__name__}")
    grid = mdp.info.get("grid")
    if grid is None:
        raise ValueError(
            "this MDP has no grid layout (mdp.info['grid'] is missing); value_heatmap and "
            "the spatial dra_maps need a gridworld-like MDP"
        )
    try:
        rows, cols = (int(x) for x in grid)
    except (TypeError, ValueError):
        raise ValueError(f"mdp.info['grid'] must be (rows, cols), got {grid!r}") from None
    if rows * cols != mdp.n_states:
        raise ValueError(
            f"mdp.info['grid'] = {(rows, cols)} does not match the {mdp.n_states} states"
        )
    return rows, cols


def _wall_mask(mdp: TabularMDP, rows: int, cols: int) -> np.ndarray:
    mask = np.zeros((rows, cols), dtype=bool)
    for cell in mdp.info.get("walls", ()) or ():
        r, c = (int(x) for x in cell)
        mask[r, c] = True
    return mask


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
        raise ValueError("arrows need the action names (mdp.info['actions']) of a 4-action grid")
    return tuple(names)


def _best_actions(mdp: TabularMDP, policy) -> np.ndarray:
    S, A = mdp.n_states, mdp.n_actions
    pol = np.asarray(policy)
    if pol.ndim == 1:
        if pol.shape != (S,) or not np.issubdtype(pol.dtype, np.integer):
            raise ValueError(f"policy must be (S, A) = {(S, A)} probabilities or (S,) = ({S},) "
                             f"integer actions, got shape {pol.shape} dtype {pol.dtype}")
        if np.any((pol < 0) | (pol >= A)):
            raise ValueError(f"policy: action out of range [0, {A})")
        return pol.astype(np.int64)
    if pol.shape == (S, A):
        return np.argmax(pol, axis=1)
    raise ValueError(f"policy must be (S, A) = {(S, A)} probabilities or (S,) = ({S},) integer "
                     f"actions, got shape {pol.shape}")


def value_heatmap(
    mdp: TabularMDP,
    V,
    policy=None,
    ax=None,
    *,
    cmap: str = "viridis",
    max_arrows: int = 40,
    colorbar: bool = True,
    title: str | None = None,
):
    """Heatmap of state values on the grid, with policy arrows.

    Parameters
    ----------
    mdp : TabularMDP
        A gridworld-like MDP: ``mdp.info["grid"] = (rows, cols)`` and state
        ``r * cols + c``; ``info["walls"]`` cells are masked (drawn grey) and
        ``info["goals"]`` cells marked with a star.
    V : array of shape (S,), or SolveResult
        Values; a :class:`~fastsoft.SolveResult` gives ``V`` and (unless
        ``policy`` is given) its policy. A finite-horizon result is shown at ``t = 0``.
    policy : array of shape (S, A) or (S,), optional
        Probabilities (an arrow for the most probable action) or integer
        actions. Actions are ``info["actions"]`` (default up, down, left, right).
    ax : matplotlib Axes, optional
        Where to draw (default a new figure).
    cmap : str
        Colour map of the values.
    max_arrows : int
        At most this many arrows along each side; larger grids show every
        ``k``-th cell.
    colorbar : bool
        Add a colour bar.
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        If the MDP has no grid layout or an array has the wrong shape.
    ImportError
        Without matplotlib.
    """
    rows, cols = grid_shape(mdp)
    if hasattr(V, "V") and hasattr(V, "policy"):  # a SolveResult
        res = V
        V = res.V if res.V.ndim == 1 else res.V[0]
        if policy is None:
            policy = res.policy if res.policy.ndim == 2 else res.policy[0]
    V = _state_vector(V, mdp.n_states, "V")
    act = _best_actions(mdp, policy) if policy is not None else None
    names = _actions_of(mdp) if act is not None else ()
    if act is not None and not set(names) <= set(_ARROWS):
        raise ValueError(f"arrows need actions among {sorted(_ARROWS)}, got {names}")
    max_arrows = int(max_arrows)
    if max_arrows < 1:
        raise ValueError(f"max_arrows must be >= 1, got {max_arrows}")
    _, ax = _new_axes(ax, figsize=(6, 6 * rows / max(cols, 1) + 0.5))
    img = V.reshape(rows, cols).copy()
    walls = _wall_mask(mdp, rows, cols)
    masked = np.ma.masked_array(img, mask=walls | ~np.isfinite(img))
    cm = _pyplot().get_cmap(cmap).with_extremes(bad="0.35")
    im = ax.imshow(masked, cmap=cm, interpolation="nearest", origin="upper")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, shrink=0.8, label="V")
    if act is not None:
        step = max(1, int(np.ceil(max(rows, cols) / max_arrows)))
        rr, cc = np.mgrid[0:rows:step, 0:cols:step]
        rr, cc = rr.ravel(), cc.ravel()
        s = rr * cols + cc
        keep = ~walls[rr, cc]
        if mdp.terminal is not None:
            keep &= ~mdp.terminal[s]
        dirs = np.array([_ARROWS[n] for n in names])
        d = dirs[act[s[keep]]]
        scale = 0.35 * step
        ax.quiver(cc[keep], rr[keep], d[:, 0] * scale, d[:, 1] * scale, color="white",
                  angles="xy", scale_units="xy", scale=1.0, width=0.004, headwidth=4,
                  pivot="middle", edgecolor="black", linewidth=0.3)
    for cell in mdp.info.get("goals", ()) or ():
        r, c = (int(x) for x in cell)
        ax.plot(c, r, marker="*", color="gold", markersize=max(4, 200 / max(rows, cols)),
                markeredgecolor="black")
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_xlabel("column")
    ax.set_ylabel("row")
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
    return sig, ent, mem


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
    and a map of the per-state choice entropy; walls, terminal states and
    states without memories are masked, goals starred. Low ``sigma`` (dark)
    marks precisely stored memories; in the maze they line the route to the
    goal. On other MDPs: an ``(S, A)`` image of ``sigma`` and a bar chart of
    the entropy.

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
    fig : matplotlib Figure, optional
        Draw into this figure (it is cleared); default a new one.
    cmap, entropy_cmap : str
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        On arrays of the wrong shape.
    """
    if not isinstance(mdp, TabularMDP):
        raise TypeError(f"mdp must be a fastsoft.TabularMDP, got {type(mdp).__name__}")
    sig, ent, mem = _dra_arrays(mdp, sigma, entropy, memories)
    plt = _pyplot()
    S, A = mdp.n_states, mdp.n_actions
    sig_m = np.where(mem, sig, np.nan)
    vmax = float(sigma_base) if sigma_base is not None else None
    is_grid = mdp.info.get("grid") is not None
    n_sig = A if (per_action and is_grid) else 1
    n_panels = n_sig + (ent is not None)
    if fig is None:
        w = 4.2 * n_panels if is_grid else 5.0 * n_panels
        fig = plt.figure(figsize=(w, 3.6), constrained_layout=True)
    else:
        fig.clear()
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    if is_grid:
        rows, cols = grid_shape(mdp)
        walls = _wall_mask(mdp, rows, cols)
        names = mdp.info.get("actions") or tuple(f"a{a}" for a in range(A))
        no_mem = ~mem.any(axis=1).reshape(rows, cols)
        mean_sig = _nanmean0(np.where(mem, sig, np.nan).T)
        panels = ([(sig_m[:, a], f"sigma[{names[a]}]") for a in range(A)] if n_sig > 1
                  else [(mean_sig, "sigma (mean over actions)")])
        for ax, (vals, label) in zip(axes, panels, strict=False):
            img = np.ma.masked_invalid(vals.reshape(rows, cols))
            img.mask = np.ma.getmaskarray(img) | walls | no_mem
            cm = plt.get_cmap(cmap).with_extremes(bad="0.8")
            im = ax.imshow(img, cmap=cm, vmin=0.0, vmax=vmax, interpolation="nearest")
            fig.colorbar(im, ax=ax, shrink=0.8)
            ax.set_title(label)
        if ent is not None:
            ax = axes[-1]
            img = np.ma.masked_invalid(ent.reshape(rows, cols))
            img.mask = np.ma.getmaskarray(img) | walls | no_mem
            cm = plt.get_cmap(entropy_cmap).with_extremes(bad="0.8")
            im = ax.imshow(img, cmap=cm, vmin=0.0, vmax=float(np.log(A)),
                           interpolation="nearest")
            fig.colorbar(im, ax=ax, shrink=0.8)
            ax.set_title("choice entropy (nats)")
        for ax in axes:
            for cell in mdp.info.get("goals", ()) or ():
                r, c = (int(x) for x in cell)
                ax.plot(c, r, marker="*", color="gold", markersize=12, markeredgecolor="black")
            if mdp.initial is not None and mdp.initial.max() == 1.0:
                s0 = int(np.argmax(mdp.initial))
                ax.plot(s0 % cols, s0 // cols, marker="o", color="tab:cyan", markersize=8,
                        markeredgecolor="black")
            ax.set_xticks([])
            ax.set_yticks([])
    else:
        ax = axes[0]
        cm = plt.get_cmap(cmap).with_extremes(bad="0.8")
        im = ax.imshow(np.ma.masked_invalid(sig_m), cmap=cm, vmin=0.0, vmax=vmax,
                       aspect="auto", interpolation="nearest")
        fig.colorbar(im, ax=ax)
        ax.set_xlabel("action")
        ax.set_ylabel("state")
        ax.set_xticks(range(A))
        ax.set_title("sigma")
        if ent is not None:
            ax = axes[-1]
            vals = np.where(np.isfinite(ent), ent, 0.0)
            ax.bar(np.arange(S), vals, color=plt.get_cmap(entropy_cmap)(vals / max(np.log(A),
                                                                                   1e-12)))
            ax.set_xlabel("state")
            ax.set_ylabel("nats")
            ax.set_ylim(0, max(np.log(A), 1e-12) * 1.05)
            ax.set_title("choice entropy")
    if title:
        fig.suptitle(title)
    return fig


def dra_history(result, ax=None, *, what: Sequence[str] = ("reward", "cost", "objective")):
    """Learning curves of DRA runs: mean over runs (line) and its range (band).

    Parameters
    ----------
    result : DRAResult
        From :func:`fastsoft.dra.train`, with evaluation points (``eval_every``).
    ax : matplotlib Axes, optional
    what : sequence of {"reward", "cost", "objective", "entropy_term"}

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        If the result has no evaluation points or ``what`` names an unknown series.
    """
    hist = getattr(result, "history", None)
    if hist is None or not hasattr(hist, "episode"):
        raise TypeError("result must be a fastsoft.dra.DRAResult")
    ep = np.asarray(hist.episode)
    if ep.size == 0:
        raise ValueError("the DRA result has no evaluation points (train with n_eval >= 1)")
    known = ("reward", "cost", "objective", "entropy_term")
    bad = [w for w in what if w not in known]
    if bad:
        raise ValueError(f"what must name series among {known}, got {bad}")
    _, ax = _new_axes(ax, figsize=(6, 4))
    for name in what:
        y = np.asarray(getattr(hist, name), dtype=np.float64)
        line, = ax.plot(ep, y.mean(axis=0), label=name, marker="." if ep.size < 30 else None)
        if y.shape[0] > 1:
            ax.fill_between(ep, y.min(axis=0), y.max(axis=0), alpha=0.2,
                            color=line.get_color())
    ax.set_xlabel("episode")
    ax.set_ylabel("value")
    ax.legend()
    ax.grid(alpha=0.3)
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


def convergence(results, ax=None, *, x: str = "iterations", labels: Sequence[str] | None = None,
                show_tol: bool = True):
    """Certified error bound (log scale) against iterations or time.

    Parameters
    ----------
    results : SolveResult, sequence of SolveResult, or mapping label -> SolveResult
        Each needs ``history["error_bound"]`` (and ``history["time"]`` for ``x="time"``).
    ax : matplotlib Axes, optional
    x : {"iterations", "time"}
        Horizontal axis: iteration number, or seconds since the start.
    labels : sequence of str, optional
        Legend labels (default the mapping's keys or each result's ``method``).
    show_tol : bool
        Draw each distinct ``tol`` as a dotted horizontal line.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        For an unknown ``x``, empty ``results``, a wrong number of labels, or
        histories whose lengths disagree.
    """
    if x not in ("iterations", "time"):
        raise ValueError(f"x must be 'iterations' or 'time', got {x!r}")
    items = _as_results(results)
    if labels is not None:
        labels = list(labels)
        if len(labels) != len(items):
            raise ValueError(f"got {len(labels)} labels for {len(items)} results")
        items = [(lab, r) for lab, (_, r) in zip(labels, items, strict=True)]
    _, ax = _new_axes(ax, figsize=(6, 4))
    tols = set()
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
        ok = np.isfinite(b) & (b > 0)
        ax.plot(xs[ok], b[ok], label=label, marker="." if b.size <= 30 else None)
        tol = getattr(r, "tol", 0.0)
        if tol and tol > 0:
            tols.add(float(tol))
    ax.set_yscale("log")
    if show_tol:
        for t in sorted(tols):
            ax.axhline(t, color="0.4", linestyle=":", linewidth=1)
    ax.set_xlabel("iteration" if x == "iterations" else "time (s)")
    ax.set_ylabel("certified error bound")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return ax
