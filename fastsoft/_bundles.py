"""Kernel argument bundles, built once per problem, and the one owner of ``TabularMDP._cache``.

The Numba kernels take a few typed tuples instead of long argument lists.
Numba types a :func:`collections.namedtuple` of arrays and scalars as a
heterogeneous tuple; every kernel takes its bundles apart in its first lines
(outside any loop, so no reference counting happens in the hot loops) and
passes plain arrays on to the inlined per-row helpers. Adding a field to a
bundle touches its builder here and the kernels that read the field.

Pitfall (measured with Numba 0.61): never *unpack* a bundle (``a, b =
bundle``) in a kernel. In a ``parallel=True`` kernel the ``prange`` loop then
writes to copies of the unpacked arrays, and in a serial kernel that passes
them on to parallel ones the writes were lost as well. Every kernel takes the
fields by name (``b = bundle.b``); ``tests/test_bundles.py`` checks the
outputs written through bundles (per-chunk results, certificates, histories).

Bundles:

- :class:`Model`: the transitions in state-action-pair CSR form ``indptr,
  indices, probs`` plus the dictionary-coded form ``codes, offsets, cprobs``
  (empty arrays when not used, see :func:`coded_arrays`), the rewards ``R``
  (S, A) and ``gamma``. :func:`model` builds it.
- :class:`KernelRegularizer`: ``lam = tau + eta``, ``bias`` ((S, A) ``eta log
  mu``, used when ``has_bias``) and ``sbias`` ((S,) added after the
  log-sum-exp). :attr:`Regularizer.kernel` builds it.
- :class:`Pinned`: states whose value is fixed, not iterated: ``mask`` (uint8
  (S,), or empty), ``any`` (whether ``mask`` is used) and ``value`` (float64
  (S,), the fixed values; empty when ``any`` is False). Today these are the
  terminal states, pinned at 0. The value-iteration sweeps write ``value[s]``
  at a pinned state, so further states with known exact values can join by
  changing :func:`pinned` alone; the policy kernels and the greedy step still
  assume a pinned value of 0 (terminal).
- :class:`Chunks`: the state ranges ``bounds`` of a (parallel) sweep and the
  per-chunk outputs ``cmin``, ``cmax``.
- Run-loop bundles :class:`VIControl`, :class:`VIWork`,
  :class:`AndersonControl`, :class:`AndersonWork`, :class:`PolicyControl`,
  :class:`PolicyWork`: the scalars and preallocated buffers of one run. Each
  work bundle's ``cert`` is the certificate buffer of :mod:`fastsoft._certify`
  (``CERT_LEN`` floats: the shifts ``lo, hi`` out, the round-off allowance in,
  the stopping reason out, one carried slot), read and written by
  ``_kernels._round_off_stop``.

Numba's on-disk cache pickles the bundle types of every compiled signature:
renaming or removing a bundle class makes an old cache index unreadable
(``AttributeError`` on load, before Numba compares the source stamp), so
delete the ``*.nbi``/``*.nbc`` files of the kernel modules after doing so.

Cache: every derived array cached on an MDP lives under a key of
:data:`CACHE_KEYS`, read and written through :func:`memo` (or an accessor
here); no other module touches ``mdp._cache``.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import check_prior, check_real
from .mdp import TabularMDP

# ------------------------------------------------------------------------- cache owner
#: Every key of ``TabularMDP._cache``, with what it holds.
CACHE_KEYS = {
    "model": "Model bundle with plain CSR (no codes)",
    "pinned": "Pinned bundle (terminal states at value 0)",
    "coded": "(codes, offsets, cprobs) of the dictionary-coded transitions",
    "n_feasible": "(S,) number of feasible actions",
    "max_abs_reward": "max |R| over feasible pairs",
    "max_row_nnz": "largest number of stored successors of a state-action pair",
    "pessimistic": "{(tau, eta): pessimistic start value} (uniform prior only)",
    "no_terminal": "sampling: read-only all-False terminal mask",
    "row_cumsum": "sampling: read-only cumulative row probabilities",
    "pair_matrix": "sampling: sparse (S*A, S) transition matrix",
    "probs_f64": "sampling: read-only float64 probabilities (float32 MDPs)",
    "rewards_f64": "sampling: read-only float64 rewards (float32 MDPs)",
    "dra_env": "DRA kernels' environment tuple",
    "dra_trap_state": "DRA: a start-reachable state that reaches no terminal state, or None",
    "closed_structure": "solve: the closed sets of the support graph (fastsoft._structure)",
}


def share_transition_cache(src: TabularMDP, dst: TabularMDP) -> None:
    """Give ``dst`` (same transition arrays as ``src``) the transition-only entries of
    ``src``'s cache (the coded transitions)."""
    if "coded" in src._cache:
        dst._cache["coded"] = src._cache["coded"]


def memo(mdp: TabularMDP, key: str, build: Callable[[], Any]) -> Any:
    """``mdp._cache[key]``, computed by ``build()`` on first use.

    ``key`` must be one of :data:`CACHE_KEYS` (one registry of what an MDP caches).
    """
    if key not in CACHE_KEYS:
        raise KeyError(f"unregistered MDP cache key {key!r}")
    c = getattr(mdp, "_cache", None)
    if not isinstance(c, dict):  # not a TabularMDP: nothing to cache on
        return build()
    if key not in c:
        c[key] = build()
    return c[key]


