"""Dense and conv dictionary operators: definition, exact adjoints, Lipschitz constants, input checks."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparse_ae.sparse_coding import operators


def brute_force_synthesis(kernel: np.ndarray, z: np.ndarray, stride: int, boundary: str) -> np.ndarray:
    """x[b, p, c] = Σ_m Σ_q kernel[p − s·q, m, c] z[b, q, m] by explicit loops (the documented definition)."""
    kh, kw, _, channels = kernel.shape
    batch, hq, wq, _ = z.shape
    height, width = hq * stride, wq * stride
    x = np.zeros((batch, height, width, channels))
    for qi, qj, i, j in itertools.product(range(hq), range(wq), range(kh), range(kw)):
        pi, pj = stride * qi + i, stride * qj + j
        if boundary == "zero" and (pi >= height or pj >= width):
            continue
        x[:, pi % height, pj % width] += z[:, qi, qj] @ kernel[i, j]
    return x


@pytest.mark.parametrize("stride,boundary,kernel_shape", [
    (1, "circular", (3, 3, 2, 1)), (1, "zero", (3, 2, 2, 3)), (2, "circular", (4, 4, 3, 2)),
    (2, "zero", (5, 3, 2, 1)), (3, "circular", (2, 2, 2, 2)), (3, "zero", (7, 7, 1, 1)),
])
def test_conv_synthesis_matches_definition(stride, boundary, kernel_shape):
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal(kernel_shape).astype(np.float32)
    z = rng.standard_normal((2, 12 // stride, 6 // stride, kernel_shape[2])).astype(np.float32)
    x = jax.jit(operators.conv_synthesis, static_argnums=(2, 3))(kernel, z, stride, boundary)
    np.testing.assert_allclose(x, brute_force_synthesis(kernel, z, stride, boundary), rtol=1e-5, atol=1e-5)


def test_circular_stride1_is_fft_convolution():
    """Circular stride 1 = Σ_m IFFT(FFT(d_m) FFT(z_m)) with d_m zero-padded at origin [0, 0] (SPORCO)."""
    rng = np.random.default_rng(1)
    kernel = rng.standard_normal((5, 5, 4, 1))
    z = rng.standard_normal((1, 16, 16, 4))
    spectrum = np.fft.fft2(kernel[..., 0], s=(16, 16), axes=(0, 1)) * np.fft.fft2(z[0], axes=(0, 1))
    expected = np.real(np.fft.ifft2(spectrum.sum(-1), axes=(0, 1)))
    x = jax.jit(operators.conv_synthesis)(kernel.astype(np.float32), z.astype(np.float32))
    np.testing.assert_allclose(x[0, ..., 0], expected, atol=1e-4)


def _adjoint_gap(op: operators.LinearOperator, z: jax.Array, r: jax.Array) -> float:
    """|⟨Az, r⟩ − ⟨z, Aᵀr⟩| / (‖Az‖‖r‖), computed in one jitted call."""
    def gap(z, r):
        az = op.forward(z)
        return jnp.abs(jnp.vdot(az, r) - jnp.vdot(z, op.adjoint(r))) / (jnp.linalg.norm(az) * jnp.linalg.norm(r))
    return float(jax.jit(gap)(z, r))


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("boundary", ["circular", "zero"])
@pytest.mark.parametrize("channels", [1, 3])
def test_conv_adjointness(stride, boundary, channels):
    k1, k2, k3 = jax.random.split(jax.random.key(stride * 10 + channels), 3)
    kernel = jax.random.normal(k1, (3, 4, 5, channels))
    signal = (2, 8, 12, channels)
    z = jax.random.normal(k2, operators.code_shape(signal, kernel.shape, stride))
    r = jax.random.normal(k3, signal)
    op = operators.conv_operator(kernel, stride, boundary)
    assert jax.eval_shape(op.forward, z).shape == signal
    assert jax.eval_shape(op.adjoint, r).shape == z.shape
    assert _adjoint_gap(op, z, r) < 1e-6


@pytest.mark.parametrize("stride, kernel_hw, signal_hw", [(1, (3, 4), (8, 12)), (2, (3, 4), (8, 12)),
                                                         (7, (11, 11), (25, 32))])
@pytest.mark.parametrize("boundary", operators.PATCH_BOUNDARIES)
def test_patch_operator_adjointness(stride, kernel_hw, signal_hw, boundary):
    k1, k2, k3 = jax.random.split(jax.random.key(stride), 3)
    kernel = jax.random.normal(k1, (*kernel_hw, 5, 2))
    signal = (2, *signal_hw, 2)
    z = jax.random.normal(k2, operators.patch_code_shape(signal, kernel.shape, stride, boundary))
    r = jax.random.normal(k3, (2, *(operators.signal_size(a, k, stride, boundary)
                                    for a, k in zip(z.shape[1:3], kernel_hw)), 2))
    op = operators.patch_operator(kernel, stride, boundary)
    assert jax.eval_shape(op.forward, z).shape == r.shape
    assert jax.eval_shape(op.adjoint, r).shape == z.shape
    assert _adjoint_gap(op, z, r) < 1e-6


def test_adjointness_float64_and_dense():
    with jax.enable_x64(True):
        rng = np.random.default_rng(2)
        kernel = jnp.asarray(rng.standard_normal((5, 5, 3, 2)))
        z = jnp.asarray(rng.standard_normal((2, 5, 5, 3)))
        r = jnp.asarray(rng.standard_normal((2, 10, 10, 2)))
        op = operators.conv_operator(kernel, stride=2)
        assert jax.eval_shape(op.forward, z).dtype == jnp.float64
        assert _adjoint_gap(op, z, r) < 1e-14
        D = jnp.asarray(rng.standard_normal((20, 30)))
        assert _adjoint_gap(operators.dense_operator(D), jnp.asarray(rng.standard_normal((4, 30))),
                            jnp.asarray(rng.standard_normal((4, 20)))) < 1e-14
    D32 = jax.random.normal(jax.random.key(0), (20, 30))
    dense = operators.dense_operator(D32)
    assert _adjoint_gap(dense, jnp.ones((30,)), jnp.arange(20.0)) < 1e-6
    np.testing.assert_allclose(dense.forward(jnp.eye(30)), D32.T, rtol=1e-6)


def test_leading_axes_jit_and_vmap():
    k1, k2 = jax.random.split(jax.random.key(3))
    kernel = jax.random.normal(k1, (3, 3, 4, 2))
    z = jax.random.normal(k2, (2, 3, 4, 4, 4))
    synthesis = jax.jit(lambda zz: operators.conv_synthesis(kernel, zz, 2))
    batched = synthesis(z)
    assert batched.shape == (2, 3, 8, 8, 2)
    single = synthesis(z[0, 0])
    np.testing.assert_allclose(single, batched[0, 0], rtol=1e-5, atol=1e-5)
    mapped = jax.jit(jax.vmap(lambda zz: operators.conv_synthesis(kernel, zz, 2)))(z[0])
    np.testing.assert_allclose(mapped, batched[0], rtol=1e-5, atol=1e-5)


def test_power_iteration_matches_closed_forms():
    key = jax.random.key(4)
    D = jax.random.normal(key, (30, 50))
    lip, v = jax.jit(lambda d: operators.power_iteration(operators.dense_operator(d), jnp.ones(50), 300))(D)
    np.testing.assert_allclose(lip, np.linalg.norm(np.asarray(D), 2) ** 2, rtol=1e-3)
    np.testing.assert_allclose(jnp.linalg.norm(v), 1.0, rtol=1e-5)
    @jax.jit
    def both(kernel, v0):
        estimate, _ = operators.power_iteration(operators.conv_operator(kernel), v0, 200)
        return estimate, operators.circular_lipschitz(kernel, (16, 16))

    for shape in [(5, 5, 6, 1), (3, 3, 4, 3), (3, 3, 2, 3)]:  # C = 1, M > C, M < C
        kernel = jax.random.normal(jax.random.fold_in(key, shape[2] * 10 + shape[3]), shape)
        estimate, exact = both(kernel, jax.random.normal(key, (1, 16, 16, shape[2])))
        assert estimate <= exact * (1 + 1e-5)
        np.testing.assert_allclose(estimate, exact, rtol=2e-3)


def test_power_iteration_batched_and_warm_started():
    scales = jnp.array([1.0, 2.0, 0.5])[:, None, None, None, None]
    kernels = jax.random.normal(jax.random.key(5), (3, 3, 3, 4, 1)) * scales
    v0 = jax.random.normal(jax.random.key(6), (3, 1, 8, 8, 4))
    batched = jax.jit(jax.vmap(lambda k, v: operators.power_iteration(operators.conv_operator(k), v, 100)))
    lips, vs = batched(kernels, v0)
    exact = jax.jit(jax.vmap(lambda k: operators.circular_lipschitz(k, (8, 8))))(kernels)
    np.testing.assert_allclose(lips, exact, rtol=1e-2)
    # Warm start: a few more steps from the returned vectors stay at (and improve) the estimate.
    warm, _ = batched(kernels, vs)
    assert jnp.all(warm >= lips * (1 - 1e-5))
    cold, _ = jax.jit(jax.vmap(lambda k, v: operators.power_iteration(operators.conv_operator(k), v, 2)))(kernels, v0)
    assert jnp.all(jnp.abs(warm - exact) <= jnp.abs(cold - exact))


def test_gradients_flow_through_operators():
    kernel = jax.random.normal(jax.random.key(7), (3, 3, 2, 1))
    z = jax.random.normal(jax.random.key(8), (1, 4, 4, 2))
    loss = lambda k, zz: jnp.sum(operators.conv_synthesis(k, zz, 2, "zero") ** 2)  # noqa: E731
    gk, gz = jax.jit(jax.grad(loss, argnums=(0, 1)))(kernel, z)
    # Quadratic in each argument: <grad, arg> = 2·loss.
    np.testing.assert_allclose(jnp.vdot(gk, kernel), 2 * loss(kernel, z), rtol=1e-4)
    np.testing.assert_allclose(jnp.vdot(gz, z), 2 * loss(kernel, z), rtol=1e-4)


@pytest.mark.parametrize("call,match", [
    (lambda k: operators.conv_analysis(k, jnp.ones((1, 8, 8, 2))), "x \\(signal\\) has 2 channels"),
    (lambda k: operators.conv_synthesis(k, jnp.ones((1, 8, 8, 5))), "z \\(code\\) has 5 channels"),
    (lambda k: operators.conv_analysis(k[0], jnp.ones((1, 8, 8, 1))), "kernel must have shape"),
    (lambda k: operators.conv_analysis(k, jnp.ones((8, 1))), "x \\(signal\\) must have shape"),
    (lambda k: operators.conv_analysis(k, jnp.ones((1, 9, 8, 1)), stride=2), "stride 2 does not divide"),
    (lambda k: operators.conv_analysis(k, jnp.ones((1, 8, 8, 1)), stride=0), "stride must be an integer"),
    (lambda k: operators.conv_operator(k, boundary="reflect"), "boundary must be one of"),
    (lambda k: operators.patch_operator(k, boundary="reflect"), "boundary must be one of"),
    (lambda k: operators.patch_operator(k[0]), "kernel must have shape"),
    (lambda k: operators.conv_analysis(k, jnp.full((1, 8, 8, 1), jnp.nan)), "x \\(signal\\) contains NaN"),
    (lambda k: operators.code_shape((1, 10, 10, 1), k.shape, 3), "stride 3 does not divide"),
    (lambda k: operators.dense_synthesis(jnp.ones((5, 4)), jnp.ones((2, 5))), "z \\(code\\) has last axis 5"),
    (lambda k: operators.dense_analysis(jnp.ones((5, 4)), jnp.ones((2, 4))), "y \\(signal\\) has last axis 4"),
    (lambda k: operators.dense_operator(jnp.ones((5, 4, 1))), "D must be a dense dictionary"),
    (lambda k: operators.power_iteration(operators.conv_operator(k), jnp.ones((1, 4, 4, 3)), 0), "num_iters"),
])
def test_bad_inputs_raise_clear_errors(call, match):
    kernel = jnp.ones((3, 3, 3, 1))
    with pytest.raises(ValueError, match=match):
        call(kernel)


def test_nan_check_skipped_under_jit():
    kernel = jnp.ones((3, 3, 2, 1))
    out = jax.jit(lambda x: operators.conv_analysis(kernel, x))(jnp.full((1, 4, 4, 1), jnp.nan))
    assert out.shape == (1, 4, 4, 2) and bool(jnp.isnan(out).all())
