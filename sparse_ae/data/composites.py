"""Offline segmentation benchmark: a digit shape filled with one natural texture, pasted on another.

Each example: "image" (S, S, C) float32, "mask" (S, S) bool (True = the digit, the foreground),
"label" () int32 (the digit). The shape is a scikit-learn digit (8×8) resized bilinearly to a
random side in [0.5 S, 0.85 S], thresholded at 0.2 of full ink, holes filled (a solid silhouette)
and placed at a random position.
Foreground and background are random S×S windows of two different textures (scikit-image's brick,
grass, gravel and immunohistochemistry, downscaled ×2). With ``match_stats`` (the default) the
background is shifted and scaled per channel to the foreground's mean and standard deviation, so
the two regions differ in texture and not in average colour or contrast.

Splits: digit images with index ≡ 0 (mod 5) are "test", the others "train" (fixed). Training reads
an unbounded stream of random composites; evaluation reads ``num_eval_examples`` fixed ones. The
module has the data-source interface (``validate``, ``make_source``, ``element_spec``).
"""

from __future__ import annotations

import functools

import jax
import numpy as np
from scipy import ndimage

from sparse_ae.data import transforms
from sparse_ae.data.config import DataConfig, require_image_size
from sparse_ae.data.source import Source

TEXTURES = ("brick", "grass", "gravel", "immunohistochemistry")
TEXTURE_SCALE = 0.5
SPLITS = ("train", "test")
TEST_EVERY = 5
MIN_SIZE = 16
MAX_SIZE = 256  # textures are 256 × 256 after downscaling
SHAPE_RANGE = (0.5, 0.85)
INK_THRESHOLD = 0.2


@functools.cache
def textures(channels: int) -> tuple[np.ndarray, ...]:
    """The texture images (256, 256, channels) float32 in [0, 1]."""
    import skimage.data  # pylint: disable=import-outside-toplevel

    out = []
    for name in TEXTURES:
        image = transforms.to_float(getattr(skimage.data, name)())
        h, w = image.shape[:2]
        image = transforms.resize(image, round(h * TEXTURE_SCALE), round(w * TEXTURE_SCALE))
        out.append(transforms.to_channels(image, channels))
    return tuple(out)


@functools.cache
def digit_shapes(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, 8, 8) float32 ink in [0, 1] and (N,) int32 labels of one split."""
    from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel

    digits = load_digits()
    test = np.arange(len(digits.target)) % TEST_EVERY == 0
    keep = test if split == "test" else ~test
    return (digits.images[keep] / 16.0).astype(np.float32), digits.target[keep].astype(np.int32)


def shape_mask(ink: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size) bool: the 8×8 ``ink`` resized to a random side, thresholded, filled, placed at random."""
    low, high = (max(2, round(f * size)) for f in SHAPE_RANGE)
    side = int(rng.integers(low, high + 1))
    shape = ndimage.binary_fill_holes(transforms.resize(ink[..., None], side, side)[..., 0] > INK_THRESHOLD)
    top, left = (int(v) for v in rng.integers(0, size - side + 1, size=2))
    mask = np.zeros((size, size), bool)
    mask[top:top + side, left:left + side] = shape
    return mask


def match_statistics(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``source`` (H, W, C) shifted and scaled per channel to ``reference``'s mean and std, clipped to [0, 1]."""
    mean_s, std_s = source.mean(axis=(0, 1)), source.std(axis=(0, 1))
    mean_r, std_r = reference.mean(axis=(0, 1)), reference.std(axis=(0, 1))
    out = (source - mean_s) / np.maximum(std_s, 1e-6) * std_r + mean_r
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def composite(ink: np.ndarray, size: int, channels: int, rng: np.random.Generator,
              match_stats: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """One (image (size, size, channels), mask (size, size) bool) pair from a digit's ``ink``."""
    pool = textures(channels)
    fg_index, bg_index = rng.choice(len(pool), size=2, replace=False)
    fg = transforms.crop(pool[fg_index], size, rng)
    bg = transforms.crop(pool[bg_index], size, rng)
    if match_stats:
        bg = match_statistics(bg, fg)
    mask = shape_mask(ink, size, rng)
    return np.where(mask[..., None], fg, bg).astype(np.float32), mask


def make_arrays(split: str, num: int, size: int, channels: int, seed: int = 0,
                match_stats: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``num`` fixed composites without a pipeline: images (num, size, size, channels), masks (num, size, size)."""
    inks, _ = digit_shapes(split)
    pairs = [composite(inks[i % len(inks)], size, channels, np.random.default_rng([seed, i]), match_stats)
             for i in range(num)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def validate(cfg: DataConfig) -> None:
    require_image_size(cfg, maximum=MAX_SIZE, minimum=MIN_SIZE)


def _read(cfg: DataConfig, split: str, train: bool):
    inks, labels = digit_shapes(split)

    def read(index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        i = int(rng.integers(len(inks))) if train else index % len(inks)
        image, mask = composite(inks[i], cfg.image_size, cfg.channels, rng)
        return {"image": image, "mask": mask, "label": labels[i]}

    return read


def make_source(cfg: DataConfig, split: str, train: bool) -> Source:
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not a split of 'composites'; choose one of {SPLITS}")
    return Source(read=_read(cfg, split, train), length=None if train else cfg.num_eval_examples,
                  augment=False)


def element_spec(cfg: DataConfig) -> dict[str, jax.ShapeDtypeStruct]:
    size = cfg.image_size
    return {"image": jax.ShapeDtypeStruct((size, size, cfg.channels), np.float32),
            "mask": jax.ShapeDtypeStruct((size, size), np.bool_),
            "label": jax.ShapeDtypeStruct((), np.int32)}
