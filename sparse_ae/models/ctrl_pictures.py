"""Pictures of a CTRL model's representation, pure JAX (jitted by the ``ctrl`` task's ``images``).

- :func:`principal_directions`: per class, the top principal directions of the features (the
  uncentred second-moment eigenvectors, signed towards the class mean); decoding them gives
  class-wise samples along principal directions, as in CTRL's figures.
- :func:`atom_images`: atoms of every stage, scaled to [0, 1] per atom (stage ℓ > 1 atoms have
  C_{ℓ−1} input channels, shown side by side).
- :func:`effective_atoms`: image-space atoms of stacked stages, D_1 ∗ … ∗ D_ℓ applied to a
  delta code, i.e. what one stage-ℓ atom draws in the image.
- :func:`class_moments` / :func:`decayed_moments` / :func:`class_samples`: a Gaussian per class
  fitted to (running) feature moments, and class-conditional draws from it put on the sphere;
  decoding them gives class-conditional samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from sparse_ae.models.csc_ctrl import unit_sphere
from sparse_ae.sparse_coding import operators
from sparse_ae.utils.images import rescale

NUM_DIRECTIONS = 8
SAMPLE_SEED = 20_251_205


def principal_directions(features: jax.Array, membership: jax.Array, num: int) -> jax.Array:
    """(k, num, d) unit directions: top eigenvectors of Σ_i Π_ij z_i z_iᵀ per class j, signed so
    that the class mean has a non-negative component along each."""
    counts = jnp.maximum(jnp.sum(membership, axis=0), 1.0)
    moments = jnp.einsum("nk,nd,ne->kde", membership, features, features) / counts[:, None, None]
    _, vecs = jnp.linalg.eigh(moments)                         # ascending eigenvalues
    top = jnp.swapaxes(vecs[:, :, ::-1][:, :, :num], 1, 2)     # (k, num, d)
    means = jnp.einsum("nk,nd->kd", membership, features) / counts[:, None]
    sign = jnp.where(jnp.einsum("kpd,kd->kp", top, means) < 0, -1.0, 1.0)
    return top * sign[..., None]


def atom_images(atoms: Sequence[jax.Array], prefix: str = "atoms") -> dict[str, jax.Array]:
    """{prefix/stage<ℓ>: (M, k, k·C', C'')}: stage atoms (k, k, M, C) as M images; with C not 1
    or 3 the C input channels are laid side by side as one gray image."""
    out = {}
    for level, a in enumerate(atoms):
        k1, k2, m, c = a.shape
        img = jnp.transpose(a, (2, 0, 1, 3))                   # (M, k, k, C)
        if c not in (1, 3):
            img = jnp.transpose(img, (0, 1, 3, 2)).reshape(m, k1, c * k2, 1)
        out[f"{prefix}/stage{level + 1}"] = rescale(img)
    return out


def effective_atoms(atoms: Sequence[jax.Array], strides: Sequence[int], boundary: str,
                    prefix: str = "effective_atoms") -> dict[str, jax.Array]:
    """{prefix/stage<ℓ>: (M_ℓ, R, R, C)} for ℓ ≥ 2: D_1 ∗ … ∗ D_ℓ of a delta at code position 0,
    cropped to the receptive field R = k_1 + Σ_{i≥2} (k_i − 1) s_1⋯s_{i−1}."""
    out = {}
    for level in range(1, len(atoms)):
        scale = math.prod(strides[:level + 1])
        field = atoms[0].shape[0] + sum((atoms[i].shape[0] - 1) * math.prod(strides[:i])
                                        for i in range(1, level + 1))
        grid = -(-field // scale) + 1                          # code grid whose image holds the field
        m = atoms[level].shape[2]
        z = jnp.zeros((m, grid, grid, m)).at[jnp.arange(m), 0, 0, jnp.arange(m)].set(1.0)
        for i in reversed(range(level + 1)):
            z = operators.conv_synthesis(atoms[i], z, stride=strides[i], boundary=boundary)
        out[f"{prefix}/stage{level + 1}"] = rescale(z[:, :field, :field, :])
    return out


def class_moments(features: jax.Array, membership: jax.Array) -> dict[str, jax.Array]:
    """Per-class sums of a batch: ``count`` (k,) = Σ_i Π_ij, ``sum`` (k, d) = Σ_i Π_ij z_i and
    ``second`` (k, d, d) = Σ_i Π_ij z_i z_iᵀ, for features (n, d) and memberships Π (n, k)."""
    return {"count": jnp.sum(membership, axis=0), "sum": membership.T @ features,
            "second": jnp.einsum("nk,nd,ne->kde", membership, features, features)}


def decayed_moments(running: dict, batch: dict, decay: float) -> dict:
    """Running sums: decay · running + batch, entry by entry (a count-weighted moving average)."""
    return jax.tree.map(lambda r, b: decay * r + b, running, batch)


def class_samples(moments: dict, labels: jax.Array, keys: jax.Array) -> jax.Array:
    """(n, d) unit vectors: per example a draw from N(μ_j, Σ_j) of its label j (mean and covariance
    of the moments, Σ_j = E[zzᵀ] − μ_j μ_jᵀ), with a key per example, projected to the sphere."""
    count = jnp.maximum(moments["count"], 1e-12)
    mean = moments["sum"] / count[:, None]
    cov = moments["second"] / count[:, None, None] - jnp.einsum("kd,ke->kde", mean, mean)
    values, vectors = jnp.linalg.eigh(0.5 * (cov + jnp.swapaxes(cov, 1, 2)))
    factors = vectors * jnp.sqrt(jnp.maximum(values, 0.0))[:, None, :]       # Σ_j = F_j F_jᵀ
    noise = jax.vmap(lambda key: jax.random.normal(key, (mean.shape[1],)))(keys)
    return unit_sphere(mean[labels] + jnp.einsum("nde,ne->nd", factors[labels], noise))


def example_keys(images: jax.Array, seed: int = SAMPLE_SEED) -> jax.Array:
    """(n,) PRNG keys, one per image, folded from the bits of a position-weighted pixel sum: an
    image draws the same noise whatever batch it comes in."""
    weights = jnp.linspace(1.0, 2.0, math.prod(images.shape[1:]), dtype=jnp.float32)
    bits = jax.lax.bitcast_convert_type(images.reshape(images.shape[0], -1) @ weights, jnp.uint32)
    return jax.vmap(lambda b: jax.random.fold_in(jax.random.key(seed), b))(bits)
