"""Dictionaries: overcomplete 2-D DCTs (DCT-II, K-SVD's), random unit-norm, column / atom normalisation.

Dense dictionaries are (n, K) with atoms as columns; conv kernels are (k, k, M, C) with one
atom per index m. Normalisation is functional (returns a new array) and gradient-safe at zero.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

DEFAULT_EPS = 1e-12


def _unit_norm(x: jax.Array, axis, eps: float) -> jax.Array:
    """x / max(‖x‖, eps) with the norm over ``axis`` (zero stays zero; no NaN gradient at zero)."""
    squared = jnp.sum(jnp.square(x), axis=axis, keepdims=True)
    return x * jax.lax.rsqrt(jnp.maximum(squared, jnp.asarray(eps, x.dtype) ** 2))


def normalize_columns(D: jax.Array, eps: float = DEFAULT_EPS) -> jax.Array:
    """Dense dictionary (n, K) with each column scaled to unit ℓ2 norm."""
    if jnp.ndim(D) != 2:
        raise ValueError(f"D must be a dense dictionary of shape (n, K), got shape {jnp.shape(D)}")
    return _unit_norm(D, 0, eps)


def normalize_atoms(kernel: jax.Array, eps: float = DEFAULT_EPS) -> jax.Array:
    """Conv kernel (kh, kw, M, C) with each atom m scaled to unit ℓ2 norm over (kh, kw, C)."""
    if jnp.ndim(kernel) != 4:
        raise ValueError(f"kernel must have shape (kh, kw, M, C), got shape {jnp.shape(kernel)}")
    return _unit_norm(kernel, (0, 1, 3), eps)


def random_dictionary(key: jax.Array, n: int, k: int, dtype=jnp.float32) -> jax.Array:
    """(n, k) dictionary with i.i.d. Gaussian columns scaled to unit norm."""
    if n < 1 or k < 1:
        raise ValueError(f"n and k must be >= 1, got n={n}, k={k}")
    return normalize_columns(jax.random.normal(key, (n, k), dtype))


def overcomplete_dct(patch_size: int, num_atoms: int, dtype=jnp.float32) -> jax.Array:
    """2-D separable DCT dictionary (p², K) for p×p patches flattened row-major, unit-norm columns.

    With m = max(p, ⌈√K⌉) frequencies per axis, the 1-D atoms are c_k(i) = cos(π k (2i + 1) / (2m)),
    i < p, k < m (DCT-II sampled on a finer frequency grid when m > p), and the 2-D atoms are
    c_{k1}(i)·c_{k2}(j). The K atoms of lowest radial frequency k1² + k2² are kept (ties by k1,
    then k2), DC first. For K ≤ p² (m = p) they are a subset of the orthonormal 2-D DCT-II basis,
    so DᵀD = I; e.g. (16, 256) is the orthogonal 256×256 DCT and (16, 512) a 2×-overcomplete one.
    """
    if patch_size < 1 or num_atoms < 1:
        raise ValueError(f"patch_size and num_atoms must be >= 1, got {patch_size}, {num_atoms}")
    m = max(patch_size, math.isqrt(num_atoms - 1) + 1)
    i = np.arange(patch_size)[:, None]
    freqs = np.arange(m)[None, :]
    basis = np.cos(np.pi * freqs * (2 * i + 1) / (2 * m))  # (p, m)
    k1, k2 = np.meshgrid(np.arange(m), np.arange(m), indexing="ij")
    k1, k2 = k1.ravel(), k2.ravel()
    order = np.lexsort((k2, k1, k1 ** 2 + k2 ** 2))[:num_atoms]
    atoms = basis[:, None, k1[order]] * basis[None, :, k2[order]]  # (p, p, K)
    atoms = atoms.reshape(patch_size * patch_size, num_atoms)
    atoms /= np.linalg.norm(atoms, axis=0, keepdims=True)
    return jnp.asarray(atoms, dtype)


def ksvd_dct(patch_size: int, num_atoms: int, dtype=jnp.float32) -> jax.Array:
    """K-SVD's overcomplete 2-D DCT (Aharon, Elad & Bruckstein 2006), (p², K), unit-norm columns, as SC-VAE's
    code builds its dictionary.

    With m = max(p, ⌈√K⌉) frequencies, the 1-D atoms are v_k(i) = cos(π i k / m), i < p, k < m, each
    but the constant one (k = 0) with its mean removed, then unit-normed; atom (k₁, k₂) is the p×p
    patch v_{k₂}(row)·v_{k₁}(column), flattened row-major, and the first K of the m² atoms in the
    order k₁·m + k₂ are kept (p = 16, K = 512: m = 23, the atoms k₁ = 22, k₂ ≥ 6 dropped). Unlike
    :func:`overcomplete_dct`, no subset is orthogonal: the 1-D atoms sample cosines at the patch's
    corners, not its centres, and the mean removal couples them.
    """
    if patch_size < 1 or num_atoms < 1:
        raise ValueError(f"patch_size and num_atoms must be >= 1, got {patch_size}, {num_atoms}")
    m = max(patch_size, math.isqrt(num_atoms - 1) + 1)
    basis = np.cos(np.pi * np.arange(patch_size)[:, None] * np.arange(m)[None, :] / m)  # (p, m)
    basis[:, 1:] -= basis[:, 1:].mean(axis=0)
    basis /= np.linalg.norm(basis, axis=0)
    atoms = basis[:, None, None, :] * basis[None, :, :, None]  # (row, column, k₁, k₂)
    return jnp.asarray(atoms.reshape(patch_size * patch_size, m * m)[:, :num_atoms], dtype)


# ----------------------------------------------------------------------------------------------
# Atom restarts: which atoms are unused or delayed copies, and where to restart them
# ----------------------------------------------------------------------------------------------

def residual_windows(residual: jax.Array, kernel_hw: tuple[int, int]) -> jax.Array:
    """(B, H, W, C) -> (B, kh, kw, C): each example's kh×kw window of largest ‖r‖²."""
    kh, kw = kernel_hw
    energy = jax.lax.reduce_window(jnp.sum(residual ** 2, axis=-1), 0.0, jax.lax.add, (1, kh, kw),
                                   (1, 1, 1), "VALID")
    flat = jnp.argmax(energy.reshape(energy.shape[0], -1), axis=1)
    rows, cols = jnp.unravel_index(flat, energy.shape[1:])
    take = lambda r, i, j: jax.lax.dynamic_slice(r, (i, j, 0), (kh, kw, r.shape[-1]))  # noqa: E731
    return jax.vmap(take)(residual, rows, cols)


