"""Folders of image files: "set12" (the 12 standard grayscale test images), "train400" (the 400
grayscale 180×180 training images of the denoising literature) and "image_folder".

Files are the folder's ``*.png, *.jpg, *.jpeg, *.bmp, *.tif, *.tiff`` (not recursive), sorted by
name; example ``i`` is the i-th file and carries ``"index"`` = i. A folder has no splits: every
split name reads all files. ``image_size`` 0 keeps full images (a batch of more than one then
needs images of one size); otherwise ``fit`` "crop" takes a window (random in training, centred
in evaluation) and "resize" resizes the shorter side and centre-crops ("auto" = "crop").
The named sets default to ``<data root>/set12`` and ``<data root>/train400``; the data root is
``$SPARSE_AE_DATA_DIR``, else ``../shared/data`` next to the repository root.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import jax
import numpy as np
from PIL import Image

from sparse_ae.data import transforms
from sparse_ae.data.config import DataConfig
from sparse_ae.data.source import Source

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
# Folders with at most this many decoded values are decoded once and kept in memory.
CACHE_VALUES = 1 << 25
REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR_ENV = "SPARSE_AE_DATA_DIR"
NAMED_SETS = {"set12": "holding 01.png ... 12.png", "train400": "holding the 400 Train400 images"}


def shared_data_dir() -> Path:
    """The folder of the standard data sets: ``$SPARSE_AE_DATA_DIR`` or ``../shared/data`` next to
    the repository root."""
    return Path(os.environ.get(DATA_DIR_ENV) or REPO_ROOT.parent / "shared" / "data").expanduser()


def shared_path(name: str) -> Path:
    """``<data root>/name``; ValueError saying where to put it when it is missing."""
    path = shared_data_dir() / name
    if not path.exists():
        raise ValueError(f"{os.fspath(path)!r} not found: put the standard data sets (set12/, train400/, "
                         f"dcea_official/) in one folder and point {DATA_DIR_ENV} at it, or pass the path")
    return path


def folder(cfg: DataConfig) -> Path:
    """The configured folder (data.path; for the named sets their default location when unset)."""
    if cfg.path:
        return Path(cfg.path).expanduser()
    if cfg.name in NAMED_SETS:
        return shared_data_dir() / cfg.name
    raise ValueError("config.data.path is required for config.data.name='image_folder': "
                     "set it to a folder of images (e.g. --config.data.path=/path/to/images)")


def image_paths(cfg: DataConfig) -> list[Path]:
    """The image files the source reads, in example order; clear errors if there are none."""
    path = folder(cfg)
    if not path.is_dir():
        hint = (f"set config.data.path (e.g. --config.data.path=/path/to/{cfg.name}) to the folder "
                f"{NAMED_SETS[cfg.name]}, or {DATA_DIR_ENV} to the folder holding {cfg.name}/"
                if cfg.name in NAMED_SETS else "set config.data.path to an existing folder")
        raise ValueError(f"image folder for {cfg.name!r} not found: looked in {os.fspath(path)!r}; {hint}")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)
    if not files:
        raise ValueError(f"image folder {os.fspath(path)!r} (config.data.path) holds no image files "
                         f"with extension {'/'.join(EXTENSIONS)}")
    return files


@functools.cache
def _sizes(paths: tuple[Path, ...]) -> tuple[tuple[int, int], ...]:
    """(height, width) of each file, from its header only."""
    def size(path: Path) -> tuple[int, int]:
        try:
            with Image.open(path) as img:
                return img.height, img.width
        except (OSError, ValueError, SyntaxError) as err:
            raise ValueError(f"cannot read image file {os.fspath(path)!r}: {err}") from err
    return tuple(size(p) for p in paths)


def _fit_mode(cfg: DataConfig) -> str:
    return "crop" if cfg.fit == "auto" else cfg.fit


def validate(cfg: DataConfig) -> None:
    paths = image_paths(cfg)
    if cfg.image_size and _fit_mode(cfg) == "crop":
        for path, (h, w) in zip(paths, _sizes(tuple(paths))):
            if min(h, w) < cfg.image_size:
                raise ValueError(f"image {os.fspath(path)!r} is {h}x{w}, smaller than config.data."
                                 f"image_size={cfg.image_size}; lower image_size or set "
                                 "config.data.fit='resize'")


def make_source(cfg: DataConfig, split: str, train: bool) -> Source:
    del split  # a folder has no splits
    validate(cfg)
    paths = tuple(image_paths(cfg))
    mode = _fit_mode(cfg)

    def load(index: int) -> np.ndarray:
        return transforms.to_channels(transforms.load_image(paths[index]), cfg.channels)

    if sum(h * w for h, w in _sizes(paths)) * cfg.channels <= CACHE_VALUES:
        load = functools.cache(load)

    def read(index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        image = transforms.fit(load(index), cfg.image_size, mode, rng if train else None)
        return {"image": image, "index": np.int32(index)}

    sizes = () if cfg.image_size else tuple(sorted(set(_sizes(paths))))
    return Source(read=read, length=len(paths), sizes=sizes)


def element_spec(cfg: DataConfig) -> dict[str, jax.ShapeDtypeStruct]:
    if not cfg.image_size:
        raise ValueError(f"config.data.image_size=0 (full-size images of {cfg.name!r}) has no fixed "
                         "element shape; set config.data.image_size to crop or resize")
    return {"image": jax.ShapeDtypeStruct((cfg.image_size, cfg.image_size, cfg.channels), np.float32),
            "index": jax.ShapeDtypeStruct((), np.int32)}
