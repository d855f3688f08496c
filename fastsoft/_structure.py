"""Closed sets of an MDP, found once and solved exactly (or separately) before the rest.

A set ``C`` of non-terminal states is *closed* when no feasible action of a
state in ``C`` reaches a state outside ``C``; its values then depend on ``C``
alone. Value iteration over the whole MDP moves a closed set's constant offset
only by the factor ``gamma`` per sweep (``T(V + k) = TV + gamma k`` on ``C``),
so a zero-reward absorbing goal written as a self-loop costs
``log(1/tol) / (1 - gamma)`` sweeps whatever the sweep order. Instead:

- a closed singleton (every feasible action returns to the state with
  probability 1) has the closed form ``V(s) = m(s) / (1 - gamma)`` with
  ``m(s) = (T 0)(s) = lam log sum_a exp((R(s,a) + eta log mu(a|s)) / lam)``
  (``max_a R(s, a)`` when ``lam = 0``); not 0 when ``tau > 0``;
- the small closed classes together (a block-diagonal system) are solved by
  policy iteration with exact (sparse LU) evaluation, whose error has no
  ``gamma^k`` mode;
- a few large closed classes are solved one by one, each as an MDP of its own;
- the other states are then solved on the *reduced* MDP in which the closed
  states are terminal and every pair ``(s, a)`` collects
  ``gamma sum_{s' closed} P(s'|s,a) V(s')`` as extra reward: the same fixed
  point on the remaining states (exactly), with the terminal-state sweeps and
  certificates.

The argument for the certificate is in ``docs/closed_sets.md``. Detection is
one strongly-connected-components pass (SciPy) over the support graph and one
pass over the CSR (:func:`fastsoft._csr._leaving_classes`), cached on the MDP.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from . import _csr
from ._bundles import memo, share_transition_cache
from .mdp import TabularMDP

#: Closed classes of at most this many states are solved together by policy
#: iteration with a sparse LU evaluation (their system is block-diagonal).
SMALL_CLASS = 4096

#: At most this many larger closed classes are solved one by one (each is an
#: MDP of its own); further ones are iterated with the rest.
MAX_LARGE_CLASSES = 8

_CACHE_KEY = "closed_structure"


@dataclass(frozen=True)
class ClosedStructure:
    """Closed sets of non-terminal states (see the module docstring).

    ``selfloops``: states every feasible action of which returns to them;
    ``small``: the states of the closed classes of 2 to :data:`SMALL_CLASS`
    states (sorted); ``large``: the larger closed classes, one sorted array
    each (at most :data:`MAX_LARGE_CLASSES`). A closed class that holds every
    non-terminal state is not listed (nothing to split off).
    """

    selfloops: np.ndarray
    small: np.ndarray
    large: tuple[np.ndarray, ...]
    n_classes: int

    @property
    def n_closed(self) -> int:
        return int(self.selfloops.size + self.small.size + sum(c.size for c in self.large))


def live_rows(mdp: TabularMDP) -> np.ndarray:
    """``(S*A,) uint8``: 1 for a feasible action of a non-terminal state."""
    live = mdp.feasible.copy()
    if mdp.has_terminal:
        live[mdp.terminal] = False
    return live.reshape(-1).view(np.uint8)


def support_graph(mdp: TabularMDP, rows: np.ndarray) -> sp.csr_matrix:
    """State-to-state support graph: ``s -> s'`` when a live row of ``s`` reaches ``s'``."""
    S, A = mdp.n_states, mdp.n_actions
    lens = np.diff(mdp.indptr)
    if rows.all():
        ptr = mdp.indptr[::A]
        idx = mdp.indices
    else:
        keep = np.repeat(rows.astype(bool), lens)
        idx = mdp.indices[keep]
        ptr = np.zeros(S + 1, dtype=np.int64)
        np.cumsum((lens * rows).reshape(S, A).sum(axis=1), out=ptr[1:])
    data = np.ones(idx.shape[0], dtype=np.int8)
    return sp.csr_matrix((data, idx, ptr), shape=(S, S))


def closed_structure(mdp: TabularMDP) -> ClosedStructure:
    """The closed sets of ``mdp`` (cached on it)."""
    return memo(mdp, _CACHE_KEY, lambda: _closed_structure(mdp))


def _closed_structure(mdp: TabularMDP) -> ClosedStructure:
    S, A = mdp.n_states, mdp.n_actions
    rows = live_rows(mdp)
    n, labels = connected_components(support_graph(mdp, rows), directed=True,
                                     connection="strong")
    labels = labels.astype(np.int64)
    leaves = np.empty(n, dtype=np.uint8)
    _csr._leaving_classes(mdp.indptr, mdp.indices, rows, A, labels, leaves)
    closed = leaves == 0
    if mdp.has_terminal:
        closed[labels[mdp.terminal]] = False  # terminal states: already fixed at 0
    n_live = S - (int(mdp.terminal.sum()) if mdp.has_terminal else 0)
    size = np.bincount(labels, minlength=n)
    closed &= size < n_live  # the whole MDP is one closed class: nothing to split off
    is_closed = closed[labels]
    states = np.flatnonzero(is_closed)
    lab = labels[states]
    sz = size[lab]
    selfloops = states[sz == 1]
    small = states[(sz > 1) & (sz <= SMALL_CLASS)]
    big = states[sz > SMALL_CLASS]
    large: list[np.ndarray] = []
    if big.size:
        order = np.argsort(labels[big], kind="stable")
        big = big[order]
        cuts = np.flatnonzero(np.diff(labels[big])) + 1
        large = [np.sort(g) for g in np.split(big, cuts)]
        large.sort(key=len, reverse=True)
        large = large[:MAX_LARGE_CLASSES]
    out = ClosedStructure(selfloops=selfloops, small=small, large=tuple(large),
                          n_classes=int(np.count_nonzero(closed)))
    for a in (out.selfloops, out.small, *out.large):
        a.flags.writeable = False
    return out


def restrict(mdp: TabularMDP, states: np.ndarray) -> TabularMDP:
    """The MDP on a closed set of ``states`` (sorted), renumbered ``0..len-1``."""
    S, A = mdp.n_states, mdp.n_actions
    pairs = (states[:, None] * A + np.arange(A)).ravel()
    lo, hi = mdp.indptr[pairs], mdp.indptr[pairs + 1]
    lens = hi - lo
    ptr = np.zeros(pairs.size + 1, dtype=np.int64)
    np.cumsum(lens, out=ptr[1:])
    take = np.repeat(lo - ptr[:-1], lens) + np.arange(ptr[-1])
    new = np.full(S, -1, dtype=np.int64)
    new[states] = np.arange(states.size)
    idx = new[mdp.indices[take]]
    # Feasible rows of a closed set stay inside it; an infeasible action's row may
    # leave it and is emptied (its reward is -inf, its row is never read).
    inside = idx >= 0
    if not inside.all():
        row_of = np.repeat(np.arange(pairs.size), lens)
        lens = np.bincount(row_of[inside], minlength=pairs.size)
        np.cumsum(lens, out=ptr[1:])
        take, idx = take[inside], idx[inside]
    R = np.array(mdp.rewards[states])
    # The stored rows, bit for bit (renumbering a sorted set of states keeps each
    # row sorted, so the rows stay canonical): re-validating through ``from_csr``
    # would renormalise float32 rows and so change the operator the certificate
    # speaks of.
    return TabularMDP(ptr, idx.astype(mdp.indices.dtype), np.array(mdp.probs[take]), R,
                      mdp.gamma, None, None, {})


def reduced(mdp: TabularMDP, frozen: np.ndarray,
            values: np.ndarray) -> tuple[TabularMDP, float]:
    """The MDP with the ``frozen`` states terminal and their ``values`` paid as reward.

    ``R'(s, a) = R(s, a) + gamma sum_{s' frozen} P(s'|s,a) values[s']`` (rows
    divided by their sums, as the kernels read them); the transitions are shared.
    Returns the MDP and ``delta``, the largest change of a reward ``R'`` by its
    rounding to the storage dtype (0 in float64): the reduced MDP's values then
    move by at most ``delta / (1 - gamma)``, which the caller's bound adds.
    """
    S, A = mdp.n_states, mdp.n_actions
    v = np.where(frozen, values, 0.0)
    P = sp.csr_matrix((np.asarray(mdp.probs, dtype=np.float64), mdp.indices, mdp.indptr),
                      shape=(S * A, S))
    sums = P @ np.ones(S)
    ev = (P @ v) / np.where(sums > 0, sums, 1.0)
    R = np.asarray(mdp.rewards, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        R2 = np.where(np.isfinite(R), R + mdp.gamma * ev.reshape(S, A), R)
    R2[frozen] = R[frozen]
    term = frozen.copy() if not mdp.has_terminal else (frozen | mdp.terminal)
    R2s = R2.astype(mdp.dtype)
    fin = np.isfinite(R2)
    delta = float(np.abs(R2s[fin].astype(np.float64) - R2[fin]).max()) if fin.any() else 0.0
    out = TabularMDP(mdp.indptr, mdp.indices, mdp.probs, R2s, mdp.gamma, term,
                     mdp.initial, dict(mdp.info))
    share_transition_cache(mdp, out)  # transitions only: shared
    return out, delta


#: ``"auto"`` policy evaluation factorises ``I - gamma P_pi`` only when the
#: envelope bound on the factor's size stays below this many entries (80 MB).
DIRECT_MAX_FILL = 10_000_000


def envelope_fill(mdp: TabularMDP) -> int:
    """Upper estimate of the LU fill of any policy's ``I - gamma P_pi`` (cached).

    The symmetrised support graph ordered by reverse Cuthill-McKee has some
    bandwidth ``b``; every policy matrix is a subgraph, so its factors in that
    order fit in the band: at most ``S (2 b + 1)`` entries. Chains and banded
    MDPs give a few entries per state, a ``n x n`` grid about ``2 n`` per
    state, Garnet-style random MDPs ``~ S`` per state (dense factors).
    """
    c = mdp._cache
    if "envelope_fill" not in c:
        from scipy.sparse.csgraph import reverse_cuthill_mckee

        G = support_graph(mdp, live_rows(mdp))
        G = (G + G.T).tocsr()
        perm = reverse_cuthill_mckee(G, symmetric_mode=True)
        pos = np.empty(mdp.n_states, dtype=np.int64)
        pos[perm] = np.arange(mdp.n_states)
        rows = np.repeat(np.arange(mdp.n_states), np.diff(G.indptr))
        b = int(np.abs(pos[rows] - pos[G.indices]).max()) if G.nnz else 0
        c["envelope_fill"] = mdp.n_states * (2 * b + 1)
    return c["envelope_fill"]
