"""The original CTRL architecture, DCGAN-style, as the baseline of CSC-CTRL (same interface).

Encoder: per stage a k × k convolution with stride s ('SAME' padding), a normalisation (not on
the first stage, as DCGAN) and LeakyReLU(0.2); flatten, linear map to d, unit sphere.
Decoder: linear map from √d · feature to the top feature map, normalisation + ReLU, then per stage a transposed
convolution (stride s) with normalisation + ReLU, the last one to the image channels followed by
``output`` (identity, sigmoid, clip, or tanh for images scaled to [−1, 1]). Normalisation
(``norm``): GroupNorm ("group", 8 groups or fewer, the default: a sample's features never depend
on the rest of the batch), none, or BatchNorm ("batch", as the original LDR code): batch
statistics while training (f sees X and X̂ as separate batches, as LDR's calls do) and running
averages once put in evaluation mode (``nnx.view(net, use_running_average=True)``, as LDR's
accuracy code after ``.eval()``); momentum and ε are PyTorch's (0.1, 1e-5); the running
statistics are ``nnx.BatchStat`` variables, kept by the caller. ``init="ldr"`` re-initialises as
LDR's ``weights_init``: every convolution and linear head N(0, 0.02) without a bias (LDR's heads are
4 × 4 convolutions without bias), every normalisation scale N(1, 0.02); "default" keeps flax's.
The transposed convolutions run as XLA builds them or split by phase (``conv_impl``,
:mod:`sparse_ae.models.phase_conv`): the same parameters and outputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from sparse_ae.models import csc_ctrl, phase_conv
from sparse_ae.models.csc_ctrl import decoder_input, stage_shapes, unit_sphere

NORMS = ("group", "batch", "none")
OUTPUTS = (*csc_ctrl.OUTPUTS, "tanh")
INITS = ("default", "ldr")
# PyTorch BatchNorm2d's defaults (running = 0.9·running + 0.1·batch) in flax's convention.
BN_MOMENTUM, BN_EPSILON = 0.9, 1e-5
LDR_STD = 0.02


def _norm(kind: str, channels: int, rngs: nnx.Rngs):
    if kind == "group":
        return nnx.GroupNorm(channels, num_groups=math.gcd(8, channels), rngs=rngs)
    if kind == "batch":
        return nnx.BatchNorm(channels, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, rngs=rngs)
    return lambda x: x


def output_activation(x: jax.Array, kind: str) -> jax.Array:
    """:func:`sparse_ae.models.csc_ctrl.output_activation`, plus "tanh" (images in [−1, 1])."""
    return jnp.tanh(x) if kind == "tanh" else csc_ctrl.output_activation(x, kind)


def ldr_init(module: nnx.Module, rngs: nnx.Rngs) -> None:
    """LDR's ``weights_init`` in place: conv / transposed-conv / linear kernels N(0, 0.02) and their
    biases removed; GroupNorm / BatchNorm scales N(1, 0.02), offsets 0."""
    for _, layer in nnx.iter_modules(module):
        if isinstance(layer, (nnx.Conv, nnx.ConvTranspose, nnx.Linear)):
            kernel = layer.kernel[...]
            layer.kernel[...] = LDR_STD * jax.random.normal(rngs.params(), kernel.shape, kernel.dtype)
            layer.use_bias, layer.bias = False, None
        elif isinstance(layer, (nnx.GroupNorm, nnx.BatchNorm)):
            scale = layer.scale[...]
            layer.scale[...] = 1.0 + LDR_STD * jax.random.normal(rngs.params(), scale.shape, scale.dtype)
            layer.bias[...] = jnp.zeros_like(layer.bias[...])


class ConvEncoder(nnx.Module):
    def __init__(self, image_shape: Sequence[int], channels: Sequence[int], kernel_sizes: Sequence[int],
                 strides: Sequence[int], feature_dim: int, *, norm: str, rngs: nnx.Rngs):
        in_channels = [image_shape[-1], *channels[:-1]]
        self.convs = nnx.List([nnx.Conv(c, m, (k, k), strides=(s, s), padding="SAME", rngs=rngs)
                               for c, m, k, s in zip(in_channels, channels, kernel_sizes, strides)])
        self.norms = nnx.List([_norm("none" if i == 0 else norm, m, rngs) for i, m in enumerate(channels)])
        self.code_shapes = stage_shapes(image_shape, channels, strides)
        self.head = nnx.Linear(math.prod(self.code_shapes[-1]), feature_dim, rngs=rngs)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
        acts, h = [], x
        for conv, norm in zip(self.convs, self.norms):
            h = jax.nn.leaky_relu(norm(conv(h)), 0.2)
            acts.append(h)
        return unit_sphere(self.head(h.reshape(h.shape[0], -1))), acts


class ConvDecoder(nnx.Module):
    def __init__(self, image_shape: Sequence[int], channels: Sequence[int], kernel_sizes: Sequence[int],
                 strides: Sequence[int], feature_dim: int, *, norm: str, output: str, conv_impl: str,
                 rngs: nnx.Rngs):
        self.code_shapes = stage_shapes(image_shape, channels, strides)
        self.head = nnx.Linear(feature_dim, math.prod(self.code_shapes[-1]), rngs=rngs)
        out_channels = [image_shape[-1], *channels[:-1]]
        self.top_norm = _norm(norm, channels[-1], rngs)
        self.deconvs = nnx.List([phase_conv.conv_transpose(m, c, k, s, conv_impl, rngs=rngs)
                                 for m, c, k, s in zip(channels, out_channels, kernel_sizes, strides)])
        self.norms = nnx.List([_norm(norm, c, rngs) for c in out_channels[1:]])
        self.output = output

    def __call__(self, features: jax.Array) -> jax.Array:
        h = self.head(decoder_input(features)).reshape(features.shape[0], *self.code_shapes[-1])
        h = jax.nn.relu(self.top_norm(h))
        for level in reversed(range(len(self.deconvs))):
            h = self.deconvs[level](h)
            if level > 0:
                h = jax.nn.relu(self.norms[level - 1](h))
        return output_activation(h, self.output)


class ConvCTRL(nnx.Module):
    """Same interface as :class:`sparse_ae.models.csc_ctrl.CSCCTRL`; no state of its own beyond
    BatchNorm's ``nnx.BatchStat`` variables (``norm="batch"``)."""

    def __init__(self, image_shape: Sequence[int], *, channels: Sequence[int], kernel_sizes: Sequence[int],
                 strides: Sequence[int], feature_dim: int, norm: str, output: str, conv_impl: str = "auto",
                 init: str = "default", rngs: nnx.Rngs):
        for name, value, choices in (("norm", norm, NORMS), ("output", output, OUTPUTS), ("init", init, INITS)):
            if value not in choices:
                raise ValueError(f"{name}={value!r} is not one of {choices}")
        geometry = dict(channels=channels, kernel_sizes=kernel_sizes, strides=strides, feature_dim=feature_dim)
        self.encoder = ConvEncoder(image_shape, **geometry, norm=norm, rngs=rngs)
        self.decoder = ConvDecoder(image_shape, **geometry, norm=norm, output=output, conv_impl=conv_impl, rngs=rngs)
        if init == "ldr":
            ldr_init(self, rngs)

    def init_state(self, rng: jax.Array, num_iters: int) -> dict:
        del rng, num_iters
        return {}

    def refresh_state(self, state: dict, num_iters: int) -> dict:
        del num_iters
        return state

    def encode(self, x: jax.Array, state: dict) -> tuple[jax.Array, list[jax.Array]]:
        del state
        return self.encoder(x)

    def decode(self, features: jax.Array, state: dict) -> jax.Array:
        del state
        return self.decoder(features)

    def dictionaries(self) -> dict[str, list[jax.Array]]:
        """First-stage filters (k, k, C, M) -> atoms layout (k, k, M, C) of the encoder and decoder."""
        enc = self.encoder.convs[0].kernel[...].transpose(0, 1, 3, 2)
        dec = self.decoder.deconvs[0].kernel[...]
        return {"encoder": [enc], "decoder": [dec]}
