"""The FID variant of InceptionV3 in Flax NNX, and its weights from a PyTorch ``state_dict``.

The network is the TF "2015-12-05" graph as re-implemented by pytorch-fid: count_include_pad=False
average pools in the A, C and first E blocks, a max pool in the last E block, 1008 logits. Its
weights come from an ``.npz`` of that network's PyTorch ``state_dict`` arrays under their
PyTorch names, e.g. made once with

    import numpy as np, torch
    sd = torch.load("pt_inception-2015-12-05-6726825d.pth", map_location="cpu")
    np.savez("inception_fid.npz", **{k: v.numpy() for k, v in sd.items()})

Images (B, H, W, C) in [0, 1] (gray is replicated to RGB) are resized bilinearly to 299 × 299
and mapped to [−1, 1] by :func:`preprocess`; the network returns (features (B, 2048), logits
(B, 1008)).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

INPUT_SIZE = 299
BN_EPS = 1e-3
NUM_LOGITS = 1008
FEATURE_DIM = 2048


class BasicConv(nnx.Module):
    """Conv (no bias) + inference BatchNorm (ε = 1e-3) + ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0, *, rngs: nnx.Rngs):
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        ph, pw = (padding, padding) if isinstance(padding, int) else padding
        self.conv = nnx.Conv(cin, cout, (kh, kw), strides=(stride, stride), padding=((ph, ph), (pw, pw)),
                             use_bias=False, rngs=rngs)
        self.bn = nnx.BatchNorm(cout, epsilon=BN_EPS, use_running_average=True, rngs=rngs)

    def __call__(self, x):
        return jax.nn.relu(self.bn(self.conv(x)))


def _max_pool(x, window=3, stride=2, pad=0):
    padding = ((0, 0), (pad, pad), (pad, pad), (0, 0))
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, window, window, 1), (1, stride, stride, 1), padding)


def _avg_pool_exclude_pad(x):
    """3 × 3, stride 1, padding 1, dividing by the number of real (non-padding) pixels."""
    padding = ((0, 0), (1, 1), (1, 1), (0, 0))
    total = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 3, 3, 1), (1, 1, 1, 1), padding)
    count = jax.lax.reduce_window(jnp.ones_like(x[:1, :, :, :1]), 0.0, jax.lax.add, (1, 3, 3, 1), (1, 1, 1, 1),
                                  padding)
    return total / count


class InceptionA(nnx.Module):
    def __init__(self, cin: int, pool_features: int, *, rngs: nnx.Rngs):
        self.branch1x1 = BasicConv(cin, 64, 1, rngs=rngs)
        self.branch5x5_1 = BasicConv(cin, 48, 1, rngs=rngs)
        self.branch5x5_2 = BasicConv(48, 64, 5, padding=2, rngs=rngs)
        self.branch3x3dbl_1 = BasicConv(cin, 64, 1, rngs=rngs)
        self.branch3x3dbl_2 = BasicConv(64, 96, 3, padding=1, rngs=rngs)
        self.branch3x3dbl_3 = BasicConv(96, 96, 3, padding=1, rngs=rngs)
        self.branch_pool = BasicConv(cin, pool_features, 1, rngs=rngs)

    def __call__(self, x):
        return jnp.concatenate([
                self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(_avg_pool_exclude_pad(x))], axis=-1)


class InceptionB(nnx.Module):
    def __init__(self, cin: int, *, rngs: nnx.Rngs):
        self.branch3x3 = BasicConv(cin, 384, 3, stride=2, rngs=rngs)
        self.branch3x3dbl_1 = BasicConv(cin, 64, 1, rngs=rngs)
        self.branch3x3dbl_2 = BasicConv(64, 96, 3, padding=1, rngs=rngs)
        self.branch3x3dbl_3 = BasicConv(96, 96, 3, stride=2, rngs=rngs)

    def __call__(self, x):
        return jnp.concatenate([self.branch3x3(x),
                                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                                _max_pool(x)], axis=-1)


