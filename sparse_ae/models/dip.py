"""The Deep Image Prior hourglass ("skip" network of Ulyanov et al.) with sparsity on its encoder.

Level i (0 = full resolution) maps h_i (H/2^i) to:
  encoder  e_i = act(N(conv3x3(act(N(conv3x3_stride2(h_i)))))) at H/2^(i+1), then the level's
           sparsity layer (:mod:`sparse_ae.models.sparsity`); h_{i+1} = e_i
  skip     s_i = act(N(conv1x1(h_i))) with ``skip[i]`` channels (none when 0)
  decoder  u_i = act(N(conv1x1(act(N(conv3x3(N([s_i, up2(u_{i+1})]))))))), u_L = e_{L-1}
and the output is sigmoid(conv1x1(u_0)). Convolutions use reflection padding, act is
LeakyReLU(0.2), up2 bilinear ×2. N is per-channel normalisation over the image with a learned
scale and bias: DIP's BatchNorm in training mode on its batch of one image (the DIP code never
leaves training mode), so the network works on one image at a time. H and W must be multiples
of 2^L.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from sparse_ae.models.sparsity import LayerStats, Sparsify, parse_specs


def _reflect(x: jax.Array, pad: int) -> jax.Array:
    return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect") if pad else x


class ConvNormAct(nnx.Module):
    """Reflection-padded conv (k × k, stride s), per-image channel normalisation, LeakyReLU(0.2)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, *, act: bool = True, rngs: nnx.Rngs):
        self.conv = nnx.Conv(cin, cout, (kernel, kernel), strides=(stride, stride), padding="VALID", rngs=rngs)
        self.norm = nnx.GroupNorm(cout, num_groups=cout, epsilon=1e-5, rngs=rngs)
        self.pad = (kernel - 1) // 2
        self.act = act

    def __call__(self, x: jax.Array) -> jax.Array:
        h = self.norm(self.conv(_reflect(x, self.pad)))
        return jax.nn.leaky_relu(h, 0.2) if self.act else h


def upsample2(x: jax.Array) -> jax.Array:
    """Bilinear ×2 (half-pixel centres, as PyTorch's align_corners=False)."""
    b, h, w, c = x.shape
    return jax.image.resize(x, (b, 2 * h, 2 * w, c), "bilinear", antialias=False)


class DIPHourglass(nnx.Module):
    """``(noise input (1, H, W, in_channels)) -> (image (1, H, W, out_channels) in (0, 1), stats)``.

    ``down`` / ``up`` / ``skip``: channels per level (same length L); ``sparsity``: one spec per
    level, applied to the encoder output e_i; ``stats`` maps "e<i+1>" to its LayerStats.
    """

    def __init__(self, in_channels: int, out_channels: int, down: Sequence[int], up: Sequence[int],
                 skip: Sequence[int], sparsity: Sequence[str], kernel: int = 3, *, rngs: nnx.Rngs):
        levels = len(down)
        if not levels or len(up) != levels or len(skip) != levels:
            raise ValueError(f"down, up and skip need one entry per level and the same length, got {tuple(down)}, "
                             f"{tuple(up)}, {tuple(skip)}")
        if min(*down, *up) < 1 or min(skip) < 0:
            raise ValueError("down/up channels must be >= 1 and skip channels >= 0")
        specs = parse_specs(sparsity, levels, "config.model.sparsity")
        cins = [in_channels, *down[:-1]]
        self.down1 = nnx.List([ConvNormAct(c, d, kernel, 2, rngs=rngs) for c, d in zip(cins, down)])
        self.down2 = nnx.List([ConvNormAct(d, d, kernel, rngs=rngs) for d in down])
        self.skips = nnx.List([ConvNormAct(c, s, 1, rngs=rngs) if s else None for c, s in zip(cins, skip)])
        self.sparsify = nnx.List([Sparsify(s, f"e{i + 1}") for i, s in enumerate(specs)])
        deeper = [*up[1:], down[-1]]
        self.merge_norms = nnx.List([nnx.GroupNorm(s + d, num_groups=s + d, rngs=rngs) for s, d in zip(skip, deeper)])
        self.up1 = nnx.List([ConvNormAct(s + d, u, kernel, rngs=rngs) for s, d, u in zip(skip, deeper, up)])
        self.up2 = nnx.List([ConvNormAct(u, u, 1, rngs=rngs) for u in up])
        self.head = nnx.Conv(up[0], out_channels, (1, 1), rngs=rngs)
        self.levels = levels

    def __call__(self, x: jax.Array) -> tuple[jax.Array, dict[str, LayerStats]]:
        factor = 2 ** self.levels
        if x.shape[1] % factor or x.shape[2] % factor:
            raise ValueError(f"DIP input of size {x.shape[1]}x{x.shape[2]} must be a multiple of 2^levels = {factor} "
                             "in height and width (crop the image)")
        skips, stats = [], {}
        h = x
        for i in range(self.levels):
            skips.append(None if self.skips[i] is None else self.skips[i](h))
            h, stats[f"e{i + 1}"] = self.sparsify[i](self.down2[i](self.down1[i](h)))
        for i in reversed(range(self.levels)):
            h = upsample2(h)
            if skips[i] is not None:
                h = jnp.concatenate([skips[i], h], axis=-1)
            h = self.up2[i](self.up1[i](self.merge_norms[i](h)))
        return jax.nn.sigmoid(self.head(h)), stats


def count_flops(height: int, width: int, in_channels: int, out_channels: int, down: Sequence[int],
                up: Sequence[int], skip: Sequence[int], kernel: int = 3) -> int:
    """Multiply-adds × 2 of the convolutions in one forward pass (element-wise work not counted)."""
    flops, cin = 0, in_channels
    k2 = kernel * kernel
    deeper = [*up[1:], down[-1]]
    for i, (d, u, s, dd) in enumerate(zip(down, up, skip, deeper)):
        full = (height >> i) * (width >> i)
        half = full // 4
        flops += 2 * half * d * (cin * k2 + d * k2)          # strided conv + conv at H/2^(i+1)
        flops += 2 * full * (cin * s + (s + dd) * u * k2 + u * u)  # skip 1x1, decoder 3x3 + 1x1
        cin = d
    return flops + 2 * height * width * up[0] * out_channels
