"""Unsupervised foreground segmentation from code grids, scored by IoU and DICE.

Per image: the h × w feature vectors (a code grid, or the image's colours average-pooled to the
same grid as the baseline) are split into ``num_groups`` (2 or 3) groups by spectral clustering
(scikit-learn, precomputed affinity exp(−‖f_a − f_b‖² / m), m = the median squared distance between
distinct vectors, so the affinity has no scale to tune); the group with the most cells on the
grid's border is the background, the other groups are the foreground (boundary connectivity).
The grid mask is upsampled (nearest) to the image size and compared with the true mask:
IoU = |P ∩ G| / |P ∪ G|, DICE = 2|P ∩ G| / (|P| + |G|) (both 1 when P and G are empty).

The evaluator needs batches with "mask" (B, H, W) (e.g. the "composites" source) and
``eval_step``'s ``config.segmentation.feature`` output (default "code", (B, h, w, K)). For each
σ in ``noise_levels`` it adds i.i.d. N(0, σ²) noise to the images (no clipping), re-encodes them
and scores both the codes and the colour baseline (same noisy image). Scalars:
``<split>/seg_iou``, ``seg_dice``, ``seg_iou_colour``, ``seg_dice_colour`` (suffix ``_sigma<σ>`` for
σ > 0); image ``<split>/segmentation``: rows of inputs, true masks, code masks, colour masks (σ = first level).
"""

from __future__ import annotations

import jax
import ml_collections
import numpy as np

from sparse_ae.evaluators import eval_outputs
from sparse_ae.utils import images as image_utils

SEGMENT_GROUPS = (2, 3)


def default_config(**overrides) -> ml_collections.ConfigDict:
    """Defaults of this evaluator's config section; keywords replace them."""
    config = ml_collections.ConfigDict(dict(num_groups=2, noise_levels=(0.0,), feature="code", seed=0))
    config.update(overrides)
    return config


def median_affinity(features: np.ndarray) -> np.ndarray:
    """(N, F) → (N, N) exp(−d²/m), d² pairwise squared distances, m their median over distinct pairs."""
    x = np.asarray(features, np.float64)
    squared = np.sum(x * x, axis=1)
    d2 = np.maximum(squared[:, None] + squared[None, :] - 2 * x @ x.T, 0.0)
    off_diagonal = d2[~np.eye(len(x), dtype=bool)]
    positive = off_diagonal[off_diagonal > 0]
    scale = np.median(positive) if positive.size else 1.0
    return np.exp(-d2 / scale)


def spectral_groups(features: np.ndarray, num_groups: int, seed: int = 0) -> np.ndarray:
    """Labels (h, w) of the (h, w, F) feature grid split into ``num_groups`` by spectral clustering."""
    from sklearn.cluster import SpectralClustering  # pylint: disable=import-outside-toplevel

    if num_groups not in SEGMENT_GROUPS:
        raise ValueError(f"num_groups={num_groups} must be one of {SEGMENT_GROUPS}")
    h, w, f = features.shape
    affinity = median_affinity(features.reshape(h * w, f))
    clustering = SpectralClustering(num_groups, affinity="precomputed", random_state=seed,
                                    assign_labels="cluster_qr")
    return clustering.fit_predict(affinity).reshape(h, w)


def border_foreground(labels: np.ndarray) -> np.ndarray:
    """(h, w) bool: every group except the one with the most cells on the border (the background)."""
    border = np.concatenate([labels[0], labels[-1], labels[1:-1, 0], labels[1:-1, -1]])
    background = np.bincount(border).argmax()
    return labels != background


