"""Pictures of a :class:`~fastsoft.envs.TabularEnv` for ``rgb_array`` and ``human`` rendering.

Drawn with matplotlib (the ``plot`` extra) through its object API, so no
global pyplot state is touched for ``rgb_array``. Grid MDPs
(``mdp.info["grid"]``) show their cells (walls and holes dark, cliff red,
goals gold, start cells light blue) and the agent as a blue disc; Taxi-like
layered grids show the layer of the current state. Other MDPs show their
states as a square array of cells (terminal states gold).

``human`` opens a pyplot window when matplotlib's backend is interactive (a
display exists); otherwise it draws off screen and warns once, so headless
runs and :func:`gymnasium.utils.env_checker.check_env` still work.
"""

from __future__ import annotations

import math

import numpy as np

from ..mdp import TabularMDP

__all__ = ["GridRenderer", "rendering_available"]

_COLOURS = {"free": (0.96, 0.96, 0.96), "walls": (0.35, 0.35, 0.35),
            "holes": (0.08, 0.08, 0.08), "cliff": (0.70, 0.09, 0.17),
            "goals": (1.0, 0.84, 0.0), "start": (0.72, 0.88, 0.96),
            "none": (0.75, 0.75, 0.75)}
#: Largest side of a frame in pixels (cells shrink on big grids).
_MAX_PIXELS = 768


def rendering_available() -> bool:
    """Whether matplotlib is installed (the ``rgb_array`` and ``human`` modes need it)."""
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


class GridRenderer:
    """Draws states of one MDP; keeps its figure between frames.

    Parameters
    ----------
    mdp : TabularMDP
    human : bool
        Show frames in a pyplot window (when the backend is interactive).
    fps : float
        Frames per second of the ``human`` window.
    """

    def __init__(self, mdp: TabularMDP, *, human: bool = False, fps: float = 4.0):
        self.mdp = mdp
        self.human = bool(human)
        self.fps = float(fps)
        if mdp.info.get("grid") is not None:
            from ..plot import grid_shape

            self.rows, self.cols = grid_shape(mdp)
            gi = mdp.info.get("grid_index")
            self.index = (np.asarray(gi, dtype=np.int64) if gi is not None
                          else np.arange(mdp.n_states).reshape(1, self.rows, self.cols))
        else:
            self.cols = max(1, math.ceil(math.sqrt(mdp.n_states)))
            self.rows = math.ceil(mdp.n_states / self.cols)
            flat = np.full(self.rows * self.cols, -1, dtype=np.int64)
            flat[: mdp.n_states] = np.arange(mdp.n_states)
            self.index = flat.reshape(1, self.rows, self.cols)
        self._fig = None
        self._warned = False

    # ------------------------------------------------------------------ drawing
    def _background(self, layer: int) -> np.ndarray:
        from ..plot import cell_mask

        mdp = self.mdp
        idx = self.index[layer]
        img = np.empty((self.rows, self.cols, 3))
        img[...] = _COLOURS["free"]
        img[idx < 0] = _COLOURS["none"]
        if mdp.initial is not None:
            starts = np.flatnonzero(np.asarray(mdp.initial) > 0)
            if starts.size <= 4:
                img[np.isin(idx, starts)] = _COLOURS["start"]
        if mdp.info.get("grid") is not None:
            for key in ("walls", "holes", "cliff", "goals"):
                img[cell_mask(mdp, key, layer)] = _COLOURS[key]
        elif mdp.terminal is not None:
            term = np.zeros(idx.shape, dtype=bool)
            term[idx >= 0] = np.asarray(mdp.terminal)[idx[idx >= 0]]
            img[term] = _COLOURS["goals"]
        return img

    def _setup(self):
        if self.human:
            import matplotlib.pyplot as plt

            fig = plt.figure()
        else:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            fig = Figure()
            FigureCanvasAgg(fig)
        cell = max(1, min(48, _MAX_PIXELS // max(self.rows, self.cols)))
        dpi = 100
        fig.set_size_inches(max(self.cols * cell, 16) / dpi, max(self.rows * cell, 16) / dpi)
        fig.set_dpi(dpi)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        self._img = ax.imshow(self._background(0), interpolation="nearest", origin="upper",
                              extent=(-0.5, self.cols - 0.5, self.rows - 0.5, -0.5))
        from matplotlib.patches import Circle

        self._agent = Circle((0, 0), 0.32, color=(0.12, 0.38, 0.85), zorder=3)
        ax.add_patch(self._agent)
        ax.set_xlim(-0.5, self.cols - 0.5)
        ax.set_ylim(self.rows - 0.5, -0.5)
        self._ax = ax
        self._layer = 0
        self._fig = fig

    def _place(self, state: int | None) -> None:
        if state is None or not 0 <= state < self.mdp.n_states:
            self._agent.set_visible(False)
            return
        where = np.argwhere(self.index == state)
        if where.size == 0:  # e.g. an absorbing sink appended by from_gymnasium
            self._agent.set_visible(False)
            return
        layer, r, c = (int(x) for x in where[0])
        if layer != self._layer:
            self._img.set_data(self._background(layer))
            self._layer = layer
        self._agent.center = (c, r)
        self._agent.set_visible(True)

    def rgb_array(self, state: int | None) -> np.ndarray:
        """The frame of ``state``: uint8 array ``(height, width, 3)``."""
        if self._fig is None:
            self._setup()
        self._place(state)
        self._fig.canvas.draw()
        return np.asarray(self._fig.canvas.buffer_rgba())[..., :3].copy()

    def show(self, state: int | None) -> None:
        """Draw ``state`` in a window (``human`` mode); off screen without a display."""
        import matplotlib
        import matplotlib.pyplot as plt

        if self._fig is None:
            self._setup()
        self._place(state)
        interactive = matplotlib.get_backend().lower() not in {
            "agg", "pdf", "ps", "svg", "pgf", "cairo", "template", "module://matplotlib_inline.backend_inline"}
        if interactive:
            plt.figure(self._fig.number)
            self._fig.canvas.draw_idle()
            plt.pause(1.0 / self.fps)
        else:
            self._fig.canvas.draw()
            if not self._warned:
                import gymnasium as gym

                gym.logger.warn("render_mode='human': matplotlib's backend "
                                f"{matplotlib.get_backend()!r} cannot open a window (no "
                                "display?); frames are drawn off screen. Use "
                                "render_mode='rgb_array' to get the pictures.")
                self._warned = True

    def close(self) -> None:
        """Release the figure (and close its window)."""
        if self._fig is not None and self.human:
            import matplotlib.pyplot as plt

            plt.close(self._fig)
        self._fig = None
