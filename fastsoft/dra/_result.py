"""Result objects of :mod:`fastsoft.dra`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = ["DRAHistory", "DRAResult", "GradientEstimate"]


@dataclass(frozen=True)
class DRAHistory:
    """Evaluations of a DRA run at its evaluation points (docs/theory.md §6).

    Each evaluation uses ``n_eval`` fresh rollouts from the initial distribution
    with ``qbar`` and ``sigma`` frozen, drawn from a random stream of its own
    (evaluating more or less often does not change the learning).

    Attributes
    ----------
    episode : ndarray of int64, shape (P,)
        Number of completed learning episodes at each evaluation point.
    reward : ndarray, shape (n_runs, P)
        Mean undiscounted return of the evaluation rollouts.
    cost : ndarray, shape (n_runs, P)
        Memory cost: ``lam * sum KL(N(0, sigma^2) || N(0, sigma_base^2))`` over all
        memories (``cost="allocation"``), or the mean over rollouts of
        ``lam * sum_t sum_a KL`` of the memories of the visited states (``cost="access"``).
    entropy_term : ndarray, shape (n_runs, P)
        ``lam * mean over rollouts of (1/T) sum_t H(p_t)`` when ``entropy_bonus``; else 0.
    objective : ndarray, shape (n_runs, P)
        ``reward - cost + entropy_term``.
    state_entropy : ndarray, shape (n_runs, P, S)
        Choice entropy (nats) of every state: the entropy of the mean action
        distribution ``E_zeta[softmax(beta (qbar + sigma zeta))]``, estimated with
        ``n_eval`` draws of ``zeta``; NaN at terminal states.
    """

    episode: np.ndarray
    reward: np.ndarray
    cost: np.ndarray
    entropy_term: np.ndarray
    objective: np.ndarray
    state_entropy: np.ndarray


class _ProxiedParams(dict):
    """A pickled ``DRAResult.params`` that was a read-only mapping proxy."""


@dataclass(frozen=True)
class DRAResult:
    """Result of :func:`fastsoft.dra.train`.

    Attributes
    ----------
    qbar : ndarray, shape (n_runs, S, A)
        Learned mean action values ``qbar[s, a]``.
    sigma : ndarray, shape (n_runs, S, A)
        Memory noise levels. Entries that are not memories (terminal states,
        infeasible actions; see ``memories``) keep ``sigma0``.
    sigma_scalar : ndarray, shape (n_runs,)
        The shared scalar of the baselines (``allocation`` other than ``"dra"``);
        NaN for ``"dra"``.
    n_steps : ndarray of int64, shape (n_runs,)
        Environment steps simulated: learning, gradient and evaluation rollouts.
    returns : ndarray, shape (n_runs, n_episodes)
        Undiscounted return of every learning episode.
    state_visits : ndarray, shape (n_runs, S)
        Decisions taken in each state during the learning episodes.
    history : DRAHistory
        Reward, cost, objective and choice entropy at the evaluation points.
    memories : ndarray of bool, shape (S, A)
        The memories at the end of training: feasible actions of non-terminal states
        (of the environment after the switch, if any).
    params : mapping
        The options and hyperparameters of the call (per-run arrays where a grid was given).
    interrupted : bool
        Whether the runs were stopped early through ``train``'s ``callback`` (it
        returned True, or Ctrl-C): the arrays then hold the state after the
        ``n_episodes_done`` episodes completed, ``returns`` has that many columns and
        ``history`` the evaluation points up to there.
    """

    qbar: np.ndarray
    sigma: np.ndarray
    sigma_scalar: np.ndarray
    n_steps: np.ndarray
    returns: np.ndarray
    state_visits: np.ndarray
    history: DRAHistory
    memories: np.ndarray
    params: Mapping[str, Any] = field(default_factory=dict)
    interrupted: bool = False

    def __getstate__(self) -> dict:
        # ``params`` may be a read-only mapping proxy, which pickle cannot serialise
        # (``train`` returns one); it travels as a dict and is wrapped again
        state = dict(self.__dict__)
        if isinstance(self.params, MappingProxyType):
            state["params"] = _ProxiedParams(self.params)
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        if isinstance(state.get("params"), _ProxiedParams):
            state["params"] = MappingProxyType(dict(state["params"]))
        self.__dict__.update(state)

    @property
    def n_runs(self) -> int:
        """Number of independent runs."""
        return int(self.qbar.shape[0])

    @property
    def n_episodes_done(self) -> int:
        """Learning episodes completed (fewer than asked for if ``interrupted``)."""
        return int(self.returns.shape[1])

    def _final(self, arr: np.ndarray) -> float:
        if arr.shape[1] == 0:
            raise ValueError("no evaluation point: train with n_eval >= 1")
        return float(np.mean(arr[:, -1]))

    @property
    def final_reward(self) -> float:
        """Mean over runs of the expected reward at the last evaluation point."""
        return self._final(self.history.reward)

    @property
    def final_cost(self) -> float:
        """Mean over runs of the memory cost at the last evaluation point."""
        return self._final(self.history.cost)

    @property
    def final_objective(self) -> float:
        """Mean over runs of the objective at the last evaluation point."""
        return self._final(self.history.objective)


@dataclass(frozen=True)
class GradientEstimate:
    """Per-rollout Monte Carlo samples of the DRA gradient with respect to ``sigma``.

    Attributes
    ----------
    reward : ndarray, shape (n_traj, S, A)
        Score-function samples of ``d E[return] / d sigma`` (with the chosen ``psi``).
    entropy : ndarray, shape (n_traj, S, A)
        Samples of the pathwise gradient of ``(lam/T) sum_t H(p_t)`` (note B,
        docs/theory.md §6.6), zero unless ``entropy_bonus``.
    visits : ndarray, shape (n_traj, S)
        State visits of each rollout.
    cost : ndarray, shape (S, A)
        Gradient of the memory cost (``lam * dKL/dsigma``, weighted by the mean visits
        for ``cost="access"``); zero outside the memories.
    n_steps : int
        Environment steps simulated.
    """

    reward: np.ndarray
    entropy: np.ndarray
    visits: np.ndarray
    cost: np.ndarray
    n_steps: int

    @property
    def mean(self) -> np.ndarray:
        """The gradient used by :func:`fastsoft.dra.train`: ``mean(reward + entropy) - cost``."""
        return (self.reward + self.entropy).mean(axis=0) - self.cost

    @property
    def stderr(self) -> np.ndarray:
        """Standard error of the rollout average in ``mean`` (the cost term's own noise,
        through the mean visits of ``cost="access"``, is not included)."""
        x = self.reward + self.entropy
        n = x.shape[0]
        if n < 2:
            return np.full(x.shape[1:], np.nan)
        return x.std(axis=0, ddof=1) / np.sqrt(n)
