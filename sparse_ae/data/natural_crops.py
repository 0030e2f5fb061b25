"""Crops of the natural photographs shipped with scikit-image and scikit-learn.

Held-out split by whole image (no image contributes crops to both splits):
  train: astronaut, chelsea, coins, moon, rocket (skimage.data), china (sklearn), grass,
         gravel (skimage.data textures)
  test:  camera, coffee (skimage.data), flower (sklearn)
Training reads an unbounded stream of random crops (image picked with probability proportional
to its area, position uniform, both from the per-example generator). Evaluation reads
``num_eval_examples`` fixed crops: crop i comes from test image ``i mod 3`` at a position drawn
from a fixed seed, the same in every run. RGB photos become gray by ITU-R BT.601 luma when
channels=1; gray photos are replicated when channels=3.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from sparse_ae.data import transforms
from sparse_ae.data.config import DataConfig, require_image_size
from sparse_ae.data.source import Source

TRAIN_IMAGES = ("astronaut", "chelsea", "coins", "moon", "rocket", "china", "grass", "gravel")
TEST_IMAGES = ("camera", "coffee", "flower")
SPLITS = {"train": TRAIN_IMAGES, "test": TEST_IMAGES}
# Smallest side over all images above (chelsea: 300 x 451): the largest possible crop.
MAX_CROP = 300


def load_photo(name: str) -> np.ndarray:
    """One photograph as (H, W, C) float32 in [0, 1], C = 1 or 3."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image  # pylint: disable=import-outside-toplevel

        return transforms.to_float(load_sample_image(f"{name}.jpg"))
    import skimage.data  # pylint: disable=import-outside-toplevel

    return transforms.to_float(getattr(skimage.data, name)())


@functools.cache
def _photos(split: str, channels: int) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """The split's photos and their sampling probabilities (proportional to area)."""
    photos = tuple(transforms.to_channels(load_photo(name), channels) for name in SPLITS[split])
    areas = np.array([p.shape[0] * p.shape[1] for p in photos], np.float64)
    return photos, areas / areas.sum()


def validate(cfg: DataConfig) -> None:
    require_image_size(cfg, maximum=MAX_CROP)


def _train_read(cfg: DataConfig, split: str):
    def read(index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        del index  # the generator already depends on it
        photos, probs = _photos(split, cfg.channels)
        photo = photos[rng.choice(len(photos), p=probs)]
        return {"image": transforms.crop(photo, cfg.image_size, rng)}
    return read


def _eval_read(cfg: DataConfig, split: str):
    def read(index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        photos, _ = _photos(split, cfg.channels)
        return {"image": transforms.crop(photos[index % len(photos)], cfg.image_size, rng)}
    return read


def make_source(cfg: DataConfig, split: str, train: bool) -> Source:
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not a split of 'natural_crops'; choose one of {tuple(SPLITS)}")
    if train:
        return Source(read=_train_read(cfg, split), length=None)
    return Source(read=_eval_read(cfg, split), length=cfg.num_eval_examples)


def element_spec(cfg: DataConfig) -> dict[str, jax.ShapeDtypeStruct]:
    return {"image": jax.ShapeDtypeStruct((cfg.image_size, cfg.image_size, cfg.channels), np.float32)}
