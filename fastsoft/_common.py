"""Validation and argument preparation shared by the public solvers."""

from __future__ import annotations

import numbers

import numpy as np

from ._bundles import Regularizer, build_regularizer
from .mdp import TabularMDP


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


def make_regularizer(mdp: TabularMDP, temperature, kl_weight, prior) -> Regularizer:
    tau = check_real(temperature, "temperature", low=0.0)
    eta = check_real(kl_weight, "kl_weight", low=0.0)
    S, A = mdp.n_states, mdp.n_actions
    mu = None
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
    return build_regularizer(mdp, tau, eta, mu)


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
