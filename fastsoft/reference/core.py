"""NumPy/SciPy references: CSR helpers, the regularized Bellman operator, value iteration.

Plain vectorised code, written for clarity. Each function mirrors a Numba
kernel (named in its docstring) and is what the tests and benchmarks compare
against.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.special import logsumexp

__all__ = [
    "row_sums",
    "expected_rewards",
    "canonicalize_csr",
    "normalize_rows",
    "grid_csr",
    "transition_matrix",
    "q_values",
    "regularized_max",
    "bellman_backup",
    "soft_value_iteration",
    "value_iteration",
    "finite_horizon",
    "plain_backup",
    "numpy_value_iteration",
    "batch_value_iteration",
    "leaving_classes",
]


# ----------------------------------------------------------------- CSR helpers
def row_sums(indptr, probs) -> np.ndarray:
    """Reference of ``fastsoft._csr._row_sums``.

    Parameters
    ----------
    indptr : array of int, shape (n_rows + 1,)
        CSR row pointers.
    probs : array of float, shape (nnz,)
        Entries.

    Returns
    -------
    ndarray of float64, shape (n_rows,)

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft import reference as ref
    >>> mdp = fs.random_mdp(5, 2, 3, gamma=0.9, seed=0)
    >>> ref.row_sums(mdp.indptr, mdp.probs)[:3]
    array([1., 1., 1.])
    """
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    return np.bincount(rows, weights=np.asarray(probs, dtype=np.float64),
                       minlength=len(indptr) - 1)


def expected_rewards(indptr, probs, trans_rewards) -> np.ndarray:
    """Reference of ``fastsoft._csr._expected_rewards``.

    Parameters
    ----------
    indptr : array of int, shape (n_rows + 1,)
        CSR row pointers.
    probs : array of float, shape (nnz,)
        Transition probabilities.
    trans_rewards : array of float, shape (nnz,)
        Reward of each transition.

    Returns
    -------
    ndarray of float64, shape (n_rows,)
        ``sum_k p_k r_k`` per row.

    Examples
    --------
    >>> import numpy as np
    >>> from fastsoft import reference as ref
    >>> ref.expected_rewards(np.array([0, 2]), np.array([0.5, 0.5]), np.array([1.0, 3.0]))
    array([2.])
    """
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    w = np.asarray(probs, dtype=np.float64) * np.asarray(trans_rewards, dtype=np.float64)
    return np.bincount(rows, weights=w, minlength=len(indptr) - 1)


def canonicalize_csr(indptr, indices, probs):
    """Reference of ``fastsoft._csr.canonicalize_csr`` (via scipy.sparse duplicate summing).

    Parameters
    ----------
    indptr, indices, probs : arrays
        A CSR matrix, possibly with unsorted or duplicate entries.

    Returns
    -------
    indptr, indices, probs : ndarray
        Rows sorted by column, duplicates summed, explicit zeros dropped.

    Examples
    --------
    >>> import numpy as np
    >>> from fastsoft import reference as ref
    >>> ref.canonicalize_csr(np.array([0, 3]), np.array([2, 0, 2]), np.array([0.25, 0.5, 0.25]))
    (array([0, 2]), array([0, 2], dtype=int32), array([0.5, 0.5]))
    """
    n_rows = len(indptr) - 1
    n_cols = int(indices.max()) + 1 if len(indices) else 1
    # copy=True: sum_duplicates and sort_indices work in place on the arrays given
    m = sp.csr_matrix((np.asarray(probs, dtype=np.float64), indices, indptr),
                      shape=(n_rows, n_cols), copy=True)
    m.sum_duplicates()
    m.eliminate_zeros()
    m.sort_indices()
    return m.indptr.astype(np.int64), m.indices, m.data


def normalize_rows(indptr, probs) -> np.ndarray:
    """Reference of ``fastsoft._csr._scale_rows``: rows summing to t > 0, t != 1 divided by t.

    Parameters
    ----------
    indptr : array of int, shape (n_rows + 1,)
        CSR row pointers.
    probs : array of float, shape (nnz,)
        Entries.

    Returns
    -------
    ndarray of float64, shape (nnz,)

    Examples
    --------
    >>> import numpy as np
    >>> from fastsoft import reference as ref
    >>> ref.normalize_rows(np.array([0, 2, 3]), np.array([0.5, 1.5, 1.0]))
    array([0.25, 0.75, 1.  ])
    """
    probs = np.asarray(probs, dtype=np.float64)
    sums = row_sums(indptr, probs)
    scale = np.where((sums > 0) & (sums != 1.0), sums, 1.0)
    return probs / np.repeat(scale, np.diff(indptr))


def grid_csr(dest, pm):
    """Reference of ``fastsoft._csr.grid_csr``: the four-move rows, canonicalised and normalised.

    Parameters
    ----------
    dest : array of int, shape (S, 4)
        Successor of every state under each move.
    pm : array of float, shape (A, 4)
        ``pm[a, d]``: probability of move ``d`` under action ``a``.

    Returns
    -------
    indptr, indices, probs : ndarray
        Row ``s*A + a`` sorted by successor, repeated successors summed,
        zeros dropped, divided by its sum where that is not exactly 1.

    Examples
    --------
    >>> import numpy as np
    >>> from fastsoft import reference as ref
    >>> ref.grid_csr(np.array([[0, 1, 0, 0]]), np.array([[0.5, 0.5, 0.0, 0.0]]))
    (array([0, 2]), array([0, 1], dtype=int32), array([0.5, 0.5]))
    """
    dest = np.asarray(dest)
    S, A = dest.shape[0], pm.shape[0]
    idx = np.broadcast_to(dest[:, None, :], (S, A, 4)).reshape(-1)
    p = np.broadcast_to(np.asarray(pm, dtype=np.float64)[None], (S, A, 4)).reshape(-1)
    indptr, indices, probs = canonicalize_csr(np.arange(0, S * A * 4 + 1, 4), idx, p)
    return indptr, indices, normalize_rows(indptr, probs)


def transition_matrix(mdp) -> sp.csr_matrix:
    """The ``(S*A, S)`` sparse matrix of ``P`` (float64).

    Parameters
    ----------
    mdp : TabularMDP

    Returns
    -------
    scipy.sparse.csr_matrix, shape (S*A, S)
        Row ``s*A + a`` is ``P(.|s, a)``.

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft import reference as ref
    >>> mdp = fs.random_mdp(5, 2, 3, gamma=0.9, seed=0)
    >>> ref.transition_matrix(mdp).shape
    (10, 5)
    """
    S = mdp.n_states
    return sp.csr_matrix(
        (np.asarray(mdp.probs, dtype=np.float64), mdp.indices, mdp.indptr),
        shape=(S * mdp.n_actions, S),
    )


# ----------------------------------------------------------------- the operator
def q_values(mdp, V, P=None) -> np.ndarray:
    """``Q = R + gamma P V`` with ``-inf`` kept for infeasible actions.

    Rows of ``P`` are divided by their sums (exactly stochastic rows even for
    float32 storage), as the kernels do.

    Parameters
    ----------
    mdp : TabularMDP
    V : array of float, shape (S,)
        Values of the next states.
    P : scipy.sparse matrix, optional
        :func:`transition_matrix` of ``mdp``, if already built.

    Returns
    -------
    ndarray of float64, shape (S, A)

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft import reference as ref
    >>> mdp = fs.random_mdp(5, 2, 3, gamma=0.9, seed=0)
    >>> bool(np.array_equal(ref.q_values(mdp, np.zeros(5)), mdp.rewards))
    True
    """
    P = transition_matrix(mdp) if P is None else P
    R = np.asarray(mdp.rewards, dtype=np.float64)
    sums = np.asarray(P.sum(axis=1)).ravel()
    ev = (P @ np.asarray(V, dtype=np.float64)) / np.where(sums > 0, sums, 1.0)
    ev = ev.reshape(R.shape)
    with np.errstate(invalid="ignore"):
        Q = R + mdp.gamma * ev
    Q[~np.isfinite(R)] = -np.inf
    return Q


def _log_prior(R, prior):
    feasible = np.isfinite(R)
    if prior is None:
        nf = feasible.sum(axis=1, keepdims=True)
        return np.where(feasible, -np.log(nf), -np.inf)
    with np.errstate(divide="ignore"):
        return np.log(np.broadcast_to(np.asarray(prior, dtype=np.float64), R.shape))


def _prior_shifted(Q, temperature, kl_weight, prior):
    """``(Q + eta log mu, lam)`` with ``-inf`` kept where ``Q`` is ``-inf``."""
    tau, eta = float(temperature), float(kl_weight)
    x = Q.copy()
    if eta > 0:
        with np.errstate(invalid="ignore"):
            x = Q + eta * _log_prior(Q, prior)
        x[~np.isfinite(Q)] = -np.inf
    return x, tau + eta


def regularized_max(Q, temperature, kl_weight=0.0, prior=None):
    """Closed form of ``max_pi pi.Q - eta KL(pi||mu) + tau H(pi)`` row by row.

    Returns ``(value (S,), policy (S, A))``. Mirrors the state loop of ``_sweep_block`` and
    ``_greedy_step``. ``lam = eta + tau = 0`` is the hard max with all mass on
    the lowest-index maximiser. ``prior=None`` is uniform over finite entries.

    Parameters
    ----------
    Q : array of float, shape (S, A)
        ``-inf`` marks an infeasible action.
    temperature, kl_weight : float
        ``tau, eta >= 0``.
    prior : array broadcastable to (S, A), optional
        ``mu``; uniform over the feasible actions by default.

    Returns
    -------
    value : ndarray, shape (S,)
    policy : ndarray, shape (S, A)

    Examples
    --------
    >>> import numpy as np
    >>> from fastsoft import reference as ref
    >>> value, policy = ref.regularized_max(np.array([[1.0, 0.0]]), 0.5)
    >>> value.round(6), policy.round(6)
    (array([1.063464]), array([[0.880797, 0.119203]]))
    """
    Q = np.atleast_2d(np.asarray(Q, dtype=np.float64))
    x, lam = _prior_shifted(Q, temperature, kl_weight, prior)
    if lam == 0.0:
        v = x.max(axis=1)
        pi = np.zeros_like(Q)
        pi[np.arange(Q.shape[0]), np.argmax(x, axis=1)] = 1.0
        return v, pi
    m = x.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", over="ignore"):
        z = (x - m) / lam  # <= 0: -inf at worst, even for a subnormal lam
    z[~np.isfinite(x)] = -np.inf
    v = m[:, 0] + lam * logsumexp(z, axis=1)
    pi = np.exp(z)
    pi /= pi.sum(axis=1, keepdims=True)
    return v, pi


def bellman_backup(mdp, V, temperature=0.0, kl_weight=0.0, prior=None, P=None):
    """One application of the regularized operator: ``(TV, Q, policy)``.

    Reference of ``_greedy_step`` (and of one Jacobi ``_sweep``). Terminal
    states have ``TV = 0``, ``Q = 0`` and a uniform policy over feasible actions;
    their entries of ``V`` are read as 0 (a terminal state's value is 0).

    Parameters
    ----------
    mdp : TabularMDP
    V : array of float, shape (S,)
    temperature, kl_weight : float
        ``tau, eta >= 0``.
    prior : array, optional
        ``mu`` (S, A) or (A,).
    P : scipy.sparse matrix, optional
        :func:`transition_matrix` of ``mdp``, if already built.

    Returns
    -------
    TV : ndarray, shape (S,)
    Q : ndarray, shape (S, A)
    policy : ndarray, shape (S, A)

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft import reference as ref
    >>> mdp = fs.random_mdp(5, 2, 3, gamma=0.9, seed=0)
    >>> TV, Q, policy = ref.bellman_backup(mdp, np.zeros(5), 0.1)
    >>> bool(np.allclose(TV, fs.bellman_backup(mdp, np.zeros(5), 0.1)[0]))
    True
    """
    if mdp.terminal is not None:
        V = np.where(mdp.terminal, 0.0, np.asarray(V, dtype=np.float64))
    Q = q_values(mdp, V, P)
    TV, pi = regularized_max(Q, temperature, kl_weight, prior)
    if mdp.terminal is not None:
        t = mdp.terminal
        TV[t] = 0.0
        Q[t] = 0.0
        feas = np.isfinite(np.asarray(mdp.rewards[t], dtype=np.float64))
        pi[t] = feas / feas.sum(axis=1, keepdims=True)
    return TV, Q, pi


def soft_value_iteration(mdp, temperature, kl_weight=0.0, prior=None, *, tol=1e-8,
                         max_iter=100_000, V0=None):
    """Jacobi value iteration with the span (MacQueen) certificate of docs/theory.md §2.4.

    Returns a dict with ``V`` (midpoint), ``Q``, ``policy``, ``n_iter``,
    ``error_bound``, ``converged`` and ``history`` (bound per sweep).

    Parameters
    ----------
    mdp : TabularMDP
    temperature, kl_weight : float
        ``tau, eta >= 0``.
    prior : array, optional
        ``mu`` (S, A) or (A,).
    tol : float
        Certified sup-norm error to stop at.
    max_iter : int
        Sweep cap.
    V0 : array of float, shape (S,), optional
        Start (default 0).

    Returns
    -------
    dict
        ``V``, ``Q``, ``policy``, ``n_iter``, ``error_bound``, ``converged``,
        ``history``.

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft import reference as ref
    >>> mdp = fs.random_mdp(5, 2, 3, gamma=0.9, seed=0)
    >>> r = ref.soft_value_iteration(mdp, 0.1, tol=1e-10)
    >>> fast = fs.soft_value_iteration(mdp, 0.1, tol=1e-10)
    >>> bool(r["converged"]), bool(np.abs(r["V"] - fast.V).max() < 1e-8)
    (True, True)
    """
    if mdp.gamma >= 1.0:
        raise ValueError("gamma must be < 1 for discounted value iteration")
    P = transition_matrix(mdp)
    c = mdp.gamma / (1.0 - mdp.gamma)
    nonterm = np.ones(mdp.n_states, bool) if mdp.terminal is None else ~mdp.terminal
    clamp = mdp.terminal is not None and mdp.terminal.any()
    V = np.zeros(mdp.n_states) if V0 is None else np.array(V0, dtype=np.float64)
    V[~nonterm] = 0.0
    hist = []
    lo = hi = 0.0
    converged = False
    n = 0
    for n in range(1, max_iter + 1):  # noqa: B007 (n is the sweep count after the loop)
        TV, _, _ = bellman_backup(mdp, V, temperature, kl_weight, prior, P)
        d = (TV - V)[nonterm]
        dmin, dmax = (d.min(), d.max()) if d.size else (0.0, 0.0)
        if clamp:
            dmin, dmax = min(dmin, 0.0), max(dmax, 0.0)
        lo, hi = c * dmin, c * dmax
        hist.append(0.5 * (hi - lo))
        V = TV
        if 0.5 * (hi - lo) <= tol:
            converged = True
            break
    return _vi_result(mdp, V, lo, hi, n, converged, hist, temperature, kl_weight, prior, P)


def _vi_result(mdp, V, lo, hi, n, converged, hist, temperature, kl_weight, prior, P):
    """Midpoint of the certified interval around the last sweep ``V``, and the result dict."""
    V = V.copy()
    if mdp.terminal is None:
        V += 0.5 * (lo + hi)
    else:
        V[~mdp.terminal] += 0.5 * (lo + hi)
    _, Q, pi = bellman_backup(mdp, V, temperature, kl_weight, prior, P)
    return {
        "V": V, "Q": Q, "policy": pi, "n_iter": n, "error_bound": 0.5 * (hi - lo),
        "converged": converged, "history": np.array(hist),
    }


def value_iteration(mdp, *, tol=1e-8, max_iter=100_000, V0=None):
    """Hard (``tau = eta = 0``) :func:`soft_value_iteration`.

    Parameters
    ----------
    mdp : TabularMDP
    tol, max_iter, V0
        As in :func:`soft_value_iteration`.

    Returns
    -------
    dict
        As :func:`soft_value_iteration`.

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft import reference as ref
    >>> mdp = fs.random_mdp(5, 2, 3, gamma=0.9, seed=0)
    >>> bool(ref.value_iteration(mdp, tol=1e-10)["converged"])
    True
    """
    return soft_value_iteration(mdp, 0.0, tol=tol, max_iter=max_iter, V0=V0)


def leaving_classes(mdp, labels) -> np.ndarray:
    """``(n_classes,) bool``: classes of ``labels`` with an edge to another class.

    Edges are the entries of the feasible actions of non-terminal states.
    Reference of ``fastsoft._csr._leaving_classes``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    n = int(labels.max()) + 1 if labels.size else 0
    S, A = mdp.n_states, mdp.n_actions
    live = np.isfinite(np.asarray(mdp.rewards, dtype=np.float64))
    if mdp.terminal is not None:
        live[mdp.terminal] = False
    lens = np.diff(mdp.indptr)
    src = np.repeat(np.repeat(np.arange(S), A), lens)
    keep = np.repeat(live.ravel(), lens)
    src, dst = src[keep], np.asarray(mdp.indices)[keep]
    cross = labels[src] != labels[dst]
    return np.bincount(labels[src[cross]], minlength=n) > 0


# ----------------------------------------------------------------- the speed yardstick
def plain_backup(mdp, temperature=0.0, kl_weight=0.0, prior=None):
    """A competent vectorised NumPy/SciPy Bellman backup ``V -> TV`` (no Q, no policy).

    What a careful NumPy user writes, and the yardstick of every "x NumPy" speed
    figure: ``P`` as one SciPy CSR matrix (rows divided by their sums once),
    ``R + eta log mu`` precomputed, then per call one sparse mat-vec, a row
    maximum and a row-max-shifted log-sum-exp (the hard max when
    ``tau + eta = 0``). Terminal states get 0. :func:`bellman_backup`, which also
    builds ``Q`` and the policy, stays the correctness yardstick.

    Returns a function ``T(V) -> TV``.
    """
    P = transition_matrix(mdp)
    sums = np.asarray(P.sum(axis=1)).ravel()
    P = sp.diags(1.0 / np.where(sums > 0, sums, 1.0)) @ P
    P = sp.csr_matrix(P)
    S, A = mdp.n_states, mdp.n_actions
    X, lam = _prior_shifted(np.asarray(mdp.rewards, dtype=np.float64), temperature,
                            kl_weight, prior)
    gamma = mdp.gamma
    term = mdp.terminal if mdp.terminal is not None and mdp.terminal.any() else None
    if term is not None:  # terminal values are 0: their columns are never read
        P = sp.csr_matrix(P @ sp.diags((~term).astype(np.float64)))

    def T(V):
        Q = X + gamma * (P @ V).reshape(S, A)
        m = Q.max(axis=1)
        if lam > 0:
            Q -= m[:, None]
            Q *= 1.0 / lam
            np.exp(Q, out=Q)
            m += lam * np.log(Q.sum(axis=1))
        if term is not None:
            m[term] = 0.0
        return m

    return T


def numpy_value_iteration(mdp, temperature=0.0, kl_weight=0.0, prior=None, *, tol=1e-8,
                          max_iter=100_000, V0=None):
    """Jacobi value iteration on :func:`plain_backup`, span (MacQueen) stopping rule.

    The NumPy speed yardstick of the benchmarks (``V0 = 0`` by default, as a
    user would start). Returns ``{"V", "n_iter", "error_bound", "converged"}``
    with ``V`` the midpoint of the certified interval.
    """
    T = plain_backup(mdp, temperature, kl_weight, prior)
    c = mdp.gamma / (1.0 - mdp.gamma)
    live = np.ones(mdp.n_states, bool) if mdp.terminal is None else ~mdp.terminal
    clamp = not live.all()
    V = np.zeros(mdp.n_states) if V0 is None else np.array(V0, dtype=np.float64)
    V[~live] = 0.0
    lo = hi = 0.0
    n = 0
    for n in range(1, max_iter + 1):  # noqa: B007
        TV = T(V)
        d = (TV - V)[live]
        dmin, dmax = (float(d.min()), float(d.max())) if d.size else (0.0, 0.0)
        if clamp:
            dmin, dmax = min(dmin, 0.0), max(dmax, 0.0)
        lo, hi = c * dmin, c * dmax
        V = TV
        if 0.5 * (hi - lo) <= tol:
            break
    V[live] += 0.5 * (lo + hi)
    return {"V": V, "n_iter": n, "error_bound": 0.5 * (hi - lo),
            "converged": bool(0.5 * (hi - lo) <= tol)}


def finite_horizon(mdp, horizon, temperature=0.0, kl_weight=0.0, prior=None, VT=None):
    """Backward induction; returns ``V (H+1, S)``, ``Q (H, S, A)``, ``policy (H, S, A)``.

    Parameters
    ----------
    mdp : TabularMDP
        Any discount in ``[0, 1]``.
    horizon : int
        ``H >= 1``.
    temperature, kl_weight : float
        ``tau, eta >= 0``.
    prior : array, optional
        ``mu`` (S, A) or (A,).
    VT : array of float, shape (S,), optional
        Terminal values ``V_H`` (default 0).

    Returns
    -------
    V : ndarray, shape (H + 1, S)
    Q : ndarray, shape (H, S, A)
    policy : ndarray, shape (H, S, A)

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft import reference as ref
    >>> mdp = fs.random_mdp(5, 2, 3, gamma=0.9, seed=0)
    >>> V, Q, policy = ref.finite_horizon(mdp.with_gamma(1.0), 4, 0.5)
    >>> bool(np.allclose(V, fs.soft_value_iteration(mdp.with_gamma(1.0), 0.5, horizon=4).V))
    True
    """
    S, A = mdp.n_states, mdp.n_actions
    P = transition_matrix(mdp)
    V = np.zeros((horizon + 1, S))
    if VT is not None:
        V[horizon] = VT
    if mdp.terminal is not None:
        V[horizon, mdp.terminal] = 0.0
    Q = np.zeros((horizon, S, A))
    pi = np.zeros((horizon, S, A))
    for t in range(horizon - 1, -1, -1):
        V[t], Q[t], pi[t] = bellman_backup(mdp, V[t + 1], temperature, kl_weight, prior, P)
    return V, Q, pi


def gauss_seidel_sweep(mdp, V, temperature=0.0, kl_weight=0.0, prior=None, *, reverse=False,
                       P=None):
    """One in-place Gauss-Seidel sweep (a copy of ``V`` is updated and returned).

    States are backed up one at a time in increasing (or, with ``reverse``,
    decreasing) index order, each reading the values already updated. Returns
    ``(V_new, min d, max d)`` with ``d = new - old`` over non-terminal states.
    Reference of the serial Gauss-Seidel ``_sweep``.

    Parameters
    ----------
    mdp : TabularMDP
    V : array of float, shape (S,)
        The values before the sweep (not modified).
    temperature, kl_weight : float
        ``tau, eta >= 0``.
    prior : array, optional
        ``mu`` (S, A) or (A,).
    reverse : bool
        Decreasing state order.
    P : scipy.sparse matrix, optional
        :func:`transition_matrix` of ``mdp``, if already built.

    Returns
    -------
    V_new : ndarray, shape (S,)
    dmin, dmax : float
        Extremes of ``V_new - V`` over non-terminal states.

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft import reference as ref
    >>> mdp = fs.random_mdp(5, 2, 3, gamma=0.9, seed=0)
    >>> V1, dmin, dmax = ref.gauss_seidel_sweep(mdp, np.zeros(5), 0.1)
    >>> bool(dmin <= dmax)
    True
    """
    P = transition_matrix(mdp) if P is None else P
    S, A = mdp.n_states, mdp.n_actions
    R = np.asarray(mdp.rewards, dtype=np.float64)
    sums = np.asarray(P.sum(axis=1)).ravel()
    sums = np.where(sums > 0, sums, 1.0)
    term = np.zeros(S, bool) if mdp.terminal is None else mdp.terminal
    prior_arr = None if prior is None else np.broadcast_to(np.asarray(prior, float), R.shape)
    V = np.array(V, dtype=np.float64)
    d = []
    for s in (range(S - 1, -1, -1) if reverse else range(S)):
        if term[s]:
            V[s] = 0.0
            continue
        rows = P[s * A:(s + 1) * A]
        with np.errstate(invalid="ignore"):
            q = R[s] + mdp.gamma * (rows @ V) / sums[s * A:(s + 1) * A]
        q[~np.isfinite(R[s])] = -np.inf
        pr = None if prior_arr is None else prior_arr[s:s + 1]
        new = regularized_max(q[None], temperature, kl_weight, pr)[0][0]
        d.append(new - V[s])
        V[s] = new
    return V, (min(d) if d else np.inf), (max(d) if d else -np.inf)


def anderson_value_iteration(mdp, temperature, kl_weight=0.0, prior=None, *, order="jacobi",
                             depth=2, tol=1e-8, max_iter=100_000, V0=None, ridge=1e-10):
    """Anderson-accelerated value iteration (reference of ``fastsoft._anderson``).

    The map ``G`` is one Jacobi backup (``order="jacobi"``) or a forward then a
    backward Gauss-Seidel sweep, followed by a Jacobi backup when no state is
    terminal (its span certificate is two-sided). After each map, with ``f =
    G(x) - x``, the last ``depth`` differences ``dF``, ``dG`` of ``f`` and
    ``g = G(x)`` give ``gamma = argmin |f - dF gamma|`` (normal equations with
    a ridge of ``ridge * max diag``) and the next point ``x = g - dG gamma``.
    The history restarts (next point ``g``) when a map ends with a certified
    bound above 4 times the best one so far, or when the small system is
    singular. Every sweep output is certified as in :func:`soft_value_iteration`;
    the run stops at the first one within ``tol`` and returns it (midpoint).
    Returns the same dict as :func:`soft_value_iteration`.

    Parameters
    ----------
    mdp : TabularMDP
    temperature, kl_weight : float
        ``tau, eta >= 0``.
    prior : array, optional
        ``mu`` (S, A) or (A,).
    order : {"jacobi", "gauss-seidel"}
        The map ``G``.
    depth : int
        Differences kept.
    tol, max_iter, V0
        As in :func:`soft_value_iteration`.
    ridge : float
        Relative ridge of the normal equations.

    Returns
    -------
    dict
        As :func:`soft_value_iteration`.

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoft as fs
    >>> from fastsoft import reference as ref
    >>> mdp = fs.random_mdp(5, 2, 3, gamma=0.9, seed=0)
    >>> r = ref.anderson_value_iteration(mdp, 0.1, tol=1e-10)
    >>> bool(np.abs(r["V"] - ref.soft_value_iteration(mdp, 0.1, tol=1e-10)["V"]).max() < 1e-8)
    True
    """
    if mdp.gamma >= 1.0:
        raise ValueError("gamma must be < 1 for discounted value iteration")
    P = transition_matrix(mdp)
    c = mdp.gamma / (1.0 - mdp.gamma)
    nonterm = np.ones(mdp.n_states, bool) if mdp.terminal is None else ~mdp.terminal
    has_term = not nonterm.all()
    gs = order == "gauss-seidel"
    steps = ["gs+", "gs-"] + ([] if has_term else ["jacobi"]) if gs else ["jacobi"]
    x = np.zeros(mdp.n_states) if V0 is None else np.array(V0, dtype=np.float64)
    x[~nonterm] = 0.0
    Fh: list[np.ndarray] = []  # difference histories, oldest first
    Gh: list[np.ndarray] = []
    fp = gp = None
    best = np.inf
    hist = []
    lo = hi = 0.0
    g = x
    n = 0
    converged = False
    while n < max_iter:
        g = x.copy()
        for step in steps:
            if step == "jacobi":
                TV, _, _ = bellman_backup(mdp, g, temperature, kl_weight, prior, P)
                dd = (TV - g)[nonterm]
                dmin, dmax = (dd.min(), dd.max()) if dd.size else (np.inf, -np.inf)
                g = TV
                one_sided = has_term
            else:
                g, dmin, dmax = gauss_seidel_sweep(mdp, g, temperature, kl_weight, prior,
                                                   reverse=step == "gs-", P=P)
                one_sided = True
            if dmin > dmax:
                dmin = dmax = 0.0
            if one_sided:
                dmin, dmax = min(dmin, 0.0), max(dmax, 0.0)
            lo, hi = c * dmin, c * dmax
            hist.append(0.5 * (hi - lo))
            n += 1
            if hist[-1] <= tol:
                converged = True
                break
            if n >= max_iter:
                break
        if converged or n >= max_iter:
            break
        bound = hist[-1]
        f = g - x
        if bound > 4.0 * best:
            Fh, Gh, fp, gp = [], [], None, None
        best = min(best, bound)
        if fp is None:
            fp, gp = f, g
            x = g
            continue
        Fh.append(f - fp)
        Gh.append(g - gp)
        Fh, Gh = Fh[-depth:], Gh[-depth:]
        fp, gp = f, g
        dF = np.stack(Fh, axis=1)
        H = dF.T @ dF
        dmx = np.max(np.diag(H))
        coef = None
        if dmx > 0:
            try:
                coef = np.linalg.solve(H + ridge * dmx * np.eye(len(Fh)), dF.T @ f)
            except np.linalg.LinAlgError:
                coef = None
        if coef is None or not np.all(np.isfinite(coef)):
            Fh, Gh, fp, gp = [], [], f, g
            x = g
            continue
        x = g - np.stack(Gh, axis=1) @ coef
    return _vi_result(mdp, g, lo, hi, n, converged, hist, temperature, kl_weight, prior, P)


def dictionary_codes(mdp, max_codes=256, max_row=15):
    """Reference of ``fastsoft._csr._build_codes``: code each CSR entry by its pair
    ``(successor - state, probability)``, numbered in order of first appearance.

    Returns ``(codes int64 (nnz,), offsets int64 (K,), probs float64 (K,))``, or
    None when there are more than ``max_codes`` pairs or a row has more than
    ``max_row`` entries.

    Parameters
    ----------
    mdp : TabularMDP
    max_codes : int
        Most distinct pairs allowed.
    max_row : int
        Longest row allowed.

    Returns
    -------
    tuple of ndarray, or None
        See above.

    Examples
    --------
    >>> import fastsoft as fs
    >>> from fastsoft import reference as ref
    >>> codes, offsets, probs = ref.dictionary_codes(fs.gridworld(3, 3, slip=0.1))
    >>> len(codes) == fs.gridworld(3, 3, slip=0.1).nnz
    True
    """
    A = mdp.n_actions
    probs = np.asarray(mdp.probs, dtype=np.float64)
    table: dict[tuple[int, float], int] = {}
    codes = np.empty(mdp.nnz, dtype=np.int64)
    for row in range(mdp.n_states * A):
        lo, hi = int(mdp.indptr[row]), int(mdp.indptr[row + 1])
        if hi - lo > max_row:
            return None
        for k in range(lo, hi):
            key = (int(mdp.indices[k]) - row // A, float(probs[k]))
            if key not in table:
                if len(table) == max_codes:
                    return None
                table[key] = len(table)
            codes[k] = table[key]
    pairs = list(table)
    return (codes, np.array([o for o, _ in pairs], dtype=np.int64),
            np.array([p for _, p in pairs], dtype=np.float64))


def batch_value_iteration(mdp, rewards, temperature=0.0, kl_weight=0.0, prior=None, *,
                          tol=1e-8, max_iter=100_000, V0=None):
    """Jacobi value iteration of B reward arrays at once (reference of ``_batch_run``).

    Values are iterated as one ``(S, B)`` matrix with ``P @ V``. Every column
    has its own span certificate (docs/theory.md §2); all columns sweep until
    the last is certified.

    Parameters
    ----------
    mdp : TabularMDP
        The transitions (its rewards are not used).
    rewards : array (B, S, A)
    temperature, kl_weight, prior
        The regularizer shared by all columns.
    tol : float
        Certified midpoint error every column must reach.
    max_iter : int
    V0 : array (B, S), optional
        Start (default 0).

    Returns
    -------
    dict
        ``V (B, S)`` (midpoints of the certified intervals), ``n_iter``, and
        ``lo``, ``hi``, ``bound`` (each ``(B,)``).

    Examples
    --------
    >>> import numpy as np, fastsoft as fs
    >>> from fastsoft import reference as ref
    >>> m = fs.random_mdp(20, 2, 3, gamma=0.9, seed=0)
    >>> R = np.stack([m.rewards, 2 * m.rewards])
    >>> out = ref.batch_value_iteration(m, R, tol=1e-10)
    >>> one = ref.soft_value_iteration(m.with_rewards(R[1]), 0.0, tol=1e-10)
    >>> bool(np.abs(out["V"][1] - one["V"]).max() < 1e-9)
    True
    """
    R = np.asarray(rewards, dtype=np.float64)
    B, S, A = R.shape
    P = transition_matrix(mdp)
    sums = np.asarray(P.sum(axis=1)).ravel()
    scale = np.where(sums > 0, sums, 1.0)[:, None]
    c = mdp.gamma / (1.0 - mdp.gamma)
    live = np.ones(S, bool) if mdp.terminal is None else ~mdp.terminal
    clamp = not live.all()
    V = np.zeros((S, B)) if V0 is None else np.array(np.asarray(V0, dtype=np.float64).T)
    V[~live] = 0.0
    lo = hi = np.zeros(B)
    n = 0
    for n in range(1, max_iter + 1):  # noqa: B007 (n is the sweep count after the loop)
        ev = (P @ V) / scale  # (S*A, B)
        TV = np.empty_like(V)
        for b in range(B):
            with np.errstate(invalid="ignore"):
                Q = R[b] + mdp.gamma * ev[:, b].reshape(S, A)
            Q[~np.isfinite(R[b])] = -np.inf
            TV[:, b], _ = regularized_max(Q, temperature, kl_weight, prior)
        TV[~live] = 0.0
        d = (TV - V)[live]
        dmin, dmax = (d.min(axis=0), d.max(axis=0)) if d.size else (np.zeros(B), np.zeros(B))
        if clamp:
            dmin, dmax = np.minimum(dmin, 0.0), np.maximum(dmax, 0.0)
        lo, hi = c * dmin, c * dmax
        V = TV
        if np.all(0.5 * (hi - lo) <= tol):
            break
    V = V.copy()
    V[live] += 0.5 * (lo + hi)
    return {"V": V.T, "n_iter": n, "lo": lo, "hi": hi, "bound": 0.5 * (hi - lo)}
