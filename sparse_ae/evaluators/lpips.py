"""LPIPS (Zhang et al. 2018, the VGG16 variant, v0.1) of reconstructions vs inputs.

Nothing is downloaded. The weights come from a file you give in ``config.lpips.weights``: one
``.npz`` holding torchvision's VGG16 ``features`` convolutions and the five LPIPS linear layers
under their PyTorch names, e.g. made once with

    import numpy as np, torch, torchvision
    vgg = torchvision.models.vgg16(weights="IMAGENET1K_V1").features.state_dict()
    lin = torch.load("lpips/weights/v0.1/vgg.pth", map_location="cpu")
    np.savez("lpips_vgg.npz", **{f"features.{k}": v.numpy() for k, v in vgg.items()},
             **{k: v.numpy() for k, v in lin.items()})

Distance of images x, y (B, H, W, C) in [0, 1] (gray is replicated to RGB): both go to [−1, 1],
then (v − shift) / scale per channel; at the five taps of VGG16 (relu1_2, relu2_2, relu3_3,
relu4_3, relu5_3) the features f (B, h, w, c) are unit-normalised over channels, and
d(x, y) = Σ_layers mean_hw Σ_c w_c (f̂_x − f̂_y)², with the non-negative LPIPS weights w (c,).
``evaluate`` reports ``<split>/lpips``, the mean over the split.
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from sparse_ae.evaluators import eval_outputs, require_weights_file

SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
SCALE = np.array([0.458, 0.448, 0.450], np.float32)
# VGG16 ``features``: convolutions per block (torchvision indices); a tap after each block's last
# ReLU, a 2×2 max pool before every block but the first.
BLOCKS = ((0, 2), (5, 7), (10, 12, 14), (17, 19, 21), (24, 26, 28))
WIDTHS = (64, 128, 256, 512, 512)
NORM_EPS = 1e-10

Params = dict[str, np.ndarray]


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """PyTorch name → shape of every array the weights file must hold."""
    shapes, cin = {}, 3
    for block, width in zip(BLOCKS, WIDTHS):
        for index in block:
            shapes[f"features.{index}.weight"] = (width, cin, 3, 3)
            shapes[f"features.{index}.bias"] = (width,)
            cin = width
    for layer, width in enumerate(WIDTHS):
        shapes[f"lin{layer}.model.1.weight"] = (1, width, 1, 1)
    return shapes


def load_weights(path: str | os.PathLike) -> Params:
    """Arrays of ``path`` as used by :func:`distance`: conv kernels (3, 3, I, O), biases (O,), LPIPS
    weights (c,). A missing file, a missing or mis-shaped array is a ValueError naming it."""
    if not os.path.isfile(path):
        raise ValueError(f"config.lpips.weights={os.fspath(path)!r} is not a file; convert the LPIPS VGG "
                         "weights to .npz as described in sparse_ae/evaluators/lpips.py")
    params = {}
    with np.load(path) as arrays:
        for name, shape in expected_shapes().items():
            if name not in arrays.files:
                raise ValueError(f"{os.fspath(path)}: no array {name!r}; not the LPIPS VGG16 weights "
                                 "(see sparse_ae/evaluators/lpips.py)")
            value = np.asarray(arrays[name], np.float32)
            if value.shape != shape:
                raise ValueError(f"{os.fspath(path)}: {name} has shape {value.shape}, expected {shape}")
            if name.startswith("lin"):
                value = value.reshape(-1)
            elif value.ndim == 4:
                value = value.transpose(2, 3, 1, 0)
            params[name] = value
    return params


def features(params: Params, images: jax.Array) -> list[jax.Array]:
    """The five VGG16 taps (B, h, w, c) of images (B, H, W, C) in [0, 1]."""
    if images.shape[-1] == 1:
        images = jnp.repeat(images, 3, axis=-1)
    h = (2 * images - 1 - SHIFT) / SCALE
    taps = []
    for i, block in enumerate(BLOCKS):
        if i:
            h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        for index in block:
            h = jax.lax.conv_general_dilated(h, params[f"features.{index}.weight"], (1, 1), "SAME",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
            h = jax.nn.relu(h + params[f"features.{index}.bias"])
        taps.append(h)
    return taps


def unit_normalize(f: jax.Array) -> jax.Array:
    """f / (‖f‖₂ over channels + 1e-10)."""
    return f / (jnp.sqrt(jnp.sum(f * f, axis=-1, keepdims=True)) + NORM_EPS)


def distance(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    """LPIPS d(x, y) (B,) of images (B, H, W, C) in [0, 1]."""
    total = 0.0
    for layer, (fx, fy) in enumerate(zip(features(params, x), features(params, y))):
        diff = jnp.square(unit_normalize(fx) - unit_normalize(fy))
        total = total + jnp.mean(diff @ params[f"lin{layer}.model.1.weight"], axis=(1, 2))
    return total


# ----------------------------------------------------------------------------------- evaluator
def validate_config(config) -> None:
    require_weights_file(config, "lpips", "a .npz of the LPIPS VGG16 weights "
                         "(see sparse_ae/evaluators/lpips.py for the conversion)")


@functools.lru_cache(maxsize=2)
def _distance_fn(weights: str):
    params = jax.tree.map(jnp.asarray, load_weights(weights))
    return jax.jit(functools.partial(distance, params))


def evaluate(task, state, datasets, config):
    """``<split>/lpips``: mean LPIPS of reconstructions (clipped to [0, 1]) vs inputs."""
    fn = _distance_fn(config.lpips.weights)
    scalars = {}
    for split, make_iterator in datasets.items():
        values = [np.asarray(fn(jnp.asarray(batch["image"]), jnp.asarray(np.clip(outputs["reconstruction"], 0, 1))))
                  for batch, outputs in eval_outputs(task, state, make_iterator)]
        scalars[f"{split}/lpips"] = float(np.mean(np.concatenate(values)))
    return scalars, {}
