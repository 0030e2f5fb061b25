"""Strided 'SAME' transposed convolutions as stride-1 convolutions of phases.

XLA builds a transposed convolution as a convolution of an input dilated by s − 1 zeros between
pixels (``lhs_dilation``), and its kernel gradient from that dilated input; on XLA:CPU the kernel
gradient of a 4 × 4 stride-2 one runs 6–12× slower than the forward pass (``python -m
benchmarks.ctrl --parts=conv32``). Split by phase it reads no zero: output phase p of an axis
reads only the taps t with p − pad + t ≡ 0 (mod s), so it is a stride-1 convolution of the
undilated input with those taps, and the s² phase outputs are interleaved (depth-to-space);
its gradients are stride-1 convolutions too. (Strided convolutions themselves are left to XLA:
a space-to-depth form measured slower there.)

The result equals ``lax.conv_transpose`` (kernel not flipped, as ``nnx.ConvTranspose``) to
float rounding, gradients included (``tests/test_phase_conv.py``), and the module keeps
``nnx.ConvTranspose``'s parameters and initialisation, so a model may switch ``conv_impl``
without touching its checkpoints. Layout NHWC, kernels HWIO.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

DIMENSIONS = ("NHWC", "HWIO", "NHWC")
IMPLEMENTATIONS = ("auto", "phases", "xla")


def resolve_impl(impl: str) -> str:
    """``"auto"`` -> ``"phases"`` on CPU (where XLA's is slow), else ``"xla"`` (not measured there)."""
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"conv_impl={impl!r} is not one of {IMPLEMENTATIONS}")
    if impl == "auto":
        return "phases" if jax.default_backend() == "cpu" else "xla"
    return impl


def _pair(strides: int | Sequence[int]) -> tuple[int, int]:
    sh, sw = (strides, strides) if isinstance(strides, int) else tuple(strides)
    return int(sh), int(sw)


def _transpose_phases(k: int, s: int) -> list[tuple[np.ndarray, tuple[int, int]]]:
    """Per output phase p of an axis: the kernel taps it reads and the (low, high) padding of the
    stride-1 convolution that applies them (lax.conv_transpose's 'SAME' placement)."""
    before = k - 1 if s > k - 1 else math.ceil((k + s - 2) / 2)
    phases = []
    for p in range(s):
        taps = np.array([t for t in range(k) if (p - before + t) % s == 0], dtype=int)
        first = (p - before + taps[0]) // s if taps.size else 0
        phases.append((taps, (-first, first + taps.size - 1)))
    return phases


def strided_conv_transpose(x: jax.Array, kernel: jax.Array, strides: int | Sequence[int]) -> jax.Array:
    """``lax.conv_transpose(x, kernel, strides, "SAME")`` (kernel not flipped): x (B, h, w, C),
    kernel (kh, kw, C, M) -> (B, sh·h, sw·w, M)."""
    (sh, sw), (kh, kw, _, m) = _pair(strides), kernel.shape
    b, h, w, _ = x.shape
    rows = []
    for rows_taps, row_pad in _transpose_phases(kh, sh):
        row = []
        for cols_taps, col_pad in _transpose_phases(kw, sw):
            if rows_taps.size and cols_taps.size:
                sub = kernel[rows_taps][:, cols_taps]
                row.append(lax.conv_general_dilated(x, sub, (1, 1), (row_pad, col_pad), dimension_numbers=DIMENSIONS))
            else:  # a kernel smaller than the stride leaves this phase empty
                row.append(jnp.zeros((b, h, w, m), jnp.result_type(x, kernel)))
        rows.append(jnp.stack(row, axis=3))                    # (B, h, w, sw, M)
    return jnp.stack(rows, axis=2).reshape(b, h * sh, w * sw, m)  # (B, h, sh, w, sw, M) interleaved


class _PhaseConvTranspose(nnx.ConvTranspose):
    """``nnx.ConvTranspose`` ('SAME', no dilation or mask) computed by :func:`strided_conv_transpose`."""

    def __call__(self, inputs: jax.Array) -> jax.Array:
        y = strided_conv_transpose(inputs, self.kernel[...], self.strides)
        return y if self.bias is None else y + self.bias[...]


def conv_transpose(in_features: int, out_features: int, kernel_size: int, stride: int, impl: str, *,
                   rngs: nnx.Rngs) -> nnx.ConvTranspose:
    """A k × k 'SAME' ``nnx.ConvTranspose`` with stride s; ``impl`` (:func:`resolve_impl`) picks how it runs."""
    cls = _PhaseConvTranspose if resolve_impl(impl) == "phases" else nnx.ConvTranspose
    return cls(in_features, out_features, (kernel_size, kernel_size), strides=(stride, stride), padding="SAME",
               rngs=rngs)
