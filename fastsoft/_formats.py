"""Conversions between :class:`fastsoft.TabularMDP` and the layouts other libraries hold.

Private: :class:`TabularMDP`'s ``from_scipy``, ``from_quantecon``,
``from_mdptoolbox``, ``to_scipy`` and ``to_quantecon`` call these. Each one
turns its input into state-action-pair CSR arrays (row ``s*A + a``) and
leaves every check to ``TabularMDP``'s one validating builder.
"""

from __future__ import annotations

import numpy as np

#: The layouts a transition matrix may come in, named in error messages.
LAYOUTS = (
    "a dense array P[s, a, s'] of shape (S, A, S) (TabularMDP.from_dense); "
    "a scipy.sparse matrix of shape (S*A, S) whose row s*A + a is P(.|s, a), or a list of A "
    "scipy.sparse (S, S) matrices P[a][s, s'] (TabularMDP.from_scipy); "
    "mdptoolbox's (A, S, S) array or list (TabularMDP.from_mdptoolbox); "
    "a quantecon DiscreteDP (TabularMDP.from_quantecon); "
    "CSR arrays indptr, indices, probs (TabularMDP.from_csr)"
)


def is_sparse(x) -> bool:
    """Whether ``x`` is a scipy.sparse matrix or array (without importing scipy)."""
    return type(x).__module__.startswith("scipy.sparse") and hasattr(x, "tocsr")


def sparse_error(name: str, x) -> TypeError:
    """The error for a sparse matrix passed where a dense array is expected."""
    return TypeError(
        f"{name} is a scipy.sparse matrix of shape {x.shape}, which this constructor does not "
        f"take; the layouts fastsoft reads are: {LAYOUTS}"
    )


def _csr(x, name: str):
    import scipy.sparse as sp

    if is_sparse(x):
        m = sp.csr_array(x)
    else:
        arr = np.asarray(x)
        if arr.ndim != 2:
            raise ValueError(f"{name} must be two-dimensional, got shape {arr.shape}")
        m = sp.csr_array(arr)
    m.sum_duplicates()
    m.sort_indices()
    return m


def _stack_actions(mats, name: str):
    """A list of A (S, S) matrices ``M[a][s, s']`` as one (S*A, S) CSR, row ``s*A + a``."""
    import scipy.sparse as sp

    mats = [_csr(m, f"{name}[{a}]") for a, m in enumerate(mats)]
    if not mats:
        raise ValueError(f"{name} must hold at least one action's matrix")
    S = mats[0].shape[0]
    for a, m in enumerate(mats):
        if m.shape != (S, S):
            raise ValueError(f"{name}[{a}] must have shape ({S}, {S}), got {m.shape}")
    A = len(mats)
    stacked = sp.vstack(mats, format="csr")  # row a*S + s
    order = (np.arange(S)[:, None] + S * np.arange(A)[None, :]).reshape(-1)  # row s*A + a
    return stacked[order], S, A


def sa_matrix(P, name: str = "P", n_actions: int | None = None):
    """``(csr (S*A, S), S, A)`` from a (S*A, S) sparse matrix or a list of A (S, S) ones."""
    if isinstance(P, (list, tuple)):
        return _stack_actions(P, name)
    if not is_sparse(P) and np.ndim(P) == 3:
        return _stack_actions(list(np.asarray(P)), name)
    m = _csr(P, name)
    n_rows, S = m.shape
    if S == 0 or n_rows % S:
        raise ValueError(
            f"{name} must have shape (S*A, S) (row s*A + a holds P(.|s, a)), got {m.shape}"
        )
    A = n_rows // S
    if n_actions is not None and A != n_actions:
        raise ValueError(f"{name} has {A} actions per state ({m.shape}), expected {n_actions}")
    return m, S, A


def expected_from_transition_rewards(P, Rt, name: str = "R"):
    """``R(s, a) = sum_s' P(s'|s, a) R(s, a, s')`` with ``Rt`` in the layout of ``P``."""
    Rm, S, A = sa_matrix(Rt, name, n_actions=None)
    if Rm.shape != P.shape:
        raise ValueError(f"{name} per transition must have the layout of P {P.shape}, "
                         f"got {Rm.shape}")
    return np.asarray(P.multiply(Rm).sum(axis=1)).reshape(-1)


def from_scipy_arrays(P, R, n_actions=None):
    """CSR arrays and ``R (S, A)`` from :meth:`TabularMDP.from_scipy`'s arguments."""
    m, S, A = sa_matrix(P, "P", n_actions)
    if is_sparse(R) or isinstance(R, (list, tuple)) or np.ndim(R) == 3:
        R = expected_from_transition_rewards(m, R).reshape(S, A)
    else:
        R = np.asarray(R)
        if R.shape == (S * A,):
            R = R.reshape(S, A)
        if R.shape != (S, A):
            raise ValueError(f"R must have shape (S, A) = {(S, A)}, (S*A,), or the layout of "
                             f"P for a reward per transition; got {R.shape}")
    return m.indptr.astype(np.int64), m.indices, m.data, R, S, A


