"""Coding rates and rate reduction (MCR², CTRL) as pure functions of features.

Conventions. Features ``z``: (n, d), one sample per row, normally on the unit sphere.
``eps_sq`` is ε² (not ε). The coding rate of n samples is

    R(Z) = ½ logdet(I_d + d / (n ε²) ZᵀZ) = ½ logdet(I_n + d / (n ε²) Z Zᵀ)

(the two Grams have the same non-zero spectrum; :func:`coding_rate` takes the smaller one).
Class membership is a fixed-shape weight matrix ``membership``: (n, k), one-hot rows for labels;
an all-zero row leaves a sample out. Per-class quantities never index with booleans: the
class Grams are masked sums ``G_j = Σ_i Π_ij z_i z_iᵀ`` with counts ``n_j = Σ_i Π_ij``, so a
class absent from the batch gives G_j = 0 and contributes nothing.

Across devices, Grams and counts are sufficient statistics: compute them per shard, ``psum``
over the data axis (``axis_name``), then every rate below is that of the global batch.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

LOGDET_METHODS = ("slogdet", "cholesky", "eigh")
# Fastest value-and-gradient of the CTRL game on XLA:CPU (benchmarks/ctrl_rate_terms.py).
DEFAULT_LOGDET = "slogdet"


class GramStats(NamedTuple):
    """Sufficient statistics of a grouped feature set: ``grams`` (k, d, d), ``counts`` (k,)."""

    grams: jax.Array
    counts: jax.Array


def logdet_spd(m: jax.Array, method: str = DEFAULT_LOGDET) -> jax.Array:
    """log det of symmetric positive-definite matrices (..., p, p) -> (...), symmetrised first.

    ``method``: ``"slogdet"`` (LU), ``"eigh"`` (Σ log eigvalsh), or ``"cholesky"`` (2 Σ log diag
    of the Cholesky factor, one matrix at a time with ``lax.map``: several independent batched
    Cholesky factorisations in one XLA:CPU program were seen to deadlock).
    """
    if method not in LOGDET_METHODS:
        raise ValueError(f"logdet method={method!r} is not one of {LOGDET_METHODS}")
    m = 0.5 * (m + jnp.swapaxes(m, -1, -2))
    if method == "eigh":
        return jnp.sum(jnp.log(jnp.linalg.eigvalsh(m)), axis=-1)
    if method == "slogdet":
        return jnp.linalg.slogdet(m)[1]
    p = m.shape[-1]
    flat = m.reshape((-1, p, p))
    out = jax.lax.map(lambda a: 2.0 * jnp.sum(jnp.log(jnp.diagonal(jnp.linalg.cholesky(a)))), flat)
    return out.reshape(m.shape[:-2])


def rate_from_gram(gram: jax.Array, count: jax.Array, eps_sq: float, dim: int,
                   method: str = DEFAULT_LOGDET) -> jax.Array:
    """½ logdet(I + dim / (count ε²) · gram) for grams (..., p, p), counts (...) -> (...).

    ``dim`` is the feature dimension d (the scale uses d even when ``gram`` is the n × n Gram).
    A zero count (empty group, zero Gram) gives exactly 0.
    """
    scale = dim / (jnp.maximum(count, 1.0) * eps_sq)
    eye = jnp.eye(gram.shape[-1], dtype=gram.dtype)
    return 0.5 * logdet_spd(eye + scale[..., None, None] * gram, method)


def _check_features(z: jax.Array, name: str = "z") -> None:
    """Shape check; outside jit also a finiteness check (inside jit a NaN shows in the metrics)."""
    if z.ndim != 2:
        raise ValueError(f"{name} must be (n, d) features, got shape {z.shape}")
    if not isinstance(z, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(z))):
        raise ValueError(f"{name} holds non-finite features (NaN/Inf): check the encoder output "
                         "and the learning rate")


def coding_rate(z: jax.Array, eps_sq: float, method: str = DEFAULT_LOGDET) -> jax.Array:
    """R(Z) of all rows of ``z`` (n, d), via the smaller of the n × n and d × d Grams."""
    _check_features(z)
    n, d = z.shape
    gram = z @ z.T if n < d else z.T @ z
    return rate_from_gram(gram, jnp.asarray(n, z.dtype), eps_sq, d, method)


def group_stats(z: jax.Array, membership: jax.Array, axis_name: str | None = None) -> GramStats:
    """Masked per-group Grams Σ_i Π_ij z_i z_iᵀ (k, d, d) and counts Σ_i Π_ij (k,).

    With ``axis_name`` (inside ``shard_map``/``vmap`` over that axis) both are summed over it.
    """
    _check_features(z)
    if membership.ndim != 2 or membership.shape[0] != z.shape[0]:
        raise ValueError(f"membership must be (n, k) with n = {z.shape[0]} rows, got {membership.shape}")
    membership = membership.astype(z.dtype)
    stats = GramStats(jnp.einsum("nk,nd,ne->kde", membership, z, z), jnp.sum(membership, axis=0))
    if axis_name is not None:
        stats = jax.lax.psum(stats, axis_name)
    return stats


def total_stats(stats: GramStats) -> GramStats:
    """The statistics of all grouped samples together, (1, d, d) and (1,)."""
    return GramStats(jnp.sum(stats.grams, 0, keepdims=True), jnp.sum(stats.counts, 0, keepdims=True))


def compressed_rate_from_rates(class_rates: jax.Array, counts: jax.Array) -> jax.Array:
    """R_c = Σ_j (n_j / n) R(Z_j) from per-class rates (k,) and counts (k,)."""
    return jnp.sum(counts * class_rates) / jnp.maximum(jnp.sum(counts), 1.0)


def compressed_rate(z: jax.Array, membership: jax.Array, eps_sq: float, method: str = DEFAULT_LOGDET) -> jax.Array:
    """R_c(Z, Π) = Σ_j (n_j/n) ½ logdet(I + d/(n_j ε²) Z_jᵀZ_j), n = number of grouped samples."""
    stats = group_stats(z, membership)
    rates = rate_from_gram(stats.grams, stats.counts, eps_sq, z.shape[1], method)
    return compressed_rate_from_rates(rates, stats.counts)


def rate_reduction(z: jax.Array, membership: jax.Array, eps_sq: float, method: str = DEFAULT_LOGDET) -> jax.Array:
    """ΔR(Z, Π) = R(Z) − R_c(Z, Π) over the grouped samples (MCR²)."""
    stats = group_stats(z, membership)
    d = z.shape[1]
    total = total_stats(stats)
    rates = rate_from_gram(jnp.concatenate([total.grams, stats.grams]),
                           jnp.concatenate([total.counts, stats.counts]), eps_sq, d, method)
    return rates[0] - compressed_rate_from_rates(rates[1:], stats.counts)


def pairwise_rate_reduction(z: jax.Array, z_hat: jax.Array, membership: jax.Array, eps_sq: float,
                            method: str = DEFAULT_LOGDET) -> jax.Array:
    """Per-group ΔR(Z_j, Ẑ_j) = R(Z_j ∪ Ẑ_j) − ½(R(Z_j) + R(Ẑ_j)) -> (k,).

    ``z`` and ``z_hat`` (n, d) share ``membership`` (n, k) (Ẑ_j: the reconstructions of Z_j).
    """
    sz, sh = group_stats(z, membership), group_stats(z_hat, membership)
    grams = jnp.concatenate([sz.grams, sh.grams, sz.grams + sh.grams])
    counts = jnp.concatenate([sz.counts, sh.counts, sz.counts + sh.counts])
    r_z, r_h, r_u = jnp.split(rate_from_gram(grams, counts, eps_sq, z.shape[1], method), 3)
    return r_u - 0.5 * (r_z + r_h)


def samplewise_rate_reduction(z: jax.Array, z_hat: jax.Array, eps_sq: float) -> jax.Array:
    """Per-sample ΔR(z_i, ẑ_i) = R({z_i, ẑ_i}) − ½(R(z_i) + R(ẑ_i)) -> (n,), closed form.

    Each pair is its own group of two samples: R({z, ẑ}) = ½ log det(I₂ + d/(2ε²) G) with the
    2 × 2 Gram G = [[zᵀz, zᵀẑ], [ẑᵀz, ẑᵀẑ]], and R(z) = ½ log(1 + d/ε² zᵀz). On the sphere it
    depends only on the cosine c = zᵀẑ and is smallest (0) at c = ±1.
    """
    _check_features(z)
    _check_features(z_hat, "z_hat")
    d = z.shape[1]
    a, b, c = jnp.sum(z * z, 1), jnp.sum(z_hat * z_hat, 1), jnp.sum(z * z_hat, 1)
    s2 = d / (2.0 * eps_sq)
    r_pair = 0.5 * jnp.log((1 + s2 * a) * (1 + s2 * b) - (s2 * c) ** 2)
    r_single = 0.25 * (jnp.log1p(2 * s2 * a) + jnp.log1p(2 * s2 * b))
    return r_pair - r_single
