"""Sparsity and recovery metrics (jit- and vmap-able; any float dtype).

- fraction_nonzero: share of entries with |z| > tol.
- hoyer_sparsity: (√n − ‖z‖₁/‖z‖₂)/(√n − 1) per vector; 1 = one non-zero, 0 = all equal magnitude.
- nmse_db: normalised squared error in dB. Pooled by default,
  10·log10(Σ‖ẑ − z‖² / Σ‖z‖²) over the whole batch, as the reference LISTA / LISTA-CP / ALISTA
  code computes it; ``per_sample=True`` averages the per-sample ratios ‖ẑᵢ − zᵢ‖²/‖zᵢ‖² first.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

Axis = int | tuple[int, ...] | None


def _axes(ndim: int, axis: Axis) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis={axis} is out of range for an array with {ndim} dimensions")
    return tuple(a % ndim for a in axes)


def fraction_nonzero(z: jax.Array, axis: Axis = None, tol: float = 0.0) -> jax.Array:
    """Mean of (|z| > tol) over ``axis`` (None: all entries) as a float array."""
    z = jnp.asarray(z)
    dtype = z.dtype if jnp.issubdtype(z.dtype, jnp.floating) else jnp.float32
    return jnp.mean(jnp.abs(z) > tol, axis=_axes(z.ndim, axis), dtype=dtype)


def hoyer_sparsity(z: jax.Array, axis: Axis = -1) -> jax.Array:
    """Hoyer sparsity of the vectors along ``axis`` (all other axes are kept).

    n is the number of entries per vector (n ≥ 2). An all-zero vector counts as maximally
    sparse (1). Gradients are finite everywhere.
    """
    z = jnp.asarray(z)
    axes = _axes(z.ndim, axis)
    n = math.prod(z.shape[a] for a in axes)
    if n < 2:
        raise ValueError(f"hoyer_sparsity needs at least 2 entries per vector along axis={axis}, got {n}")
    l1 = jnp.sum(jnp.abs(z), axis=axes)
    squared = jnp.sum(jnp.square(z), axis=axes)
    zero = squared == 0
    l2 = jnp.sqrt(jnp.where(zero, 1.0, squared))
    sqrt_n = math.sqrt(n)
    return jnp.where(zero, 1.0, (sqrt_n - l1 / l2) / (sqrt_n - 1.0)).astype(l1.dtype)


def nmse_db(estimate: jax.Array, reference: jax.Array, axis: Axis = -1, per_sample: bool = False) -> jax.Array:
    """Normalised mean squared error of ``estimate`` against ``reference`` in dB (scalar).

    Pooled (default): 10·log10(Σ‖ẑ − z‖² / Σ‖z‖²) over all entries. ``per_sample=True``:
    10·log10(mean_i ‖ẑᵢ − zᵢ‖²/‖zᵢ‖²), where a sample's vector spans ``axis`` (default: the last
    axis, e.g. codes (..., K)) and the mean runs over the remaining axes.
    """
    estimate, reference = jnp.asarray(estimate), jnp.asarray(reference)
    if estimate.shape != reference.shape:
        raise ValueError(f"estimate shape {estimate.shape} must equal reference shape {reference.shape}")
    error = jnp.square(estimate - reference)
    energy = jnp.square(reference)
    if per_sample:
        axes = _axes(reference.ndim, axis)
        ratio = jnp.mean(jnp.sum(error, axis=axes) / jnp.sum(energy, axis=axes))
    else:
        ratio = jnp.sum(error) / jnp.sum(energy)
    return 10.0 * jnp.log10(ratio)