def from_mdptoolbox_arrays(P, R):
    """CSR arrays and ``R (S, A)`` from mdptoolbox's ``P`` and ``R``.

    ``P``: (A, S, S) array, or a list/tuple of A (S, S) dense or sparse
    matrices. ``R``: (S,) per state, (S, A), (A, S, S) per transition, or a
    list of A (S, S) matrices per transition.
    """
    if is_sparse(P):
        raise TypeError("mdptoolbox's P is an (A, S, S) array or a list of A (S, S) matrices, "
                        f"got one sparse matrix of shape {P.shape} (use TabularMDP.from_scipy)")
    mats = list(P) if isinstance(P, (list, tuple)) else list(np.asarray(P))
    m, S, A = _stack_actions(mats, "P")
    if isinstance(R, (list, tuple)) or (not is_sparse(R) and np.ndim(R) == 3):
        Rt = list(R) if isinstance(R, (list, tuple)) else list(np.asarray(R))
        if len(Rt) != A:
            raise ValueError(f"R per transition must hold A = {A} matrices, got {len(Rt)}")
        Rm, _, _ = _stack_actions(Rt, "R")
        R = np.asarray(m.multiply(Rm).sum(axis=1)).reshape(S, A)
    else:
        R = np.asarray(R)
        if R.shape == (S,):
            R = np.repeat(R[:, None], A, axis=1)
        elif R.shape != (S, A):
            raise ValueError(f"R must have shape (S,) = ({S},), (S, A) = {(S, A)}, "
                             f"(A, S, S) or be a list of A (S, S) matrices; got {R.shape}")
    return m.indptr.astype(np.int64), m.indices, m.data, R, S, A


def from_quantecon_arrays(ddp):
    """CSR arrays, ``R (S, A)`` (``-inf`` where infeasible) and ``beta`` of a DiscreteDP."""
    import scipy.sparse as sp

    for attr in ("R", "Q", "beta", "num_states"):
        if not hasattr(ddp, attr):
            raise TypeError(f"ddp must be a quantecon DiscreteDP (no attribute {attr!r})")
    S = int(ddp.num_states)
    R = np.asarray(ddp.R, dtype=np.float64)
    if getattr(ddp, "_sa_pair", R.ndim == 1):
        s_idx = np.asarray(ddp.s_indices, dtype=np.int64)
        a_idx = np.asarray(ddp.a_indices, dtype=np.int64)
        A = int(a_idx.max()) + 1 if a_idx.size else 1
        Q = _csr(ddp.Q, "ddp.Q")
        rows = s_idx * A + a_idx
        if np.unique(rows).size != rows.size:
            raise ValueError("ddp lists a state-action pair twice")
        full = np.full(S * A, -np.inf)
        full[rows] = R
        # the pairs' rows of Q moved to rows s*A + a; absent pairs get empty rows
        perm = sp.csr_array((np.ones(rows.size), (rows, np.arange(rows.size))),
                            shape=(S * A, rows.size))
        m = perm @ Q
        m.sum_duplicates()
        m.sort_indices()
        return m.indptr.astype(np.int64), m.indices, m.data, full.reshape(S, A), S, A
    A = R.shape[1]
    Q = np.asarray(ddp.Q, dtype=np.float64).reshape(S * A, S)
    Q = np.where((R > -np.inf).reshape(-1, 1), Q, 0.0)  # rows of infeasible pairs are unused
    m = _csr(Q, "ddp.Q")
    return m.indptr.astype(np.int64), m.indices, m.data, R, S, A


def to_scipy_matrix(mdp):
    """``P`` as a float64 ``scipy.sparse.csr_array`` of shape (S*A, S) (row ``s*A + a``)."""
    import scipy.sparse as sp

    S, A = mdp.n_states, mdp.n_actions
    return sp.csr_array(
        (np.array(mdp.probs, dtype=np.float64), np.array(mdp.indices),
         np.array(mdp.indptr)), shape=(S * A, S))


def to_quantecon_ddp(mdp, sa_pair: bool | None):
    """A quantecon ``DiscreteDP`` with the same optimal (unregularized) values.

    Terminal states become zero-reward self-loops (one feasible action), whose
    hard value is 0 as a terminal state's is.
    """
    from quantecon.markov import DiscreteDP

    if not mdp.gamma < 1.0:
        raise ValueError(f"quantecon's DiscreteDP needs gamma < 1, got {mdp.gamma}")
    S, A = mdp.n_states, mdp.n_actions
    P = to_scipy_matrix(mdp).tolil()
    R = np.array(mdp.rewards, dtype=np.float64).reshape(-1)
    if mdp.has_terminal:
        for s in np.flatnonzero(mdp.terminal):
            a0 = int(np.argmax(mdp.rewards[s] > -np.inf))
            for a in range(A):
                P.rows[s * A + a] = [s] if a == a0 else []
                P.data[s * A + a] = [1.0] if a == a0 else []
                R[s * A + a] = 0.0 if a == a0 else -np.inf
    P = P.tocsr()
    if sa_pair is None:
        sa_pair = S * A * S > 1_000_000
    if not sa_pair:
        return DiscreteDP(R.reshape(S, A), P.toarray().reshape(S, A, S), mdp.gamma)
    keep = np.flatnonzero(R > -np.inf)
    return DiscreteDP(R[keep], P[keep], mdp.gamma, keep // A, keep % A)
