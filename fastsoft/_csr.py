"""Numba kernels on the state-action-pair CSR storage (docs/theory.md §1).

Private: arrays in, preallocated arrays out, no validation. Their NumPy
yardsticks live in :mod:`fastsoft.reference` (``row_sums``,
``canonicalize_csr``, ``expected_rewards``).
"""

from __future__ import annotations

import numpy as np

from ._jit import jit, pjit, prange


@pjit
def _row_sums(indptr, probs, out):
    """``out[r] = sum(probs[indptr[r]:indptr[r+1]])`` in float64."""
    for r in prange(indptr.shape[0] - 1):
        acc = 0.0
        for k in range(indptr[r], indptr[r + 1]):
            acc += probs[k]
        out[r] = acc


@pjit
def _expected_rewards(indptr, probs, trans_rewards, out):
    """``out[r] = sum_k probs[k] * trans_rewards[k]`` over row ``r``."""
    for r in prange(indptr.shape[0] - 1):
        acc = 0.0
        for k in range(indptr[r], indptr[r + 1]):
            acc += probs[k] * trans_rewards[k]
        out[r] = acc


@jit
def _sort_row(idx, p, lo, hi):
    # insertion sort of one (short) row by successor index, carrying probs
    for i in range(lo + 1, hi):
        ki = idx[i]
        pi = p[i]
        j = i - 1
        while j >= lo and idx[j] > ki:
            idx[j + 1] = idx[j]
            p[j + 1] = p[j]
            j -= 1
        idx[j + 1] = ki
        p[j + 1] = pi


@pjit
def _canonical_counts(indptr, idx, p, counts):
    """Sort every row in place and count its distinct successors with mass > 0."""
    for r in prange(indptr.shape[0] - 1):
        lo = indptr[r]
        hi = indptr[r + 1]
        _sort_row(idx, p, lo, hi)
        c = 0
        k = lo
        while k < hi:
            acc = 0.0
            j = k
            while j < hi and idx[j] == idx[k]:
                acc += p[j]
                j += 1
            if acc != 0.0:
                c += 1
            k = j
        counts[r] = c


@pjit
def _canonical_fill(indptr, idx, p, new_indptr, out_idx, out_p):
    """Write the merged rows (rows already sorted by ``_canonical_counts``)."""
    for r in prange(indptr.shape[0] - 1):
        lo = indptr[r]
        hi = indptr[r + 1]
        w = new_indptr[r]
        k = lo
        while k < hi:
            acc = 0.0
            j = k
            while j < hi and idx[j] == idx[k]:
                acc += p[j]
                j += 1
            if acc != 0.0:
                out_idx[w] = idx[k]
                out_p[w] = acc
                w += 1
            k = j


@pjit
def _is_canonical(indptr, idx, p, flags):
    """``flags[r] = 1`` when row ``r`` is strictly increasing with no zero entries."""
    for r in prange(indptr.shape[0] - 1):
        ok = 1
        for k in range(indptr[r], indptr[r + 1]):
            if p[k] == 0.0:
                ok = 0
            if k > indptr[r] and idx[k] <= idx[k - 1]:
                ok = 0
        flags[r] = ok


@pjit
def _scale_rows(indptr, probs, out):
    """``out[k] = probs[k] / sum(row)`` for rows whose float64 sum is > 0 and != 1.

    Other rows are copied. ``out`` may be ``probs`` itself (in place) or an
    array of another float dtype (the quotient is rounded once into it).
    Reference: :func:`fastsoft.reference.normalize_rows`.
    """
    for r in prange(indptr.shape[0] - 1):
        acc = 0.0
        for k in range(indptr[r], indptr[r + 1]):
            acc += probs[k]
        if acc > 0.0 and acc != 1.0:
            for k in range(indptr[r], indptr[r + 1]):
                out[k] = probs[k] / acc
        else:
            for k in range(indptr[r], indptr[r + 1]):
                out[k] = probs[k]


