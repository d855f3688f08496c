"""NumPy/SciPy references of the policy-evaluation and policy-iteration kernels (docs/theory.md §3).

Each function names the kernel of :mod:`fastsoft._pi_kernels` it mirrors.
Plain vectorised code; ``scipy.sparse`` for ``P_pi`` and the direct solve.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .core import bellman_backup, transition_matrix

__all__ = [
    "policy_reward",
    "policy_matrix",
    "policy_operator",
    "policy_matvec",
    "policy_evaluation",
    "improve_hard",
    "improve_mirror",
    "regularized_policy_iteration",
]


def _log_mu(mdp, prior):
    R = np.asarray(mdp.rewards, dtype=np.float64)
    feas = np.isfinite(R)
    if prior is None:
        nf = feas.sum(axis=1, keepdims=True)
        return np.where(feas, -np.log(nf), -np.inf)
    with np.errstate(divide="ignore"):
        return np.log(np.broadcast_to(np.asarray(prior, dtype=np.float64), R.shape))


def _live(mdp):
    return np.ones(mdp.n_states, bool) if mdp.terminal is None else ~mdp.terminal


def policy_reward(mdp, pi, temperature=0.0, kl_weight=0.0, prior=None) -> np.ndarray:
    """``r_pi = sum_a pi R + tau H(pi) - eta KL(pi || mu)``; 0 at terminal states.

    Reference of ``_policy_reward``.

    Parameters
    ----------
    mdp : TabularMDP
    pi : array of float, shape (S, A)
        The policy (rows summing to 1, zero on infeasible actions).
    temperature, kl_weight : float
        ``tau, eta >= 0``.
    prior : array, optional
        ``mu`` (S, A) or (A,); uniform over the feasible actions by default.

    Returns
    -------
    ndarray of float64, shape (S,)

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft.reference import pi as rp
    >>> mdp = fs.random_mdp(5, 2, 3, gamma=0.9, seed=0)
    >>> uniform = np.full((5, 2), 0.5)
    >>> rp.policy_reward(mdp, uniform, 0.1).round(6)
    array([0.847446, 0.766799, 0.531877, 0.87697 , 0.773809])
    """
    pi = np.asarray(pi, dtype=np.float64)
    R = np.asarray(mdp.rewards, dtype=np.float64)
    pos = pi > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        logpi = np.where(pos, np.log(np.where(pos, pi, 1.0)), 0.0)
        r = np.where(pos, pi * R, 0.0).sum(axis=1)
        ent = -(pi * logpi).sum(axis=1)
        kl = np.where(pos, pi * (logpi - _log_mu(mdp, prior)), 0.0).sum(axis=1)
    out = r + temperature * ent - (kl_weight * kl if kl_weight > 0 else 0.0)
    out[~_live(mdp)] = 0.0
    return out


def policy_matrix(mdp, pi) -> sp.csr_matrix:
    """``P_pi`` (S, S) with terminal rows empty and terminal columns dropped.

    Reference of ``_ppi_count`` / ``_ppi_fill`` (rows of ``P`` normalised by their sum).

    Parameters
    ----------
    mdp : TabularMDP
    pi : array of float, shape (S, A)
        The policy (rows summing to 1, zero on infeasible actions).

    Returns
    -------
    scipy.sparse.csr_matrix, shape (S, S)

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft.reference import pi as rp
    >>> mdp = fs.random_mdp(5, 2, 3, gamma=0.9, seed=0)
    >>> uniform = np.full((5, 2), 0.5)
    >>> rp.policy_matrix(mdp, uniform).shape
    (5, 5)
    """
    S, A = mdp.n_states, mdp.n_actions
    P = transition_matrix(mdp)
    rs = np.asarray(P.sum(axis=1)).ravel()
    P = sp.diags(1.0 / np.maximum(rs, 1e-300)) @ P
    W = sp.csr_matrix((np.asarray(pi, dtype=np.float64).ravel(),
                       (np.repeat(np.arange(S), A), np.arange(S * A))), shape=(S, S * A))
    M = (W @ P).tocsr()
    live = _live(mdp).astype(np.float64)
    M = sp.diags(live) @ M @ sp.diags(live)
    M = sp.csr_matrix(M)
    M.eliminate_zeros()
    M.sort_indices()
    return M


def policy_operator(mdp, pi, r, V) -> np.ndarray:
    """One Jacobi sweep ``T_pi V = r + gamma P_pi V`` (reference of ``_policy_sweep``).

    Parameters
    ----------
    mdp : TabularMDP
    pi : array of float, shape (S, A)
        The policy (rows summing to 1, zero on infeasible actions).
    r : array of float, shape (S,)
        :func:`policy_reward` of ``pi``.
    V : array of float, shape (S,)

    Returns
    -------
    ndarray of float64, shape (S,)

    Examples
    --------
    ``V^pi`` is the fixed point:

    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft.reference import pi as rp
    >>> mdp = fs.random_mdp(5, 2, 3, gamma=0.9, seed=0)
    >>> uniform = np.full((5, 2), 0.5)
    >>> r = rp.policy_reward(mdp, uniform, 0.1)
    >>> V, _ = rp.policy_evaluation(mdp, uniform, 0.1)
    >>> bool(np.allclose(rp.policy_operator(mdp, uniform, r, V), V))
    True
    """
    out = r + mdp.gamma * (policy_matrix(mdp, pi) @ np.asarray(V, dtype=np.float64))
    out[~_live(mdp)] = 0.0
    return out


def policy_matvec(mdp, pi, x) -> np.ndarray:
    """``(I - gamma P_pi) x`` with identity rows at terminal states (``_policy_matvec``).

    Parameters
    ----------
    mdp : TabularMDP
    pi : array of float, shape (S, A)
        The policy (rows summing to 1, zero on infeasible actions).
    x : array of float, shape (S,)

    Returns
    -------
    ndarray of float64, shape (S,)

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft.reference import pi as rp
    >>> mdp = fs.random_mdp(5, 2, 3, gamma=0.9, seed=0)
    >>> uniform = np.full((5, 2), 0.5)
    >>> V, _ = rp.policy_evaluation(mdp, uniform, 0.1)
    >>> bool(np.allclose(rp.policy_matvec(mdp, uniform, V), rp.policy_reward(mdp, uniform, 0.1)))
    True
    """
    x = np.asarray(x, dtype=np.float64)
    return x - mdp.gamma * (policy_matrix(mdp, pi) @ x)


def policy_evaluation(mdp, pi, temperature=0.0, kl_weight=0.0, prior=None):
    """Exact ``V^pi`` by a sparse direct solve and ``Q^pi = R + gamma P V^pi``.

    Parameters
    ----------
    mdp : TabularMDP
    pi : array of float, shape (S, A)
        The policy (rows summing to 1, zero on infeasible actions).
    temperature, kl_weight : float
        ``tau, eta >= 0``.
    prior : array, optional
        ``mu`` (S, A) or (A,).

    Returns
    -------
    V : ndarray, shape (S,)
    Q : ndarray, shape (S, A)

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft.reference import pi as rp
    >>> mdp = fs.random_mdp(5, 2, 3, gamma=0.9, seed=0)
    >>> uniform = np.full((5, 2), 0.5)
    >>> V, Q = rp.policy_evaluation(mdp, uniform, 0.1)
    >>> bool(np.allclose(V, fs.policy_evaluation(mdp, uniform, temperature=0.1).V))
    True
    """
    r = policy_reward(mdp, pi, temperature, kl_weight, prior)
    M = sp.identity(mdp.n_states, format="csc") - mdp.gamma * policy_matrix(mdp, pi).tocsc()
    V = spla.spsolve(M.tocsc(), r)
    V = np.atleast_1d(V)
    V[~_live(mdp)] = 0.0
    _, Q, _ = bellman_backup(mdp, V, temperature, kl_weight, prior)
    return V, Q


def improve_hard(Q, act, thr, terminal=None):
    """Greedy step that keeps ``act[s]`` unless beaten by more than ``thr`` (``_improve_hard``).

    Returns the new actions (lowest-index maximiser when the action changes).

    Parameters
    ----------
    Q : array of float, shape (S, A)
    act : array of int, shape (S,)
        The current actions.
    thr : float
        Gain below which the current action is kept.
    terminal : array of bool, shape (S,), optional
        States whose action is kept.

    Returns
    -------
    ndarray of int64, shape (S,)

    Examples
    --------
    >>> import numpy as np
    >>> from fastsoft.reference import pi as rp
    >>> rp.improve_hard(np.array([[1.0, 1.0 + 1e-12], [0.0, 2.0]]), np.array([0, 0]), 1e-9)
    array([0, 1])
    """
    Q = np.asarray(Q, dtype=np.float64)
    act = np.asarray(act).copy()
    S = Q.shape[0]
    best = np.argmax(Q, axis=1)
    gain = Q[np.arange(S), best] - Q[np.arange(S), act]
    change = gain > thr
    if terminal is not None:
        change &= ~terminal
    act[change] = best[change]
    return act


def improve_mirror(Q, pi, temperature, kl_weight):
    """``pi' ∝ pi^(eta/lam) exp(Q/lam)`` with ``lam = tau + eta`` (``_improve_mirror``).

    Parameters
    ----------
    Q : array of float, shape (S, A)
    pi : array of float, shape (S, A)
        The current policy.
    temperature, kl_weight : float
        ``tau, eta >= 0`` with ``tau + eta > 0``.

    Returns
    -------
    ndarray of float64, shape (S, A)

    Examples
    --------
    >>> import numpy as np
    >>> from fastsoft.reference import pi as rp
    >>> rp.improve_mirror(np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]]), 0.5, 0.5).round(6)
    array([[0.731059, 0.268941]])
    """
    Q = np.asarray(Q, dtype=np.float64)
    pi = np.asarray(pi, dtype=np.float64)
    lam = temperature + kl_weight
    qm = np.max(np.where((pi > 0) & np.isfinite(Q), Q, -np.inf), axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (kl_weight / lam) * np.log(pi) + (Q - qm) / lam
    x[~np.isfinite(Q) | (pi <= 0)] = -np.inf
    x -= x.max(axis=1, keepdims=True)
    w = np.exp(x)
    return w / w.sum(axis=1, keepdims=True)


def regularized_policy_iteration(mdp, temperature, kl_weight=0.0, *, tol=1e-8, max_iter=500,
                                 pi0=None):
    """Policy mirror descent with exact evaluation and the certificate of docs/theory.md §2.4.

    ``pi0`` default: uniform over feasible actions. Hard ties (``tau = eta = 0``)
    keep the current action unless beaten by ``0.1 tol (1-gamma)/gamma``.
    Returns a dict with ``V`` (midpoint around ``T V^pi``), ``policy``, ``n_iter``,
    ``error_bound``, ``converged``, ``history``.

    Parameters
    ----------
    mdp : TabularMDP
    temperature, kl_weight : float
        ``tau, eta >= 0``.
    tol : float
        Certified sup-norm error to stop at.
    max_iter : int
        Iteration cap.
    pi0 : array of float, shape (S, A), optional
        Start policy.

    Returns
    -------
    dict
        ``V``, ``policy``, ``n_iter``, ``error_bound``, ``converged``, ``history``.

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft.reference import pi as rp
    >>> mdp = fs.random_mdp(5, 2, 3, gamma=0.9, seed=0)
    >>> uniform = np.full((5, 2), 0.5)
    >>> out = rp.regularized_policy_iteration(mdp, 0.1, tol=1e-10)
    >>> bool(np.abs(out["V"] - fs.soft_value_iteration(mdp, 0.1, tol=1e-10).V).max() < 1e-8)
    True
    """
    tau, eta = float(temperature), float(kl_weight)
    S, A = mdp.n_states, mdp.n_actions
    feas = np.isfinite(np.asarray(mdp.rewards, dtype=np.float64))
    pi = feas / feas.sum(axis=1, keepdims=True) if pi0 is None else np.array(pi0, float)
    live = _live(mdp)
    clamp = not live.all()
    c = mdp.gamma / (1.0 - mdp.gamma)
    hard = tau + eta == 0.0
    act = np.argmax(pi, axis=1)
    if hard:
        pi = np.eye(A)[act]
    hist = []
    V = TV = np.zeros(S)
    lo = hi = 0.0
    n = 0
    for n in range(1, max_iter + 1):  # noqa: B007
        V, _ = policy_evaluation(mdp, pi, tau)
        TV, Q, pig = bellman_backup(mdp, V, tau)
        d = (TV - V)[live]
        dmin, dmax = (d.min(), d.max()) if d.size else (0.0, 0.0)
        if clamp:
            dmin, dmax = min(dmin, 0.0), max(dmax, 0.0)
        lo, hi = c * dmin, c * dmax
        hist.append(0.5 * (hi - lo))
        if hist[-1] <= tol:
            break
        if hard:
            new = improve_hard(Q, act, 0.1 * tol / c, ~live)
            if np.array_equal(new, act):
                break
            act = new
            pi = np.eye(A)[act]
        elif eta == 0.0:
            pi = pig
        else:
            pi = improve_mirror(Q, pi, tau, eta)
    Vm = TV.copy()
    Vm[live] += 0.5 * (lo + hi)
    _, _, pol = bellman_backup(mdp, Vm, tau)
    return {"V": Vm, "policy": pol, "n_iter": n, "error_bound": hist[-1],
            "converged": hist[-1] <= tol, "history": np.array(hist)}
