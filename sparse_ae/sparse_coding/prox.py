"""Proximal and projection operators for sparse codes.

Thresholds are a scalar or per-channel (broadcast on the last axis, e.g. shape (M,)); they are
used as given (a learned threshold is not clipped). ``top_k`` treats axis 0 as the batch (a 1-D
input is one example); ``needle_top_k`` works per position over the last (channel) axis.
All functions are jit/vmap/grad-compatible; the kept entries pass gradients through unchanged.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def soft_threshold(x: jax.Array, threshold, nonneg: bool = False) -> jax.Array:
    """Prox of t·‖·‖₁: sign(x)·max(|x| − t, 0); with ``nonneg``, prox of t·‖·‖₁ + ι_{z ≥ 0}: max(x − t, 0)."""
    if nonneg:
        return jnp.maximum(x - threshold, 0)
    return jnp.sign(x) * jnp.maximum(jnp.abs(x) - threshold, 0)


def hard_threshold(x: jax.Array, threshold) -> jax.Array:
    """x where |x| > t, else 0 (prox of the ℓ0 penalty t²/2·‖·‖₀)."""
    return jnp.where(jnp.abs(x) > threshold, x, jnp.zeros_like(x))


def _check_k(k: int, size: int, what: str) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= size:
        raise ValueError(f"k must be an integer in [1, {size}] ({what}), got {k!r}")


def top_k(x: jax.Array, k: int) -> jax.Array:
    """Keep the k largest-|x| entries of each example (over all non-batch axes), zero the rest.

    x: (B, ...) with axis 0 the batch, or 1-D (one example). Exactly k entries are kept (ties
    broken by position), i.e. the projection onto {‖z‖₀ ≤ k}.
    """
    flat = x.reshape((1, -1) if x.ndim == 1 else (x.shape[0], -1))
    _check_k(k, flat.shape[1], "entries per example")
    _, index = jax.lax.top_k(jnp.abs(flat), k)
    keep = jnp.zeros(flat.shape, bool).at[jnp.arange(flat.shape[0])[:, None], index].set(True)
    return jnp.where(keep, flat, jnp.zeros_like(flat)).reshape(x.shape)


def needle_top_k(x: jax.Array, k: int) -> jax.Array:
    """Keep the k largest-|x| channels (last axis) at every position, zero the rest (ℓ0,∞ "needles")."""
    channels = x.shape[-1]
    _check_k(k, channels, "channels per position")
    _, index = jax.lax.top_k(jnp.abs(x), k)  # (..., k)
    keep = jnp.any(index[..., :, None] == jnp.arange(channels), axis=-2)
    return jnp.where(keep, x, jnp.zeros_like(x))