@jit
def _merge4(dest, s, pm, a, prev):
    # the smallest successor of (s, a) above ``prev`` and its merged mass, summed
    # in direction order (the order a stable sort keeps); v = -1 when none is left
    v = -1
    for d in range(4):
        x = dest[s, d]
        if x > prev and (v < 0 or x < v):
            v = x
    acc = 0.0
    if v >= 0:
        for d in range(4):
            if dest[s, d] == v:
                acc += pm[a, d]
    return v, acc


@jit
def _grid_row(dest, s, pm, a):
    # (number of entries, float64 sum of the entries) of the canonical row (s, a)
    c = 0
    total = 0.0
    prev = -1
    while True:
        v, acc = _merge4(dest, s, pm, a, prev)
        if v < 0:
            return c, total
        if acc != 0.0:
            c += 1
            total += acc
        prev = v


@pjit
def _grid_counts(dest, pm, counts):
    """``counts[s*A + a]``: distinct successors with mass > 0 of the four-move row."""
    A = pm.shape[0]
    for s in prange(dest.shape[0]):
        for a in range(A):
            counts[s * A + a] = _grid_row(dest, s, pm, a)[0]


@pjit
def _grid_fill(dest, pm, indptr, out_idx, out_p):
    """Canonical rows of the four-move gridworld, normalised as ``_scale_rows`` does."""
    A = pm.shape[0]
    for s in prange(dest.shape[0]):
        for a in range(A):
            total = _grid_row(dest, s, pm, a)[1]
            scale = total > 0.0 and total != 1.0
            w = indptr[s * A + a]
            prev = -1
            while True:
                v, acc = _merge4(dest, s, pm, a, prev)
                if v < 0:
                    break
                if acc != 0.0:
                    out_idx[w] = v
                    out_p[w] = acc / total if scale else acc
                    w += 1
                prev = v


def grid_csr(dest: np.ndarray, pm: np.ndarray, idx_dtype, dtype):
    """Canonical, normalised CSR of a four-move gridworld, written straight into its outputs.

    ``dest[s, d]`` is the successor of state ``s`` under move ``d`` and
    ``pm[a, d]`` the probability of move ``d`` under action ``a``; row
    ``s*A + a`` gets the distinct successors in increasing order, the mass of
    a repeated successor summed in move order, zero masses dropped, and the
    row divided by its sum when that is not exactly 1: bitwise what
    ``canonicalize_csr`` and ``normalize_rows`` give on the 4-entry rows
    (reference :func:`fastsoft.reference.grid_csr`). Returns ``(indptr,
    indices, probs)`` with ``indices`` of ``idx_dtype`` and ``probs`` of
    ``dtype``; no temporaries of the size of the output.
    """
    n_rows = dest.shape[0] * pm.shape[0]
    indptr = np.empty(n_rows + 1, dtype=np.int64)
    indptr[0] = 0
    _grid_counts(dest, pm, indptr[1:])
    np.cumsum(indptr[1:], out=indptr[1:])
    out_idx = np.empty(indptr[-1], dtype=idx_dtype)
    out_p = np.empty(indptr[-1], dtype=dtype)
    _grid_fill(dest, pm, indptr, out_idx, out_p)
    return indptr, out_idx, out_p


def normalize_rows(indptr: np.ndarray, probs: np.ndarray, out: np.ndarray | None = None):
    """Divide every row whose sum is > 0 and != 1 by that sum (float64 sums).

    Writes into ``out`` (default a new array of ``probs``' dtype; ``probs``
    itself for in place, or a float32 array to round once into storage).
    """
    if out is None:
        out = np.empty_like(probs)
    _scale_rows(indptr, probs, out)
    return out


