"""The tabular MDP data model: :class:`TabularMDP` (docs/theory.md §1).

Storage of record is "state-action-pair CSR": row ``s * A + a`` holds the
successors of ``(s, a)``. ``indptr`` is ``int64 (S*A + 1,)``, ``indices`` the
next states (``int32`` while ``S < 2**31``, else ``int64``), ``probs`` their
probabilities. Rows are canonical: sorted by successor, duplicates merged,
no zero entries.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from . import _csr, _formats
from ._validation import (
    ROW_SUM_ATOL,
    check_distribution,
    check_float_dtype,
    check_gamma,
    index_array,
    real_array,
)

__all__ = ["TabularMDP"]

#: A row of ``n`` probabilities normalised in a floating dtype with machine
#: epsilon ``eps`` may sum to 1 only within about ``n * eps`` (each entry is
#: rounded once, the sum accumulates one rounding per term); rows are accepted
#: within ``max(ROW_SUM_ATOL, ROW_SUM_ULPS * eps * n)`` of 1, with ``eps`` of the
#: dtype the probabilities came in (2e-7 for two float32 entries).
ROW_SUM_ULPS = 4.0


def _row_tolerance(probs: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Per-row tolerance of the row-sum check for probabilities of ``probs``' dtype."""
    dt = probs.dtype if np.issubdtype(probs.dtype, np.floating) else np.dtype(np.float64)
    eps = float(np.finfo(dt).eps)
    return np.maximum(ROW_SUM_ATOL, ROW_SUM_ULPS * eps * np.diff(indptr))


def _as_real_array(x, name: str) -> np.ndarray:
    if _formats.is_sparse(x):
        raise _formats.sparse_error(name, x)
    return real_array(x, name)


def _as_index_array(x, name: str) -> np.ndarray:
    if _formats.is_sparse(x):
        raise _formats.sparse_error(name, x)
    return index_array(x, name)


def _row_to_sa(row: int, n_actions: int) -> tuple[int, int]:
    return int(row // n_actions), int(row % n_actions)


def _entry_to_sa(indptr: np.ndarray, k: int, n_actions: int) -> tuple[int, int]:
    row = int(np.searchsorted(indptr, k, side="right") - 1)
    return _row_to_sa(row, n_actions)


def _freeze(*arrays):
    for a in arrays:
        if a is not None:
            a.flags.writeable = False


def _check_gym_table(P, S: int) -> None:
    """Validate a gymnasium toy-text table ``P[s][a] = [(prob, next_state, reward, terminated)]``.

    Raises ValueError/TypeError naming the state, action and outcome at fault.
    """
    for s in range(S):
        row = P[s]
        if not isinstance(row, Mapping) or not row:
            raise TypeError(f"env.unwrapped.P[{s}] must be a non-empty dict action -> outcomes, "
                            f"got {type(row).__name__}")
        keys = list(row)
        if not all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in keys):
            bad = next(a for a in keys if not isinstance(a, numbers.Integral)
                       or isinstance(a, bool))
            raise ValueError(f"env.unwrapped.P[{s}]: action keys must be the integers "
                             f"0..{len(keys) - 1}, got {bad!r}")
        if sorted(int(a) for a in keys) != list(range(len(keys))):
            raise ValueError(f"env.unwrapped.P[{s}]: action keys must be 0..{len(keys) - 1}, "
                             f"got {sorted(keys)}")
        for a in range(len(keys)):
            outs = row[a]
            try:
                outs = list(outs)
            except TypeError:
                raise TypeError(f"env.unwrapped.P[{s}][{a}] must be a list of outcomes, got "
                                f"{type(outs).__name__}") from None
            for i, o in enumerate(outs):
                where = f"env.unwrapped.P[{s}][{a}][{i}]"
                if not isinstance(o, (tuple, list)) or len(o) != 4:
                    got = (f"{len(o)} values" if isinstance(o, (tuple, list))
                           else type(o).__name__)
                    raise ValueError(f"{where} must be a tuple (prob, next_state, reward, "
                                     f"terminated), got {got}")
                prob, ns, r, _done = o
                if not isinstance(ns, numbers.Integral) or isinstance(ns, bool):
                    raise ValueError(f"{where}: next state must be an integer, got {ns!r}")
                if not 0 <= int(ns) < S:
                    raise ValueError(f"{where}: next state {int(ns)} out of range [0, {S}) "
                                     f"(state {s}, action {a})")
                if not isinstance(prob, numbers.Real) or not (0.0 <= float(prob) <= 1.0):
                    raise ValueError(f"{where}: probability must be a real in [0, 1], "
                                     f"got {prob!r}")
                if not isinstance(r, numbers.Real) or math.isnan(float(r)) or float(r) == math.inf:
                    # -inf marks an infeasible action
                    raise ValueError(f"{where}: reward must be a real < inf, got {r!r}")


