"""Validation and argument preparation shared by the public solvers."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from .mdp import TabularMDP

#: Problems with at least this many state-action pairs, or this many stored
#: transitions, run the parallel kernels (a sweep's work is ~ pairs + nnz).
PARALLEL_MIN_PAIRS = 20_000
PARALLEL_MIN_NNZ = 100_000


def check_mdp(mdp) -> TabularMDP:
    if not isinstance(mdp, TabularMDP):
        raise TypeError(f"mdp must be a fastsoft.TabularMDP, got {type(mdp).__name__}")
    return mdp


#: Discount given to a gymnasium environment when the caller names none.
GYM_DEFAULT_GAMMA = 0.99


def as_tabular(obj, gamma: float | None = None, name: str = "mdp") -> TabularMDP:
    """A TabularMDP from a TabularMDP or a gymnasium environment with a ``P`` table.

    ``gamma`` is the discount of an environment (default :data:`GYM_DEFAULT_GAMMA`);
    with a TabularMDP it must be None or the MDP's own. Blackjack is enumerated
    exactly (:func:`fastsoft.envs.blackjack.blackjack_mdp`); other environments
    without a transition table (CartPole, ...) get a TypeError saying so.
    """
    if isinstance(obj, TabularMDP):
        if gamma is not None and float(gamma) != obj.gamma:
            raise ValueError(f"gamma={gamma} given with a TabularMDP of gamma {obj.gamma}; "
                             f"use {name}.with_gamma(...) to change its discount")
        return obj
    u = getattr(obj, "unwrapped", None)
    if u is None or not hasattr(obj, "step"):
        raise TypeError(f"{name} must be a fastsoft.TabularMDP or a gymnasium environment "
                        f"with a transition table, got {type(obj).__name__}")
    spec = getattr(getattr(u, "spec", None), "id", None) or type(u).__name__
    if not hasattr(u, "P") and type(u).__name__ == "BlackjackEnv":
        from .envs.blackjack import blackjack_mdp  # exact enumeration (infinite deck)

        return blackjack_mdp(u, GYM_DEFAULT_GAMMA if gamma is None else gamma)
    if not hasattr(u, "P"):
        raise TypeError(f"{name}: the gymnasium environment {spec} has no transition table "
                        f"env.unwrapped.P (toy-text FrozenLake, CliffWalking and Taxi have "
                        f"one, as do fastsoft's registered ids, and Blackjack is enumerated); "
                        f"build a TabularMDP by enumerating its dynamics instead")
    g = GYM_DEFAULT_GAMMA if gamma is None else gamma
    return TabularMDP.from_gymnasium(obj, g)


def check_real(x, name: str, *, low=None, high=None, low_open=False) -> float:
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(x).__name__}")
    v = float(x)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {v}")
    if high is not None and v > high:
        raise ValueError(f"{name} must be <= {high}, got {v}")
    return v


def check_int(x, name: str, *, low=None, allow_none=False):
    if x is None and allow_none:
        return None
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(x).__name__}")
    v = int(x)
    if low is not None and v < low:
        raise ValueError(f"{name} must be >= {low}, got {v}")
    return v


def check_vector(x, name: str, n: int) -> np.ndarray:
    arr = np.asarray(x)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
    arr = np.array(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; first offending state "
                         f"{int(np.argmax(~np.isfinite(arr)))}")
    return arr


def kernel_arrays(mdp: TabularMDP):
    """``(indptr, indices, probs, R, term_u8, has_term)`` ready for the kernels (cached)."""
    c = mdp._cache
    if "kernel" not in c:
        if mdp.has_terminal:
            term = mdp.terminal.view(np.uint8)
        else:
            term = np.zeros(0, dtype=np.uint8)
        c["kernel"] = (mdp.indptr, mdp.indices, mdp.probs, mdp.rewards, term, mdp.has_terminal)
    return c["kernel"]


#: Value-iteration sweeps read dictionary-coded transitions (one byte per entry
#: instead of a 4-byte index and an 8-byte probability) for MDPs with at least
#: this many entries whose ``(successor - state, probability)`` pairs take at
#: most 256 distinct values and whose rows are shorter than 16 entries:
#: gridworlds, mazes, chains, most structured models.
CODED_MIN_NNZ = 100_000
_NO_CODES = (np.zeros(0, dtype=np.uint8), np.zeros(0, dtype=np.int64), np.zeros(0))


def coded_arrays(mdp: TabularMDP, min_nnz: int | None = None):
    """``(codes uint8 (nnz,), offsets int64 (K,), probs float64 (K,))`` or empty arrays.

    Lossless: entry ``k`` of row ``(s, a)`` is successor ``s + offsets[codes[k]]``
    with probability ``probs[codes[k]]`` (the stored value, exactly). Empty
    arrays (length 0) mean the plain CSR is used: fewer than ``min_nnz``
    (default :data:`CODED_MIN_NNZ`) entries, more than 256 distinct pairs, or
    a row of 16 entries or more. Cached on the MDP.
    """
    if min_nnz is None:
        min_nnz = CODED_MIN_NNZ
    if mdp.nnz < min_nnz:
        return _NO_CODES
    c = mdp._cache
    if "coded" not in c:
        from . import _csr

        pbits = np.ascontiguousarray(mdp.probs, dtype=np.float64).view(np.int64)
        codes = np.empty(mdp.nnz, dtype=np.uint8)
        otab = np.empty(256, dtype=np.int64)
        pbtab = np.empty(256, dtype=np.int64)
        n = _csr._build_codes(mdp.indptr, mdp.indices, pbits, mdp.n_actions, 256, 15, codes,
                              otab, pbtab)
        if n < 0:
            c["coded"] = _NO_CODES
        else:
            for a in (codes, otab, pbtab):
                a.flags.writeable = False
            c["coded"] = (codes, otab[:n].copy(), pbtab[:n].copy().view(np.float64))
    return c["coded"]


def n_feasible(mdp: TabularMDP) -> np.ndarray:
    c = mdp._cache
    if "n_feasible" not in c:
        c["n_feasible"] = mdp.feasible.sum(axis=1)
    return c["n_feasible"]


def check_policy(mdp: TabularMDP, policy, name: str = "policy", *, atol: float = 1e-8):
    """Validate a stationary policy: (S, A) probabilities or (S,) integer actions.

    Returns float64 ``(S, A)`` probabilities (a copy).
    """
    S, A = mdp.n_states, mdp.n_actions
    pol = np.asarray(policy)
    if pol.ndim == 1 and np.issubdtype(pol.dtype, np.integer):
        if pol.shape != (S,):
            raise ValueError(f"{name}: action array must have shape ({S},), got {pol.shape}")
        bad = (pol < 0) | (pol >= A)
        if bad.any():
            s = int(np.argmax(bad))
            raise ValueError(f"{name}: action {int(pol[s])} out of range at state {s}")
        out = np.zeros((S, A))
        out[np.arange(S), pol] = 1.0
        pol = out
    if not (np.issubdtype(pol.dtype, np.floating) or np.issubdtype(pol.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers, got dtype {pol.dtype}")
    if pol.shape != (S, A):
        raise ValueError(f"{name} must have shape ({S}, {A}) or ({S},) actions, got {pol.shape}")
    pol = np.array(pol, dtype=np.float64)
    bad = ~np.isfinite(pol) | (pol < 0)
    if bad.any():
        s, a = np.argwhere(bad)[0]
        raise ValueError(f"{name} must be finite and non-negative; first offending (s, a) = "
                         f"({s}, {a})")
    live = np.ones(S, bool) if mdp.terminal is None else ~mdp.terminal
    sums = pol.sum(axis=1)
    bad = live & (np.abs(sums - 1.0) > atol)
    if bad.any():
        s = int(np.argmax(bad))
        raise ValueError(f"{name}: row of state {s} sums to {sums[s]!r}, not 1")
    inf = live[:, None] & (pol > 0) & ~mdp.feasible
    if inf.any():
        s, a = np.argwhere(inf)[0]
        raise ValueError(f"{name} puts probability on infeasible action (s, a) = ({s}, {a})")
    return pol


@dataclass(frozen=True)
class Regularizer:
    """Kernel-ready form of ``(tau, eta, mu)`` (docs/theory.md §2)."""

    tau: float
    eta: float
    lam: float
    bias: np.ndarray  # (S, A) eta*log mu, or (0, 0) when unused
    has_bias: bool
    sbias: np.ndarray  # (S,) per-state constant added after the log-sum-exp
    log_prior: np.ndarray | None  # (S, A) log mu (None: uniform over feasible actions)


def make_regularizer(mdp: TabularMDP, temperature, kl_weight, prior) -> Regularizer:
    tau = check_real(temperature, "temperature", low=0.0)
    eta = check_real(kl_weight, "kl_weight", low=0.0)
    S, A = mdp.n_states, mdp.n_actions
    sbias = np.zeros(S)
    bias = np.zeros((0, 0))
    has_bias = False
    log_prior = None
    if prior is not None:
        mu = np.asarray(prior)
        if not (np.issubdtype(mu.dtype, np.floating) or np.issubdtype(mu.dtype, np.integer)):
            raise TypeError(f"prior must hold real numbers, got dtype {mu.dtype}")
        if mu.shape == (A,):
            mu = np.broadcast_to(mu, (S, A))
        if mu.shape != (S, A):
            raise ValueError(f"prior must have shape ({S}, {A}) or ({A},), got {mu.shape}")
        mu = np.array(mu, dtype=np.float64)
        bad = ~np.isfinite(mu) | (mu < 0)
        if bad.any():
            s, a = np.argwhere(bad)[0]
            raise ValueError(f"prior must be finite and non-negative; first offending (s, a) = "
                             f"({s}, {a})")
        sums = mu.sum(axis=1)
        if np.any(np.abs(sums - 1.0) > 1e-8):
            s = int(np.argmax(np.abs(sums - 1.0) > 1e-8))
            raise ValueError(f"prior: row of state {s} sums to {sums[s]!r}, not 1")
        support = (mu > 0) & mdp.feasible
        if mdp.terminal is not None:
            support[mdp.terminal] = True
        if not support.any(axis=1).all():
            s = int(np.argmax(~support.any(axis=1)))
            raise ValueError(f"prior puts no mass on a feasible action of state {s}")
        with np.errstate(divide="ignore"):
            log_prior = np.log(mu)
        if eta > 0:
            bias = eta * log_prior
            has_bias = True
    elif eta > 0:
        sbias = -eta * np.log(n_feasible(mdp).astype(np.float64))
    return Regularizer(tau, eta, tau + eta, bias, has_bias, sbias, log_prior)


def make_rng(seed, name: str = "seed") -> np.random.Generator:
    """``np.random.default_rng(seed)`` with errors that name the argument."""
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed < 0:
        raise ValueError(f"{name} must be a non-negative integer (or a Generator, "
                         f"SeedSequence or None), got {int(seed)}")
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from None


def check_count(x, name: str, *, low: int = 1) -> int:
    """A count (integer ``>= low``): TypeError for non-integers such as 2.7, ValueError below."""
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {x!r}")
    v = int(x)
    if v < low:
        raise ValueError(f"{name} must be >= {low}, got {v}")
    return v


def memory_bytes() -> int | None:
    """Physical memory of this machine (None if unknown)."""
    import os

    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(need: float, what: str) -> None:
    """Refuse, before allocating, work that needs more than this machine's memory."""
    mem = memory_bytes()
    if mem is not None and need > mem:
        raise ValueError(f"{what} needs about {need / 2**30:,.1f} GiB, more than this "
                         f"machine's {mem / 2**30:,.1f} GiB of memory")
