"""Patch clustering: K-means over the per-location codes, shown as a grid of clusters × patches.

Every grid position (i, j) of "code" (B, h, w, K) from ``eval_step`` is one vector; its patch is the
image window of side ``context``·s centred on the cell's s × s block (s = H/h; reflect padding at
the border). K-means (scikit-learn, ``num_clusters``, k-means++ init, seed ``seed``) runs on at most
``max_vectors`` positions from the first split. The image ``<split>/patch_clusters`` (one tiled
grid) has ``clusters_shown`` random clusters as rows and ``patches_shown`` random members each.

Per image (the SC-VAE paper's clustering figure): the h·w code vectors of each image are split by
K-means (:func:`image_kmeans`, ``image_clusters`` groups) and shown as a colour map over the image:
``<split>/patch_kmeans`` has a row of inputs and a row of the same images under their cluster
colours (cluster 0 the largest; colour ``PALETTE[label]``).
``config.patch_clusters`` fields: :func:`default_config`.
"""

from __future__ import annotations

import ml_collections
import numpy as np

from sparse_ae.evaluators import eval_outputs
from sparse_ae.evaluators.segmentation import upsample
from sparse_ae.utils import images as image_utils

# Colours of the cluster labels 0, 1, … (RGB in [0, 1]): red, blue, green, yellow, purple, orange,
# cyan, pink, brown, grey.
PALETTE = np.array([[0.90, 0.10, 0.10], [0.12, 0.35, 0.90], [0.10, 0.70, 0.20], [0.95, 0.85, 0.10],
                    [0.60, 0.20, 0.75], [1.00, 0.55, 0.05], [0.10, 0.80, 0.85], [0.95, 0.45, 0.70],
                    [0.50, 0.30, 0.10], [0.55, 0.55, 0.55]], np.float32)


def default_config(**overrides) -> ml_collections.ConfigDict:
    """Defaults of this evaluator's config section; keywords replace them."""
    config = ml_collections.ConfigDict(dict(num_clusters=32, clusters_shown=8, patches_shown=10, context=2,
                                            max_vectors=20000, seed=0, image_clusters=5, opacity=0.5))
    config.update(overrides)
    return config


def cluster_codes(vectors: np.ndarray, num_clusters: int, seed: int, num_inits: int = 1) -> np.ndarray:
    """K-means labels (N,) of (N, K) vectors: scikit-learn, k-means++ seeding, the best of
    ``num_inits`` starts (least inertia)."""
    from sklearn.cluster import KMeans  # pylint: disable=import-outside-toplevel

    return KMeans(num_clusters, n_init=num_inits, random_state=seed).fit_predict(np.asarray(vectors, np.float64))


def by_size(labels: np.ndarray, num_clusters: int) -> np.ndarray:
    """``labels`` (any shape, values in [0, num_clusters)) renumbered by cluster size: 0 the largest,
    ties in label order."""
    order = np.argsort(-np.bincount(labels.ravel(), minlength=num_clusters), kind="stable")
    rank = np.empty(num_clusters, np.int64)
    rank[order] = np.arange(num_clusters)
    return rank[labels]


def image_kmeans(codes: np.ndarray, num_clusters: int, seed: int = 0, num_inits: int = 4) -> np.ndarray:
    """Per-image K-means of code grids (B, h, w, K) → labels (B, h, w), each image on its own
    (:func:`cluster_codes`, best of ``num_inits`` starts) and numbered by :func:`by_size`."""
    b, h, w, k = codes.shape
    if not 1 <= num_clusters <= h * w:
        raise ValueError(f"image_kmeans: num_clusters={num_clusters} must be in [1, {h * w}] "
                         f"(the {h}×{w} code vectors of an image)")
    return np.stack([by_size(cluster_codes(grid.reshape(h * w, k), num_clusters, seed, num_inits), num_clusters)
                     for grid in codes]).reshape(b, h, w)


def as_rgb(images: np.ndarray) -> np.ndarray:
    """(B, H, W, C) clipped to [0, 1] as RGB (grey repeated, channels past 3 dropped)."""
    images = np.clip(images, 0.0, 1.0)
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images[..., :3]


