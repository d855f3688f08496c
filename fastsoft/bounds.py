"""The bounds of docs/theory.md §4 (note C) as functions.

- :func:`softmax_gap`: for ``pi ∝ exp(Q/tau)`` at one state,
  ``max_a Q - sum_a pi Q <= tau H(pi) <= tau log|A|``.
- :func:`soft_policy_loss_bound`: over an MDP the soft-optimal policy loses at
  most ``tau log|A| / (1 - gamma)`` of unregularized value.
- :func:`greedy_step_bound`: two regularized greedy steps differ by at most
  ``max_a |Q + eta log mu - Qhat - eta log muhat|``.
- :func:`regularized_greedy`: the closed form of the regularized greedy step,
  ``max_pi pi.Q - eta KL(pi||mu) + tau H(pi)``, and its maximiser.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.special import logsumexp

from ._validation import ROW_SUM_ATOL, check_real

__all__ = [
    "entropy",
    "kl_divergence",
    "regularized_greedy",
    "softmax_gap",
    "SoftmaxGap",
    "soft_policy_loss_bound",
    "greedy_step_bound",
]


def _as_q(Q, name="Q") -> np.ndarray:
    arr = np.asarray(Q)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = np.atleast_2d(np.array(arr, dtype=np.float64))
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (A,) or (S, A), got {np.shape(Q)}")
    if np.any(np.isnan(arr)) or np.any(arr == np.inf):
        s, a = np.argwhere(np.isnan(arr) | (arr == np.inf))[0]
        raise ValueError(f"{name} must not hold NaN or +inf; first offending (s, a) = ({s}, {a})")
    if not np.isfinite(arr).any(axis=1).all():
        raise ValueError(f"{name}: state {int(np.argmax(~np.isfinite(arr).any(axis=1)))} "
                         "has no finite entry")
    return arr


def _as_prior(prior, shape, name="prior") -> np.ndarray | None:
    if prior is None:
        return None
    mu = np.asarray(prior, dtype=np.float64)
    try:
        mu = np.broadcast_to(mu, shape)
    except ValueError:
        raise ValueError(f"{name} must broadcast to {shape}, got {np.shape(prior)}") from None
    if np.any(~np.isfinite(mu)) or np.any(mu < 0):
        raise ValueError(f"{name} must be finite and non-negative")
    if np.any(np.abs(mu.sum(axis=1) - 1.0) > ROW_SUM_ATOL):
        s = int(np.argmax(np.abs(mu.sum(axis=1) - 1.0) > ROW_SUM_ATOL))
        raise ValueError(f"{name}: row of state {s} does not sum to 1")
    return mu


def _log_prior(Q, mu):
    feasible = np.isfinite(Q)
    if mu is None:
        return np.where(feasible, -np.log(feasible.sum(axis=1, keepdims=True)), -np.inf)
    with np.errstate(divide="ignore"):
        return np.log(mu)


def entropy(pi) -> np.ndarray:
    """Shannon entropy (nats) of each row of ``pi``.

    Parameters
    ----------
    pi : array (A,) or (S, A)
        Probabilities (rows summing to 1); zero entries contribute 0.

    Returns
    -------
    ndarray (S,)
        ``H(pi_s) = -sum_a pi(a) log pi(a)``.

    Examples
    --------
    >>> from fastsoft import bounds
    >>> bounds.entropy([[0.5, 0.5], [1.0, 0.0]]).round(6) + 0.0
    array([0.693147, 0.      ])
    """
    p = np.atleast_2d(np.asarray(pi, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.sum(np.where(p > 0, p * np.log(p), 0.0), axis=1)


def kl_divergence(pi, mu) -> np.ndarray:
    """``KL(pi || mu)`` of each row.

    Parameters
    ----------
    pi : array (A,) or (S, A)
        Probabilities.
    mu : array broadcastable to ``pi``'s shape
        The reference probabilities.

    Returns
    -------
    ndarray (S,)
        ``sum_a pi(a) log(pi(a) / mu(a))``; ``inf`` where ``pi`` has mass
        outside ``mu``'s support.

    Examples
    --------
    >>> from fastsoft import bounds
    >>> bounds.kl_divergence([[0.5, 0.5]], [[0.25, 0.75]]).round(6)
    array([0.143841])
    """
    p = np.atleast_2d(np.asarray(pi, dtype=np.float64))
    m = np.broadcast_to(np.asarray(mu, dtype=np.float64), p.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(m)), 0.0)
    return np.sum(terms, axis=1)


def regularized_greedy(Q, temperature: float, kl_weight: float = 0.0, prior=None):
    """Closed form of ``max_pi sum_a pi(a) Q(a) - eta KL(pi||mu) + tau H(pi)``.

    The regularized greedy step of docs/theory.md §2.2.

    With ``lam = eta + tau > 0`` the value is
    ``lam log sum_a exp((Q(a) + eta log mu(a)) / lam)`` and the maximiser is
    ``pi ∝ mu^(eta/lam) exp(Q/lam)``; with ``lam = 0`` the hard max (all mass
    on the lowest-index maximiser).

    Parameters
    ----------
    Q : array (A,) or (S, A)
        ``-inf`` marks an infeasible action (probability exactly 0).
    temperature : float
        ``tau >= 0``.
    kl_weight : float
        ``eta >= 0``.
    prior : array broadcastable to Q's shape, optional
        ``mu``; uniform over the finite entries by default.

    Returns
    -------
    value : ndarray (S,)
        The regularized maximum ``(T V)(s)`` for ``Q(s, .)``.
    policy : ndarray (S, A)
        Its maximiser.

    Examples
    --------
    >>> import numpy as np
    >>> from fastsoft import bounds
    >>> value, policy = bounds.regularized_greedy([[1.0, 0.0, -np.inf]], temperature=0.5)
    >>> value.round(6), policy.round(6)
    (array([1.063464]), array([[0.880797, 0.119203, 0.      ]]))
    """
    Qa = _as_q(Q)
    tau = check_real(temperature, "temperature", low=0.0)
    eta = check_real(kl_weight, "kl_weight", low=0.0)
    mu = _as_prior(prior, Qa.shape)
    lam = tau + eta
    x = Qa.copy()
    if eta > 0:
        x = Qa + eta * _log_prior(Qa, mu)
        x[~np.isfinite(Qa)] = -np.inf
    if lam == 0:
        pi = np.zeros_like(Qa)
        pi[np.arange(Qa.shape[0]), np.argmax(x, axis=1)] = 1.0
        return x.max(axis=1), pi
    m = x.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", over="ignore"):  # -big / subnormal lam -> -inf
        z = np.where(np.isfinite(x), (x - m) / lam, -np.inf)  # <= 0: no overflow
    v = m[:, 0] + lam * logsumexp(z, axis=1)
    w = np.exp(z)
    return v, w / w.sum(axis=1, keepdims=True)


class SoftmaxGap(NamedTuple):
    """Per-state terms of the softmax-vs-greedy bound (docs/theory.md §4)."""

    gap: np.ndarray  #: ``max_a Q - sum_a pi Q``
    entropy_term: np.ndarray  #: ``tau H(pi)``
    worst_case: np.ndarray  #: ``tau log |A|`` (feasible actions)


def softmax_gap(Q, temperature: float) -> SoftmaxGap:
    """The chain ``max_a Q - pi.Q <= tau H(pi) <= tau log|A|`` for ``pi ∝ exp(Q / tau)``.

    Parameters
    ----------
    Q : array (A,) or (S, A)
        Action values; ``-inf`` marks an infeasible action.
    temperature : float
        ``tau > 0``.

    Returns
    -------
    SoftmaxGap
        The three terms of the chain, per state (docs/theory.md §4.1).

    Examples
    --------
    >>> from fastsoft import bounds
    >>> g = bounds.softmax_gap([[1.0, 0.0, 0.5]], temperature=0.1)
    >>> bool(g.gap[0] <= g.entropy_term[0] <= g.worst_case[0])
    True
    """
    tau = check_real(temperature, "temperature", low=0.0, low_open=True)
    Qa = _as_q(Q)
    _, pi = regularized_greedy(Qa, tau)
    safe = np.where(np.isfinite(Qa), Qa, 0.0)
    gap = Qa.max(axis=1) - np.sum(pi * safe, axis=1)
    n = np.isfinite(Qa).sum(axis=1)
    return SoftmaxGap(gap, tau * entropy(pi), tau * np.log(n))


def soft_policy_loss_bound(n_actions: int, temperature: float, gamma: float) -> float:
    """``tau log|A| / (1 - gamma)``: unregularized value the soft-optimal policy may lose.

    See docs/theory.md §4.2.

    Parameters
    ----------
    n_actions : int
        ``|A|`` (at least 1).
    temperature : float
        ``tau >= 0``.
    gamma : float
        Discount in ``[0, 1)``.

    Returns
    -------
    float

    Examples
    --------
    >>> from fastsoft import bounds
    >>> round(bounds.soft_policy_loss_bound(4, 0.1, 0.99), 6)
    13.862944
    """
    tau = check_real(temperature, "temperature", low=0.0)
    g = check_real(gamma, "gamma", low=0.0)
    if g >= 1.0:
        raise ValueError(f"gamma must be < 1, got {g}")
    if isinstance(n_actions, bool) or int(n_actions) != n_actions or n_actions < 1:
        raise ValueError(f"n_actions must be a positive integer, got {n_actions!r}")
    return tau * float(np.log(int(n_actions))) / (1.0 - g)


def greedy_step_bound(Q, Q_hat, kl_weight: float = 0.0, prior=None, prior_hat=None) -> np.ndarray:
    """``max_a |Q + eta log mu - Qhat - eta log muhat|`` per state (docs/theory.md §4).

    It bounds ``|T_{Q,mu} - T_{Qhat,muhat}|``, the difference of the two
    regularized greedy values (any temperature). Both ``Q`` must have the same
    infeasible (``-inf``) pattern.

    Parameters
    ----------
    Q, Q_hat : array (A,) or (S, A)
        The two action-value arrays.
    kl_weight : float
        ``eta >= 0``.
    prior, prior_hat : array broadcastable to Q's shape, optional
        ``mu`` and ``muhat``; uniform over the finite entries by default.

    Returns
    -------
    ndarray (S,)

    Examples
    --------
    >>> from fastsoft import bounds
    >>> bounds.greedy_step_bound([[1.0, 0.0]], [[0.9, 0.2]])
    array([0.2])
    """
    Qa, Qb = _as_q(Q), _as_q(Q_hat, "Q_hat")
    if Qa.shape != Qb.shape:
        raise ValueError(f"Q and Q_hat must have the same shape, got {Qa.shape} and {Qb.shape}")
    if not np.array_equal(np.isfinite(Qa), np.isfinite(Qb)):
        raise ValueError("Q and Q_hat must have the same infeasible (-inf) entries")
    eta = check_real(kl_weight, "kl_weight", low=0.0)
    xa, xb = Qa.copy(), Qb.copy()
    if eta > 0:
        xa = xa + eta * _log_prior(Qa, _as_prior(prior, Qa.shape))
        xb = xb + eta * _log_prior(Qb, _as_prior(prior_hat, Qb.shape, "prior_hat"))
    # an action excluded on both sides (infeasible, or zero prior mass) contributes nothing
    both_out = np.isneginf(xa) & np.isneginf(xb)
    with np.errstate(invalid="ignore"):
        diff = np.where(both_out, 0.0, np.abs(xa - xb))
    return diff.max(axis=1)
