"""Dictionary operators: dense matrix and 2-D convolutional synthesis with their exact adjoints.

Conventions (shared by the whole package):
- Dense dictionary ``D``: (n, K), atoms are columns. Codes z: (..., K); signals y: (..., n).
- Conv ``kernel``: (kh, kw, M, C) = HWIO of the *synthesis* direction (M code channels = atoms,
  C signal channels). Codes z: (..., H/s, W/s, M); signals x: (..., H, W, C); stride s divides
  H and W. Any number of leading (batch) axes, including none.
- Synthesis is a true convolution with the kernel origin at [0, 0] (as SPORCO):
  x[p, c] = Σ_m Σ_q kernel[p − s·q, m, c] · z[q, m] for the spatial index pairs p, q.
  ``"circular"``: p − s·q is taken modulo (H, W); ``"zero"``: terms with p − s·q outside
  [0, kh) × [0, kw) vanish (no wrap-around; the signal is cropped to H × W). Both boundaries
  give the same shapes. Analysis is the exact adjoint:
  z[q, m] = Σ_p Σ_c kernel[p − s·q, m, c] · x[p, c].

The same convolutions also run as patch GEMMs (:func:`patch_operator`): each code position's
(kh, kw, C) patch is gathered by a polyphase reshape, analysis is one GEMM of patches by the
kernel matrix and synthesis its transpose followed by the gather's exact adjoint (overlap-add);
fast for large strides and few channels (DCEA's stride 7). That path adds the boundary
``"valid"``: no padding, (H − kh)/s + 1 codes per side, every code's taps inside the signal
(torch's ``conv2d`` / ``conv_transpose2d``); shapes by :func:`code_size` / :func:`signal_size`.

Everything is jit-, vmap- and grad-compatible and follows the dtype of its inputs (float32 or
float64). Shape checks run at trace time; the NaN check runs only on concrete (non-traced) arrays.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

BOUNDARIES = ("circular", "zero")
PATCH_BOUNDARIES = (*BOUNDARIES, "valid")   # the patch-GEMM path also codes without padding
_DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")


class LinearOperator(NamedTuple):
    """A linear map A given by ``forward`` (code -> signal) and ``adjoint`` (signal -> code)."""

    forward: Callable[[jax.Array], jax.Array]
    adjoint: Callable[[jax.Array], jax.Array]


# ----------------------------------------------------------------------------------------------
# Input checks (outside jit where possible)

def is_concrete(x) -> bool:
    """True when ``x`` holds values (not an abstract tracer inside jit/vmap/grad)."""
    return not isinstance(x, jax.core.Tracer)


def check_finite(x, name: str) -> None:
    """ValueError naming ``name`` if a concrete ``x`` holds NaN or Inf (no-op for tracers)."""
    if is_concrete(x) and not np.all(np.isfinite(np.asarray(x))):
        raise ValueError(f"{name} contains NaN or Inf values; clean the input before sparse coding")


def check_positive(value, name: str) -> None:
    """ValueError naming ``name`` unless a concrete ``value`` (scalar or array) is all > 0."""
    if is_concrete(value) and not bool(np.all(np.asarray(value) > 0)):
        raise ValueError(f"{name} must be > 0, got {np.asarray(value)}")


def check_count(value, name: str) -> None:
    """ValueError naming ``name`` unless ``value`` is a Python or NumPy integer >= 1 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _check_stride_boundary(stride, boundary: str) -> None:
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be an integer >= 1, got {stride!r}")
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")


def check_kernel_shape(shape: Sequence[int]) -> tuple[int, int, int, int]:
    if len(shape) != 4:
        raise ValueError(f"kernel must have shape (kh, kw, M, C) (synthesis HWIO), got shape {tuple(shape)}")
    return tuple(shape)


