"""Dictionaries: the 2-D DCT (orthogonal and overcomplete), random unit-norm, normalisation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.fft

from sparse_ae.sparse_coding import dictionaries


@pytest.mark.parametrize("x64,tol", [(False, 1e-6), (True, 1e-12)])
def test_complete_dct_is_exactly_orthogonal(x64, tol):
    with jax.enable_x64(x64):
        D = dictionaries.overcomplete_dct(16, 256, dtype=jnp.float64 if x64 else jnp.float32)
        assert D.dtype == (jnp.float64 if x64 else jnp.float32)
    D = np.asarray(D, np.float64)  # the Gram of the stored entries, without float32 summation error
    assert D.shape == (256, 256)
    np.testing.assert_allclose(D.T @ D, np.eye(256), atol=tol)


def test_complete_dct_is_the_2d_dct_ii_basis():
    """Same atoms as scipy's orthonormal DCT-II (kron of 1-D basis vectors), DC atom first."""
    p = 8
    basis = scipy.fft.dct(np.eye(p), norm="ortho", axis=0)  # row k: 1-D basis vector k
    reference = np.stack([np.kron(basis[k1], basis[k2]) for k1 in range(p) for k2 in range(p)], axis=1)
    with jax.enable_x64(True):
        D = np.asarray(dictionaries.overcomplete_dct(p, p * p, dtype=jnp.float64))
    match = np.abs(D.T @ reference)  # a permutation matrix when the atom sets agree
    np.testing.assert_allclose(np.sort(match.max(axis=1)), np.ones(p * p), atol=1e-12)
    np.testing.assert_allclose(match.sum(axis=1), np.ones(p * p), atol=1e-10)
    np.testing.assert_allclose(D[:, 0], np.full(p * p, 1 / p), atol=1e-12)


def test_ksvd_dct_is_the_kronecker_product_of_ksvds_1d_atoms():
    """K-SVD's overcomplete DCT as SC-VAE's code builds it, rebuilt here with np.kron: 1-D atoms cos(π i k / m)
    with the mean removed from every non-constant one; pixel (r, c) of atom (k₁, k₂) is v_{k₂}(r)·v_{k₁}(c)."""
    p, m, k = 16, 23, 512
    v = np.cos(np.pi * np.outer(np.arange(p), np.arange(m)) / m)
    v[:, 1:] -= v[:, 1:].mean(axis=0)
    v /= np.linalg.norm(v, axis=0)
    kron = np.kron(v, v)  # row a·p + b, column k₁·m + k₂: v_{k₁}(a)·v_{k₂}(b)
    transposed = np.arange(p * p).reshape(p, p).T.reshape(-1)  # pixel (r, c) reads kron row (c, r)
    with jax.enable_x64(True):
        D = np.asarray(dictionaries.ksvd_dct(p, k, dtype=jnp.float64))
    np.testing.assert_allclose(D, kron[transposed, :k], atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(D, axis=0), 1.0, atol=1e-12)
    np.testing.assert_allclose(D[:, 0], 1 / p, atol=1e-12)  # the constant atom first
    gram = D.T @ D - np.eye(k)
    assert np.abs(gram).max() > 0.5  # not orthogonal: neighbouring frequencies correlate
    with pytest.raises(ValueError, match="patch_size and num_atoms must be >= 1"):
        dictionaries.ksvd_dct(4, 0)


@pytest.mark.parametrize("patch,atoms", [(16, 512), (8, 100), (8, 40)])
def test_overcomplete_dct_has_unit_norm_distinct_atoms(patch, atoms):
    D = np.asarray(dictionaries.overcomplete_dct(patch, atoms), np.float64)
    assert D.shape == (patch * patch, atoms)
    np.testing.assert_allclose(np.linalg.norm(D, axis=0), 1.0, atol=1e-6)
    gram = np.abs(D.T @ D) - np.eye(atoms)
    assert gram.max() < 0.99  # no repeated atom
    assert np.linalg.matrix_rank(D) == min(patch * patch, atoms)
    if atoms < patch * patch:  # a subset of the orthonormal basis
        np.testing.assert_allclose(gram.max(), 0.0, atol=1e-6)


def test_random_dictionary_and_normalize_columns():
    with jax.enable_x64(True):
        D = dictionaries.random_dictionary(jax.random.key(0), 20, 30, dtype=jnp.float64)
        assert D.shape == (20, 30) and D.dtype == jnp.float64
        np.testing.assert_allclose(jnp.linalg.norm(D, axis=0), 1.0, atol=1e-14)
    raw = jnp.array([[3.0, 0.0, 1.0], [4.0, 0.0, -1.0]])
    np.testing.assert_allclose(dictionaries.normalize_columns(raw),
                               [[0.6, 0.0, 2 ** -0.5], [0.8, 0.0, -(2 ** -0.5)]], rtol=1e-6)
    grad = jax.grad(lambda d: jnp.sum(dictionaries.normalize_columns(d) ** 2))(raw)
    assert np.all(np.isfinite(grad))  # finite at the zero column
    stacked = jax.jit(jax.vmap(dictionaries.normalize_columns))(jnp.stack([raw, 2 * raw]))
    np.testing.assert_allclose(stacked[0], stacked[1], rtol=1e-6)


def test_normalize_atoms_per_atom_over_space_and_channels():
    kernel = jax.random.normal(jax.random.key(1), (3, 3, 5, 2))
    out = dictionaries.normalize_atoms(kernel)
    np.testing.assert_allclose(jnp.sqrt(jnp.sum(out ** 2, axis=(0, 1, 3))), np.ones(5), rtol=1e-6)
    expected = kernel / jnp.linalg.norm(kernel.transpose(2, 0, 1, 3).reshape(5, -1), axis=1)[:, None]
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    batched = jax.vmap(dictionaries.normalize_atoms)(jnp.stack([kernel, 3 * kernel]))
    np.testing.assert_allclose(batched[1], out, rtol=1e-6)


def test_bad_shapes_and_sizes_raise():
    with pytest.raises(ValueError, match="shape \\(n, K\\)"):
        dictionaries.normalize_columns(jnp.ones(3))
    with pytest.raises(ValueError, match="kernel"):
        dictionaries.normalize_atoms(jnp.ones((3, 3, 2)))
    with pytest.raises(ValueError, match="num_atoms"):
        dictionaries.overcomplete_dct(8, 0)
    with pytest.raises(ValueError, match="n and k"):
        dictionaries.random_dictionary(jax.random.key(0), 0, 3)
