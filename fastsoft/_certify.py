"""Floating-point round-off allowances of the certificates (docs/certificates.md).

The MacQueen bounds of the regularized Bellman operator (and the residual bound
of policy evaluation) hold for the exact operators. The kernels compute them in
float64, so each certificate adds an allowance derived from the magnitudes
actually involved in the step that certifies: the certified iterate ``W``
(``M_out = max |W|``), its input ``V`` (bounded by ``M_out + resid``, with
``resid = max |W - V|``), the rewards and regularizer terms, the row lengths,
the number of actions and ``1 / (1 - gamma)``. Only the certifying step's
rounding matters: the bounds are a-posteriori, so the rounding of earlier
iterates (a warm start at ``1e100`` included) never enters except through those
magnitudes.

An allowance is ``a_out * M_out + a_res * resid + const`` (:class:`Allowance`);
``docs/certificates.md`` derives the coefficients.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from . import _bundles as B
from ._bundles import Regularizer
from .mdp import TabularMDP

#: Unit round-off of float64 (half the machine epsilon).
UNIT = 2.0 ** -53

#: Relative inflation covering second-order terms (``n u / (1 - n u)`` vs ``n u``).
_SAFETY = 1.01

#: Layout of the certificate buffer the run kernels share (float64, length CERT_LEN):
#: ``[lo, hi, a_out, a_res, const, M_out, reason, spare]``; ``lo, hi`` (out) the
#: certificate shifts, ``a_out, a_res, const`` (in) the allowance, ``M_out`` the
#: last measured ``max |W|`` (``< 0``: not yet), ``reason`` (out) why the run
#: stopped (:data:`STOP_BUDGET`, :data:`STOP_TOL`, :data:`STOP_FLOOR`).
CERT_LEN = 8
STOP_BUDGET = 0
STOP_TOL = 1
STOP_FLOOR = 2


class Allowance(NamedTuple):
    """Round-off allowance ``a_out * M_out + a_res * resid + const`` of one certificate."""

    a_out: float
    a_res: float
    const: float

    def __call__(self, m_out: float, resid: float) -> float:
        return self.a_out * m_out + self.a_res * resid + self.const

    def buffer(self) -> np.ndarray:
        """A fresh certificate buffer (see :data:`CERT_LEN`) holding this allowance."""
        cert = np.zeros(CERT_LEN)
        cert[2], cert[3], cert[4] = self.a_out, self.a_res, self.const
        cert[5] = -1.0
        return cert


def _row_factor(n: int) -> float:
    """Bound, in units of ``u * max|V|``, on the error of one normalised row mean.

    ``sum_k p_k V_k / sum_k p_k`` with ``n`` terms: the products and the running
    sums give ``n u``, the (non-negative) probability sum ``(n - 1) u`` relative,
    the division ``u``. Rows of 16 or more entries use four accumulators, so each
    running sum has ``ceil(n / 4) + 2`` roundings.
    """
    k = n if n < 16 else -(-n // 4) + 2
    return 2.0 * k + 2.0


def max_row_length(mdp: TabularMDP) -> int:
    """Largest number of stored successors of any state-action pair (cached)."""
    return B.max_row_length(mdp)


def reward_magnitude(mdp: TabularMDP, reg: Regularizer) -> float:
    """``max |R(s, a) + eta log mu(a|s)|`` over feasible pairs, plus ``max |sbias|``."""
    R = B.model(mdp).R
    feas = mdp.feasible
    if reg.has_bias:
        x = np.asarray(R, dtype=np.float64) + reg.bias
        ok = feas & np.isfinite(x)
        m = float(np.abs(x[ok]).max()) if ok.any() else 0.0
        m = max(m, float(np.abs(np.asarray(R, dtype=np.float64)[feas]).max()))
    else:
        m = B.max_abs_reward(mdp)
    if reg.sbias.size:
        m += float(np.abs(reg.sbias).max())
    return m


def bellman_allowance(mdp: TabularMDP, reg: Regularizer) -> Allowance:
    """Allowance of the MacQueen certificate of one Bellman step ``W = fl(T V)``.

    Per state, ``|W(s) - (T V)(s)| <= eps``, with
    ``eps = u [gamma f M_in + 3 M_out + 2 M_R + lam (3 A + 12)]`` (``f`` the
    row-mean factor plus 3, ``M_in <= M_out + resid``); the certificate moves
    by ``eps / (1 - gamma)``, the shifts ``c min d``, ``c max d`` by ``3 u c
    resid`` and the midpoint addition by ``u (M_out + c resid)``.
    """
    g = mdp.gamma
    f = _row_factor(max_row_length(mdp)) + 3.0
    A = mdp.n_actions
    u = UNIT * _SAFETY
    inv = 1.0 / (1.0 - g)
    c = g * inv
    mr = reward_magnitude(mdp, reg)
    a_out = u * (g * f + 3.0) * inv + u
    a_res = u * g * f * inv + 4.0 * u * c
    const = u * (2.0 * mr + reg.lam * (3.0 * A + 12.0)) * inv
    return Allowance(a_out, a_res, const)


def policy_sum_defect(pi: np.ndarray, live: np.ndarray | None) -> float:
    """Upper bound on ``max_s |sum_a pi(a|s) - 1|`` over live states, in exact arithmetic.

    0 for deterministic (0/1) policies; otherwise the long-double row sums
    plus their own rounding bound.
    """
    p = pi if live is None else pi[live]
    if p.size == 0 or bool(np.all((p == 0.0) | (p == 1.0))):
        return 0.0
    s = p.astype(np.longdouble).sum(axis=1)
    ld = float(np.finfo(np.longdouble).eps)
    return float(np.abs(s - 1).max()) + (p.shape[1] + 2) * ld


def policy_allowance(mdp: TabularMDP, reg: Regularizer, defect: float) -> Allowance:
    """Allowance of the certificates of the policy operator ``T_pi V = r_pi + gamma P_pi V``.

    Per state the computed sweep is off by ``u [gamma (f + A + 3) M_in + 2 M_out]``
    (the row means, their ``pi``-weighted sum, the product by gamma and the
    addition of ``r``) plus the error of the computed reward ``r_pi``,
    ``u (A + 4) (M_R + lam log max(A, 2))``. A policy whose rows do not sum to
    exactly 1 (``defect``) is treated as the normalised policy plus a
    perturbation of size ``gamma defect M``, which moves the fixed point by
    at most ``gamma defect (3 M) / (1 - gamma)``.
    """
    g = mdp.gamma
    A = mdp.n_actions
    f = _row_factor(max_row_length(mdp)) * (1.0 + defect) + A + 3.0
    u = UNIT * _SAFETY
    inv = 1.0 / (1.0 - g)
    c = g * inv
    mr = reward_magnitude(mdp, reg)
    lnA = math.log(max(A, 2))
    a_out = u * (g * f + 2.0) * inv + u + 3.0 * g * defect * inv
    a_res = u * g * f * inv + 4.0 * u * c + 3.0 * g * defect * inv
    const = u * (A + 4.0) * (mr + reg.lam * lnA) * inv
    return Allowance(a_out, a_res, const)


def residual_allowance(mdp: TabularMDP, reg: Regularizer, defect: float, m_v: float,
                       res: float) -> float:
    """Error of a computed residual ``max |r_pi - (I - gamma P_pi) V|``.

    The constants are those of :func:`policy_allowance`.
    """
    g = mdp.gamma
    A = mdp.n_actions
    f = _row_factor(max_row_length(mdp)) * (1.0 + defect) + A + 3.0
    u = UNIT * _SAFETY
    mr = reward_magnitude(mdp, reg)
    lnA = math.log(max(A, 2))
    return u * (g * f * m_v + 2.0 * (1.0 + g) * m_v + (A + 4.0) * (mr + reg.lam * lnA) + res)


def residual_bound(mdp: TabularMDP, reg: Regularizer, defect: float, V: np.ndarray,
                   res: float) -> float:
    """Certified ``max |V - V^pi|`` from a computed residual ``res``.

    ``(res + err) / (1 - gamma (1 + defect))``, ``err`` from :func:`residual_allowance`.
    """
    m_v = float(np.abs(V).max()) if V.size else 0.0
    err = residual_allowance(mdp, reg, defect, m_v, res)
    den = 1.0 - mdp.gamma * (1.0 + defect)
    if den <= 0.0:
        return math.inf
    return (res + err) / den * (1.0 + 4.0 * UNIT)


def floor_message(bound: float) -> str:
    return f"tol below round-off floor: best certified bound {bound:.3g}"


#: Largest ``(max |R| + lam log A) / (1 - gamma)`` accepted: values must stay well
#: inside float64 (sums of a few of them must not overflow).
MAX_VALUE_SCALE = 1e306


def check_scale(mdp: TabularMDP, reg: Regularizer) -> None:
    """Refuse problems whose values can overflow float64 (before any iteration).

    ``|V*| <= (max |R + eta log mu| + lam log A) / (1 - gamma)``; above
    :data:`MAX_VALUE_SCALE` a ValueError names the rewards (or the temperature).
    """
    if mdp.gamma >= 1.0:
        return
    mr = reward_magnitude(mdp, reg)
    ent = reg.lam * math.log(max(mdp.n_actions, 1))
    scale = (mr + ent) / (1.0 - mdp.gamma)
    if not scale <= MAX_VALUE_SCALE:
        what = "temperature/kl_weight" if ent > mr else "rewards"
        raise ValueError(
            f"{what} too large for float64: values can reach {scale:.3g} "
            f"(max |R| {mr:.3g}, lam log A {ent:.3g}, gamma {mdp.gamma}); rescale the rewards"
        )