def _check_signal_shape(kernel_shape: Sequence[int], signal_shape: Sequence[int], stride, boundary: str) -> None:
    _check_stride_boundary(stride, boundary)
    *_, channels = check_kernel_shape(kernel_shape)
    if len(signal_shape) < 3:
        raise ValueError(f"x (signal) must have shape (..., H, W, C), got shape {tuple(signal_shape)}")
    height, width, c = signal_shape[-3:]
    if c != channels:
        raise ValueError(f"x (signal) has {c} channels but kernel {tuple(kernel_shape)} expects C={channels}; "
                         "the kernel is (kh, kw, M, C) with C the signal channels")
    if height % stride or width % stride:
        raise ValueError(f"stride {stride} does not divide the signal size {height}x{width} of x; "
                         "crop or pad x to a multiple of the stride")


def check_conv_inputs(kernel, x, stride: int = 1, boundary: str = "circular") -> None:
    """Validate a conv dictionary against a signal x (..., H, W, C); ValueError naming the argument.

    Checks: kernel rank 4, x rank >= 3, channel match C, stride an integer >= 1 dividing H and W,
    boundary name, and (for concrete x only) no NaN/Inf in x.
    """
    _check_signal_shape(jnp.shape(kernel), jnp.shape(x), stride, boundary)
    check_finite(x, "x (signal)")


def _check_code(kernel, z, stride: int, boundary: str) -> None:
    _check_stride_boundary(stride, boundary)
    _, _, atoms, _ = check_kernel_shape(jnp.shape(kernel))
    shape = jnp.shape(z)
    if len(shape) < 3:
        raise ValueError(f"z (code) must have shape (..., H/s, W/s, M), got shape {shape}")
    if shape[-1] != atoms:
        raise ValueError(f"z (code) has {shape[-1]} channels but kernel {jnp.shape(kernel)} has M={atoms} atoms")