def row_sums(indptr: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Sum of each CSR row (float64)."""
    out = np.empty(indptr.shape[0] - 1, dtype=np.float64)
    _row_sums(indptr, probs, out)
    return out


def expected_rewards(indptr, probs, trans_rewards) -> np.ndarray:
    """Expected reward of every row from per-transition rewards (float64)."""
    out = np.empty(indptr.shape[0] - 1, dtype=np.float64)
    _expected_rewards(indptr, probs, trans_rewards, out)
    return out


def canonicalize_csr(indptr, indices, probs, *, overwrite=False):
    """Sort rows by successor, merge duplicate successors, drop zero entries.

    Returns new ``(indptr, indices, probs)``; inputs are not modified unless
    ``overwrite`` (then rows of ``indices`` and ``probs`` are sorted in place
    instead of in copies: for temporaries the caller owns). Rows that are
    already canonical are returned as they are (no copy).
    """
    flags = np.empty(indptr.shape[0] - 1, dtype=np.uint8)
    _is_canonical(indptr, indices, probs, flags)
    if flags.all():
        return indptr, indices, probs
    del flags
    idx = indices if overwrite else indices.copy()
    p = probs if overwrite else probs.copy()
    counts = np.empty(indptr.shape[0] - 1, dtype=np.int64)
    _canonical_counts(indptr, idx, p, counts)
    new_indptr = np.zeros(indptr.shape[0], dtype=np.int64)
    np.cumsum(counts, out=new_indptr[1:])
    out_idx = np.empty(new_indptr[-1], dtype=indices.dtype)
    out_p = np.empty(new_indptr[-1], dtype=probs.dtype)
    _canonical_fill(indptr, idx, p, new_indptr, out_idx, out_p)
    return new_indptr, out_idx, out_p


#: Slots of the hash table :func:`_build_codes` uses (a power of two, >= 4x the codes).
_CODE_SLOTS = 4096


@jit
def _build_codes(indptr, indices, pbits, n_actions, max_codes, max_row, codes, otab, pbtab):
    """Dictionary-code the CSR entries by the pair ``(successor - state, probability bits)``.

    Writes ``codes[k]`` for every entry and the distinct pairs into ``otab``
    (offsets) and ``pbtab`` (probability bits); returns their number, or -1 as
    soon as there are more than ``max_codes`` of them or a row has more than
    ``max_row`` entries. Codes are numbered in order of first appearance.
    """
    slot = np.full(_CODE_SLOTS, -1, dtype=np.int64)
    mask = np.uint64(_CODE_SLOTS - 1)
    n = 0
    for row in range(indptr.shape[0] - 1):
        lo = indptr[row]
        hi = indptr[row + 1]
        if hi - lo > max_row:
            return -1
        s = row // n_actions
        for k in range(lo, hi):
            off = np.int64(indices[k]) - s
            pb = pbits[k]
            h = (np.uint64(off) * np.uint64(0x9E3779B97F4A7C15)) ^ (
                np.uint64(pb) * np.uint64(0xBF58476D1CE4E5B9))
            i = np.int64((h >> np.uint64(40)) & mask)
            while True:
                c = slot[i]
                if c < 0:
                    if n == max_codes:
                        return -1
                    slot[i] = n
                    otab[n] = off
                    pbtab[n] = pb
                    codes[k] = n
                    n += 1
                    break
                if otab[c] == off and pbtab[c] == pb:
                    codes[k] = c
                    break
                i = (i + 1) & (_CODE_SLOTS - 1)
    return n


@jit
def _leaving_classes(indptr, indices, live_rows, n_actions, labels, leaves):
    """``leaves[c] = 1`` for every class ``c`` of ``labels`` with an edge to another class.

    One pass over the CSR: the entries of row ``s*A + a`` are read when
    ``live_rows[s*A + a]`` (a feasible action of a non-terminal state); an
    entry whose successor has another label than ``s`` marks ``labels[s]``.
    ``leaves`` (n_classes,) uint8 is zeroed first. Reference:
    :func:`fastsoft.reference.leaving_classes`.
    """
    leaves[:] = 0
    S = labels.shape[0]
    for s in range(S):
        ls = labels[s]
        if leaves[ls]:
            continue
        for row in range(s * n_actions, (s + 1) * n_actions):
            if not live_rows[row]:
                continue
            for k in range(indptr[row], indptr[row + 1]):
                if labels[indices[k]] != ls:
                    leaves[ls] = 1
                    break
            if leaves[ls]:
                break