class TabularMDP:
    """An immutable finite MDP in state-action-pair CSR form.

    Use the constructors :meth:`from_dense`, :meth:`from_csr` and
    :meth:`from_gymnasium` (or the generators :func:`fastsoft.gridworld`,
    :func:`fastsoft.random_mdp`, ...) rather than ``__init__``.

    Attributes
    ----------
    n_states, n_actions : int
        ``S`` and ``A``.
    gamma : float
        Discount factor in ``[0, 1]`` (``1`` only for finite-horizon use).
    indptr : ndarray of int64, shape (S*A + 1,)
        Row pointers; row ``s*A + a`` holds the successors of ``(s, a)``.
    indices : ndarray of int32 or int64, shape (nnz,)
        Next states, sorted and unique within each row.
    probs : ndarray of float64 or float32, shape (nnz,)
        Transition probabilities ``P(s' | s, a)``.
    rewards : ndarray, shape (S, A)
        Expected immediate reward ``R(s, a)``; ``-inf`` marks an infeasible action.
    terminal : ndarray of bool, shape (S,), or None
        Terminal states: their value is 0 under every regularizer.
    initial : ndarray, shape (S,), or None
        Initial-state distribution of episodic tasks.
    info : mapping
        Read-only metadata (e.g. ``{"grid": (rows, cols), "walls": ..., "goals": ...}``).
    """

    # attribute types for type checkers (set once in __init__; slots hold the values)
    n_states: int
    n_actions: int
    gamma: float
    indptr: np.ndarray
    indices: np.ndarray
    probs: np.ndarray
    rewards: np.ndarray
    terminal: np.ndarray | None
    initial: np.ndarray | None
    info: Mapping[str, Any]
    _cache: dict[Any, Any]
    _frozen: bool

    __slots__ = (
        "n_states",
        "n_actions",
        "gamma",
        "indptr",
        "indices",
        "probs",
        "rewards",
        "terminal",
        "initial",
        "info",
        "_cache",
        "_frozen",
    )

    def __init__(self, indptr, indices, probs, rewards, gamma, terminal, initial, info):
        # trusted constructor: arrays are already validated and canonical
        set_ = object.__setattr__
        set_(self, "n_states", int(rewards.shape[0]))
        set_(self, "n_actions", int(rewards.shape[1]))
        set_(self, "gamma", float(gamma))
        set_(self, "indptr", indptr)
        set_(self, "indices", indices)
        set_(self, "probs", probs)
        set_(self, "rewards", rewards)
        set_(self, "terminal", terminal)
        set_(self, "initial", initial)
        set_(self, "info", MappingProxyType(dict(info or {})))
        set_(self, "_cache", {})  # derived arrays (kernel views); never part of equality
        _freeze(indptr, indices, probs, rewards, terminal, initial)
        set_(self, "_frozen", True)

    def __setattr__(self, name, value):
        raise AttributeError("TabularMDP is immutable; use with_rewards / with_gamma / astype")

    def __delattr__(self, name):
        raise AttributeError("TabularMDP is immutable")

    def __reduce__(self):
        # Pickle and deepcopy rebuild through the trusted constructor: the arrays
        # were validated once, so unpickling costs no re-validation; the derived
        # cache is not shipped, and ``__init__`` makes the arrays read-only again.
        return (
            TabularMDP,
            (self.indptr, self.indices, self.probs, self.rewards, self.gamma, self.terminal,
             self.initial, dict(self.info)),
        )

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_csr(
        cls,
        indptr,
        indices,
        probs,
        R,
        gamma: float,
        *,
        terminal=None,
        initial=None,
        dtype=np.float64,
        info: Mapping[str, Any] | None = None,
        n_actions: int | None = None,
    ) -> TabularMDP:
        """Build from state-action-pair CSR arrays.

        Parameters
        ----------
        indptr : array of int, shape (S*A + 1,)
            Row pointers (row ``s*A + a`` is the pair ``(s, a)``).
        indices : array of int, shape (nnz,)
            Next states.
        probs : array of float, shape (nnz,)
            Transition probabilities; every feasible, non-terminal row sums to 1
            within ``max(1e-8, ROW_SUM_ULPS * eps * n)`` for a row of ``n`` entries
            and ``eps`` of ``probs``' dtype (so float32-normalised rows pass).
            Duplicate successors are merged.
        R : array of float, shape (S, A) or (nnz,)
            Expected rewards, or a reward per transition (reduced to the
            expectation; then ``n_actions`` is needed). ``-inf`` in an (S, A)
            array marks an infeasible action.
        gamma : float
            Discount in ``[0, 1]``.
        terminal : array of bool, shape (S,), optional
        initial : array of float, shape (S,), optional
        dtype : {float64, float32}
            Storage dtype of ``probs`` and ``rewards``.
        info : mapping, optional
            Metadata kept read-only in :attr:`info` (e.g. ``{"grid": (rows, cols)}``).
        n_actions : int, optional
            ``A``, needed with a reward per transition (``S = (len(indptr) - 1) / A``).

        Returns
        -------
        TabularMDP

        Examples
        --------
        Two states, two actions; action 1 of state 0 moves to state 1:

        >>> import numpy as np
        >>> import fastsoft as fs
        >>> indptr = np.array([0, 1, 2, 3, 4])     # rows (0,0) (0,1) (1,0) (1,1)
        >>> indices = np.array([0, 1, 1, 1])
        >>> probs = np.ones(4)
        >>> R = np.array([[0.0, 1.0], [0.5, 0.5]])
        >>> mdp = fs.TabularMDP.from_csr(indptr, indices, probs, R, gamma=0.9)
        >>> mdp.n_states, mdp.n_actions, mdp.nnz
        (2, 2, 4)

        A reward per transition needs ``n_actions``:

        >>> fs.TabularMDP.from_csr([0, 2], [0, 0], [0.5, 0.5], [1.0, 3.0], 0.9,
        ...                        n_actions=1).rewards
        array([[2.]])
        """
        dt = check_float_dtype(dtype)
        gamma = check_gamma(gamma)
        indptr = _as_index_array(indptr, "indptr").astype(np.int64, copy=False)
        indices = _as_index_array(indices, "indices")
        probs = _as_real_array(probs, "probs")
        if probs.ndim != 1:
            raise ValueError(f"probs must be one-dimensional, got shape {probs.shape}")
        nnz = probs.shape[0]
        if indices.shape[0] != nnz:
            raise ValueError(
                f"indices and probs must have the same length, got {indices.shape[0]} and {nnz}"
            )
        R = _as_real_array(R, "R")
        trans_R = None
        if R.ndim == 2:
            n_states, n_actions_R = R.shape
            if n_actions is not None and int(n_actions) != n_actions_R:
                raise ValueError(f"R has {n_actions_R} actions, n_actions says {n_actions}")
            n_actions = n_actions_R
        elif R.ndim == 1 and R.shape[0] == nnz:
            if n_actions is None:
                raise ValueError(
                    "R must have shape (S, A), or (nnz,) for a reward per transition "
                    "together with n_actions (S = (len(indptr) - 1) / n_actions)"
                )
            n_actions = int(n_actions)
            n_rows = indptr.shape[0] - 1
            if n_actions <= 0 or n_rows % n_actions:
                raise ValueError(f"len(indptr) - 1 = {n_rows} is not a multiple of "
                                 f"n_actions = {n_actions}")
            n_states = n_rows // n_actions
            if not np.all(np.isfinite(R)):
                k = int(np.argmax(~np.isfinite(R)))
                s, a = _entry_to_sa(indptr, k, n_actions)
                raise ValueError(
                    f"R(s, a, s') must be finite; first offending (s, a) = ({s}, {a})"
                )
            trans_R, R = R, None
        else:
            raise ValueError(f"R must have shape (S, A) or (nnz,) = ({nnz},), got {R.shape}")
        return cls._build(
            indptr, indices, probs, R, trans_R, n_states, n_actions, gamma, terminal, initial,
            dt, info
        )

    @classmethod
    def from_dense(
        cls,
        P,
        R,
        gamma: float,
        *,
        terminal=None,
        initial=None,
        dtype=np.float64,
        info: Mapping[str, Any] | None = None,
    ) -> TabularMDP:
        """Build from a dense transition tensor.

        Parameters
        ----------
        P : array of float, shape (S, A, S)
            ``P[s, a, s']``.
        R : array of float, shape (S, A) or (S, A, S)
            Expected reward, or reward per transition ``R(s, a, s')`` (reduced to
            ``sum_s' P R``). ``-inf`` in an (S, A) array marks an infeasible action.
        gamma : float
            Discount in ``[0, 1]``.
        terminal, initial, dtype, info
            As in :meth:`from_csr`.

        Returns
        -------
        TabularMDP

        Examples
        --------
        >>> import numpy as np
        >>> import fastsoft as fs
        >>> P = np.full((3, 2, 3), 1 / 3)
        >>> R = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
        >>> mdp = fs.TabularMDP.from_dense(P, R, gamma=0.9)
        >>> mdp.nnz
        18
        """
        dt = check_float_dtype(dtype)
        gamma = check_gamma(gamma)
        P = _as_real_array(P, "P")
        if P.ndim != 3 or P.shape[0] != P.shape[2]:
            raise ValueError(f"P must have shape (S, A, S), got {P.shape}")
        n_states, n_actions, _ = P.shape
        if n_states == 0 or n_actions == 0:
            raise ValueError(f"P must have at least one state and one action, got {P.shape}")
        R = real_array(R, "R")
        flat = P.reshape(n_states * n_actions, n_states)
        rows, cols = np.nonzero(flat)
        indptr = np.zeros(n_states * n_actions + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_states * n_actions), out=indptr[1:])
        probs = flat[rows, cols]
        if R.shape == (n_states, n_actions, n_states):
            if not np.all(np.isfinite(R)):
                s, a, _ = np.argwhere(~np.isfinite(R))[0]
                raise ValueError(
                    f"R(s, a, s') must be finite; first offending (s, a) = ({s}, {a})"
                )
            trans_R = R.reshape(n_states * n_actions, n_states)[rows, cols]
            R = None
        elif R.shape == (n_states, n_actions):
            trans_R = None
        else:
            raise ValueError(
                f"R must have shape (S, A) = {(n_states, n_actions)} or (S, A, S), got {R.shape}"
            )
        return cls._build(
            indptr,
            cols,
            probs,
            R,
            trans_R,
            n_states,
            n_actions,
            gamma,
            terminal,
            initial,
            dt,
            info,
        )

    @classmethod
    def _build(
        cls, indptr, indices, probs, R, trans_R, n_states, n_actions, gamma, terminal, initial,
        dt, info, *, owned=False,
    ) -> TabularMDP:
        # owned: the caller hands over ``indices`` and ``probs`` (temporaries of a
        # builder), which may then be sorted and rescaled in place instead of copied
        S, A = int(n_states), int(n_actions)
        if S <= 0 or A <= 0:
            raise ValueError(f"need at least one state and one action, got S={S}, A={A}")
        n_rows = S * A
        if indptr.shape[0] != n_rows + 1:
            raise ValueError(f"indptr must have length S*A+1 = {n_rows + 1}, got {indptr.shape[0]}")
        nnz = probs.shape[0]
        if indptr[0] != 0 or indptr[-1] != nnz:
            raise ValueError(f"indptr must start at 0 and end at nnz = {nnz}")
        steps = np.diff(indptr)
        if np.any(steps < 0):
            s, a = _row_to_sa(int(np.argmax(steps < 0)), A)
            raise ValueError(f"indptr must be non-decreasing; first offending (s, a) = ({s}, {a})")
        idx_dtype = np.int32 if S < 2**31 - 1 else np.int64
        if nnz:
            bad = (indices < 0) | (indices >= S)
            if bad.any():
                k = int(np.argmax(bad))
                s, a = _entry_to_sa(indptr, k, A)
                raise ValueError(
                    f"indices: next state {int(indices[k])} out of range [0, {S}) "
                    f"at (s, a) = ({s}, {a})"
                )
            if not np.all(np.isfinite(probs)):
                s, a = _entry_to_sa(indptr, int(np.argmax(~np.isfinite(probs))), A)
                raise ValueError(f"probs must be finite; first offending (s, a) = ({s}, {a})")
            if np.any(probs < 0):
                s, a = _entry_to_sa(indptr, int(np.argmax(probs < 0)), A)
                raise ValueError(f"probs must be non-negative; first offending (s, a) = ({s}, {a})")
        idx_in, probs_in = indices, probs
        indices = np.ascontiguousarray(indices, dtype=idx_dtype)
        probs64 = np.ascontiguousarray(probs, dtype=np.float64)
        own_idx = owned or not np.may_share_memory(indices, idx_in)
        own_p = owned or not np.may_share_memory(probs64, probs_in)
        del idx_in
        if trans_R is not None:
            R = _csr.expected_rewards(
                indptr, probs64, np.ascontiguousarray(trans_R, dtype=np.float64)
            ).reshape(S, A)
        R = np.array(R, dtype=np.float64)
        if R.shape != (S, A):
            raise ValueError(f"R must have shape (S, A) = {(S, A)}, got {R.shape}")
        if np.any(np.isnan(R)) or np.any(R == np.inf):
            s, a = np.argwhere(np.isnan(R) | (R == np.inf))[0]
            raise ValueError(f"R must not hold NaN or +inf; first offending (s, a) = ({s}, {a})")
        feasible = R > -np.inf
        no_action = ~feasible.any(axis=1)
        if no_action.any():
            raise ValueError(
                f"R: state {int(np.argmax(no_action))} has no feasible action (all rewards -inf)"
            )
        term = cls._check_terminal(terminal, S)
        init = cls._check_initial(initial, S)
        sums = _csr.row_sums(indptr, probs64).reshape(S, A)
        must_sum = feasible.copy()
        if term is not None:
            must_sum[term] = False
        row_tol = _row_tolerance(probs, indptr).reshape(S, A)
        bad = must_sum & (np.abs(sums - 1.0) > row_tol)
        if bad.any():
            s, a = np.argwhere(bad)[0]
            raise ValueError(
                f"probs: row of (s, a) = ({s}, {a}) sums to {sums[s, a]!r}, not 1 "
                f"(tolerance {row_tol[s, a]:.3g} for {probs.dtype} probabilities)"
            )
        del sums, must_sum, row_tol, bad, steps
        del probs
        canon = _csr.canonicalize_csr(np.ascontiguousarray(indptr), indices, probs64,
                                      overwrite=own_idx and own_p)
        if canon[2] is not probs64:
            own_p = True  # fresh output of the merge
        indptr, indices, probs64 = canon
        del canon
        # store exactly stochastic rows (validation allowed some slack), rescaled
        # in place when the array is ours, rounded once into the storage dtype
        sums = _csr.row_sums(indptr, probs64)
        if np.any((sums > 0) & (sums != 1.0)):
            del sums
            out: np.ndarray | None
            if dt != np.float64:
                out = np.empty(probs64.shape[0], dtype=dt)
            else:
                out = probs64 if own_p else None
            probs64 = _csr.normalize_rows(indptr, probs64, out)
        return cls(
            np.ascontiguousarray(indptr),
            indices,
            probs64.astype(dt, copy=False),
            R.astype(dt, copy=False),
            gamma,
            term,
            init,
            info,
        )

    @staticmethod
    def _check_terminal(terminal, S):
        if terminal is None:
            return None
        t = np.asarray(terminal)
        if t.dtype != np.bool_:
            if np.issubdtype(t.dtype, np.integer) and t.ndim == 1 and t.shape != (S,):
                # a list of terminal state indices
                if np.any((t < 0) | (t >= S)):
                    raise ValueError(f"terminal: state index out of range [0, {S})")
                t = np.zeros(S, dtype=bool)
                t[np.asarray(terminal)] = True
            else:
                raise TypeError(
                    f"terminal must be a boolean mask of shape ({S},) or integer state indices"
                )
        if t.shape != (S,):
            raise ValueError(f"terminal must have shape ({S},), got {t.shape}")
        if t.all():  # one rule for masks and index lists
            raise ValueError("terminal: every state is terminal (nothing left to solve)")
        return t.copy()

    @staticmethod
    def _check_initial(initial, S):
        if initial is None:
            return None
        return check_distribution(initial, "initial", S)

    @classmethod
    def from_scipy(
        cls,
        P,
        R,
        gamma: float,
        *,
        terminal=None,
        initial=None,
        dtype=np.float64,
        info: Mapping[str, Any] | None = None,
    ) -> TabularMDP:
        """Build from scipy.sparse transition matrices.

        Parameters
        ----------
        P : scipy.sparse matrix (S*A, S), or list of A scipy.sparse (S, S)
            Either one matrix whose row ``s*A + a`` is ``P(.|s, a)`` (the
            storage of record, docs/theory.md §1), or one matrix per action,
            ``P[a][s, s']`` (mdptoolbox's sparse form). Dense arrays are
            accepted in the same layouts.
        R : array (S, A) or (S*A,), or rewards per transition in the layout of ``P``
            Expected rewards (``-inf`` marks an infeasible action), or
            ``R(s, a, s')`` as a sparse matrix (or list) shaped like ``P``,
            reduced to ``sum_s' P R``.
        gamma : float
        terminal, initial, dtype, info
            As in :meth:`from_csr`.

        Returns
        -------
        TabularMDP

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp
        >>> from fastsoft import TabularMDP
        >>> P = sp.csr_array(np.array([[0.5, 0.5], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]))
        >>> m = TabularMDP.from_scipy(P, np.array([[0.0, 1.0], [0.0, 0.0]]), 0.9)
        >>> (m.n_states, m.n_actions, m.nnz)
        (2, 2, 5)
        >>> m2 = TabularMDP.from_scipy([sp.eye(2), sp.eye(2)], np.zeros((2, 2)), 0.9)
        >>> m2.to_scipy()[0].shape
        (4, 2)
        """
        return cls._from_converted(_formats.from_scipy_arrays(P, R), gamma, terminal, initial,
                                   dtype, info)

    @classmethod
    def from_mdptoolbox(
        cls,
        P,
        R,
        gamma: float,
        *,
        terminal=None,
        initial=None,
        dtype=np.float64,
        info: Mapping[str, Any] | None = None,
    ) -> TabularMDP:
        """Build from pymdptoolbox's ``P`` and ``R``.

        Parameters
        ----------
        P : array (A, S, S), or list of A (S, S) dense or scipy.sparse matrices
            ``P[a][s, s']`` (note: action first, unlike :meth:`from_dense`).
        R : array (S,), (S, A) or (A, S, S), or list of A (S, S) matrices
            Reward per state (the same for every action), per state-action
            pair, or per transition ``R[a][s, s']`` (reduced to its expectation).
        gamma : float
            mdptoolbox's ``discount``.
        terminal, initial, dtype, info
            As in :meth:`from_csr`.

        Returns
        -------
        TabularMDP

        Examples
        --------
        >>> import numpy as np
        >>> from fastsoft import TabularMDP
        >>> P = np.array([[[0.5, 0.5], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]]])
        >>> m = TabularMDP.from_mdptoolbox(P, np.array([0.0, 1.0]), 0.9)
        >>> m.rewards
        array([[0., 0.],
               [1., 1.]])
        """
        return cls._from_converted(_formats.from_mdptoolbox_arrays(P, R), gamma, terminal,
                                   initial, dtype, info)

    @classmethod
    def from_quantecon(
        cls, ddp, *, terminal=None, initial=None, dtype=np.float64,
        info: Mapping[str, Any] | None = None,
    ) -> TabularMDP:
        """Build from a quantecon ``DiscreteDP`` (product or state-action form).

        The product form's ``R (S, A)`` and ``Q (S, A, S)`` map directly
        (``-inf`` rewards stay infeasible). In the state-action form
        (``s_indices``, ``a_indices``, ``R (L,)``, dense or sparse ``Q (L, S)``)
        the pairs not listed become infeasible actions, with
        ``A = max(a_indices) + 1``. The discount is ``ddp.beta``.

        Parameters
        ----------
        ddp : quantecon.markov.DiscreteDP
        terminal, initial, dtype, info
            As in :meth:`from_csr`.

        Returns
        -------
        TabularMDP

        Examples
        --------
        >>> import numpy as np
        >>> from quantecon.markov import DiscreteDP  # doctest: +SKIP
        >>> ddp = DiscreteDP(np.array([1.0, 0.0, 2.0]), np.array([[1.0, 0.0], [0.0, 1.0],
        ...                  [0.5, 0.5]]), 0.9, [0, 0, 1], [0, 1, 0])  # doctest: +SKIP
        >>> TabularMDP.from_quantecon(ddp).rewards  # doctest: +SKIP
        array([[  1.,   0.],
               [  2., -inf]])
        """
        return cls._from_converted(_formats.from_quantecon_arrays(ddp), float(ddp.beta),
                                   terminal, initial, dtype, info)

    @classmethod
    def _from_converted(cls, arrays, gamma, terminal, initial, dtype, info) -> TabularMDP:
        """Validate and build from ``(indptr, indices, probs, R, S, A)`` of a converter."""
        indptr, indices, probs, R, S, A = arrays
        return cls._build(indptr, indices, probs, _as_real_array(R, "R"), None, S, A,
                          check_gamma(gamma), terminal, initial, check_float_dtype(dtype), info)

    def to_scipy(self):
        """``(P, R)``: ``P`` a float64 ``scipy.sparse.csr_array`` (S*A, S), row ``s*A + a``.

        Terminal states keep their stored rows (their value is 0 whatever the
        rows say).

        Returns
        -------
        P : scipy.sparse.csr_array, shape (S*A, S)
        R : ndarray, shape (S, A)
            A float64 copy of :attr:`rewards`.

        Examples
        --------
        >>> import fastsoft as fs
        >>> P, R = fs.gridworld(2, 3).to_scipy()
        >>> P.shape, R.shape
        ((24, 6), (6, 4))
        """
        return _formats.to_scipy_matrix(self), np.array(self.rewards, dtype=np.float64)

    def to_quantecon(self, *, sa_pair: bool | None = None):
        """A quantecon ``DiscreteDP`` with the same hard (unregularized) problem.

        Parameters
        ----------
        sa_pair : bool, optional
            State-action form (feasible pairs only, sparse ``Q``) or product
            form (dense ``Q (S, A, S)``); default the product form while
            ``S * A * S <= 1e6``.

        Returns
        -------
        quantecon.markov.DiscreteDP
            Terminal states become zero-reward self-loops with one action, which
            have the terminal value 0 for the hard problem quantecon solves (not
            under a temperature: see docs/theory.md §1). Needs ``gamma < 1``.

        Examples
        --------
        >>> import fastsoft as fs
        >>> ddp = fs.random_mdp(5, 2, 2, gamma=0.9, seed=0).to_quantecon()  # doctest: +SKIP
        >>> ddp.num_states  # doctest: +SKIP
        5
        """
        return _formats.to_quantecon_ddp(self, sa_pair)

    @classmethod
    def from_gymnasium(cls, env, gamma: float, *, dtype=np.float64) -> TabularMDP:
        """Build from a toy-text gymnasium environment (``env.unwrapped.P``).

        Duplicate outcomes are merged; rewards are averaged over outcomes. A
        transition flagged ``terminated`` leads to a terminal state (value 0,
        docs/theory.md §1). If some state is reached both by terminating and by
        non-terminating transitions, one extra absorbing terminal state
        (index ``S``) is appended and the terminating transitions lead there.
        The initial distribution is taken from ``initial_state_distrib`` (or
        ``isd``) when the environment has one. FrozenLake, CliffWalking and
        Taxi also get their grid layout in ``info`` (see
        :func:`fastsoft.envs.layouts.toy_text_layout`), so every plot works on them.

        Parameters
        ----------
        env : gymnasium.Env
            An environment (or a wrapper of one) whose ``unwrapped`` has the
            toy-text transition table ``P[s][a] = [(prob, next_state, reward,
            terminated), ...]``.
        gamma : float
            Discount in ``[0, 1]``.
        dtype : {float64, float32}
            Storage dtype of ``probs`` and ``rewards``.

        Returns
        -------
        TabularMDP

        Examples
        --------
        >>> import gymnasium as gym
        >>> import fastsoft as fs
        >>> env = gym.make("FrozenLake-v1", map_name="4x4")
        >>> mdp = fs.TabularMDP.from_gymnasium(env, gamma=0.99)
        >>> mdp.n_states, mdp.n_actions, mdp.has_terminal
        (16, 4, True)
        """
        u = getattr(env, "unwrapped", env)
        P = getattr(u, "P", None)
        if not isinstance(P, Mapping) or not P:
            raise TypeError(
                "env must expose a transition table env.unwrapped.P "
                "(dict: state -> action -> [(prob, next_state, reward, terminated)])"
            )
        S = len(P)
        if sorted(P, key=repr) != sorted(range(S), key=repr) or not all(
                isinstance(k, numbers.Integral) for k in P):
            raise ValueError("env.unwrapped.P must be keyed by the integer states 0..S-1")
        _check_gym_table(P, S)
        A = max(len(P[s]) for s in P)
        ends = np.zeros(S, dtype=bool)
        for s in range(S):
            for a in range(len(P[s])):
                for prob, ns, _r, done in P[s][a]:
                    if prob != 0 and done:
                        ends[ns] = True
        # transitions out of terminal states never happen; among the others, a
        # state reached both with and without `terminated` needs a fresh sink
        cont = np.zeros(S, dtype=bool)
        for s in np.flatnonzero(~ends).tolist():
            for a in range(len(P[s])):
                for prob, ns, _r, done in P[s][a]:
                    if prob != 0 and not done:
                        cont[ns] = True
        conflict = bool((ends & cont).any())
        n = S + 1 if conflict else S
        terminal = np.zeros(n, dtype=bool)
        if conflict:
            terminal[S] = True
        else:
            terminal |= ends
        rows_idx: list[int] = []
        rows_p: list[float] = []
        indptr = [0]
        R = np.full((n, A), -np.inf)
        for s in range(n):
            for a in range(A):
                outs = P[s][a] if s < S and a < len(P[s]) else None
                if outs is None:
                    if s == S:  # the sink
                        rows_idx.append(S)
                        rows_p.append(1.0)
                        R[s, a] = 0.0
                    indptr.append(len(rows_idx))
                    continue
                r_exp = 0.0
                for prob, ns, r, done in outs:
                    target = S if (conflict and done) else int(ns)
                    rows_idx.append(target)
                    rows_p.append(float(prob))
                    r_exp += float(prob) * float(r)
                R[s, a] = r_exp
                indptr.append(len(rows_idx))
        init = getattr(u, "initial_state_distrib", None)
        if init is None:
            init = getattr(u, "isd", None)
        if init is not None:
            init = np.asarray(init, dtype=np.float64)
            if conflict:
                init = np.append(init, 0.0)
        info = {"source": f"gymnasium:{getattr(getattr(u, 'spec', None), 'id', type(u).__name__)}"}
        from .envs.layouts import toy_text_layout  # grid, holes, cliff, goals, actions

        info.update(toy_text_layout(u, S))
        return cls._build(
            np.asarray(indptr, dtype=np.int64),
            np.asarray(rows_idx, dtype=np.int64),
            np.asarray(rows_p, dtype=np.float64),
            R,
            None,
            n,
            A,
            check_gamma(gamma),
            terminal if terminal.any() else None,
            init,
            check_float_dtype(dtype),
            info,
        )

    # ------------------------------------------------------------------ views & variants
    @property
    def nnz(self) -> int:
        """Number of stored transitions."""
        return int(self.probs.shape[0])

    @property
    def dtype(self) -> np.dtype:
        """Storage dtype of ``probs`` and ``rewards``."""
        return self.probs.dtype

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        arrays = (self.indptr, self.indices, self.probs, self.rewards, self.terminal, self.initial)
        return int(sum(a.nbytes for a in arrays if a is not None))

    @property
    def feasible(self) -> np.ndarray:
        """Boolean ``(S, A)``: actions with finite reward."""
        return self.rewards > -np.inf

    @property
    def has_terminal(self) -> bool:
        """Whether any state is terminal."""
        return self.terminal is not None and bool(self.terminal.any())

    def to_dense(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the dense ``(P, R)`` (small MDPs only: at most 5e7 entries in ``P``).

        Returns
        -------
        P : ndarray of float64, shape (S, A, S)
            ``P[s, a, s']``.
        R : ndarray of float64, shape (S, A)
            Expected rewards (``-inf`` where infeasible).

        Examples
        --------
        >>> import fastsoft as fs
        >>> P, R = fs.random_mdp(4, 2, 2, gamma=0.9, seed=0).to_dense()
        >>> P.shape, R.shape, bool(abs(P.sum(axis=2) - 1).max() < 1e-12)
        ((4, 2, 4), (4, 2), True)
        """
        S, A = self.n_states, self.n_actions
        if S * A * S > 50_000_000:
            raise ValueError(f"to_dense: MDP too large ({S} states x {A} actions) for a dense P")
        P = np.zeros((S * A, S), dtype=np.float64)
        rows = np.repeat(np.arange(S * A), np.diff(self.indptr))
        P[rows, self.indices] = self.probs
        return P.reshape(S, A, S), np.array(self.rewards, dtype=np.float64)

    def with_rewards(self, R) -> TabularMDP:
        """Same transitions (shared, not re-validated) with new rewards.

        Parameters
        ----------
        R : array of float, shape (S, A)
            The new expected rewards; ``-inf`` marks an infeasible action. An
            action made feasible needs a transition row that sums to 1.

        Returns
        -------
        TabularMDP
            A new MDP sharing the transition arrays of this one.

        Examples
        --------
        >>> import fastsoft as fs
        >>> mdp = fs.gridworld(3, 3, gamma=0.9)
        >>> doubled = mdp.with_rewards(2 * mdp.rewards)
        >>> doubled.indptr is mdp.indptr
        True
        """
        R = _as_real_array(R, "R")
        S, A = self.n_states, self.n_actions
        if R.shape != (S, A):
            raise ValueError(f"R must have shape {(S, A)}, got {R.shape}")
        if np.any(np.isnan(R)) or np.any(R == np.inf):
            s, a = np.argwhere(np.isnan(R) | (R == np.inf))[0]
            raise ValueError(f"R must not hold NaN or +inf; first offending (s, a) = ({s}, {a})")
        feas_new = R > -np.inf
        if not feas_new.any(axis=1).all():
            raise ValueError(
                f"R: state {int(np.argmax(~feas_new.any(axis=1)))} has no feasible action"
            )
        newly = feas_new & ~self.feasible
        if newly.any():
            sums = _csr.row_sums(self.indptr, self.probs).reshape(S, A)
            bad = newly & (np.abs(sums - 1.0) > ROW_SUM_ATOL)
            if self.terminal is not None:
                bad[self.terminal] = False
            if bad.any():
                s, a = np.argwhere(bad)[0]
                raise ValueError(
                    f"R: action made feasible at (s, a) = ({s}, {a}) has no transition row"
                )
        return TabularMDP(
            self.indptr, self.indices, self.probs, R.astype(self.dtype, copy=True),
            self.gamma, self.terminal, self.initial, dict(self.info),
        )

    def with_gamma(self, gamma: float) -> TabularMDP:
        """Same MDP with another discount factor.

        Parameters
        ----------
        gamma : float
            Discount in ``[0, 1]`` (``1`` only for finite-horizon solves).

        Returns
        -------
        TabularMDP

        Examples
        --------
        >>> import fastsoft as fs
        >>> fs.gridworld(3, 3, gamma=0.9).with_gamma(0.99).gamma
        0.99
        """
        return TabularMDP(
            self.indptr, self.indices, self.probs, self.rewards, check_gamma(gamma),
            self.terminal, self.initial, dict(self.info),
        )

    def with_initial(self, initial) -> TabularMDP:
        """Same MDP with another initial-state distribution.

        Parameters
        ----------
        initial : array of float, shape (S,)
            Non-negative, summing to 1.

        Returns
        -------
        TabularMDP

        Examples
        --------
        >>> import numpy as np
        >>> import fastsoft as fs
        >>> mdp = fs.random_mdp(4, 2, 2, gamma=0.9, seed=0).with_initial(np.full(4, 0.25))
        >>> mdp.initial
        array([0.25, 0.25, 0.25, 0.25])
        """
        return TabularMDP(
            self.indptr, self.indices, self.probs, self.rewards, self.gamma, self.terminal,
            self._check_initial(initial, self.n_states), dict(self.info),
        )

    def astype(self, dtype) -> TabularMDP:
        """Copy with ``probs`` and ``rewards`` stored as ``dtype``.

        Parameters
        ----------
        dtype : {float64, float32}
            The storage dtype; float32 halves the memory of the transition
            values (the solvers still compute in float64).

        Returns
        -------
        TabularMDP
            ``self`` if it is already stored as ``dtype``, else a copy.

        Examples
        --------
        >>> import numpy as np
        >>> import fastsoft as fs
        >>> fs.gridworld(3, 3, gamma=0.9).astype(np.float32).dtype
        dtype('float32')
        """
        dt = check_float_dtype(dtype)
        if dt == self.dtype:
            return self
        return TabularMDP(
            self.indptr, self.indices, self.probs.astype(dt), self.rewards.astype(dt),
            self.gamma, self.terminal, self.initial, dict(self.info),
        )

    # ------------------------------------------------------------------ comparison
    def _fields(self):
        return (self.indptr, self.indices, self.probs, self.rewards)

    def allclose(self, other: TabularMDP, *, atol: float = 1e-12) -> bool:
        """Whether ``other`` has the same structure and values within ``atol``.

        Same sizes, sparsity structure, feasible actions, terminal mask and
        presence of an initial distribution; probabilities, feasible rewards,
        discount and initial distribution within ``atol``.

        Parameters
        ----------
        other : TabularMDP
            The MDP to compare with (anything else compares unequal).
        atol : float
            Absolute tolerance on the values.

        Returns
        -------
        bool

        Examples
        --------
        >>> import fastsoft as fs
        >>> a = fs.gridworld(3, 3, gamma=0.9)
        >>> a.allclose(a.with_rewards(a.rewards + 1e-14)), a.allclose(a.with_gamma(0.8))
        (True, False)
        """
        if not isinstance(other, TabularMDP):
            return False
        if (self.n_states, self.n_actions) != (other.n_states, other.n_actions):
            return False
        if abs(self.gamma - other.gamma) > atol:
            return False
        if not (np.array_equal(self.indptr, other.indptr)
                and np.array_equal(self.indices, other.indices)):
            return False
        if not np.allclose(self.probs, other.probs, rtol=0, atol=atol):
            return False
        if not np.array_equal(self.feasible, other.feasible):
            return False
        f = self.feasible
        if not np.allclose(self.rewards[f], other.rewards[f], rtol=0, atol=atol):
            return False
        t1 = self.terminal if self.terminal is not None else np.zeros(self.n_states, bool)
        t2 = other.terminal if other.terminal is not None else np.zeros(other.n_states, bool)
        if not np.array_equal(t1, t2):
            return False
        if self.initial is None or other.initial is None:
            return self.initial is None and other.initial is None
        return np.allclose(self.initial, other.initial, rtol=0, atol=atol)

    def __eq__(self, other) -> bool:
        return self.allclose(other, atol=0.0) if isinstance(other, TabularMDP) else NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        extra = ""
        if self.terminal is not None and self.has_terminal:
            extra += f", terminal={int(self.terminal.sum())}"
        return (
            f"TabularMDP(n_states={self.n_states}, n_actions={self.n_actions}, nnz={self.nnz}, "
            f"gamma={self.gamma}, dtype={self.dtype}{extra})"
        )
