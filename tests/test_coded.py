"""Dictionary-coded transitions: lossless, and sweeps identical to the plain CSR."""

import numpy as np
import pytest
from conftest import dense_random_mdp

import fastsoft as fs
from fastsoft import _bundles
from fastsoft import reference as ref


def _decode(mdp, cz):
    codes, otab, ptab = cz
    rows = np.repeat(np.arange(mdp.n_states * mdp.n_actions), np.diff(mdp.indptr))
    return rows // mdp.n_actions + otab[codes], ptab[codes]


@pytest.mark.parametrize("mdp", [
    fs.gridworld(30, 40, slip=0.1, walls=[(3, 3), (4, 3)]),
    fs.gridworld(20, 20, slip=0.3, dtype=np.float32),
    fs.mattar_daw_maze(),
])
def test_codes_are_lossless(mdp):
    cz = _bundles.coded_arrays(mdp, min_nnz=0)
    assert cz[0].dtype == np.uint8 and cz[0].shape == (mdp.nnz,)
    assert 0 < len(cz[1]) <= 256
    idx, p = _decode(mdp, cz)
    np.testing.assert_array_equal(idx, mdp.indices)
    np.testing.assert_array_equal(p, np.asarray(mdp.probs, dtype=np.float64))
    # distinct pairs only
    assert len({(int(o), float(q)) for o, q in zip(cz[1], cz[2], strict=True)}) == len(cz[1])


def test_no_codes_when_they_do_not_pay():
    small = fs.gridworld(5, 5, slip=0.1)
    assert _bundles.coded_arrays(small)[0].size == 0  # below CODED_MIN_NNZ
    garnet = fs.random_mdp(2000, 4, 5, gamma=0.9, seed=0)  # > 256 distinct pairs
    assert _bundles.coded_arrays(garnet, min_nnz=0)[0].size == 0
    long_rows = dense_random_mdp(20, 2, 0.9, 0)  # rows of 20 entries
    assert _bundles.coded_arrays(long_rows, min_nnz=0)[0].size == 0


@pytest.mark.parametrize("tau", [0.0, 0.2])
@pytest.mark.parametrize("order", ["jacobi", "gauss-seidel"])
@pytest.mark.parametrize("parallel", [False, True])
def test_sweeps_are_identical(monkeypatch, tau, order, parallel):
    mdp = fs.gridworld(40, 50, slip=0.2, walls=[(5, 5), (6, 5), (7, 5)], gamma=0.97)
    out = []
    for min_nnz in (0, 10**15):
        monkeypatch.setattr(_bundles, "CODED_MIN_NNZ", min_nnz)
        assert (_bundles.coded_arrays(mdp)[0].size > 0) == (min_nnz == 0)
        out.append(fs.soft_value_iteration(mdp, tau, tol=1e-9, order=order, parallel=parallel))
    coded, plain = out
    assert coded.n_iter == plain.n_iter
    np.testing.assert_array_equal(coded.V, plain.V)
    np.testing.assert_array_equal(coded.history["error_bound"], plain.history["error_bound"])


@pytest.mark.parametrize("mdp", [
    fs.gridworld(30, 40, slip=0.1, walls=[(3, 3), (4, 3)]),
    fs.gridworld(20, 20, slip=0.3, dtype=np.float32),
    fs.mattar_daw_maze(),
    fs.random_mdp(300, 3, 4, gamma=0.9, seed=1),  # > 256 pairs
    dense_random_mdp(20, 2, 0.9, 0),  # rows of 20 entries
])
def test_codes_match_the_reference(mdp):
    exp = ref.dictionary_codes(mdp)
    got = _bundles.coded_arrays(mdp, min_nnz=0)
    if exp is None:
        assert got[0].size == 0
        return
    np.testing.assert_array_equal(got[0], exp[0])  # same numbering: first appearance
    np.testing.assert_array_equal(got[1], exp[1])
    np.testing.assert_array_equal(got[2], exp[2])
