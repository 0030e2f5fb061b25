"""VQGAN-style convolutional encoder and decoder (Esser et al. 2021) as Flax NNX modules.

Images and feature maps are NHWC. Building blocks: GroupNorm (see :func:`group_norm`) + swish, a residual block of two
3×3 convolutions (1×1 projection on the skip path when the width changes), a strided 3×3
downsampling convolution (padding (0, 1) on each spatial axis, as VQGAN), nearest-neighbour ×2
upsampling followed by a 3×3 convolution, and a single-head non-local (self-attention) block.

Encoder (d = ``num_down``), level i = 0 … d with width C·mult[i] (C = ``channels``; levels
beyond the end of ``channel_mult`` reuse its last entry):

    conv_in → for i < d: {``num_res_blocks`` × (res block [+ attention]), downsample}
            → res block → attention → res block → GroupNorm → swish → conv to ``latent_dim``

Attention inside a level is added where the level's spatial size is in ``attn_resolutions``.
The decoder mirrors it: conv_in from ``latent_dim``, res block → attention → res block, then for
i = d−1 … 0: {upsample, ``num_res_blocks`` × (res block [+ attention])} at width C·mult[i] (the
encoder's width at that resolution), GroupNorm, swish, conv to the image channels. A (B, H, W, C) image maps to a (B, H/2^d, W/2^d, latent_dim) grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

MAX_GROUPS = 32
MIN_GROUP_SIZE = 4


def group_norm(channels: int, *, rngs: nnx.Rngs) -> nnx.GroupNorm:
    """GroupNorm with gcd(32, max(1, channels // 4)) groups: VQGAN's 32 groups at widths ≥ 128, and
    groups of at least 4 channels for narrow widths (one channel per group would be an instance norm,
    which erases every channel's mean and with it, e.g., the image brightness)."""
    groups = math.gcd(MAX_GROUPS, max(1, channels // MIN_GROUP_SIZE))
    return nnx.GroupNorm(channels, num_groups=groups, epsilon=1e-6, rngs=rngs)


def conv3x3(cin: int, cout: int, *, rngs: nnx.Rngs) -> nnx.Conv:
    return nnx.Conv(cin, cout, (3, 3), padding="SAME", rngs=rngs)


class ResBlock(nnx.Module):
    """x + conv(swish(norm(conv(swish(norm(x)))))), skip projected by a 1×1 conv if cin ≠ cout."""

    def __init__(self, cin: int, cout: int, *, rngs: nnx.Rngs):
        self.norm1 = group_norm(cin, rngs=rngs)
        self.conv1 = conv3x3(cin, cout, rngs=rngs)
        self.norm2 = group_norm(cout, rngs=rngs)
        self.conv2 = conv3x3(cout, cout, rngs=rngs)
        self.skip = nnx.Conv(cin, cout, (1, 1), rngs=rngs) if cin != cout else None

    def __call__(self, x: jax.Array) -> jax.Array:
        h = self.conv1(jax.nn.swish(self.norm1(x)))
        h = self.conv2(jax.nn.swish(self.norm2(h)))
        return (x if self.skip is None else self.skip(x)) + h


class Downsample(nnx.Module):
    """3×3 convolution with stride 2 after zero padding of 1 at the bottom and right: H → H/2."""

    def __init__(self, channels: int, *, rngs: nnx.Rngs):
        self.conv = nnx.Conv(channels, channels, (3, 3), strides=(2, 2), padding=((0, 1), (0, 1)), rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.conv(x)


class Upsample(nnx.Module):
    """Nearest-neighbour ×2 upsampling, then a 3×3 convolution: H → 2H."""

    def __init__(self, channels: int, *, rngs: nnx.Rngs):
        self.conv = conv3x3(channels, channels, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.conv(jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2))


class Attention(nnx.Module):
    """Non-local block: x + proj(softmax(q kᵀ/√C) v) over the H·W positions, q, k, v = 1×1 convs of norm(x)."""

    def __init__(self, channels: int, *, rngs: nnx.Rngs):
        self.norm = group_norm(channels, rngs=rngs)
        self.qkv = nnx.Linear(channels, 3 * channels, rngs=rngs)
        self.proj = nnx.Linear(channels, channels, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        b, h, w, c = x.shape
        q, k, v = jnp.split(self.qkv(self.norm(x)).reshape(b, h * w, 3 * c), 3, axis=-1)
        weights = jax.nn.softmax(jnp.einsum("bqc,bkc->bqk", q, k) / math.sqrt(c), axis=-1)
        return x + self.proj(jnp.einsum("bqk,bkc->bqc", weights, v)).reshape(b, h, w, c)


def level_widths(channels: int, channel_mult: Sequence[int], num_down: int) -> list[int]:
    """Widths C·mult[i] of levels i = 0 … d (the last multiplier repeats when the list is short)."""
    if not channel_mult:
        raise ValueError("channel_mult must have at least one entry")
    return [channels * channel_mult[min(i, len(channel_mult) - 1)] for i in range(num_down + 1)]


def check_image_shape(shape: Sequence[int], num_down: int) -> None:
    """ValueError unless ``shape`` = (B, H, W, C) with H and W divisible by 2^num_down."""
    factor = 2 ** num_down
    if len(shape) != 4 or shape[1] % factor or shape[2] % factor:
        raise ValueError(f"images must be (B, H, W, C) with H and W divisible by 2^num_down = {factor} "
                         f"(num_down = {num_down}), got shape {tuple(shape)}; crop or resize the images, "
                         "or change num_down")


def _level(cin: int, cout: int, num_blocks: int, attention: bool, *, rngs: nnx.Rngs) -> nnx.List:
    """``num_blocks`` residual blocks (cin → cout, then cout → cout), each followed by attention if asked."""
    layers = []
    for j in range(num_blocks):
        layers.append(ResBlock(cin if j == 0 else cout, cout, rngs=rngs))
        if attention:
            layers.append(Attention(cout, rngs=rngs))
    return nnx.List(layers)


def _run(layers, x: jax.Array) -> jax.Array:
    for layer in layers:
        x = layer(x)
    return x


class Encoder(nnx.Module):
    """(B, H, W, in_channels) → (B, H/2^d, W/2^d, latent_dim); see the module docstring."""

    def __init__(self, in_channels: int, latent_dim: int, *, channels: int, channel_mult: Sequence[int],
                 num_res_blocks: int, num_down: int, attn_resolutions: Sequence[int], image_size: int,
                 rngs: nnx.Rngs):
        widths = level_widths(channels, channel_mult, num_down)
        self.num_down = num_down
        self.conv_in = conv3x3(in_channels, widths[0], rngs=rngs)
        levels = []
        for i in range(num_down):
            res = image_size // 2 ** i
            cin = widths[i - 1] if i else widths[0]
            blocks = _level(cin, widths[i], num_res_blocks, res in attn_resolutions, rngs=rngs)
            levels.append(nnx.List([*blocks, Downsample(widths[i], rngs=rngs)]))
        self.levels = nnx.List(levels)
        self.mid = nnx.List([ResBlock(widths[max(num_down - 1, 0)], widths[-1], rngs=rngs),
                             Attention(widths[-1], rngs=rngs), ResBlock(widths[-1], widths[-1], rngs=rngs)])
        self.norm_out = group_norm(widths[-1], rngs=rngs)
        self.conv_out = conv3x3(widths[-1], latent_dim, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        check_image_shape(x.shape, self.num_down)
        h = self.conv_in(x)
        for level in self.levels:
            h = _run(level, h)
        h = _run(self.mid, h)
        return self.conv_out(jax.nn.swish(self.norm_out(h)))


class Decoder(nnx.Module):
    """(B, h, w, latent_dim) → (B, h·2^d, w·2^d, out_channels); the mirror of :class:`Encoder`."""

    def __init__(self, out_channels: int, latent_dim: int, *, channels: int, channel_mult: Sequence[int],
                 num_res_blocks: int, num_down: int, attn_resolutions: Sequence[int], image_size: int,
                 rngs: nnx.Rngs):
        widths = level_widths(channels, channel_mult, num_down)
        self.conv_in = conv3x3(latent_dim, widths[-1], rngs=rngs)
        self.mid = nnx.List([ResBlock(widths[-1], widths[-1], rngs=rngs), Attention(widths[-1], rngs=rngs),
                             ResBlock(widths[-1], widths[-1], rngs=rngs)])
        levels = []
        for i in reversed(range(num_down)):
            res = image_size // 2 ** i
            blocks = _level(widths[i + 1], widths[i], num_res_blocks, res in attn_resolutions, rngs=rngs)
            levels.append(nnx.List([Upsample(widths[i + 1], rngs=rngs), *blocks]))
        self.levels = nnx.List(levels)
        self.norm_out = group_norm(widths[0], rngs=rngs)
        self.conv_out = conv3x3(widths[0], out_channels, rngs=rngs)

    def __call__(self, z: jax.Array) -> jax.Array:
        h = _run(self.mid, self.conv_in(z))
        for level in self.levels:
            h = _run(level, h)
        return self.conv_out(jax.nn.swish(self.norm_out(h)))
