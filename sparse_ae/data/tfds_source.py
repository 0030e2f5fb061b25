"""TFDS datasets ("tfds:<name>", e.g. "tfds:mnist", "tfds:celeb_a", "tfds:imagenet2012") read
by random access with ``tfds.data_source`` from array_record files prepared beforehand.

Nothing is ever downloaded here: a dataset that is not prepared gets an error saying how to
prepare it (``tfds build NAME --file_format=array_record``, then ``TFDS_DATA_DIR`` or
``config.data.tfds_data_dir``). Features ``image_key`` (uint8 image), ``label_key`` (integer,
"" for none) and ``mask_key`` (a (H, W[, 1]) mask, non-zero = foreground; "" for none) become
"image" (image_size x image_size by ``fit``: "resize" = shorter side resized then centre crop
(default); "crop" = window, random in training), "label" int32 and "mask" bool (image_size,
image_size), fitted together with the image as one more channel and thresholded at ½.
"""

from __future__ import annotations

import functools
import os

import jax
import numpy as np

from sparse_ae.data import transforms
from sparse_ae.data.config import DataConfig, require_image_size
from sparse_ae.data.source import Source

PREFIX = "tfds:"


def dataset_name(cfg: DataConfig) -> str:
    return cfg.name[len(PREFIX):]


def _data_dir(cfg: DataConfig) -> str | None:
    return cfg.tfds_data_dir or None  # None: TFDS uses $TFDS_DATA_DIR or its own default


def _how_to_prepare(cfg: DataConfig) -> str:
    name = dataset_name(cfg)
    where = cfg.tfds_data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    return (f"prepare it once with `tfds build {name.split(':')[0]} --file_format=array_record "
            f"--data_dir=DIR` (on a machine with network access if it downloads), then point "
            f"TFDS_DATA_DIR or config.data.tfds_data_dir at DIR (looked in {where!r})")


@functools.cache
def _builder(cfg: DataConfig):
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    name = dataset_name(cfg)
    try:
        builder = tfds.builder(name, data_dir=_data_dir(cfg))
    except tfds.core.registered.DatasetNotFoundError as err:
        raise ValueError(f"config.data.name={cfg.name!r}: TFDS has no dataset {name!r} "
                         "(see `tfds.list_builders()`)") from err
    if not builder.is_prepared():
        raise ValueError(f"config.data.name={cfg.name!r}: TFDS dataset {name!r} is not prepared; "
                         f"{_how_to_prepare(cfg)}")
    file_format = getattr(builder.info.file_format, "value", builder.info.file_format)
    if file_format != "array_record":
        raise ValueError(f"config.data.name={cfg.name!r}: TFDS dataset {name!r} is prepared as "
                         f"{file_format}, random access needs array_record; "
                         f"{_how_to_prepare(cfg)}")
    return builder


def validate(cfg: DataConfig) -> None:
    if not dataset_name(cfg):
        raise ValueError("config.data.name='tfds:' needs a dataset name, e.g. 'tfds:mnist'")
    require_image_size(cfg)
    features = _builder(cfg).info.features
    for field in ("image_key", "label_key", "mask_key"):
        key = getattr(cfg, field)
        if key and key not in features:
            raise ValueError(f"config.data.{field}={key!r} is not a feature of {dataset_name(cfg)!r}; "
                             f"features: {sorted(features)}")


def _data_source(cfg: DataConfig, split: str):
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    builder = _builder(cfg)
    try:
        return tfds.data_source(dataset_name(cfg), split=split, data_dir=_data_dir(cfg), download=False)
    except ValueError as err:
        raise ValueError(f"split {split!r} of {cfg.name!r}: {err} (splits: "
                         f"{sorted(builder.info.splits)})") from err
    except tfds.core.registered.DatasetNotFoundError as err:  # defensive: files removed meanwhile
        raise ValueError(f"{cfg.name!r}: {err}; {_how_to_prepare(cfg)}") from err


def read_mask(record, key: str, image_hw: tuple[int, int], index: int) -> np.ndarray:
    """The (H, W) bool mask (non-zero = foreground) of ``record[key]``, an (H, W) or (H, W, 1)
    array of its image's size; ValueError naming the example otherwise."""
    mask = np.asarray(record[key])
    if mask.shape not in (image_hw, (*image_hw, 1)):
        raise ValueError(f"config.data.mask_key={key!r}: example {index} has a mask of shape {mask.shape} "
                         f"for an image of {image_hw}; a mask must be (H, W) or (H, W, 1) of its "
                         f"image's size")
    return mask.reshape(image_hw) > 0


def make_source(cfg: DataConfig, split: str, train: bool) -> Source:
    validate(cfg)
    records = _data_source(cfg, split)
    mode = "resize" if cfg.fit == "auto" else cfg.fit

    def read(index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        record = records[index]
        image = transforms.to_channels(transforms.to_float(record[cfg.image_key]), cfg.channels)
        fit = functools.partial(transforms.fit, size=cfg.image_size, mode=mode, rng=rng if train else None)
        if cfg.mask_key:
            mask = read_mask(record, cfg.mask_key, image.shape[:2], index)
            image, mask = transforms.with_mask(fit, image, mask)
            example = {"image": image, "mask": mask}
        else:
            example = {"image": fit(image)}
        if cfg.label_key:
            example["label"] = np.int32(record[cfg.label_key])
        return example

    return Source(read=read, length=len(records))


def element_spec(cfg: DataConfig) -> dict[str, jax.ShapeDtypeStruct]:
    spec = {"image": jax.ShapeDtypeStruct((cfg.image_size, cfg.image_size, cfg.channels), np.float32)}
    if cfg.label_key:
        spec["label"] = jax.ShapeDtypeStruct((), np.int32)
    if cfg.mask_key:
        spec["mask"] = jax.ShapeDtypeStruct((cfg.image_size, cfg.image_size), np.bool_)
    return spec
