"""Per-example numpy image operations. Images are (H, W, C) float32 in [0, 1]."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

# ITU-R BT.601 luma, the weights PIL and most image libraries use for RGB -> grayscale.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / bool / float (H, W) or (H, W, C) -> float32 (H, W, C) in [0, 1]."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    return np.clip(image.astype(np.float32), 0.0, 1.0)


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """(H, W, C) with C in {1, 2, 3, 4} (alpha dropped) -> (H, W, channels); RGB -> gray by luma."""
    if image.shape[-1] in (2, 4):
        image = image[..., :-1]
    if image.shape[-1] == channels:
        return image
    if channels == 1:
        return (image @ LUMA)[..., None].astype(np.float32)
    return np.repeat(image, channels, axis=-1)


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear (antialiased when shrinking) resize of (H, W, C) float32, values kept in range."""
    if image.shape[:2] == (height, width):
        return image
    planes = [np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c], np.float32)).resize((width, height), Image.BILINEAR))
              for c in range(image.shape[-1])]
    return np.clip(np.stack(planes, axis=-1), 0.0, 1.0)


def resize_shorter_side(image: np.ndarray, size: int) -> np.ndarray:
    """Resize so that min(H, W) == size, keeping the aspect ratio."""
    h, w = image.shape[:2]
    scale = size / min(h, w)
    return resize(image, max(size, round(h * scale)), max(size, round(w * scale)))


def window(image: np.ndarray, height: int, width: int,
           rng: np.random.Generator | None = None) -> np.ndarray:
    """A height x width window: at a random offset drawn from ``rng``, or centred if rng is None."""
    h, w = image.shape[:2]
    if h < height or w < width:
        raise ValueError(f"cannot crop {height}x{width} from an image of size {h}x{w}")
    if rng is None:
        top, left = (h - height) // 2, (w - width) // 2
    else:
        top, left = int(rng.integers(h - height + 1)), int(rng.integers(w - width + 1))
    return image[top:top + height, left:left + width]


def crop(image: np.ndarray, size: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """A size x size :func:`window`."""
    return window(image, size, size, rng)


def fit(image: np.ndarray, size: int, mode: str, rng: np.random.Generator | None) -> np.ndarray:
    """Bring an image to size x size: mode "crop" (window, see :func:`crop`) or "resize"
    (shorter side to size, then centre crop). size 0 returns the image unchanged."""
    if size == 0:
        return image
    if mode == "resize":
        return crop(resize_shorter_side(image, size), size)
    return crop(image, size, rng)


def augment(image: np.ndarray, rng: np.random.Generator, *, flip: bool, crop_pad: int,
            vflip: bool = False) -> np.ndarray:
    """Training augmentation: reflect-pad by crop_pad and crop back at a random offset, then a
    random horizontal flip and a random vertical flip (each only when enabled)."""
    if crop_pad:
        h, w = image.shape[:2]
        image = window(np.pad(image, ((crop_pad, crop_pad), (crop_pad, crop_pad), (0, 0)), mode="reflect"),
                       h, w, rng)
    if flip and rng.random() < 0.5:
        image = image[:, ::-1]
    if vflip and rng.random() < 0.5:
        image = image[::-1]
    return np.ascontiguousarray(image)


def with_mask(transform, image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``transform`` (an (H, W, C) → (h, w, C) function) applied to an image and its (H, W) mask at
    once, the mask as one more channel: (image (h, w, C), mask (h, w) bool, thresholded at ½)."""
    out = transform(np.concatenate([image, mask[..., None].astype(image.dtype)], axis=-1))
    return out[..., :-1], out[..., -1] > 0.5


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to (H, W, C) float32 in [0, 1] (C = 1 or 3; alpha dropped)."""
    try:
        with Image.open(path) as img:
            if img.mode.startswith("I"):  # 16-bit grayscale ("I;16*", or "I" in older Pillow)
                return np.asarray(img).astype(np.float32)[..., None] / 65535.0
            if img.mode == "F":
                return to_float(np.asarray(img))
            if img.mode not in ("L", "RGB"):
                img = img.convert("L" if img.mode in ("1", "LA") else "RGB")
            return to_float(np.asarray(img))
    except (OSError, ValueError, SyntaxError) as err:
        raise ValueError(f"cannot read image file {os.fspath(path)!r}: {err}") from err
