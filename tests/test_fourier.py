"""FFT-domain circular conv operator: equal to the spatial one, exact adjoint, input checks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparse_ae.sparse_coding import fourier, operators


@pytest.mark.parametrize("kernel_shape,lead,hw", [
    ((3, 3, 4, 1), (2,), (16, 16)),      # single channel, batch
    ((5, 3, 6, 3), (2, 3), (12, 10)),    # multi-channel, two batch axes
    ((4, 4, 2, 2), (), (8, 9)),          # no batch, odd width
    ((7, 7, 3, 1), (1,), (7, 7)),        # kernel as large as the signal
])
def test_fourier_operator_equals_spatial_circular(kernel_shape, lead, hw):
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        kernel = jnp.asarray(rng.standard_normal(kernel_shape))
        z = jnp.asarray(rng.standard_normal((*lead, *hw, kernel_shape[2])))
        x = jnp.asarray(rng.standard_normal((*lead, *hw, kernel_shape[3])))
        fft_op, spatial = fourier.fourier_operator(kernel, hw), operators.conv_operator(kernel)
        forward, adjoint = jax.jit(fft_op.forward)(z), jax.jit(fft_op.adjoint)(x)
        assert forward.shape == x.shape and adjoint.shape == z.shape and forward.dtype == jnp.float64
        np.testing.assert_allclose(forward, spatial.forward(z), atol=1e-12)
        np.testing.assert_allclose(adjoint, spatial.adjoint(x), atol=1e-12)
        gap = jnp.vdot(forward, x) - jnp.vdot(z, adjoint)
        assert abs(float(gap)) <= 1e-12 * float(jnp.linalg.norm(forward) * jnp.linalg.norm(x))


def test_float32_follows_dtype_and_kernel_gradient_matches_spatial():
    rng = np.random.default_rng(1)
    kernel = jnp.asarray(rng.standard_normal((5, 5, 4, 2)), jnp.float32)
    z = jnp.asarray(rng.standard_normal((2, 16, 16, 4)), jnp.float32)
    spectrum = fourier.kernel_spectrum(kernel, (16, 16))
    assert spectrum.shape == (16, 9, 4, 2) and spectrum.dtype == jnp.complex64
    assert fourier.spectral_synthesis(spectrum, z).dtype == jnp.float32

    def loss(kernel, make_op):
        return jnp.sum(jnp.square(make_op(kernel).adjoint(make_op(kernel).forward(z))))

    fft_grad = jax.jit(jax.grad(loss), static_argnums=1)(kernel, lambda k: fourier.fourier_operator(k, (16, 16)))
    spatial_grad = jax.jit(jax.grad(loss), static_argnums=1)(kernel, operators.conv_operator)
    np.testing.assert_allclose(fft_grad, spatial_grad, rtol=2e-4, atol=2e-4 * float(jnp.max(jnp.abs(spatial_grad))))


def test_bad_inputs_raise_clear_errors():
    kernel = jnp.ones((3, 3, 4, 2))
    op = fourier.fourier_operator(kernel, (8, 8))
    with pytest.raises(ValueError, match=r"kernel must have shape \(kh, kw, M, C\)"):
        fourier.fourier_operator(jnp.ones((3, 3, 4)), (8, 8))
    with pytest.raises(ValueError, match="larger than the signal size 4x8"):
        fourier.kernel_spectrum(jnp.ones((5, 3, 4, 2)), (4, 8))
    with pytest.raises(ValueError, match=r"x \(signal\) has 3 channels .* C=2 signal channels"):
        op.adjoint(jnp.ones((1, 8, 8, 3)))
    with pytest.raises(ValueError, match=r"z \(code\) has 2 channels .* M=4 atoms"):
        op.forward(jnp.ones((8, 8, 2)))
    with pytest.raises(ValueError, match=r"spatial size 8x9 .* signal_hw=\(8, 8\)"):
        op.adjoint(jnp.ones((8, 9, 2)))
    with pytest.raises(ValueError, match="spatial size 8x6 .* recompute it with kernel_spectrum"):
        fourier.spectral_synthesis(fourier.kernel_spectrum(kernel, (8, 8)), jnp.ones((8, 6, 4)))
    with pytest.raises(ValueError, match=r"z \(code\) must have shape \(\.\.\., H, W, M\)"):
        op.forward(jnp.ones((8, 4)))
    with pytest.raises(ValueError, match="NaN or Inf"):
        op.adjoint(jnp.full((8, 8, 2), jnp.nan))
