"""Typed result objects returned by the solvers."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np

__all__ = ["SolveResult", "Status"]


class Status(IntEnum):
    """Why a run ended (``status`` of every result, beside ``converged`` and ``message``).

    In the spirit of :class:`scipy.optimize.OptimizeResult`: 0 is success.
    """

    #: The certified bound reached ``tol``.
    CONVERGED = 0
    #: The iteration budget ran out (``max_iter``, or an inner evaluation budget).
    MAX_ITER = 1
    #: ``tol`` is below what float64 can certify on this problem; the run stopped
    #: at the best certified bound within a small factor of the round-off floor.
    ROUND_OFF_FLOOR = 2
    #: A callback or Ctrl-C stopped the run (partial result, honest certificate).
    INTERRUPTED = 3
    #: The certificate stopped improving (e.g. policy iteration with ties that only
    #: round-off flips); ``message`` gives the best bound.
    STALLED = 4


def default_status(converged: bool, interrupted: bool) -> tuple[Status, str]:
    """The status of a result that gives none: converged, interrupted or out of budget."""
    if converged:
        return Status.CONVERGED, "converged"
    if interrupted:
        return Status.INTERRUPTED, "interrupted"
    return Status.MAX_ITER, "max_iter reached"


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
    status : Status
        Why the run ended: ``CONVERGED`` (0), ``MAX_ITER``, ``ROUND_OFF_FLOOR``,
        ``INTERRUPTED`` or ``STALLED`` (see :class:`Status`).
    message : str
        The same in words, e.g. ``"converged"``, ``"max_iter reached: certified
        bound 3e-07"`` or ``"tol below round-off floor: best certified bound 2e-10"``.
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
    status: Status | None = None
    message: str = ""

    def __post_init__(self) -> None:
        if self.status is None:
            st, msg = default_status(self.converged, self.interrupted)
            object.__setattr__(self, "status", st)
            if not self.message:
                object.__setattr__(self, "message", msg)
        else:
            object.__setattr__(self, "status", Status(self.status))
            if not self.message:
                object.__setattr__(self, "message", self.status.name.lower())

    @property
    def action(self) -> np.ndarray:
        """Most probable action per state (lowest index on ties), shape (S,) or (H, S)."""
        return np.argmax(self.policy, axis=-1)

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.V.shape))
        return (
            f"SolveResult(method={self.method!r}, V.shape={shape}, n_iter={self.n_iter}, "
            f"error_bound={self.error_bound:.3g}, residual={self.residual:.3g}, "
            f"converged={self.converged}, status={getattr(self.status, 'name', self.status)}, "
            f"wall_time={self.wall_time:.3g}s)"
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
            f"status          {self.message}",
            f"residual        {self.residual:.3e}",
            f"V range         [{v.min():.6g}, {v.max():.6g}]",
            f"time            {self.wall_time:.3f} s",
        ]
        if self.interrupted:
            lines.append("interrupted     yes (partial result)")
        return "\n".join(lines)