def cluster_overlay(images: np.ndarray, labels: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """Images (B, H, W, C) under the colours ``PALETTE[labels]`` of their label grids (B, h, w)
    (nearest upsampling; h, w divide H, W): (1 − opacity)·image + opacity·colour, RGB (B, H, W, 3)."""
    if labels.max(initial=0) >= len(PALETTE) or labels.min(initial=0) < 0:
        raise ValueError(f"cluster_overlay: labels must be in [0, {len(PALETTE)}) (the palette's colours)")
    colours = np.stack([PALETTE[upsample(grid, images.shape[1:3])] for grid in labels])
    return ((1 - opacity) * as_rgb(images) + opacity * colours).astype(np.float32)


def cell_patches(images: np.ndarray, cells: np.ndarray, grid: tuple[int, int], context: int) -> np.ndarray:
    """Windows (N, p, p, C), p = context·s, centred on grid cells ``cells`` (N, 3) = (image, i, j)."""
    _, height, _, _ = images.shape
    s = height // grid[0]
    p = context * s
    pad = p
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    offset = pad - (p - s) // 2
    return np.stack([padded[n, offset + i * s:offset + i * s + p, offset + j * s:offset + j * s + p]
                     for n, i, j in cells])


def cluster_grid(images: np.ndarray, codes: np.ndarray, c: ml_collections.ConfigDict) -> np.ndarray:
    """Tiled (H', W', C) grid of ``c.clusters_shown`` clusters × ``c.patches_shown`` patches."""
    n, h, w, k = codes.shape
    rng = np.random.default_rng(c.seed)
    cells = np.stack(np.meshgrid(np.arange(n), np.arange(h), np.arange(w), indexing="ij"), -1).reshape(-1, 3)
    if len(cells) > c.max_vectors:
        cells = cells[np.sort(rng.choice(len(cells), c.max_vectors, replace=False))]
    num_clusters = min(c.num_clusters, len(cells))
    labels = cluster_codes(codes[cells[:, 0], cells[:, 1], cells[:, 2]].reshape(-1, k), num_clusters, c.seed)
    shown = rng.choice(num_clusters, min(c.clusters_shown, num_clusters), replace=False)
    rows = []
    for cluster in shown:
        members = np.flatnonzero(labels == cluster)
        picked = rng.choice(members, min(c.patches_shown, len(members)), replace=False)
        patches = cell_patches(images, cells[picked], (h, w), c.context)
        blank = np.full((c.patches_shown - len(picked), *patches.shape[1:]), 0.5, np.float32)
        rows.append(np.concatenate([patches, blank]))
    return image_utils.tile(np.concatenate(rows), num_cols=c.patches_shown)


def validate_config(config) -> None:
    c = config.get("patch_clusters")
    if c is None:
        raise ValueError("evaluator 'patch_clusters' needs config.patch_clusters (see patch_clusters.default_config())")
    for key in ("num_clusters", "clusters_shown", "patches_shown", "context", "max_vectors", "image_clusters"):
        if c[key] < 1:
            raise ValueError(f"config.patch_clusters.{key}={c[key]} must be >= 1")
    if c.image_clusters > len(PALETTE):
        raise ValueError(f"config.patch_clusters.image_clusters={c.image_clusters} must be <= {len(PALETTE)} "
                         "(the colours of the per-image cluster map)")
    if not 0 <= c.opacity <= 1:
        raise ValueError(f"config.patch_clusters.opacity={c.opacity} must be in [0, 1]")


def evaluate(task, state, datasets, config):
    c = config.patch_clusters
    split, make_iterator = next(iter(datasets.items()))
    images, codes, count = [], [], 0
    for batch, outputs in eval_outputs(task, state, make_iterator):
        images.append(batch["image"])
        codes.append(outputs["code"])
        count += outputs["code"][..., 0].size
        if count >= c.max_vectors:
            break
    images, codes = np.concatenate(images), np.concatenate(codes)
    grid = cluster_grid(images, codes, c)
    shown = images[:config.eval.num_images]
    labels = image_kmeans(codes[:len(shown)], min(c.image_clusters, codes.shape[1] * codes.shape[2]), c.seed)
    overlay = cluster_overlay(shown, labels, c.opacity)
    kmeans_rows = image_utils.tile(np.concatenate([as_rgb(shown), overlay]), num_cols=len(shown))
    return {}, {f"{split}/patch_clusters": grid[None], f"{split}/patch_kmeans": kmeans_rows[None]}
