"""The ``config.data`` section: fields, defaults, parsing and validation.

:func:`default_config` is the canonical ``config.data`` (an ``ml_collections.ConfigDict``);
:func:`parse` turns any mapping or ConfigDict into a typed, hashable :class:`DataConfig`
through the shared section parser (:mod:`sparse_ae.utils.sections`).
Source-specific checks (sizes, folders, prepared TFDS data) live with each source.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections

from sparse_ae.data.binomial_spikes import SpikesConfig
from sparse_ae.utils import sections

FITS = ("auto", "crop", "resize")


@dataclasses.dataclass(frozen=True)
class CSCConfig:
    """``data.csc``: the synthetic convolutional sparse coding model (source "synthetic_csc"),
    images ``x = Σ_m d_m ∗ z_m + noise_std · N(0, 1)``."""

    # The ground-truth kernel (kernel_size, kernel_size, num_atoms, channels), unit-norm atoms
    # drawn from dict_seed.
    num_atoms: int = 8
    kernel_size: int = 5
    dict_seed: int = 0
    # Codes (image_size/stride, image_size/stride, num_atoms) and the convolution's boundary
    # ("circular" | "zero").
    stride: int = 1
    boundary: str = "circular"
    # Fraction of non-zero codes (Bernoulli(density)·N(0, 1)).
    density: float = 0.05
    noise_std: float = 0.0


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """``config.data``.

    name: "digits" | "natural_crops" | "set12" | "train400" | "image_folder" | "synthetic_csc" |
      "binomial_spikes" | "tfds:<name>".
    image_size: output height = width; 0 keeps full-size images (folder sources only).
    channels: 1 (grayscale) or 3 (RGB); conversion is automatic.
    batch_size: global batch size (split over processes by the caller).
    path: folder of the folder sources (set12 and train400 default to their folder under
      ``$SPARSE_AE_DATA_DIR`` or ``../shared/data`` next to the repo; image_folder needs it).
    tfds_data_dir: TFDS data dir (default: ``$TFDS_DATA_DIR`` or TFDS's own default).
    image_key / label_key / mask_key: TFDS feature names ("" label_key: no label; mask_key, e.g.
      "segmentation_mask" of caltech_birds2011: a foreground mask, fitted with the image; "" none).
    fit: how folder / tfds images reach image_size: "crop" (a window, no
      resampling: random in training, centred in evaluation), "resize" (shorter side resized to
      image_size, then centre crop) or "auto" ("resize" for tfds, "crop" for folders).
    random_flip / random_vflip / random_crop_pad: training augmentation (horizontal flip; vertical
      flip; reflect-pad by this many pixels and crop back at a random offset); off by default; not
      for synthetic_csc or binomial_spikes.
    num_eval_examples: size of the fixed evaluation set of natural_crops, synthetic_csc and
      binomial_spikes.
    train_fraction: the share of a finite source's examples that training reads (the low-data
      regime, e.g. 0.1): a fixed subset, the first ⌈f·N⌉ of one seed-independent permutation, so
      every run seed trains on the same examples; evaluation reads the whole split. 1: all.
    num_threads / prefetch: grain read threads and batches read ahead.
    csc: see :class:`CSCConfig`.
    spikes: see :class:`sparse_ae.data.binomial_spikes.SpikesConfig` (image_size = signal length).
    """

    name: str = "digits"
    image_size: int = 16
    channels: int = 1
    batch_size: int = 64
    path: str = ""
    tfds_data_dir: str = ""
    image_key: str = "image"
    label_key: str = "label"
    mask_key: str = ""
    fit: str = "auto"
    random_flip: bool = False
    random_vflip: bool = False
    random_crop_pad: int = 0
    num_eval_examples: int = 256
    train_fraction: float = 1.0
    num_threads: int = 4
    prefetch: int = 8
    csc: CSCConfig = CSCConfig()
    spikes: SpikesConfig = SpikesConfig()


# The sub-sections of ``config.data`` that only one source reads.
SOURCE_SECTIONS = {"csc": "synthetic_csc", "spikes": "binomial_spikes"}


def default_config() -> ml_collections.ConfigDict:
    """The default ``config.data`` section."""
    return ml_collections.ConfigDict(dataclasses.asdict(DataConfig()))


def parse(data_config: Any) -> DataConfig:
    """A typed :class:`DataConfig` from a ConfigDict / mapping (missing fields take defaults)."""
    return sections.parse(data_config, DataConfig, "config.data")


def check_common(cfg: DataConfig) -> None:
    """Checks shared by every source (value ranges of the generic fields)."""
    def positive(field: str, value: int) -> None:
        if value < 1:
            raise ValueError(f"config.data.{field} must be >= 1, got {value}")

    if cfg.channels not in (1, 3):
        raise ValueError(f"config.data.channels must be 1 or 3, got {cfg.channels}")
    if cfg.image_size < 0:
        raise ValueError(f"config.data.image_size must be >= 0 (0: full-size images), got {cfg.image_size}")
    for field in ("batch_size", "num_eval_examples", "num_threads"):
        positive(field, getattr(cfg, field))
    if not 0.0 < cfg.train_fraction <= 1.0:
        raise ValueError(f"config.data.train_fraction must be in (0, 1], got {cfg.train_fraction}")
    if cfg.prefetch < 0:
        raise ValueError(f"config.data.prefetch must be >= 0, got {cfg.prefetch}")
    if cfg.fit not in FITS:
        raise ValueError(f"config.data.fit must be one of {FITS}, got {cfg.fit!r}")
    if cfg.random_crop_pad < 0 or (cfg.image_size and cfg.random_crop_pad >= cfg.image_size):
        raise ValueError(f"config.data.random_crop_pad must be in [0, image_size), got {cfg.random_crop_pad}")


def require_image_size(cfg: DataConfig, maximum: int | None = None, minimum: int = 1) -> None:
    """Sources whose examples need a fixed size: ``minimum <= image_size <= maximum``."""
    if cfg.image_size < minimum:
        raise ValueError(f"config.data.image_size must be >= {minimum} for source {cfg.name!r}, "
                         f"got {cfg.image_size}")
    if maximum is not None and cfg.image_size > maximum:
        raise ValueError(f"config.data.image_size must be <= {maximum} for source {cfg.name!r}, "
                         f"got {cfg.image_size}")
