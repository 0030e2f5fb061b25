"""scikit-learn digits: 1797 8x8 grayscale images of 10 classes, with labels.

Split (fixed, independent of the run seed): a stratified split with
``sklearn.model_selection.train_test_split(test_size=297, stratify=labels, random_state=0)``
gives 1500 "train" and 297 "test" images. Pixels (0..16) are scaled to [0, 1] and resized
bilinearly to ``image_size``; channels=3 replicates the gray plane.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from sparse_ae.data import transforms
from sparse_ae.data.config import DataConfig, require_image_size
from sparse_ae.data.source import Source

SPLITS = ("train", "test")
NUM_TEST = 297
SPLIT_SEED = 0


@functools.cache
def _split_indices() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel
    from sklearn.model_selection import train_test_split  # pylint: disable=import-outside-toplevel

    labels = load_digits().target
    train, test = train_test_split(np.arange(len(labels)), test_size=NUM_TEST, stratify=labels,
                                   random_state=SPLIT_SEED)
    return {"train": np.sort(train), "test": np.sort(test)}


@functools.cache
def _arrays(split: str, image_size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, S, S, channels) float32 images and (N,) int32 labels of one split."""
    from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel

    digits = load_digits()
    index = _split_indices()[split]
    images = np.stack([transforms.resize(transforms.to_float(img / 16.0), image_size, image_size)
                       for img in digits.images[index]])
    images = np.repeat(images, channels, axis=-1) if channels == 3 else images
    return images, digits.target[index].astype(np.int32)


def validate(cfg: DataConfig) -> None:
    require_image_size(cfg)


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not a split of 'digits'; choose one of {SPLITS}")


def make_source(cfg: DataConfig, split: str, train: bool) -> Source:
    del train  # the same examples either way; shuffling and augmentation are the pipeline's
    check_split(split)
    images, labels = _arrays(split, cfg.image_size, cfg.channels)
    return Source(read=lambda i, rng: {"image": images[i], "label": labels[i]}, length=len(labels))


def element_spec(cfg: DataConfig) -> dict[str, jax.ShapeDtypeStruct]:
    return {"image": jax.ShapeDtypeStruct((cfg.image_size, cfg.image_size, cfg.channels), np.float32),
            "label": jax.ShapeDtypeStruct((), np.int32)}