def upsample(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour upsampling of an (h, w) mask to ``shape`` (integer factors)."""
    fh, fw = shape[0] // mask.shape[0], shape[1] // mask.shape[1]
    if fh * mask.shape[0] != shape[0] or fw * mask.shape[1] != shape[1]:
        raise ValueError(f"mask grid {mask.shape} does not divide the image size {shape}")
    return np.repeat(np.repeat(mask, fh, axis=0), fw, axis=1)


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    union = np.sum(pred | truth)
    return 1.0 if union == 0 else float(np.sum(pred & truth) / union)


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    total = np.sum(pred) + np.sum(truth)
    return 1.0 if total == 0 else float(2 * np.sum(pred & truth) / total)


def segment(features: np.ndarray, num_groups: int, image_shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Foreground mask (H, W) bool of one image from its (h, w, F) feature grid."""
    return upsample(border_foreground(spectral_groups(features, num_groups, seed)), image_shape)


def pooled_colours(images: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(B, H, W, C) → (B, h, w, C): mean colour of each grid cell (the raw-pixel baseline features)."""
    b, height, width, c = images.shape
    h, w = grid
    return images.reshape(b, h, height // h, w, width // w, c).mean(axis=(2, 4))


def validate_config(config) -> None:
    c = config.get("segmentation")
    if c is None:
        raise ValueError("evaluator 'segmentation' needs config.segmentation (see segmentation.default_config())")
    if c.num_groups not in SEGMENT_GROUPS:
        raise ValueError(f"config.segmentation.num_groups={c.num_groups} must be one of {SEGMENT_GROUPS}")
    if not c.noise_levels or any(s < 0 for s in c.noise_levels):
        raise ValueError(f"config.segmentation.noise_levels={c.noise_levels} must be a non-empty list of σ >= 0")


def _noisy(make_iterator, sigma: float, seed: int):
    """Iterator factory of the batches with N(0, σ²) noise added to "image" (on device, same sharding)."""
    add = jax.jit(lambda image, key: image + sigma * jax.random.normal(key, image.shape, image.dtype))

    def make():
        for index, batch in enumerate(make_iterator()):
            key = jax.random.fold_in(jax.random.key(seed), index)
            yield {**batch, "image": add(batch["image"], key)} if sigma > 0 else batch

    return make


def score(images: np.ndarray, masks: np.ndarray, features: np.ndarray, num_groups: int, seed: int
          ) -> dict[str, list]:
    """Per-image IoU/DICE of code features and of the colour baseline, plus the predicted masks."""
    shape = masks.shape[1:3]
    colours = pooled_colours(images, features.shape[1:3])
    out = {"iou": [], "dice": [], "iou_colour": [], "dice_colour": [], "mask": [], "mask_colour": []}
    for image_features, image_colours, truth in zip(features, colours, masks):
        for suffix, feats in (("", image_features), ("_colour", image_colours)):
            pred = segment(feats, num_groups, shape, seed)
            out[f"iou{suffix}"].append(iou(pred, truth))
            out[f"dice{suffix}"].append(dice(pred, truth))
            out[f"mask{suffix}"].append(pred)
    return out


def evaluate(task, state, datasets, config):
    c = config.segmentation
    scalars, images = {}, {}
    for split, make_iterator in datasets.items():
        for sigma in c.noise_levels:
            results: dict[str, list] = {}
            shown = []
            for batch, outputs in eval_outputs(task, state, _noisy(make_iterator, sigma, c.seed)):
                if "mask" not in batch or c.feature not in outputs:
                    raise ValueError(f"evaluator 'segmentation' needs batches with 'mask' (e.g. config.data.name="
                                     f"'composites') and eval_step output {c.feature!r}; got batch keys "
                                     f"{sorted(batch)}, outputs {sorted(outputs)}")
                masks = batch["mask"].reshape(batch["mask"].shape[:3]).astype(bool)
                batch_scores = score(batch["image"], masks, outputs[c.feature], c.num_groups, c.seed)
                for key, values in batch_scores.items():
                    results.setdefault(key, []).extend(values)
                if sigma == c.noise_levels[0] and len(shown) < config.eval.num_images:
                    shown.extend(zip(batch["image"], masks, batch_scores["mask"], batch_scores["mask_colour"]))
            suffix = f"_sigma{sigma:g}" if sigma > 0 else ""
            for key in ("iou", "dice", "iou_colour", "dice_colour"):
                scalars[f"{split}/seg_{key}{suffix}"] = float(np.mean(results[key]))
            if shown:
                images[f"{split}/segmentation"] = _mask_rows(shown[:config.eval.num_images])
    return scalars, images


def _mask_rows(shown: list) -> np.ndarray:
    """One tiled grid (1, H', W', C) with rows: inputs, true masks, code masks, colour masks."""
    inputs = np.clip(np.stack([s[0] for s in shown]), 0.0, 1.0)
    channels = inputs.shape[-1]
    rows = [inputs] + [np.repeat(np.stack([s[i] for s in shown])[..., None], channels, -1).astype(np.float32)
                       for i in (1, 2, 3)]
    return image_utils.tile(np.concatenate(rows), num_cols=len(shown))[None]
