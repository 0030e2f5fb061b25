"""Image grids for writers and PNG files."""

from __future__ import annotations

import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image


def tile(images: np.ndarray, num_cols: int | None = None, pad: int = 1) -> np.ndarray:
    """(N, h, w, C) -> one (H, W, C) grid, ``pad`` pixels of 0.5 grey between tiles.

    Values are clipped to [0, 1]; C must be 1 or 3 (2-D input (N, h, w) is read as C = 1).
    """
    images = np.asarray(images, np.float32)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must be (N, h, w, 1|3), got shape {images.shape}")
    n, h, w, c = images.shape
    cols = num_cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 0.5, np.float32)
    for i, image in enumerate(np.clip(images, 0.0, 1.0)):
        r, q = divmod(i, cols)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + q * (w + pad):pad + q * (w + pad) + w] = image
    return grid


def upscale(image: np.ndarray, min_side: int) -> np.ndarray:
    """(H, W, C) enlarged by the smallest integer factor (nearest neighbour) that makes its shorter
    side at least ``min_side`` pixels; unchanged when it already is."""
    factor = max(1, math.ceil(min_side / min(image.shape[:2])))
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def plot_lines(signals: np.ndarray, height: int = 64, min_width: int = 192) -> np.ndarray:
    """(N, L) values in [0, 1] -> (N, height, width, 1) panels, each signal drawn as a black polyline
    (value 1 at the top) on white; width = max(L, ``min_width``) columns, the signal linearly
    interpolated onto them, consecutive columns joined by vertical runs."""
    signals = np.clip(np.asarray(signals, np.float32), 0.0, 1.0)
    n, length = signals.shape
    width = max(length, min_width)
    columns = np.linspace(0, length - 1, width)
    values = np.stack([np.interp(columns, np.arange(length), signal) for signal in signals])
    rows = np.round((1.0 - values) * (height - 1)).astype(int)   # (N, width) pixel row of each column
    before = np.concatenate([rows[:, :1], rows[:, :-1]], axis=1)
    low, high = np.minimum(rows, before), np.maximum(rows, before)
    ys = np.arange(height)[None, :, None]
    return np.where((ys >= low[:, None, :]) & (ys <= high[:, None, :]), 0.0, 1.0)[..., None].astype(np.float32)


def rescale(images: jax.Array) -> jax.Array:
    """Each image min-max scaled to [0, 1] over all but the leading axis (e.g. dictionary atoms);
    traceable, for a task's jitted ``images``."""
    axes = tuple(range(1, images.ndim))
    low, high = images.min(axis=axes, keepdims=True), images.max(axis=axes, keepdims=True)
    return (images - low) / jnp.maximum(high - low, 1e-12)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (clipped) to 8-bit, rounded to the nearest level; uint8 passes through."""
    if image.dtype == np.uint8:
        return image
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


def save_png(path: str | pathlib.Path, image: np.ndarray) -> None:
    """Writes an (H, W, 1|3) image, in [0, 1] or uint8, as an 8-bit PNG."""
    pixels = to_uint8(np.asarray(image))
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(path)
