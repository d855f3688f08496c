"""The one place that holds fastsoft's Numba JIT options.

Every kernel in the package is decorated with :data:`jit` (serial) or
:data:`pjit` (parallel). Both cache compiled code on disk (``cache=True``) and
use fastmath flags *without* ``nnan`` and ``ninf``: ``-inf`` marks infeasible
actions and must propagate exactly.
"""

from __future__ import annotations

import numba

#: LLVM fast-math flags: contraction (FMA) and no signed zeros. Deliberately
#: *not* ``nnan``/``ninf`` (infinities are meaningful: ``-inf`` marks
#: infeasible actions), not ``afn``, not ``arcp`` (``x / lam`` as
#: ``x * (1 / lam)`` turns a subnormal temperature into ``0 * inf = nan``), and
#: not ``reassoc`` (it vectorises the 2-10 term sums over a CSR row, which
#: measured 20% slower on sparse sweeps).
FASTMATH = frozenset({"contract", "nsz"})

# NB: Numba's on-disk cache is keyed on the source file of each kernel, not on
# this module: after changing these options, delete the ``*.nbi``/``*.nbc``
# files under ``fastsoft/__pycache__`` (a new release changes the sources anyway).
_COMMON = dict(cache=True, nogil=True, fastmath=set(FASTMATH), error_model="numpy")

#: Serial kernel decorator.
jit = numba.njit(**_COMMON)

#: Parallel kernel decorator (``prange`` loops run on Numba's thread pool).
pjit = numba.njit(parallel=True, **_COMMON)

#: Small helpers inlined into their callers at Numba-IR level (the per-row and
#: per-state bodies of the sweeps: a call per row costs more than the row).
ijit = numba.njit(inline="always", **_COMMON)

prange = numba.prange

__all__ = ["FASTMATH", "ijit", "jit", "pjit", "prange"]
