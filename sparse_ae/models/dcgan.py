"""DCGAN generator and discriminator for S × S images, S = 4 · 2^n (n ≥ 1; 32 for CIFAR-10).

Generator: z (B, latent_dim) -> linear to 4 × 4 × w_0, BatchNorm, ReLU -> h_1; then per
stage a 4 × 4 transposed convolution (stride 2), BatchNorm, ReLU -> h_2 … h_n (widths halve,
w_{n-1} = ``width``); the output layer is a 4 × 4 stride-2 transposed convolution of h_n — a
convolutional dictionary applied to the last representation — followed by a sigmoid (images in
[0, 1]). Each hidden representation h_i goes through its sparsity layer ("g<i>", see
:mod:`sparse_ae.models.sparsity`) before the next layer. BatchNorm uses batch statistics in
training and running averages (kept by the caller, see :func:`batch_stats`) for sampling.

Discriminator: per stage a 4 × 4 stride-2 convolution and LeakyReLU(0.2) (widths double from
``width``; no normalisation, so it suits WGAN-GP too), down to 4 × 4, then a linear map to
one logit. Inputs in [0, 1] are mapped to [−1, 1] first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
from flax import nnx

from sparse_ae.models.sparsity import LayerStats, Sparsify, parse_specs

BN_MOMENTUM = 0.9


def num_stages(image_size: int) -> int:
    """n with image_size = 4 · 2^n; ValueError otherwise."""
    n = round(math.log2(max(image_size, 1) / 4))
    if n < 1 or 4 * 2**n != image_size:
        raise ValueError(f"config.data.image_size={image_size} must be 4 · 2^n with n >= 1 (8, 16, 32, 64, ...)")
    return n


def generator_widths(image_size: int, width: int) -> list[int]:
    """Channels of h_1 … h_n: width · 2^(n-1), …, width."""
    n = num_stages(image_size)
    return [width * 2 ** (n - 1 - i) for i in range(n)]


class Generator(nnx.Module):
    """``(z (B, latent_dim), train) -> (images (B, S, S, channels), {"g<i>": LayerStats})``."""

    def __init__(self, latent_dim: int, image_size: int, channels: int, width: int, sparsity: Sequence[str], *,
                 rngs: nnx.Rngs):
        widths = generator_widths(image_size, width)
        specs = parse_specs(sparsity, len(widths), "config.model.sparsity")
        self.project = nnx.Linear(latent_dim, 16 * widths[0], rngs=rngs)
        self.deconvs = nnx.List([nnx.ConvTranspose(a, b, (4, 4), strides=(2, 2), padding="SAME", rngs=rngs)
                                 for a, b in zip(widths[:-1], widths[1:])])
        self.norms = nnx.List([nnx.BatchNorm(w, momentum=BN_MOMENTUM, rngs=rngs) for w in widths])
        self.sparsify = nnx.List([Sparsify(s, f"g{i + 1}") for i, s in enumerate(specs)])
        self.out = nnx.ConvTranspose(widths[-1], channels, (4, 4), strides=(2, 2), padding="SAME", rngs=rngs)
        self.width0 = widths[0]

    def hidden(self, z: jax.Array, train: bool) -> tuple[jax.Array, dict[str, LayerStats]]:
        """The last representation h_n (B, S/2, S/2, width) after its sparsity layer, and all stats."""
        h = self.project(z).reshape(z.shape[0], 4, 4, self.width0)
        stats = {}
        for i, (norm, sparsify) in enumerate(zip(self.norms, self.sparsify)):
            if i > 0:
                h = self.deconvs[i - 1](h)
            h, stats[sparsify.name] = sparsify(jax.nn.relu(norm(h, use_running_average=not train)))
        return h, stats

    def __call__(self, z: jax.Array, train: bool = True) -> tuple[jax.Array, dict[str, LayerStats]]:
        h, stats = self.hidden(z, train)
        return jax.nn.sigmoid(self.out(h)), stats


class Discriminator(nnx.Module):
    """``(images (B, S, S, channels) in [0, 1]) -> logits (B,)``."""

    def __init__(self, image_size: int, channels: int, width: int, *, rngs: nnx.Rngs):
        n = num_stages(image_size)
        widths = [width * 2**i for i in range(n)]
        self.convs = nnx.List([nnx.Conv(a, b, (4, 4), strides=(2, 2), padding="SAME", rngs=rngs)
                               for a, b in zip([channels, *widths[:-1]], widths)])
        self.head = nnx.Linear(16 * widths[-1], 1, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        h = 2.0 * x - 1.0
        for conv in self.convs:
            h = jax.nn.leaky_relu(conv(h), 0.2)
        return self.head(h.reshape(h.shape[0], -1))[:, 0]


class DCGAN(nnx.Module):
    """Both players; ``params["generator"]`` / ``params["discriminator"]`` after a split."""

    def __init__(self, *, latent_dim: int, image_size: int, channels: int, g_width: int, d_width: int,
                 sparsity: Sequence[str], rngs: nnx.Rngs):
        self.generator = Generator(latent_dim, image_size, channels, g_width, sparsity, rngs=rngs)
        self.discriminator = Discriminator(image_size, channels, d_width, rngs=rngs)


def batch_stats(module: nnx.Module) -> dict:
    """The module's BatchNorm running statistics as a pure dict (for ``TrainState.extra``)."""
    return nnx.to_pure_dict(nnx.state(module, nnx.BatchStat))


def count_flops(latent_dim: int, image_size: int, channels: int, g_width: int, d_width: int) -> dict[str, int]:
    """Multiply-adds × 2 per example of one forward pass of each player (convolutions and linears)."""
    widths = generator_widths(image_size, g_width)
    g = 2 * latent_dim * 16 * widths[0]
    size = 4
    for a, b in zip(widths, [*widths[1:], channels]):
        size *= 2
        g += 2 * size * size * a * b * 4  # 4×4 kernel, stride 2: 4 taps per output and input channel
    d, size, cin = 0, image_size, channels
    for i in range(num_stages(image_size)):
        size //= 2
        cout = d_width * 2**i
        d += 2 * size * size * cin * cout * 16
        cin = cout
    return {"generator": g, "discriminator": d + 2 * 16 * cin}
