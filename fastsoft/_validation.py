"""Argument validation: one rule per concept, shared by every public function.

Each ``check_*`` function validates one concept and returns it in canonical
form, or raises a :class:`TypeError` (wrong kind of object) or
:class:`ValueError` (wrong value) whose message names the argument and, for
arrays over states and actions, the first offending state or ``(s, a)``.
Validation happens before any large allocation. The kernels validate nothing.

Rules:

- reals, integers, ``gamma`` in ``[0, 1]``, ``horizon >= 1``, ``tol > 0``:
  :func:`check_real`, :func:`check_int`, :func:`check_gamma`,
  :func:`check_horizon`, :func:`check_tol`; bools are never numbers.
- arrays of reals / indices: :func:`real_array`, :func:`index_array`;
  state vectors :func:`check_vector` (finite, shape ``(S,)``).
- distributions over states (``initial``): :func:`check_distribution`.
- the ``mdp`` argument: :func:`check_mdp` (a TabularMDP), or :func:`as_tabular`
  where a gymnasium environment with a transition table is accepted too.
- priors ``mu(a|s)``: :func:`check_prior`, the same rule for the solvers
  (:func:`fastsoft._bundles.make_regularizer`) and the samplers
  (:func:`fastsoft.sampling.as_prior`). At every non-terminal state the row is
  finite, non-negative, sums to 1 within :data:`ROW_SUM_ATOL` and puts some
  mass on a feasible action. An ``(S, A)`` prior must put no mass on an
  infeasible action (an infeasible action has probability exactly 0, docs/theory.md
  §1): it is rejected with its ``(s, a)``, never silently renormalised. A
  shape ``(A,)`` prior is one distribution used as given in every state; where
  some of its actions are infeasible their mass is unused (the KL term is then
  taken against that sub-normalised ``mu``, as the solvers always did).
  Rows of terminal states are never used and are replaced by the uniform
  distribution over their feasible actions.
- seeds: :func:`make_rng`; counts (sizes such as ``rows``, ``n_states``):
  :func:`check_count`; work that cannot fit in this machine's memory:
  :func:`check_fits` (before allocating).
- row tolerances: :data:`ROW_SUM_ATOL` (float64 input),
  :data:`ROW_SUM_ATOL_F32` (float32 input), see :func:`row_sum_atol`.
"""

from __future__ import annotations

import numbers

import numpy as np

#: Rows of probabilities (transitions, policies, priors, distributions) must
#: sum to 1 within this.
ROW_SUM_ATOL = 1e-8
#: ... within this when the input is float32 (its rounding is about 6e-8).
ROW_SUM_ATOL_F32 = 1e-6

_FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


def row_sum_atol(dtype) -> float:
    """:data:`ROW_SUM_ATOL_F32` for float32 input, else :data:`ROW_SUM_ATOL`."""
    return ROW_SUM_ATOL_F32 if np.dtype(dtype) == np.float32 else ROW_SUM_ATOL


# ------------------------------------------------------------------------- scalars
def check_real(x, name: str, *, low=None, high=None, low_open=False) -> float:
    """A finite real number (not a bool) in ``[low, high]`` (``(low, high]`` if ``low_open``)."""
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
    """An integer (not a bool) ``>= low``; ``None`` passes through when ``allow_none``."""
    if x is None and allow_none:
        return None
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(x).__name__}")
    v = int(x)
    if low is not None and v < low:
        raise ValueError(f"{name} must be >= {low}, got {v}")
    return v


def check_gamma(gamma, name: str = "gamma") -> float:
    """A discount factor in ``[0, 1]`` (``1`` only makes sense with a finite horizon)."""
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(gamma).__name__}")
    g = float(gamma)
    if not (0.0 <= g <= 1.0):
        raise ValueError(f"{name} must lie in [0, 1], got {g}")
    return g


def check_horizon(horizon, name: str = "horizon", *, allow_none: bool = False):
    """A finite horizon ``H >= 1`` (or ``None`` when ``allow_none``)."""
    return check_int(horizon, name, low=1, allow_none=allow_none)


def check_tol(tol, name: str = "tol") -> float:
    """A tolerance: a finite real ``> 0``."""
    return check_real(tol, name, low=0.0, low_open=True)


def check_float_dtype(dtype, name: str = "dtype") -> np.dtype:
    """float64 or float32, as a :class:`numpy.dtype`."""
    dt = np.dtype(dtype)
    if dt not in _FLOAT_DTYPES:
        raise TypeError(f"{name} must be float64 or float32, got {dt}")
    return dt


# ------------------------------------------------------------------------- arrays
def real_array(x, name: str) -> np.ndarray:
    """``np.asarray(x)`` holding real numbers (integers or floats, not bools); no copy."""
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"{name} must be an array of real numbers ({exc})") from None
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr


