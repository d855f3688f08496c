"""Kernel argument bundles (fastsoft._bundles): kernels called through them equal the reference."""

import numpy as np
import pytest
from conftest import dense_random_mdp

import fastsoft as fs
from fastsoft import _bundles as B
from fastsoft import _kernels as K
from fastsoft import _pi_kernels as PK
from fastsoft import reference as ref
from fastsoft._bundles import make_regularizer
from fastsoft._certify import STOP_TOL, Allowance
from fastsoft.reference import pi as rpi

MDPS = {
    "grid": fs.gridworld(12, 9, slip=0.2, walls=[(3, 3)]),
    "dense_term": dense_random_mdp(25, 3, 0.9, 4, infeasible=0.2, terminal=0.2),
    "maze": fs.mattar_daw_maze(),
}


def _prior(mdp, seed):
    mu = np.random.default_rng(seed).random((mdp.n_states, mdp.n_actions)) + 0.05
    mu[~mdp.feasible] = 0.0
    return mu / mu.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("name", sorted(MDPS))
@pytest.mark.parametrize("tau,eta,use_prior", [(0.0, 0.0, False), (0.3, 0.0, False),
                                               (0.2, 0.5, False), (0.2, 0.5, True)])
def test_sweep_through_bundles_equals_reference_backup(name, tau, eta, use_prior):
    mdp = MDPS[name]
    prior = _prior(mdp, 1) if use_prior else None
    reg = make_regularizer(mdp, tau, eta, prior)
    V = np.random.default_rng(2).normal(size=mdp.n_states)
    if mdp.has_terminal:
        V[mdp.terminal] = 0.0
    exp = ref.bellman_backup(mdp, V, tau, eta, prior)[0]
    live = np.ones(mdp.n_states, bool) if mdp.terminal is None else ~mdp.terminal
    model, pin = B.model(mdp), B.pinned(mdp)
    for parallel in (False, True):
        chunks = B.chunks(np.linspace(0, mdp.n_states, 4).astype(np.int64) if parallel
                          else np.array([0, mdp.n_states], dtype=np.int64))
        W = np.full(mdp.n_states, np.nan)
        dmin, dmax, _ = K._sweep(parallel, False, False, chunks, model, reg.kernel, pin, V, W,
                                 False)
        np.testing.assert_allclose(W, np.where(live, exp, 0.0), rtol=1e-12, atol=1e-12)
        d = (W - V)[live]
        assert dmin == d.min() and dmax == d.max()
    TV, Q, pi = np.empty(mdp.n_states), np.empty((mdp.n_states, mdp.n_actions)), np.empty(
        (mdp.n_states, mdp.n_actions))
    K._greedy_step(model, reg.kernel, pin, V, Q, pi, TV)
    eTV, eQ, epi = ref.bellman_backup(mdp, V, tau, eta, prior)
    np.testing.assert_allclose(TV[live], eTV[live], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(pi[live], epi[live], rtol=1e-12, atol=1e-12)


def test_policy_kernels_through_bundles_equal_reference():
    mdp = MDPS["dense_term"]
    S, A = mdp.n_states, mdp.n_actions
    pi = mdp.feasible / mdp.feasible.sum(axis=1, keepdims=True)
    reg = make_regularizer(mdp, 0.3, 0.0, None)
    r = np.empty(S)
    PK._policy_reward(mdp.rewards, pi, reg.kernel, B.pinned(mdp), r)
    np.testing.assert_allclose(r, rpi.policy_reward(mdp, pi, 0.3), rtol=1e-12, atol=1e-12)
    V = np.zeros(S)
    cert = Allowance(0.0, 0.0, 0.0).buffer()  # no round-off allowance: the plain span rule
    work = B.PolicyWork(B.chunks(np.array([0, S], dtype=np.int64)), np.empty(S), cert)
    ctl = B.PolicyControl(1e-11, mdp.gamma / (1 - mdp.gamma), True, False, True)
    PK._policy_run(100_000, 0, ctl, B.model(mdp), B.pinned(mdp), pi, r, V, work)
    exact = rpi.policy_evaluation(mdp, pi, 0.3)[0]
    lo, hi = work.cert[:2]
    assert work.cert[6] == STOP_TOL
    assert hi - lo <= 2e-11
    np.testing.assert_allclose(V + 0.5 * (lo + hi) * ~mdp.terminal, exact, rtol=0, atol=1e-9)
    y = np.empty(S)
    PK._policy_matvec(B.model(mdp), B.pinned(mdp), pi, exact, y)
    np.testing.assert_allclose(y, rpi.policy_matvec(mdp, pi, exact), rtol=1e-12, atol=1e-12)
    assert pi.shape == (S, A)


def test_pinned_values_are_written_by_the_sweeps():
    """The extension point of :class:`Pinned`: a pinned state takes ``value[s]``."""
    mdp = MDPS["dense_term"]
    S = mdp.n_states
    reg = make_regularizer(mdp, 0.2, 0.0, None).kernel
    pin0 = B.pinned(mdp)
    assert pin0.any and np.array_equal(pin0.mask.astype(bool), mdp.terminal)
    assert np.all(pin0.value == 0.0)
    value = np.where(mdp.terminal, 3.5, 0.0)
    pin = B.Pinned(pin0.mask, True, value)
    V = np.random.default_rng(0).normal(size=S)
    for tiled_or_gs in (False, True):
        W = V.copy()
        chunks = B.chunks(np.array([0, S], dtype=np.int64))
        K._sweep(False, tiled_or_gs, False, chunks, B.model(mdp), reg, pin, V.copy(), W, False)
        np.testing.assert_array_equal(W[mdp.terminal], 3.5)


def test_model_bundle_is_cached_and_coded_fields_are_lossless():
    mdp = fs.gridworld(30, 40, slip=0.1)
    plain = B.model(mdp)
    assert B.model(mdp) is plain and plain.codes.size == 0
    assert plain.gamma == mdp.gamma and plain.R is mdp.rewards
    coded = B.model(mdp, coded=True, min_nnz=0)
    assert coded.codes.shape == (mdp.nnz,)
    rows = np.repeat(np.arange(mdp.n_states * mdp.n_actions), np.diff(mdp.indptr))
    np.testing.assert_array_equal(rows // mdp.n_actions + coded.offsets[coded.codes],
                                  mdp.indices)
    np.testing.assert_array_equal(coded.cprobs[coded.codes], mdp.probs)


def test_cache_keys_have_one_registry():
    mdp = fs.gridworld(3, 3)
    assert B.memo(mdp, "n_feasible", lambda: 7) is not None
    with pytest.raises(KeyError, match="unregistered"):
        B.memo(mdp, "something_else", lambda: 1)
    assert set(mdp._cache) <= set(B.CACHE_KEYS)


def test_regularizer_kernel_bundle_has_the_fields_of_the_regularizer():
    mdp = MDPS["grid"]
    reg = make_regularizer(mdp, 0.1, 0.4, _prior(mdp, 3))
    k = reg.kernel
    assert k.lam == reg.lam and k.has_bias and k.bias is reg.bias and k.sbias is reg.sbias
    e = B.entropy_only(0.25, mdp.n_states)
    assert e.lam == 0.25 and e.eta == 0.0 and not e.has_bias and e.log_prior is None


@pytest.mark.parametrize("order", ["jacobi", "gauss-seidel"])
@pytest.mark.parametrize("acceleration", [None, "anderson"])
def test_parallel_runs_write_their_certificates_through_the_bundles(order, acceleration):
    """Histories and certificates written through the work bundles, serial and parallel."""
    mdp = fs.gridworld(14, 11, slip=0.1, gamma=0.95)
    exact = ref.soft_value_iteration(mdp, 0.2, tol=1e-12)["V"]
    runs = [fs.soft_value_iteration(mdp, 0.2, tol=1e-8, order=order, parallel=par,
                                    acceleration=acceleration) for par in (False, True)]
    for res in runs:
        assert res.converged and res.n_iter > 3
        h = res.history["error_bound"]
        assert np.all(np.isfinite(h)) and h[0] > 1.0 and h[-1] <= 1e-8
        assert np.max(np.abs(res.V - exact)) <= res.error_bound + 1e-12
