"""Circular stride-1 convolutional dictionaries evaluated with real FFTs.

Same operator as ``operators.conv_operator(kernel, stride=1, boundary="circular")``: kernel
(kh, kw, M, C) = HWIO of synthesis, codes z (..., H, W, M), signals x (..., H, W, C), any leading
batch axes, true convolution with the kernel origin at [0, 0]. The 2-D DFT diagonalises it: with
D̂ = rfft2 of the kernel zero-padded to H × W (the *spectrum*, (H, W//2 + 1, M, C)),
synthesis is x̂[ω, c] = Σ_m D̂[ω, m, c] ẑ[ω, m] and analysis (the exact adjoint)
ẑ[ω, m] = Σ_c conj(D̂[ω, m, c]) x̂[ω, c]. Solvers that work in the DFT domain (``admm``) compute
the spectrum once with :func:`kernel_spectrum` and reuse it.

Everything is jit-, vmap- and grad-compatible and follows the dtype of its inputs (float32 or
float64; spectra complex64 or complex128). Shape checks run at trace time; the NaN check runs
only on concrete arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from sparse_ae.sparse_coding.operators import LinearOperator, check_kernel_shape, check_finite

_AXES = (-3, -2)


def kernel_spectrum(kernel: jax.Array, signal_hw: Sequence[int]) -> jax.Array:
    """Spectrum D̂ (H, W//2 + 1, M, C), complex: rfft2 of ``kernel`` (kh, kw, M, C) zero-padded to
    ``signal_hw`` = (H, W), origin at [0, 0]."""
    kh, kw, _, _ = check_kernel_shape(jnp.shape(kernel))
    height, width = signal_hw
    if kh > height or kw > width:
        raise ValueError(f"kernel {jnp.shape(kernel)} is larger than the signal size {height}x{width} (signal_hw); "
                         "circular convolution needs kh <= H and kw <= W")
    return jnp.fft.rfft2(kernel, s=(height, width), axes=(0, 1))


def _check_against_spectrum(spectrum: jax.Array, a: jax.Array, name: str, axis: int) -> tuple[int, int]:
    """(H, W) of ``a`` (..., H, W, K) after checking it fits ``spectrum`` (H, W//2 + 1, M, C) on
    axis ``axis`` (2: K = M codes, 3: K = C signal channels)."""
    height, half, atoms, channels = jnp.shape(spectrum)
    shape = jnp.shape(a)
    layout = "(..., H, W, M)" if axis == 2 else "(..., H, W, C)"
    if len(shape) < 3:
        raise ValueError(f"{name} must have shape {layout}, got shape {shape}")
    if shape[-3] != height or shape[-2] // 2 + 1 != half:
        raise ValueError(f"{name} has spatial size {shape[-3]}x{shape[-2]} but the spectrum {jnp.shape(spectrum)} "
                         f"was computed for H={height}, W//2+1={half}; recompute it with kernel_spectrum for this size")
    expected = atoms if axis == 2 else channels
    if shape[-1] != expected:
        what = (f"M={atoms} atoms (the kernel's axis 2)" if axis == 2
                else f"C={channels} signal channels (the kernel's last axis)")
        raise ValueError(f"{name} has {shape[-1]} channels but the spectrum {jnp.shape(spectrum)} has {what}")
    return shape[-3], shape[-2]


def _real_dtype(spectrum: jax.Array, a: jax.Array):
    return jnp.result_type(jnp.finfo(spectrum.dtype).dtype, a)


def spectral_synthesis(spectrum: jax.Array, z: jax.Array) -> jax.Array:
    """Signals Σ_m d_m ∗ z_m from the spectrum: (H, W//2 + 1, M, C), (..., H, W, M) -> (..., H, W, C).

    The spectrum must be the one for this H × W (only H and W//2 + 1 can be checked)."""
    hw = _check_against_spectrum(spectrum, z, "z (code)", 2)
    z_hat = jnp.fft.rfft2(jnp.asarray(z, _real_dtype(spectrum, z)), axes=_AXES)
    x_hat = jnp.einsum("...hwm,hwmc->...hwc", z_hat, spectrum.astype(z_hat.dtype))
    return jnp.fft.irfft2(x_hat, s=hw, axes=_AXES)


def spectral_analysis(spectrum: jax.Array, x: jax.Array) -> jax.Array:
    """Codes (exact adjoint of :func:`spectral_synthesis`): (H, W//2 + 1, M, C), (..., H, W, C) -> (..., H, W, M)."""
    hw = _check_against_spectrum(spectrum, x, "x (signal)", 3)
    check_finite(x, "x (signal)")
    x_hat = jnp.fft.rfft2(jnp.asarray(x, _real_dtype(spectrum, x)), axes=_AXES)
    z_hat = jnp.einsum("...hwc,hwmc->...hwm", x_hat, jnp.conj(spectrum).astype(x_hat.dtype))
    return jnp.fft.irfft2(z_hat, s=hw, axes=_AXES)


def fourier_operator(kernel: jax.Array, signal_hw: Sequence[int]) -> LinearOperator:
    """LinearOperator of the circular stride-1 conv dictionary ``kernel`` (kh, kw, M, C) on H × W
    signals (``signal_hw``), evaluated by FFT; equals ``operators.conv_operator(kernel)``.

    The spectrum is computed here, once; gradients with respect to ``kernel`` flow through it.
    """
    spectrum = kernel_spectrum(kernel, signal_hw)
    size = tuple(signal_hw)

    def check_size(a, name):  # W//2 + 1 (all a spectrum tells) does not tell W from W ± 1
        if jnp.ndim(a) >= 3 and tuple(jnp.shape(a)[-3:-1]) != size:
            raise ValueError(f"{name} has spatial size {jnp.shape(a)[-3]}x{jnp.shape(a)[-2]} but the operator was "
                             f"built for signal_hw={size}; build one for this size")

    def forward(z):
        check_size(z, "z (code)")
        return spectral_synthesis(spectrum, z)

    def adjoint(x):
        check_size(x, "x (signal)")
        return spectral_analysis(spectrum, x)

    return LinearOperator(forward, adjoint)
