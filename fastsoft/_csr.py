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


def canonicalize_csr(indptr, indices, probs):
    """Sort rows by successor, merge duplicate successors, drop zero entries.

    Returns new ``(indptr, indices, probs)``; inputs are not modified. Rows that
    are already canonical are returned as they are (no copy).
    """
    flags = np.empty(indptr.shape[0] - 1, dtype=np.uint8)
    _is_canonical(indptr, indices, probs, flags)
    if flags.all():
        return indptr, indices, probs
    idx = indices.copy()
    p = probs.copy()
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
