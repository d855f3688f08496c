"""An inlinable ``exp`` for the DRA kernels: the algorithm of glibc's ``exp``, in Numba.

The softmax of every DRA decision takes ``A`` exponentials. Numba compiles ``math.exp``
and ``np.exp`` on a scalar into a call of libm's ``exp`` through two trampolines
(Numba's helper and glibc's old SVID wrapper); these calls took a third of a kernel step.
:func:`exp` computes the same function inline, with the algorithm of glibc (>= 2.28,
from Arm's optimized-routines: ``exp(x) = 2^(k/N) exp(r)`` with ``N = 128``, a table of
``2^(j/N)`` as ``scale * (1 + tail)`` and a degree-5 polynomial for ``exp(r)``, error below
0.52 ulp), its constants and its table (rebuilt here in exact decimal arithmetic). It
returns the same double as glibc's FMA variant on every input tested (millions, on
``[-745, 0]``), so the kernels' results do not change; like libm's, it can differ by an
ulp from NumPy's vectorised ``np.exp`` (which the reference loop uses).

``|x| >= 512`` (the subnormal and overflow ranges, where glibc takes a slower special
path), infinities and NaN fall back to ``math.exp``.

Numba's disk cache of the kernels that inline :func:`exp` is keyed on their own source
file: after changing this one, delete ``fastsoft/dra/__pycache__/*.nb*``.
"""

from __future__ import annotations

import math
import struct
from decimal import Decimal, localcontext

import numpy as np

from .._jit import ijit

#: log2(N) of the table: ``exp(x) = 2^(k/N) exp(r)``.
TABLE_BITS = 7
N = 1 << TABLE_BITS


def _table() -> tuple[np.ndarray, np.ndarray]:
    """``2^(j/N) = scale_j (1 + tail_j)``, ``scale_j`` the double nearest: ``tail_j`` and
    the bits of ``scale_j`` less ``j << (52 - TABLE_BITS)`` (the ``tab`` of glibc)."""
    tail = np.empty(N)
    sbits = np.empty(N, dtype=np.uint64)
    with localcontext() as ctx:
        ctx.prec = 50
        ln2 = Decimal(2).ln()
        for j in range(N):
            v = (Decimal(j) / N * ln2).exp()
            h = float(v)  # correctly rounded
            tail[j] = float((v - Decimal(h)) / Decimal(h))
            bits = struct.unpack("<Q", struct.pack("<d", h))[0]
            sbits[j] = (bits - (j << (52 - TABLE_BITS))) % 2**64
    return tail, sbits


_TAIL, _SBITS = _table()
_INV_LN2_N = float.fromhex("0x1.71547652b82fep0") * N
_NEG_LN2_HI_N = float.fromhex("-0x1.62e42fefa0000p-8")
_NEG_LN2_LO_N = float.fromhex("-0x1.cf79abc9e3b3ap-47")
_SHIFT = float.fromhex("0x1.8p52")
_C2 = float.fromhex("0x1.ffffffffffdbdp-2")
_C3 = float.fromhex("0x1.555555555543cp-3")
_C4 = float.fromhex("0x1.55555cf172b91p-5")
_C5 = float.fromhex("0x1.1111167a4d017p-7")
_MASK = np.uint64(N - 1)
_TOP_SHIFT = np.uint64(52 - TABLE_BITS)


@ijit
def exp(x):
    """``exp(x)`` for a float64 ``x``, inline (see the module docstring)."""
    if not -512.0 < x < 512.0:
        return math.exp(x)
    # x = k ln2/N + r, |r| <= ln2/2N; k in the low bits of kd's mantissa
    kd = _INV_LN2_N * x + _SHIFT
    ki = np.float64(kd).view(np.uint64)
    kd -= _SHIFT
    r = x + kd * _NEG_LN2_HI_N + kd * _NEG_LN2_LO_N
    j = np.int64(ki & _MASK)
    sbits = _SBITS[j] + (ki << _TOP_SHIFT)  # 2^(k/N) ~= scale (1 + tail)
    r2 = r * r
    tmp = _TAIL[j] + r + r2 * (_C2 + r * _C3) + r2 * r2 * (_C4 + r * _C5)
    scale = np.uint64(sbits).view(np.float64)
    return scale + scale * tmp