# ------------------------------------------------------------------------- bundles
Model = namedtuple("Model", "indptr indices probs codes offsets cprobs R gamma")
KernelRegularizer = namedtuple("KernelRegularizer", "lam bias has_bias sbias")
Pinned = namedtuple("Pinned", "mask any value")
Chunks = namedtuple("Chunks", "bounds cmin cmax")
VIControl = namedtuple("VIControl", "tol c clamp parallel gs check_every")
VIWork = namedtuple("VIWork", "chunks W hist_bound hist_resid cert")
AndersonControl = namedtuple("AndersonControl", "tol c clamp parallel gs two_sided")
AndersonWork = namedtuple(
    "AndersonWork",
    "cj cg g snap fp gp dF dG H state best part coef hist_bound hist_resid cert",
)
PolicyControl = namedtuple("PolicyControl", "tol c clamp parallel gs")
PolicyWork = namedtuple("PolicyWork", "chunks W cert")

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
    return memo(mdp, "coded", lambda: _build_codes(mdp))


def _build_codes(mdp: TabularMDP):
    from . import _csr

    pbits = np.ascontiguousarray(mdp.probs, dtype=np.float64).view(np.int64)
    codes = np.empty(mdp.nnz, dtype=np.uint8)
    otab = np.empty(256, dtype=np.int64)
    pbtab = np.empty(256, dtype=np.int64)
    n = _csr._build_codes(mdp.indptr, mdp.indices, pbits, mdp.n_actions, 256, 15, codes,
                          otab, pbtab)
    if n < 0:
        return _NO_CODES
    for a in (codes, otab, pbtab):
        a.flags.writeable = False
    return (codes, otab[:n].copy(), pbtab[:n].copy().view(np.float64))


def model(mdp: TabularMDP, coded: bool = False, min_nnz: int | None = None) -> Model:
    """The :class:`Model` bundle of ``mdp``.

    ``coded``: fill the coded fields from :func:`coded_arrays` (``min_nnz`` as
    there); they stay empty where codes do not pay. The plain bundle is cached.
    """
    plain = memo(mdp, "model", lambda: Model(mdp.indptr, mdp.indices, mdp.probs, *_NO_CODES,
                                             mdp.rewards, mdp.gamma))
    if not coded:
        return plain
    cz = coded_arrays(mdp, min_nnz)
    if cz is _NO_CODES:
        return plain
    return plain._replace(codes=cz[0], offsets=cz[1], cprobs=cz[2])


def pinned(mdp: TabularMDP) -> Pinned:
    """The :class:`Pinned` bundle: terminal states, value 0 (cached)."""
    def build():
        if mdp.has_terminal and mdp.terminal is not None:
            return Pinned(mdp.terminal.view(np.uint8), True, np.zeros(mdp.n_states))
        return Pinned(np.zeros(0, dtype=np.uint8), False, np.zeros(0))
    return memo(mdp, "pinned", build)


def chunks(bounds: np.ndarray) -> Chunks:
    """A :class:`Chunks` bundle over ``bounds`` with fresh per-chunk outputs."""
    n = len(bounds) - 1
    return Chunks(bounds, np.empty(n), np.empty(n))


def n_feasible(mdp: TabularMDP) -> np.ndarray:
    """(S,) number of feasible actions per state (cached)."""
    return memo(mdp, "n_feasible", lambda: mdp.feasible.sum(axis=1))


def max_abs_reward(mdp: TabularMDP) -> float:
    """``max |R(s, a)|`` over feasible pairs (cached)."""
    def build():
        feas = mdp.feasible
        return float(np.abs(mdp.rewards[feas]).max()) if feas.any() else 0.0
    return memo(mdp, "max_abs_reward", build)


def max_row_length(mdp: TabularMDP) -> int:
    """Largest number of stored successors of any state-action pair (cached)."""
    return memo(mdp, "max_row_nnz",
                lambda: int(np.diff(mdp.indptr).max()) if mdp.indptr.size > 1 else 0)


# ------------------------------------------------------------------------- regularizer
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

    @property
    def kernel(self) -> KernelRegularizer:
        """The :class:`KernelRegularizer` bundle the kernels read."""
        return KernelRegularizer(self.lam, self.bias, self.has_bias, self.sbias)


def entropy_only(tau: float, n_states: int) -> Regularizer:
    """Entropy weight ``tau`` only (no KL term, no prior)."""
    return Regularizer(tau, 0.0, tau, np.zeros((0, 0)), False, np.zeros(n_states), None)


def build_regularizer(mdp: TabularMDP, tau: float, eta: float,
                      mu: np.ndarray | None) -> Regularizer:
    """:class:`Regularizer` of validated ``tau, eta >= 0`` and prior ``mu`` ((S, A) or None)."""
    S = mdp.n_states
    sbias = np.zeros(S)
    bias = np.zeros((0, 0))
    has_bias = False
    log_prior = None
    if mu is not None:
        with np.errstate(divide="ignore"):
            log_prior = np.log(mu)
        if eta > 0:
            bias = eta * log_prior
            has_bias = True
    elif eta > 0:
        sbias = -eta * np.log(n_feasible(mdp).astype(np.float64))
    return Regularizer(tau, eta, tau + eta, bias, has_bias, sbias, log_prior)


def pessimistic_value(mdp: TabularMDP, key, build: Callable[[], float]) -> float:
    """Cached pessimistic start value of ``mdp`` for ``key = (tau, eta)``."""
    table = memo(mdp, "pessimistic", dict)
    if key not in table:
        table[key] = build()
    return table[key]


def make_regularizer(mdp: TabularMDP, temperature, kl_weight, prior) -> Regularizer:
    """Validated :class:`Regularizer` of ``(temperature, kl_weight, prior)`` (docs/theory.md §2).

    The prior follows :func:`fastsoft._validation.check_prior` (the rule the
    samplers use too; terminal rows become uniform over feasible actions).
    """
    tau = check_real(temperature, "temperature", low=0.0)
    eta = check_real(kl_weight, "kl_weight", low=0.0)
    mu = None if prior is None else check_prior(mdp, prior)
    return build_regularizer(mdp, tau, eta, mu)
