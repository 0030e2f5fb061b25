"""Proximal / projection operators: values, optimality, per-channel thresholds, sparsity patterns."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparse_ae.sparse_coding import prox


def test_soft_threshold_is_the_l1_prox():
    """argmin_z ½(z − v)² + t|z| checked on a grid of candidates, scalar and per-channel t."""
    v = jnp.linspace(-2.0, 2.0, 24).reshape(4, 6)
    t = jnp.array([0.0, 0.1, 0.5, 1.0, 1.5, 3.0])
    z = prox.soft_threshold(v, t)
    values = jnp.linspace(-3.0, 3.0, 6001)
    grid = values[:, None, None]
    brute = values[jnp.argmin(0.5 * (grid - v) ** 2 + t * jnp.abs(grid), axis=0)]
    np.testing.assert_allclose(z, brute, atol=1e-3)
    np.testing.assert_allclose(prox.soft_threshold(v, 0.5), np.sign(v) * np.maximum(np.abs(v) - 0.5, 0), atol=1e-7)
    nonneg = prox.soft_threshold(v, t, nonneg=True)
    brute_nonneg = values[jnp.argmin(0.5 * (grid - v) ** 2 + t * jnp.abs(grid) + 1e9 * (grid < 0), axis=0)]
    np.testing.assert_allclose(nonneg, brute_nonneg, atol=1e-3)
    assert bool(jnp.all(nonneg >= 0))


def test_hard_threshold():
    v = jnp.array([[-2.0, -0.5, 0.2, 0.7], [1.0, -1.0, 0.0, 3.0]])
    np.testing.assert_allclose(prox.hard_threshold(v, 0.6), [[-2.0, 0.0, 0.0, 0.7], [1.0, -1.0, 0.0, 3.0]])
    np.testing.assert_array_equal(prox.hard_threshold(v, jnp.array([1.0, 1.0, 1.0, 2.5])),
                                  [[-2.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 3.0]])


def test_top_k_keeps_the_largest_magnitudes_per_example():
    x = jax.random.normal(jax.random.key(0), (3, 4, 5, 6))
    out = jax.jit(prox.top_k, static_argnums=1)(x, 7)
    flat_x, flat_out = np.asarray(x).reshape(3, -1), np.asarray(out).reshape(3, -1)
    for row_x, row_out in zip(flat_x, flat_out):
        keep = np.argsort(-np.abs(row_x))[:7]
        expected = np.zeros_like(row_x)
        expected[keep] = row_x[keep]
        np.testing.assert_array_equal(row_out, expected)
    # 1-D input is one example; vmap over examples equals the batched call.
    np.testing.assert_array_equal(jax.vmap(lambda r: prox.top_k(r, 7))(x.reshape(3, -1)), flat_out)
    ties = prox.top_k(jnp.ones((2, 10)), 3)
    assert int(jnp.count_nonzero(ties[0])) == 3 and int(jnp.count_nonzero(ties[1])) == 3


def test_needle_top_k_per_position():
    x = jax.random.normal(jax.random.key(1), (2, 3, 3, 8))
    out = np.asarray(jax.jit(prox.needle_top_k, static_argnums=1)(x, 2))
    xs = np.asarray(x)
    assert np.all(np.count_nonzero(out, axis=-1) == 2)
    kth = -np.sort(-np.abs(xs), axis=-1)[..., 1:2]
    np.testing.assert_array_equal(out, np.where(np.abs(xs) >= kth, xs, 0))


def test_gradients_pass_through_kept_entries():
    x = jnp.array([[3.0, -0.1, -2.0, 0.5]])
    g = jax.grad(lambda v: jnp.sum(prox.top_k(v, 2) * jnp.arange(1.0, 5.0)))(x)
    np.testing.assert_array_equal(g, [[1.0, 0.0, 3.0, 0.0]])
    g = jax.grad(lambda v: jnp.sum(prox.needle_top_k(v, 1)))(x)
    np.testing.assert_array_equal(g, [[1.0, 0.0, 0.0, 0.0]])
    g = jax.grad(lambda v, t: jnp.sum(prox.soft_threshold(v, t)), argnums=(0, 1))(x, 0.3)
    np.testing.assert_array_equal(g[0], [[1.0, 0.0, 1.0, 1.0]])
    np.testing.assert_allclose(g[1], -1.0)  # −Σ sign(x) over the support {3, −2, 0.5}


@pytest.mark.parametrize("call,match", [
    (lambda: prox.top_k(jnp.ones((2, 5)), 0), "k must be an integer in \\[1, 5\\]"),
    (lambda: prox.top_k(jnp.ones((2, 5)), 6), "entries per example"),
    (lambda: prox.needle_top_k(jnp.ones((2, 5, 3)), 4), "channels per position"),
])
def test_bad_k_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