def shift_coherence(kernel: jax.Array) -> jax.Array:
    """(M, M) max over 2-D delays of |⟨h_m, delayed h_n⟩| of the unit atoms of ``kernel``
    (kh, kw, M, C); the diagonal is 1."""
    kh, kw = kernel.shape[:2]
    atoms = jnp.transpose(normalize_atoms(kernel), (2, 3, 0, 1))          # (M, C, kh, kw)
    corr = jax.lax.conv_general_dilated(atoms, atoms, (1, 1), ((kh - 1, kh - 1), (kw - 1, kw - 1)))
    return jnp.abs(corr).max(axis=(2, 3))


def atoms_to_restart(kernel: jax.Array, code: jax.Array, coherence: float) -> jax.Array:
    """(M,) bool: atoms with no non-zero entry in ``code`` (B', h, w, M), and atoms with a delayed
    copy (shift coherence > ``coherence``) among the atoms used more (ties: the lower index)."""
    usage = jnp.sum(code != 0, axis=(0, 1, 2))
    mine, theirs = usage[:, None], usage[None, :]
    lower = jnp.arange(usage.shape[0])[None, :] < jnp.arange(usage.shape[0])[:, None]
    busier = (theirs > mine) | ((theirs == mine) & lower)           # [m, n]: atom n is busier than m
    copies = jnp.any((shift_coherence(kernel) > coherence) & busier, axis=1)
    return (usage == 0) | copies