class InceptionC(nnx.Module):
    def __init__(self, cin: int, c7: int, *, rngs: nnx.Rngs):
        self.branch1x1 = BasicConv(cin, 192, 1, rngs=rngs)
        self.branch7x7_1 = BasicConv(cin, c7, 1, rngs=rngs)
        self.branch7x7_2 = BasicConv(c7, c7, (1, 7), padding=(0, 3), rngs=rngs)
        self.branch7x7_3 = BasicConv(c7, 192, (7, 1), padding=(3, 0), rngs=rngs)
        self.branch7x7dbl_1 = BasicConv(cin, c7, 1, rngs=rngs)
        self.branch7x7dbl_2 = BasicConv(c7, c7, (7, 1), padding=(3, 0), rngs=rngs)
        self.branch7x7dbl_3 = BasicConv(c7, c7, (1, 7), padding=(0, 3), rngs=rngs)
        self.branch7x7dbl_4 = BasicConv(c7, c7, (7, 1), padding=(3, 0), rngs=rngs)
        self.branch7x7dbl_5 = BasicConv(c7, 192, (1, 7), padding=(0, 3), rngs=rngs)
        self.branch_pool = BasicConv(cin, 192, 1, rngs=rngs)

    def __call__(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            d = layer(d)
        return jnp.concatenate([self.branch1x1(x), b7, d, self.branch_pool(_avg_pool_exclude_pad(x))], axis=-1)


class InceptionD(nnx.Module):
    def __init__(self, cin: int, *, rngs: nnx.Rngs):
        self.branch3x3_1 = BasicConv(cin, 192, 1, rngs=rngs)
        self.branch3x3_2 = BasicConv(192, 320, 3, stride=2, rngs=rngs)
        self.branch7x7x3_1 = BasicConv(cin, 192, 1, rngs=rngs)
        self.branch7x7x3_2 = BasicConv(192, 192, (1, 7), padding=(0, 3), rngs=rngs)
        self.branch7x7x3_3 = BasicConv(192, 192, (7, 1), padding=(3, 0), rngs=rngs)
        self.branch7x7x3_4 = BasicConv(192, 192, 3, stride=2, rngs=rngs)

    def __call__(self, x):
        b7 = x
        for layer in (self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = layer(b7)
        return jnp.concatenate([self.branch3x3_2(self.branch3x3_1(x)), b7, _max_pool(x)], axis=-1)


class InceptionE(nnx.Module):
    """``max_pool``: the last block of the FID network pools by max, the one before by average."""

    def __init__(self, cin: int, max_pool: bool, *, rngs: nnx.Rngs):
        self.branch1x1 = BasicConv(cin, 320, 1, rngs=rngs)
        self.branch3x3_1 = BasicConv(cin, 384, 1, rngs=rngs)
        self.branch3x3_2a = BasicConv(384, 384, (1, 3), padding=(0, 1), rngs=rngs)
        self.branch3x3_2b = BasicConv(384, 384, (3, 1), padding=(1, 0), rngs=rngs)
        self.branch3x3dbl_1 = BasicConv(cin, 448, 1, rngs=rngs)
        self.branch3x3dbl_2 = BasicConv(448, 384, 3, padding=1, rngs=rngs)
        self.branch3x3dbl_3a = BasicConv(384, 384, (1, 3), padding=(0, 1), rngs=rngs)
        self.branch3x3dbl_3b = BasicConv(384, 384, (3, 1), padding=(1, 0), rngs=rngs)
        self.branch_pool = BasicConv(cin, 192, 1, rngs=rngs)
        self.max_pool = max_pool

    def __call__(self, x):
        b3 = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = _max_pool(x, 3, 1, 1) if self.max_pool else _avg_pool_exclude_pad(x)
        return jnp.concatenate([self.branch1x1(x), self.branch3x3_2a(b3), self.branch3x3_2b(b3),
                                self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d), self.branch_pool(pooled)], axis=-1)


class InceptionV3(nnx.Module):
    """FID InceptionV3: images (B, H, W, 3) in [−1, 1] -> (pool features (B, 2048), logits (B, 1008)).

    Attribute names follow the PyTorch module names, so weights map one to one (:func:`load_weights`).
    """

    def __init__(self, *, rngs: nnx.Rngs):
        self.Conv2d_1a_3x3 = BasicConv(3, 32, 3, stride=2, rngs=rngs)
        self.Conv2d_2a_3x3 = BasicConv(32, 32, 3, rngs=rngs)
        self.Conv2d_2b_3x3 = BasicConv(32, 64, 3, padding=1, rngs=rngs)
        self.Conv2d_3b_1x1 = BasicConv(64, 80, 1, rngs=rngs)
        self.Conv2d_4a_3x3 = BasicConv(80, 192, 3, rngs=rngs)
        self.Mixed_5b = InceptionA(192, 32, rngs=rngs)
        self.Mixed_5c = InceptionA(256, 64, rngs=rngs)
        self.Mixed_5d = InceptionA(288, 64, rngs=rngs)
        self.Mixed_6a = InceptionB(288, rngs=rngs)
        self.Mixed_6b = InceptionC(768, 128, rngs=rngs)
        self.Mixed_6c = InceptionC(768, 160, rngs=rngs)
        self.Mixed_6d = InceptionC(768, 160, rngs=rngs)
        self.Mixed_6e = InceptionC(768, 192, rngs=rngs)
        self.Mixed_7a = InceptionD(768, rngs=rngs)
        self.Mixed_7b = InceptionE(1280, max_pool=False, rngs=rngs)
        self.Mixed_7c = InceptionE(2048, max_pool=True, rngs=rngs)
        self.fc = nnx.Linear(FEATURE_DIM, NUM_LOGITS, rngs=rngs)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(_max_pool(x)))
        x = _max_pool(x)
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
                     "Mixed_7a", "Mixed_7b", "Mixed_7c"):
            x = getattr(self, name)(x)
        features = jnp.mean(x, axis=(1, 2))
        return features, self.fc(features)


