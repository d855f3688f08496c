"""Exact optimal values and policies, and certified scores of any policy.

For benchmarking reinforcement-learning algorithms on tabular tasks: the
optimal hard (``temperature = 0``) or entropy-regularized ("soft") values
``V*``, ``Q*`` and optimal policy of an MDP, a gymnasium environment with a
transition table (FrozenLake, CliffWalking, Taxi, fastsoft's registered ids),
Blackjack (enumerated exactly), or a registered id, each with a certified sup-norm error; and
:func:`score_policy`, which scores a learned policy by its suboptimality
``J* - J^pi`` (``J = sum_s p0(s) V(s)``, ``p0`` the initial distribution)
with a certified error, so a test can assert::

    score = fastsoft.groundtruth.score_policy("FrozenLake-v1", agent.policy, gamma=0.99)
    assert score.certified_within(1e-3)

How the certificates are obtained (docs/groundtruth.md): the solver's answer is
polished by an exact sparse solve of its policy's linear system, and the
residual ``r = T V - V`` of the result is computed in float64 with a bound on
its rounding error; contraction then gives ``||V - V*|| <= (||r|| + e) / (1 - gamma)``
whatever produced ``V``. The same argument with the policy's own operator
``T^pi`` bounds the error of ``V^pi``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ._validation import as_tabular
from .mdp import TabularMDP

__all__ = ["GroundTruth", "PolicyScore", "optimal", "ground_truth", "policy_value",
           "score_policy", "TOY_TEXT_IDS"]

#: Toy-text gymnasium ids (``ground_truth`` works on any id with a transition table;
#: Blackjack, which has none, is enumerated exactly by :mod:`fastsoft.envs.blackjack`).
TOY_TEXT_IDS = ("FrozenLake-v1", "FrozenLake8x8-v1", "CliffWalking-v1",
                "CliffWalkingSlippery-v1", "Taxi-v4", "Blackjack-v1")
_EPS = float(np.finfo(np.float64).eps)
#: Exact linear solves up to this many states (sparse LU); larger MDPs keep the
#: solver's own certificate.
_DIRECT_MAX_STATES = 200_000


@dataclass(frozen=True)
class GroundTruth:
    """Optimal values of one MDP with certified errors.

    Attributes
    ----------
    mdp : TabularMDP
    temperature : float
        Entropy weight ``tau`` (0: the hard optimum).
    V : ndarray (S,)
        ``V*`` with ``max_s |V - V*| <= error_bound``.
    Q : ndarray (S, A)
        ``Q* = R + gamma P V*`` within ``gamma * error_bound`` (plus rounding).
    policy : ndarray (S, A)
        The optimal policy: greedy (ties to the lowest action) or ``exp(Q*/tau)``.
    error_bound : float
        Certified bound on ``max_s |V(s) - V*(s)|``.
    initial : ndarray (S,)
        The start distribution ``p0`` (the MDP's, or uniform over non-terminal states).
    """

    mdp: TabularMDP
    temperature: float
    V: np.ndarray
    Q: np.ndarray
    policy: np.ndarray
    error_bound: float
    initial: np.ndarray

    @property
    def value(self) -> float:
        """``J* = sum_s p0(s) V*(s)``."""
        return float(self.initial @ self.V)


@dataclass(frozen=True)
class PolicyScore:
    """A policy's value against the optimum, with a certified error.

    Attributes
    ----------
    suboptimality : float
        ``J* - J^pi`` (>= 0 up to ``error_bound``).
    error_bound : float
        Certified bound on the error of ``suboptimality``.
    value, optimal_value : float
        ``J^pi`` and ``J*``.
    V_pi : ndarray (S,)
        The policy's (regularized) values.
    """

    suboptimality: float
    error_bound: float
    value: float
    optimal_value: float
    V_pi: np.ndarray

    def certified_within(self, eps: float) -> bool:
        """True when ``J* - J^pi <= eps`` is proven (``suboptimality + error_bound <= eps``)."""
        return bool(self.suboptimality + self.error_bound <= eps)


# ---------------------------------------------------------------------- pieces
def _mdp_of(env_or_mdp, gamma) -> TabularMDP:
    if isinstance(env_or_mdp, str):
        import gymnasium as gym

        from . import envs  # noqa: F401  (registers the fastsoft/ ids)

        env = gym.make(env_or_mdp)
        try:
            return as_tabular(env, gamma, env_or_mdp)
        finally:
            env.close()
    return as_tabular(env_or_mdp, gamma, "env_or_mdp")


def _policy_table(mdp: TabularMDP, policy) -> np.ndarray:
    """(S, A) probabilities from a table, (S,) actions or a callable on states."""
    S, A = mdp.n_states, mdp.n_actions
    if callable(policy):
        rows = [np.asarray(policy(s)) for s in range(S)]
        if all(r.ndim == 0 for r in rows):
            policy = np.array([int(r) for r in rows], dtype=np.int64)
        else:
            policy = np.array([np.broadcast_to(r, (A,)) for r in rows], dtype=np.float64)
    pol = np.asarray(policy)
    obs_of = mdp.info.get("observation_of_state")
    n_obs = mdp.info.get("n_observations")
    if obs_of is not None and pol.shape[:1] == (n_obs,):  # a policy over observations
        obs_of = np.asarray(obs_of)
        rows = np.where(obs_of >= 0, obs_of, 0)
        if pol.ndim == 1:
            pol = pol[rows]
        else:
            pol = np.asarray(pol, dtype=np.float64)[rows]
            pol[obs_of < 0] = 1.0 / A
    # a policy over the environment's states, without the absorbing sink that
    # from_gymnasium may append (Taxi): the sink is terminal, its row does not matter
    sink = (mdp.terminal is not None and bool(mdp.terminal[-1]) and pol.shape[:1] == (S - 1,))
    if pol.ndim == 1:
        if not np.issubdtype(pol.dtype, np.integer):
            raise ValueError(f"policy: (S,) actions must be integers, got dtype {pol.dtype}")
        if sink:
            pol = np.append(pol, 0)
        if pol.shape != (S,):
            raise ValueError(f"policy must have shape (S,) = ({S},) or (S, A) = {(S, A)}, "
                             f"got {np.shape(policy)}")
        bad = np.flatnonzero((pol < 0) | (pol >= A))
        if bad.size:
            raise ValueError(f"policy: action {pol[bad[0]]} of state {bad[0]} out of range "
                             f"[0, {A})")
        out = np.zeros((S, A))
        out[np.arange(S), pol] = 1.0
        pol = out
    else:
        pol = np.array(pol, dtype=np.float64)
        if sink and pol.shape == (S - 1, A):
            pol = np.vstack([pol, np.full((1, A), 1.0 / A)])
        if pol.shape != (S, A):
            raise ValueError(f"policy must have shape (S, A) = {(S, A)} or (S,) = ({S},), "
                             f"got {np.shape(policy)}")
        if not np.all(np.isfinite(pol)) or np.any(pol < 0):
            s, a = np.argwhere(~np.isfinite(pol) | (pol < 0))[0]
            raise ValueError(f"policy[{s}, {a}] = {pol[s, a]} is not a probability")
        sums = pol.sum(axis=1)
        bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-8)
        if bad.size:
            raise ValueError(f"policy row {bad[0]} sums to {sums[bad[0]]}, not 1")
        pol /= sums[:, None]
    live = np.ones(S, bool) if mdp.terminal is None else ~np.asarray(mdp.terminal)
    infeasible = (pol > 0) & ~mdp.feasible & live[:, None]
    if infeasible.any():
        s, a = np.argwhere(infeasible)[0]
        raise ValueError(f"policy puts probability {pol[s, a]:g} on the infeasible action "
                         f"{a} of state {s} (reward -inf)")
    return pol


def _entropy_rows(pol: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(pol > 0, pol * np.log(pol), 0.0).sum(axis=1)


def _policy_system(mdp: TabularMDP, pol: np.ndarray, tau: float):
    """``P_pi`` (sparse, terminal rows zero) and ``r_pi`` of SPEC 3 (entropy weight tau)."""
    import scipy.sparse as sp

    S, A = mdp.n_states, mdp.n_actions
    live = np.ones(S, bool) if mdp.terminal is None else ~np.asarray(mdp.terminal)
    w = (pol * live[:, None]).ravel()
    counts = np.diff(mdp.indptr)
    rows = np.repeat(np.arange(S * A), counts) // A
    data = np.repeat(w, counts) * np.asarray(mdp.probs, dtype=np.float64)
    P = sp.csr_matrix((data, (rows, mdp.indices)), shape=(S, S))
    R = np.where(pol > 0, np.asarray(mdp.rewards, dtype=np.float64), 0.0)
    r = ((pol * R).sum(axis=1) + tau * _entropy_rows(pol)) * live
    return P, r, live


def _row_len(mdp: TabularMDP) -> int:
    return int(np.diff(mdp.indptr).max()) if mdp.nnz else 1


def _allowance(mdp: TabularMDP, V: np.ndarray, tau: float) -> float:
    """A bound on the rounding error of one float64 evaluation of ``T V`` or ``T^pi V``.

    Each ``Q(s,a) = R + gamma sum_k p_k V_k`` sums at most ``K`` terms (error
    ``<= K eps`` relative to ``|R| + max|V|``); the log-sum-exp or the policy
    average adds a few ``eps`` of ``|Q| + tau log A``, the difference with ``V`` one
    more. Four times the first-order sum covers the second-order terms.
    """
    R = np.asarray(mdp.rewards, dtype=np.float64)
    rmax = float(np.abs(R[np.isfinite(R)]).max()) if np.isfinite(R).any() else 0.0
    vmax = float(np.abs(V).max()) if V.size else 0.0
    scale = rmax + vmax + tau * np.log(max(mdp.n_actions, 1)) + vmax
    return 4.0 * (_row_len(mdp) + mdp.n_actions + 6) * _EPS * scale


def _certify_optimal(mdp: TabularMDP, V: np.ndarray, tau: float) -> float:
    from .vi import bellman_backup

    TV, _, _ = bellman_backup(mdp, V, tau)
    res = float(np.abs(TV - V).max()) if V.size else 0.0
    return (res + _allowance(mdp, V, tau)) / (1.0 - mdp.gamma)


def _solve_policy(mdp: TabularMDP, pol: np.ndarray, tau: float) -> tuple[np.ndarray, float]:
    """``V^pi`` by a sparse LU solve, and a certified bound on its error."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve

    P, r, live = _policy_system(mdp, pol, tau)
    S = mdp.n_states
    M = (sp.identity(S, format="csc") - mdp.gamma * P.tocsc()).tocsc()
    V = np.atleast_1d(spsolve(M, r))
    V[~live] = 0.0
    resid = float(np.abs(r + mdp.gamma * (P @ V) - V).max()) if S else 0.0
    return V, (resid + _allowance(mdp, V, tau)) / (1.0 - mdp.gamma)


# ---------------------------------------------------------------------- public
def optimal(env_or_mdp, *, gamma: float | None = None, temperature: float = 0.0,
            tol: float | None = None) -> GroundTruth:
    """Optimal values, Q-values and policy with a certified error.

    Parameters
    ----------
    env_or_mdp : TabularMDP, gymnasium.Env with ``unwrapped.P``, or str
        A string is a gymnasium id (``"FrozenLake-v1"``, ``"fastsoft/GridWorld-v0"``).
    gamma : float, optional
        Discount of an environment (default 0.99); not for a TabularMDP.
    temperature : float
        Entropy weight ``tau >= 0``: 0 gives the hard optimum, ``tau > 0`` the
        soft optimum ``V* = tau log sum_a exp(Q*/tau)`` and ``pi* ∝ exp(Q*/tau)``.
    tol : float, optional
        Required certified bound on ``max |V - V*|``; default: as tight as
        float64 allows (the bound reached is ``error_bound``).

    Returns
    -------
    GroundTruth

    Raises
    ------
    ValueError
        If ``tol`` cannot be certified (it is below the round-off floor of the problem).
    TypeError
        For environments without a transition table.

    Examples
    --------
    >>> gt = optimal("FrozenLake-v1", gamma=0.99)
    >>> round(gt.value, 3), gt.error_bound < 1e-10
    (0.542, True)
    """
    from .sampling import as_initial
    from .solver import solve

    mdp = _mdp_of(env_or_mdp, gamma)
    tau = float(temperature)
    if not tau >= 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    S = mdp.n_states
    method = "pi" if S <= 20_000 else "auto"
    res = solve(mdp, tau, tol=1e-10 if tol is None else tol, method=method)
    V, pol = res.V, res.policy
    bound = min(float(res.error_bound), _certify_optimal(mdp, V, tau))
    if S <= _DIRECT_MAX_STATES:
        # polish: the exact value of the solver's policy (greedy policies are
        # optimal once the error is below the action gap)
        Vp, _ = _solve_policy(mdp, pol, tau)
        bp = _certify_optimal(mdp, Vp, tau)
        if bp < bound:
            V, bound = Vp, bp
    if tol is not None and not bound <= tol:
        raise ValueError(f"tol = {tol:g} cannot be certified for this MDP (best certified "
                         f"bound {bound:.3g}; the round-off floor): pass a larger tol")
    from .vi import bellman_backup

    _, Q, pol = bellman_backup(mdp, V, tau)
    if tau == 0:  # greedy, ties to the lowest index
        pol = np.zeros_like(Q)
        pol[np.arange(S), np.argmax(Q, axis=1)] = 1.0
    for arr in (V, Q, pol):
        arr.setflags(write=False)
    p0 = as_initial(mdp, None)
    p0.setflags(write=False)
    return GroundTruth(mdp, tau, V, Q, pol, float(bound), p0)


@functools.lru_cache(maxsize=64)
def ground_truth(env_id: str, *, gamma: float = 0.99, temperature: float = 0.0,
                 tol: float | None = None) -> GroundTruth:
    """:func:`optimal` for a gymnasium id, cached (computed once per process and settings).

    Examples
    --------
    >>> ground_truth("CliffWalking-v1").V.shape
    (48,)
    """
    return optimal(env_id, gamma=gamma, temperature=temperature, tol=tol)


def policy_value(env_or_mdp, policy, *, gamma: float | None = None,
                 temperature: float = 0.0) -> tuple[np.ndarray, float]:
    """The exact (regularized) value ``V^pi`` of a policy and a certified bound on its error.

    Parameters
    ----------
    env_or_mdp : TabularMDP, gymnasium.Env or str
    policy : array (S, A), array (S,) of int, or callable
        Probabilities, actions, or a function of the state returning an action
        or a probability vector. For environments whose MDP gained an absorbing
        sink (Taxi), a policy over the environment's own states is accepted;
        for Blackjack one over its 704 observation indices
        (:func:`fastsoft.envs.blackjack.blackjack_state`).
    gamma : float, optional
    temperature : float
        Entropy weight of the regularized value (SPEC 3): ``V^pi`` collects
        ``tau H(pi(.|s))`` at every step.

    Returns
    -------
    V : ndarray (S,)
    error_bound : float
        Certified bound on ``max |V - V^pi|``.
    """
    mdp = _mdp_of(env_or_mdp, gamma)
    if mdp.n_states > _DIRECT_MAX_STATES:
        raise ValueError(f"policy_value solves exactly up to {_DIRECT_MAX_STATES} states; "
                         f"this MDP has {mdp.n_states} (use fastsoft.policy_evaluation)")
    pol = _policy_table(mdp, policy)
    return _solve_policy(mdp, pol, float(temperature))


def score_policy(env_or_mdp, policy, *, gamma: float | None = None,
                 temperature: float = 0.0, optimum: GroundTruth | None = None,
                 tol: float | None = None) -> PolicyScore:
    """Suboptimality ``J* - J^pi`` of a policy with a certified error.

    Parameters
    ----------
    env_or_mdp : TabularMDP, gymnasium.Env with ``unwrapped.P``, or str (a gymnasium id)
    policy : array (S, A), array (S,) of int, or callable on states
        See :func:`policy_value`.
    gamma : float, optional
        Discount of an environment (default 0.99).
    temperature : float
        Score against the soft optimum with this entropy weight (and the
        policy's regularized value); 0 for the usual return.
    optimum : GroundTruth, optional
        A precomputed :func:`optimal` of the same MDP and temperature.
    tol : float, optional
        Required bound of the optimum when it is computed here (see :func:`optimal`).

    Returns
    -------
    PolicyScore

    Examples
    --------
    >>> import numpy as np
    >>> uniform = np.full((16, 4), 0.25)
    >>> s = score_policy("FrozenLake-v1", uniform, gamma=0.99)
    >>> s.certified_within(1e-3), round(s.suboptimality, 2)
    (False, 0.53)
    """
    mdp = _mdp_of(env_or_mdp, gamma)
    opt = optimum if optimum is not None else optimal(mdp, temperature=temperature, tol=tol)
    if opt.mdp.n_states != mdp.n_states or opt.mdp.n_actions != mdp.n_actions:
        raise ValueError("optimum is for a different MDP")
    if opt.temperature != float(temperature):
        raise ValueError(f"optimum has temperature {opt.temperature}, not {temperature}")
    V, b = policy_value(mdp, policy, temperature=temperature)
    p0 = opt.initial
    j, jstar = float(p0 @ V), float(p0 @ opt.V)
    # errors of V and V*, and the rounding of the two sums and their difference
    rounding = 2 * (mdp.n_states + 2) * _EPS * (float(np.abs(V).max(initial=0.0))
                                                + float(np.abs(opt.V).max(initial=0.0)))
    return PolicyScore(jstar - j, b + opt.error_bound + rounding, j, jstar, V)


