"""Typed result objects returned by the solvers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["SolveResult"]


@dataclass(frozen=True, repr=False)
class SolveResult:
    """Solution of a (regularized) MDP with its diagnostics.

    Attributes
    ----------
    V : ndarray, shape (S,) or (H+1, S)
        State values (finite horizon: a leading time axis, ``V[H]`` terminal values).
    Q : ndarray, shape (S, A) or (H, S, A)
        ``Q = R + gamma P V``; ``-inf`` for infeasible actions, 0 at terminal states.
    policy : ndarray, shape (S, A) or (H, S, A)
        The regularized greedy policy of ``Q`` (docs/theory.md §2.2): ``pi ∝ mu^(eta/lam)
        exp(Q/lam)``; for ``lam = 0`` all mass on the lowest-index maximiser.
    n_iter : int
        Sweeps (value iteration) or improvement steps (policy iteration); ``H``
        for a finite horizon.
    residual : float
        ``max |TV - V|`` of the last sweep (non-terminal states).
    error_bound : float
        Certified bound on ``max_s |V(s) - V*(s)|`` (0 for a finite horizon,
        which is exact up to round-off).
    converged : bool
        Whether ``error_bound <= tol`` was certified.
    history : dict of ndarray
        Per iteration: ``"error_bound"``, ``"residual"`` and ``"time"``
        (seconds since the start, interpolated within a kernel call).
    method : str
        What ran, e.g. ``"value_iteration[gauss-seidel]"``.
    temperature, kl_weight : float
        ``tau`` and ``eta``.
    horizon : int or None
    tol : float
    wall_time : float
        Seconds spent in the solver.
    interrupted : bool
        True when a callback or Ctrl-C stopped the run early (the result and its
        certificate are those of the last completed sweep).
    extra : dict
        Method-specific diagnostics (e.g. evaluation residuals of policy iteration).
    """

    V: np.ndarray
    Q: np.ndarray
    policy: np.ndarray
    n_iter: int
    residual: float
    error_bound: float
    converged: bool
    history: dict[str, np.ndarray]
    method: str
    temperature: float = 0.0
    kl_weight: float = 0.0
    horizon: int | None = None
    tol: float = 0.0
    wall_time: float = 0.0
    interrupted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def action(self) -> np.ndarray:
        """Most probable action per state (lowest index on ties), shape (S,) or (H, S)."""
        return np.argmax(self.policy, axis=-1)

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.V.shape))
        return (
            f"SolveResult(method={self.method!r}, V.shape={shape}, n_iter={self.n_iter}, "
            f"error_bound={self.error_bound:.3g}, residual={self.residual:.3g}, "
            f"converged={self.converged}, wall_time={self.wall_time:.3g}s)"
        )

    def summary(self) -> str:
        """A few human-readable lines."""
        v = self.V if self.V.ndim == 1 else self.V[0]
        lines = [
            f"method          {self.method}",
            f"temperature     {self.temperature:g}   kl_weight {self.kl_weight:g}",
            f"iterations      {self.n_iter}",
            f"certified bound {self.error_bound:.3e} (tol {self.tol:.1e}) "
            f"converged={self.converged}",
            f"residual        {self.residual:.3e}",
            f"V range         [{v.min():.6g}, {v.max():.6g}]",
            f"time            {self.wall_time:.3f} s",
        ]
        if self.interrupted:
            lines.append("interrupted     yes (partial result)")
        return "\n".join(lines)