def code_shape(signal_shape: Sequence[int], kernel_shape: Sequence[int], stride: int = 1) -> tuple[int, ...]:
    """Code shape (..., H/s, W/s, M) for a signal (..., H, W, C) and kernel (kh, kw, M, C)."""
    _check_signal_shape(kernel_shape, signal_shape, stride, "circular")
    *lead, height, width, _ = signal_shape
    return (*lead, height // stride, width // stride, kernel_shape[2])


# ----------------------------------------------------------------------------------------------
# Dense dictionary

def _check_dense(D, last: int, name: str, expected_axis: int) -> None:
    if jnp.ndim(D) != 2:
        raise ValueError(f"D must be a dense dictionary of shape (n, K), got shape {jnp.shape(D)}")
    if last != jnp.shape(D)[expected_axis]:
        what = "K atoms" if expected_axis == 1 else "signal dim n"
        raise ValueError(f"{name} has last axis {last} but D {jnp.shape(D)} has {what} = "
                         f"{jnp.shape(D)[expected_axis]}")


def dense_synthesis(D: jax.Array, z: jax.Array) -> jax.Array:
    """Signals D·z: (n, K), (..., K) -> (..., n)."""
    _check_dense(D, jnp.shape(z)[-1], "z (code)", 1)
    return jnp.matmul(z, jnp.swapaxes(D, 0, 1))


def dense_analysis(D: jax.Array, y: jax.Array) -> jax.Array:
    """Codes Dᵀ·y: (n, K), (..., n) -> (..., K)."""
    _check_dense(D, jnp.shape(y)[-1], "y (signal)", 0)
    return jnp.matmul(y, D)


def dense_operator(D: jax.Array) -> LinearOperator:
    """LinearOperator of the dense dictionary D (n, K)."""
    _check_dense(D, jnp.shape(D)[1], "D", 1)
    return LinearOperator(functools.partial(dense_synthesis, D), functools.partial(dense_analysis, D))


# ----------------------------------------------------------------------------------------------
# Convolutional dictionary

def _as_batch(a: jax.Array) -> tuple[jax.Array, tuple[int, ...]]:
    """(..., H, W, C) -> ((B, H, W, C), leading shape)."""
    lead = a.shape[:-3]
    return a.reshape((-1, *a.shape[-3:])), lead


def _phase_kernel(kernel: jax.Array, stride: int) -> jax.Array:
    """(kh, kw, M, C) -> (Rh, Rw, M, s·s·C), R = ⌈k/s⌉: tap [r1, r2, m, (a1, a2, c)] =
    kernel[s·r1 + a1, s·r2 + a2, m, c] (zero past the kernel)."""
    kh, kw, atoms, channels = kernel.shape
    rh, rw = -(-kh // stride), -(-kw // stride)
    padded = jnp.pad(kernel, ((0, rh * stride - kh), (0, rw * stride - kw), (0, 0), (0, 0)))
    phases = padded.reshape(rh, stride, rw, stride, atoms, channels).transpose(0, 2, 4, 1, 3, 5)
    return phases.reshape(rh, rw, atoms, stride * stride * channels)


def _depth_to_space(a: jax.Array, stride: int) -> jax.Array:
    """(B, h, w, s·s·C) -> (B, s·h, s·w, C), out[s·i + a1, s·j + a2, c] = a[i, j, (a1, a2, c)]."""
    batch, h, w, depth = a.shape
    a = a.reshape(batch, h, w, stride, stride, depth // stride ** 2).transpose(0, 1, 3, 2, 4, 5)
    return a.reshape(batch, h * stride, w * stride, depth // stride ** 2)


def _space_to_depth(x: jax.Array, stride: int) -> jax.Array:
    """Inverse of ``_depth_to_space``: (B, s·h, s·w, C) -> (B, h, w, s·s·C)."""
    batch, height, width, channels = x.shape
    x = x.reshape(batch, height // stride, stride, width // stride, stride, channels).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(batch, height // stride, width // stride, stride * stride * channels)


def _conv(a: jax.Array, w: jax.Array, low: tuple[int, int], high: tuple[int, int]) -> jax.Array:
    return jax.lax.conv_general_dilated(a, w, window_strides=(1, 1), padding=(
            (low[0], high[0]), (low[1], high[1])), dimension_numbers=_DIMENSION_NUMBERS)


def _wrap(a: jax.Array, front: tuple[int, int], back: tuple[int, int]) -> jax.Array:
    return jnp.pad(a, ((0, 0), (front[0], back[0]), (front[1], back[1]), (0, 0)), mode="wrap")


# Every stride-1 convolution below pads by r − 1 in total (input size = output size, sliced
# afterwards): on XLA:CPU, unpadded ('VALID') convolutions with few output channels were
# measured up to ~15x slower than 'SAME'-shaped ones (benchmarks/conv_gflops.py).

def _convolve(z: jax.Array, w: jax.Array, boundary: str) -> jax.Array:
    """Stride-1 true convolution out[p] = Σ_r w[r] · z[p − r]: (B, h, w, I), (R1, R2, I, O) -> (B, h, w, O)."""
    r = w.shape[:2]
    h, wd = z.shape[1:3]
    flipped = jnp.flip(w, (0, 1))
    if boundary == "zero":
        return _conv(z, flipped, (r[0] - 1, r[1] - 1), (0, 0))
    out = _conv(_wrap(z, (r[0] - 1, r[1] - 1), (0, 0)), flipped, (0, 0), (r[0] - 1, r[1] - 1))
    return out[:, :h, :wd]


def _correlate(x: jax.Array, w: jax.Array, boundary: str) -> jax.Array:
    """Stride-1 correlation out[q] = Σ_r w[r] · x[q + r]: (B, h, w, I), (R1, R2, I, O) -> (B, h, w, O)."""
    r = w.shape[:2]
    h, wd = x.shape[1:3]
    if boundary == "circular":
        x = _wrap(x, (0, 0), (r[0] - 1, r[1] - 1))
    return _conv(x, w, (0, 0), (r[0] - 1, r[1] - 1))[:, :h, :wd]


def conv_synthesis(kernel: jax.Array, z: jax.Array, stride: int = 1, boundary: str = "circular") -> jax.Array:
    """Signals Σ_m kernel_m ∗ z_m: (kh, kw, M, C), (..., H/s, W/s, M) -> (..., H, W, C).

    True convolution with origin [0, 0]; stride s places the codes every s pixels. Computed as
    one stride-1 convolution at code resolution with the s·s phases of the kernel as output
    channels, then a depth-to-space shuffle (no zero-inserted input).
    """
    _check_code(kernel, z, stride, boundary)
    dtype = jnp.result_type(kernel, z)
    zb, lead = _as_batch(jnp.asarray(z, dtype))
    phases = _convolve(zb, _phase_kernel(jnp.asarray(kernel, dtype), stride), boundary)
    x = _depth_to_space(phases, stride)
    return x.reshape((*lead, *x.shape[1:]))


def conv_analysis(kernel: jax.Array, x: jax.Array, stride: int = 1, boundary: str = "circular") -> jax.Array:
    """Codes (exact adjoint of ``conv_synthesis``): (kh, kw, M, C), (..., H, W, C) -> (..., H/s, W/s, M).

    A space-to-depth shuffle of x, then one stride-1 correlation with the kernel phases.
    """
    check_conv_inputs(kernel, x, stride, boundary)
    dtype = jnp.result_type(kernel, x)
    xb, lead = _as_batch(jnp.asarray(x, dtype))
    w = jnp.swapaxes(_phase_kernel(jnp.asarray(kernel, dtype), stride), 2, 3)
    z = _correlate(_space_to_depth(xb, stride), w, boundary)
    return z.reshape((*lead, *z.shape[1:]))


def conv_operator(kernel: jax.Array, stride: int = 1, boundary: str = "circular") -> LinearOperator:
    """LinearOperator of the conv dictionary ``kernel`` (kh, kw, M, C)."""
    _check_stride_boundary(stride, boundary)
    check_kernel_shape(jnp.shape(kernel))
    return LinearOperator(functools.partial(conv_synthesis, kernel, stride=stride, boundary=boundary),
                          functools.partial(conv_analysis, kernel, stride=stride, boundary=boundary))


# ----------------------------------------------------------------------------------------------
# Strided convolutions as patch GEMMs, with a 'valid' boundary (no padding)
# ----------------------------------------------------------------------------------------------

def code_size(n: int, k: int, stride: int, boundary: str) -> int:
    """Codes along a signal side n: n/s, or (n − k)/s + 1 for ``"valid"`` (no padding: every
    code's k taps inside the signal, as torch's ``conv2d``)."""
    return (n - k) // stride + 1 if boundary == "valid" else n // stride


def signal_size(a: int, k: int, stride: int, boundary: str) -> int:
    """The signal side of a codes: s·a, or (a − 1)·s + k for ``"valid"``."""
    return (a - 1) * stride + k if boundary == "valid" else a * stride


def extract_patches(x: jax.Array, kernel_hw: tuple[int, int], stride: int, boundary: str) -> jax.Array:
    """(B, H, W, C) -> (B, h, w, kh·kw·C): patch[b, q, (i, j, c)] = x[b, s·q + (i, j), c], with
    (h, w) = :func:`code_size` per side.

    Indices past the end wrap ('circular') or read zeros ('zero'); 'valid' has none. Pure data
    movement: the signal is padded (or cut) to h + ⌈k/s⌉ − 1 whole blocks, reshaped to
    (B, ·, s, ·, s, C) and ⌈k/s⌉ block offsets are stacked per axis.
    """
    kh, kw = kernel_hw
    batch, height, width, channels = x.shape
    a, b = code_size(height, kh, stride, boundary), code_size(width, kw, stride, boundary)
    jh, jw = -(-kh // stride), -(-kw // stride)
    blocks_h, blocks_w = a + jh - 1, b + jw - 1
    if boundary == "circular":
        x = jnp.pad(x, ((0, 0), (0, (jh - 1) * stride), (0, (jw - 1) * stride), (0, 0)), mode="wrap")
    else:
        x = x[:, :blocks_h * stride, :blocks_w * stride]
        x = jnp.pad(x, ((0, 0), (0, blocks_h * stride - x.shape[1]), (0, blocks_w * stride - x.shape[2]), (0, 0)))
    x = x.reshape(batch, blocks_h, stride, blocks_w, stride, channels)
    rows = jnp.stack([x[:, j:j + a] for j in range(jh)], axis=2)
    rows = rows.reshape(batch, a, jh * stride, blocks_w, stride, channels)[:, :, :kh]
    cols = jnp.stack([rows[:, :, :, j:j + b] for j in range(jw)], axis=4)
    cols = cols.reshape(batch, a, kh, b, jw * stride, channels)[:, :, :, :, :kw]
    return cols.transpose(0, 1, 3, 2, 4, 5).reshape(batch, a, b, kh * kw * channels)


def _kernel_matrix(kernel: jax.Array) -> jax.Array:
    """(kh, kw, M, C) -> (kh·kw·C, M), rows in patch order."""
    kh, kw, m, c = kernel.shape
    return kernel.transpose(0, 1, 3, 2).reshape(kh * kw * c, m)


def patch_analysis(kernel: jax.Array, x: jax.Array, stride: int = 1, boundary: str = "circular") -> jax.Array:
    """Adjoint conv (B, H, W, C) -> (B, h, w, M) as one GEMM; equals :func:`conv_analysis`
    (and :func:`valid_operator`'s adjoint for 'valid')."""
    patches = extract_patches(x, kernel.shape[:2], stride, boundary)
    return patches @ _kernel_matrix(kernel).astype(patches.dtype)


def patch_synthesis(kernel: jax.Array, z: jax.Array, stride: int = 1, boundary: str = "circular") -> jax.Array:
    """Conv synthesis (B, h, w, M) -> (B, H, W, C) (:func:`signal_size` per side); equals
    :func:`conv_synthesis` (and :func:`valid_operator`'s forward for 'valid')."""
    kh, kw, _, channels = kernel.shape
    batch, a, b, _ = z.shape
    cols = z @ _kernel_matrix(kernel).astype(z.dtype).T
    signal = jax.ShapeDtypeStruct((batch, signal_size(a, kh, stride, boundary), signal_size(b, kw, stride, boundary),
                                   channels), cols.dtype)
    fold = jax.linear_transpose(
            functools.partial(extract_patches, kernel_hw=(kh, kw), stride=stride, boundary=boundary), signal)
    return fold(cols)[0]


def patch_code_shape(signal_shape, kernel_shape, stride: int, boundary: str = "zero") -> tuple[int, int, int, int]:
    """(B, h, w, M) of signals (B, H, W, C) and a kernel (kh, kw, M, C), see :func:`code_size`."""
    return (signal_shape[0], code_size(signal_shape[1], kernel_shape[0], stride, boundary),
            code_size(signal_shape[2], kernel_shape[1], stride, boundary), kernel_shape[2])


def valid_operator(kernel: jax.Array, stride: int) -> LinearOperator:
    """'valid' strided convolutions through the core's zero-boundary operators: codes padded
    with zeros to the grid whose synthesis covers the signal, the signal cropped (and, for the
    adjoint, zero-padded back) — exact, at the grid's cost."""
    kh, kw = kernel.shape[:2]
    jh, jw = -(-kh // stride), -(-kw // stride)
    zero = conv_operator(kernel, stride=stride, boundary="zero")

    def forward(z):
        a, b = z.shape[1:3]
        full = zero.forward(jnp.pad(z, ((0, 0), (0, jh - 1), (0, jw - 1), (0, 0))))
        return full[:, :signal_size(a, kh, stride, "valid"), :signal_size(b, kw, stride, "valid")]

    def adjoint(x):
        a, b = code_size(x.shape[1], kh, stride, "valid"), code_size(x.shape[2], kw, stride, "valid")
        grid = ((a + jh - 1) * stride - x.shape[1], (b + jw - 1) * stride - x.shape[2])
        return zero.adjoint(jnp.pad(x, ((0, 0), (0, grid[0]), (0, grid[1]), (0, 0))))[:, :a, :b]

    return LinearOperator(forward, adjoint)


def patch_operator(kernel: jax.Array, stride: int = 1, boundary: str = "circular") -> LinearOperator:
    """LinearOperator of the conv dictionary ``kernel`` (kh, kw, M, C) as patch GEMMs; boundary
    one of :data:`PATCH_BOUNDARIES`."""
    if boundary not in PATCH_BOUNDARIES:
        raise ValueError(f"boundary must be one of {PATCH_BOUNDARIES}, got {boundary!r}")
    check_kernel_shape(jnp.shape(kernel))
    return LinearOperator(functools.partial(patch_synthesis, kernel, stride=stride, boundary=boundary),
                          functools.partial(patch_analysis, kernel, stride=stride, boundary=boundary))


# ----------------------------------------------------------------------------------------------
# Lipschitz constants

def _normalise(v: jax.Array) -> jax.Array:
    norm = jnp.sqrt(jnp.sum(jnp.square(v)))
    return v / jnp.where(norm > 0, norm, 1)


def power_iteration(op: LinearOperator, v0: jax.Array, num_iters: int = 100) -> tuple[jax.Array, jax.Array]:
    """Estimate ‖A‖² (= L of ½‖Az − y‖²) by ``num_iters`` steps of v <- AᵀAv / ‖AᵀAv‖.

    ``v0`` is a code-shaped start (all its axes form one vector; pass the previous ``v`` to warm
    start). Returns (‖AᵀA v‖ for the final unit v — a lower bound converging to ‖A‖², unit v).
    For independent operators (e.g. one per example or per layer) wrap in ``jax.vmap``.
    """
    if num_iters < 1:
        raise ValueError(f"num_iters must be >= 1, got {num_iters}")

    def step(v, _):
        w = op.adjoint(op.forward(v))
        return _normalise(w), jnp.sqrt(jnp.sum(jnp.square(w)))

    v, norms = jax.lax.scan(step, _normalise(v0), None, length=num_iters)
    return norms[-1], v


def circular_lipschitz(kernel: jax.Array, signal_hw: Sequence[int]) -> jax.Array:
    """Exact ‖A‖² for circular stride-1 synthesis on H × W signals.

    A is block-diagonalised by the 2-D DFT: ‖A‖² = max_ω λ_max(D̂(ω) D̂(ω)^H), D̂(ω) the C × M
    matrix of kernel DFTs (zero-padded to H × W); for C = 1 this is max_ω Σ_m |D̂_m(ω)|².
    """
    kh, kw, atoms, channels = check_kernel_shape(jnp.shape(kernel))
    height, width = signal_hw
    if kh > height or kw > width:
        raise ValueError(f"kernel {jnp.shape(kernel)} is larger than the signal size {height}x{width} (signal_hw)")
    spectrum = jnp.fft.fft2(kernel, s=(height, width), axes=(0, 1))  # (H, W, M, C)
    if channels == 1 or atoms == 1:
        return jnp.max(jnp.sum(jnp.square(jnp.abs(spectrum)), axis=(2, 3)))
    # λ_max of the smaller Gram matrix (same non-zero spectrum); eigvalsh, not Cholesky (XLA:CPU).
    gram = (jnp.einsum("hwmc,hwnc->hwmn", spectrum, spectrum.conj()) if atoms <= channels
            else jnp.einsum("hwmc,hwmd->hwcd", spectrum.conj(), spectrum))
    return jnp.max(jnp.linalg.eigvalsh(gram)[..., -1])
