"""The original CTRL architecture, DCGAN-style, as the baseline of CSC-CTRL (same interface).

Encoder: per stage a k × k convolution with stride s ('SAME' padding), a normalisation (not on
the first stage, as DCGAN) and LeakyReLU(0.2); flatten, linear map to d, unit sphere.
Decoder: linear map from √d · feature to the top feature map, normalisation + ReLU, then per stage a transposed
convolution (stride s) with normalisation + ReLU, the last one to the image channels followed by
``output``. Normalisation is GroupNorm (``norm="group"``, 8 groups or fewer) or none: BatchNorm
of the original is left out so that a sample's features never depend on the rest of the batch
(the game evaluates f on X and on X̂ separately) and the step stays a pure function of the
parameters. The transposed convolutions run as XLA builds them or split by phase (``conv_impl``,
:mod:`sparse_ae.models.phase_conv`): the same parameters and outputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
from flax import nnx

from sparse_ae.models import phase_conv
from sparse_ae.models.csc_ctrl import OUTPUTS, decoder_input, output_activation, stage_shapes, unit_sphere

NORMS = ("group", "none")


def _norm(kind: str, channels: int, rngs: nnx.Rngs):
    if kind == "group":
        return nnx.GroupNorm(channels, num_groups=math.gcd(8, channels), rngs=rngs)
    return lambda x: x


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
    """Same interface as :class:`sparse_ae.models.csc_ctrl.CSCCTRL`; no non-trained state."""

    def __init__(self, image_shape: Sequence[int], *, channels: Sequence[int], kernel_sizes: Sequence[int],
                 strides: Sequence[int], feature_dim: int, norm: str, output: str, conv_impl: str = "auto",
                 rngs: nnx.Rngs):
        if norm not in NORMS:
            raise ValueError(f"norm={norm!r} is not one of {NORMS}")
        if output not in OUTPUTS:
            raise ValueError(f"output={output!r} is not one of {OUTPUTS}")
        geometry = dict(channels=channels, kernel_sizes=kernel_sizes, strides=strides, feature_dim=feature_dim)
        self.encoder = ConvEncoder(image_shape, **geometry, norm=norm, rngs=rngs)
        self.decoder = ConvDecoder(image_shape, **geometry, norm=norm, output=output, conv_impl=conv_impl, rngs=rngs)

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
