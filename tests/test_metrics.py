"""Metrics: fraction of non-zeros, Hoyer sparsity, NMSE in dB against NumPy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparse_ae.sparse_coding import metrics


def test_fraction_nonzero_axes_and_tolerance():
    z = np.array([[0.0, 1.0, -2.0, 0.0], [1e-3, 0.0, 0.0, 3.0]])
    assert float(metrics.fraction_nonzero(z)) == pytest.approx(4 / 8)
    np.testing.assert_allclose(metrics.fraction_nonzero(z, axis=1), [0.5, 0.5])
    np.testing.assert_allclose(metrics.fraction_nonzero(z, axis=0, tol=1e-2), [0.0, 0.5, 0.5, 0.5])
    assert float(jax.jit(metrics.fraction_nonzero)(jnp.asarray(z))) == pytest.approx(0.5)


def test_hoyer_sparsity_reference_values_and_extremes():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4, 3, 10))
    n = 10
    expected = (np.sqrt(n) - np.abs(z).sum(-1) / np.linalg.norm(z, axis=-1)) / (np.sqrt(n) - 1)
    np.testing.assert_allclose(metrics.hoyer_sparsity(z), expected, rtol=1e-5)
    flat = z.reshape(4, 30)
    expected_2 = (np.sqrt(30) - np.abs(flat).sum(-1) / np.linalg.norm(flat, axis=-1)) / (np.sqrt(30) - 1)
    np.testing.assert_allclose(metrics.hoyer_sparsity(z, axis=(1, 2)), expected_2, rtol=1e-5)
    extremes = jnp.array([[0.0, 5.0, 0.0, 0.0], [2.0, -2.0, 2.0, 2.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(metrics.hoyer_sparsity(extremes), [1.0, 0.0, 1.0], atol=1e-6)
    grad = jax.grad(lambda v: jnp.sum(metrics.hoyer_sparsity(v)))(extremes)
    assert np.all(np.isfinite(grad))
    with pytest.raises(ValueError, match="at least 2"):
        metrics.hoyer_sparsity(jnp.ones((3, 1)))


@pytest.mark.parametrize("x64", [False, True])
def test_nmse_db_pooled_and_per_sample(x64):
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(8, 20)) * rng.uniform(0.1, 3.0, size=(8, 1))
    est = ref + 0.1 * rng.normal(size=ref.shape)
    pooled = 10 * np.log10(np.sum((est - ref) ** 2) / np.sum(ref ** 2))
    per_sample = 10 * np.log10(np.mean(np.sum((est - ref) ** 2, -1) / np.sum(ref ** 2, -1)))
    with jax.enable_x64(x64):
        dtype = jnp.float64 if x64 else jnp.float32
        e, r = jnp.asarray(est, dtype), jnp.asarray(ref, dtype)
        got_pooled = jax.jit(metrics.nmse_db)(e, r)
        got_per_sample = metrics.nmse_db(e, r, per_sample=True)
        batched = jax.vmap(lambda a, b: metrics.nmse_db(a, b))(e, r)
        silent = metrics.nmse_db(jnp.zeros_like(r), r)
        assert got_pooled.dtype == dtype
    rtol = 1e-12 if x64 else 1e-5
    np.testing.assert_allclose(got_pooled, pooled, rtol=rtol)
    np.testing.assert_allclose(got_per_sample, per_sample, rtol=rtol)
    assert abs(pooled - per_sample) > 0.1  # the two conventions differ on this batch
    np.testing.assert_allclose(batched, 10 * np.log10(np.sum((est - ref) ** 2, -1) / np.sum(ref ** 2, -1)),
                               rtol=rtol)
    assert float(silent) == pytest.approx(0.0, abs=1e-6)


def test_nmse_db_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="estimate shape"):
        metrics.nmse_db(jnp.ones((2, 3)), jnp.ones((3, 2)))