def index_array(x, name: str) -> np.ndarray:
    """A one-dimensional integer array."""
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def check_vector(x, name: str, n: int) -> np.ndarray:
    """A finite real ``(n,)`` vector, returned as a float64 copy."""
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


def check_distribution(x, name: str, n: int) -> np.ndarray:
    """A probability distribution over ``n`` states: float64 ``(n,)``, non-negative,
    finite, summing to 1 within :data:`ROW_SUM_ATOL`."""
    p = real_array(x, name)
    if p.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {p.shape}")
    p = np.array(p, dtype=np.float64)
    bad = ~np.isfinite(p) | (p < 0)
    if bad.any():
        raise ValueError(f"{name} must be non-negative and finite; first offending state "
                         f"{int(np.argmax(bad))}")
    if abs(p.sum() - 1.0) > ROW_SUM_ATOL:
        raise ValueError(f"{name} must sum to 1, got {p.sum()!r}")
    return p


# ------------------------------------------------------------------------- MDP objects
def check_mdp(mdp, name: str = "mdp"):
    """A :class:`fastsoft.TabularMDP`."""
    from .mdp import TabularMDP

    if not isinstance(mdp, TabularMDP):
        raise TypeError(f"{name} must be a fastsoft.TabularMDP, got {type(mdp).__name__}")
    return mdp


#: Discount given to a gymnasium environment when the caller names none.
GYM_DEFAULT_GAMMA = 0.99


def as_tabular(obj, gamma: float | None = None, name: str = "mdp"):
    """A TabularMDP from a TabularMDP or a gymnasium environment with a ``P`` table.

    ``gamma`` is the discount of an environment (default :data:`GYM_DEFAULT_GAMMA`);
    with a TabularMDP it must be None or the MDP's own. Blackjack is enumerated
    exactly (:func:`fastsoft.envs.blackjack.blackjack_mdp`); other environments
    without a transition table (CartPole, ...) get a TypeError saying so.
    """
    from .mdp import TabularMDP

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


def _live(mdp) -> np.ndarray:
    return np.ones(mdp.n_states, bool) if mdp.terminal is None else ~mdp.terminal


def check_prior(mdp, prior, name: str = "prior") -> np.ndarray:
    """A prior policy ``mu``: float64 ``(S, A)`` (a copy); ``(A,)`` is used in every state.

    The rule of the module docstring: at non-terminal states finite,
    non-negative, rows summing to 1 with mass on a feasible action; an
    ``(S, A)`` prior puts no mass on infeasible actions; terminal rows become
    uniform over their feasible actions.
    """
    S, A = mdp.n_states, mdp.n_actions
    mu = real_array(prior, name)
    per_state = mu.shape != (A,)
    if not per_state:
        mu = np.broadcast_to(mu, (S, A))
    if mu.shape != (S, A):
        raise ValueError(f"{name} must have shape ({S}, {A}) or ({A},), got {mu.shape}")
    mu = np.array(mu, dtype=np.float64)
    live = _live(mdp)
    bad = (~np.isfinite(mu) | (mu < 0)) & live[:, None]
    if bad.any():
        s, a = np.argwhere(bad)[0]
        raise ValueError(f"{name} must be finite and non-negative; first offending (s, a) = "
                         f"({s}, {a})")
    sums = mu.sum(axis=1)
    bad = (np.abs(sums - 1.0) > ROW_SUM_ATOL) & live
    if bad.any():
        s = int(np.argmax(bad))
        raise ValueError(f"{name}: row of state {s} sums to {sums[s]!r}, not 1")
    feasible = mdp.feasible
    bad = (mu > 0) & ~feasible & live[:, None]
    if per_state and bad.any():
        s, a = np.argwhere(bad)[0]
        raise ValueError(f"{name} puts probability {float(mu[s, a])!r} on infeasible action {a} "
                         f"of state {s}: (s, a) = ({s}, {a})")
    bad = ~((mu > 0) & feasible).any(axis=1) & live
    if bad.any():
        s = int(np.argmax(bad))
        raise ValueError(f"{name} puts no mass on a feasible action of state {s}")
    term = ~live
    if term.any():
        mu[term] = feasible[term] / feasible[term].sum(axis=1, keepdims=True)
    return mu


def check_policy(mdp, policy, name: str = "policy", *, atol: float = ROW_SUM_ATOL):
    """A stationary policy: ``(S, A)`` probabilities or ``(S,)`` integer actions.

    Returns float64 ``(S, A)`` probabilities (a copy). Rows of non-terminal
    states must sum to 1 within ``atol`` and put no mass on infeasible actions.
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
    live = _live(mdp)
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


# ------------------------------------------------------------------------- seeds, sizes
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
