"""Convolutional sparse autoencoder: conv + pooling encoder, a fully connected sparse code, deconv decoder.

Encoder: per stage a 3 × 3 convolution ('SAME'), ReLU and 2 × 2 pooling (``pool``: 'max',
'avg' or 'l2', see :func:`pool`; ``widths`` channels), flatten, linear map to ``code_dim``,
``code_activation`` ('relu' | 'linear'), then the code's sparsity layer
(:mod:`sparse_ae.models.sparsity`: 'l1:<λ>' penalty, 'l0:<k>' top-k, or 'none' for a plain
autoencoder of the same size). In training (a dropout key given) the code then goes through
inverted dropout of rate ``dropout``, a regulariser of the code (:func:`dropout_code`); the
sparsity stats are those of the code before dropout. Decoder: linear map back to the last
feature map, ReLU, then per stage a 4 × 4 stride-2 transposed convolution (ReLU between,
sigmoid at the end). Images (B, S, S, C) in [0, 1], S divisible by 2^stages.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sparse_ae.models.sparsity import LayerStats, Sparsify

ACTIVATIONS = ("relu", "linear")
POOLS = ("max", "avg", "l2")
L2_POOL_EPS = 1e-6


def pool(h: jax.Array, kind: str) -> jax.Array:
    """2 × 2 stride-2 pooling, (B, H, W, C) -> (B, H/2, W/2, C), over each window: 'max' the
    largest entry, 'avg' the mean, 'l2' sqrt(mean of the squares + 1e-6) (``L2_POOL_EPS``: keeps
    the gradient finite where the window is all zeros, at the cost of an output of 1e-3 there)."""
    if kind == "max":
        return nnx.max_pool(h, (2, 2), (2, 2))
    if kind == "avg":
        return nnx.avg_pool(h, (2, 2), (2, 2))
    if kind == "l2":
        return jnp.sqrt(nnx.avg_pool(jnp.square(h), (2, 2), (2, 2)) + L2_POOL_EPS)
    raise ValueError(f"pool={kind!r} is not one of {POOLS}")


def dropout_code(code: jax.Array, rate: float, key: jax.Array | None) -> jax.Array:
    """Inverted dropout: each entry is zeroed with probability ``rate`` and the kept ones are
    scaled by 1 / (1 − rate), so the expected code is unchanged. No key (evaluation) or rate 0:
    the code as it is."""
    if key is None or rate == 0:
        return code
    keep = jax.random.bernoulli(key, 1.0 - rate, code.shape)
    return jnp.where(keep, code / (1.0 - rate), 0.0).astype(code.dtype)


class ConvSAE(nnx.Module):
    def __init__(self, image_size: int, channels: int, widths: Sequence[int], code_dim: int, sparsity: str,
                 code_activation: str = "relu", pool: str = "max", dropout: float = 0.0, *, rngs: nnx.Rngs):
        stages = len(widths)
        if not stages or image_size < 2**stages or image_size % 2**stages:
            raise ValueError(f"image_size={image_size} must be a positive multiple of 2^len(widths) = {2 ** stages}")
        if code_activation not in ACTIVATIONS:
            raise ValueError(f"code_activation={code_activation!r} is not one of {ACTIVATIONS}")
        if pool not in POOLS:
            raise ValueError(f"pool={pool!r} is not one of {POOLS}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout={dropout} must be in [0, 1)")
        self.top_shape = (image_size // 2**stages, image_size // 2**stages, widths[-1])
        self.convs = nnx.List([nnx.Conv(a, b, (3, 3), padding="SAME", rngs=rngs)
                               for a, b in zip([channels, *widths[:-1]], widths)])
        self.to_code = nnx.Linear(math.prod(self.top_shape), code_dim, rngs=rngs)
        self.sparsify = Sparsify(sparsity, "code")
        self.from_code = nnx.Linear(code_dim, math.prod(self.top_shape), rngs=rngs)
        outs = [channels, *widths[:-1]]
        self.deconvs = nnx.List([nnx.ConvTranspose(b, a, (4, 4), strides=(2, 2), padding="SAME", rngs=rngs)
                                 for a, b in zip(outs, widths)])
        self.code_activation = code_activation
        self.pool_kind = pool
        self.dropout = dropout

    def encode(self, x: jax.Array) -> tuple[jax.Array, LayerStats]:
        """(B, S, S, C) -> code (B, code_dim) after the sparsity layer, and its stats."""
        h = x
        for conv in self.convs:
            h = pool(jax.nn.relu(conv(h)), self.pool_kind)
        code = self.to_code(h.reshape(h.shape[0], -1))
        return self.sparsify(jax.nn.relu(code) if self.code_activation == "relu" else code)

    def decode(self, code: jax.Array) -> jax.Array:
        h = jax.nn.relu(self.from_code(code)).reshape(code.shape[0], *self.top_shape)
        for level in reversed(range(len(self.deconvs))):
            h = self.deconvs[level](h)
            if level > 0:
                h = jax.nn.relu(h)
        return jax.nn.sigmoid(h)

    def __call__(self, x: jax.Array, dropout_key: jax.Array | None = None
                 ) -> tuple[jax.Array, jax.Array, LayerStats]:
        """(reconstruction, code as decoded, stats of the code before dropout); ``dropout_key``
        None (evaluation) leaves the code as it is."""
        code, stats = self.encode(x)
        code = dropout_code(code, self.dropout, dropout_key)
        return self.decode(code), code, stats


def patch_average(fn: Callable[[np.ndarray], np.ndarray], image: np.ndarray, patch: int, stride: int,
                  batch: int = 256) -> np.ndarray:
    """Apply ``fn`` ((N, p, p, C) -> (N, p, p, C)) to every p × p patch of ``image`` (H, W, C) on a
    grid of step ``stride`` (plus the last row / column of patches) and average the overlaps.
    Every batch has ``batch`` patches (the last one padded), so a jitted ``fn`` compiles once."""
    image = np.asarray(image, np.float32)
    h, w, _ = image.shape
    if patch > min(h, w):
        raise ValueError(f"patch={patch} is larger than the image {h}x{w}")
    tops = sorted({*range(0, h - patch + 1, stride), h - patch})
    lefts = sorted({*range(0, w - patch + 1, stride), w - patch})
    corners = [(t, l) for t in tops for l in lefts]
    total = np.zeros_like(image)
    count = np.zeros(image.shape[:2] + (1,), np.float32)
    for start in range(0, len(corners), batch):
        chunk = corners[start:start + batch]
        patches = np.stack([image[t:t + patch, l:l + patch] for t, l in chunk])
        padded = np.concatenate([patches, np.repeat(patches[-1:], batch - len(chunk), axis=0)])
        outputs = np.asarray(fn(padded))[:len(chunk)]
        for (t, l), out in zip(chunk, outputs):
            total[t:t + patch, l:l + patch] += out
            count[t:t + patch, l:l + patch] += 1.0
    return total / count