def preprocess(images: jax.Array, size: int | None = INPUT_SIZE) -> jax.Array:
    """(B, H, W, 1 or 3) in [0, 1] -> (B, size, size, 3) in [−1, 1] (bilinear, no antialiasing,
    as PyTorch's ``interpolate(align_corners=False)``); ``size=None`` keeps the size."""
    if images.shape[-1] == 1:
        images = jnp.repeat(images, 3, axis=-1)
    if size is not None and images.shape[1:3] != (size, size):
        images = jax.image.resize(images, (images.shape[0], size, size, 3), "bilinear", antialias=False)
    return 2.0 * images - 1.0


# ----------------------------------------------------------------------------------- weights
def _torch_names(path: Sequence) -> list[tuple[str, tuple]]:
    """PyTorch key and our state path for every array of the module at ``path``."""
    prefix = ".".join(str(p) for p in path)
    return [(f"{prefix}.{k}", (*path, *ours)) for k, ours in (
            ("conv.weight", ("conv", "kernel")), ("bn.weight", ("bn", "scale")), ("bn.bias", ("bn", "bias")),
            ("bn.running_mean", ("bn", "mean")), ("bn.running_var", ("bn", "var")))]


def weight_map(model: InceptionV3) -> dict[str, tuple]:
    """{PyTorch state_dict key: state path in ``model``} for every array of the network."""
    mapping = {"fc.weight": ("fc", "kernel"), "fc.bias": ("fc", "bias")}
    for path, node in nnx.iter_graph(model):
        if isinstance(node, BasicConv):
            mapping.update(dict(_torch_names(path)))
    return mapping


def load_weights(path: str | os.PathLike) -> InceptionV3:
    """The FID InceptionV3 with the arrays of ``path`` (an ``.npz`` of PyTorch ``state_dict`` names).

    Conv weights (O, I, kh, kw) become (kh, kw, I, O); ``fc.weight`` is transposed. Any missing,
    unexpected or mis-shaped array is a ValueError naming it.
    """
    if not os.path.isfile(path):
        raise ValueError(f"config.fid.weights={os.fspath(path)!r} is not a file; convert the FID Inception "
                         "weights to .npz as described in sparse_ae/evaluators/fid.py")
    model = nnx.eval_shape(lambda: InceptionV3(rngs=nnx.Rngs(0)))
    mapping = weight_map(model)
    state = nnx.state(model)
    with np.load(path) as arrays:
        names = set(arrays.files) - {k for k in arrays.files if k.endswith("num_batches_tracked")}
        missing, unexpected = sorted(set(mapping) - names), sorted(names - set(mapping))
        if missing or unexpected:
            raise ValueError(f"{os.fspath(path)}: not the FID InceptionV3 state_dict; missing {missing[:5]} "
                             f"({len(missing)}), unexpected {unexpected[:5]} ({len(unexpected)})")
        flat = {}
        for key, ours in mapping.items():
            value = np.asarray(arrays[key], np.float32)
            if value.ndim == 4:
                value = value.transpose(2, 3, 1, 0)
            elif key == "fc.weight":
                value = value.T
            expected = _leaf(state, ours).shape
            if value.shape != tuple(expected):
                raise ValueError(f"{os.fspath(path)}: {key} has shape {value.shape}, expected {tuple(expected)}")
            flat[ours] = jnp.asarray(value)
    nnx.update(model, nnx.State.from_flat_path(flat))
    return model


def _leaf(state, path):
    node = state
    for p in path:
        node = node[p]
    return node
